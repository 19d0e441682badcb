{#- Incremental bookkeeping shared by the gold models that grow by day.

    The watermark is the newest upstream ingestion time a gold table already reflects
    (`_source_ingested_at`), less var('ingestion_lag_tolerance'): a long bronze load stamps its
    rows with its start time and may commit after a run has passed that stamp. -#}
{% macro gold_ingestion_watermark() -%}
    select
        coalesce(max(_source_ingested_at), '-infinity'::timestamptz)
            - interval '{{ var("ingestion_lag_tolerance", "1 hour") }}' as ingested_at
    from {{ this }}
{%- endmacro %}

{#- The first day of `daily_cte` holding rows newer than the `watermark` CTE: everything from it
    on is recomputed, earlier days are final. -#}
{% macro gold_recompute_from(daily_cte) -%}
    select min({{ daily_cte }}.date) as from_date
    from {{ daily_cte }}
    cross join watermark
    where {{ daily_cte }}._source_ingested_at > watermark.ingested_at
{%- endmacro %}
