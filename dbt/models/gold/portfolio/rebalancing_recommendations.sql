{#- The trade list per run date and token for the user's holdings file, with the rebalancing's
    cash and cost summary (schema portfolio). A view. -#}
{{ config(materialized='view') }}

with

trades as (

    select * from {{ source('portfolio', 'rebalancing') }}

),

summary as (

    select * from {{ source('portfolio', 'rebalancing_summary') }}

),

final as (

    select
        trades.run_date,
        trades.symbol,
        trades.target_strategy,
        trades.current_weight,
        trades.target_weight,
        trades.drift,
        trades.band,
        trades.action,
        trades.trade_weight,
        trades.price,
        trades.trade_value,
        trades.trade_quantity,
        summary.portfolio_value,
        summary.cash_before,
        summary.cash_after,
        summary.estimated_cost,
        summary.buys_scaled_by
    from trades
    inner join summary on summary.run_date = trades.run_date

)

select * from final
