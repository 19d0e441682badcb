"""BinanceArchiveSource: CSV parsing on a real archive file, planning, and whole fetches against
a local server serving zips built here from that file (valid, corrupted, missing checksums)."""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from exchange_fakes import cleared, configure, local_server
from pytest_httpserver import HTTPServer
from werkzeug import Response

from crypto_analytics.config import Settings
from crypto_analytics.errors import BadPayload, ConfigError, SourceUnavailable
from crypto_analytics.ingestion.frames import COLUMNS, Dataset
from crypto_analytics.ingestion.sources.binance_archive import (
    BinanceArchiveSource,
    archive_files,
)
from crypto_analytics.ingestion.sources.binance_format import parse_klines, read_kline_csv

CSV = Path("intraday/binance_vision_sadunalpdag/BTCUSDT-1h-2022-01.csv")
BASE = "/data/spot"


def _parse(data: bytes | str) -> pd.DataFrame:
    return parse_klines(
        read_kline_csv(data),
        symbol="BTC",
        interval="1h",
        quote_currency="USDT",
        source_api="binance_archive",
    )


@pytest.fixture
def csv_bytes(shared_data: Path) -> bytes:
    return (shared_data / CSV).read_bytes()


def _day_lines(csv_bytes: bytes, day: int) -> bytes:
    """The 24 rows of 2022-01-<day>, without the header, as Binance's daily files are."""
    lines = csv_bytes.decode().splitlines()[1:]
    return ("\n".join(lines[(day - 1) * 24 : day * 24]) + "\n").encode()


def _zip(name: str, csv_content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name.removesuffix(".zip") + ".csv", csv_content)
    return buffer.getvalue()


def _checksum(name: str, content: bytes) -> bytes:
    return f"{hashlib.sha256(content).hexdigest()}  {name}\n".encode()


# ---------------------------------------------------------------------------- CSV parsing


def test_archive_csv_with_header_gives_exact_first_and_last_rows(csv_bytes: bytes) -> None:
    frame = _parse(csv_bytes)
    assert list(frame.columns) == COLUMNS[Dataset.OHLCV]
    assert len(frame) == 744
    first, last = frame.iloc[0], frame.iloc[-1]
    # 1640995200000,46216.93000000,46731.39000000,46208.37000000,46656.13000000,1503.33095000,
    # 1640998799999,69879986.39049930,...
    assert first["timestamp"] == pd.Timestamp("2022-01-01 00:00", tz="UTC")
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        46216.93,
        46731.39,
        46208.37,
        46656.13,
    )
    assert (first["volume"], first["quote_volume"]) == (1503.33095, 69879986.3904993)
    # 1643670000000,38412.45000000,38510.28000000,38336.04000000,38466.90000000,574.60408000,
    # 1643673599999,22084888.70861130,...
    assert last["timestamp"] == pd.Timestamp("2022-01-31 23:00", tz="UTC")
    assert (last["open"], last["high"], last["low"], last["close"]) == (
        38412.45,
        38510.28,
        38336.04,
        38466.90,
    )
    assert (last["volume"], last["quote_volume"]) == (574.60408, 22084888.7086113)
    expected_hours = pd.date_range("2022-01-01", "2022-01-31 23:00", freq="1h", tz="UTC")
    assert list(frame["timestamp"]) == list(expected_hours)


def test_microsecond_csv_without_header_parses_identically(csv_bytes: bytes) -> None:
    """Spot files from 2025-01-01 carry open/close times in microseconds."""
    micro_lines = []
    for line in csv_bytes.decode().splitlines()[1:]:
        fields = line.split(",")
        fields[0] = str(int(fields[0]) * 1000)
        fields[6] = str(int(fields[6]) * 1000 + 999)
        micro_lines.append(",".join(fields))
    micro_csv = "\r\n".join(micro_lines) + "\r\n"
    assert micro_csv.startswith("1640995200000000,46216.93000000,")
    pd.testing.assert_frame_equal(_parse(micro_csv), _parse(csv_bytes))


