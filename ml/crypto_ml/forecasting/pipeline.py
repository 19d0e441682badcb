"""The stages of a training and of a prediction refresh, as the CLI and the Airflow DAGs run them.

Training: `prepare_training` (gold features → a run folder with the features and the plan) →
`train_job` for each job of the plan (a family, or a group of tokens of a per-token family;
Airflow maps these) → `evaluate_training` (ensemble, metrics, feature importance, skips → schema
ml) → `register_training` (MLflow runs, registry versions, the champion decision) →
`predict` (forecasts from the registry's newest versions → schema ml, drift check).

Why a run folder: the data half uses the lake as its task boundary, and so does this. Stages
exchange files under ml.work_dir/runs/<run>/, XCom carries the plan's path, and a failed stage
can be retried from its inputs. Each stage that writes the warehouse does it in one transaction.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crypto_analytics.config import MlConfig, Settings, get_settings
from crypto_analytics.contract import PERIODS_PER_YEAR
from crypto_analytics.warehouse import database_url, transaction
from crypto_ml import data
from crypto_ml.errors import InvalidInput, NotEnoughData
from crypto_ml.forecasting import store
from crypto_ml.forecasting.backtest import (
    FamilyRun,
    Timing,
    attach_truth,
    run_family,
    run_volatility,
)
from crypto_ml.forecasting.baselines import RandomWalkModel
from crypto_ml.forecasting.calibration import random_walk_fallback
from crypto_ml.forecasting.catalogue import (
    ENSEMBLE,
    VOLATILITY,
    base_families,
    price_family,
    volatility_family,
)
from crypto_ml.forecasting.ensemble import EnsembleState, ensemble_forecasts, fit_ensemble
from crypto_ml.forecasting.error_ratio import validation_ratios, widen_intervals
from crypto_ml.forecasting.folds import Fold, walk_forward_folds
from crypto_ml.forecasting.forecasts import QUANTILE_LEVELS
from crypto_ml.forecasting.garch import GarchModel, RollingVolatility
from crypto_ml.forecasting.metrics import (
    common_point_scores,
    evaluate_forecasts,
    evaluate_volatility,
    validation_mae,
)
from crypto_ml.forecasting.panel import Panel
from crypto_ml.forecasting.policy import Skip, stale_skip
from crypto_ml.forecasting.prophet_model import ProphetModel

log = logging.getLogger(__name__)

#: Run folders kept under ml.work_dir/runs (older ones are removed when a new run starts).
KEEP_RUNS = 5
IMPORTANCE_SCORING = "neg_mean_absolute_error (scaled h-day change)"


def effective_ml(settings: Settings, demo: bool) -> MlConfig:
    """The `ml` settings, with the demo's reductions applied when `demo` (ml.demo says what)."""
    ml = settings.ml
    if not demo:
        return ml
    reduced = ml.demo
    return ml.model_copy(
        update={
            "folds": reduced.folds,
            "fold_days": reduced.fold_days,
            "lstm": ml.lstm.model_copy(update={"epochs": reduced.lstm_epochs}),
            "gbm": ml.gbm.model_copy(
                update={
                    "max_iter": reduced.gbm_max_iter,
                    "permutation_repeats": reduced.permutation_repeats,
                }
            ),
        }
    )


# --- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One training task: a family over some tokens."""

    family: str
    symbols: list[str]
    label: str


@dataclass(frozen=True)
class Plan:
    run_dir: str
    as_of: date
    demo: bool
    horizons: list[int]
    families: list[str]
    symbols: list[str]
    folds: list[dict[str, Any]]
    jobs: list[Job]
    created_at: str

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / "plan.json"

    def fold_plan(self) -> list[Fold]:
        return [
            Fold(
                f["number"],
                pd.Timestamp(f["cutoff"]),
                pd.Timestamp(f["first_origin"]),
                pd.Timestamp(f["last_origin"]),
            )  # fmt: skip
            for f in self.folds
        ]

    def job(self, label: str) -> Job:
        for job in self.jobs:
            if job.label == label:
                return job
        raise InvalidInput(f"no job {label!r} in {self.path}; jobs: {[j.label for j in self.jobs]}")

    def save(self) -> Path:
        payload = asdict(self)
        payload["as_of"] = self.as_of.isoformat()
        self.path.write_text(json.dumps(payload, indent=2))
        return self.path

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        raw = json.loads(Path(path).read_text())
        raw["as_of"] = date.fromisoformat(raw["as_of"])
        raw["jobs"] = [Job(**j) for j in raw["jobs"]]
        return cls(**raw)


