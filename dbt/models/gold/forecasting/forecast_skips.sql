{#- Tokens a model did not train or forecast, and why (schema ml.model_skips). -#}
{{ config(materialized='view') }}

with

skips as (

    select * from {{ source('ml', 'model_skips') }}

),

final as (

    select
        as_of_date,
        model,
        symbol,
        stage,
        reason,
        logged_at
    from skips

)

select * from final
