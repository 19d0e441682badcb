"""Typed settings: `config/config.yaml` for defaults, the environment for overrides and secrets.

Why one settings object: every task, CLI command and test reads the same values the same way,
and a typo in the YAML fails at start-up with the field named instead of deep inside a fetch.
Environment variables override YAML scalars as CRYPTO_<SECTION>__<KEY>; secrets (API keys, the
database URL) are read from the environment only.
"""

from __future__ import annotations

import logging
import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from crypto_analytics.errors import ConfigError, SymbolUnavailable
from crypto_analytics.intervals import interval_length

log = logging.getLogger(__name__)

#: The per-token id fields, one per kind of source. The Binance archive uses `exchange` ids.
SourceKey = Literal["yahoo", "coingecko", "exchange"]
SOURCE_KEYS: tuple[SourceKey, ...] = ("yahoo", "coingecko", "exchange")

CONFIG_ENV_VAR = "CRYPTO_CONFIG_FILE"


class StrictModel(BaseModel):
    """Base of every settings section: an unknown (e.g. misspelt) key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Token(StrictModel):
    """One token of the universe with its id on each source, or the reason a source lacks it."""

    symbol: str
    name: str
    category: str
    stablecoin: bool = False
    status: Literal["active", "delisted", "renamed", "merged"] = "active"
    yahoo: str | None = None
    coingecko: str | None = None
    exchange: str | None = None
    unavailable: dict[SourceKey, str] = Field(default_factory=dict)

    @field_validator("symbol")
    @classmethod
    def _upper_symbol(cls, value: str) -> str:
        if not value.isalnum() or value != value.upper():
            raise ValueError(f"symbol {value!r} must be upper-case letters and digits")
        return value

    @model_validator(mode="after")
    def _every_source_accounted_for(self) -> Token:
        for key in SOURCE_KEYS:
            has_id = getattr(self, key) is not None
            has_reason = key in self.unavailable
            if has_id == has_reason:
                raise ValueError(
                    f"token {self.symbol}: give either a {key} id or a reason under "
                    f"unavailable.{key}, exactly one of the two"
                )
        return self

    def source_id(self, key: SourceKey) -> str:
        """The token's id on a source, or SymbolUnavailable carrying the configured reason."""
        value: str | None = getattr(self, key)
        if value is None:
            raise SymbolUnavailable(key, f"{self.symbol} skipped: {self.unavailable[key]}")
        return value


class YahooConfig(StrictModel):
    intervals: list[str] = ["1d", "1h"]
    intraday_history_days: dict[str, int] = {}


class CoinGeckoConfig(StrictModel):
    vs_currency: str = "usd"
    plan: Literal["keyless", "demo", "pro"] = "keyless"
    requests_per_minute: dict[str, float] = {"keyless": 10, "demo": 30, "pro": 500}
    keyless_history_days: int = 365


class ExchangeConfig(StrictModel):
    exchange_id: str = "binance"
    intervals: list[str] = ["1d", "1h"]
    page_limit: int = Field(1000, gt=0, le=1000)
    orderbook_depth: int = Field(20, gt=0, le=5000)
    fallback_hosts: list[str] = []
    fallback_exchange_id: str | None = None


class BinanceArchiveConfig(StrictModel):
    base_url: str = "https://data.binance.vision"
    market: Literal["spot"] = "spot"


class SyntheticConfig(StrictModel):
    seed: int = 42
    intervals: list[str] = ["1d", "1h"]
    start: date = date(2020, 1, 1)


class SourcesConfig(StrictModel):
    yahoo: YahooConfig = YahooConfig()
    coingecko: CoinGeckoConfig = CoinGeckoConfig()
    exchange: ExchangeConfig = ExchangeConfig()
    binance_archive: BinanceArchiveConfig = BinanceArchiveConfig()
    synthetic: SyntheticConfig = SyntheticConfig()


class WarehouseConfig(StrictModel):
    """Limits on every connection to the warehouse (crypto_analytics.warehouse.connect)."""

    #: A server that accepts the connection but never answers fails after this long.
    connect_timeout_seconds: float = Field(10, gt=0)
    #: Any one statement (a batch's COPY included) is cancelled after this long.
    statement_timeout_seconds: float = Field(900, gt=0)
    #: Waiting for another session's lock (a concurrent load of the same keys) ends after this long.
    lock_timeout_seconds: float = Field(120, gt=0)


