{#- Same name, arguments and semantics as dbt_utils.expression_is_true: rows where the
    expression is false fail (null passes, as in dbt_utils). On a column, the column name is
    prefixed to the expression. Filter rows with the test's `config: where:`. -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not ({{ column_name ~ ' ' if column_name is not none else '' }}{{ expression }})
{% endtest %}
