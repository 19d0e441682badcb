"""The datasets bronze holds, defined once: columns, types, nullability, table and natural key,
and the one coercion policy every source's values go through.

Why one definition: the columns of a dataset used to be written in this module, in validation,
in the migration SQL, in dbt's `_bronze__sources.yml` and in hand-written reporting SQL, with two
coercion paths that disagreed (a CoinGecko price sent as the string "67000.5" was quarantined as
"price is null" while Binance's string prices loaded). Now validation, the lake, the loader and
reporting derive from `SPECS`, and tests check the migration's tables and dbt's source
declarations against it (tests/unit/ingestion/test_frames.py, tests/integration/test_migrations.py).

The coercion policy (`coerce`), the same for every source:
- numbers may arrive as JSON numbers or as decimal strings ("67000.5", " 1e3 "); booleans and
  non-numeric text are unreadable;
- timestamps are datetimes or ISO-8601 strings (never bare numbers: a source must say its unit);
- order-book sides are lists of [price, quantity] pairs (or their JSON text).
A column whose every present value is unreadable means the source retyped the field: that is a
`BadPayload` for the whole batch, never a row-by-row quarantine with a misleading reason. A single
unreadable value becomes null in the typed frame and is noted in the `_unreadable` column, so
validation quarantines the row saying what arrived ("price 'n/a' is not a number").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from crypto_analytics.errors import BadPayload, ConfigError


class Dataset(StrEnum):
    OHLCV = "ohlcv"
    MARKET = "market"
    ORDERBOOK = "orderbook"


def parse_dataset(name: str) -> Dataset:
    """A dataset by name; ConfigError naming the valid choices otherwise."""
    try:
        return Dataset(name)
    except ValueError:
        raise ConfigError(
            f"unknown dataset {name!r}; choose from: {', '.join(d.value for d in Dataset)}"
        ) from None


class Kind(StrEnum):
    """What a column holds, which decides its pandas dtype, its SQL type and its coercion."""

    TIMESTAMP = "timestamp"
    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    LEVELS = "levels"


#: SQL type of each kind, as PostgreSQL's format_type() spells it.
SQL_TYPES: dict[Kind, str] = {
    Kind.TIMESTAMP: "timestamp with time zone",
    Kind.TEXT: "text",
    Kind.NUMBER: "double precision",
    Kind.INTEGER: "integer",
    Kind.LEVELS: "jsonb",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = False

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.kind]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its normalised columns in order, the bronze table and the natural key."""

    dataset: Dataset
    table: str
    columns: tuple[Column, ...]
    natural_key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def of_kind(self, *kinds: Kind) -> list[str]:
        return [c.name for c in self.columns if c.kind in kinds]


def _c(name: str, kind: Kind, nullable: bool = False) -> Column:
    return Column(name, kind, nullable)


_TS, _TEXT, _NUM, _INT, _LEVELS = Kind.TIMESTAMP, Kind.TEXT, Kind.NUMBER, Kind.INTEGER, Kind.LEVELS

SPECS: dict[Dataset, DatasetSpec] = {
    Dataset.OHLCV: DatasetSpec(
        Dataset.OHLCV,
        "bronze.raw_crypto_prices",
        (
            _c("timestamp", _TS),
            _c("symbol", _TEXT),
            _c("interval", _TEXT),
            _c("open", _NUM),
            _c("high", _NUM),
            _c("low", _NUM),
            _c("close", _NUM),
            _c("volume", _NUM),
            _c("quote_volume", _NUM, nullable=True),
            _c("quote_currency", _TEXT),
            _c("source_api", _TEXT),
        ),
        ("source_api", "symbol", "interval", "timestamp"),
    ),
    Dataset.MARKET: DatasetSpec(
        Dataset.MARKET,
        "bronze.raw_market_data",
        (
            _c("timestamp", _TS),
            _c("symbol", _TEXT),
            _c("price", _NUM),
            # CoinGecko leaves early market caps and supplies empty
            _c("market_cap", _NUM, nullable=True),
            _c("circulating_supply", _NUM, nullable=True),
            _c("total_volume", _NUM, nullable=True),
            _c("quote_currency", _TEXT),
            _c("source_api", _TEXT),
        ),
        ("source_api", "symbol", "timestamp"),
    ),
    Dataset.ORDERBOOK: DatasetSpec(
        Dataset.ORDERBOOK,
        "bronze.raw_orderbook",
        (
            _c("timestamp", _TS),
            _c("symbol", _TEXT),
            _c("bids", _LEVELS),
            _c("asks", _LEVELS),
            _c("depth", _INT),
            _c("best_bid", _NUM),
            _c("best_ask", _NUM),
            _c("spread", _NUM),
            _c("mid", _NUM),
            _c("quote_currency", _TEXT),
            _c("source_api", _TEXT),
        ),
        ("source_api", "symbol", "timestamp"),
    ),
}

