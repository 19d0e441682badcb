{#-
    The daily feature mart the forecasting package reads (crypto_ml.data): one row per token and
    UTC day of daily_crypto_metrics, with the silver indicators and volatilities of that day's
    daily candle and the token's category, so nothing downstream of gold reads silver.

    Every column is known at the day's close: indicators and volatilities use only candles up to
    and including that day (tested: tests/ml/forecasting/test_feature_mart.py), so a model fed
    rows up to day t never sees day t + 1. Returns are null after a gap (one definition with
    silver: macros/returns.sql); gap_days says how many days are missing before the row.

    Rebuilt in full on each run (about 14,000 rows per token-decade: well under a second).
-#}

with

days as (

    select
        symbol,
        date,
        close,
        open,
        high,
        low,
        volume,
        vwap,
        log_return,
        daily_return,
        previous_date,
        is_complete_day,
        volatility_30d,
        market_cap,
        circulating_supply,
        _source_ingested_at
    from {{ ref('daily_crypto_metrics') }}

),

daily_risk as (

    select
        symbol,
        ("timestamp" at time zone 'UTC')::date as date,
        volatility_60,
        volatility_90,
        drawdown
    from {{ ref('returns_and_risk') }}
    where interval = '1d'

),

daily_indicators as (

    select
        symbol,
        ("timestamp" at time zone 'UTC')::date as date,
        sma_20,
        sma_50,
        sma_200,
        ema_12,
        ema_26,
        rsi_14,
        macd_line,
        macd_signal,
        macd_histogram,
        bb_upper,
        bb_middle,
        bb_lower,
        bb_percent_b,
        bb_bandwidth
    from {{ ref('technical_indicators') }}
    where interval = '1d'

),

universe as (

    select symbol, category, is_stablecoin
    from {{ ref('token_universe') }}

),

final as (

    select
        days.symbol,
        days.date,
        universe.category,
        universe.is_stablecoin,
        days.close,
        days.open,
        days.high,
        days.low,
        days.volume,
        days.vwap,
        days.log_return,
        days.daily_return,
        (days.date - days.previous_date - 1) as gap_days,
        days.is_complete_day,
        days.volatility_30d,
        daily_risk.volatility_60 as volatility_60d,
        daily_risk.volatility_90 as volatility_90d,
        daily_risk.drawdown,
        daily_indicators.sma_20,
        daily_indicators.sma_50,
        daily_indicators.sma_200,
        daily_indicators.ema_12,
        daily_indicators.ema_26,
        daily_indicators.rsi_14,
        daily_indicators.macd_line,
        daily_indicators.macd_signal,
        daily_indicators.macd_histogram,
        daily_indicators.bb_upper,
        daily_indicators.bb_middle,
        daily_indicators.bb_lower,
        daily_indicators.bb_percent_b,
        daily_indicators.bb_bandwidth,
        days.market_cap,
        days.circulating_supply,
        days._source_ingested_at,
        {{ built_at() }} as _built_at
    from days
    inner join universe
        on days.symbol = universe.symbol
    left join daily_risk
        on days.symbol = daily_risk.symbol
        and days.date = daily_risk.date
    left join daily_indicators
        on days.symbol = daily_indicators.symbol
        and days.date = daily_indicators.date

)

select * from final