class IngestionConfig(StrictModel):
    default_sources: list[str] = ["exchange", "coingecko", "yahoo"]
    initial_lookback_days: int = Field(30, gt=0)
    http_timeout_seconds: float = Field(20, gt=0)
    max_retries: int = Field(5, ge=0)
    #: Tokens sharing a window are fetched in one request (one Airflow task) of at most this many.
    symbols_per_request: int = Field(20, ge=1)
    retry_base_seconds: float = Field(1.0, ge=0)
    retry_max_seconds: float = Field(60.0, ge=0)
    #: A batch quarantining more than this share of its rows fails the bronze quality check.
    max_quarantine_ratio: float = Field(0.05, ge=0, le=1)
    #: A batch still `running` this long after it started belongs to a process that died
    #: (SIGKILL, OOM, a lost worker); the next run, replay, `summary` and the quality gate mark it
    #: failed. Keep it above the longest healthy load (the bronze DAG's runs time out at 1 h).
    stale_batch_minutes: int = Field(120, ge=1)


class SmtpConfig(StrictModel):
    """Where e-mail goes (rebalancing reports, alerts). No host means e-mail is switched off.

    The password is a secret and comes only from the environment (SMTP_PASSWORD)."""

    host: str | None = None
    port: int = Field(587, gt=0, lt=65536)
    #: starttls: plain connection upgraded with STARTTLS (port 587); ssl: TLS from the first byte
    #: (port 465); none: no encryption (a local relay or a test server only).
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    sender: str = "crypto-analytics@localhost"
    recipients: list[str] = []
    timeout_seconds: float = Field(20, gt=0)
    #: Attempts per message before the send fails (transient errors only: refused connections,
    #: timeouts, 4xx answers); authentication and address errors fail at once.
    max_attempts: int = Field(3, ge=1)
    retry_base_seconds: float = Field(2.0, ge=0)


class NotificationsConfig(StrictModel):
    smtp: SmtpConfig = SmtpConfig()


class StreamConfig(StrictModel):
    """The real-time candle stream (`crypto-analytics stream`, crypto_analytics.streaming)."""

    #: binance: Binance's combined kline stream; synthetic: the offline minute feed; auto:
    #: synthetic when ingestion.default_sources is ["synthetic"] (the offline set-up), else binance.
    feed: Literal["auto", "binance", "synthetic"] = "auto"
    #: The critical tokens streamed; empty = every token the feed serves.
    symbols: list[str] = ["BTC", "ETH", "SOL", "BNB", "XRP"]
    interval: str = "1m"
    #: WebSocket base URL, then market-data-only fallbacks tried on HTTP 451 (geoblocking).
    ws_url: str = "wss://stream.binance.com:9443"
    fallback_ws_urls: list[str] = ["wss://data-stream.binance.vision"]
    #: REST base URL for the backfill after a reconnect (451 falls back to sources.exchange.fallback_hosts).
    rest_url: str = "https://api.binance.com"
    #: A micro-batch is flushed to bronze at this many closed candles, when every streamed token's
    #: candle for the newest minute has arrived, or when its oldest candle has waited flush_seconds.
    batch_size: int = Field(500, ge=1)
    flush_seconds: float = Field(1.0, gt=0)
    #: Reconnect backoff: doubling from the initial delay, capped, with jitter (never a storm).
    backoff_initial_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(60.0, gt=0)
    #: Binance closes every connection at 24 h; we reconnect (and backfill) before that.
    max_connection_hours: float = Field(23.5, gt=0)
    open_timeout_seconds: float = Field(10.0, gt=0)
    ping_interval_seconds: float = Field(20.0, gt=0)
    ping_timeout_seconds: float = Field(20.0, gt=0)
    #: How often stream.heartbeat is written (also on every status change).
    heartbeat_seconds: float = Field(10.0, gt=0)
    #: Missed candles are backfilled over REST at most this far back (an older gap stays a gap,
    #: flagged by silver); a token with no candle at all starts initial_backfill_minutes back.
    max_backfill_hours: float = Field(72.0, gt=0)
    initial_backfill_minutes: int = Field(60, ge=0)
    #: The synthetic feed sends an open-candle update per token this often.
    synthetic_tick_seconds: float = Field(5.0, gt=0)

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        interval_length(value)
        return value


