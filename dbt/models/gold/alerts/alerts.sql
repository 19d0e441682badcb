{#- Alert episodes with their state and the delivery state of each channel (schema alerts).
    A view: an alert is visible here the moment the engine commits it. -#}
{{ config(materialized='view') }}

with

events as (

    select * from {{ source('alerts', 'alert_events') }}

),

deliveries as (

    select * from {{ source('alerts', 'deliveries') }}

),

by_channel as (

    select
        alert_id,
        max(status) filter (where channel = 'email') as email_status,
        max(status) filter (where channel = 'webhook') as webhook_status,
        sum(attempts) as delivery_attempts,
        max(delivered_at) as last_delivered_at,
        max(next_attempt_at) filter (where status = 'pending') as next_delivery_attempt_at,
        string_agg(channel || ': ' || last_error, '; ' order by channel)
            filter (where last_error is not null) as last_delivery_error
    from deliveries
    group by alert_id

),

final as (

    select
        events.alert_id,
        events.rule_id,
        events.rule_type,
        events.subject,
        events.severity,
        case when events.resolved_at is null then 'firing' else 'resolved' end as status,
        events.message,
        events.value,
        events.threshold,
        events.observed_at,
        events.fired_at,
        events.resolved_at,
        extract(epoch from coalesce(events.resolved_at, now()) - events.fired_at) / 60.0
            as duration_minutes,
        events.resolved_value,
        events.resolution,
        events.evaluated_by,
        events.notified,
        events.suppressed_reason,
        by_channel.email_status,
        by_channel.webhook_status,
        coalesce(by_channel.delivery_attempts, 0) as delivery_attempts,
        by_channel.last_delivered_at,
        by_channel.next_delivery_attempt_at,
        by_channel.last_delivery_error,
        events.details
    from events
    left join by_channel on by_channel.alert_id = events.alert_id

)

select * from final
