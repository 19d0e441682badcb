"""The raw lake: every payload exactly as received, the normalised frame, and a manifest per batch.

Why keep raw bytes: when a parser had a bug or a source changes its format, bronze can be
rebuilt from what was actually received, offline (`crypto-analytics replay`), and an auditor
can check a bronze row against its payload (sha256 in the manifest). Why a manifest written
last: it is the commit record of a batch. Every file is written to a temporary name and renamed
into place (atomic on one filesystem), and the manifest is renamed last, so a crash leaves at
worst orphan files that no manifest points at, never a manifest pointing at missing files.

Layout (paths in manifests are relative to the lake root, so the lake can be moved):
    raw/source={source_api}/dataset={dataset}/date={received UTC date}/{batch_id}-{n:04d}.{ext}
    normalised/source={source_api}/dataset={dataset}/date={fetched UTC date}/{batch_id}.parquet
    manifests/date={fetched UTC date}/{batch_id}.json
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crypto_analytics.config import Settings
from crypto_analytics.errors import BadPayload, ConfigError
from crypto_analytics.ingestion.frames import COLUMNS, UNREADABLE_COLUMN, Dataset, conform
from crypto_analytics.ingestion.sources.base import FetchResult, RawPayload
from crypto_analytics.redaction import redact

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
_LAKE = "lake"  # the `source` named in BadPayload errors raised here


@dataclass(frozen=True)
class LakePayload:
    """One raw payload file of a batch."""

    path: str  # relative to the lake root
    sha256: str
    size: int
    request: str
    media_type: str
    received_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "request": self.request,
            "media_type": self.media_type,
            "received_at": self.received_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LakePayload:
        return cls(
            path=data["path"],
            sha256=data["sha256"],
            size=int(data["size"]),
            request=data["request"],
            media_type=data["media_type"],
            received_at=datetime.fromisoformat(data["received_at"]),
        )


@dataclass(frozen=True)
class LakeBatch:
    """What one batch left in the lake: the manifest's content plus where the lake root is.

    `to_dict()` is plain JSON (what an Airflow task hands to the next one); `lake_root` is the
    only field not stored in the manifest file itself, because the manifest is relocatable.
    """

    batch_id: uuid.UUID
    source_api: str
    dataset: Dataset
    symbols: list[str]
    interval: str | None
    window_start: datetime | None
    window_end: datetime | None
    fetched_at: datetime
    written_at: datetime
    payloads: list[LakePayload]
    parquet_path: str
    parquet_sha256: str
    row_count: int
    request_meta: dict[str, Any]
    lake_root: Path | None = field(default=None, compare=False)

    @property
    def manifest_path(self) -> str:
        """The manifest's path relative to the lake root."""
        return f"manifests/date={self.fetched_at.date().isoformat()}/{self.batch_id}.json"

    @property
    def manifest_file(self) -> Path:
        """Absolute path of the manifest (needs the lake root)."""
        return self._root() / self.manifest_path

    def _root(self) -> Path:
        if self.lake_root is None:
            raise ConfigError(f"lake batch {self.batch_id} does not know its lake root")
        return self.lake_root

    def absolute(self, relative: str) -> Path:
        """A path from the manifest resolved against the lake root."""
        return self._root() / relative

    def manifest_dict(self) -> dict[str, Any]:
        """The manifest file's content."""
        return {
            "manifest_version": MANIFEST_VERSION,
            "batch_id": str(self.batch_id),
            "source_api": self.source_api,
            "dataset": str(self.dataset),
            "symbols": list(self.symbols),
            "interval": self.interval,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "fetched_at": self.fetched_at.isoformat(),
            "written_at": self.written_at.isoformat(),
            "payloads": [p.to_dict() for p in self.payloads],
            "parquet_path": self.parquet_path,
            "parquet_sha256": self.parquet_sha256,
            "row_count": self.row_count,
            "request_meta": self.request_meta,
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.manifest_dict()
        data["lake_root"] = str(self.lake_root) if self.lake_root is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], lake_root: Path | None = None) -> LakeBatch:
        try:
            root = lake_root or (Path(data["lake_root"]) if data.get("lake_root") else None)
            return cls(
                batch_id=uuid.UUID(data["batch_id"]),
                source_api=data["source_api"],
                dataset=Dataset(data["dataset"]),
                symbols=list(data["symbols"]),
                interval=data["interval"],
                window_start=_parse_iso(data["window_start"]),
                window_end=_parse_iso(data["window_end"]),
                fetched_at=datetime.fromisoformat(data["fetched_at"]),
                written_at=datetime.fromisoformat(data["written_at"]),
                payloads=[LakePayload.from_dict(p) for p in data["payloads"]],
                parquet_path=data["parquet_path"],
                parquet_sha256=data["parquet_sha256"],
                row_count=int(data["row_count"]),
                request_meta=dict(data["request_meta"]),
                lake_root=root,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadPayload(_LAKE, f"manifest is malformed: {exc!r}") from exc


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _json_default(value: Any) -> Any:
    """request_meta values that JSON lacks: datetimes, dates, paths, enums, UUIDs, sets."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (Path, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _plain_meta(request_meta: Mapping[str, Any]) -> dict[str, Any]:
    """request_meta as plain JSON values; the error names the offending key."""
    plain: dict[str, Any] = {}
    for key, value in request_meta.items():
        try:
            plain[str(key)] = json.loads(json.dumps(value, default=_json_default))
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"request_meta[{key!r}] cannot be stored in a manifest: {exc}"
            ) from exc
    return plain


def _meta_time(request_meta: Mapping[str, Any], *keys: str) -> datetime | None:
    for key in keys:
        value = request_meta.get(key)
        if isinstance(value, datetime):
            return value
        if isinstance(value, str) and value:
            try:
                return datetime.fromisoformat(value)
            except ValueError as exc:
                raise ConfigError(f"request_meta[{key!r}]={value!r} is not a datetime") from exc
    return None


# --- atomic writes -----------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp's 0600 would hide it from other users
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as Parquet, in memory (so it can be checksummed and written atomically)."""
    with warnings.catch_warnings():
        # pyarrow 25 reads tz-aware columns through Series.values, which pandas 3.1 deprecates;
        # the values it gets are the correct UTC instants, so the warning is only noise here
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _partition(source_api: str, dataset: Dataset, day: date) -> str:
    return f"source={source_api}/dataset={dataset}/date={day.isoformat()}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the public API ----------------------------------------------------------------------------


def write_batch(
    result: FetchResult,
    batch_id: uuid.UUID,
    settings: Settings,
    *,
    request_meta: dict[str, Any],
) -> LakeBatch:
    """Write a fetch's payloads (byte for byte), its normalised frame and, last, its manifest.

    The manifest's window is request_meta's `start`/`end` (or `window_start`/`window_end`)
    when given, else the extent of the frame's timestamps; its interval is request_meta's
    `interval`, else the frame's single interval.
    """
    root = settings.lake_path
    dataset = Dataset(result.dataset)
    written_at = datetime.now(UTC)
    fetched_at = max((p.received_at for p in result.payloads), default=written_at).astimezone(UTC)
    meta = _plain_meta(request_meta)
    frame = result.frame

    payloads: list[LakePayload] = []
    for n, payload in enumerate(result.payloads):
        payloads.append(_write_payload(root, result.source_api, dataset, batch_id, n, payload))

    parquet_path = (
        f"normalised/{_partition(result.source_api, dataset, fetched_at.date())}/{batch_id}.parquet"
    )
    parquet = _parquet_bytes(frame)
    _atomic_write(root / parquet_path, parquet)

    symbols = sorted(str(s) for s in frame["symbol"].dropna().unique()) if "symbol" in frame else []
    interval = request_meta.get("interval")
    if interval is None and "interval" in frame.columns:
        intervals = frame["interval"].dropna().unique()
        interval = str(intervals[0]) if len(intervals) == 1 else None
    window_start = _meta_time(request_meta, "start", "window_start")
    window_end = _meta_time(request_meta, "end", "window_end")
    if window_start is None and "timestamp" in frame and len(frame):
        window_start = pd.Timestamp(frame["timestamp"].min()).to_pydatetime()
    if window_end is None and "timestamp" in frame and len(frame):
        window_end = pd.Timestamp(frame["timestamp"].max()).to_pydatetime()

    batch = LakeBatch(
        batch_id=batch_id,
        source_api=result.source_api,
        dataset=dataset,
        symbols=symbols,
        interval=str(interval) if interval is not None else None,
        window_start=window_start,
        window_end=window_end,
        fetched_at=fetched_at,
        written_at=written_at,
        payloads=payloads,
        parquet_path=parquet_path,
        parquet_sha256=_sha256(parquet),
        row_count=len(frame),
        request_meta=meta,
        lake_root=root,
    )
    manifest = json.dumps(batch.manifest_dict(), indent=2, sort_keys=True).encode()
    _atomic_write(root / batch.manifest_path, manifest)
    log.info(
        "lake: batch %s (%s %s, %d rows, %d payloads) -> %s",
        batch_id,
        result.source_api,
        dataset,
        len(frame),
        len(payloads),
        batch.manifest_path,
    )
    return batch


def _write_payload(
    root: Path,
    source_api: str,
    dataset: Dataset,
    batch_id: uuid.UUID,
    n: int,
    payload: RawPayload,
) -> LakePayload:
    received_at = payload.received_at.astimezone(UTC)
    relative = (
        f"raw/{_partition(source_api, dataset, received_at.date())}/"
        f"{batch_id}-{n:04d}.{payload.extension}"
    )
    _atomic_write(root / relative, payload.body)
    return LakePayload(
        path=relative,
        sha256=_sha256(payload.body),
        size=len(payload.body),
        request=redact(payload.request),  # a key or session crumb in a URL stays out of the lake
        media_type=payload.media_type,
        received_at=received_at,
    )


def manifest_path(batch: LakeBatch, settings: Settings) -> Path:
    """Absolute path of a batch's manifest in the configured lake (what the fetch task hands
    to the load task)."""
    return settings.lake_path / batch.manifest_path


def _lake_root_of(manifest_path: Path) -> Path:
    """manifests/date=…/{id}.json sits two folders below the lake root."""
    return manifest_path.resolve().parent.parent.parent


def load_manifest(manifest_path: Path) -> LakeBatch:
    """Read a manifest (no file checks); BadPayload when it is missing or malformed."""
    try:
        data = json.loads(Path(manifest_path).read_bytes())
    except FileNotFoundError as exc:
        raise BadPayload(_LAKE, f"manifest {manifest_path} does not exist") from exc
    except ValueError as exc:
        raise BadPayload(_LAKE, f"manifest {manifest_path} is not valid JSON: {exc}") from exc
    try:
        return LakeBatch.from_dict(data, lake_root=_lake_root_of(Path(manifest_path)))
    except BadPayload as exc:
        detail = str(exc).removeprefix(f"{_LAKE}: manifest is malformed: ")
        raise BadPayload(_LAKE, f"manifest {manifest_path} is malformed: {detail}") from exc


def _verified_bytes(batch: LakeBatch, relative: str, expected_sha256: str) -> bytes:
    path = batch.absolute(relative)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise BadPayload(
            _LAKE, f"batch {batch.batch_id}: {relative} is listed in its manifest but missing"
        ) from exc
    actual = _sha256(data)
    if actual != expected_sha256:
        raise BadPayload(
            _LAKE,
            f"batch {batch.batch_id}: {relative} sha256 {actual} does not match the "
            f"manifest's {expected_sha256} (file changed after it was written)",
        )
    return data


def read_payloads(manifest_path: Path) -> list[RawPayload]:
    """The batch's raw payloads, checksum-verified, for re-parsing them offline."""
    batch = load_manifest(manifest_path)
    return [
        RawPayload(
            body=_verified_bytes(batch, p.path, p.sha256),
            request=p.request,
            media_type=p.media_type,
            received_at=p.received_at,
        )
        for p in batch.payloads
    ]


def read_batch(manifest_path: Path) -> tuple[LakeBatch, pd.DataFrame]:
    """A batch's manifest and normalised frame, after verifying every payload's sha256 (and the
    Parquet's) against the manifest: a mismatch raises BadPayload naming the file."""
    batch = load_manifest(manifest_path)
    for payload in batch.payloads:
        _verified_bytes(batch, payload.path, payload.sha256)
    parquet = _verified_bytes(batch, batch.parquet_path, batch.parquet_sha256)
    table = pq.read_table(pa.BufferReader(parquet))
    frame = table.to_pandas()
    for name in table.column_names:  # lists (order-book levels) back as Python lists
        if pa.types.is_list(table.schema.field(name).type) or pa.types.is_large_list(
            table.schema.field(name).type
        ):
            frame[name] = pd.Series(table.column(name).to_pylist(), dtype=object)
    if [c for c in frame.columns if c != UNREADABLE_COLUMN] == COLUMNS[batch.dataset]:
        frame = conform(frame, batch.dataset)  # dtypes Parquet does not keep (Int64, string)
    if len(frame) != batch.row_count:
        raise BadPayload(
            _LAKE,
            f"batch {batch.batch_id}: parquet has {len(frame)} rows, manifest says "
            f"{batch.row_count}",
        )
    return batch, frame


@dataclass(frozen=True)
class ManifestListing:
    """The lake's manifests in fetch order, and the ones that could not be read (path, why)."""

    paths: list[Path]
    unreadable: list[tuple[Path, str]]
    source_apis: list[str]


def list_manifests(
    settings: Settings, source: str | None = None, dataset: Dataset | str | None = None
) -> ManifestListing:
    """Manifest paths in fetch order (fetched_at, then write time), optionally only one
    source_api and/or dataset: the order `replay` loads batches in, so later fetches win.

    A manifest that cannot be read (not JSON, fields missing) is listed under `unreadable`
    with the reason instead of stopping the listing: one corrupt file must not hide the rest.
    """
    folder = settings.lake_path / "manifests"
    wanted_dataset = str(Dataset(dataset)) if dataset is not None else None
    entries: list[tuple[datetime, datetime, str, Path]] = []
    unreadable: list[tuple[Path, str]] = []
    sources: set[str] = set()
    for path in sorted(folder.glob("date=*/*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_bytes())
            source_api = str(data["source_api"])
            if wanted_dataset is not None and data["dataset"] != wanted_dataset:
                continue
            sources.add(source_api)
            if source is not None and source_api != source:
                continue
            fetched = datetime.fromisoformat(data["fetched_at"])
            written = datetime.fromisoformat(data["written_at"])
            entries.append((fetched, written, str(data["batch_id"]), path))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            unreadable.append((path, f"manifest {path} is malformed: {exc!r}"))
    entries.sort(key=lambda entry: entry[:3])
    return ManifestListing([entry[3] for entry in entries], unreadable, sorted(sources))
