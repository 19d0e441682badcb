{#- A partial index on this model (dbt's `indexes` config has no `where`), created by a post-hook
    when the relation lacks it: once after a full build, a no-op on incremental runs. It is
    recognised by its comment, not its name, and named like dbt's own indexes (a hash with the
    time in it), because during a full refresh the previous table still holds its index until
    the build commits. -#}
{% macro ensure_partial_index(columns, predicate) -%}
    {%- set label = 'partial index (' ~ columns | join(', ') ~ ') where ' ~ predicate -%}
    do $partial_index$
    declare
        index_name text := 'partial_' || md5('{{ this }}' || clock_timestamp()::text);
    begin
        if not exists (
            select 1
            from pg_index
            where indrelid = '{{ this }}'::regclass
                and obj_description(indexrelid, 'pg_class') = {{ dbt.string_literal(label) }}
        ) then
            execute format(
                'create index %I on {{ this }} ({{ columns | join(", ") }}) where {{ predicate }}',
                index_name
            );
            execute format(
                'comment on index %I.%I is %L',
                '{{ this.schema }}', index_name, {{ dbt.string_literal(label) }}
            );
        end if;
    end
    $partial_index$
{%- endmacro %}
