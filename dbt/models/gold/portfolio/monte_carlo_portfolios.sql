{#- The stored sample of random long-only portfolios per run date (schema portfolio). A view. -#}
{{ config(materialized='view') }}

with

sample as (

    select * from {{ source('portfolio', 'monte_carlo') }}

),

final as (

    select
        run_date,
        sample_index,
        expected_return,
        volatility,
        sharpe
    from sample

)

select * from final
