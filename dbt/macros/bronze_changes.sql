{#-
    Corrections and deletions in bronze reaching incremental silver.

    The loader only inserts; a candle corrected or deleted in bronze afterwards (by hand, or a fix
    applied to a bad row) is logged by triggers in bronze.price_changes (migration
    0003_bronze_fixes.sql; an update also stamps the row `_ingested_at = now()`). Incremental
    silver treats each logged key like a newly landed row: its series is recomputed from that
    candle on, and `delete_changed_ranges` (a pre-hook) first removes the stored rows of that
    range, so a candle that no longer exists in bronze leaves silver too instead of staying there
    (with a failing test and no hint) until a full refresh.
-#}

{#- Per (symbol, interval): the earliest candle at or after which `upstream` has rows stamped
    (`ingested_column`) at or after this model's watermark, or a bronze candle was corrected or
    deleted since. crypto_prices_cleaned reads bronze's staging view with `_ingested_at`; a model
    built on it can pass ref('crypto_prices_cleaned') and `_last_ingested_at` and add the
    `delete_changed_ranges` pre-hook, so a deleted candle leaves it too. -#}
{% macro changed_or_deleted_partitions(upstream, ingested_column='_last_ingested_at') -%}
    select symbol, interval, min(changed_from) as changed_from
    from (
        {{ changed_partitions(upstream, ingested_column=ingested_column) }}
        union all
        {{ changed_partitions(ref('stg_bronze__price_changes'), ingested_column='changed_at') }}
    ) as new_or_changed
    group by symbol, interval
{%- endmacro %}

{#- Pre-hook of an incremental model keyed by (symbol, interval, "timestamp"): remove the stored
    rows from each changed partition's first changed candle on; the model's query then inserts
    them again from bronze as it is now. Rows before that candle stay (they are the context the
    recomputation reads). A no-op on a full build. -#}
{% macro delete_changed_ranges(changed_sql) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stored
        using ({{ changed_sql }}) as changed
        where stored.symbol = changed.symbol
            and stored.interval = changed.interval
            and stored."timestamp" >= changed.changed_from
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
