"""The numpy binary COPY encoder: exact bytes, every type the loader sends, NULLs and row order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from crypto_analytics.errors import LoadError
from crypto_analytics.ingestion.pgcopy import HEADER, TRAILER, encode_frame
from crypto_analytics.warehouse import connect

TYPES = [
    ("ts", "timestamp with time zone"),
    ("name", "text"),
    ("price", "double precision"),
    ("depth", "integer"),
    ("big", "bigint"),
    ("doc", "jsonb"),
    ("ref", "uuid"),
]


def test_bytes_follow_the_postgresql_binary_format():
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2000-01-01T00:00:01Z"], utc=True),
            "name": ["BTC"],
            "price": [np.nan],
        }
    )
    stream = b"".join(
        encode_frame(
            frame,
            [("ts", "timestamp with time zone"), ("name", "text"), ("price", "double precision")],
        )
    )
    assert HEADER == b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    assert stream == (
        HEADER
        + b"\x00\x03"  # three fields
        + b"\x00\x00\x00\x08"
        + (1_000_000).to_bytes(8, "big")  # 1 s after 2000-01-01, in µs
        + b"\x00\x00\x00\x03"
        + b"BTC"
        + b"\xff\xff\xff\xff"  # NaN is NULL: length -1 and no bytes
        + TRAILER
    )


@pytest.fixture
def conn(warehouse_url: str):
    with connect(warehouse_url, autocommit=True) as connection:
        yield connection


def copy_back(conn, frame, types=TYPES, constants=None):
    """COPY into a temp table whose serial id records arrival order; rows back in that order."""
    columns = [name for name, _ in types]
    with conn.transaction():
        conn.execute(
            "create temp table t (id bigserial, "
            + ", ".join(f"{name} {pg_type}" for name, pg_type in types)
            + ") on commit drop"
        )
        with conn.cursor().copy(
            f"copy t ({', '.join(columns)}) from stdin (format binary)"
        ) as copy:
            for chunk in encode_frame(frame, types, constants, chunk_rows=7):
                copy.write(chunk)
        return conn.execute(f"select {', '.join(columns)} from t order by id").fetchall()


@pytest.mark.integration
def test_every_type_and_null_round_trips(conn):
    ref = uuid.UUID("ff000000-0000-0000-0000-000000000000")  # trailing NUL bytes survive
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                ["2021-10-22T23:03:00Z", "1969-07-20T20:17:40.123456Z", None],
                utc=True,
                format="ISO8601",
            ),
            "name": pd.array(["PEPE", None, ""], dtype="string"),
            "price": [1.234e-06, np.nan, -0.0],
            "depth": pd.array([20, None, -3], dtype="Int64"),
            "big": [2**62 + 1, 0, -1],  # beyond float precision: must stay exact
            "doc": [[[60650.0, 0.00213]], None, '{"déjà": "vu"}'],
            "ref": [ref, None, str(ref)],
        }
    )
    rows = copy_back(conn, frame)
    assert rows == [
        (
            datetime(2021, 10, 22, 23, 3, tzinfo=UTC),
            "PEPE",
            1.234e-06,
            20,
            2**62 + 1,
            [[60650.0, 0.00213]],
            ref,
        ),
        (datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC), None, None, None, 0, None, None),
        (None, "", -0.0, -3, -1, {"déjà": "vu"}, ref),
    ]


@pytest.mark.integration
def test_row_order_is_kept_when_layouts_come_in_runs(conn):
    symbols = ["ETH"] * 20 + ["DOGE"] * 20 + ["BTC"] * 5 + ["PEPE"] * 20
    frame = pd.DataFrame({"name": symbols, "price": np.arange(len(symbols), dtype=float)})
    rows = copy_back(conn, frame, [("name", "text"), ("price", "double precision")])
    assert rows == list(zip(symbols, frame["price"].tolist(), strict=True))


@pytest.mark.integration
def test_alternating_layouts_are_regrouped_and_nothing_is_lost(conn):
    price = np.where(np.arange(200) % 2 == 0, np.arange(200, dtype=float), np.nan)
    frame = pd.DataFrame({"name": ["A", "BB"] * 100, "price": price})
    rows = copy_back(conn, frame, [("name", "text"), ("price", "double precision")])
    expected = {(n, None if np.isnan(p) else p) for n, p in zip(frame["name"], price, strict=True)}
    assert len(rows) == 200 and set(rows) == expected


@pytest.mark.integration
def test_constant_columns_fill_every_row(conn):
    batch = uuid.uuid4()
    frame = pd.DataFrame({"price": [1.0, 2.0]})
    rows = copy_back(conn, frame, [("price", "double precision"), ("ref", "uuid")], {"ref": batch})
    assert rows == [(1.0, batch), (2.0, batch)]


@pytest.mark.parametrize(
    ("frame", "types", "message"),
    [
        (pd.DataFrame({"x": [1]}), [("x", "numeric")], "column 'x': binary COPY of type 'numeric'"),
        (pd.DataFrame({"x": [1]}), [("y", "text")], "column 'y' is missing"),
        (
            pd.DataFrame({"ts": pd.to_datetime(["2024-01-01"])}),
            [("ts", "timestamp with time zone")],
            "must hold tz-aware UTC datetimes",
        ),
        (pd.DataFrame({"d": [2**31]}), [("d", "integer")], "out of range for integer"),
        (pd.DataFrame({"d": [1.5]}), [("d", "integer")], "non-integer values"),
        (
            pd.DataFrame({"doc": [[[1.0, float("nan")]]]}),
            [("doc", "jsonb")],
            "column 'doc' cannot be encoded as jsonb",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_column(frame, types, message):
    with pytest.raises(LoadError, match=message):
        b"".join(encode_frame(frame, types))
