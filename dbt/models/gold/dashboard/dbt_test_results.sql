{#-
    The latest outcome of every dbt data test and unit test, whichever invocation ran it last
    (a scheduled Airflow task, a build by hand), from the results the on-run-end hook keeps
    (macros/dashboard/test_results.sql). A view: a test's newest result shows at once.
-#}
{{ config(materialized='view') }}

with

results as (

    select * from {{ source('dbt_bookkeeping', 'dbt_test_results') }}

),

latest as (

    select distinct on (unique_id) *
    from results
    order by unique_id, run_started_at desc, recorded_at desc

),

final as (

    select
        unique_id,
        split_part(unique_id, '.', 3) as test_name,
        resource_type,
        test_type,
        tested_node,
        column_name,
        status,
        failures,
        message,
        execution_seconds,
        run_started_at as last_run_at,
        invocation_id
    from latest

)

select * from final
