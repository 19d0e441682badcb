{#-
    Every ingestion batch as the audit recorded it (the data-health page lists the recent ones):
    what was asked, what arrived, what landed or was quarantined, and why a batch failed. A view
    over the staging model, so a batch is listed the moment its transaction commits; the lake
    paths stay in bronze (they are file locations, not something a reader of gold needs).
-#}
{{ config(materialized='view') }}

with

audit as (

    select * from {{ ref('stg_bronze__ingestion_audit') }}

),

final as (

    select
        batch_id,
        source_api,
        dataset,
        interval,
        array_to_string(symbols, ',') as symbols,
        cardinality(symbols) as symbol_count,
        window_start,
        window_end,
        status,
        rows_fetched,
        rows_inserted,
        rows_duplicate,
        rows_quarantined,
        error,
        started_at,
        finished_at,
        duration_seconds
    from audit

)

select * from final
