{#-
    dbt test results kept in the warehouse, for the data-health page (gold.dbt_test_results).

    dbt writes a test's outcome only to target/run_results.json, which is overwritten by the next
    invocation and lives on whichever machine ran it (an Airflow worker). These hooks keep every
    invocation's data-test and unit-test results in <target schema>.dbt_test_results instead
    (bookkeeping beside dbt_test_watermarks, not data), so the dashboard can show the latest
    outcome of every test however the builds are split into tasks. History older than var
    dbt_test_results_keep_days (30) is deleted by the same hook.
-#}

{% macro test_results_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema=target.schema, identifier='dbt_test_results')) }}
{%- endmacro %}

{#- on-run-start: the table (idempotent; the advisory lock serialises dbt processes starting at once). -#}
{% macro create_test_results() %}
    select pg_advisory_xact_lock(7120395);
    create schema if not exists {{ target.schema }};
    create table if not exists {{ test_results_relation() }} (
        invocation_id text not null,
        run_started_at timestamptz not null,
        unique_id text not null,
        resource_type text not null,
        test_type text not null,
        tested_node text,
        column_name text,
        status text not null,
        failures bigint,
        message text,
        execution_seconds double precision,
        recorded_at timestamptz not null default now(),
        primary key (invocation_id, unique_id)
    );
    create index if not exists dbt_test_results_latest
        on {{ test_results_relation() }} (unique_id, run_started_at desc);
    comment on table {{ test_results_relation() }} is
        'Outcome of every dbt data test and unit test per invocation (dbt/macros/dashboard/test_results.sql).';
{% endmacro %}

{#- A text literal for any value (quotes doubled; none -> null). -#}
{% macro _test_results_literal(value) -%}
    {%- if value is none -%}null{%- else -%}'{{ (value | string) | replace("'", "''") }}'{%- endif -%}
{%- endmacro %}

{#- on-run-end: one row per data test and unit test this invocation ran, then the pruning. -#}
{% macro record_test_results(results) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set rows = [] -%}
    {%- for result in results -%}
        {%- set node = result.node -%}
        {%- if node.resource_type in ('test', 'unit_test') -%}
            {%- if node.resource_type == 'unit_test' -%}
                {%- set test_type = 'unit_test' -%}
                {%- set tested = node.model if node.model is defined else none -%}
            {%- else -%}
                {%- set metadata = node.test_metadata if node.test_metadata is defined else none -%}
                {%- set test_type = metadata.name if metadata else 'singular' -%}
                {%- set parent_id = node.attached_node or (node.depends_on.nodes[0] if node.depends_on.nodes else none) -%}
                {%- set parent = (graph.nodes.get(parent_id) or graph.sources.get(parent_id)) if parent_id else none -%}
                {%- set tested = (parent.name if parent else parent_id) -%}
            {%- endif -%}
            {%- do rows.append(
                "(" ~ _test_results_literal(invocation_id) ~ ", " ~ _test_results_literal(run_started_at) ~ "::timestamptz, "
                ~ _test_results_literal(node.unique_id) ~ ", " ~ _test_results_literal(node.resource_type) ~ ", "
                ~ _test_results_literal(test_type) ~ ", " ~ _test_results_literal(tested) ~ ", "
                ~ _test_results_literal(node.column_name if node.column_name is defined else none) ~ ", "
                ~ _test_results_literal(result.status) ~ ", "
                ~ (result.failures if result.failures is not none else 'null') ~ ", "
                ~ _test_results_literal(result.message) ~ ", "
                ~ (result.execution_time if result.execution_time is not none else 'null') ~ ")"
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if rows | length > 0 %}
    insert into {{ test_results_relation() }}
        (invocation_id, run_started_at, unique_id, resource_type, test_type, tested_node,
         column_name, status, failures, message, execution_seconds)
    values
        {{ rows | join(',\n        ') }}
    on conflict (invocation_id, unique_id) do update
    set status = excluded.status,
        failures = excluded.failures,
        message = excluded.message,
        execution_seconds = excluded.execution_seconds,
        recorded_at = now();
    {%- endif %}
    delete from {{ test_results_relation() }}
    where run_started_at < now() - interval '{{ var("dbt_test_results_keep_days", 30) | int }} days'
{% endmacro %}