def test_mixed_units_are_decided_per_row(csv_bytes: bytes) -> None:
    lines = csv_bytes.decode().splitlines()[1:3]
    first = lines[0].split(",")
    first[0] = str(int(first[0]) * 1000)
    frame = _parse(",".join(first) + "\n" + lines[1] + "\n")
    assert list(frame["timestamp"]) == [
        pd.Timestamp("2022-01-01 00:00", tz="UTC"),
        pd.Timestamp("2022-01-01 01:00", tz="UTC"),
    ]


def test_truncated_csv_line_is_bad_payload(csv_bytes: bytes) -> None:
    lines = csv_bytes.decode().splitlines()[:13]  # header + rows 0..11
    lines[-1] = lines[-1].rsplit(",", 2)[0]  # a download cut inside row 11
    assert lines[-1].count(",") == 9 and lines[-1].startswith("1641034800000,")
    with pytest.raises(BadPayload, match=r"kline row 11 has 10 fields, expected 12"):
        _parse("\n".join(lines))


# ---------------------------------------------------------------------------- planning


def _plan(start: datetime, end: datetime, today: date) -> list[tuple[str, str]]:
    return [
        (f.kind, f.period)
        for f in archive_files(
            "https://data.binance.vision", "spot", "BTCUSDT", "1h", start, end, today
        )
    ]


def test_whole_months_are_monthly_files_and_the_rest_daily() -> None:
    plan = _plan(
        datetime(2021, 12, 30, 6, tzinfo=UTC),
        datetime(2022, 3, 2, 0, tzinfo=UTC),
        date(2022, 3, 10),
    )
    assert plan == [
        ("daily", "2021-12-30"),
        ("daily", "2021-12-31"),
        ("monthly", "2022-01"),
        ("monthly", "2022-02"),
        ("daily", "2022-03-01"),
    ]


def test_current_month_has_no_monthly_file_yet() -> None:
    plan = _plan(
        datetime(2022, 3, 1, tzinfo=UTC), datetime(2022, 4, 1, tzinfo=UTC), date(2022, 3, 31)
    )
    assert plan == [("daily", f"2022-03-{d:02d}") for d in range(1, 32)]


def test_archive_urls_follow_the_published_layout() -> None:
    [daily, monthly] = archive_files(
        "https://data.binance.vision/",
        "spot",
        "BTCUSDT",
        "1h",
        datetime(2021, 12, 31, tzinfo=UTC),
        datetime(2022, 2, 1, tzinfo=UTC),
        date(2024, 1, 1),
    )
    assert daily.url == (
        "https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2021-12-31.zip"
    )
    assert monthly.url == (
        "https://data.binance.vision/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2022-01.zip"
    )
    assert monthly.name == "BTCUSDT-1h-2022-01.zip"


# ---------------------------------------------------------------------------- whole fetches


@pytest.fixture(scope="module")
def _shared_server() -> Iterator[HTTPServer]:
    with local_server() as srv:
        yield srv


@pytest.fixture
def server(_shared_server: HTTPServer) -> Iterator[HTTPServer]:
    with cleared(_shared_server) as srv:
        srv.no_handler_status_code = 404  # like the archive: anything not served is missing
        yield srv


def _archive(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, today: datetime, **env: str
) -> BinanceArchiveSource:
    env.setdefault("INGESTION__MAX_RETRIES", "1")
    settings = configure(
        monkeypatch, SOURCES__BINANCE_ARCHIVE__BASE_URL=f"http://{server.host}:{server.port}", **env
    )
    return BinanceArchiveSource(settings, clock=lambda: today)


def _serve(
    server: HTTPServer, kind: str, period: str, zipped: bytes, checksum: bytes | None
) -> str:
    name = f"BTCUSDT-1h-{period}.zip"
    path = f"{BASE}/{kind}/klines/BTCUSDT/1h/{name}"
    server.expect_request(path).respond_with_data(zipped, content_type="application/zip")
    if checksum is not None:
        server.expect_request(path + ".CHECKSUM").respond_with_data(checksum)
    return path


