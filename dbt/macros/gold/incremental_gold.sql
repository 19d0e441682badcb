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

{#- The first day of `daily_cte` holding rows at or after the `watermark` CTE, or of a bronze
    candle corrected or deleted since (macros/bronze_changes.sql: a deleted day leaves no row in
    `daily_cte` to mark it): everything from it on is recomputed, earlier days are final. -#}
{% macro gold_recompute_from(daily_cte) -%}
    select min(changed.date) as from_date
    from (
        select {{ daily_cte }}.date
        from {{ daily_cte }}
        cross join watermark
        where {{ daily_cte }}._source_ingested_at >= watermark.ingested_at
        union all
        select changed_candles.date
        from ({{ changed_candle_days() }}) as changed_candles
    ) as changed
{%- endmacro %}
