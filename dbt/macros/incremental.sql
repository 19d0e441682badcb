{#- The incremental watermark of a silver model: upstream rows ingested after the newest
    `_last_ingested_at` already in the model are new, and so are rows ingested within
    var('ingestion_lag_tolerance') of now (a load stamps rows with its start time, so a long one
    can commit after a run has passed its stamp; taking recent rows again is idempotent). -#}
{% macro ingestion_watermark(relation) -%}
    (
        select least(
            coalesce(max(_last_ingested_at), '-infinity'::timestamptz),
            now() - interval '{{ var("ingestion_lag_tolerance") }}'
        )
        from {{ relation }}
    )
{%- endmacro %}

{#- Per (symbol, interval): the earliest candle at or after which `upstream` has rows newer than
    this model's watermark. Everything from that candle on is recomputed; rows before it are
    final, because every silver value depends only on its own and earlier candles. -#}
{% macro changed_partitions(upstream, timestamp_column='"timestamp"', ingested_column='_last_ingested_at') -%}
    select
        symbol,
        interval,
        min({{ timestamp_column }}) as changed_from
    from {{ upstream }}
    where {{ ingested_column }} > {{ ingestion_watermark(this) }}
    group by symbol, interval
{%- endmacro %}