AlertChannel = Literal["email", "webhook"]


class AlertsConfig(StrictModel):
    """The alert engine (crypto_analytics.alerts): rules live in rules_file, channels here.

    The webhook URL is secret-ish (Slack's carries a token): it comes only from ALERT_WEBHOOK_URL."""

    rules_file: Path = Path("config/alerts.yaml")
    #: slack: {"text", "blocks"} for Slack/Mattermost incoming webhooks; json: {"text", "alert"}
    #: with every field of the alert, for any other receiver.
    webhook_format: Literal["slack", "json"] = "slack"
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    #: A failed delivery stays in the outbox and is retried after base x 2^(attempts-1) seconds,
    #: capped at max; it is never dropped.
    retry_base_seconds: float = Field(30.0, ge=0)
    retry_max_seconds: float = Field(3600.0, ge=0)
    #: How often the stream process retries pending deliveries.
    stream_delivery_seconds: float = Field(30.0, gt=0)


class DashboardConfig(StrictModel):
    """The Streamlit dashboard (streamlit/app.py). It logs in as the read-only role
    `dashboard_reader` (password from DASHBOARD_DB_PASSWORD); REDIS_URL selects the shared cache."""

    #: Seconds a query result stays cached (Redis or in-process) unless the gold DAG refreshes it.
    cache_ttl_seconds: int = Field(300, gt=0)
    #: How often the live-prices page re-reads its tickers, candles and alerts.
    live_refresh_seconds: int = Field(60, ge=5)
    #: The portfolio page re-optimises on the spot for at most this many assets.
    max_recompute_assets: int = Field(12, ge=2)


#: Portfolio strategies the optimiser computes (crypto_ml.portfolio.optimizers).
PortfolioStrategy = Literal["max_sharpe", "min_volatility", "hrp", "equal_weight"]


class PortfolioMonteCarloConfig(StrictModel):
    """Random long-only portfolios for the picture, and scenarios for Monte Carlo VaR/CVaR."""

    portfolios: int = Field(10_000, ge=100)
    #: Of those, how many are stored for display (gold.monte_carlo_portfolios).
    display_sample: int = Field(2_000, ge=10)
    #: Weights ~ Dirichlet(alpha): 1 is uniform over the simplex; below 1 gives sparser portfolios.
    dirichlet_alpha: float = Field(1.0, gt=0)
    #: Daily return scenarios drawn from N(mu, Sigma) for Monte Carlo VaR/CVaR.
    var_scenarios: int = Field(10_000, ge=1_000)
    seed: int = 42


class PortfolioBacktestConfig(StrictModel):
    """Walk-forward backtest: weekly rebalancing using only data before each rebalance date."""

    #: Days of history the backtest covers, ending the day before the run date.
    lookback_days: int = Field(730, ge=30)
    rebalance_weekday: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"
    strategies: list[PortfolioStrategy] = ["max_sharpe", "min_volatility", "hrp", "equal_weight"]
    #: Single-asset buy-and-hold benchmark (strategy `<symbol>_only`, e.g. btc_only).
    benchmark_symbol: str = "BTC"


class PortfolioRebalancingConfig(StrictModel):
    """How the weekly report turns target weights into trades for the user's holdings."""

    target_strategy: PortfolioStrategy = "max_sharpe"
    #: No trade while |current - target| is within max(band_absolute, band_relative x target).
    band_absolute: float = Field(0.02, ge=0, le=1)
    band_relative: float = Field(0.25, ge=0)
    holdings_file: Path = Path("config/holdings.yaml")
    reports_dir: Path = Path("data/reports")


