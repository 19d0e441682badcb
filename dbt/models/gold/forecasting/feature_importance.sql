{#- Permutation feature importance of the gradient-boosting model (schema ml). -#}
{{ config(materialized='view') }}

with

importance as (

    select * from {{ source('ml', 'feature_importance') }}

),

final as (

    select
        as_of_date,
        model,
        horizon_days,
        feature,
        importance_mean,
        importance_std,
        n_repeats,
        scoring,
        run_id,
        computed_at
    from importance

)

select * from final
