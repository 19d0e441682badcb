-- The `ml` schema: what crypto_ml.forecasting computes in Python. dbt declares these tables as
-- sources (dbt/models/gold/forecasting/_forecasting__sources.yml) and exposes them as gold views
-- (gold.price_predictions, gold.volatility_forecasts, gold.model_evaluation,
-- gold.feature_importance, gold.model_drift, ...), so the lineage site shows them and new rows are
-- visible in gold at once. Every table is keyed by what makes a row unique for one as-of date, and
-- the writers replace a key's rows in one transaction: a rerun for the same as-of changes nothing.

create schema if not exists ml;

-- Price forecasts, 1/7/30 days ahead, one row per (as-of, token, horizon, model). Prices are in the
-- quote currency of gold.daily_crypto_metrics; intervals are central 80 % and 95 % intervals.
create table if not exists ml.price_predictions (
    as_of_date      date not null,
    symbol          text not null,
    horizon_days    integer not null check (horizon_days > 0),
    target_date     date not null,
    model           text not null
        check (model in ('naive', 'drift', 'prophet', 'lstm', 'gbm', 'ensemble')),
    point           double precision not null check (point > 0),
    lower_80        double precision check (lower_80 > 0),
    upper_80        double precision,
    lower_95        double precision check (lower_95 > 0),
    upper_95        double precision,
    model_version   text,
    run_id          text,
    is_champion     boolean not null default false,
    created_at      timestamptz not null default now(),
    primary key (as_of_date, symbol, horizon_days, model),
    check (target_date = as_of_date + horizon_days),
    check (lower_80 <= upper_80 and lower_95 <= lower_80 and upper_80 <= upper_95)
);
create index if not exists price_predictions_target on ml.price_predictions (target_date, model);

-- Volatility forecasts: the standard deviation of log returns over the next h days, annualised
-- with 365 days (sqrt(365 / h x forecast h-day variance)).
create table if not exists ml.volatility_forecasts (
    as_of_date             date not null,
    symbol                 text not null,
    horizon_days           integer not null check (horizon_days > 0),
    target_date            date not null,
    model                  text not null check (model in ('garch', 'rolling_30d')),
    volatility_annualised  double precision not null check (volatility_annualised >= 0),
    variance_h             double precision not null check (variance_h >= 0),
    model_version          text,
    run_id                 text,
    created_at             timestamptz not null default now(),
    primary key (as_of_date, symbol, horizon_days, model),
    check (target_date = as_of_date + horizon_days)
);

-- Walk-forward backtest metrics per (model, token, horizon, fold); fold 0 pools every fold.
-- Price models fill the point/interval columns, volatility models (garch, rolling_30d) fill qlike.
create table if not exists ml.model_evaluation (
    as_of_date            date not null,
    model                 text not null,
    symbol                text not null,
    horizon_days          integer not null check (horizon_days > 0),
    fold                  integer not null check (fold >= 0),
    fold_cutoff           date,
    n_points              integer not null check (n_points > 0),
    mae                   double precision check (mae >= 0),
    rmse                  double precision check (rmse >= 0),
    mape                  double precision check (mape >= 0),
    mase                  double precision check (mase >= 0),
    directional_accuracy  double precision check (directional_accuracy between 0 and 1),
    coverage_80           double precision check (coverage_80 between 0 and 1),
    coverage_95           double precision check (coverage_95 between 0 and 1),
    width_80              double precision check (width_80 >= 0),
    width_95              double precision check (width_95 >= 0),
    interval_score_80     double precision check (interval_score_80 >= 0),
    interval_score_95     double precision check (interval_score_95 >= 0),
    pinball               double precision check (pinball >= 0),
    qlike                 double precision,
    run_id                text,
    evaluated_at          timestamptz not null default now(),
    primary key (as_of_date, model, symbol, horizon_days, fold),
    check ((fold = 0) = (fold_cutoff is null))
);

-- Permutation importance of the gradient-boosting features (median model, last fold's held-out
-- rows): the drop in score when a feature's column is shuffled.
create table if not exists ml.feature_importance (
    as_of_date       date not null,
    model            text not null,
    horizon_days     integer not null check (horizon_days > 0),
    feature          text not null,
    importance_mean  double precision not null,
    importance_std   double precision not null check (importance_std >= 0),
    n_repeats        integer not null check (n_repeats > 0),
    scoring          text not null,
    run_id           text,
    computed_at      timestamptz not null default now(),
    primary key (as_of_date, model, horizon_days, feature)
);

-- The champion's realised error over recent days against its validation error, per horizon.
-- is_drift rows are the alerts (the alert engine's "model drift" rule reads gold.model_drift).
create table if not exists ml.model_drift (
    as_of_date            date not null,
    model                 text not null,
    model_version         text,
    horizon_days          integer not null check (horizon_days > 0),
    window_start          date not null,
    window_end            date not null,
    n_points              integer not null check (n_points >= 0),
    realised_mae          double precision check (realised_mae >= 0),
    validation_mae        double precision check (validation_mae > 0),
    error_ratio           double precision check (error_ratio >= 0),
    threshold             double precision not null check (threshold > 1),
    is_drift              boolean not null,
    retraining_requested  boolean not null default false,
    checked_at            timestamptz not null default now(),
    primary key (as_of_date, model, horizon_days),
    check (window_start <= window_end),
    check (not is_drift or error_ratio > threshold)
);

-- Every promotion decision of the registry alias `champion`, with the numbers it was made on.
create table if not exists ml.champion_decisions (
    as_of_date         date not null primary key,
    candidate_model    text not null,
    candidate_version  text not null,
    candidate_score    double precision not null,
    champion_model     text,
    champion_version   text,
    champion_score     double precision,
    naive_score        double precision not null,
    n_points           integer not null check (n_points > 0),
    promoted           boolean not null,
    reason             text not null,
    run_id             text,
    decided_at         timestamptz not null default now()
);

-- Tokens a model did not fit or forecast, and why (too short, pegged/constant, stale, failed).
create table if not exists ml.model_skips (
    as_of_date  date not null,
    model       text not null,
    symbol      text not null,
    stage       text not null check (stage in ('train', 'predict')),
    reason      text not null,
    logged_at   timestamptz not null default now(),
    primary key (as_of_date, model, symbol, stage)
);
