"""The rules file (config/alerts.yaml) as typed models: one class per rule type.

Why pydantic with a discriminated union: a misspelt key, an unknown rule type or a window of
"5 mins" fails when the file is loaded, naming the rule and the valid choices, instead of the
rule silently never firing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from crypto_analytics.config import AlertChannel, Settings, StrictModel, get_settings
from crypto_analytics.errors import ConfigError

Severity = Literal["info", "warning", "critical"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: Price moves over windows shorter than this are measured on the stream's minute candles;
#: whole days on gold's daily closes.
STREAM_WINDOW_LIMIT = timedelta(days=1)


def parse_duration(value: Any) -> timedelta:
    """'90s', '5m', '36h', '2d', '1w' (or a timedelta) to a positive timedelta."""
    if isinstance(value, timedelta):
        result = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"{value!r} is not a duration: write a number and a unit s, m, h, d or w "
                "(e.g. 90s, 5m, 36h, 2d)"
            )
        result = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    if result <= timedelta(0):
        raise ValueError(f"duration {value!r} must be positive")
    return result


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def format_duration(value: timedelta) -> str:
    """The shortest whole unit: 300 s -> '5m', 1 day -> '1d'."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class RuleDefaults(StrictModel):
    """What a rule gets for the keys it leaves out."""

    severity: Severity = "warning"
    cooldown: Duration = timedelta(hours=1)
    channels: list[AlertChannel] = ["email", "webhook"]


class _Rule(StrictModel):
    #: Stable id: the key of the rule's state and history (renaming a rule starts a new history).
    id: str
    description: str | None = None
    enabled: bool = True
    severity: Severity = "warning"
    #: A new episode starting within this long of the last notification is recorded, not sent.
    cooldown: Duration = timedelta(hours=1)
    channels: list[AlertChannel] = ["email", "webhook"]

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", value):
            raise ValueError(f"rule id {value!r} must be lower-case letters, digits, _ or -")
        return value

    @property
    def label(self) -> str:
        return self.description or self.id


class _SymbolRule(_Rule):
    #: Tokens the rule watches; empty = every token that has data.
    symbols: list[str] = []

    @field_validator("symbols")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [s.upper() for s in value]


class PriceThresholdRule(_SymbolRule):
    """Fires while the price is above `above` or below `below` (either or both)."""

    type: Literal["price_threshold"]
    symbols: list[str] = Field(min_length=1)
    above: float | None = Field(None, gt=0)
    below: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_bound(self) -> PriceThresholdRule:
        if self.above is None and self.below is None:
            raise ValueError("give `above`, `below` or both")
        if self.above is not None and self.below is not None and self.below >= self.above:
            raise ValueError(f"below ({self.below}) must be under above ({self.above})")
        return self


class PriceMoveRule(_SymbolRule):
    """Fires while the price moved at least `pct` percent over `window` (point to point).

    A window under a day is measured by the stream on minute candles; whole days on gold's
    daily closes after each gold build."""

    type: Literal["price_move"]
    window: Duration
    pct: float = Field(gt=0)
    direction: Literal["up", "down", "either"] = "either"

    @field_validator("window")
    @classmethod
    def _stream_or_days(cls, value: timedelta) -> timedelta:
        if value < STREAM_WINDOW_LIMIT:
            if value.total_seconds() % 60:
                raise ValueError(f"window {value} under a day must be whole minutes")
        elif value % timedelta(days=1):
            raise ValueError(
                f"window {format_duration(value)} must be under 1d (measured on the stream's "
                "minute candles) or a whole number of days (gold's daily closes)"
            )
        return value

    @property
    def on_stream(self) -> bool:
        return self.window < STREAM_WINDOW_LIMIT


class VolatilitySpikeRule(_SymbolRule):
    """Fires while realised volatility over the last `window_days` is at least `ratio` times its
    own median over the `history_days` before that window."""

    type: Literal["volatility_spike"]
    window_days: int = Field(7, ge=2)
    history_days: int = Field(90, ge=7)
    ratio: float = Field(2.0, gt=1)
    #: Rolling-volatility values the history needs before the rule judges a token.
    min_history: int = Field(30, ge=5)

    @model_validator(mode="after")
    def _history_fits(self) -> VolatilitySpikeRule:
        if self.min_history > self.history_days:
            raise ValueError(
                f"min_history ({self.min_history}) cannot exceed history_days ({self.history_days})"
            )
        return self