def test_monthly_fetch_verifies_and_returns_the_month(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, csv_bytes: bytes, settings: Settings
) -> None:
    name = "BTCUSDT-1h-2022-01.zip"
    zipped = _zip(name, csv_bytes)
    path = _serve(server, "monthly", "2022-01", zipped, _checksum(name, zipped))
    source = _archive(monkeypatch, server, datetime(2024, 6, 1, tzinfo=UTC))

    result = source.fetch_ohlcv(
        settings.token("BTC"),
        "1h",
        datetime(2022, 1, 1, tzinfo=UTC),
        datetime(2022, 2, 1, tzinfo=UTC),
    )

    assert result.source_api == "binance_archive"
    frame = result.frame
    assert len(frame) == 744
    assert frame.iloc[0]["open"] == 46216.93 and frame.iloc[-1]["close"] == 38466.90
    assert frame.iloc[-1]["quote_volume"] == 22084888.7086113
    assert set(frame["source_api"]) == {"binance_archive"} and set(frame["quote_currency"]) == {
        "USDT"
    }
    [payload] = result.payloads
    assert payload.body == zipped and payload.media_type == "application/zip"
    assert payload.request.endswith(path)
    assert [r.path for r, _ in server.log] == [path, path + ".CHECKSUM"]


def test_unpublished_month_is_skipped_and_days_filtered_to_the_window(
    monkeypatch: pytest.MonkeyPatch,
    server: HTTPServer,
    csv_bytes: bytes,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for day in (1, 2):
        period = f"2022-01-{day:02d}"
        name = f"BTCUSDT-1h-{period}.zip"
        zipped = _zip(name, _day_lines(csv_bytes, day))
        _serve(server, "daily", period, zipped, _checksum(name, zipped))
    source = _archive(monkeypatch, server, datetime(2024, 6, 1, tzinfo=UTC))

    with caplog.at_level(logging.INFO, logger="crypto_analytics.ingestion.sources.binance_archive"):
        result = source.fetch_ohlcv(
            settings.token("BTC"),
            "1h",
            datetime(2021, 12, 1, tzinfo=UTC),  # December: 404, as before a listing
            datetime(2022, 1, 2, 12, tzinfo=UTC),
        )

    frame = result.frame
    assert len(frame) == 36  # 24 hours of Jan 1 + 12 of Jan 2; Jan 2 12:00-23:00 filtered out
    assert frame.iloc[0]["timestamp"] == pd.Timestamp("2022-01-01 00:00", tz="UTC")
    assert frame.iloc[-1]["timestamp"] == pd.Timestamp("2022-01-02 11:00", tz="UTC")
    assert frame.iloc[0]["open"] == 46216.93
    assert len(result.payloads) == 2
    assert "BTCUSDT-1h-2021-12.zip not published" in caplog.text
    requested = [r.path for r, _ in server.log]
    assert requested[0].endswith("/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2021-12.zip")
    assert not any(p.endswith("2021-12.zip.CHECKSUM") for p in requested)


def test_recent_month_without_its_monthly_file_falls_back_to_daily_files(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, csv_bytes: bytes, settings: Settings
) -> None:
    for day in range(1, 32):
        period = f"2022-01-{day:02d}"
        name = f"BTCUSDT-1h-{period}.zip"
        zipped = _zip(name, _day_lines(csv_bytes, day))
        _serve(server, "daily", period, zipped, _checksum(name, zipped))
    source = _archive(monkeypatch, server, datetime(2022, 2, 3, 8, tzinfo=UTC))

    result = source.fetch_ohlcv(
        settings.token("BTC"),
        "1h",
        datetime(2022, 1, 1, tzinfo=UTC),
        datetime(2022, 2, 1, tzinfo=UTC),
    )

    pd.testing.assert_frame_equal(result.frame, _parse(csv_bytes))
    assert len(result.payloads) == 31


def test_corrupted_checksum_is_bad_payload_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, csv_bytes: bytes, settings: Settings
) -> None:
    name = "BTCUSDT-1h-2022-01.zip"
    zipped = _zip(name, csv_bytes)
    corrupted = zipped[:-10] + bytes(10)
    _serve(server, "monthly", "2022-01", corrupted, _checksum(name, zipped))
    source = _archive(monkeypatch, server, datetime(2024, 6, 1, tzinfo=UTC))
    with pytest.raises(BadPayload, match=r"BTCUSDT-1h-2022-01\.zip failed its checksum"):
        source.fetch_ohlcv(
            settings.token("BTC"),
            "1h",
            datetime(2022, 1, 1, tzinfo=UTC),
            datetime(2022, 2, 1, tzinfo=UTC),
        )


