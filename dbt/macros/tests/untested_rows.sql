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
        `_ingested_at > <tested_through> - var('ingestion_lag_tolerance')` (a bronze load stamps
        its rows with its start time and may commit later; the models take the same slack),
      tested_through being read from <target schema>.dbt_test_watermarks by the test query;
    - the on-run-end hook `record_tested_rows` sets a relation's tested_through to this
      invocation's run start when every placeholder test of that relation ran and passed (or only
      warned).
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
{% endmacro %}

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
    {%- set predicate -%}
        {{ column }} > {{ target.schema }}.dbt_tested_through('{{ relation.schema }}.{{ relation.identifier }}')
        {%- if column == '_ingested_at' %} - interval '{{ var("ingestion_lag_tolerance") }}'{% endif %}
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
    {#- tested relation (model, or source for source tests) -> its placeholder tests -#}
    {%- set tests_of = {} -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'test' and has_untested_rows_placeholder(node.config.where) -%}
            {%- set parent = node.attached_node or node.depends_on.nodes[0] -%}
            {%- if parent not in tests_of -%}
                {%- do tests_of.update({parent: []}) -%}
            {%- endif -%}
            {%- do tests_of[parent].append(node.unique_id) -%}
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
            {%- do tested.append(relation.schema ~ '.' ~ (relation.alias or relation.identifier)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if tested | length == 0 -%}
        {{ return('') }}
    {%- endif -%}
    insert into {{ test_watermarks_relation() }} (relation_name, tested_through, invocation_id)
    values
    {%- for name in tested %}
        ('{{ name }}', '{{ run_started_at }}'::timestamptz, '{{ invocation_id }}'){{ ',' if not loop.last }}
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

{#- post-hook of the models with `_built_at`: give a fresh or rebuilt table statistics on it
    (autovacuum may not have analysed it yet). With them the planner estimates the scoped tests'
    `_built_at > watermark` from the index and reads a handful of rows; without, it assumes a
    third of the table matches and plans parallel scans that cost more than the rows they find.
    Later incremental runs skip it: values past the histogram are estimated from the index. -#}
{% macro analyze_built_at_once() -%}
    do $analyze$
    begin
        if not exists (
            select 1 from pg_stats
            where schemaname = '{{ this.schema }}'
                and tablename = '{{ this.identifier }}'
                and attname = '_built_at'
        ) then
            analyze {{ this }} (_built_at);
        end if;
    end
    $analyze$
{%- endmacro %}
