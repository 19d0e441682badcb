"""One global LSTM for every token: shared weights, per-token normalisation, quantile outputs.

Inputs at an origin: the last `window_days` daily log returns divided by the token's scale (the
standard deviation of its returns in the training data), plus a mask channel that is 1 on days
with no return (a gap or the day after it); masked returns enter as 0. That is the documented gap
treatment: the model sees that a day is missing, nothing is filled in. Outputs: for each horizon
h, five quantiles (2.5/10/50/90/97.5 %) of the h-day log change divided by scale × sqrt(h),
trained with the pinball loss; crossing quantiles are sorted at prediction (monotone
rearrangement). A training sample's targets must lie inside the training panel (cut at the
cut-off), so no target is seen before its day.

Deterministic on CPU: seeded weights and shuffling, torch's deterministic algorithms, threads
capped by ml.threads. Pegged and constant series are not trained on (policy.py).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from crypto_ml.errors import InvalidInput
from crypto_ml.forecasting.base import FitResult, Origins
from crypto_ml.forecasting.forecasts import (
    QUANTILE_LEVELS,
    concat_forecasts,
    make_forecasts,
)
from crypto_ml.forecasting.panel import Panel, TokenSeries
from crypto_ml.forecasting.policy import Skip, training_skip
from crypto_ml.forecasting.threads import limited_threads

log = logging.getLogger(__name__)

QUANTILE_COLUMNS = list(QUANTILE_LEVELS)
LEVELS = np.array([QUANTILE_LEVELS[c] for c in QUANTILE_COLUMNS], dtype=np.float32)
N_INPUTS = 2


def build_network(hidden_size: int, layers: int, n_horizons: int):  # noqa: ANN201 - torch module
    import torch
    from torch import nn

    class QuantileLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(N_INPUTS, hidden_size, layers, batch_first=True)
            self.head = nn.Linear(hidden_size, n_horizons * len(QUANTILE_COLUMNS))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(x)
            return self.head(out[:, -1, :]).view(-1, n_horizons, len(QUANTILE_COLUMNS))

    return QuantileLSTM()


def _inputs(token: TokenSeries, scale: float, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows ending at every position >= window - 1: (n_windows, window, 2), and their end positions."""
    returns = token.frame["log_return"].to_numpy() / scale
    missing = ~np.isfinite(returns)
    channels = np.stack([np.where(missing, 0.0, returns), missing.astype(float)], axis=1)
    if len(channels) < window:
        return np.empty((0, window, N_INPUTS), dtype=np.float32), np.empty(0, dtype=int)
    windows = sliding_window_view(channels, (window, N_INPUTS))[:, 0]
    return windows.astype(np.float32), np.arange(window - 1, len(channels))


def _targets(token: TokenSeries, scale: float, horizons: Sequence[int]) -> np.ndarray:
    """(n_days, n_horizons): the h-day log change from each day, / (scale × sqrt(h)); NaN when
    either end is missing or past the panel's end."""
    log_close = token.frame["log_close"].to_numpy()
    out = np.full((len(log_close), len(horizons)), np.nan)
    for j, h in enumerate(horizons):
        out[: len(log_close) - h, j] = (log_close[h:] - log_close[:-h]) / (scale * math.sqrt(h))
    return out


@dataclass
class LstmModel:
    symbols: list[str]
    scales: dict[str, float]
    horizons: list[int]
    window_days: int
    hidden_size: int
    layers: int
    state_dict: dict[str, object]
    threads: int
    family: str = "lstm"
    _network: object | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_network"] = None
        return state

    def network(self):  # noqa: ANN201 - torch module
        if self._network is None:
            net = build_network(self.hidden_size, self.layers, len(self.horizons))
            net.load_state_dict(self.state_dict)
            net.eval()
            self._network = net
        return self._network

    def forecast(self, panel: Panel, origins: Origins, horizons: Sequence[int]) -> pd.DataFrame:
        import torch

        unknown = sorted(set(horizons) - set(self.horizons))
        if unknown:
            raise InvalidInput(
                f"the LSTM was trained for horizons {self.horizons}; cannot forecast {unknown}"
            )
        frames: list[pd.DataFrame] = []
        if not self.scales:  # no token had the history to train on: nothing to load
            return concat_forecasts(frames)
        with limited_threads(self.threads), torch.no_grad():
            net = self.network()
            for symbol, days in origins.items():
                if symbol not in self.scales or symbol not in panel or len(days) == 0:
                    continue
                token, scale = panel[symbol], self.scales[symbol]
                windows, ends = _inputs(token, scale, self.window_days)
                position = token.frame.index.get_indexer(days)
                row = position - (self.window_days - 1)  # windows[i] ends at ends[i] = i + w - 1
                ok = (row >= 0) & (row < len(ends))
                if not ok.any():
                    continue
                days_ok, rows = days[ok], row[ok]
                out = net(torch.from_numpy(windows[rows])).numpy()
                out = np.sort(out, axis=2)
                base = token.frame["log_close"].to_numpy()[position[ok]]
                for j, horizon in enumerate(self.horizons):
                    if horizon not in horizons:
                        continue
                    step = scale * math.sqrt(horizon)
                    quantiles = {
                        c: base + out[:, j, k] * step for k, c in enumerate(QUANTILE_COLUMNS)
                    }
                    frames.append(make_forecasts(symbol, days_ok, horizon, base, quantiles))
        return concat_forecasts(frames)


