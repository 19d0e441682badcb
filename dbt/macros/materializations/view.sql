{#-
    Views are replaced in place: `create or replace view`, which keeps every view that reads
    this one, in any schema.

    Why: dbt's own view materialization renames the old view away and drops it with CASCADE,
    which drops every view built on it (dbt-core #2185, closed as won't fix). Each layer is its
    own `dbt build`, so a silver build recreating its staging views dropped gold's views over
    them (the data-health views, gold.live_candles) until gold's build, or the alert DAG's,
    created them again: the dashboard saw "relation does not exist" for that while. Replacing
    in place is also one statement instead of create, two renames and a drop.

    PostgreSQL replaces a view in place when the new query keeps the old columns (same names and
    types, in the same order; new columns may follow them). When a change of the SQL removes,
    renames or retypes a column it refuses (SQLSTATE 42P16, invalid_table_definition): the view
    is then dropped with CASCADE and created anew, exactly what dbt did every time, and the
    views built on it come back with their own builds. On a first build, over a table of the
    same name, or with --full-refresh, dbt's own materialization runs unchanged.
-#}
{% materialization view, adapter='postgres' %}

    {%- set existing_relation = load_cached_relation(this) -%}
    {%- if existing_relation is none or not existing_relation.is_view or should_full_refresh() -%}
        {{ return(dbt.materialization_view_default()) }}
    {%- endif -%}

    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set grant_config = config.get('grants') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    -- `BEGIN` happens here:
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% call statement('main') -%}
        {{ replace_view_keeping_dependents(target_relation, sql) }}
    {%- endcall %}

    {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
    {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
    {% do persist_docs(target_relation, model) %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}


{#- One statement: replace in place, else (a column removed, renamed or retyped) drop with
    CASCADE and create, as dbt's own materialization always does. The contract check, when the
    model enforces one, runs once, before the statement. -#}
{% macro replace_view_keeping_dependents(relation, sql) -%}
    {%- set contract_config = config.get('contract') -%}
    {%- if contract_config.enforced -%}
        {{ get_assert_columns_equivalent(sql) }}
    {%- endif %}
    do $replace_view$
    begin
        create or replace view {{ relation }} as (
            {{ sql }}
        );
    exception when invalid_table_definition then
        raise notice '% cannot be replaced in place (%): dropped with the views built on it, which their own builds create again', '{{ relation }}', sqlerrm;
        drop view {{ relation }} cascade;
        create view {{ relation }} as (
            {{ sql }}
        );
    end
    $replace_view$
{%- endmacro %}
