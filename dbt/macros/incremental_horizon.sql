{#-
    The ingestion horizon: the incremental watermark of the silver and gold models, exact instead
    of "the newest ingestion time seen, less an hour of slack".

    A bronze row is stamped `_ingested_at` = the start of the transaction that loaded it (the
    column default now()), and a long load can commit after a build has already read bronze. So
    "rows newer than the newest `_ingested_at` I have seen" can miss a row, and the old remedy,
    re-reading every row ingested within var('ingestion_lag_tolerance') of the newest one, made
    each build after a large load (a backfill, `make demo`) recompute that whole load again.

    The horizon of a build is a time H such that the build has seen every bronze row stamped
    before H. Just before an incremental model's query takes its snapshot, the pre-hook
    `set_ingestion_horizon` computes
        H = the earliest of: now; the start of every other open transaction on this database (a
            load in flight will stamp its rows with it; a session whose start this role may not
            see counts as now - ingestion_lag_tolerance); the recorded horizon of every
            incremental model the model reads (gold is only as current as the silver it reads),
    and the post-hook `record_ingestion_horizon` stores it for the model in
    <target schema>.dbt_ingestion_horizons, in the same transaction as the model's rows. The next
    build of the model treats upstream rows stamped at or after that H as new: a load that
    committed after the build read bronze started at or after H, or was open at the time and so
    pulled H back to its start. Nothing is read twice unless a transaction was open meanwhile.

    Models built before the horizon existed have no row yet: their first build falls back to the
    old rule once (`fallback_sql`), and records a horizon from then on.
-#}

{% macro ingestion_horizons_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier='dbt_ingestion_horizons')) }}
{%- endmacro %}

{#- The key a model's horizon is stored under: schema.identifier as built. -#}
{% macro ingestion_horizon_key(schema, identifier) -%}
    {{ return(schema ~ '.' ~ identifier) }}
{%- endmacro %}

{#- on-run-start: the bookkeeping table (idempotent). -#}
{% macro create_ingestion_horizons() -%}
    create table if not exists {{ ingestion_horizons_relation() }} (
        relation    text primary key,
        horizon     timestamptz not null,
        recorded_at timestamptz not null default now()
    )
{%- endmacro %}

{#- The recorded horizon of a model (a scalar subquery), null when it has none. -#}
{% macro recorded_ingestion_horizon(schema, identifier) -%}
    (
        select horizon from {{ ingestion_horizons_relation() }}
        where relation = '{{ ingestion_horizon_key(schema, identifier) }}'
    )
{%- endmacro %}

{#- Pre-hook of every incremental model: this build's horizon, kept in a transaction-local
    setting until the post-hook records it. A no-op for other materialisations. -#}
{% macro set_ingestion_horizon() -%}
    {%- if config.get('materialized') != 'incremental' -%}
        select 1
    {%- else -%}
        {%- set upstream = [] -%}
        {%- for parent_id in model.depends_on.nodes -%}
            {%- set parent = graph.nodes.get(parent_id) -%}
            {%- if parent and parent.resource_type == 'model' and parent.config.materialized == 'incremental' -%}
                {%- do upstream.append(parent) -%}
            {%- endif -%}
        {%- endfor %}
        select set_config('crypto.ingestion_horizon', least(
            {{ open_transactions_horizon() }}
            {%- for parent in upstream %},
            coalesce({{ recorded_ingestion_horizon(parent.schema, parent.alias or parent.name) }}, '-infinity'::timestamptz)
            {%- endfor %}
        )::text, true)
    {%- endif -%}
{%- endmacro %}

{#- Every bronze row stamped before this time is visible now: the earliest of now and the start
    of every other open transaction on this database (a load in flight stamps its rows with its
    start; a session whose start this role may not see counts as now - ingestion_lag_tolerance).
    The models' horizons start from it, and so does the watermark of the data tests that read
    bronze by ingestion time (macros/tests/untested_rows.sql). -#}
{% macro open_transactions_horizon() -%}
    least(
        clock_timestamp(),
        (
            select min(coalesce(
                activity.xact_start,
                clock_timestamp() - interval '{{ var("ingestion_lag_tolerance") }}'
            ))
            from pg_stat_activity as activity
            where activity.datname = current_database()
                and activity.pid <> pg_backend_pid()
                and activity.backend_type = 'client backend'
                and activity.state is distinct from 'idle'
        )
    )
{%- endmacro %}

{#- Post-hook of every incremental model: store the horizon with the model's rows. -#}
{% macro record_ingestion_horizon() -%}
    {%- if config.get('materialized') != 'incremental' -%}
        select 1
    {%- else -%}
        insert into {{ ingestion_horizons_relation() }} (relation, horizon)
        values (
            '{{ ingestion_horizon_key(this.schema, this.identifier) }}',
            current_setting('crypto.ingestion_horizon')::timestamptz
        )
        on conflict (relation) do update
            set horizon = excluded.horizon, recorded_at = now()
    {%- endif -%}
{%- endmacro %}

{#- The watermark of an incremental model: upstream rows stamped at or after it are new. The
    recorded horizon; without one (built before horizons existed), the old rule once:
    `fallback_sql` is a scalar query over the model itself. A unit test gives the model's
    previous rows as a fixture, so it gets the rule over that fixture, never the warehouse's
    recorded horizon.

    When the model runs, the watermark is read first and written into its SQL as a literal.
    As a subquery it was a parameter the planner could not see, so it guessed that a third of
    the upstream table was new and planned hash joins over all of it (0.7 s per model for 38
    new candles at 10x history); with the value it estimates the few new rows from the index
    and probes the stored rows by key. The value cannot move before the model's own post-hook
    records the next one: it is this model's horizon from its previous build. Only an
    incremental build reads it (a first build or a full refresh has no table to read the
    fallback from, and uses no watermark); parsing and `dbt compile` keep the subquery. -#}
{% macro ingestion_horizon_or(fallback_sql) -%}
    {%- set watermark_sql -%}
        coalesce(
            {{ recorded_ingestion_horizon(this.schema, this.identifier) }},
            ({{ fallback_sql }})
        )
    {%- endset -%}
    {%- if model.resource_type == 'unit_test' -%}
        ({{ fallback_sql }})
    {%- elif execute and flags.WHICH in ('run', 'build') and is_incremental() -%}
        {%- set found = run_query('select (' ~ watermark_sql ~ ')::text') -%}
        {%- set value = found.columns[0].values()[0] if found is not none else none -%}
        '{{ value if value is not none else "-infinity" }}'::timestamptz
    {%- else -%}
        {{ watermark_sql }}
    {%- endif -%}
{%- endmacro %}
