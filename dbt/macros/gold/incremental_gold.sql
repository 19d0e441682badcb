{#- Incremental bookkeeping shared by the gold models that grow by day.

    The watermark is the ingestion horizon this table recorded at its last build
    (macros/incremental_horizon.sql): inputs stamped at or after it are new. Tables built before
    horizons existed fall back once to rows after the newest `_source_ingested_at` already here,
    less var('ingestion_lag_tolerance') (`>= x + 1 µs` is `> x` at microsecond resolution). -#}
{% macro gold_ingestion_watermark() -%}
    select
        {{ ingestion_horizon_or(
            "select coalesce(max(_source_ingested_at), '-infinity'::timestamptz) - interval '"
            ~ var('ingestion_lag_tolerance', '1 hour') ~ "' + interval '1 microsecond' from " ~ this
        ) }} as ingested_at
{%- endmacro %}

{#- The first day of `daily_cte` holding rows at or after the `watermark` CTE: everything from
    it on is recomputed, earlier days are final. -#}
{% macro gold_recompute_from(daily_cte) -%}
    select min({{ daily_cte }}.date) as from_date
    from {{ daily_cte }}
    cross join watermark
    where {{ daily_cte }}._source_ingested_at >= watermark.ingested_at
{%- endmacro %}