class PortfolioConfig(StrictModel):
    """Inputs, constraints and outputs of the portfolio optimisation (crypto_ml.portfolio)."""

    #: Tokens to consider; empty = the whole universe.
    symbols: list[str] = []
    window_days: int = Field(365, ge=30)
    #: A token with fewer daily returns than this in the window is excluded (with the reason).
    min_history_days: int = Field(180, ge=20)
    return_kind: Literal["simple", "log"] = "simple"
    expected_returns: Literal["mean", "ema", "forecast"] = "mean"
    ema_span_days: int = Field(60, ge=2)
    forecast_horizon_days: int = Field(7, ge=1)
    covariance: Literal["sample", "ledoit_wolf"] = "ledoit_wolf"
    #: Annual rate, the same units as the annualised expected returns.
    risk_free_rate: float = Field(0.04, ge=-0.1, le=1)
    min_weight: float = Field(0.0, ge=0, le=1)
    max_weight: float = Field(0.35, gt=0, le=1)
    #: Most a category (Token.category) may hold in total, e.g. {"Meme": 0.1}.
    category_caps: dict[str, float] = {}
    #: exclude: never held; cap: together at most stablecoin_cap; include: like any token.
    stablecoins: Literal["exclude", "cap", "include"] = "exclude"
    stablecoin_cap: float = Field(0.2, ge=0, le=1)
    frontier_points: int = Field(50, ge=2, le=500)
    hrp_linkage: Literal["single", "complete", "average", "ward"] = "single"
    var_confidence: float = Field(0.95, gt=0.5, lt=1)
    #: Cost of trading, per unit traded (10 bp = Binance's spot taker fee).
    transaction_cost_bps: float = Field(10, ge=0, le=1_000)
    monte_carlo: PortfolioMonteCarloConfig = PortfolioMonteCarloConfig()
    backtest: PortfolioBacktestConfig = PortfolioBacktestConfig()
    rebalancing: PortfolioRebalancingConfig = PortfolioRebalancingConfig()

    @field_validator("category_caps")
    @classmethod
    def _caps_are_fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for category, cap in value.items():
            if not 0 <= cap <= 1:
                raise ValueError(f"category cap {category}: {cap} must be between 0 and 1")
        return value

    @model_validator(mode="after")
    def _bounds_in_order(self) -> PortfolioConfig:
        if self.min_weight > self.max_weight:
            raise ValueError(f"min_weight {self.min_weight} is above max_weight {self.max_weight}")
        if self.min_history_days > self.window_days:
            raise ValueError(
                f"min_history_days {self.min_history_days} exceeds window_days {self.window_days}"
            )
        return self


#: Forecast model families (crypto_ml.forecasting); `ensemble` combines the others.
ForecastFamily = Literal["naive", "drift", "prophet", "lstm", "gbm", "ensemble"]


class MlMinHistoryConfig(StrictModel):
    """Daily closes a token needs at a cut-off before a family fits it (else: skipped, logged)."""

    naive: int = Field(60, ge=31)
    drift: int = Field(60, ge=31)
    prophet: int = Field(180, ge=60)
    lstm: int = Field(180, ge=90)
    gbm: int = Field(180, ge=90)
    garch: int = Field(250, ge=100)


class MlProphetConfig(StrictModel):
    #: Prophet fits on at most this many recent days (0.5 s per 2,000 points; older data rarely helps).
    history_days: int = Field(1095, ge=90)
    changepoint_prior_scale: float = Field(0.05, gt=0)


class MlLstmConfig(StrictModel):
    """The global LSTM: shared weights across tokens, quantile outputs, deterministic on CPU."""

    window_days: int = Field(60, ge=10)
    hidden_size: int = Field(32, ge=4)
    layers: int = Field(1, ge=1, le=4)
    epochs: int = Field(10, ge=1)
    #: Every n-th origin becomes a training window (neighbouring windows overlap by all but one day).
    sample_stride_days: int = Field(2, ge=1)
    batch_size: int = Field(512, ge=16)
    learning_rate: float = Field(3e-3, gt=0)
    #: Training windows come from at most this many recent days per token.
    history_days: int = Field(1095, ge=120)


class MlGbmConfig(StrictModel):
    """scikit-learn HistGradientBoostingRegressor, one quantile model per (horizon, quantile)."""

    max_iter: int = Field(100, ge=10)
    learning_rate: float = Field(0.08, gt=0, le=1)
    max_leaf_nodes: int = Field(15, ge=2)
    min_samples_leaf: int = Field(100, ge=1)
    history_days: int = Field(1095, ge=120)
    #: Conformalised quantiles: the newest origins of this many days (or ml.min_calibration_periods
    #: horizons, if longer) are held out to measure the tail models' miss (boosting.py).
    calibration_days: int = Field(365, ge=30)
    #: Permutation feature importance repeats (on the last fold's held-out rows).
    permutation_repeats: int = Field(5, ge=1)


