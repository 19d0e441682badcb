"""Row validation before bronze: keep the good rows, quarantine the bad ones with a reason.

Why per row: one bad candle (a negative price, a high below the close) must not cost the other
999 rows of a batch, and a person reading bronze.quarantine must see why a row was refused
("high 9.0 below close 10.0"), not a stack trace. Why the whole batch fails instead when a
field is missing or changed type: then every row is unusable and the source's format changed,
which is a BadPayload for the pipeline to report, not a thousand quarantined rows.

The declarative checks are a pandera schema built per dataset (pandera is the project's
dataframe-validation library): pandera validates its structure, and each of its row checks is
called for a pass/fail mask that is worded into reasons here (see _check_failures for why not
pandera's own failure report). Duplicates within a payload are decided with pandas because
they are about groups of rows, not rows. Everything is vectorised: a million rows with a few
faults take about a second on one core.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from crypto_analytics.config import Settings
from crypto_analytics.errors import BadPayload, ConfigError
from crypto_analytics.ingestion.frames import (
    COLUMNS,
    NATURAL_KEY,
    SPECS,
    UNREADABLE_COLUMN,
    Dataset,
    Kind,
    coerce,
    conform,
    source_label,
    unreadable_notes,
)
from crypto_analytics.intervals import INTERVALS

log = logging.getLogger(__name__)

REASON_COLUMN = "reason"
#: Market snapshots and order books have no interval; this much clock skew is tolerated.
SNAPSHOT_TOLERANCE = timedelta(minutes=5)

_LEVELS = ("bids", "asks")


def _numeric(dataset: Dataset) -> list[str]:
    return SPECS[dataset].of_kind(Kind.NUMBER, Kind.INTEGER)


def _nullable(dataset: Dataset) -> frozenset[str]:
    """Columns that may be null (bronze allows it: frames.SPECS says which)."""
    return frozenset(c.name for c in SPECS[dataset].columns if c.nullable)


@dataclass(frozen=True)
class ValidationResult:
    """`valid`: frames.COLUMNS rows ready to load; `rejected`: the rows as received + `reason`."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    #: rows failing each check, by check name ("null:open", "high_ge_close", "duplicate", ...)
    counts: dict[str, int]


# --- the declarative checks ----------------------------------------------------------------


