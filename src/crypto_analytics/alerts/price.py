"""Price rules: thresholds and point-to-point moves, as pure functions of prices.

The same functions judge gold's daily closes (after a gold build) and the stream's minute
candles; only where the prices come from differs (alerts.gold_inputs, alerts.live).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from crypto_analytics.alerts.observations import WHOLE_RULE, Observation, format_number
from crypto_analytics.alerts.rules import PriceMoveRule, PriceThresholdRule, format_duration


@dataclass(frozen=True)
class PricePoint:
    """A price and the time it is the price at (a candle's close time)."""

    price: float
    at: datetime


@dataclass(frozen=True)
class Move:
    """A token's price at the start and the end of a rule's window."""

    start: PricePoint
    end: PricePoint

    @property
    def pct(self) -> float:
        return (self.end.price / self.start.price - 1.0) * 100.0


def threshold_observations(
    rule: PriceThresholdRule, latest: Mapping[str, PricePoint], where: str
) -> list[Observation]:
    """Firing per token while its latest price is strictly above `above` or below `below`."""
    out: list[Observation] = []
    for symbol in rule.symbols:
        point = latest.get(symbol)
        if point is None:
            out.append(
                Observation(rule.id, rule.type, symbol, "no_data", f"no {symbol} price in {where}")
            )
            continue
        price = format_number(point.price)
        bound: float | None
        if rule.above is not None and point.price > rule.above:
            status, bound, text = "firing", rule.above, f"above {format_number(rule.above)}"
        elif rule.below is not None and point.price < rule.below:
            status, bound, text = "firing", rule.below, f"below {format_number(rule.below)}"
        else:
            bound = rule.above if rule.above is not None else rule.below
            status, text = "ok", "within bounds"
        out.append(
            Observation(
                rule.id,
                rule.type,
                symbol,
                status,  # type: ignore[arg-type]
                f"{symbol} {price} {text}",
                value=point.price,
                threshold=bound,
                observed_at=point.at,
                details={"above": rule.above, "below": rule.below, "source": where},
            )
        )
    return out


def move_observations(
    rule: PriceMoveRule, moves: Mapping[str, Move | None], where: str
) -> list[Observation]:
    """Firing per token while |move| >= pct in the rule's direction; value is the signed %."""
    window = format_duration(rule.window)
    out: list[Observation] = []
    if not moves:
        return [
            Observation(
                rule.id,
                rule.type,
                WHOLE_RULE,
                "no_data",
                f"no token has a {window} move in {where}",
            )
        ]
    for symbol, move in sorted(moves.items()):
        if move is None:
            out.append(
                Observation(
                    rule.id,
                    rule.type,
                    symbol,
                    "no_data",
                    f"{symbol}: no price {window} before its latest in {where}",
                )
            )
            continue
        pct = move.pct
        hit = {
            "up": pct >= rule.pct,
            "down": pct <= -rule.pct,
            "either": abs(pct) >= rule.pct,
        }[rule.direction]
        verb = "up" if pct >= 0 else "down"
        out.append(
            Observation(
                rule.id,
                rule.type,
                symbol,
                "firing" if hit else "ok",
                f"{symbol} {verb} {abs(pct):.2f}% in {window} "
                f"({format_number(move.start.price)} -> {format_number(move.end.price)})",
                value=pct,
                threshold=rule.pct if rule.direction != "down" else -rule.pct,
                observed_at=move.end.at,
                details={
                    "window": window,
                    "direction": rule.direction,
                    "start_price": move.start.price,
                    "start_at": move.start.at.isoformat(),
                    "end_price": move.end.price,
                    "source": where,
                },
            )
        )
    return out
