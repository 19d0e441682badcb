"""silver.technical_indicators equals reference implementations on real data.

- The `ta` library (0.11), computed here on the same closes, for BTC, ETH (8+ years of Binance
  daily candles) and PEPE (prices near 1e-6): every indicator, every row, to 1e-6 relative, and
  the same warm-up rows null.
- StockCharts' published spreadsheets (cs-rsi, cs-macd, cs-bbands; values rounded to 6
  decimals) loaded as three more series.
- silver.returns_and_risk against pandas (rolling std, cummax) on BTC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ta

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

REFERENCE_SYMBOLS = ("BTC", "ETH", "PEPE")
# Spreadsheets loaded as series of symbols that have no other data in this database.
SHEETS = {"CKB": "cs-rsi.csv", "FLOKI": "cs-macd.csv", "TAO": "cs-bbands.csv"}
RTOL = 1e-6


def _sheet(shared_data: Path, name: str) -> pd.DataFrame:
    raw = pd.read_csv(shared_data / "reference" / "ta_bukosabino_stockcharts" / name)
    raw["Date"] = pd.to_datetime(raw["Date"], format="%d-%b-%y", utc=True)
    return raw


@pytest.fixture(scope="module")
def built(fresh_database, bronze_loader, dbt_factory, shared_data):
    url = fresh_database()
    loader = bronze_loader(url)
    loader.binance_daily(REFERENCE_SYMBOLS)
    for symbol, name in SHEETS.items():
        sheet = _sheet(shared_data, name)
        close = sheet["Close"].astype("float64")
        frame = pd.DataFrame(
            {
                "timestamp": sheet["Date"], "symbol": symbol, "interval": "1d",
                "open": close, "high": close, "low": close, "close": close, "volume": 0.0,
                "quote_volume": np.nan, "quote_currency": "USD", "source_api": "synthetic",
            }
        )  # fmt: skip
        loader.write_ohlcv(frame, "synthetic", "1d")
    dbt = dbt_factory(url)
    dbt.build()
    return dbt


def _indicators(built, symbol: str) -> pd.DataFrame:
    frame = built.frame(
        "select * from silver.technical_indicators where symbol = %s and interval = '1d' "
        "order by timestamp",
        (symbol,),
    )
    return frame.astype(
        {
            c: "float64"
            for c in frame.columns
            if c.startswith(("sma", "ema", "rsi", "macd", "bb", "close"))
        }
    )


def _ta_reference(close: pd.Series) -> dict[str, pd.Series]:
    """The indicators as `ta` computes them (fillna=False: warm-up rows NaN)."""
    bands = ta.volatility.BollingerBands(close, window=20, window_dev=2)
    macd = ta.trend.MACD(close, window_slow=26, window_fast=12, window_sign=9)
    return {
        "sma_20": ta.trend.sma_indicator(close, 20),
        "sma_50": ta.trend.sma_indicator(close, 50),
        "sma_200": ta.trend.sma_indicator(close, 200),
        "ema_12": ta.trend.ema_indicator(close, 12),
        "ema_26": ta.trend.ema_indicator(close, 26),
        "rsi_14": ta.momentum.rsi(close, 14),
        "macd_line": macd.macd(),
        "macd_signal": macd.macd_signal(),
        "macd_histogram": macd.macd_diff(),
        "bb_upper": bands.bollinger_hband(),
        "bb_middle": bands.bollinger_mavg(),
        "bb_lower": bands.bollinger_lband(),
        "bb_percent_b": bands.bollinger_pband(),
        # ta publishes bandwidth in percent; silver stores the fraction.
        "bb_bandwidth": bands.bollinger_wband() / 100,
    }


@pytest.mark.parametrize("symbol", REFERENCE_SYMBOLS)
def test_every_indicator_equals_ta_on_real_daily_history(built, bronze_loader, symbol):
    expected_closes = bronze_loader(built.url).binance_daily_frame(symbol)["close"]
    got = _indicators(built, symbol)
    assert len(got) == len(expected_closes) > 900
    np.testing.assert_array_equal(got["close"].to_numpy(), expected_closes.to_numpy())

    for column, reference in _ta_reference(expected_closes.reset_index(drop=True)).items():
        ours = got[column].to_numpy()
        theirs = reference.to_numpy(dtype="float64")
        np.testing.assert_array_equal(
            np.isnan(ours), np.isnan(theirs), err_msg=f"{symbol} {column}: null rows differ from ta"
        )
        published = ~np.isnan(theirs)
        assert published.sum() > 700, column
        np.testing.assert_allclose(
            ours[published], theirs[published], rtol=RTOL, atol=0, err_msg=f"{symbol} {column}"
        )


def test_warm_up_lengths_are_ta_s(built):
    """First non-null candle of each indicator: the windows and spans, counted from 1."""
    got = _indicators(built, "ETH")
    first = {
        c: int(got.loc[got[c].notna(), "candle_number"].min()) for c in _ta_reference(got["close"])
    }
    assert first == {
        "sma_20": 20, "sma_50": 50, "sma_200": 200, "ema_12": 12, "ema_26": 26, "rsi_14": 14,
        "macd_line": 26, "macd_signal": 34, "macd_histogram": 34,
        "bb_upper": 20, "bb_middle": 20, "bb_lower": 20, "bb_percent_b": 20, "bb_bandwidth": 20,
    }  # fmt: skip


def test_rsi_equals_stockcharts_sheet(built, shared_data):
    """cs-rsi uses ta's convention (Wilder averages started at 0 on the first candle): every
    RSI the sheet publishes matches to its 6-decimal rounding; ours starts one candle earlier."""
    sheet = _sheet(shared_data, SHEETS["CKB"])
    got = _indicators(built, "CKB")
    published = sheet["RSI"].notna().to_numpy()
    assert published.sum() == 19
    np.testing.assert_allclose(
        got["rsi_14"].to_numpy()[published], sheet["RSI"][published], atol=1e-6
    )
    assert got["rsi_14"].notna().sum() == published.sum() + 1


def test_macd_equals_stockcharts_sheet(built, shared_data):
    """EMAs and the MACD line match wherever we publish them. The sheet starts its signal line
    from a different seed; the difference must decay exactly as (1 - 2/10)^k, proving that
    the seed is the only difference, and be below 1e-6 from candle 90 on."""
    sheet = _sheet(shared_data, SHEETS["FLOKI"])
    got = _indicators(built, "FLOKI")
    for theirs, ours in [
        ("short_ema", "ema_12"),
        ("long_ema", "ema_26"),
        ("MACD_line", "macd_line"),
    ]:
        mask = got[ours].notna().to_numpy()
        np.testing.assert_allclose(got[ours][mask], sheet[theirs][mask], atol=1e-8, err_msg=ours)

    difference = (got["macd_signal"] - sheet["MACD_signal"]).to_numpy()
    early = difference[33:60]
    np.testing.assert_allclose(early[1:] / early[:-1], 0.8, rtol=1e-4)
    assert np.nanmax(np.abs(difference[89:])) < 1e-6
    histogram = (got["macd_histogram"] - sheet["MACD_diff"]).to_numpy()
    assert np.nanmax(np.abs(histogram[89:])) < 1e-6


def test_bollinger_equals_stockcharts_sheet(built, shared_data):
    """Population standard deviation, bands, %b and bandwidth (the sheet's is x 100)."""
    sheet = _sheet(shared_data, SHEETS["TAO"])
    got = _indicators(built, "TAO")
    mask = sheet["MiddleBand"].notna().to_numpy()
    assert mask.sum() == 23
    np.testing.assert_array_equal(got["bb_middle"].notna().to_numpy(), mask)
    for theirs, ours, scale in [
        ("MiddleBand", "bb_middle", 1), ("HighBand", "bb_upper", 1), ("LowBand", "bb_lower", 1),
        ("PercentageBand", "bb_percent_b", 1), ("WidthBand", "bb_bandwidth", 100),
    ]:  # fmt: skip
        np.testing.assert_allclose(
            got[ours][mask] * scale, sheet[theirs][mask], atol=1e-6, err_msg=ours
        )


def test_returns_and_risk_equal_pandas_on_btc(built, bronze_loader):
    """Volatility = rolling sample std of log returns x sqrt(365); drawdown from the running peak."""
    close = bronze_loader(built.url).binance_daily_frame("BTC")["close"].reset_index(drop=True)
    got = built.frame(
        "select * from silver.returns_and_risk where symbol = 'BTC' order by timestamp"
    ).astype({"volatility_30": "float64", "volatility_60": "float64", "volatility_90": "float64"})
    log_return = np.log(close / close.shift(1))
    expected = {
        "simple_return": close.pct_change(),
        "log_return": log_return,
        "volatility_30": log_return.rolling(30).std() * np.sqrt(365),
        "volatility_60": log_return.rolling(60).std() * np.sqrt(365),
        "volatility_90": log_return.rolling(90).std() * np.sqrt(365),
        "cumulative_return": close / close.iloc[0] - 1,
        "running_peak": close.cummax(),
        "drawdown": close / close.cummax() - 1,
        "max_drawdown": (close / close.cummax() - 1).cummin(),
    }
    for column, reference in expected.items():
        ours = got[column].to_numpy(dtype="float64")
        theirs = reference.to_numpy(dtype="float64")
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=column)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15, err_msg=column)
    # The known figure: BTC's worst fall in this history (2017-12 peak to 2018-12 trough) is ~84 %.
    assert -0.85 < got["max_drawdown"].iloc[-1] < -0.83
