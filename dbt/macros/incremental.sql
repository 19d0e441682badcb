{#- The incremental watermark of a silver model: the ingestion horizon it recorded at its last
    build (macros/incremental_horizon.sql); upstream rows stamped at or after it are new. Models
    built before horizons existed fall back once to the old rule: rows after the newest
    `_last_ingested_at` already in the model, or after now less var('ingestion_lag_tolerance') if
    that is earlier (timestamps have microsecond resolution: `>= x + 1 µs` is `> x`). -#}
{% macro ingestion_watermark(relation) -%}
    {{ ingestion_horizon_or(
        "select least(coalesce(max(_last_ingested_at), '-infinity'::timestamptz)"
        ~ " + interval '1 microsecond', now() - interval '"
        ~ var('ingestion_lag_tolerance') ~ "') from " ~ relation
    ) }}
{%- endmacro %}

{#- Per (symbol, interval): the earliest candle at or after which `upstream` has rows at or after
    this model's watermark. Everything from that candle on is recomputed; rows before it are
    final, because every silver value depends only on its own and earlier candles. -#}
{% macro changed_partitions(upstream, timestamp_column='"timestamp"', ingested_column='_last_ingested_at') -%}
    select
        symbol,
        interval,
        min({{ timestamp_column }}) as changed_from
    from {{ upstream }}
    where {{ ingested_column }} >= {{ ingestion_watermark(this) }}
    group by symbol, interval
{%- endmacro %}

{#- The distinct values of `column` in `relation`, where an index of the relation leads with that
    column: a walk down the index, one probe per value, instead of reading every row to find a
    few dozen values. PostgreSQL answers min() from an index on a plain table only (not through
    a view's CTEs), so pass a table or a source. -#}
{% macro distinct_leading_values(relation, column) -%}
    with recursive walk as (
        select min({{ column }}) as value
        from {{ relation }}
        union all
        select (
            select min(next_row.{{ column }})
            from {{ relation }} as next_row
            where next_row.{{ column }} > walk.value
        )
        from walk
        where walk.value is not null
    )
    select value as {{ column }} from walk where value is not null
{%- endmacro %}
