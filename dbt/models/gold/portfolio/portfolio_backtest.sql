{#- Daily equity curves of the walk-forward backtest per run date and strategy (schema
    portfolio). A view. -#}
{{ config(materialized='view') }}

with

backtest as (

    select * from {{ source('portfolio', 'backtest') }}

),

final as (

    select
        run_date,
        strategy,
        date,
        equity,
        daily_return,
        turnover,
        cost,
        drawdown,
        rebalanced,
        stale_prices
    from backtest

)

select * from final
