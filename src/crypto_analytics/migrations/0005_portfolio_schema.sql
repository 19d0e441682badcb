-- The `portfolio` schema: what crypto_ml.portfolio computes in Python, one run per run date.
-- dbt declares these tables as sources (dbt/models/gold/portfolio/_portfolio__sources.yml) and
-- exposes them as gold views (gold.portfolio_weights_optimized, gold.efficient_frontier,
-- gold.monte_carlo_portfolios, gold.portfolio_backtest, gold.portfolio_backtest_summary,
-- gold.rebalancing_recommendations). Every table hangs off portfolio.runs by run_date with
-- `on delete cascade`: recomputing a run's inputs deletes everything derived from the old ones,
-- and each step replaces its own rows for the run date in one transaction, so a rerun for the
-- same date leaves the same rows, never duplicates.

create schema if not exists portfolio;

-- One row per run date: the settings it ran with (exact, for audit) and how far it got.
create table if not exists portfolio.runs (
    run_date                 date primary key,
    window_start             date not null,
    window_end               date not null check (window_end >= window_start and window_end < run_date),
    return_kind              text not null check (return_kind in ('simple', 'log')),
    expected_returns_method  text not null check (expected_returns_method in ('mean', 'ema', 'forecast')),
    covariance_method        text not null check (covariance_method in ('sample', 'ledoit_wolf')),
    risk_free_rate           double precision not null,
    periods_per_year         integer not null check (periods_per_year > 0),
    observations             integer not null check (observations >= 0),
    dates_dropped            integer not null check (dates_dropped >= 0),
    settings                 jsonb not null,
    created_at               timestamptz not null default now(),
    estimated_at             timestamptz,
    simulated_at             timestamptz,
    optimised_at             timestamptz,
    backtested_at            timestamptz,
    report_path              text,
    reported_at              timestamptz,
    email_status             text check (email_status in ('sent', 'skipped', 'failed')),
    email_detail             text,
    emailed_at               timestamptz
);

-- Every token considered: eligible, or excluded with the reason.
create table if not exists portfolio.assets (
    run_date          date not null references portfolio.runs on delete cascade,
    symbol            text not null,
    category          text not null,
    is_stablecoin     boolean not null,
    is_eligible       boolean not null,
    observations      integer,
    exclusion_reason  text,
    primary key (run_date, symbol),
    check (is_eligible = (exclusion_reason is null))
);

-- The exact daily returns the estimates were made from (complete rows over the eligible tokens).
create table if not exists portfolio.run_returns (
    run_date  date not null references portfolio.runs on delete cascade,
    date      date not null,
    symbol    text not null,
    value     double precision not null,
    primary key (run_date, symbol, date)
);

-- Expected returns (annualised) and the covariance matrix (annualised, long format, both halves).
create table if not exists portfolio.expected_returns (
    run_date         date not null references portfolio.runs on delete cascade,
    symbol           text not null,
    expected_return  double precision not null,
    primary key (run_date, symbol)
);

create table if not exists portfolio.covariance (
    run_date    date not null references portfolio.runs on delete cascade,
    symbol_a    text not null,
    symbol_b    text not null,
    covariance  double precision not null,
    primary key (run_date, symbol_a, symbol_b),
    check (symbol_a <> symbol_b or covariance >= 0)
);

-- The Monte Carlo cloud: summary in monte_carlo_runs, a sample for display in monte_carlo.
create table if not exists portfolio.monte_carlo_runs (
    run_date          date primary key references portfolio.runs on delete cascade,
    portfolios        integer not null check (portfolios > 0),
    dirichlet_alpha   double precision not null check (dirichlet_alpha > 0),
    seed              bigint not null,
    best_sharpe       double precision,
    max_volatility    double precision not null
);

create table if not exists portfolio.monte_carlo (
    run_date         date not null references portfolio.runs on delete cascade,
    sample_index     integer not null check (sample_index >= 0),
    expected_return  double precision not null,
    volatility       double precision not null check (volatility >= 0),
    sharpe           double precision,
    primary key (run_date, sample_index)
);

