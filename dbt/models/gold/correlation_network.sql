{#-
    Network view of correlation_matrix: per token and window, how tied it is to the rest of the
    universe (average correlation with its peers, and how many peers move with it strongly,
    |rho| >= var gold_strong_correlation).
-#}
{{
    config(
        materialized='table',
        indexes=[{'columns': ['symbol', 'window_days'], 'unique': true}],
    )
}}

{%- set strong = var('gold_strong_correlation', 0.7) %}

with

matrix as (

    select symbol_a, symbol_b, window_days, correlation, window_end_date
    from {{ ref('correlation_matrix') }}

),

tokens as (

    select distinct symbol_a as symbol, window_days, window_end_date
    from matrix

),

peers as (

    select symbol_a as symbol, symbol_b as peer, window_days, correlation
    from matrix
    where symbol_a <> symbol_b

),

network as (

    select
        tokens.symbol,
        tokens.window_days,
        tokens.window_end_date,
        count(peers.peer) as n_peers,
        avg(peers.correlation order by peers.peer) as avg_correlation,
        avg(abs(peers.correlation) order by peers.peer) as avg_abs_correlation,
        count(peers.peer) filter (where abs(peers.correlation) >= {{ strong }}) as n_strong_peers,
        max(peers.correlation) as max_correlation,
        (array_agg(peers.peer order by peers.correlation desc, peers.peer))[1]
            as most_correlated_peer
    from tokens
    left join peers
        on tokens.symbol = peers.symbol
        and tokens.window_days = peers.window_days
    group by tokens.symbol, tokens.window_days, tokens.window_end_date

),

final as (

    select
        symbol,
        window_days,
        n_peers,
        avg_correlation,
        avg_abs_correlation,
        n_strong_peers,
        case when n_peers > 0 then n_strong_peers::double precision / n_peers end
            as strong_peer_share,
        max_correlation,
        most_correlated_peer,
        window_end_date
    from network

)

select * from final
