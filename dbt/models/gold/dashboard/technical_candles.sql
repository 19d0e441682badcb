{#-
    The technical-analysis chart in one read: each candle's OHLCV beside its indicators (SMA
    20/50/200, EMA 12/26, Wilder RSI 14, MACD 12/26/9, Bollinger 20/2), all computed in silver.
    A view joining two silver tables on their shared unique key: a query for one token and
    interval reads two index ranges, and new candles are visible at once.
-#}
{{ config(materialized='view') }}

with

candles as (

    select
        symbol, interval, "timestamp", open, high, low, close, volume, has_gap, is_outlier
    from {{ ref('crypto_prices_cleaned') }}

),

indicators as (

    select
        symbol,
        interval,
        "timestamp",
        candle_number,
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

),

final as (

    select
        candles.symbol,
        candles.interval,
        candles."timestamp",
        candles.open,
        candles.high,
        candles.low,
        candles.close,
        candles.volume,
        candles.has_gap,
        candles.is_outlier,
        indicators.candle_number,
        indicators.sma_20,
        indicators.sma_50,
        indicators.sma_200,
        indicators.ema_12,
        indicators.ema_26,
        indicators.rsi_14,
        indicators.macd_line,
        indicators.macd_signal,
        indicators.macd_histogram,
        indicators.bb_upper,
        indicators.bb_middle,
        indicators.bb_lower,
        indicators.bb_percent_b,
        indicators.bb_bandwidth
    from candles
    inner join indicators
        on candles.symbol = indicators.symbol
        and candles.interval = indicators.interval
        and candles."timestamp" = indicators."timestamp"

)

select * from final