class PortfolioDriftRule(_Rule):
    """Fires while any weight of the latest rebalancing run drifts from its target beyond the band.

    band: absolute drift (0.05 = 5 percentage points); left out, the portfolio's own rebalancing
    band decides (what gold.rebalancing_recommendations flags as needing a trade)."""

    type: Literal["portfolio_drift"]
    band: float | None = Field(None, gt=0, lt=1)


class ModelDriftRule(_Rule):
    """Fires while the champion's latest drift check (gold.model_drift) flags a model and horizon:
    its realised error over recent days exceeds its validation error by the forecasting
    threshold (ml.drift.threshold)."""

    type: Literal["model_drift"]
    #: Only these models (e.g. prophet, lstm); empty = all.
    models: list[str] = []
    #: Only these horizons in days; empty = all.
    horizons: list[int] = []


class StaleDataRule(_SymbolRule):
    """Fires while data is older than max_age: `candles` = each token's newest candle in gold's
    data-quality summary; `stream` = the real-time stream's newest landed candle (heartbeat)."""

    type: Literal["stale_data"]
    dataset: Literal["candles", "stream"]
    max_age: Duration


Rule = Annotated[
    PriceThresholdRule
    | PriceMoveRule
    | VolatilitySpikeRule
    | PortfolioDriftRule
    | ModelDriftRule
    | StaleDataRule,
    Field(discriminator="type"),
]
RULE_TYPES = (
    "price_threshold",
    "price_move",
    "volatility_spike",
    "portfolio_drift",
    "model_drift",
    "stale_data",
)


class RuleSet(StrictModel):
    """The whole file: defaults, then the rules."""

    defaults: RuleDefaults = RuleDefaults()
    rules: list[Rule] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self

    @property
    def enabled(self) -> list[Rule]:
        return [rule for rule in self.rules if rule.enabled]

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise ConfigError(
            f"no rule {rule_id!r}; the rules are: {', '.join(r.id for r in self.rules)}"
        )


def _with_defaults(document: dict[str, Any]) -> dict[str, Any]:
    """Each rule dict completed with the file's defaults for the keys it lacks."""
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError("alerts file: `defaults` must be a mapping")
    rules = document.get("rules") or []
    if not isinstance(rules, list):
        raise ConfigError("alerts file: `rules` must be a list of rules")
    inherited = {k: v for k, v in defaults.items() if k in RuleDefaults.model_fields}
    completed = [{**inherited, **rule} if isinstance(rule, dict) else rule for rule in rules]
    return {**document, "rules": completed}


def _describe(exc: ValidationError, document: dict[str, Any]) -> str:
    """One line per problem, naming the rule by its id rather than by its list position."""
    lines = []
    for error in exc.errors():
        where = list(error["loc"])
        if len(where) >= 2 and where[0] == "rules" and isinstance(where[1], int):
            raw = document["rules"][where[1]]
            name = raw.get("id", f"#{where[1] + 1}") if isinstance(raw, dict) else f"#{where[1]}"
            rest = [str(p) for p in where[2:] if p not in RULE_TYPES]
            where_text = f"rule {name}" + (f" {'.'.join(rest)}" if rest else "")
        else:
            where_text = ".".join(str(p) for p in where) or "file"
        lines.append(f"{where_text}: {error['msg']}")
    return "; ".join(lines)


def parse_rules(text: str, source: str = "alerts file") -> RuleSet:
    """Parse and validate the YAML text of a rules file; ConfigError names what is wrong."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        flat = " ".join(str(exc).split())
        raise ConfigError(f"{source} is not valid YAML: {flat}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{source} must be a mapping with `defaults` and `rules`")
    document = _with_defaults(document)
    try:
        return RuleSet.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc, document)}") from None


def rules_path(settings: Settings) -> Path:
    return settings.resolve(settings.alerts.rules_file)


def load_rules(settings: Settings | None = None) -> RuleSet:
    """The configured rules file (alerts.rules_file), checked against the token universe."""
    settings = settings or get_settings()
    path = rules_path(settings)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"alert rules file {path} does not exist (alerts.rules_file in config/config.yaml)"
        ) from None
    ruleset = parse_rules(text, str(path))
    known = {t.symbol for t in settings.tokens}
    for rule in ruleset.rules:
        unknown = sorted(set(getattr(rule, "symbols", [])) - known)
        if unknown:
            raise ConfigError(
                f"{path}: rule {rule.id}: unknown symbol(s) {', '.join(unknown)}; "
                f"the universe is: {', '.join(sorted(known))}"
            )
    return ruleset
