{#- Volatility forecasts written by crypto_ml.forecasting (schema ml): GARCH(1,1) and the
    rolling 30-day baseline, annualised with 365 days. A view: visible at once. -#}
{{ config(materialized='view') }}

with

forecasts as (

    select * from {{ source('ml', 'volatility_forecasts') }}

),

final as (

    select
        symbol,
        as_of_date,
        horizon_days,
        target_date,
        model,
        volatility_annualised,
        variance_h,
        model_version,
        run_id,
        created_at
    from forecasts

)

select * from final
