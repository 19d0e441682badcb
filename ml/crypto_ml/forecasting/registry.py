"""The MLflow registry: one registered model, a version per family per training, and `champion`.

Every nightly training registers each family's universe fit as a version of
ml.mlflow.registered_model (tags: family, as-of day, backtest score, validation errors) and points
the alias `latest-<family>` at it: predictions use those. The alias `champion` names the family
whose forecasts the platform puts first (gold.price_predictions.is_champion) and whose errors
the drift check watches. The rule (`decide`):
- the candidate is the best family of the night by mean MASE (naive = 1);
- it takes `champion` only when, on the backtest points it shares with the current champion's
  family and naive, it beats both; the comparison re-runs the champion's recipe on this night's
  folds, so both are judged on the same data;
- when no family beats the random walk, naive is (or stays) the champion;
- when the champion's family is still the one to beat, the alias moves to that family's newest fit
  (a refresh: the same recipe on more data, not a different model).
Each decision, with its numbers, goes to ml.champion_decisions, the log, and the candidate's run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from crypto_analytics.config import Settings

log = logging.getLogger(__name__)

CHAMPION = "champion"


def latest_alias(family: str) -> str:
    return f"latest-{family}"


@dataclass(frozen=True)
class Champion:
    family: str
    version: str
    run_id: str | None
    validation_mae: dict[int, float]


@dataclass(frozen=True)
class Decision:
    candidate: str
    candidate_score: float
    champion_before: str | None
    champion_score: float | None
    naive_score: float
    n_points: int
    #: The family `champion` points at after the decision.
    champion_after: str
    promoted: bool
    reason: str


def decide(
    candidate: str,
    scores: dict[str, float],
    n_points: int,
    champion: str | None,
) -> Decision:
    """Apply the promotion rule to scores measured on the same points (naive's is 1 for MASE)."""
    naive = scores["naive"]
    mine = scores[candidate]
    held = scores.get(champion) if champion else None
    numbers = f"candidate {candidate} {mine:.4f}, naive {naive:.4f}"
    if champion and held is not None:
        numbers += f", champion {champion} {held:.4f}"
    numbers += f" (mean MASE on {n_points} shared points)"
    beats_naive = mine < naive
    if champion is None or held is None:
        after = candidate if beats_naive else "naive"
        why = "first champion" if champion is None else f"champion {champion} has no backtest now"
        verdict = "beats" if beats_naive else "nothing beats"
        reason = f"{why}: {after} ({verdict} the random walk); " + numbers
        return Decision(candidate, mine, champion, held, naive, n_points, after, True, reason)
    if candidate != champion and beats_naive and mine < held:
        reason = f"promoted: {candidate} beats champion {champion} and naive; " + numbers
        return Decision(candidate, mine, champion, held, naive, n_points, candidate, True, reason)
    if champion != "naive" and held >= naive:
        reason = f"champion {champion} no longer beats naive: naive takes over; " + numbers
        return Decision(candidate, mine, champion, held, naive, n_points, "naive", True, reason)
    reason = f"kept {champion} (refreshed to its newest fit); " + numbers
    return Decision(candidate, mine, champion, held, naive, n_points, champion, False, reason)


def registered_model(settings: Settings) -> str:
    return settings.ml.mlflow.registered_model


def current_champion(client, name: str) -> Champion | None:  # noqa: ANN001 - MlflowClient
    """The version `champion` points at, or None when there is none yet."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    tags = version.tags or {}
    validation = {
        int(key.removeprefix("validation_mae_h")): float(value)
        for key, value in tags.items()
        if key.startswith("validation_mae_h")
    }
    return Champion(tags.get("family", ""), str(version.version), version.run_id, validation)


def register(
    client,  # noqa: ANN001 - MlflowClient
    name: str,
    model_uri: str,
    run_id: str,
    family: str,
    tags: dict[str, str],
) -> str:
    """Register a family's logged model as a new version and point latest-<family> at it."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags={"family": family, **tags})
    client.set_registered_model_alias(name, latest_alias(family), version.version)
    log.info("registered %s version %s (%s, run %s)", name, version.version, family, run_id)
    return str(version.version)


def apply(client, name: str, decision: Decision, versions: dict[str, str]) -> str | None:  # noqa: ANN001
    """Point `champion` at the new version of decision.champion_after; returns that version."""
    version = versions.get(decision.champion_after)
    if version is None:
        log.warning(
            "no new version of %s to point champion at; alias unchanged", decision.champion_after
        )
        return None
    client.set_registered_model_alias(name, CHAMPION, version)
    log.info("champion -> %s version %s: %s", decision.champion_after, version, decision.reason)
    return version
