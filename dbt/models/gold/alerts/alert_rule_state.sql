{#- The current state of every (rule, subject) the alert engine evaluated (schema alerts). -#}
{{ config(materialized='view') }}

with

state as (

    select * from {{ source('alerts', 'rule_state') }}

),

final as (

    select
        rule_id,
        subject,
        rule_type,
        status,
        since,
        evaluated_at,
        observed_at,
        value,
        threshold,
        message,
        evaluated_by,
        open_alert_id,
        last_notified_at
    from state

)

select * from final
