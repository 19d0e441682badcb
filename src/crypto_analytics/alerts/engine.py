"""Evaluate every enabled rule on gold: one rule's missing input or failure never stops the others.

Why per-rule isolation: the inputs belong to different teams and arrive at different times (the
portfolio and forecasting tables may not exist yet in a warehouse). A missing table is "no data:
run X" for its rule; an unexpected error is recorded as that rule's error and reported, and
every other rule is still judged and notified.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from crypto_analytics.alerts.freshness import stale_observations
from crypto_analytics.alerts.gold_inputs import (
    DAILY_METRICS,
    DATA_QUALITY,
    MODEL_DRIFT,
    REBALANCING,
    STREAM_HEARTBEAT,
    GoldInputs,
    InputMissing,
)
from crypto_analytics.alerts.model_drift import DRIFT_COLUMNS, drift_observations
from crypto_analytics.alerts.observations import WHOLE_RULE, Observation
from crypto_analytics.alerts.portfolio_drift import (
    REBALANCING_COLUMNS,
    portfolio_drift_observations,
)
from crypto_analytics.alerts.price import move_observations, threshold_observations
from crypto_analytics.alerts.rules import (
    ModelDriftRule,
    PortfolioDriftRule,
    PriceMoveRule,
    PriceThresholdRule,
    Rule,
    RuleSet,
    StaleDataRule,
    VolatilitySpikeRule,
    format_duration,
)
from crypto_analytics.alerts.volatility import spike_observations
from crypto_analytics.config import Settings

log = logging.getLogger(__name__)


@dataclass
class GoldEvaluation:
    """Every observation of one pass, and the rules left to the stream (sub-day price moves)."""

    observations: list[Observation] = field(default_factory=list)
    stream_only: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Observation]:
        return [o for o in self.observations if o.status == "error"]


Evaluator = Callable[[Rule, GoldInputs, Settings, datetime], list[Observation]]


def _price_threshold(
    rule: Rule, inputs: GoldInputs, settings: Settings, now: datetime
) -> list[Observation]:
    assert isinstance(rule, PriceThresholdRule)
    return threshold_observations(rule, inputs.latest_closes(rule.symbols), DAILY_METRICS.name)


def _price_move(
    rule: Rule, inputs: GoldInputs, settings: Settings, now: datetime
) -> list[Observation]:
    assert isinstance(rule, PriceMoveRule)
    if rule.on_stream:  # minutes are the stream's to measure (see evaluate_on_gold)
        return []
    days = rule.window.days
    return move_observations(rule, inputs.daily_moves(rule.symbols, days), DAILY_METRICS.name)


def _volatility(
    rule: Rule, inputs: GoldInputs, settings: Settings, now: datetime
) -> list[Observation]:
    assert isinstance(rule, VolatilitySpikeRule)
    # the window's returns, the history's rolling values, and the returns those values need
    days = 2 * rule.window_days + rule.history_days
    returns = inputs.daily_log_returns(rule.symbols, days)
    return spike_observations(rule, returns, DAILY_METRICS.name)


def _portfolio(
    rule: Rule, inputs: GoldInputs, settings: Settings, now: datetime
) -> list[Observation]:
    assert isinstance(rule, PortfolioDriftRule)
    # the newest run date for each token; the evaluation keeps the newest run overall
    weights = inputs.newest(REBALANCING, REBALANCING_COLUMNS, ["symbol"], "run_date")
    return portfolio_drift_observations(rule, weights, REBALANCING.name)


def _model(rule: Rule, inputs: GoldInputs, settings: Settings, now: datetime) -> list[Observation]:
    assert isinstance(rule, ModelDriftRule)
    checks = inputs.newest(MODEL_DRIFT, DRIFT_COLUMNS, ["model", "horizon_days"], "as_of_date")
    return drift_observations(rule, checks, MODEL_DRIFT.name)


def _stale(rule: Rule, inputs: GoldInputs, settings: Settings, now: datetime) -> list[Observation]:
    assert isinstance(rule, StaleDataRule)
    if rule.dataset == "stream":
        return stale_observations(rule, inputs.stream_freshness(), now, STREAM_HEARTBEAT.name)
    return stale_observations(rule, inputs.candle_freshness(), now, DATA_QUALITY.name)


EVALUATORS: dict[str, Evaluator] = {
    "price_threshold": _price_threshold,
    "price_move": _price_move,
    "volatility_spike": _volatility,
    "portfolio_drift": _portfolio,
    "model_drift": _model,
    "stale_data": _stale,
}


def evaluate_rule(
    rule: Rule, inputs: GoldInputs, settings: Settings, now: datetime
) -> list[Observation]:
    """One rule's observations; a missing input or any failure becomes one whole-rule observation."""
    try:
        return EVALUATORS[rule.type](rule, inputs, settings, now)
    except InputMissing as missing:
        log.warning("rule %s: %s", rule.id, missing)
        return [Observation(rule.id, rule.type, WHOLE_RULE, "no_data", str(missing))]
    except Exception as exc:  # noqa: BLE001 - recorded as the rule's error; the others go on
        log.exception("rule %s failed", rule.id)
        return [
            Observation(
                rule.id, rule.type, WHOLE_RULE, "error", f"{type(exc).__name__}: {exc}"[:500]
            )
        ]


def evaluate_on_gold(
    conn: psycopg.Connection, ruleset: RuleSet, settings: Settings, now: datetime
) -> GoldEvaluation:
    """Every enabled rule except sub-day price moves (those are measured by the stream)."""
    inputs = GoldInputs(conn, [token.symbol for token in settings.tokens])
    result = GoldEvaluation()
    for rule in ruleset.enabled:
        if isinstance(rule, PriceMoveRule) and rule.on_stream:
            log.info(
                "rule %s: a %s move is measured by the stream",
                rule.id,
                format_duration(rule.window),
            )
            result.stream_only.append(rule.id)
            continue
        result.observations.extend(evaluate_rule(rule, inputs, settings, now))
    return result