#: Normalised columns per dataset (lineage columns are added by the loader).
COLUMNS: dict[Dataset, list[str]] = {d: spec.names for d, spec in SPECS.items()}
#: The bronze table each dataset lands in, and the columns of its natural key.
BRONZE_TABLE: dict[Dataset, str] = {d: spec.table for d, spec in SPECS.items()}
NATURAL_KEY: dict[Dataset, list[str]] = {d: list(spec.natural_key) for d, spec in SPECS.items()}
#: Columns the loader adds to every bronze row, with their SQL types.
LINEAGE_COLUMNS: dict[str, str] = {
    "_batch_id": "uuid",
    "_ingested_at": "timestamp with time zone",
}
_PLURAL: dict[Kind, str] = {
    Kind.TIMESTAMP: "datetimes",
    Kind.TEXT: "text",
    Kind.NUMBER: "numbers",
    Kind.INTEGER: "whole numbers",
    Kind.LEVELS: "[price, quantity] lists",
}
#: Per-row notes of values that could not be read: {column: repr of what arrived} as JSON.
UNREADABLE_COLUMN = "_unreadable"


# --- coercion ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coerced:
    """A frame in the dataset's types, and per column the rows whose present value was unreadable
    (with what arrived, for the reason validation words)."""

    frame: pd.DataFrame
    unreadable: dict[str, np.ndarray]
    received: dict[str, pd.Series]


def source_label(frame: pd.DataFrame) -> str:
    """The single source_api of a frame, for error messages ("validation" when mixed or absent)."""
    if "source_api" in frame.columns:
        names = frame["source_api"].dropna().astype(str).unique()
        if len(names) == 1:
            return str(names[0])
    return "validation"


def parse_levels(value: object) -> list[list[float]] | None:
    """A side of a book as [[price, quantity], ...]; None when it is not one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list | tuple | np.ndarray):
        return None
    levels: list[list[float]] = []
    for level in value:
        if not isinstance(level, list | tuple | np.ndarray) or len(level) < 2:
            return None
        if any(isinstance(v, bool | np.bool_) for v in level[:2]):
            return None
        try:
            levels.append([float(level[0]), float(level[1])])
        except (TypeError, ValueError):
            return None
    return levels


def to_numbers(raw: pd.Series) -> pd.Series:
    """Floats from numbers or decimal strings; booleans and other text become NaN."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        return pd.Series(np.nan, index=raw.index, dtype="float64")
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.astype("float64")
    values = raw.astype(object)
    if pd.api.types.infer_dtype(values, skipna=True) not in (
        "string",
        "empty",
        "floating",
        "integer",
        "mixed-integer-float",
        "decimal",
    ):
        # mixed content: booleans (which to_numeric would read as 1/0) are unreadable
        booleans = values.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
        values = values.where(~booleans, None)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _timestamps(raw: pd.Series) -> pd.Series | None:
    """UTC timestamps from datetimes or ISO-8601 text; None when the column holds numbers."""
    if pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
        return None
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw):
        return pd.to_datetime(raw, utc=True)
    # ISO 8601 explicitly: with format inference pandas guesses the format from the first string
    # and silently turns valid strings of another precision into NaT.
    values = raw.astype(object)
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty", "datetime"):
        # mixed content: bare numbers are unreadable (their unit is unknown)
        numeric = values.map(lambda v: isinstance(v, int | float | np.number)).to_numpy(bool)
        values = values.where(~numeric, None)
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    return pd.Series(parsed, index=raw.index)


