"""The user's current portfolio, from a YAML file (config/holdings.yaml documents the format).

Why a file and not a table: holdings live in a wallet or an exchange account the platform never
connects to; a small reviewed file the user edits is the honest interface. Two ways to state them:
`quantities` (units of each token, valued at gold's last close before the run date) plus `cash`,
or `weights` (fractions of the portfolio, the rest cash) with an optional `portfolio_value` to
size the trades in money.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from pydantic import Field, ValidationError, model_validator

from crypto_analytics.config import StrictModel, Token
from crypto_ml.errors import InvalidInput

log = logging.getLogger(__name__)


class Holdings(StrictModel):
    """The contents of a holdings file."""

    #: Units held per token symbol.
    quantities: dict[str, float] | None = None
    #: Fractions of the portfolio per token symbol (with `portfolio_value` for money amounts).
    weights: dict[str, float] | None = None
    #: Cash in the quote currency (USD/USDT), counted in the portfolio, target weight 0.
    cash: float = Field(0.0, ge=0)
    portfolio_value: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_way_of_stating_them(self) -> Holdings:
        if (self.quantities is None) == (self.weights is None):
            raise ValueError("give exactly one of `quantities` or `weights`")
        amounts = self.quantities if self.quantities is not None else self.weights or {}
        negative = [s for s, v in amounts.items() if v < 0]
        if negative:
            raise ValueError(f"negative holdings for {', '.join(negative)} (long-only portfolios)")
        if self.weights is not None:
            total = sum(self.weights.values())
            if total > 1 + 1e-9:
                raise ValueError(f"weights sum to {total:.4f}, more than 1")
            if self.cash:
                raise ValueError("with `weights`, cash is 1 - sum(weights): leave `cash` out")
        elif self.portfolio_value is not None:
            raise ValueError(
                "`portfolio_value` goes with `weights`; quantities are valued at prices"
            )
        return self


@dataclass(frozen=True)
class CurrentPortfolio:
    """Current weights per symbol (summing with cash to 1) and, when known, the money value."""

    weights: pd.Series
    cash_weight: float
    value: float | None
    prices: pd.Series


def load_holdings(path: Path, universe: Sequence[Token]) -> Holdings:
    """Parse and validate a holdings file; InvalidInput naming the problem otherwise."""
    if not path.is_file():
        raise InvalidInput(
            f"holdings file {path} not found: copy config/holdings.yaml and list what you hold, "
            "or set portfolio.rebalancing.holdings_file"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"holdings file {path} is not valid YAML: {exc}") from exc
    try:
        holdings = Holdings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"holdings file {path}: {problems}") from exc
    known = {t.symbol for t in universe}
    held = holdings.quantities if holdings.quantities is not None else holdings.weights or {}
    unknown = sorted(s for s in held if s not in known)
    if unknown:
        raise InvalidInput(
            f"holdings file {path}: unknown symbols {', '.join(unknown)}; the universe is: "
            f"{', '.join(sorted(known))}"
        )
    return holdings


def current_portfolio(holdings: Holdings, last_close: pd.Series) -> CurrentPortfolio:
    """Weights of what is held now, quantities valued at `last_close` (per symbol)."""
    if holdings.weights is not None:
        weights = pd.Series(holdings.weights, dtype=float)
        cash = 1.0 - float(weights.sum())
        return CurrentPortfolio(weights, cash, holdings.portfolio_value, last_close)
    quantities = pd.Series(holdings.quantities, dtype=float)
    unpriced = [s for s in quantities.index if pd.isna(last_close.get(s))]
    if unpriced:
        raise InvalidInput(
            f"no close in gold for held tokens {', '.join(unpriced)} before the run date: "
            "ingest them or remove them from the holdings file"
        )
    values = quantities * last_close.reindex(quantities.index)
    total = float(values.sum()) + holdings.cash
    if total <= 0:
        raise InvalidInput("the holdings are worth nothing: nothing to rebalance")
    return CurrentPortfolio(values / total, holdings.cash / total, total, last_close)
