"""Live prices: tickers with the 24-hour change, candles with VWAP and volume, the value of the
user's holdings and the latest alerts, re-read every `dashboard.live_refresh_seconds`.

One Plotly chart only (the candles): this page redraws itself every refresh, and Plotly is
what the browser spends its time on; the holdings are a table with each token's share."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from crypto_analytics.config import get_settings
from crypto_analytics.errors import CryptoAnalyticsError

import charts
import notices
import queries

#: Candles shown per interval: about two days of 15m, two weeks of 1h, two months of 4h, a year of 1d.
CANDLES_SHOWN = {"1m": 360, "5m": 288, "15m": 192, "30m": 192, "1h": 336, "4h": 360, "1d": 365}
CHARTED_INTERVALS = ("15m", "1h", "4h", "1d")
HEADLINE = ("BTC", "ETH", "SOL", "BNB", "XRP")

settings = get_settings()
st.title("Live prices")


def ticker_table(tickers: pd.DataFrame) -> None:
    shown = tickers.assign(change_pct=tickers["change_24h"] * 100)
    st.dataframe(
        shown[["symbol", "name", "category", "price", "change_pct", "change_window_hours", "high_24h", "low_24h", "quote_volume_24h", "volume_24h", "market_cap", "price_at"]],
        hide_index=True,
        width="stretch",
        column_config={
            "price": st.column_config.NumberColumn("price", format="%.6g"),
            "change_pct": st.column_config.NumberColumn("24 h %", format="%+.2f %%"),
            "change_window_hours": st.column_config.NumberColumn("over h", help="24 unless a gap leaves no candle exactly 24 h back", format="%.0f"),
            "high_24h": st.column_config.NumberColumn("24 h high", format="%.6g"),
            "low_24h": st.column_config.NumberColumn("24 h low", format="%.6g"),
            "quote_volume_24h": st.column_config.NumberColumn("24 h quote volume", format="compact"),
            "volume_24h": st.column_config.NumberColumn("24 h volume", format="compact"),
            "market_cap": st.column_config.NumberColumn("market cap", format="compact"),
            "price_at": st.column_config.DatetimeColumn("as of (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )  # fmt: skip


def headline(tickers: pd.DataFrame) -> None:
    rows = tickers.set_index("symbol")
    present = [s for s in HEADLINE if s in rows.index and pd.notna(rows.at[s, "price"])]
    for column, symbol in zip(st.columns(len(present) or 1), present, strict=False):
        change = rows.at[symbol, "change_24h"]
        column.metric(
            symbol,
            notices.short_price(rows.at[symbol, "price"]),
            None if pd.isna(change) else notices.percent(change),
            border=True,
        )


def holdings_panel(tickers: pd.DataFrame) -> None:
    from crypto_ml.portfolio.holdings import load_holdings

    path = settings.resolve(settings.portfolio.rebalancing.holdings_file)
    try:
        holdings = load_holdings(path, settings.tokens)
    except CryptoAnalyticsError as exc:
        st.info(f"No holdings to value: {exc}", icon=":material/account_balance_wallet:")
        return
    prices = tickers.set_index("symbol")
    if holdings.quantities is None:
        weights = pd.Series(holdings.weights or {}, dtype=float)
        st.caption(
            f"Holdings are stated as weights in `{path}`; value shown when `portfolio_value` is set."
        )
        if holdings.portfolio_value is None:
            st.dataframe(weights.rename("weight").to_frame(), width="stretch")
            return
        quantities = weights * holdings.portfolio_value / prices["price"].reindex(weights.index)
        cash = holdings.portfolio_value * (1 - float(weights.sum()))
    else:
        quantities = pd.Series(holdings.quantities, dtype=float)
        cash = holdings.cash
    frame = pd.DataFrame({"symbol": quantities.index, "quantity": quantities.to_numpy()})
    frame["price"] = frame["symbol"].map(prices["price"])
    frame["reference_price"] = frame["symbol"].map(prices["reference_price"])
    frame["value"] = frame["quantity"] * frame["price"]
    frame["value_24h_ago"] = frame["quantity"] * frame["reference_price"]
    unpriced = frame.loc[frame["price"].isna(), "symbol"].tolist()
    total = float(frame["value"].sum(skipna=True)) + cash
    before = float(frame["value_24h_ago"].sum(skipna=True)) + cash
    change = (total / before - 1) if before > 0 and frame["reference_price"].notna().all() else None
    left, right = st.columns([1, 2])
    left.metric(
        "Portfolio value",
        notices.money(total),
        None if change is None else notices.percent(change),
        border=True,
    )
    left.caption(
        f"{len(frame)} tokens + {notices.money(cash)} cash, from `{path.name}`; "
        "the change is over each ticker's 24 h."
    )
    if unpriced:
        left.warning(f"No price in gold for {', '.join(unpriced)}: left out of the value.")
    shown = frame.dropna(subset=["value"]).sort_values("value", ascending=False)
    right.dataframe(
        shown.assign(share=shown["value"] / total)[["symbol", "quantity", "price", "value", "share"]],
        hide_index=True,
        width="stretch",
        column_config={
            "quantity": st.column_config.NumberColumn("quantity", format="%.6g"),
            "price": st.column_config.NumberColumn("price", format="%.6g"),
            "value": st.column_config.NumberColumn("value", format="%,.2f"),
            "share": st.column_config.ProgressColumn("share of the value", format="percent", min_value=0, max_value=1),
        },
    )  # fmt: skip


def latest_alerts() -> None:
    alerts = queries.latest_alerts(10)
    if alerts.empty:
        st.caption("No alert has fired.")
        return
    st.dataframe(alerts, hide_index=True, width="stretch")


@st.fragment(run_every=timedelta(seconds=settings.dashboard.live_refresh_seconds))
def live() -> None:
    with notices.section():
        tickers = queries.require_rows(
            queries.market_tickers(), "token universe in gold", queries.INGEST_HINT
        )
        if tickers["price"].isna().all():
            raise queries.NoData(f"no prices yet: {queries.INGEST_HINT}")
        headline(tickers)

        intervals = queries.token_intervals().set_index("symbol")["intervals"]
        priced = tickers.loc[tickers["price"].notna(), "symbol"].tolist()
        chart_left, chart_right = st.columns([3, 1])
        symbol = chart_right.selectbox(
            "Token", priced, index=priced.index("BTC") if "BTC" in priced else 0
        )
        available = [i for i in CHARTED_INTERVALS if i in str(intervals.get(symbol, "")).split(",")]
        if not available:
            raise queries.NoData(f"no {', '.join(CHARTED_INTERVALS)} candles for {symbol}")
        default = "1h" if "1h" in available else available[-1]
        interval = (
            chart_right.segmented_control(
                "Interval", available, default=default, key="live_interval"
            )
            or default
        )
        candles = queries.price_candles(symbol, interval, CANDLES_SHOWN[interval])
        row = tickers.set_index("symbol").loc[symbol]
        chart_right.metric(
            f"{symbol} last",
            notices.price(row["price"]),
            None if pd.isna(row["change_24h"]) else notices.percent(row["change_24h"]),
        )
        chart_right.caption(
            f"24 h range {notices.price(row['low_24h'])} – {notices.price(row['high_24h'])}. Dotted lines mark missing candles; VWAP restarts at 00:00 UTC."
        )
        with chart_left:
            st.plotly_chart(
                charts.candlestick_chart(candles, symbol, interval),
                width="stretch",
                key="main_chart",
            )

        st.subheader("Holdings")
        holdings_panel(tickers)
        st.subheader("Tickers")
        ticker_table(tickers)
    st.subheader("Latest alerts")
    with notices.section():
        latest_alerts()
    st.caption(f"Re-read every {settings.dashboard.live_refresh_seconds} s; query results are cached up to {settings.dashboard.cache_ttl_seconds} s unless the gold DAG refreshes them.")  # fmt: skip


live()
