{#-
    Quarantined rows counted per source, dataset and kind of reason. A reason names the values
    that broke a rule ("close -1.0 is not positive"), so counting raw reasons would give one line
    per bad value; the kind replaces numbers, timestamps and quoted values by '#'
    ("close # is not positive"), and example_reason keeps the newest reason as written.
-#}
{{ config(materialized='view') }}

with

quarantined as (

    select
        source_api,
        dataset,
        symbol,
        _batch_id,
        reason,
        quarantined_at,
        regexp_replace(
            regexp_replace(reason, '''[^'']*''', '#', 'g'),
            '-?\d[\w:.+\-]*',
            '#',
            'g'
        ) as reason_kind
    from {{ ref('stg_bronze__quarantine') }}

),

final as (

    select
        source_api,
        dataset,
        reason_kind,
        count(*) as quarantined_rows,
        count(distinct _batch_id) as batches,
        string_agg(distinct symbol, ',' order by symbol) as symbols,
        min(quarantined_at) as first_quarantined_at,
        max(quarantined_at) as last_quarantined_at,
        (array_agg(reason order by quarantined_at desc))[1] as example_reason
    from quarantined
    group by source_api, dataset, reason_kind

)

select * from final