@pytest.mark.parametrize(
    ("checksum", "message"),
    [
        (None, "has no published .CHECKSUM"),
        (b"<html>oops</html>", r"\.CHECKSUM is not '<sha256>  <name>'"),
        (f"{'0' * 64}  ETHUSDT-1h-2022-01.zip".encode(), "CHECKSUM is for another file: ETHUSDT"),
    ],
)
def test_missing_or_unusable_checksum_is_bad_payload(
    monkeypatch: pytest.MonkeyPatch,
    server: HTTPServer,
    csv_bytes: bytes,
    settings: Settings,
    checksum: bytes | None,
    message: str,
) -> None:
    _serve(server, "monthly", "2022-01", _zip("BTCUSDT-1h-2022-01.zip", csv_bytes), checksum)
    source = _archive(monkeypatch, server, datetime(2024, 6, 1, tzinfo=UTC))
    with pytest.raises(BadPayload, match=message):
        source.fetch_ohlcv(
            settings.token("BTC"),
            "1h",
            datetime(2022, 1, 1, tzinfo=UTC),
            datetime(2022, 2, 1, tzinfo=UTC),
        )


def test_not_a_zip_is_bad_payload(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, settings: Settings
) -> None:
    body = b"<html>Access denied</html>"
    _serve(server, "daily", "2022-01-01", body, _checksum("BTCUSDT-1h-2022-01-01.zip", body))
    source = _archive(monkeypatch, server, datetime(2024, 6, 1, tzinfo=UTC))
    with pytest.raises(BadPayload, match=r"BTCUSDT-1h-2022-01-01\.zip is not a valid zip"):
        source.fetch_ohlcv(
            settings.token("BTC"),
            "1h",
            datetime(2022, 1, 1, tzinfo=UTC),
            datetime(2022, 1, 2, tzinfo=UTC),
        )


def test_server_errors_are_retried_then_source_unavailable(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, settings: Settings
) -> None:
    path = f"{BASE}/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2022-01-01.zip"
    server.expect_request(path).respond_with_response(Response("unavailable", status=503))
    source = _archive(
        monkeypatch, server, datetime(2024, 6, 1, tzinfo=UTC), INGESTION__MAX_RETRIES="2"
    )
    with pytest.raises(SourceUnavailable, match="HTTP 503"):
        source.fetch_ohlcv(
            settings.token("BTC"),
            "1h",
            datetime(2022, 1, 1, tzinfo=UTC),
            datetime(2022, 1, 2, tzinfo=UTC),
        )
    assert len(server.log) == 3


def test_arguments_are_checked(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, settings: Settings
) -> None:
    source = _archive(monkeypatch, server, datetime(2024, 6, 1, tzinfo=UTC))
    btc = settings.token("BTC")
    with pytest.raises(ConfigError, match="timezone-aware"):
        source.fetch_ohlcv(btc, "1h", datetime(2022, 1, 1), datetime(2022, 1, 2, tzinfo=UTC))
    with pytest.raises(ConfigError, match="unknown interval"):
        source.fetch_ohlcv(
            btc, "7h", datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 1, 2, tzinfo=UTC)
        )
    assert source.intervals() == ["1d", "1h"] and source.source_api == "binance_archive"
    assert server.log == []