def _fmt(values: pd.Series) -> pd.Series:
    """Values as they appear in reasons: floats like Python prints them, UTC timestamps in ISO
    8601 (numpy formats them in C: a million isoformat() calls take seconds)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        micros = values.dt.tz_convert(None).to_numpy(dtype="datetime64[us]")
        whole_seconds = (micros.astype(np.int64) % 1_000_000 == 0).all()
        text = np.datetime_as_string(micros, unit="s" if whole_seconds else "us")
        text = np.char.add(text, "+00:00")
        return pd.Series(text.astype(object), index=values.index, dtype=object)
    return pd.Series([str(v) for v in values.tolist()], index=values.index, dtype=object)


@dataclass(frozen=True)
class _Rule:
    """One check: `fails` marks the rows that break it (nulls never fail here: the not-null
    check reports them), `describe` words the reason for those rows."""

    name: str
    column: str | None  # a single column (pandera Column check) or None (whole-frame check)
    fails: Callable[[Any], Any]  # Series (column rule) or DataFrame -> boolean Series
    describe: Callable[[pd.DataFrame], Any]  # failing rows -> Series of reasons


def _not_positive(column: str) -> _Rule:
    return _Rule(
        f"positive:{column}",
        column,
        lambda s: s <= 0,
        lambda f: column + " " + _fmt(f[column]) + " is not positive",
    )


def _whole(column: str) -> _Rule:
    return _Rule(
        f"whole:{column}",
        column,
        lambda s: s % 1 != 0,
        lambda f: column + " " + _fmt(f[column]) + " is not a whole number",
    )


def _negative(column: str) -> _Rule:
    return _Rule(
        f"non_negative:{column}",
        column,
        lambda s: s < 0,
        lambda f: column + " " + _fmt(f[column]) + " is negative",
    )


def _compare(name: str, left: str, op: str, right: str, word: str) -> _Rule:
    def fails(f: pd.DataFrame) -> pd.Series:
        return f[left] < f[right] if op == "<" else f[left] > f[right]

    def describe(f: pd.DataFrame) -> pd.Series:
        return left + " " + _fmt(f[left]) + f" {word} {right} " + _fmt(f[right])

    return _Rule(name, None, fails, describe)


def _unknown(column: str, known: Sequence[str]) -> _Rule:
    allowed = set(known)
    return _Rule(
        f"known:{column}",
        column,
        lambda s: s.notna() & ~s.isin(allowed),
        lambda f: f"unknown {column} '" + _fmt(f[column]) + "'",
    )


def _interval_steps(intervals: pd.Series) -> pd.Series:
    """Interval length in microseconds per row (NaN for unknown or missing intervals)."""
    codes, names = pd.factorize(intervals)
    lengths = np.array(
        [INTERVALS[n] // timedelta(microseconds=1) if n in INTERVALS else np.nan for n in names]
        + [np.nan]  # code -1 (missing) picks this last entry
    )
    return pd.Series(lengths[codes], index=intervals.index, dtype="float64")


def _epoch_us(ts: pd.Series) -> pd.Series:
    return pd.Series(
        ts.dt.tz_convert(None).to_numpy(dtype="datetime64[us]").astype(np.int64), index=ts.index
    )


def _future_rule(dataset: Dataset, now: datetime) -> _Rule:
    now_us = pd.Timestamp(now).as_unit("us").value // 1000

    def tolerance_us(f: pd.DataFrame) -> pd.Series:
        if dataset is Dataset.OHLCV:
            return _interval_steps(f["interval"]).fillna(0.0)
        return pd.Series(SNAPSHOT_TOLERANCE // timedelta(microseconds=1), index=f.index)

    def fails(f: pd.DataFrame) -> pd.Series:
        return f["timestamp"].notna() & (_epoch_us(f["timestamp"]) > now_us + tolerance_us(f))

    def describe(f: pd.DataFrame) -> pd.Series:
        slack = "one interval" if dataset is Dataset.OHLCV else str(SNAPSHOT_TOLERANCE)
        return (
            "timestamp "
            + _fmt(f["timestamp"])
            + f" is in the future (now {now.isoformat()}, {slack} tolerated)"
        )

    return _Rule("not_future", None, fails, describe)


def _aligned_rule() -> _Rule:
    """The vectorised twin of intervals.is_aligned: epoch time modulo the candle length."""

    def fails(f: pd.DataFrame) -> pd.Series:
        steps = _interval_steps(f["interval"])
        known = f["timestamp"].notna() & steps.notna()
        remainder = _epoch_us(f["timestamp"]) % steps.fillna(1.0).astype(np.int64)
        return known & (remainder != 0)

    def describe(f: pd.DataFrame) -> pd.Series:
        return (
            "timestamp "
            + _fmt(f["timestamp"])
            + " is not aligned to "
            + f["interval"].astype(object)
            + " candles"
        )

    return _Rule("aligned", None, fails, describe)


def _level_rule(side: str) -> _Rule:
    def bad_level(levels: object) -> str | None:
        if not isinstance(levels, list):
            return None
        for price, quantity in levels:
            if not price > 0:
                return f"{side} level price {price} is not positive"
            if quantity < 0:
                return f"{side} level quantity {quantity} is negative"
        return None

    def fails(f: pd.DataFrame) -> pd.Series:
        return pd.Series([bad_level(v) is not None for v in f[side]], index=f.index)

    def describe(f: pd.DataFrame) -> pd.Series:
        return pd.Series([bad_level(v) for v in f[side]], index=f.index, dtype=object)

    return _Rule(f"levels:{side}", None, fails, describe)


def _rules(dataset: Dataset, settings: Settings, now: datetime) -> list[_Rule]:
    symbols = [t.symbol for t in settings.tokens]
    rules = [_unknown("symbol", symbols), _future_rule(dataset, now)]
    if dataset is Dataset.OHLCV:
        rules += [_unknown("interval", list(INTERVALS)), _aligned_rule()]
        rules += [_not_positive(c) for c in ("open", "high", "low", "close")]
        rules += [
            _compare("high_ge_open", "high", "<", "open", "below"),
            _compare("high_ge_close", "high", "<", "close", "below"),
            _compare("low_le_open", "low", ">", "open", "above"),
            _compare("low_le_close", "low", ">", "close", "above"),
        ]
        rules += [_negative(c) for c in ("volume", "quote_volume")]
    elif dataset is Dataset.MARKET:
        rules += [_not_positive("price")]
        rules += [_negative(c) for c in ("market_cap", "circulating_supply", "total_volume")]
    else:
        rules += [_not_positive(c) for c in ("best_bid", "best_ask", "mid", "depth")]
        rules += [_whole("depth")]
        rules += [
            _compare("not_crossed", "best_bid", ">", "best_ask", "above"),
            _level_rule("bids"),
            _level_rule("asks"),
        ]
    return rules


def _schema(dataset: Dataset, rules: list[_Rule]) -> pa.DataFrameSchema:
    """The pandera schema: types and not-null per column, the rules as (vectorised) checks.

    Check functions return True where a row passes; nulls pass every rule because the
    not-null check already names them.
    """

    def check(rule: _Rule) -> pa.Check:
        return pa.Check(lambda data: ~rule.fails(data).fillna(False).astype(bool), name=rule.name)

    columns: dict[str, pa.Column] = {}
    for column in COLUMNS[dataset]:
        dtype = "float64" if column in _numeric(dataset) else None
        column_checks = [check(r) for r in rules if r.column == column]
        columns[column] = pa.Column(
            dtype,
            checks=column_checks,
            nullable=column in _nullable(dataset),
        )
    frame_checks = [check(r) for r in rules if r.column is None]
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=False, ordered=False)


# --- duplicates --------------------------------------------------------------------------------


def _duplicates(typed: pd.DataFrame, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Masks (identical extra copies, conflicting copies) on the natural key."""
    key = NATURAL_KEY[dataset]
    n = len(typed)
    extra, conflicting = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    grouped = typed.duplicated(subset=key, keep=False).to_numpy()
    if not grouped.any():
        return extra, conflicting
    group = typed.loc[grouped]
    comparable = group.copy()
    for side in _LEVELS:
        if side in comparable.columns:
            comparable[side] = [json.dumps(v) for v in comparable[side]]
    row_hash = pd.util.hash_pandas_object(comparable, index=False)
    distinct = row_hash.groupby([group[k] for k in key], dropna=False).transform("nunique")
    positions = np.flatnonzero(grouped)
    conflicting[positions] = (distinct > 1).to_numpy()
    repeats = group.duplicated(subset=key, keep="first").to_numpy()
    extra[positions] = repeats & ~conflicting[positions]
    return extra, conflicting


