{#- Gold-only generic test: a long-format matrix is symmetric, value(a, b) = value(b, a) exactly,
    within each group of `partition_by` columns, and every off-diagonal cell has its mirror.
    Fails with the cells whose mirror is missing or different. -#}
{% test symmetric_matrix(model, row_column, column_column, value_column, partition_by=[]) %}
    {%- set keys = partition_by | list %}

    with

    cells as (

        select
            {% for key in keys %}{{ key }}, {% endfor %}
            {{ row_column }} as row_key,
            {{ column_column }} as column_key,
            {{ value_column }} as cell_value
        from {{ model }}

    ),

    validation_errors as (

        select cells.*
        from cells
        left join cells as mirror
            on cells.row_key = mirror.column_key
            and cells.column_key = mirror.row_key
            {% for key in keys %}and cells.{{ key }} = mirror.{{ key }}
            {% endfor %}
        where mirror.row_key is null
            or cells.cell_value is distinct from mirror.cell_value

    )

    select * from validation_errors
{% endtest %}
