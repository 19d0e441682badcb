{#-
    Freshness per source, dataset and interval, from the ingestion audit: how far each feed's
    data reaches, when it last landed, and whether its newest batch failed. A view, so age_hours
    and the status are as of the query, not as of the last dbt run (a stopped pipeline must look
    stale, not frozen at "fresh"). Thresholds are those of bronze's dbt source freshness: late
    after var dashboard_late_after_hours (6), stale after var dashboard_stale_after_hours (24),
    counted beyond one candle interval: only closed candles are fetched, so a healthy daily feed
    is up to a day behind (overdue_hours = age_hours - the interval).
-#}
{{ config(materialized='view') }}

{%- set late_after_hours = var('dashboard_late_after_hours', 6) %}
{%- set stale_after_hours = var('dashboard_stale_after_hours', 24) %}

with

batches as (

    select
        source_api,
        dataset,
        coalesce(interval, '') as interval,
        status,
        window_end,
        started_at,
        finished_at,
        rows_inserted,
        rows_quarantined,
        error
    from {{ ref('stg_bronze__ingestion_audit') }}

),

newest_batch as (

    select distinct on (source_api, dataset, interval)
        source_api,
        dataset,
        interval,
        status as last_status,
        started_at as last_batch_at,
        error as last_error
    from batches
    order by source_api, dataset, interval, started_at desc

),

totals as (

    select
        source_api,
        dataset,
        interval,
        max(window_end) filter (where status in ('succeeded', 'partial')) as fetched_through,
        max(finished_at) filter (where status in ('succeeded', 'partial')) as last_success_at,
        count(*) filter (where started_at > now() - interval '24 hours') as batches_24h,
        count(*) filter (
            where started_at > now() - interval '24 hours' and status = 'failed'
        ) as failed_batches_24h,
        coalesce(
            sum(rows_inserted) filter (where started_at > now() - interval '24 hours'), 0
        ) as rows_inserted_24h,
        coalesce(
            sum(rows_quarantined) filter (where started_at > now() - interval '24 hours'), 0
        ) as rows_quarantined_24h,
        count(*) as batches_total
    from batches
    group by source_api, dataset, interval

),

final as (

    select
        totals.source_api,
        totals.dataset,
        nullif(totals.interval, '') as interval,
        totals.fetched_through,
        totals.last_success_at,
        newest_batch.last_batch_at,
        newest_batch.last_status,
        newest_batch.last_error,
        overdue.age_hours,
        overdue.overdue_hours,
        case
            when newest_batch.last_status = 'failed' then 'failing'
            when totals.fetched_through is null then 'no_data'
            when overdue.overdue_hours > {{ stale_after_hours }} then 'stale'
            when overdue.overdue_hours > {{ late_after_hours }} then 'late'
            else 'fresh'
        end as freshness_status,
        totals.batches_24h,
        totals.failed_batches_24h,
        totals.rows_inserted_24h,
        totals.rows_quarantined_24h,
        totals.batches_total,
        {{ late_after_hours }}::double precision as late_after_hours,
        {{ stale_after_hours }}::double precision as stale_after_hours,
        now() as measured_at
    from totals
    inner join newest_batch
        on totals.source_api = newest_batch.source_api
        and totals.dataset = newest_batch.dataset
        and totals.interval = newest_batch.interval
    cross join lateral (
        select
            extract(epoch from now() - totals.fetched_through)::double precision / 3600
                as age_hours,
            (
                extract(epoch from now() - totals.fetched_through)
                - coalesce({{ interval_seconds('totals.interval') }}, 0)
            )::double precision / 3600 as overdue_hours
    ) as overdue

)

select * from final
