{#- Efficient frontier points per run date (schema portfolio). A view. -#}
{{ config(materialized='view') }}

with

frontier as (

    select * from {{ source('portfolio', 'frontier') }}

),

runs as (

    select * from {{ source('portfolio', 'runs') }}

),

final as (

    select
        frontier.run_date,
        frontier.point,
        frontier.target_return,
        frontier.expected_return,
        frontier.volatility,
        frontier.sharpe,
        runs.risk_free_rate,
        frontier.weights
    from frontier
    inner join runs on runs.run_date = frontier.run_date

)

select * from final