class MlEnsembleConfig(StrictModel):
    #: Calibration residuals (weights and conformal quantiles) come from this many recent days.
    calibration_days: int = Field(365, ge=30)


class MlDriftConfig(StrictModel):
    """Champion drift: realised error over recent days against its validation error."""

    window_days: int = Field(30, ge=1)
    #: An alert when realised MAE / validation MAE (log price, per horizon) exceeds this.
    threshold: float = Field(1.5, gt=1)
    #: Fewer realised forecasts than this in the window: no verdict (logged).
    min_points: int = Field(20, ge=1)


class MlMlflowConfig(StrictModel):
    """MLflow tracking and registry. The backend store is database `database` on the warehouse
    server unless MLFLOW_TRACKING_URI (or tracking_uri) names another; artifacts are files."""

    tracking_uri: str | None = None
    database: str = "mlflow"
    artifacts_dir: Path = Path("data/mlflow")
    experiment_prefix: str = "crypto"
    registered_model: str = "crypto-price-forecaster"
    volatility_model: str = "crypto-volatility-forecaster"
    host: str = "127.0.0.1"
    port: int = Field(5000, gt=0, lt=65536)


class MlDemoConfig(StrictModel):
    """What `make demo` reduces so the whole demo stays under 5 minutes on 2 cores."""

    folds: int = Field(2, ge=1)
    fold_days: int = Field(14, ge=1)
    lstm_epochs: int = Field(3, ge=1)
    gbm_max_iter: int = Field(40, ge=10)
    permutation_repeats: int = Field(2, ge=1)


class MlConfig(StrictModel):
    """Forecasting with MLflow (crypto_ml.forecasting): horizons, backtest, models, registry."""

    horizons: list[int] = [1, 7, 30]
    #: Walk-forward backtest: expanding window, `folds` cut-offs `fold_days` apart.
    folds: int = Field(6, ge=1)
    fold_days: int = Field(30, ge=1)
    families: list[ForecastFamily] = ["naive", "drift", "prophet", "lstm", "gbm", "ensemble"]
    min_history_days: MlMinHistoryConfig = MlMinHistoryConfig()
    #: A token whose newest close is older than this (days before the newest in gold) is skipped.
    stale_after_days: int = Field(3, ge=0)
    #: Drift's mean change over this many recent days; the empirical intervals of stablecoins
    #: (and of a horizon the pooled moves cannot serve): their own h-day changes over this many
    #: days (or min_calibration_periods horizons, if longer). Other tokens pool every token's
    #: moves known at the cut-off (crypto_ml.forecasting.calibration).
    empirical_window_days: int = Field(365, ge=60)
    #: Interval calibration reads scores spanning at least this many non-overlapping h-day
    #: periods (20: a 95 % split-conformal quantile needs 19): look-backs are at least this many
    #: horizons long, and the ensemble falls back to the random walk's errors below it.
    min_calibration_periods: int = Field(20, ge=1)
    #: CPU threads for torch, BLAS and OpenMP. 1 by default: they busy-wait, and on a loaded
    #: 2-core machine (Airflow, Postgres) 2 threads made an LSTM batch and a boosting fit ~10x
    #: slower than 1 (measured); raise it on a machine the models have to themselves.
    threads: int = Field(1, ge=1)
    seed: int = 42
    #: Per-token families are trained in Airflow tasks of this many tokens.
    symbols_per_task: int = Field(10, ge=1)
    #: Slots of the Airflow pool the training tasks share (contract.ML_TRAINING_POOL): 1 on 2
    #: cores, so one training job at a time next to the data pipeline's tasks.
    pool_slots: int = Field(1, ge=1)
    work_dir: Path = Path("data/ml")
    prophet: MlProphetConfig = MlProphetConfig()
    lstm: MlLstmConfig = MlLstmConfig()
    gbm: MlGbmConfig = MlGbmConfig()
    ensemble: MlEnsembleConfig = MlEnsembleConfig()
    drift: MlDriftConfig = MlDriftConfig()
    mlflow: MlMlflowConfig = MlMlflowConfig()
    demo: MlDemoConfig = MlDemoConfig()

    @field_validator("horizons")
    @classmethod
    def _horizons_are_days(cls, value: list[int]) -> list[int]:
        if not value or any(h < 1 for h in value) or len(set(value)) != len(value):
            raise ValueError(f"horizons {value} must be distinct whole days >= 1")
        return sorted(value)

    @model_validator(mode="after")
    def _ensemble_needs_members(self) -> MlConfig:
        if "naive" not in self.families:
            raise ValueError("families must include naive: every model is judged against it")
        return self