@dataclass(frozen=True)
class LstmFamily:
    min_history: int
    horizons: tuple[int, ...]
    window_days: int
    hidden_size: int
    layers: int
    epochs: int
    batch_size: int
    learning_rate: float
    history_days: int
    seed: int
    threads: int
    sample_stride_days: int = 1
    name: str = "lstm"
    per_symbol: bool = False

    def training_set(
        self, panel: Panel, cutoff: pd.Timestamp, symbols: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float], list[Skip]]:
        """Windows, scaled targets (NaN = unknown at the cut-off), per-token scales, skips."""
        panel = panel.truncate(cutoff)  # targets after the cut-off do not exist for the fit
        xs, ys, scales, skips = [], [], {}, []
        first_origin = cutoff - pd.Timedelta(days=self.history_days)
        for symbol in symbols:
            if symbol not in panel:
                continue
            token = panel[symbol]
            skip = training_skip(token, self.name, cutoff, self.min_history)
            if skip:
                skips.append(skip)
                continue
            recent = token.frame["log_return"].loc[first_origin:cutoff].dropna()
            scale = float(recent.std())
            if not math.isfinite(scale) or scale <= 0:
                skips.append(
                    Skip(self.name, symbol, "train", "no return variation to scale by").log()
                )
                continue
            windows, ends = _inputs(token, scale, self.window_days)
            targets = _targets(token, scale, self.horizons)[ends]
            dates = token.frame.index[ends]
            # every n-th day counted back from the cut-off, so a fit's samples do not depend on
            # where the token's history starts
            on_stride = ((cutoff - pd.DatetimeIndex(dates)).days % self.sample_stride_days) == 0
            keep = (
                token.frame["observed"].to_numpy()[ends]
                & (dates >= first_origin)
                & on_stride
                & np.isfinite(targets).any(axis=1)
            )
            scales[symbol] = scale
            xs.append(windows[keep])
            ys.append(targets[keep])
        if not xs:
            empty = np.empty((0, self.window_days, N_INPUTS), dtype=np.float32)
            return empty, np.empty((0, len(self.horizons))), scales, skips
        return np.concatenate(xs), np.concatenate(ys), scales, skips

    def fit(self, panel: Panel, cutoff: pd.Timestamp, symbols: Sequence[str]) -> FitResult:
        import torch

        x, y, scales, skips = self.training_set(panel, cutoff, symbols)
        if len(x) == 0:
            model = LstmModel([], {}, list(self.horizons), self.window_days, self.hidden_size,
                              self.layers, {}, self.threads)  # fmt: skip
            return FitResult(model, skips)
        with limited_threads(self.threads):
            deterministic = torch.are_deterministic_algorithms_enabled()
            torch.use_deterministic_algorithms(True)
            try:
                state = self._train(x, y)
            finally:
                torch.use_deterministic_algorithms(deterministic)
        model = LstmModel(sorted(scales), scales, list(self.horizons), self.window_days,
                          self.hidden_size, self.layers, state, self.threads)  # fmt: skip
        return FitResult(model, skips)

    def _train(self, x: np.ndarray, y: np.ndarray) -> dict[str, object]:
        import torch

        torch.manual_seed(self.seed)
        net = build_network(self.hidden_size, self.layers, len(self.horizons))
        optimiser = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        inputs = torch.from_numpy(x)
        known = torch.from_numpy(np.isfinite(y))
        targets = torch.from_numpy(np.nan_to_num(y).astype(np.float32))
        levels = torch.from_numpy(LEVELS)
        generator = torch.Generator().manual_seed(self.seed)
        net.train()
        for epoch in range(self.epochs):
            order = torch.randperm(len(inputs), generator=generator)
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                predicted = net(inputs[batch])
                error = targets[batch].unsqueeze(2) - predicted
                loss_terms = torch.maximum(levels * error, (levels - 1) * error)
                weight = known[batch].unsqueeze(2).float()
                loss = (loss_terms * weight).sum() / (weight.sum() * len(LEVELS)).clamp(min=1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            log.debug("lstm epoch %d: pinball %.4f", epoch + 1, total / len(order))
        return {k: v.detach().clone() for k, v in net.state_dict().items()}
