"""The dashboard's entry point: `streamlit run streamlit/app.py` (`make dashboard`, :8501).

Why `st.navigation` with one file per page: each page is a plain script Streamlit runs on its
own (and AppTest can switch to), the menu and URLs (/live, /technical, ...) are declared here
once, and what every page shares (page config, the sidebar's data age and cache controls) is
written once. The pages live in `app_pages/`, not `pages/`: Streamlit reads a
`pages/` folder as an old-style multipage app and shows its file names in the menu. The page list
itself is crypto_analytics.contract.DASHBOARD_PAGES, which the browser
checks and the benchmark visit too. Pages read gold through `queries` only and draw with
`charts` only.
"""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from crypto_analytics.contract import DASHBOARD_PAGES
from crypto_analytics.errors import CryptoAnalyticsError
from crypto_analytics.serving_cache import refresh

import queries

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(
    page_title="Crypto analytics",
    page_icon=":material/monitoring:",
    layout="wide",
    initial_sidebar_state="expanded",
)

ICONS = {
    "app_pages/live_prices.py": ":material/candlestick_chart:",
    "app_pages/technical_analysis.py": ":material/query_stats:",
    "app_pages/correlation.py": ":material/hub:",
    "app_pages/categories.py": ":material/category:",
    "app_pages/portfolio.py": ":material/pie_chart:",
    "app_pages/predictions.py": ":material/online_prediction:",
    "app_pages/alerts.py": ":material/notifications:",
    "app_pages/data_health.py": ":material/health_and_safety:",
}

PAGES: dict[str, list[StreamlitPage]] = {}
for position, (section, url_path, title, script) in enumerate(DASHBOARD_PAGES):
    PAGES.setdefault(section, []).append(
        st.Page(
            script,
            title=title,
            icon=ICONS[script],
            url_path=url_path or None,
            default=position == 0,
        )
    )

navigation = st.navigation(PAGES)

with st.sidebar:
    # Only a summary here: when gold cannot be read, the page itself says why and what to run.
    try:
        current = queries.reader()
        tickers = queries.market_tickers()
        if tickers["price_at"].notna().any():
            st.caption(f"Prices as of {tickers['price_at'].max():%Y-%m-%d %H:%M} UTC")
        st.caption(
            f"Reading gold as `{current.described}` · cache: {current.cache.backend.describe()}"
        )
    except CryptoAnalyticsError:
        st.caption("Gold is not readable yet: the page says why.")
    if st.button(
        "Reload from gold", icon=":material/refresh:", help="Forget every cached query result"
    ):
        try:
            refresh()
        except CryptoAnalyticsError as exc:
            st.error(str(exc))
        else:
            st.rerun()

navigation.run()