-- Each strategy's portfolio and its risk metrics (VaR/CVaR: daily losses at var_confidence).
create table if not exists portfolio.strategies (
    run_date          date not null references portfolio.runs on delete cascade,
    strategy          text not null check (strategy in ('max_sharpe', 'min_volatility', 'hrp', 'equal_weight')),
    expected_return   double precision not null,
    volatility        double precision not null check (volatility >= 0),
    sharpe            double precision,
    sortino           double precision,
    max_drawdown      double precision not null check (max_drawdown between 0 and 1),
    var_confidence    double precision not null check (var_confidence > 0 and var_confidence < 1),
    var_historical    double precision not null,
    cvar_historical   double precision not null,
    var_monte_carlo   double precision,
    cvar_monte_carlo  double precision,
    is_fallback       boolean not null default false,
    note              text,
    primary key (run_date, strategy)
);

create table if not exists portfolio.weights (
    run_date  date not null,
    strategy  text not null,
    symbol    text not null,
    weight    double precision not null check (weight >= 0 and weight <= 1),
    primary key (run_date, strategy, symbol),
    foreign key (run_date, strategy) references portfolio.strategies on delete cascade
);

create table if not exists portfolio.frontier (
    run_date         date not null references portfolio.runs on delete cascade,
    point            integer not null check (point >= 0),
    target_return    double precision not null,
    expected_return  double precision not null,
    volatility       double precision not null check (volatility >= 0),
    sharpe           double precision,
    weights          jsonb not null,
    primary key (run_date, point)
);

-- The walk-forward backtest: daily equity per strategy, and its summary.
create table if not exists portfolio.backtest (
    run_date      date not null references portfolio.runs on delete cascade,
    strategy      text not null,
    date          date not null,
    equity        double precision not null check (equity >= 0),
    daily_return  double precision not null,
    turnover      double precision not null check (turnover >= 0),
    cost          double precision not null check (cost >= 0),
    drawdown      double precision not null check (drawdown between 0 and 1),
    rebalanced    boolean not null,
    stale_prices  integer not null check (stale_prices >= 0),
    primary key (run_date, strategy, date)
);

create table if not exists portfolio.backtest_metrics (
    run_date       date not null references portfolio.runs on delete cascade,
    strategy       text not null,
    start_date     date not null,
    end_date       date not null check (end_date >= start_date and end_date < run_date),
    days           integer not null check (days > 0),
    total_return   double precision not null,
    cagr           double precision not null,
    volatility     double precision not null check (volatility >= 0),
    sharpe         double precision,
    sortino        double precision,
    max_drawdown   double precision not null check (max_drawdown between 0 and 1),
    rebalances     integer not null check (rebalances >= 0),
    turnover       double precision not null check (turnover >= 0),
    costs          double precision not null check (costs >= 0),
    stale_days     integer not null check (stale_days >= 0),
    fallbacks      integer not null check (fallbacks >= 0),
    primary key (run_date, strategy)
);

-- The trade list for the user's holdings (config/holdings.yaml) against the target strategy.
create table if not exists portfolio.rebalancing (
    run_date         date not null references portfolio.runs on delete cascade,
    symbol           text not null,
    target_strategy  text not null,
    current_weight   double precision not null check (current_weight >= 0),
    target_weight    double precision not null check (target_weight >= 0),
    drift            double precision not null,
    band             double precision not null check (band >= 0),
    action           text not null check (action in ('buy', 'sell', 'hold')),
    trade_weight     double precision not null,
    price            double precision,
    trade_value      double precision,
    trade_quantity   double precision,
    primary key (run_date, symbol),
    check ((action = 'hold') = (trade_weight = 0))
);

-- The rebalancing as a whole: cash before and after the trades, turnover and estimated cost.
create table if not exists portfolio.rebalancing_summary (
    run_date          date primary key references portfolio.runs on delete cascade,
    target_strategy   text not null,
    holdings_file     text not null,
    portfolio_value   double precision check (portfolio_value > 0),
    cash_before       double precision not null check (cash_before >= 0),
    cash_after        double precision not null,
    turnover          double precision not null check (turnover >= 0),
    estimated_cost    double precision not null check (estimated_cost >= 0),
    buys_scaled_by    double precision not null check (buys_scaled_by > 0 and buys_scaled_by <= 1)
);
