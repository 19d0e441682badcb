"""How a page says that its data is not there: one place, so every page says it the same way.

A page wraps each of its sections in `section()`. A relation not built yet, a table still empty,
or grants missing show a short notice naming what to run, in place of that section only (the
rest of the page still works); an unreachable warehouse stops the page with one error line.
Anything else is a bug and propagates, so tests and the browser see the exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from queries import NoData, NotBuilt, NotReadable, WarehouseUnreachable


@contextmanager
def section() -> Iterator[None]:
    try:
        yield
    except NotBuilt as exc:
        st.info(f"**{exc.relation}** {exc.state}. Run {exc.build}.", icon=":material/build:")
    except NoData as exc:
        st.info(str(exc).capitalize(), icon=":material/hourglass_empty:")
    except NotReadable as exc:
        st.warning(str(exc), icon=":material/lock:")
    except WarehouseUnreachable as exc:
        st.error(str(exc), icon=":material/cloud_off:")
        st.stop()


def percent(value: float | None, digits: int = 2) -> str:
    """+1.23 % style text, or an em dash for a missing value."""
    if value is None or value != value:  # None or NaN
        return "—"
    return f"{value * 100:+.{digits}f} %"


def price(value: float | None) -> str:
    """A price with as many decimals as its size needs (BTC 67,012.35; PEPE 0.000012)."""
    if value is None or value != value:
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.2f}"
    if magnitude >= 1:
        return f"{value:,.4f}"
    return f"{value:.8f}".rstrip("0")


def short_price(value: float | None) -> str:
    """Short enough for a headline tile: 67,012; 194.96; 0.2451; 1.235e-05."""
    if value is None or value != value:
        return "—"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.5g}" if abs(value) >= 1 else f"{value:.4g}"


def money(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:,.2f}"
