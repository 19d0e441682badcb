{#- Same name, arguments and semantics as dbt_utils.accepted_range. Nulls pass (use not_null). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
    {%- if min_value is none and max_value is none -%}
        {{ exceptions.raise_compiler_error("accepted_range on " ~ column_name ~ ": give min_value, max_value or both") }}
    {%- endif %}

    with validation_errors as (
        select *
        from {{ model }}
        where 1 = 2
        {%- if min_value is not none %}
            or not ({{ column_name }} {{ ">=" if inclusive else ">" }} {{ min_value }})
        {%- endif %}
        {%- if max_value is not none %}
            or not ({{ column_name }} {{ "<=" if inclusive else "<" }} {{ max_value }})
        {%- endif %}
    )

    select * from validation_errors
{% endtest %}
