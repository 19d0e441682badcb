"""Prophet on log price: the seed's trend + seasonality model, one fit per token.

Fit: the token's observed days of the last ml.prophet.history_days up to the cut-off, y = log
close (Prophet handles missing days natively: a gap is simply absent, not filled); weekly
seasonality, yearly when two years exist, no daily seasonality for daily data.

Forecast from an origin o inside a fold (the fit is up to `fold_days` older than o): the model's
expected change over the horizon, yhat(o + h) - yhat(o), is added to the observed log close at o
(re-anchoring). Without it a fit k days old would be judged on a (k + h)-step forecast.

Intervals: the random walk's empirical ones (baselines.empirical_quantiles: the whole panel's
normalised moves known at the fit's cut-off, as naive's) around the anchored point, widened by
Prophet's error ratio to the random walk on the validation forecasts known at the cut-off
(`interval_scale`, set by the pipeline from the walk-forward backtest: error_ratio.py), not
Prophet's own. Prophet's interval is for yhat, the smooth curve plus
observation noise around it; once the point is re-anchored on the last close that is the wrong
object, and on real history it covered 98-99 % at 1 day (80 % nominal) and 39-57 % at 30 days
(measured on three half-year windows). Prophet is therefore fitted without its Monte Carlo
interval draws (uncertainty_samples=0), which also makes its predictions several times faster.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from crypto_ml.forecasting.base import FitResult, Origins
from crypto_ml.forecasting.baselines import empirical_quantiles, interval_spreads
from crypto_ml.forecasting.calibration import PooledSpreads
from crypto_ml.forecasting.error_ratio import widen_intervals
from crypto_ml.forecasting.forecasts import concat_forecasts, make_forecasts
from crypto_ml.forecasting.panel import Panel
from crypto_ml.forecasting.policy import Skip, training_skip

log = logging.getLogger(__name__)


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
    #: The empirical intervals' look-back (ml.empirical_window_days, ml.min_calibration_periods).
    window_days: int = 365
    min_periods: int = 20
    #: The interval spreads read at the fit's cut-off (None: each token's own moves).
    pooled: PooledSpreads | None = None
    #: Per horizon, the factor on the random walk's radii: Prophet's error ratio to the random
    #: walk on the validation forecasts known at the cut-off (error_ratio.py; none: 1).
    interval_scale: dict[int, float] = field(default_factory=dict)
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
            predicted = model.predict(pd.DataFrame({"ds": dates})).set_index("ds")
            yhat = predicted["yhat"]
            token = panel[symbol]
            position = token.frame.index.get_indexer(days)
            base = token.frame["log_close"].to_numpy()[position]
            for horizon, target in zip(horizons, targets, strict=True):
                point = base + yhat.reindex(target).to_numpy() - yhat.reindex(days).to_numpy()
                quantiles = empirical_quantiles(
                    token, position, horizon, point, self.window_days, self.min_periods,
                    self.pooled,
                )  # fmt: skip
                frames.append(make_forecasts(symbol, days, horizon, base, quantiles))
        # models pickled before the scale existed have no attribute: the radii as they were
        return widen_intervals(concat_forecasts(frames), getattr(self, "interval_scale", {}))


@dataclass(frozen=True)
class ProphetFamily:
    min_history: int
    history_days: int
    changepoint_prior_scale: float
    seed: int
    window_days: int = 365
    min_periods: int = 20
    #: Horizons whose pooled interval spreads the fit reads (others: each token's own moves).
    horizons: tuple[int, ...] = (1, 7, 30)
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
                uncertainty_samples=0,  # its intervals are not used (module docstring)
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
        pooled = interval_spreads(panel, cutoff, self.horizons, self.min_periods)
        fitted = ProphetModel(
            sorted(models), models, self.seed, self.window_days, self.min_periods, pooled
        )
        return FitResult(fitted, skips)