def _features_path(run_dir: Path) -> Path:
    return run_dir / "features.parquet"


def load_panel(plan: Plan) -> Panel:
    return Panel.from_features(pd.read_parquet(_features_path(Path(plan.run_dir))))


def _groups(symbols: list[str], size: int) -> list[list[str]]:
    return [symbols[i : i + size] for i in range(0, len(symbols), size)]


def _prune_runs(runs: Path, current: Path) -> None:
    """Keep `current` and the KEEP_RUNS - 1 other run folders touched last. By time, not by name:
    a name starts with its as-of day, and a run for an earlier day (`--as-of`) is still new."""
    others = [p for p in runs.iterdir() if p.is_dir() and p != current]
    others.sort(key=lambda p: p.stat().st_mtime_ns)
    for old in others[: max(0, len(others) - (KEEP_RUNS - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def prepare_training(
    settings: Settings | None = None,
    *,
    as_of: date | None = None,
    symbols: Sequence[str] | None = None,
    demo: bool = False,
    run_name: str | None = None,
) -> Path:
    """Read gold, fix the folds and the jobs; returns the plan's path.

    Raises NotEnoughData when gold is empty or too short for a single fold."""
    settings = settings or get_settings()
    ml = effective_ml(settings, demo)
    if symbols:
        symbols = [settings.token(s).symbol for s in symbols]
    features = data.read_daily_features(database_url(settings), symbols, until=as_of)
    panel = Panel.from_features(features)
    plan_folds = walk_forward_folds(panel.as_of, ml.folds, ml.fold_days, max(ml.horizons))
    shortest = min(ml.min_history_days.naive, ml.min_history_days.drift)
    ready = [t.symbol for t in panel if t.observed_count(plan_folds[0].cutoff) >= shortest]
    if not ready:
        longest = max(t.observed_count() for t in panel)
        needed = shortest + (panel.as_of - plan_folds[0].cutoff).days
        raise NotEnoughData(
            f"gold holds at most {longest} daily closes per token; a backtest of {ml.folds} folds "
            f"of {ml.fold_days} days with {max(ml.horizons)}-day horizons needs about {needed}. "
            "Ingest more history (`crypto-analytics backfill`) or reduce ml.folds / ml.fold_days"
        )
    families = base_families(ml)
    jobs: list[Job] = []
    for family in families:
        if price_family(family, ml).per_symbol and family not in ("naive", "drift"):
            for n, group in enumerate(_groups(panel.symbols, ml.symbols_per_task)):
                jobs.append(Job(family, group, f"{family}_{n + 1}"))
        else:
            jobs.append(Job(family, panel.symbols, family))
    for n, group in enumerate(_groups(panel.symbols, ml.symbols_per_task)):
        jobs.append(Job(VOLATILITY, group, f"{VOLATILITY}_{n + 1}"))
    stamp = run_name or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_dir = settings.resolve(ml.work_dir) / "runs" / f"{panel.as_of.date()}_{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    _prune_runs(run_dir.parent, run_dir)
    features.to_parquet(_features_path(run_dir), index=False)
    plan = Plan(
        run_dir=str(run_dir),
        as_of=panel.as_of.date(),
        demo=demo,
        horizons=list(ml.horizons),
        families=families,
        symbols=panel.symbols,
        folds=[
            {
                "number": f.number,
                "cutoff": str(f.cutoff.date()),
                "first_origin": str(f.first_origin.date()),
                "last_origin": str(f.last_origin.date()),
            }
            for f in plan_folds
        ],  # fmt: skip
        jobs=jobs,
        created_at=datetime.now(UTC).isoformat(),
    )
    log.info(
        "training plan for %s: %d tokens, %d folds, %d jobs in %s",
        plan.as_of, len(plan.symbols), len(plan_folds), len(jobs), run_dir,
    )  # fmt: skip
    return plan.save()


# --- training jobs ----------------------------------------------------------------------------


@dataclass
class VolatilityRun:
    forecasts: pd.DataFrame
    final: GarchModel | None
    skips: list[Skip]
    timing: Timing


def _result_path(plan: Plan, label: str) -> Path:
    folder = Path(plan.run_dir) / "jobs"
    folder.mkdir(exist_ok=True)
    return folder / f"{label}.pkl"


def train_job(plan_path: str | Path, label: str, *, final_fit: bool = True) -> Path:
    """Backtest one job's family on its tokens (and fit it on everything); returns the result's
    path. Training a per-token family on one group never touches the others."""
    plan = Plan.load(plan_path)
    settings = get_settings()
    ml = effective_ml(settings, plan.demo)
    job = plan.job(label)
    panel = load_panel(plan)
    folds = plan.fold_plan()
    started = time.perf_counter()
    result: FamilyRun | VolatilityRun
    if job.family == VOLATILITY:
        forecasts, final, skips, timing = run_volatility(
            volatility_family(ml), panel, folds, plan.horizons, job.symbols, final_fit=final_fit
        )
        result = VolatilityRun(forecasts, final, skips, timing)
    else:
        result = run_family(
            price_family(job.family, ml),
            panel,
            folds,
            plan.horizons,
            job.symbols,
            final_fit=final_fit,
            importance_repeats=ml.gbm.permutation_repeats if job.family == "gbm" else 0,
            seed=ml.seed,
        )
    path = _result_path(plan, label)
    with open(path, "wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    log.info("job %s done in %.1f s", label, time.perf_counter() - started)
    return path


def _load(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)  # our own run folder's files


def merge_fitted(parts: list[Any]) -> Any:
    """One universe model from the per-group fits of a per-token family."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, RandomWalkModel):
        return replace(first, symbols=sorted({s for p in parts for s in p.symbols}))
    if isinstance(first, ProphetModel):
        models = {k: v for p in parts for k, v in p.models_json.items()}
        return replace(first, symbols=sorted(models), models_json=models, _loaded={})
    if isinstance(first, GarchModel):
        params = {k: v for p in parts for k, v in p.params.items()}
        return GarchModel(sorted(params), params, first.history_days)
    raise InvalidInput(f"cannot merge {type(first).__name__} fits from several jobs")


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Everything a training learnt, for registration and for the README's table."""

    as_of: pd.Timestamp
    plan: list[Fold]
    horizons: list[int]
    fitted: dict[str, Any]
    ensemble: EnsembleState | None
    scored: pd.DataFrame
    volatility: pd.DataFrame
    metrics: pd.DataFrame
    importance: pd.DataFrame
    skips: list[Skip]
    timings: dict[str, Timing]
    window: tuple[pd.Timestamp, pd.Timestamp]
    validation: dict[str, dict[int, float]] = field(default_factory=dict)


def _add_timing(timings: dict[str, Timing], family: str, timing: Timing) -> None:
    total = timings.setdefault(family, Timing())
    total.fit_seconds += timing.fit_seconds
    total.predict_seconds += timing.predict_seconds
    total.fits += timing.fits


def ensemble_backtest(
    scored_members: pd.DataFrame, plan: list[Fold], panel: Panel, members: list[str], ml: MlConfig
) -> pd.DataFrame:
    """The ensemble's forecasts in folds 2.., each calibrated on what its cut-off knew."""
    frames = []
    for fold in plan[1:]:
        state = fit_ensemble_at(scored_members, fold.cutoff, panel, members, ml)
        current = scored_members.loc[scored_members["fold"] == fold.number]
        frames.append(ensemble_forecasts(state, current).assign(fold=fold.number))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def fit_ensemble_at(
    scored: pd.DataFrame, cutoff: pd.Timestamp, panel: Panel, members: list[str], ml: MlConfig
) -> EnsembleState:
    """fit_ensemble at a cut-off, with the random walk's scores known then as its fallback."""
    fallback = random_walk_fallback(panel, cutoff, list(ml.horizons))
    return fit_ensemble(
        scored, cutoff, ml.ensemble.calibration_days, members,
        min_periods=ml.min_calibration_periods, fallback=fallback,
    )  # fmt: skip


def widen_prophet_intervals(
    scored: pd.DataFrame,
    plan: list[Fold],
    fitted: dict[str, Any],
    as_of: pd.Timestamp,
    calibration_days: int,
) -> pd.DataFrame:
    """Prophet's backtest intervals, fold by fold, and its final fit's (`interval_scale`), widened
    by its error ratio to the random walk on the validation forecasts each cut-off knew
    (error_ratio.py; prophet_model.py says why). Fold 1 knows none: the random walk's radii."""
    model = "prophet"
    is_model = (scored["model"] == model).to_numpy()
    if not is_model.any():
        return scored
    out = scored.copy()
    columns = [c for c in QUANTILE_LEVELS if c != "point"]
    for fold in plan:
        rows = out.loc[is_model & (out["fold"] == fold.number).to_numpy()]
        ratios = validation_ratios(scored, model, fold.cutoff, calibration_days)
        out.loc[rows.index, columns] = widen_intervals(rows, ratios)[columns]
        log.info("prophet fold %d (cut-off %s): radii x %s", fold.number, fold.cutoff.date(),
                 {h: round(r, 3) for h, r in ratios.items()})  # fmt: skip
    if isinstance(fitted.get(model), ProphetModel):
        fitted[model].interval_scale = validation_ratios(scored, model, as_of, calibration_days)
    return out


def build_evaluation(
    panel: Panel,
    plan: list[Fold],
    horizons: list[int],
    family_runs: dict[str, list[FamilyRun]],
    volatility_runs: list[VolatilityRun],
    ml: MlConfig,
) -> Evaluation:
    """Ensemble, metrics and importance from the family runs (pure: no I/O)."""
    timings: dict[str, Timing] = {}
    fitted: dict[str, Any] = {}
    skips: list[Skip] = []
    frames = []
    importance = []
    for family, runs in family_runs.items():
        fitted[family] = merge_fitted([r.final for r in runs])
        for run in runs:
            frames.append(run.forecasts.assign(model=family))
            skips.extend(run.skips)
            _add_timing(timings, family, run.timing)
            if not run.importance.empty:
                importance.append(run.importance.assign(model=family))
    frames = [f for f in frames if not f.empty]
    if not frames:
        raise NotEnoughData("no model produced a single backtest forecast: gold is too short")
    scored = attach_truth(pd.concat(frames, ignore_index=True), panel)
    scored = widen_prophet_intervals(
        scored, plan, fitted, panel.as_of, ml.ensemble.calibration_days
    )
    members = [f for f in family_runs if f != ENSEMBLE]
    state = None
    if ENSEMBLE in ml.families and len(plan) > 1:
        started = time.perf_counter()
        ens = ensemble_backtest(scored, plan, panel, members, ml)
        if not ens.empty:
            scored = pd.concat([scored, attach_truth(ens.assign(model=ENSEMBLE), panel)],
                               ignore_index=True)  # fmt: skip
        state = fit_ensemble_at(scored, panel.as_of, panel, members, ml)
        _add_timing(timings, ENSEMBLE, Timing(time.perf_counter() - started, 0.0, len(plan)))
        fitted[ENSEMBLE] = state
    cutoffs = {f.number: f.cutoff.date() for f in plan}
    metrics = evaluate_forecasts(scored)
    vol_frames = [r.forecasts for r in volatility_runs if not r.forecasts.empty]
    volatility = pd.concat(vol_frames, ignore_index=True) if vol_frames else pd.DataFrame()
    if not volatility.empty:
        metrics = pd.concat([metrics, evaluate_volatility(volatility)], ignore_index=True)
    else:  # no volatility model ran (only stablecoins): the metrics keep their columns all the same
        metrics["qlike"] = np.nan
    for vol_run in volatility_runs:
        skips.extend(vol_run.skips)
        _add_timing(timings, VOLATILITY, vol_run.timing)
    fitted[VOLATILITY] = merge_fitted([r.final for r in volatility_runs])
    for skip in skips:
        log.info("%s skips %s: %s", skip.model, skip.symbol, skip.reason)
    metrics = metrics.rename(columns={"horizon": "horizon_days"})
    metrics["fold_cutoff"] = metrics["fold"].map(cutoffs)
    metrics["as_of_date"] = panel.as_of.date()
    starts = [t.first_day for t in panel]
    return Evaluation(
        as_of=panel.as_of,
        plan=plan,
        horizons=horizons,
        fitted=fitted,
        ensemble=state,
        scored=scored,
        volatility=volatility,
        metrics=metrics,
        importance=pd.concat(importance, ignore_index=True) if importance else pd.DataFrame(),
        skips=skips,
        timings=timings,
        window=(min(starts), panel.as_of),
        validation={m: validation_mae(scored, m) for m in scored["model"].unique()},
    )


def _evaluation_path(plan: Plan) -> Path:
    return Path(plan.run_dir) / "evaluation.pkl"


def write_evaluation(evaluation: Evaluation, url: str, importance_repeats: int) -> None:
    """Metrics, feature importance and training skips of the as-of day, in one transaction."""
    as_of = evaluation.as_of.date()
    metrics = evaluation.metrics.loc[evaluation.metrics["n_points"] > 0].copy()
    metrics["run_id"] = None
    for column in store.EVALUATION_COLUMNS:
        if column not in metrics:
            metrics[column] = np.nan
    importance = evaluation.importance
    if not importance.empty:
        importance = importance.rename(columns={"horizon": "horizon_days"}).assign(
            as_of_date=as_of, n_repeats=importance_repeats, scoring=IMPORTANCE_SCORING,
            run_id=None,
        )  # fmt: skip
    with transaction(url) as conn:
        store.replace_evaluation(conn, as_of, sorted(metrics["model"].unique()), metrics)
        if not importance.empty:
            store.replace_importance(conn, as_of, importance)
        store.replace_skips(conn, as_of, "train", evaluation.skips)


def evaluate_training(plan_path: str | Path, *, write: bool = True) -> Path:
    """Collect the jobs' results, build the ensemble and the metrics, write them to schema ml."""
    plan = Plan.load(plan_path)
    settings = get_settings()
    ml = effective_ml(settings, plan.demo)
    panel = load_panel(plan)
    family_runs: dict[str, list[FamilyRun]] = {}
    volatility_runs: list[VolatilityRun] = []
    for job in plan.jobs:
        path = _result_path(plan, job.label)
        if not path.exists():
            raise InvalidInput(f"job {job.label} has no result in {path}: run it first")
        result = _load(path)
        if job.family == VOLATILITY:
            volatility_runs.append(result)
        else:
            family_runs.setdefault(job.family, []).append(result)
    evaluation = build_evaluation(
        panel, plan.fold_plan(), plan.horizons, family_runs, volatility_runs, ml
    )
    if write:
        write_evaluation(evaluation, database_url(settings), ml.gbm.permutation_repeats)
    path = _evaluation_path(plan)
    with open(path, "wb") as handle:
        pickle.dump(evaluation, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


# --- registration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationSummary:
    as_of: str
    versions: dict[str, str]
    run_ids: dict[str, str]
    champion: str
    champion_version: str | None
    promoted: bool
    reason: str


def _family_params(ml: MlConfig, family: str, plan: Plan) -> dict[str, Any]:
    params: dict[str, Any] = {
        "family": family,
        "as_of": plan.as_of,
        "horizons": plan.horizons,
        "folds": len(plan.folds),
        "fold_days": ml.fold_days,
        "fold_cutoffs": [f["cutoff"] for f in plan.folds],
        "tokens": len(plan.symbols),
        "demo": plan.demo,
        "threads": ml.threads,
        "seed": ml.seed,
    }
    section = {"prophet": ml.prophet, "lstm": ml.lstm, "gbm": ml.gbm, "ensemble": ml.ensemble}
    if family in section:
        params.update({f"{family}.{k}": v for k, v in section[family].model_dump().items()})
    if family in ("naive", "drift"):
        params["empirical_window_days"] = ml.empirical_window_days
    if family in type(ml.min_history_days).model_fields:
        params["min_history_days"] = getattr(ml.min_history_days, family)
    return params


def _calibration_params(fitted: Any) -> dict[str, str]:
    """Where the ensemble's radii came from, per horizon (ensemble.py says what each means), and
    the factor on Prophet's (error_ratio.py)."""
    if isinstance(fitted, ProphetModel):
        return {
            f"interval_scale_h{h}": f"{r:.3f}" for h, r in sorted(fitted.interval_scale.items())
        }
    if not isinstance(fitted, EnsembleState):
        return {}
    return {
        f"calibration_h{h}": (
            f"{c.source} x{c.error_ratio:.3f} ({c.n_scores} scores over {c.periods:.1f} periods)"
        )
        for h, c in sorted(fitted.calibration.items())
    }


def candidate_family(metrics: pd.DataFrame, families: Sequence[str]) -> str:
    """The family with the lowest mean pooled MASE (naive when nothing else was scored)."""
    pooled = metrics.loc[(metrics["fold"] == 0) & metrics["model"].isin(families)]
    means = pooled.groupby("model")["mase"].mean().dropna()
    others = means.drop("naive", errors="ignore")
    return str(others.idxmin()) if not others.empty else "naive"


def register_training(plan_path: str | Path) -> RegistrationSummary:
    """Log every family to MLflow, register the versions and decide the champion."""
    from crypto_ml.forecasting import registry, tracking
    from crypto_ml.forecasting.pyfunc import Bundle
    from crypto_ml.mlflow_tracking import configure, ensure_experiment

    plan = Plan.load(plan_path)
    settings = get_settings()
    ml = effective_ml(settings, plan.demo)
    evaluation: Evaluation = _load(_evaluation_path(plan))
    panel = load_panel(plan)
    client = configure(settings)
    name = registry.registered_model(settings)
    example_symbol = "BTC" if "BTC" in panel else panel.symbols[0]
    versions: dict[str, str] = {}
    run_ids: dict[str, str] = {}
    url = database_url(settings)
    for family, fitted in evaluation.fitted.items():
        if fitted is None or not fitted.symbols:
            log.warning("%s has no fitted token: nothing to register", family)
            continue
        kind = (
            "volatility"
            if family == VOLATILITY
            else ("ensemble" if family == ENSEMBLE else "price")
        )
        bundle = Bundle(fitted, plan.horizons)
        symbol = example_symbol if example_symbol in fitted.symbols else fitted.symbols[0]
        input_example, output_example, final = _examples(kind, bundle, panel, symbol, evaluation)
        backtest = evaluation.scored.loc[
            (evaluation.scored["model"] == family) & (evaluation.scored["symbol"] == symbol)
        ]
        history = panel[symbol].frame["close"]
        figure = (
            None
            if kind == "volatility"
            else tracking.forecast_figure(symbol, history, backtest, final, f"{family}: {symbol}")
        )
        skips = [s for s in evaluation.skips if s.model == family]
        card = tracking.model_card(
            family, evaluation.as_of, evaluation.window, evaluation.plan,
            evaluation.metrics, skips, len(fitted.symbols), evaluation.timings.get(family, Timing()),
        )  # fmt: skip
        logged = tracking.log_family_run(
            experiment_id=ensure_experiment(client, settings, family),
            family=family,
            kind=kind,
            bundle=bundle,
            as_of=evaluation.as_of,
            params=_family_params(ml, family, plan) | _calibration_params(fitted),
            evaluation=evaluation.metrics,
            card=card,
            figure=figure,
            input_example=input_example,
            output_example=output_example,
            timing=evaluation.timings.get(family, Timing()),
            native=_native_logger(family, fitted, ml),
        )
        run_ids[family] = logged.run_id
        target = settings.ml.mlflow.volatility_model if kind == "volatility" else name
        tags = {"as_of": str(plan.as_of)}
        tags.update(
            {
                f"validation_mae_h{h}": f"{v:.8g}"
                for h, v in evaluation.validation.get(family, {}).items()
            }
        )
        versions[family] = registry.register(
            client, target, logged.model_uri, logged.run_id, family, tags
        )
        with transaction(url) as conn:
            store.set_evaluation_run(conn, plan.as_of, family, logged.run_id)
        if kind == "volatility":
            with transaction(url) as conn:
                store.set_evaluation_run(conn, plan.as_of, "rolling_30d", logged.run_id)
    price_families = [f for f in versions if f != VOLATILITY]
    if "naive" not in versions:
        raise NotEnoughData("the naive baseline fitted no token: no champion can be decided")
    candidate = candidate_family(evaluation.metrics, price_families)
    before = registry.current_champion(client, name)
    compared = [candidate] + ([before.family] if before and before.family in price_families else [])
    scores, n_points = common_point_scores(evaluation.scored, compared)
    if not scores:
        raise NotEnoughData("no backtest point is shared by the candidate and naive")
    decision = registry.decide(candidate, scores, n_points, before.family if before else None)
    version = registry.apply(client, name, decision, versions)
    client.set_tag(run_ids[candidate], "crypto.champion_decision", decision.reason[:5000])
    row = pd.DataFrame(
        [
            {
                "as_of_date": plan.as_of,
                "candidate_model": candidate,
                "candidate_version": versions[candidate],
                "candidate_score": decision.candidate_score,
                "champion_model": before.family if before else None,
                "champion_version": before.version if before else None,
                "champion_score": decision.champion_score,
                "naive_score": decision.naive_score,
                "n_points": n_points,
                "promoted": decision.promoted,
                "reason": decision.reason,
                "run_id": run_ids[candidate],
            }
        ]
    )
    with transaction(url) as conn:
        store.upsert_decision(conn, row)
    log.info("champion decision: %s", decision.reason)
    return RegistrationSummary(
        as_of=str(plan.as_of),
        versions=versions,
        run_ids=run_ids,
        champion=decision.champion_after,
        champion_version=version,
        promoted=decision.promoted,
        reason=decision.reason,
    )


def _examples(
    kind: str, bundle: Any, panel: Panel, symbol: str, evaluation: Evaluation
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(input example, output example, production forecast of `symbol`) for a family's pyfunc."""
    from crypto_ml.forecasting.base import last_origins
    from crypto_ml.forecasting.pyfunc import to_prices, volatility_output

    rows = panel.select([symbol]).to_features().tail(120).reset_index(drop=True)
    fitted = bundle.fitted
    if kind == "volatility":
        raw = fitted.forecast(panel, last_origins(panel, [symbol]), bundle.horizons)
        output = volatility_output(raw, PERIODS_PER_YEAR)
        return rows, output, pd.DataFrame()
    if kind == "ensemble":
        members = _member_forecasts(evaluation.fitted, panel, [symbol], bundle.horizons)
        output = to_prices(ensemble_forecasts(fitted, members))
        example = members.head(50).reset_index(drop=True)
        return example, output, output
    output = to_prices(fitted.forecast(panel, last_origins(panel, [symbol]), bundle.horizons))
    return rows, output, output


def _member_forecasts(
    fitted: dict[str, Any], panel: Panel, symbols: Sequence[str], horizons: Sequence[int]
) -> pd.DataFrame:
    from crypto_ml.forecasting.base import last_origins

    frames = []
    for family, model in fitted.items():
        if family in (ENSEMBLE, VOLATILITY) or model is None:
            continue
        wanted = [s for s in symbols if s in model.symbols]
        frames.append(
            model.forecast(panel, last_origins(panel, wanted), horizons).assign(model=family)
        )
    frames = [f for f in frames if not f.empty]
    members = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return attach_truth(members, panel).drop(columns=["y"]) if not members.empty else members


def _native_logger(family: str, fitted: Any, ml: MlConfig) -> Callable[[Any], None] | None:
    """The flavour-specific logging of a family, run inside its MLflow run."""
    import mlflow

    from crypto_ml.forecasting.tracking import pip_requirements

    if family == "prophet":

        def log_prophet(run: Any) -> None:
            for symbol in fitted.symbols:
                with mlflow.start_run(
                    run_name=f"prophet {symbol}",
                    nested=True,
                    experiment_id=run.info.experiment_id,  # not the default experiment
                ):
                    mlflow.set_tag("crypto.symbol", symbol)
                    mlflow.prophet.log_model(
                        fitted.model(symbol), name="prophet", pip_requirements=pip_requirements()
                    )

        return log_prophet
    if family == "lstm":

        def log_network(run: Any) -> None:
            example = np.zeros((1, fitted.window_days, 2), dtype=np.float32)
            mlflow.pytorch.log_model(
                fitted.network(), name="network", input_example=example,
                pip_requirements=pip_requirements(),
            )  # fmt: skip

        return log_network
    return None


# --- prediction -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictionSummary:
    as_of: str
    predictions: int
    volatility_forecasts: int
    skipped: int
    champion: str | None
    drift: bool
    drift_checks: list[dict[str, Any]]
    seconds: float


def predict(
    settings: Settings | None = None,
    *,
    as_of: date | None = None,
    symbols: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PredictionSummary:
    """Forecast every fresh token from its newest close with the registry's newest version of each
    family, write the forecasts and the drift check (one transaction)."""
    import mlflow

    from crypto_ml.forecasting import registry
    from crypto_ml.forecasting.drift import check_drift, drift_frame
    from crypto_ml.forecasting.pyfunc import to_prices, volatility_output
    from crypto_ml.mlflow_tracking import configure

    started = time.perf_counter()
    settings = settings or get_settings()
    ml = settings.ml
    if symbols:
        symbols = [settings.token(s).symbol for s in symbols]
    url = database_url(settings)
    panel = Panel.from_features(data.read_daily_features(url, symbols, until=as_of))
    client = configure(settings)
    name = registry.registered_model(settings)
    skips = [s for t in panel if (s := stale_skip(t, "all", panel.as_of, ml.stale_after_days))]
    fresh = [t.symbol for t in panel if t.symbol not in {s.symbol for s in skips}]
    champion = registry.current_champion(client, name)
    members: list[pd.DataFrame] = []
    versions: dict[str, tuple[str, str | None]] = {}
    ensemble_model = None
    for family in [*base_families(ml), *([ENSEMBLE] if ENSEMBLE in ml.families else [])]:
        alias = registry.latest_alias(family)
        try:
            version = client.get_model_version_by_alias(name, alias)
        except mlflow.exceptions.MlflowException:
            log.warning("no registered %s model (alias %s of %s): skipped", family, alias, name)
            continue
        model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}").unwrap_python_model()
        versions[family] = (str(version.version), version.run_id)
        if progress:
            progress(family)
        if family == ENSEMBLE:
            ensemble_model = model
            continue
        members.append(model.forecast_panel(panel, fresh).assign(model=family))
    if not versions:
        raise NotEnoughData(
            f"the registry has no trained model ({name}): run `crypto-analytics ml train` first"
        )
    members = [m for m in members if not m.empty]
    forecasts = pd.concat(members, ignore_index=True) if members else pd.DataFrame()
    if ensemble_model is not None and not forecasts.empty:
        with_sigma = attach_truth(forecasts, panel).drop(columns=["y"])
        combined = ensemble_model.combine(with_sigma).assign(model=ENSEMBLE)
        forecasts = pd.concat([forecasts, combined], ignore_index=True)
    prices = pd.DataFrame()
    if not forecasts.empty:
        prices = pd.concat(
            [to_prices(rows).assign(model=family) for family, rows in forecasts.groupby("model")],
            ignore_index=True,
        )
        prices["model_version"] = prices["model"].map(lambda f: versions[f][0])
        prices["run_id"] = prices["model"].map(lambda f: versions[f][1])
        prices["is_champion"] = prices["model"] == (champion.family if champion else None)
        # a forecast without a finite interval keeps its point; the interval stays unknown
        prices = prices.replace([np.inf, -np.inf], np.nan)
    volatility = _volatility_forecasts(client, settings, panel, fresh, volatility_output)
    checks = []
    if champion is not None and champion.validation_mae:
        window_from = (panel.as_of - pd.Timedelta(days=ml.drift.window_days - 1)).date()
        history = data.read_price_predictions(champion.family, window_from, panel.as_of.date(), url)
        checks = check_drift(
            history, champion.validation_mae, as_of=panel.as_of.date(), model=champion.family,
            model_version=champion.version, window_days=ml.drift.window_days,
            threshold=ml.drift.threshold, min_points=ml.drift.min_points,
        )  # fmt: skip
    with transaction(url) as conn:
        store.upsert_predictions(conn, prices)
        store.upsert_volatility(conn, volatility)
        store.replace_skips(conn, panel.as_of.date(), "predict", skips)
        if checks:
            store.upsert_drift(conn, drift_frame(checks))
    drift = any(c.is_drift for c in checks)
    if drift:
        log.warning("model drift: %s", [c for c in checks if c.is_drift])
    return PredictionSummary(
        as_of=str(panel.as_of.date()),
        predictions=len(prices),
        volatility_forecasts=len(volatility),
        skipped=len(skips),
        champion=champion.family if champion else None,
        drift=drift,
        drift_checks=[json.loads(json.dumps(asdict(c), default=str)) for c in checks],
        seconds=time.perf_counter() - started,
    )


def _volatility_forecasts(
    client: Any,
    settings: Settings,
    panel: Panel,
    symbols: list[str],
    volatility_output: Callable[[pd.DataFrame, int], pd.DataFrame],
) -> pd.DataFrame:
    """GARCH from the registry's newest version, and the rolling baseline (no fitted state)."""
    import mlflow

    from crypto_ml.forecasting import registry
    from crypto_ml.forecasting.base import last_origins

    horizons = settings.ml.horizons
    frames = []
    name = settings.ml.mlflow.volatility_model
    try:
        version = client.get_model_version_by_alias(name, registry.latest_alias(VOLATILITY))
        model = mlflow.pyfunc.load_model(
            f"models:/{name}@{registry.latest_alias(VOLATILITY)}"
        ).unwrap_python_model()
        garch = model.forecast_panel(panel.select(symbols), PERIODS_PER_YEAR)
        frames.append(garch.assign(model=VOLATILITY, model_version=str(version.version),
                                   run_id=version.run_id))  # fmt: skip
        covered = sorted(garch["symbol"].unique())
    except mlflow.exceptions.MlflowException:
        log.warning("no registered GARCH model (%s): only the rolling baseline is forecast", name)
        covered = [s for s in symbols if not panel[s].is_stablecoin]
    rolling = RollingVolatility().forecast(panel, last_origins(panel, covered), horizons)
    if not rolling.empty:
        frames.append(
            volatility_output(rolling, PERIODS_PER_YEAR).assign(
                model="rolling_30d", model_version=None, run_id=None
            )
        )
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --- whole runs (the CLI) ---------------------------------------------------------------------


def run_training(
    settings: Settings | None = None,
    *,
    symbols: Sequence[str] | None = None,
    as_of: date | None = None,
    demo: bool = False,
    register: bool = True,
    on_job: Callable[[str], None] | None = None,
) -> tuple[Path, RegistrationSummary | None]:
    """prepare → every job → evaluate (→ register). `register=False` is `ml evaluate`: the
    backtest and its metrics only, no production fits, nothing in MLflow."""
    settings = settings or get_settings()
    plan_path = prepare_training(settings, as_of=as_of, symbols=symbols, demo=demo)
    plan = Plan.load(plan_path)
    for job in plan.jobs:
        if on_job:
            on_job(job.label)
        train_job(plan_path, job.label, final_fit=register)
    evaluate_training(plan_path)
    summary = register_training(plan_path) if register else None
    return plan_path, summary


def load_evaluation(plan_path: str | Path) -> Evaluation:
    return _load(_evaluation_path(Plan.load(plan_path)))