def coerce(frame: pd.DataFrame, dataset: Dataset | str, source: str | None = None) -> Coerced:
    """The dataset's columns in order and in their types, under the one coercion policy.

    Raises BadPayload naming the fields when a column is missing or none of its present values
    can be read (the source changed the field's type). Integers stay float64 here (validation
    words "is not a whole number"); `conform` gives them their final dtype.
    """
    spec = SPECS[Dataset(dataset)]
    who = source or source_label(frame)
    missing = [c for c in spec.names if c not in frame.columns]
    if missing:
        raise BadPayload(who, f"{spec.dataset} payload is missing fields: {', '.join(missing)}")
    typed: dict[str, pd.Series] = {}
    unreadable: dict[str, np.ndarray] = {}
    received: dict[str, pd.Series] = {}
    changed: list[str] = []
    for column in spec.columns:
        raw = frame[column.name].reset_index(drop=True)
        present = raw.notna().to_numpy()
        values: pd.Series | None
        if column.kind is Kind.TIMESTAMP:
            values = _timestamps(raw)
        elif column.kind in (Kind.NUMBER, Kind.INTEGER):
            values = to_numbers(raw)
        elif column.kind is Kind.LEVELS:
            values = pd.Series([parse_levels(v) for v in raw], dtype=object)
            values = values.where(values.notna(), None)
        else:
            values = raw.astype("string")
        if values is None:
            changed.append(f"{column.name} (type {raw.dtype}, expected {_PLURAL[column.kind]})")
            continue
        bad = present & values.isna().to_numpy()
        if present.any() and bad.sum() == present.sum():
            example = raw[present].iloc[0]
            changed.append(f"{column.name} (type {raw.dtype}, e.g. {example!r:.60})")
            continue
        typed[column.name] = values
        if bad.any():
            unreadable[column.name] = bad
            received[column.name] = raw[bad]
    if changed:
        raise BadPayload(
            who, f"{spec.dataset} payload has fields of an unexpected type: {'; '.join(changed)}"
        )
    return Coerced(pd.DataFrame(typed, columns=spec.names), unreadable, received)


def _notes(coerced: Coerced, previous: pd.Series | None) -> pd.Series | None:
    """The `_unreadable` column: earlier notes merged with this coercion's."""
    n = len(coerced.frame)
    notes: list[dict[str, str]] = [{} for _ in range(n)]
    if previous is not None:
        for position, text in enumerate(previous.reset_index(drop=True).tolist()):
            if isinstance(text, str) and text:
                notes[position].update(json.loads(text))
    for column, values in coerced.received.items():
        positions = np.flatnonzero(coerced.unreadable[column]).tolist()
        for position, value in zip(positions, values, strict=True):
            notes[position][column] = repr(value)
    if not any(notes):
        return None
    return pd.Series(
        [json.dumps(note, sort_keys=True) if note else None for note in notes], dtype=object
    )


def conform(frame: pd.DataFrame, dataset: Dataset | str) -> pd.DataFrame:
    """The normalised frame every source returns: columns in order, canonical dtypes.

    Coerces under the one policy (see `coerce`): BadPayload for a missing or retyped field;
    single unreadable values become null and are noted in `_unreadable` for validation.
    """
    dataset = Dataset(dataset)
    previous = frame[UNREADABLE_COLUMN] if UNREADABLE_COLUMN in frame.columns else None
    coerced = coerce(frame, dataset)
    out = coerced.frame
    for name in SPECS[dataset].of_kind(Kind.INTEGER):
        out[name] = out[name].astype("Int64")
    notes = _notes(coerced, previous)
    if notes is not None:
        out[UNREADABLE_COLUMN] = notes
    return out.reset_index(drop=True)


def unreadable_notes(frame: pd.DataFrame) -> dict[str, dict[int, str]]:
    """{column: {row position: what arrived}} from a frame's `_unreadable` notes."""
    found: dict[str, dict[int, str]] = {}
    if UNREADABLE_COLUMN not in frame.columns:
        return found
    for position, text in enumerate(frame[UNREADABLE_COLUMN].tolist()):
        if isinstance(text, str) and text:
            for column, value in json.loads(text).items():
                found.setdefault(column, {})[position] = value
    return found


def empty_frame(dataset: Dataset) -> pd.DataFrame:
    """A zero-row frame with the dataset's columns and dtypes."""
    return conform(pd.DataFrame(columns=COLUMNS[dataset]), dataset)
