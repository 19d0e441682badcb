{#- Optimised weights per run date, strategy and token, with the portfolio's metrics (schema
    portfolio, written by crypto_ml.portfolio). A view: a new run is visible at once. -#}
{{ config(materialized='view') }}

with

weights as (

    select * from {{ source('portfolio', 'weights') }}

),

strategies as (

    select * from {{ source('portfolio', 'strategies') }}

),

assets as (

    select * from {{ source('portfolio', 'assets') }}

),

final as (

    select
        weights.run_date,
        weights.strategy,
        weights.symbol,
        assets.category,
        weights.weight,
        strategies.expected_return,
        strategies.volatility,
        strategies.sharpe,
        strategies.sortino,
        strategies.max_drawdown,
        strategies.var_confidence,
        strategies.var_historical,
        strategies.cvar_historical,
        strategies.var_monte_carlo,
        strategies.cvar_monte_carlo,
        strategies.is_fallback,
        strategies.note
    from weights
    inner join strategies
        on strategies.run_date = weights.run_date and strategies.strategy = weights.strategy
    left join assets
        on assets.run_date = weights.run_date and assets.symbol = weights.symbol

)

select * from final