def find_config_file() -> Path:
    """CRYPTO_CONFIG_FILE, else the nearest config/config.yaml above the working directory,
    else the one in the source checkout this package was installed from."""
    explicit = os.environ.get(CONFIG_ENV_VAR)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV_VAR}={explicit} does not point at a file")
        return path
    for folder in [Path.cwd(), *Path.cwd().parents]:
        candidate = folder / "config" / "config.yaml"
        if candidate.is_file():
            return candidate
    checkout = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
    if checkout.is_file():
        return checkout
    raise ConfigError(
        "no config/config.yaml found above the working directory; set CRYPTO_CONFIG_FILE"
    )


class Settings(BaseSettings):
    """Everything the platform is configured with. Build it with `get_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="CRYPTO_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: SecretStr | None = None
    data_dir: Path = Path(".data")
    lake_dir: Path = Path("data/lake")
    coingecko_api_key: SecretStr | None = Field(None, validation_alias="COINGECKO_API_KEY")
    smtp_password: SecretStr | None = Field(None, validation_alias="SMTP_PASSWORD")
    dashboard_db_password: SecretStr | None = Field(None, validation_alias="DASHBOARD_DB_PASSWORD")
    redis_url: SecretStr | None = Field(None, validation_alias="REDIS_URL")
    alert_webhook_url: SecretStr | None = Field(None, validation_alias="ALERT_WEBHOOK_URL")
    tokens: list[Token]
    sources: SourcesConfig = SourcesConfig()
    ingestion: IngestionConfig = IngestionConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    stream: StreamConfig = StreamConfig()
    alerts: AlertsConfig = AlertsConfig()
    dashboard: DashboardConfig = DashboardConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    ml: MlConfig = MlConfig()
    schedules: dict[str, str] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=find_config_file())
        return (init_settings, env_settings, yaml_source)

    @model_validator(mode="after")
    def _check_universe(self) -> Settings:
        seen: set[str] = set()
        for token in self.tokens:
            if token.symbol in seen:
                raise ValueError(f"token {token.symbol} is listed twice in the universe")
            seen.add(token.symbol)
        for interval in [
            *self.sources.yahoo.intervals,
            *self.sources.exchange.intervals,
            *self.sources.synthetic.intervals,
        ]:
            interval_length(interval)
        return self

    @property
    def project_root(self) -> Path:
        """The folder holding config/: relative paths in the settings are resolved from it."""
        return find_config_file().resolve().parent.parent

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.project_root / path

    @property
    def data_path(self) -> Path:
        return self.resolve(self.data_dir)

    @property
    def lake_path(self) -> Path:
        return self.resolve(self.lake_dir)

    def token(self, symbol: str) -> Token:
        """Look a token up by symbol; the error lists the universe when it is not there."""
        for token in self.tokens:
            if token.symbol == symbol.upper():
                return token
        known = ", ".join(t.symbol for t in self.tokens)
        raise ConfigError(f"unknown symbol {symbol!r}; the universe is: {known}")

    def select_tokens(self, symbols: list[str] | None) -> list[Token]:
        """The tokens named (all of them for None/empty), each checked against the universe."""
        if not symbols:
            return list(self.tokens)
        return [self.token(s) for s in symbols]


def tokens_for_source(tokens: list[Token], key: SourceKey) -> list[tuple[Token, str]]:
    """Pairs (token, id on the source) for the tokens a source serves; logs why others are skipped."""
    served: list[tuple[Token, str]] = []
    for token in tokens:
        try:
            served.append((token, token.source_id(key)))
        except SymbolUnavailable as skipped:
            log.info("%s", skipped)
    return served


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: call `get_settings.cache_clear()` after changing env).

    Every configuration mistake (bad YAML, an unknown key or CRYPTO_* variable, a malformed
    value) is a one-line ConfigError: see crypto_analytics.config_loading."""
    from crypto_analytics.config_loading import build_settings

    return build_settings(Settings, find_config_file())
