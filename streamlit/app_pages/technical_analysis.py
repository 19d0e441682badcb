"""Technical analysis: candles with Bollinger bands and moving averages, volume, RSI and MACD
panels, and the support/resistance levels the pipeline detected (gold.support_resistance_levels):
nothing here is computed in the page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import charts
import notices
import queries

TA_INTERVALS = ("15m", "1h", "4h", "1d")
RANGES = {
    "1d": [90, 180, 365, 730],
    "4h": [180, 360, 720],
    "1h": [168, 336, 720],
    "15m": [192, 384, 672],
}

st.title("Technical analysis")


def reading(latest: pd.Series) -> list[str]:
    """Plain-language state of the indicators on the newest candle."""
    notes = []
    rsi = latest.get("rsi_14")
    if pd.notna(rsi):
        state = "overbought (> 70)" if rsi > 70 else "oversold (< 30)" if rsi < 30 else "neutral"
        notes.append(f"RSI 14 **{rsi:.1f}**: {state}")
    line, signal = latest.get("macd_line"), latest.get("macd_signal")
    if pd.notna(line) and pd.notna(signal):
        notes.append(
            f"MACD {'above' if line > signal else 'below'} its signal line ({line - signal:+.4g})"
        )
    percent_b = latest.get("bb_percent_b")
    if pd.notna(percent_b):
        notes.append(f"Bollinger %B **{percent_b:.2f}** (0 = lower band, 1 = upper band)")
    for column, label in (("sma_50", "SMA 50"), ("sma_200", "SMA 200")):
        if pd.notna(latest.get(column)):
            notes.append(
                f"close {'above' if latest['close'] > latest[column] else 'below'} its {label}"
            )
    return notes


with notices.section():
    universe = queries.require_rows(
        queries.token_intervals(), "tokens in gold", queries.INGEST_HINT
    )
    universe = universe[universe["intervals"] != ""]
    queries.require_rows(universe, "candles in silver", queries.INGEST_HINT)
    symbols = universe["symbol"].tolist()
    left, middle, right = st.columns(3)
    symbol = left.selectbox("Token", symbols, index=symbols.index("BTC") if "BTC" in symbols else 0)
    has = str(universe.set_index("symbol").at[symbol, "intervals"]).split(",")
    available = [i for i in TA_INTERVALS if i in has]
    if not available:
        raise queries.NoData(f"no {', '.join(TA_INTERVALS)} candles for {symbol}")
    interval = (
        middle.segmented_control("Interval", available, default=available[-1], key="ta_interval")
        or available[-1]
    )
    shown = right.select_slider(
        "Candles",
        RANGES[interval],
        value=RANGES[interval][1 if len(RANGES[interval]) > 1 else 0],
        key=f"ta_range_{interval}",
    )

    candles = queries.require_rows(
        queries.technical_candles(symbol, interval, shown),
        f"{interval} candles for {symbol}",
        queries.INGEST_HINT,
    )
    levels = queries.support_resistance(symbol, interval)
    st.plotly_chart(
        charts.technical_chart(candles, levels, symbol), width="stretch", key="main_chart"
    )

    notes, table = st.columns([1, 2])
    with notes:
        st.subheader("Indicators now")
        latest = candles.iloc[-1]
        st.caption(
            f"Candle of {latest['timestamp']:%Y-%m-%d %H:%M} UTC, close {notices.price(latest['close'])}"
        )
        for note in reading(latest):
            st.markdown(f"- {note}")
    with table:
        st.subheader("Support and resistance")
        if levels.empty:
            st.caption("No level has at least two swing points in the window yet.")
        else:
            st.dataframe(
                levels.assign(distance_pct=levels["distance"] * 100)[["kind", "rank_from_price", "level_price", "distance_pct", "touches", "level_low", "level_high", "last_touch_at"]],
                hide_index=True,
                width="stretch",
                column_config={
                    "rank_from_price": st.column_config.NumberColumn("rank", help="1 = nearest the price on its side"),
                    "level_price": st.column_config.NumberColumn("level", format="%.6g"),
                    "distance_pct": st.column_config.NumberColumn("distance %", format="%+.2f"),
                    "level_low": st.column_config.NumberColumn("from", format="%.6g"),
                    "level_high": st.column_config.NumberColumn("to", format="%.6g"),
                    "last_touch_at": st.column_config.DatetimeColumn("last touch", format="YYYY-MM-DD HH:mm"),
                },
            )  # fmt: skip
            st.caption(
                "Levels group swing highs/lows (5 candles each side) within 0.5 × ATR(14); computed by dbt in gold.support_resistance_levels."
            )
