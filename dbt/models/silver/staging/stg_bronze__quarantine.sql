-- Rows rejected by ingestion validation, with the reason.
with

source as (

    select * from {{ source('bronze', 'quarantine') }}

),

renamed as (

    select
        quarantine_id,
        _batch_id,
        lower(source_api) as source_api,
        dataset,
        upper(symbol) as symbol,
        reason,
        row_data,
        raw_payload_path,
        quarantined_at
    from source

),

final as (

    select * from renamed

)

select * from final
