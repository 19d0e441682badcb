{#-
    Incremental data tests. In scheduled builds (var incremental_tests = true) the row-level tests
    of the large, growing relations check only the rows that no passing test run has checked yet,
    instead of re-reading years of history on every run. Builds run by hand (the var's default,
    false) test every row.

    The mechanism is dbt's own `where` test config and its documented override point:
    - a test opts in with `config: {where: "__untested_rows__"}` (relations dbt builds, whose rows
      carry `_built_at`) or `config: {where: "__untested_ingested_rows__"}` (bronze sources and the
      staging views over them, whose rows carry bronze's `_ingested_at`). dbt renders `where` when
      it parses the YAML, so the placeholder is static text there;
    - at run time `get_where_subquery` below (the macro dbt calls to apply `where`) replaces it:
      by nothing (the whole relation) unless var incremental_tests is on, else by
        `_built_at > <tested_through>`, or
        `_ingested_at >= <tested_through>`,
      tested_through being read from <target schema>.dbt_test_watermarks by the test query;
    - the on-run-end hook `record_tested_rows` sets a relation's tested_through when every
      placeholder test of that relation ran and passed (or only warned): to this invocation's
      run start for `_built_at` (dbt stamps the rows it writes with it), and to this
      invocation's ingestion horizon for `_ingested_at`. A bronze load stamps its rows with its
      transaction's start and may commit after the tests read bronze; the horizon, taken by the
      on-run-start hook before any test reads, is the earliest of that moment and the start of
      every transaction then open (macros/incremental_horizon.sql, as the models' horizons), so
      every row stamped before it was visible to the tests. The rule used to be "since the last
      run start less an hour of slack", which re-read an entire large load (a backfill, `make
      demo`) on every build for an hour after it. Watermarks by ingestion time are kept under
      `<relation>#ingested`, so one written by the old rule is never taken for a horizon.
    `_built_at` is the run start (dbt's run_started_at) of the invocation that last wrote the row:
    every row an incremental run inserts or rewrites gets a new one, and a full refresh gives all
    rows a new one, so a full build is always tested whole.

    Consequences: a run whose tests failed leaves the watermark where it was, so its rows are
    tested again by the next run and fail again until fixed (bad silver keeps gold stopped); a run
    without tests (dbt run) leaves its rows to the next tested run. Tests that need the whole
    relation (relationships, uniqueness not enforced by a unique index, small tables) carry no
    placeholder and always read everything. Assumes one dbt invocation at a time writes a given
    relation (the Airflow DAGs run with max_active_runs=1).
-#}

{% macro untested_rows_placeholders() -%}
    {{ return({'__untested_rows__': '_built_at', '__untested_ingested_rows__': '_ingested_at'}) }}
{%- endmacro %}

{#- Whether the `where` of a test carries a placeholder. -#}
{% macro has_untested_rows_placeholder(where) -%}
    {%- set found = namespace(any=false) -%}
    {%- for placeholder in untested_rows_placeholders() -%}
        {%- if where and placeholder in where -%}
            {%- set found.any = true -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(found.any) }}
{%- endmacro %}

{#- var incremental_tests, accepting true/false given as YAML booleans or as text. -#}
{% macro incremental_tests_enabled() -%}
    {%- set enabled = var('incremental_tests', false) -%}
    {%- if enabled is string -%}
        {%- set enabled = enabled | lower in ('true', '1', 'yes', 'on') -%}
    {%- endif -%}
    {{ return(enabled == true) }}
{%- endmacro %}

{#- The bookkeeping table, in the profile's schema (not silver/gold: it is not data). -#}
{% macro test_watermarks_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier='dbt_test_watermarks')) }}
{%- endmacro %}

{#- on-run-start: the watermark table and its reader (idempotent; the advisory lock serialises
    two dbt processes starting at once, as create_indicator_aggregates does). -#}
{% macro create_test_watermarks() %}
    select pg_advisory_xact_lock(7120394);
    create schema if not exists {{ target.schema }};
    create table if not exists {{ test_watermarks_relation() }} (
        relation_name text primary key,
        tested_through timestamptz not null,
        invocation_id text not null,
        recorded_at timestamptz not null default now()
    );
    comment on table {{ test_watermarks_relation() }} is
        'Per relation: run start of the last dbt invocation whose incremental data tests all passed (dbt/macros/tests/untested_rows.sql).';
    create or replace function {{ target.schema }}.dbt_tested_through(relation_name text)
    returns timestamptz
    language sql stable parallel unsafe as $fn$
        select coalesce(max(watermarks.tested_through), '-infinity'::timestamptz)
        from {{ test_watermarks_relation() }} as watermarks
        where watermarks.relation_name = dbt_tested_through.relation_name
    $fn$;
    -- this invocation's ingestion horizon, before any test reads (record_tested_rows uses it)
    create table if not exists {{ invocation_horizons_relation() }} (
        invocation_id text primary key,
        horizon timestamptz not null,
        recorded_at timestamptz not null default now()
    );
    comment on table {{ invocation_horizons_relation() }} is
        'Per dbt invocation: every bronze row stamped before horizon was visible when it started (dbt/macros/tests/untested_rows.sql).';
    insert into {{ invocation_horizons_relation() }} (invocation_id, horizon)
    values ('{{ invocation_id }}', {{ open_transactions_horizon() }})
    on conflict (invocation_id) do nothing;
    delete from {{ invocation_horizons_relation() }} where recorded_at < now() - interval '7 days';
{% endmacro %}

{#- The invocations' horizons, beside the watermarks. -#}
{% macro invocation_horizons_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier='dbt_invocation_horizons')) }}
{%- endmacro %}

{#- The key a relation's watermark is kept under: by `_ingested_at` apart (see the header). -#}
{% macro tested_rows_key(schema, identifier, column) -%}
    {{ return(schema ~ '.' ~ identifier ~ ('#ingested' if column == '_ingested_at' else '')) }}
{%- endmacro %}

{#- The predicate replacing `placeholder` for one tested relation (`true` when the var is off).
    The watermark comes from dbt_tested_through(), a STABLE function: the planner evaluates it
    while estimating (as it does now()), so it knows how few rows are newer and reads them
    through the index on the marker column, where a subquery would leave it guessing. It is
    declared PARALLEL UNSAFE on purpose: a scoped test reads a handful of rows, and starting
    parallel workers for it costs more than the query (measured: 5-17 ms against 0.1 ms).
    Compiling a test runs no query, and the compiled SQL shows the whole rule. -#}
{% macro untested_rows_filter(relation, placeholder) -%}
    {%- if not incremental_tests_enabled() -%}
        {{ return('true') }}
    {%- endif -%}
    {%- set column = untested_rows_placeholders()[placeholder] -%}
    {%- set key = tested_rows_key(relation.schema, relation.identifier, column) -%}
    {%- set predicate -%}
        {{ column }} {{ '>=' if column == '_ingested_at' else '>' }} {{ target.schema }}.dbt_tested_through('{{ key }}')
    {%- endset -%}
    {{ return(predicate) }}
{%- endmacro %}

{#- dbt's get_where_subquery (same output for any other `where`), plus the placeholders. A where
    that reduces to `true` returns the relation itself: the test SQL is then exactly dbt's. -#}
{% macro get_where_subquery(relation) -%}
    {%- set filter = namespace(where=config.get('where', '')) -%}
    {%- for placeholder in untested_rows_placeholders() -%}
        {%- if filter.where and placeholder in filter.where -%}
            {%- set filter.where = filter.where | replace(placeholder, untested_rows_filter(relation, placeholder)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set where = filter.where -%}
    {%- if where and where | trim != 'true' -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- on-run-end: for each relation whose placeholder tests all ran in this invocation and passed
    (or only warned), record this invocation's run start as its tested_through. A relation with
    one such test failed, errored, skipped or not selected keeps its watermark. -#}
{% macro record_tested_rows(results) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set status_of = {} -%}
    {%- for result in results -%}
        {%- do status_of.update({result.node.unique_id: result.status | string}) -%}
    {%- endfor -%}
    {#- tested relation (model, or source for source tests) -> its placeholder tests, and the
        column they scope by -#}
    {%- set tests_of = {} -%}
    {%- set column_of = {} -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'test' and has_untested_rows_placeholder(node.config.where) -%}
            {%- set parent = node.attached_node or node.depends_on.nodes[0] -%}
            {%- if parent not in tests_of -%}
                {%- do tests_of.update({parent: []}) -%}
            {%- endif -%}
            {%- do tests_of[parent].append(node.unique_id) -%}
            {%- if '__untested_ingested_rows__' in node.config.where -%}
                {%- do column_of.update({parent: '_ingested_at'}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set tested = [] -%}
    {%- for parent, test_ids in tests_of.items() -%}
        {%- set outcome = namespace(passed=true) -%}
        {%- for test_id in test_ids -%}
            {%- if status_of.get(test_id) not in ('pass', 'warn') -%}
                {%- set outcome.passed = false -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if outcome.passed -%}
            {%- set relation = graph.nodes.get(parent) or graph.sources.get(parent) -%}
            {%- set column = column_of.get(parent, '_built_at') -%}
            {%- do tested.append((
                tested_rows_key(relation.schema, relation.alias or relation.identifier, column),
                column
            )) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if tested | length == 0 -%}
        {{ return('') }}
    {%- endif -%}
    insert into {{ test_watermarks_relation() }} (relation_name, tested_through, invocation_id)
    values
    {%- for name, column in tested %}
        ('{{ name }}',
        {%- if column == '_ingested_at' %}
         coalesce(
             (select horizon from {{ invocation_horizons_relation() }} where invocation_id = '{{ invocation_id }}'),
             '-infinity'::timestamptz
         ),
        {%- else %}
         '{{ run_started_at }}'::timestamptz,
        {%- endif %}
         '{{ invocation_id }}'){{ ',' if not loop.last }}
    {%- endfor %}
    on conflict (relation_name) do update
    set tested_through = excluded.tested_through,
        invocation_id = excluded.invocation_id,
        recorded_at = now()
{% endmacro %}

{#- The `_built_at` of every row a model writes in this invocation (see the header). -#}
{% macro built_at() -%}
    '{{ run_started_at }}'::timestamptz
{%- endmacro %}

{#- post-hook of the models with `_built_at`: give a fresh or rebuilt table statistics on the
    columns later builds filter it by (autovacuum may not have analysed it yet): `_built_at`
    (the scoped tests) and its ingestion time, `_last_ingested_at` or `_source_ingested_at` (the
    incremental models built on it). With them the planner estimates `column > watermark` from
    the index and probes a handful of rows by key; without, it assumes a third of the table
    matches and plans hash joins and parallel scans over all of it (0.5 s a model at 10x
    history for 38 new candles). Later incremental runs skip it: values past the histogram are
    estimated from the index. -#}
{% macro analyze_watermark_columns_once() -%}
    do $analyze$
    declare
        missing text;
    begin
        select string_agg(quote_ident(attribute.attname), ', ')
        into missing
        from pg_attribute as attribute
        where attribute.attrelid = '{{ this }}'::regclass
            and attribute.attname in ('_built_at', '_last_ingested_at', '_source_ingested_at')
            and not attribute.attisdropped
            and not exists (
                select 1 from pg_stats as stats
                where stats.schemaname = '{{ this.schema }}'
                    and stats.tablename = '{{ this.identifier }}'
                    and stats.attname = attribute.attname
            );
        if missing is not null then
            execute format('analyze %s (%s)', '{{ this }}', missing);
        end if;
    end
    $analyze$
{%- endmacro %}
