{{ config(materialized='view') }}

-- The token universe for joins from silver and gold (category, stablecoin flag, status).
with

universe as (

    select * from {{ ref('stg_bronze__token_universe') }}

),

final as (

    select
        symbol,
        name,
        category,
        is_stablecoin,
        status
    from universe

)

select * from final
