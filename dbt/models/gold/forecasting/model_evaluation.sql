{#- Walk-forward backtest metrics of every model (schema ml). Fold 0 pools all folds. -#}
{{ config(materialized='view') }}

with

evaluation as (

    select * from {{ source('ml', 'model_evaluation') }}

),

final as (

    select
        as_of_date,
        model,
        symbol,
        horizon_days,
        fold,
        fold_cutoff,
        n_points,
        mae,
        rmse,
        mape,
        mase,
        directional_accuracy,
        coverage_80,
        coverage_95,
        width_80,
        width_95,
        interval_score_80,
        interval_score_95,
        pinball,
        qlike,
        run_id,
        evaluated_at
    from evaluation

)

select * from final
