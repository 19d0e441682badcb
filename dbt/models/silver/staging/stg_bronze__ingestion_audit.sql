-- One row per ingestion batch, with its duration.
with

source as (

    select * from {{ source('bronze', 'ingestion_audit') }}

),

renamed as (

    select
        batch_id,
        lower(source_api) as source_api,
        dataset,
        symbols,
        interval,
        window_start,
        window_end,
        rows_fetched,
        rows_inserted,
        rows_duplicate,
        rows_quarantined,
        status,
        error,
        lake_paths,
        started_at,
        finished_at,
        extract(epoch from finished_at - started_at)::double precision as duration_seconds
    from source

),

final as (

    select * from renamed

)

select * from final
