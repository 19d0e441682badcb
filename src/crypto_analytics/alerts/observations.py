"""What evaluating a rule says about one subject, before state, cooldown and delivery.

Why a value object between the rule math and the state machine: the same observation comes from
gold (the Airflow task), from the live stream or from the CLI, and the state machine treats them
alike; only `observed_at` (the data's own time) decides which one is newer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Status = Literal["ok", "firing", "no_data", "error"]

#: The subject of an observation about a rule as a whole (no data, an error).
WHOLE_RULE = "*"


@dataclass(frozen=True)
class Observation:
    """One (rule, subject) verdict: firing or ok with the measured value, or why there is none."""

    rule_id: str
    rule_type: str
    subject: str
    status: Status
    message: str
    value: float | None = None
    threshold: float | None = None
    observed_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def firing(self) -> bool:
        return self.status == "firing"


def format_number(value: float | None) -> str:
    """Prices from PEPE (1e-6) to BTC (1e5) readable: thousands separators, or significant digits."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    if abs(value) >= 1:
        return f"{value:.4g}" if abs(value) < 10 else f"{value:,.2f}"
    return f"{value:.6g}"
