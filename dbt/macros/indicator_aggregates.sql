{#-
    Database functions the indicator models use, created before every dbt invocation
    (on-run-start) so a fresh warehouse works on the first run. Idempotent; an advisory lock
    serialises two dbt processes starting at once on the same database.

    silver.ema(value, alpha, seed): exponential moving average as an aggregate, used as a window
      function over `rows between unbounded preceding and current row`. It is pandas'
      `ewm(alpha=alpha, adjust=False)` recursion, the one the `ta` library uses:
        s_0 = value_0,  s_t = ((1 - alpha) * s_(t-1) + alpha * value_t) / ((1 - alpha) + alpha)
      Null values leave the state unchanged (leading nulls: the recursion starts at the first
      non-null value, as pandas does). `seed` (the stored state of the candle before the first
      one aggregated) continues a recursion exactly, for incremental runs; null starts afresh.
      One O(n) pass per partition, unlike a recursive CTE.

    silver.robust_deviation(x, vals): |x - median(vals)| / MAD(vals), the robust z-score the
      outlier flag uses (0 when x equals the median, +infinity when MAD is 0 and x differs,
      null when x is null or vals is empty). Median as pandas: mean of the two middle values.
-#}
{% macro create_indicator_aggregates() %}
    {%- set schema = 'silver' -%}
    select pg_advisory_xact_lock(7120394);
    create schema if not exists {{ schema }};

    create or replace function {{ schema }}.ema_step(
        state double precision, value double precision, alpha double precision, seed double precision
    ) returns double precision
    language plpgsql immutable parallel safe as $fn$
    declare
        prior double precision := coalesce(state, seed);
    begin
        if value is null then
            return state;
        end if;
        if prior is null or prior = value then
            return value;
        end if;
        return ((1 - alpha) * prior + alpha * value) / ((1 - alpha) + alpha);
    end;
    $fn$;

    create or replace aggregate {{ schema }}.ema(double precision, double precision, double precision) (
        sfunc = {{ schema }}.ema_step,
        stype = double precision,
        parallel = safe
    );

    create or replace function {{ schema }}.robust_deviation(
        x double precision, vals double precision[]
    ) returns double precision
    language sql immutable parallel safe as $fn$
        with med as (
            select percentile_cont(0.5) within group (order by v) as m
            from unnest(vals) as v
        ),
        mad as (
            select percentile_cont(0.5) within group (order by abs(v - med.m)) as d
            from unnest(vals) as v cross join med
        )
        select case
            when x is null or med.m is null then null
            when x = med.m then 0
            when mad.d = 0 then 'infinity'::double precision
            else abs(x - med.m) / mad.d
        end
        from med cross join mad
    $fn$;
{% endmacro %}
