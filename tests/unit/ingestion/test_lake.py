"""The raw lake: byte-for-byte payloads, atomic batches, verified reads, fetch-ordered replay."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from crypto_analytics.errors import BadPayload, ConfigError
from crypto_analytics.ingestion import lake
from crypto_analytics.ingestion.frames import Dataset
from crypto_analytics.ingestion.lake import (
    LakeBatch,
    list_manifests,
    read_batch,
    read_payloads,
    write_batch,
)
from crypto_analytics.ingestion.sources.base import FetchResult, RawPayload
from crypto_analytics.ingestion.sources.binance_format import parse_klines
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource

RECEIVED = datetime(2024, 3, 9, 23, 59, 58, tzinfo=UTC)
BATCH = uuid.UUID("0b0e5a6c-3f0c-4b9e-9a55-2f1c7f3d9e01")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def synthetic_result(
    settings, symbol: str = "BTC", received_at: datetime = RECEIVED
) -> FetchResult:
    source = SyntheticSource(settings, clock=lambda: at(2026, 1, 1))
    result = source.fetch_ohlcv(settings.token(symbol), "1h", at(2024, 3, 9), at(2024, 3, 10))
    # pin the receive time so paths are predictable
    payloads = [
        RawPayload(p.body, p.request, p.media_type, received_at=received_at)
        for p in result.payloads
    ]
    return FetchResult(result.source_api, result.dataset, result.frame, payloads)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_round_trip_is_byte_for_byte(settings):
    result = synthetic_result(settings)
    meta = {"start": at(2024, 3, 9), "end": at(2024, 3, 10), "interval": "1h", "run": "manual"}
    batch = write_batch(result, BATCH, settings, request_meta=meta)

    root = settings.lake_path
    part = "source=synthetic/dataset=ohlcv/date=2024-03-09"
    assert files_under(root) == [
        f"manifests/date=2024-03-09/{BATCH}.json",
        f"normalised/{part}/{BATCH}.parquet",
        f"raw/{part}/{BATCH}-0000.json",
    ]
    assert (root / f"raw/{part}/{BATCH}-0000.json").read_bytes() == result.payloads[0].body

    manifest = json.loads(batch.manifest_file.read_text())
    assert manifest["batch_id"] == str(BATCH)
    assert manifest["source_api"] == "synthetic" and manifest["dataset"] == "ohlcv"
    assert manifest["symbols"] == ["BTC"] and manifest["interval"] == "1h"
    assert manifest["window_start"] == "2024-03-09T00:00:00+00:00"
    assert manifest["window_end"] == "2024-03-10T00:00:00+00:00"
    assert manifest["fetched_at"] == "2024-03-09T23:59:58+00:00"
    assert manifest["row_count"] == 24
    assert manifest["request_meta"] == {
        "start": "2024-03-09T00:00:00+00:00",
        "end": "2024-03-10T00:00:00+00:00",
        "interval": "1h",
        "run": "manual",
    }
    (payload,) = manifest["payloads"]
    assert payload["sha256"] == hashlib.sha256(result.payloads[0].body).hexdigest()
    assert payload["request"] == result.payloads[0].request
    assert payload["path"] == f"raw/{part}/{BATCH}-0000.json"  # relative to the lake root

    read, frame = read_batch(batch.manifest_file)
    assert read == batch
    pd.testing.assert_frame_equal(frame, result.frame, check_exact=True)
    assert [p.body for p in read_payloads(batch.manifest_file)] == [result.payloads[0].body]


def test_real_payload_kept_exactly(settings, shared_data: Path):
    """A real Binance klines response (CRLF-free JSON with string prices) lands unchanged."""
    body = (
        shared_data / "api_samples/binance/nautilus_trader/http_spot_market_klines.json"
    ).read_bytes()
    frame = parse_klines(
        json.loads(body), symbol="BTC", interval="1m", quote_currency="USDT", source_api="binance"
    )
    url = "https://api.binance.com/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=10"
    result = FetchResult(
        "binance",
        Dataset.OHLCV,
        frame,
        [RawPayload(body, url, received_at=RECEIVED)],
    )
    batch = write_batch(result, BATCH, settings, request_meta={})
    stored = batch.absolute(batch.payloads[0].path)
    assert stored.read_bytes() == body
    assert batch.payloads[0].sha256 == hashlib.sha256(body).hexdigest()
    assert batch.payloads[0].request == url
    # no window in request_meta: the manifest records the extent of the rows
    assert batch.window_start == at(2021, 10, 22, 23, 3)
    assert batch.window_end == at(2021, 10, 22, 23, 12)
    _, read = read_batch(batch.manifest_file)
    assert read["close"].iloc[0] == 60719.27


def test_order_book_levels_come_back_as_lists(settings):
    source = SyntheticSource(settings, clock=lambda: at(2026, 1, 1))
    result = source.fetch_orderbook(settings.token("ETH"), 5, at=at(2025, 1, 2, 3, 4))
    batch = write_batch(result, BATCH, settings, request_meta={"depth": 5})
    _, frame = read_batch(batch.manifest_file)
    assert isinstance(frame["bids"].iloc[0], list)
    pd.testing.assert_frame_equal(frame, result.frame, check_exact=True)


def test_lake_batch_is_plain_json_for_xcom(settings):
    batch = write_batch(synthetic_result(settings), BATCH, settings, request_meta={"depth": None})
    text = json.dumps(batch.to_dict())
    again = LakeBatch.from_dict(json.loads(text))
    assert again == batch
    assert again.manifest_file == batch.manifest_file
    assert lake.manifest_path(batch, settings) == batch.manifest_file
    assert batch.manifest_file.is_file()


def test_moved_lake_still_reads(settings, tmp_path):
    batch = write_batch(synthetic_result(settings), BATCH, settings, request_meta={})
    moved = tmp_path / "moved"
    settings.lake_path.rename(moved)
    read, frame = read_batch(moved / batch.manifest_path)
    assert read.lake_root == moved.resolve() and len(frame) == 24


def test_a_failure_before_the_manifest_leaves_no_manifest(settings, monkeypatch):
    def broken(frame: pd.DataFrame) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr(lake, "_parquet_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        write_batch(synthetic_result(settings), BATCH, settings, request_meta={})
    written = files_under(settings.lake_path)
    assert not any(name.startswith("manifests/") for name in written)
    assert list_manifests(settings).paths == []


def test_a_failed_rename_leaves_no_partial_manifest(settings, monkeypatch):
    real_replace = os.replace

    def replace(src, dst):
        if "manifests" in str(dst):
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(lake.os, "replace", replace)
    with pytest.raises(OSError, match="power cut"):
        write_batch(synthetic_result(settings), BATCH, settings, request_meta={})
    written = files_under(settings.lake_path)
    assert not any("manifests" in name or name.endswith(".tmp") for name in written)
    assert len(written) == 2  # the payload and the parquet, which no manifest points at


@pytest.mark.parametrize("target", ["payload", "parquet"])
def test_tampering_is_detected(settings, target):
    batch = write_batch(synthetic_result(settings), BATCH, settings, request_meta={})
    relative = batch.payloads[0].path if target == "payload" else batch.parquet_path
    path = batch.absolute(relative)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BadPayload, match=f"{relative} sha256 .* does not match"):
        read_batch(batch.manifest_file)


def test_missing_payload_is_reported(settings):
    batch = write_batch(synthetic_result(settings), BATCH, settings, request_meta={})
    batch.absolute(batch.payloads[0].path).unlink()
    with pytest.raises(BadPayload, match="listed in its manifest but missing"):
        read_batch(batch.manifest_file)


def test_manifests_come_back_in_fetch_order(settings):
    base = at(2024, 5, 1, 12)
    # written out of order, across two UTC dates, two sources' worth of datasets
    plan = [
        ("ETH", base + timedelta(days=1)),
        ("BTC", base),
        ("SOL", base + timedelta(hours=13)),  # next UTC date
        ("DOGE", base + timedelta(seconds=1)),
    ]
    ids = {}
    for symbol, received in plan:
        batch_id = uuid.uuid4()
        ids[symbol] = batch_id
        write_batch(
            synthetic_result(settings, symbol, received), batch_id, settings, request_meta={}
        )
    book = SyntheticSource(settings, clock=lambda: at(2026, 1, 1)).fetch_orderbook(
        settings.token("BTC"), 3, at=at(2024, 5, 1)
    )
    write_batch(book, uuid.uuid4(), settings, request_meta={})

    ohlcv = [p.stem for p in list_manifests(settings, source="synthetic", dataset="ohlcv").paths]
    assert ohlcv == [str(ids[s]) for s in ("BTC", "DOGE", "SOL", "ETH")]
    assert len(list_manifests(settings).paths) == 5
    assert len(list_manifests(settings, dataset=Dataset.ORDERBOOK).paths) == 1
    assert list_manifests(settings, source="binance").paths == []
    assert list_manifests(settings, source="binance").source_apis == ["synthetic"]


def test_request_meta_must_be_storable(settings):
    with pytest.raises(ConfigError, match=r"request_meta\['session'\]"):
        write_batch(synthetic_result(settings), BATCH, settings, request_meta={"session": object()})
    assert not settings.lake_path.exists() or files_under(settings.lake_path) == []


def test_corrupt_manifest_is_a_bad_payload(settings):
    batch = write_batch(synthetic_result(settings), BATCH, settings, request_meta={})
    batch.manifest_file.write_text('{"batch_id": "truncated')
    with pytest.raises(BadPayload, match="not valid JSON"):
        read_batch(batch.manifest_file)
    # one corrupt manifest is named, and does not hide the others
    good = write_batch(synthetic_result(settings), uuid.uuid4(), settings, request_meta={})
    listing = list_manifests(settings)
    assert listing.paths == [good.manifest_file]
    assert [(path, "malformed" in why) for path, why in listing.unreadable] == [
        (batch.manifest_file, True)
    ]


def test_request_records_never_hold_a_secret(settings):
    result = synthetic_result(settings)
    result.payloads[0] = RawPayload(
        body=result.payloads[0].body,
        request="https://query2.finance.yahoo.com/v8/finance/chart/BTC-USD?crumb=s3ss10n-crumb"
        "&x_cg_demo_api_key=CG-key-in-url-1",
    )
    batch = write_batch(result, BATCH, settings, request_meta={})
    stored = batch.manifest_file.read_text()
    assert "s3ss10n-crumb" not in stored and "CG-key-in-url-1" not in stored
    assert "crumb=***" in stored


def test_a_malformed_manifest_names_its_file(settings):
    batch = write_batch(synthetic_result(settings), BATCH, settings, request_meta={})
    data = json.loads(batch.manifest_file.read_text())
    del data["parquet_path"]
    batch.manifest_file.write_text(json.dumps(data))
    with pytest.raises(
        BadPayload, match=f"manifest {batch.manifest_file} is malformed: .*parquet_path"
    ):
        read_batch(batch.manifest_file)