# --- putting it together -----------------------------------------------------------------------


_UNREADABLE = {
    "timestamp": "is not a timestamp",
    "bids": "is not a list of [price, quantity] levels",
    "asks": "is not a list of [price, quantity] levels",
}
_UNREADABLE_DEFAULT = "is not a number"
#: (row positions, reason per row, rank within a row's reasons, check name for the counts)
_Found = tuple[np.ndarray, np.ndarray, int, str]


def validate(
    frame: pd.DataFrame,
    dataset: Dataset | str,
    settings: Settings,
    now: datetime | None = None,
) -> ValidationResult:
    """Split a normalised frame into loadable rows and quarantined rows with readable reasons.

    Raises BadPayload (naming the fields) when a column is missing or holds a type that cannot
    be read at all: then the source changed its format and no row of the batch can be trusted.
    """
    dataset = Dataset(dataset)
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ConfigError(f"now {now.isoformat()} must be timezone-aware (UTC)")
    source = source_label(frame)
    coerced = coerce(frame, dataset, source)
    typed = coerced.frame
    rules = _rules(dataset, settings, now)
    columns = COLUMNS[dataset]

    # what could not be read: here, or at the source edge (frames.conform's notes in the lake)
    received: dict[str, dict[int, str]] = unreadable_notes(frame)
    for column, values in coerced.received.items():
        positions = np.flatnonzero(coerced.unreadable[column])
        received.setdefault(column, {}).update(
            zip(positions.tolist(), (repr(v) for v in values), strict=True)
        )
    unreadable: dict[str, np.ndarray] = {}
    found: list[_Found] = []
    for column in columns:
        if column not in received:
            continue
        rows = sorted(received[column])
        positions = np.array(rows, dtype=np.int64)
        mask = np.zeros(len(typed), dtype=bool)
        mask[positions] = True
        unreadable[column] = mask
        wording = _UNREADABLE.get(column, _UNREADABLE_DEFAULT)
        texts = np.array([f"{column} {received[column][p]} {wording}" for p in rows], dtype=object)
        found.append((positions, texts, columns.index(column), f"unreadable:{column}"))
    found += _check_failures(typed, dataset, rules, unreadable, source)

    extra, conflicting = _duplicates(typed, dataset)
    rank = 2 * len(columns) + len(rules)
    key = NATURAL_KEY[dataset]
    if conflicting.any():
        positions = np.flatnonzero(conflicting)
        sizes = typed.groupby(key, dropna=False)[key[0]].transform("size").to_numpy()[positions]
        texts = np.array(
            [
                f"conflicting duplicates ({n} rows share the key with different values)"
                for n in sizes
            ],
            dtype=object,
        )
        found.append((positions, texts, rank, "conflicting duplicates"))
    if extra.any():
        positions = np.flatnonzero(extra)
        texts = np.full(len(positions), "duplicate within payload", dtype=object)
        found.append((positions, texts, rank + 1, "duplicate within payload"))
    return _split(frame, typed, dataset, found, source)


