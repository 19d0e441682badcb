{#-
    Corrections and deletions in bronze reaching incremental silver.

    The loader only inserts; a candle corrected or deleted in bronze afterwards (by hand, or a fix
    applied to a bad row) is logged by triggers in bronze.price_changes (migration
    0003_bronze_fixes.sql; an update also stamps the row `_ingested_at = now()`). Incremental
    silver treats each logged key like a newly landed row: its series is recomputed from that
    candle on, and `delete_changed_ranges` (a pre-hook) first removes the stored rows of that
    range, so a candle that no longer exists in bronze leaves silver too instead of staying there
    (with a failing test and no hint) until a full refresh.

    Every incremental model downstream does the same: technical_indicators and returns_and_risk
    with the same two macros over crypto_prices_cleaned; the day-keyed gold models
    (daily_crypto_metrics, rolling_correlation, category_metrics) recompute from the UTC day of
    each changed candle (`changed_candle_days`, also part of gold_recompute_from) after the
    `delete_changed_days` pre-hook removes their stored rows from that day on: a day left with
    no candle, and every row computed from it, leaves gold too. When nothing changed, the
    look-up is an index range scan of bronze.price_changes on `changed_at` that finds no row
    (0.2 ms with 200,000 changes logged).
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

{#- Gold: the UTC days of bronze candles corrected or deleted at or after this model's watermark
    (macros/gold/incremental_gold.sql), one row per (symbol, date). Only the intervals gold reads
    (a day or shorter). A deleted day leaves no row in silver or gold to mark it, so the gold
    models read the change log itself. -#}
{% macro changed_candle_days() -%}
    select distinct
        symbol,
        ("timestamp" at time zone 'UTC')::date as date
    from {{ ref('stg_bronze__price_changes') }}
    where changed_at >= ({{ gold_ingestion_watermark() }})
        and {{ interval_seconds('interval') }} <= 86400
{%- endmacro %}

{#- Pre-hook of an incremental gold model keyed by day: remove the stored rows from the first
    changed candle's day on (per symbol with `per_symbol`, for a model keyed by (symbol, date);
    otherwise for every key, for models whose rows mix symbols). The model recomputes from that
    day at the latest, so what still exists is inserted again and what no longer exists (a day
    with no candle left, a correlation window short of observations, a category day with no
    return) stays gone. A no-op on a full build. -#}
{% macro delete_changed_days(per_symbol=false) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stored
        using (
            select {% if per_symbol %}changed_days.symbol, {% endif %}min(changed_days.date) as from_date
            from ({{ changed_candle_days() }}) as changed_days
            {%- if per_symbol %}
            group by changed_days.symbol
            {%- endif %}
        ) as changed
        where stored.date >= changed.from_date
            {%- if per_symbol %}
            and stored.symbol = changed.symbol
            {%- endif %}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
