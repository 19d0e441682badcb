{#- Price forecasts written by crypto_ml.forecasting (schema ml). A view: a prediction refresh is
    visible here at once, without a dbt run. -#}
{{ config(materialized='view') }}

with

predictions as (

    select * from {{ source('ml', 'price_predictions') }}

),

final as (

    select
        symbol,
        as_of_date,
        horizon_days,
        target_date,
        model,
        point,
        lower_80,
        upper_80,
        lower_95,
        upper_95,
        model_version,
        run_id,
        is_champion,
        created_at
    from predictions

)

select * from final