def _check_failures(
    typed: pd.DataFrame,
    dataset: Dataset,
    rules: list[_Rule],
    unreadable: dict[str, np.ndarray],
    source: str,
) -> list[_Found]:
    """Apply the pandera schema: its structure (columns, dtypes) through pandera's validator,
    its row checks by calling each declared Check for a pass/fail mask.

    Why not `schema.validate(lazy=True)` on the rows: pandera then formats a message for every
    failure case of every column, which takes about 40 s when a million rows fail a check
    (a whole batch with misaligned timestamps); the masks take milliseconds.
    """
    columns = COLUMNS[dataset]
    schema = _schema(dataset, rules)
    try:
        schema.validate(typed.iloc[0:0], lazy=True)
    except SchemaErrors as errors:
        details = "; ".join(
            f"{r.column}: {r.check}" for r in errors.failure_cases.itertuples(index=False)
        )
        raise BadPayload(source, f"{dataset} payload failed schema checks: {details}") from None
    found: list[_Found] = []
    by_name = {rule.name: (rank, rule) for rank, rule in enumerate(rules, start=2 * len(columns))}

    def add(check: pa.Check, output: pd.Series) -> None:
        failed = np.flatnonzero(~output.to_numpy(dtype=bool))
        if len(failed):
            rank, rule = by_name[str(check.name)]
            texts = rule.describe(typed.iloc[failed]).to_numpy(dtype=object)
            found.append((failed, texts, rank, rule.name))

    for name, column in schema.columns.items():
        if not column.nullable:
            missing = typed[name].isna().to_numpy()
            if name in unreadable:  # already reported as unreadable, not as missing
                missing = missing & ~unreadable[name]
            positions = np.flatnonzero(missing)
            texts = np.full(len(positions), f"{name} is null", dtype=object)
            found.append((positions, texts, len(columns) + columns.index(name), f"null:{name}"))
        for check in column.checks:
            add(check, check(typed, column=name).check_output)
    for check in schema.checks:
        add(check, check(typed).check_output)
    return found


def _join_reasons(found: list[_Found]) -> tuple[np.ndarray, np.ndarray]:
    """Rejected row positions (ascending) and their reasons joined with "; " in rank order.

    Vectorised on object arrays: a groupby with a Python join takes a minute on a million rows.
    """
    positions = np.concatenate([p for p, _, _, _ in found])
    texts = np.concatenate([t for _, t, _, _ in found])
    ranks = np.concatenate([np.full(len(p), r) for p, _, r, _ in found])
    order = np.lexsort((ranks, positions))
    positions, texts = positions[order], texts[order]
    starts = np.r_[True, positions[1:] != positions[:-1]]
    group = np.cumsum(starts) - 1
    within = np.arange(len(positions)) - np.flatnonzero(starts)[group]
    joined = texts[starts].copy()
    for k in range(1, int(within.max()) + 1):
        more = within == k
        joined[group[more]] = joined[group[more]] + "; " + texts[more]
    return positions[starts], joined


def _split(
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    dataset: Dataset,
    found: list[_Found],
    source: str,
) -> ValidationResult:
    received = frame.drop(columns=[UNREADABLE_COLUMN], errors="ignore")
    rejected_mask = np.zeros(len(typed), dtype=bool)
    counts = {name: len(positions) for positions, _, _, name in found if len(positions)}
    found = [entry for entry in found if len(entry[0])]
    if found:
        positions, reasons = _join_reasons(found)
        rejected_mask[positions] = True
        rejected = received.iloc[positions].reset_index(drop=True)
        rejected[REASON_COLUMN] = reasons
    else:
        rejected = received.iloc[0:0].reset_index(drop=True)
        rejected[REASON_COLUMN] = pd.Series(dtype=object)
    valid = conform(typed.loc[~rejected_mask], dataset)
    if len(rejected):
        log.warning(
            "%s %s: %d of %d rows rejected %s", source, dataset, len(rejected), len(typed), counts
        )
    return ValidationResult(valid=valid, rejected=rejected, counts=counts)
