{#- Champion drift checks (schema ml): is_drift rows are the alerts the alert engine's
    "model drift" rule reads. -#}
{{ config(materialized='view') }}

with

drift as (

    select * from {{ source('ml', 'model_drift') }}

),

final as (

    select
        as_of_date,
        model,
        model_version,
        horizon_days,
        window_start,
        window_end,
        n_points,
        realised_mae,
        validation_mae,
        error_ratio,
        threshold,
        is_drift,
        retraining_requested,
        checked_at
    from drift

)

select * from final
