{#- The walk-forward backtest's metrics per run date and strategy (schema portfolio). A view. -#}
{{ config(materialized='view') }}

with

metrics as (

    select * from {{ source('portfolio', 'backtest_metrics') }}

),

final as (

    select
        run_date,
        strategy,
        start_date,
        end_date,
        days,
        total_return,
        cagr,
        volatility,
        sharpe,
        sortino,
        max_drawdown,
        rebalances,
        turnover,
        costs,
        stale_days,
        fallbacks
    from metrics

)

select * from final
