"""Prophet on log price: the seed's trend + seasonality model, one fit per token.

Fit: the token's observed days of the last ml.prophet.history_days up to the cut-off, y = log
close (Prophet handles missing days natively: a gap is simply absent, not filled); weekly
seasonality, yearly when two years exist, no daily seasonality for daily data.

Forecast from an origin o inside a fold (the fit is up to `fold_days` older than o): the model's
expected change over the horizon, yhat(o + h) - yhat(o), is added to the observed log close at o
(re-anchoring). Without it a fit k days old would be judged on a (k + h)-step forecast. The 80 %
interval is Prophet's own (interval_width 0.8, its trend-change simulation plus observation
noise) around the anchored point; the 95 % interval assumes the same spread is Gaussian
(half-width × 1.96 / 1.2816), because Prophet gives one interval per fit.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crypto_ml.forecasting.base import FitResult, Origins
from crypto_ml.forecasting.forecasts import concat_forecasts, make_forecasts
from crypto_ml.forecasting.panel import Panel
from crypto_ml.forecasting.policy import Skip, training_skip

log = logging.getLogger(__name__)

Z80 = 1.2815515655446004
Z95 = 1.959963984540054


def _quiet() -> None:
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Prophet 1.5 calls pandas APIs that pandas 3.1 deprecates (inplace=, convert_dates=)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="prophet")


@dataclass
class ProphetModel:
    symbols: list[str]
    #: Fitted models serialised with prophet.serialize.model_to_json (portable, picklable).
    models_json: dict[str, str]
    seed: int
    family: str = "prophet"
    _loaded: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_loaded"] = {}
        return state

    def model(self, symbol: str):  # noqa: ANN201 - prophet.Prophet, imported lazily
        if symbol not in self._loaded:
            from prophet.serialize import model_from_json

            self._loaded[symbol] = model_from_json(self.models_json[symbol])
        return self._loaded[symbol]

    def forecast(self, panel: Panel, origins: Origins, horizons: Sequence[int]) -> pd.DataFrame:
        _quiet()
        frames = []
        for symbol, days in origins.items():
            if symbol not in self.models_json or symbol not in panel or len(days) == 0:
                continue
            model = self.model(symbol)
            targets = [days + pd.Timedelta(days=h) for h in horizons]
            dates = days
            for target in targets:
                dates = dates.union(target)
            np.random.seed(self.seed)  # Prophet samples its intervals with numpy's global RNG
            predicted = model.predict(pd.DataFrame({"ds": dates})).set_index("ds")
            yhat = predicted["yhat"]
            base = panel[symbol].frame["log_close"].reindex(days).to_numpy()
            for horizon, target in zip(horizons, targets, strict=True):
                at_target = yhat.reindex(target).to_numpy()
                point = base + at_target - yhat.reindex(days).to_numpy()
                lower = predicted["yhat_lower"].reindex(target).to_numpy() - at_target
                upper = predicted["yhat_upper"].reindex(target).to_numpy() - at_target
                sigma = (upper - lower) / (2 * Z80)
                quantiles = {
                    "point": point,
                    "q10": point + lower,
                    "q90": point + upper,
                    "q025": point - Z95 * sigma,
                    "q975": point + Z95 * sigma,
                }
                frames.append(make_forecasts(symbol, days, horizon, base, quantiles))
        return concat_forecasts(frames)


@dataclass(frozen=True)
class ProphetFamily:
    min_history: int
    history_days: int
    changepoint_prior_scale: float
    uncertainty_samples: int
    seed: int
    name: str = "prophet"
    per_symbol: bool = True

    def fit(self, panel: Panel, cutoff: pd.Timestamp, symbols: Sequence[str]) -> FitResult:
        from prophet import Prophet
        from prophet.serialize import model_to_json

        _quiet()
        panel = panel.truncate(cutoff)  # a fit never sees past its cut-off, whatever it is given
        skips: list[Skip] = []
        models: dict[str, str] = {}
        for symbol in symbols:
            if symbol not in panel:
                continue
            token = panel[symbol]
            skip = training_skip(token, self.name, cutoff, self.min_history)
            if skip:
                skips.append(skip)
                continue
            frame = token.frame.loc[:cutoff]
            frame = frame.loc[frame.index > cutoff - pd.Timedelta(days=self.history_days)]
            observed = frame.loc[frame["observed"], "log_close"]
            history = pd.DataFrame({"ds": observed.index, "y": observed.to_numpy()})
            model = Prophet(
                changepoint_prior_scale=self.changepoint_prior_scale,
                interval_width=0.8,
                uncertainty_samples=self.uncertainty_samples,
                daily_seasonality=False,
                weekly_seasonality=True,
                yearly_seasonality="auto",
            )
            try:
                model.fit(history, seed=self.seed)
            except (RuntimeError, ValueError) as exc:
                skips.append(Skip(self.name, symbol, "train", f"fit failed: {exc}").log())
                continue
            models[symbol] = model_to_json(model)
        return FitResult(ProphetModel(sorted(models), models, self.seed), skips)
