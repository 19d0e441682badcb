"""The daily history of every token as the models see it: one calendar-daily frame per token.

Why a calendar index: horizons are calendar days (crypto never closes), so "7 days ahead" is a
shift by seven rows only if every day has a row. A missing day is a row with a NaN close and
`observed = False`: the gap is explicit, never filled. Returns exist only between consecutive
observed days, the same definition silver and gold use (dbt/macros/returns.sql), so a return
after a gap is NaN rather than a multi-day move counted as one.

`Panel.truncate(day)` is how leakage is prevented: every fit receives a panel cut at its cut-off,
and every derived column here is backward-looking (rolling windows end at their own row).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_ml.errors import InvalidInput, NotEnoughData

log = logging.getLogger(__name__)

#: Gold feature columns carried into the panel when present (NaN otherwise).
MART_FEATURES: tuple[str, ...] = (
    "volatility_90d", "drawdown", "sma_20", "sma_50", "sma_200", "rsi_14", "macd_histogram",
    "bb_percent_b", "bb_bandwidth", "market_cap",
)  # fmt: skip

#: Trailing window (days) of the daily volatility scale `sigma`, and the returns it needs.
SIGMA_WINDOW = 30
SIGMA_MIN_RETURNS = 20


@dataclass(frozen=True)
class TokenSeries:
    """One token's calendar-daily history.

    `frame` has a daily DatetimeIndex from the first to the last observed day, and columns close,
    log_close, observed, log_return, sigma (trailing 30-day standard deviation of daily log
    returns, at least 20 of them), plus MART_FEATURES.
    """

    symbol: str
    is_stablecoin: bool
    frame: pd.DataFrame

    @property
    def first_day(self) -> pd.Timestamp:
        return self.frame.index[0]

    @property
    def last_day(self) -> pd.Timestamp:
        return self.frame.index[-1]

    def observed_days(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.frame.index[self.frame["observed"].to_numpy()])

    def observed_count(self, until: pd.Timestamp | None = None) -> int:
        observed = self.frame["observed"]
        if until is not None:
            observed = observed.loc[:until]
        return int(observed.sum())

    def truncate(self, until: pd.Timestamp) -> TokenSeries | None:
        """Rows up to and including `until` (None when nothing is left)."""
        cut = self.frame.loc[:until]
        observed = cut.index[cut["observed"].to_numpy()]
        if len(observed) == 0:
            return None
        return TokenSeries(self.symbol, self.is_stablecoin, cut.loc[: observed[-1]])


def _token_frame(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.set_index("date").sort_index()
    days = pd.date_range(rows.index[0], rows.index[-1], freq="D")
    frame = pd.DataFrame(index=days)
    frame["close"] = rows["close"].reindex(days)
    frame["observed"] = frame["close"].notna()
    frame["log_close"] = np.log(frame["close"])
    # One definition of a return: consecutive observed days only (NaN after a gap).
    frame["log_return"] = frame["log_close"].diff()
    frame["sigma"] = frame["log_return"].rolling(SIGMA_WINDOW, min_periods=SIGMA_MIN_RETURNS).std()
    for column in MART_FEATURES:
        frame[column] = rows[column].astype("float64").reindex(days) if column in rows else np.nan
    return frame


@dataclass(frozen=True)
class Panel:
    """Every token's TokenSeries, and the newest day any of them has (the as-of day)."""

    series: Mapping[str, TokenSeries]

    @classmethod
    def from_features(cls, features: pd.DataFrame) -> Panel:
        """Build from long rows (symbol, date, close[, is_stablecoin, MART_FEATURES...]).

        Raises NotEnoughData when there is nothing to model and InvalidInput when the rows break
        the contract (duplicate days, non-positive prices). Rows with no close are dropped with a
        warning: they are missing days, kept as gaps.
        """
        missing = {"symbol", "date", "close"} - set(features.columns)
        if missing:
            raise InvalidInput(f"feature rows lack the columns {sorted(missing)}")
        if features.empty:
            raise NotEnoughData(
                "gold.token_daily_features is empty: build gold first "
                "(`crypto-analytics dbt build`, or `make demo` for the offline market)"
            )
        rows = features.copy()
        rows["date"] = pd.to_datetime(rows["date"]).dt.tz_localize(None).dt.normalize()
        rows["close"] = rows["close"].astype("float64")
        no_close = rows["close"].isna() | ~np.isfinite(rows["close"])
        if no_close.any():
            log.warning(
                "%d feature rows have no close (NaN/inf): treated as missing days, not filled",
                int(no_close.sum()),
            )
            rows = rows.loc[~no_close]
        if (rows["close"] <= 0).any():
            bad = rows.loc[rows["close"] <= 0, ["symbol", "date"]].head(3).to_dict("records")
            raise InvalidInput(f"closes must be positive; e.g. {bad}")
        duplicated = rows.duplicated(["symbol", "date"])
        if duplicated.any():
            bad = rows.loc[duplicated, ["symbol", "date"]].head(3).to_dict("records")
            raise InvalidInput(f"one row per (symbol, date) expected; duplicates: {bad}")
        if "is_stablecoin" not in rows:
            rows["is_stablecoin"] = False
        series: dict[str, TokenSeries] = {}
        for symbol, token_rows in rows.groupby("symbol", sort=True):
            if token_rows.empty:
                continue
            series[str(symbol)] = TokenSeries(
                symbol=str(symbol),
                is_stablecoin=bool(token_rows["is_stablecoin"].iloc[0]),
                frame=_token_frame(token_rows),
            )
        if not series:
            raise NotEnoughData("no token has a single daily close in the feature rows")
        return cls(series)

    @property
    def symbols(self) -> list[str]:
        return sorted(self.series)

    @property
    def as_of(self) -> pd.Timestamp:
        return max(s.last_day for s in self.series.values())

    def __iter__(self) -> Iterator[TokenSeries]:
        return iter(self.series[s] for s in self.symbols)

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, symbol: str) -> TokenSeries:
        return self.series[symbol]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.series

    def truncate(self, until: pd.Timestamp) -> Panel:
        """Every token's rows up to and including `until`; tokens with none left drop out."""
        cut = {s: t.truncate(until) for s, t in self.series.items()}
        return Panel({s: t for s, t in cut.items() if t is not None})

    def select(self, symbols: list[str]) -> Panel:
        return Panel({s: self.series[s] for s in symbols if s in self.series})

    def to_features(self) -> pd.DataFrame:
        """Back to long rows (observed days only), e.g. as the input of a logged pyfunc model."""
        frames = []
        for token in self:
            observed = token.frame.loc[token.frame["observed"], ["close", *MART_FEATURES]]
            frames.append(
                observed.rename_axis("date")
                .reset_index()
                .assign(symbol=token.symbol, is_stablecoin=token.is_stablecoin)
            )
        columns = ["symbol", "date", "is_stablecoin", "close", *MART_FEATURES]
        return pd.concat(frames, ignore_index=True).loc[:, columns]
