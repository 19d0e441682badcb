{#- Decisions on the MLflow registry alias `champion` (schema ml), with their numbers. -#}
{{ config(materialized='view') }}

with

decisions as (

    select * from {{ source('ml', 'champion_decisions') }}

),

final as (

    select
        as_of_date,
        candidate_model,
        candidate_version,
        candidate_score,
        champion_model,
        champion_version,
        champion_score,
        naive_score,
        n_points,
        promoted,
        reason,
        run_id,
        decided_at
    from decisions

)

select * from final
