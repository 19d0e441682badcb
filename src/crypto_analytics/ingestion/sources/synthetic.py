"""An offline source that invents plausible, deterministic market data for every token.

Why it exists: the whole pipeline (bronze → silver → gold, dashboards, models) must run and be
tested with no network, and a real source never serves all 38 tokens (delisted, merged and
quote-currency tokens are missing somewhere). This source serves every token of the universe
and is labelled `synthetic` in bronze so its rows can never be mistaken for market data.

Why one price path for every interval: gold rebuilds a day from the finest complete interval
silver has, and returns, correlations and alerts compare days built from different intervals.
So the market is generated top-down. Daily candles come from a factor model: log return =
vol × regime × (a·market + b·category + c·own shock), each shock a standardised Student-t with
4 degrees of freedom (fat tails), a²+b²+c² = 1, so tokens of one category correlate more
(a²+b²) than tokens of different categories (a²); highs and lows are draws of the extremes of a
random walk between open and close. Stablecoins are a bounded moving average around 1 (mean
reverting, always within ±1 %). Every finer interval is a refinement of the next coarser one it
divides (1d → 4h → 1h → 30m → 15m → 5m → 1m): a Brownian bridge in log price from the parent's
open to its close (correlated, fat-tailed steps, volatility from the parent's range) kept
inside the parent's range, with one child reaching the parent's high and one its low, and the
parent's volume shared out. Aggregating any finer candles gives the coarser candle exactly
(open, high, low, close, volume); quote volume is volume × typical price at every interval, so
it adds up only to within a few percent (an exact VWAP would need every trade). Market-data
snapshots are daily closes, so they agree with the close of every interval at their instant.

Why it is deterministic by construction: every random number is a pure function of
(seed, interval, stream name, candle number since `sources.synthetic.start`), computed by a
counter-based hash (SplitMix64) instead of a stateful generator. A daily window computes its
own candles plus a prefix cumulative sum; a finer window refines only the parents it needs (in
aligned blocks), so a year of minutes is never generated to serve an hour, and the candle at a
given open time is identical whatever window asked for it: reruns and overlapping incremental
windows are idempotent. (Bit-identical on one machine; numpy's vectorised exp/log may differ in
the last ulp between CPU instruction sets.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pandas as pd

from crypto_analytics.config import Settings, Token
from crypto_analytics.errors import ConfigError
from crypto_analytics.ingestion.frames import Dataset, conform, empty_frame
from crypto_analytics.ingestion.sources.base import Capabilities, FetchResult, RawPayload, Source
from crypto_analytics.intervals import INTERVALS, interval_length

log = logging.getLogger(__name__)

QUOTE_CURRENCY = "USD"
_DAY = timedelta(days=1)
_MINUTE = timedelta(minutes=1)

# --- counter-based random numbers -------------------------------------------------------------

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Arrays are computed in whole blocks so an element is always produced by the same code path
#: (vector body, never a loop tail) whatever the window length.
_BLOCK = 1024
#: Shocks beyond ±10 standard deviations are clipped: t(4) has no finite kurtosis, and one
#: 200-sigma draw in a million would turn a test series into nonsense.
_MAX_SHOCK = 10.0
_T4_STD = math.sqrt(2.0)  # standard deviation of Student-t with 4 degrees of freedom


def _stream_key(seed: int, interval: str, stream: str) -> np.uint64:
    """A 64-bit key per named stream; hashlib, because Python's hash() is salted per process."""
    digest = hashlib.blake2b(f"{seed}|{interval}|{stream}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _uniforms(key: np.uint64, first: int, count: int) -> np.ndarray:
    """Uniforms in (0, 1) for counters first..first+count-1 of a stream (SplitMix64 output)."""
    counters = np.arange(first, first + count, dtype=np.uint64)
    z = key + (counters + np.uint64(1)) * _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _student_t4(u: np.ndarray) -> np.ndarray:
    """Standardised (unit variance) Student-t(4) from uniforms, by its closed-form quantile."""
    alpha = 4.0 * u * (1.0 - u)
    root = np.sqrt(alpha)
    q = np.cos(np.arccos(root) / 3.0) / root
    t = np.sign(u - 0.5) * 2.0 * np.sqrt(np.maximum(q - 1.0, 0.0))
    return np.clip(t / _T4_STD, -_MAX_SHOCK, _MAX_SHOCK)


def _normal(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normals from two uniform arrays (Box-Muller)."""
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


# --- per-token profiles ----------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Plausible scale of one token around 2020: price, daily volatility, supply, USD volume."""

    price: float
    daily_vol: float
    supply: float
    daily_usd_volume: float
    supply_growth: float = 0.03  # per year
    spread_bps: float = 2.0


#: Known tokens. Anything else in the universe falls back to its category's defaults below.
PROFILES: dict[str, Profile] = {
    "USDT": Profile(1.0, 0.0, 4.1e9, 2.0e10, 0.45, 1.0),
    "USDC": Profile(1.0, 0.0, 4.5e8, 2.0e8, 0.60, 1.0),
    "DAI": Profile(1.0, 0.0, 1.0e8, 2.0e7, 0.60, 1.5),
    "BUSD": Profile(1.0, 0.0, 2.0e8, 1.5e8, 0.50, 1.0),
    "TUSD": Profile(1.0, 0.0, 1.4e8, 3.0e7, 0.30, 1.5),
    "XRP": Profile(0.19, 0.045, 4.3e10, 1.2e9, 0.05, 2.0),
    "UNI": Profile(3.0, 0.060, 1.5e8, 1.5e8, 0.20, 4.0),
    "AAVE": Profile(50.0, 0.060, 1.1e7, 1.0e8, 0.05, 5.0),
    "COMP": Profile(50.0, 0.060, 2.6e6, 6.0e7, 0.10, 6.0),
    "SUSHI": Profile(1.5, 0.070, 1.3e8, 8.0e7, 0.15, 6.0),
    "MKR": Profile(450.0, 0.050, 1.0e6, 3.0e7, 0.00, 6.0),
    "CAKE": Profile(1.0, 0.065, 1.0e8, 5.0e7, 0.20, 6.0),
    "CRV": Profile(1.0, 0.070, 1.0e8, 6.0e7, 0.25, 6.0),
    "BTC": Profile(7200.0, 0.030, 1.81e7, 2.0e10, 0.017, 1.0),
    "ETH": Profile(130.0, 0.040, 1.09e8, 8.0e9, 0.005, 1.0),
    "SOL": Profile(1.0, 0.060, 2.6e8, 3.0e8, 0.10, 3.0),
    "AVAX": Profile(5.0, 0.060, 1.3e8, 1.5e8, 0.10, 4.0),
    "ADA": Profile(0.033, 0.050, 2.6e10, 4.0e8, 0.05, 3.0),
    "DOT": Profile(3.0, 0.055, 8.5e8, 2.0e8, 0.08, 3.0),
    "DOGE": Profile(0.002, 0.070, 1.22e11, 3.0e8, 0.04, 3.0),
    "SHIB": Profile(1.0e-8, 0.085, 5.5e14, 2.0e8, 0.00, 5.0),
    "FLOKI": Profile(1.0e-5, 0.090, 9.0e12, 5.0e7, 0.02, 8.0),
    "PEPE": Profile(1.0e-6, 0.090, 4.2e14, 1.0e8, 0.00, 6.0),
    "CKB": Profile(0.003, 0.075, 2.8e10, 2.0e7, 0.08, 8.0),
    "SAND": Profile(0.03, 0.070, 7.0e8, 6.0e7, 0.20, 5.0),
    "MANA": Profile(0.03, 0.065, 1.5e9, 6.0e7, 0.02, 5.0),
    "AXS": Profile(0.5, 0.070, 6.0e7, 5.0e7, 0.25, 6.0),
    "ENJ": Profile(0.05, 0.065, 8.0e8, 3.0e7, 0.05, 6.0),
    "THETA": Profile(0.09, 0.060, 8.7e8, 3.0e7, 0.02, 5.0),
    "LINK": Profile(1.8, 0.055, 3.5e8, 2.5e8, 0.10, 3.0),
    "GRT": Profile(0.1, 0.065, 1.2e9, 5.0e7, 0.20, 5.0),
    "RUNE": Profile(0.5, 0.075, 1.5e8, 4.0e7, 0.15, 6.0),
    "AGIX": Profile(0.02, 0.075, 6.0e8, 2.0e7, 0.10, 8.0),
    "OCEAN": Profile(0.02, 0.070, 3.5e8, 2.0e7, 0.10, 8.0),
    "NEAR": Profile(1.0, 0.065, 2.0e8, 8.0e7, 0.20, 4.0),
    "TAO": Profile(50.0, 0.075, 3.0e6, 3.0e7, 0.30, 8.0),
    "BNB": Profile(14.0, 0.040, 1.56e8, 5.0e8, -0.02, 1.5),
    "DASH": Profile(42.0, 0.050, 9.4e6, 3.0e8, 0.04, 4.0),
}

#: (market loading, category loading); the rest of the variance is the token's own shock.
LOADINGS: dict[str, tuple[float, float]] = {
    "Layer 1": (0.65, 0.50),
    "DeFi": (0.60, 0.55),
    "Meme": (0.55, 0.55),
    "NFT": (0.55, 0.55),
    "Infrastructure": (0.60, 0.50),
    "Payment": (0.60, 0.30),
    "Other": (0.65, 0.20),
}
_DEFAULT_LOADINGS = (0.60, 0.40)
_CATEGORY_VOL = {"Meme": 0.085, "NFT": 0.07, "DeFi": 0.065}
_DEFAULT_VOL = 0.06

#: Volatility regime: a window of recent squared market shocks scales every token's returns,
#: so calm and turbulent periods cluster as they do in real markets.
_REGIME_WINDOW = 20
_REGIME_CAP = 3.0
#: Stablecoins: deviation = band × tanh(moving average of shocks / band), strictly inside ±1 %.
_STABLE_BAND = 0.009
_STABLE_SCALE = 0.0012
_STABLE_WEIGHTS = (1.0, 0.7, 0.5, 0.3, 0.15)


def profile_for(token: Token) -> Profile:
    """The token's profile, or one derived from its category for tokens added to the universe
    later (price spread over 1e-3..1e2 by a hash of the symbol, so it is stable)."""
    known = PROFILES.get(token.symbol)
    if known is not None:
        return known
    if token.stablecoin:
        return Profile(1.0, 0.0, 1.0e8, 2.0e7, 0.3, 1.5)
    digest = hashlib.blake2b(token.symbol.encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "little") / 2.0**64
    return Profile(
        price=10.0 ** (-3.0 + 5.0 * fraction),
        daily_vol=_CATEGORY_VOL.get(token.category, _DEFAULT_VOL),
        supply=1.0e9,
        daily_usd_volume=3.0e7,
        spread_bps=6.0,
    )


# --- candle generation -----------------------------------------------------------------------

#: The coarsest interval: its candles come from the factor model; every other interval's
#: candles are refinements of the next coarser interval it divides (see `_parent_interval`).
_ROOT = "1d"
#: Brownian motion of variance s² over an interval has an expected high-low range of
#: sqrt(8/π)·s, so a parent's range gives its children's volatility: the daily regime, a
#: stablecoin's calm and a spike all carry down without a model per interval.
_RANGE_PER_SIGMA = math.sqrt(8.0 / math.pi)
#: A child path keeps to this share of the room between its straight line and the parent's
#: high (low), so the parent's extremes are reached by the one child chosen to carry them.
_FIT = 0.9
#: Parents are refined in aligned blocks, so a child is always computed at the same array
#: position (the same vector code path) whatever window asked for it.
_REFINE_BLOCK = 64


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _parent_interval(interval: str) -> str:
    """The shortest longer interval that `interval` divides evenly: 1m → 5m → 15m → 30m → 1h
    → 4h → 1d. A day's candles therefore nest exactly, down to the minute."""
    step = interval_length(interval)
    parents = [
        name
        for name, length in INTERVALS.items()
        if step < length <= _DAY and length % step == timedelta(0)
    ]
    if not parents:
        raise ConfigError(f"the synthetic source cannot refine {interval!r} from a daily candle")
    return min(parents, key=interval_length)


#: Intervals the synthetic market serves: those that divide a day (so they nest in it).
SERVED_INTERVALS = frozenset(
    name for name, length in INTERVALS.items() if _DAY % length == timedelta(0)
)


@dataclass(frozen=True)
class _Candles:
    """Candles n_first..n_end-1 of one token at one interval, as arrays."""

    open_time: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray


@dataclass(frozen=True)
class _ChildDraws:
    """The random inputs of a refinement, one row per parent candle, one column per child."""

    shocks: np.ndarray  # standardised fat-tailed steps of the child path
    high: np.ndarray  # uniforms: how far each child's high reaches beyond its body
    low: np.ndarray  # uniforms: the same for its low
    volume: np.ndarray  # normals: each child's share of the parent's volume


def _bridge_extreme(
    a: np.ndarray, b: np.ndarray, s: np.ndarray, u: np.ndarray, *, up: bool
) -> np.ndarray:
    """A draw of the maximum (up) or minimum of a Brownian bridge from a to b with variance s²
    over the candle, by inverting P(max ≥ m) = exp(-2 (m - a)(m - b) / s²): candles get the
    ranges a random walk between their open and close would have."""
    reach = np.sqrt(((b - a) / 2.0) ** 2 - 0.5 * s**2 * np.log(u))
    middle = (a + b) / 2.0
    return middle + reach if up else middle - reach


def _shrink(deviation: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Per row, the factor (≤ 1) that keeps every positive deviation within _FIT of its room."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(deviation > 0.0, _FIT * room / deviation, 1.0)
    return np.minimum(1.0, ratio.min(axis=1, keepdims=True))


def _saturate(reach: np.ndarray, room: np.ndarray) -> np.ndarray:
    """A wick of `reach`, smoothly bent to stay below `room` (≈ reach when the room is ample)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        bent = -room * np.expm1(-reach / room)
    return np.where(room > 0.0, bent, 0.0)


def _refine(parent: _Candles, draws: _ChildDraws) -> tuple[np.ndarray, ...]:
    """Split each parent candle into k consecutive children that aggregate back to it exactly:
    the first opens at its open, the last closes at its close, one child reaches its high and
    one its low (no child beyond them), and their volumes sum to its volume.

    The path through the children is a Brownian bridge in log price from open to close (fat
    tailed steps, volatility from the parent's range), pulled towards the straight line just
    enough to stay inside the parent's range; each child's wicks are Brownian-bridge extremes
    bent to stay inside it too, and the child reaching furthest carries the parent's extreme.
    """
    n, k = draws.shocks.shape
    o, h, lo, c = (x[:, None] for x in (parent.open, parent.high, parent.low, parent.close))
    log_o, log_h, log_l, log_c = np.log(o), np.log(h), np.log(lo), np.log(c)
    sigma = (log_h - log_l) / (_RANGE_PER_SIGMA * math.sqrt(k))
    walk = np.zeros((n, k + 1))
    walk[:, 1:] = np.cumsum(sigma * draws.shocks, axis=1)
    fraction = np.arange(k + 1) / k
    deviation = walk - fraction * walk[:, -1:]
    line = log_o + fraction * (log_c - log_o)
    up = _shrink(deviation, np.maximum(log_h - line, 0.0))
    down = _shrink(-deviation, np.maximum(line - log_l, 0.0))
    x = line + up * np.maximum(deviation, 0.0) + down * np.minimum(deviation, 0.0)

    a, b = x[:, :-1], x[:, 1:]
    top, bottom = np.maximum(a, b), np.minimum(a, b)
    reach_up = np.maximum(_bridge_extreme(a, b, sigma, draws.high, up=True) - top, 0.0)
    reach_down = np.maximum(bottom - _bridge_extreme(a, b, sigma, draws.low, up=False), 0.0)
    log_high = top + _saturate(reach_up, np.maximum(log_h - top, 0.0))
    log_low = bottom - _saturate(reach_down, np.maximum(bottom - log_l, 0.0))

    path = np.clip(np.exp(x), lo, h)
    path[:, 0], path[:, -1] = parent.open, parent.close
    opens, closes = path[:, :-1], path[:, 1:]
    highs = np.clip(np.exp(log_high), np.maximum(opens, closes), h)
    lows = np.clip(np.exp(log_low), lo, np.minimum(opens, closes))
    rows = np.arange(n)
    highs[rows, np.argmax(top + reach_up, axis=1)] = parent.high
    lows[rows, np.argmin(bottom - reach_down, axis=1)] = parent.low

    safe_sigma = np.where(sigma > 0.0, sigma, 1.0)
    activity = np.exp(0.45 * draws.volume) * (
        0.5 + 0.6 * np.minimum(np.abs(b - a) / safe_sigma, 6.0)
    )
    shares = activity / activity.sum(axis=1, keepdims=True)
    volumes = parent.volume[:, None] * shares
    # like the daily candle's: volume at the typical price (see the module docstring)
    quotes = volumes * (highs + lows + closes) / 3.0
    return tuple(
        np.ascontiguousarray(v).ravel() for v in (opens, highs, lows, closes, volumes, quotes)
    )


class _Generator:
    """Pure functions of (seed, token, interval, candle number); no state between calls."""

    def __init__(self, seed: int, origin: datetime) -> None:
        self.seed = seed
        self.origin = origin

    def _uniforms(self, interval: str, stream: str, first: int, count: int) -> np.ndarray:
        return _uniforms(_stream_key(self.seed, interval, stream), first, count)

    def _shocks(self, interval: str, stream: str, first: int, count: int) -> np.ndarray:
        return _student_t4(self._uniforms(interval, stream, first, count))

    def _normals(self, interval: str, stream: str, first: int, count: int) -> np.ndarray:
        u1 = self._uniforms(interval, stream + "/u1", first, count)
        u2 = self._uniforms(interval, stream + "/u2", first, count)
        return _normal(u1, u2)

    def _factor_shocks(self, token: Token, interval: str, first: int, count: int) -> np.ndarray:
        """a·market + b·category + c·own, standardised: tokens move together at every interval."""
        market_w, category_w = LOADINGS.get(token.category, _DEFAULT_LOADINGS)
        if token.stablecoin:
            market_w = category_w = 0.0
        own_w = math.sqrt(max(0.0, 1.0 - market_w**2 - category_w**2))
        return (
            market_w * self._shocks(interval, "market", first, count)
            + category_w * self._shocks(interval, f"category/{token.category}", first, count)
            + own_w * self._shocks(interval, f"token/{token.symbol}", first, count)
        )

    def log_returns(self, token: Token, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Daily log returns of candles 0..count-1 (count a whole number of blocks) and the
        volatility each was drawn with."""
        profile = profile_for(token)
        market_w, category_w = LOADINGS.get(token.category, _DEFAULT_LOADINGS)
        own_w = math.sqrt(max(0.0, 1.0 - market_w**2 - category_w**2))
        k = _REGIME_WINDOW
        # market shock of candle n is counter n+k; counters n..n+k-1 set its volatility regime
        market_all = self._shocks(_ROOT, "market", 0, count + k)
        cumulative = np.concatenate(([0.0], np.cumsum(market_all**2)))
        recent = (cumulative[k : k + count] - cumulative[0:count]) / k
        regime = np.sqrt(np.minimum(0.5 + 0.5 * recent, _REGIME_CAP**2))
        category = self._shocks(_ROOT, f"category/{token.category}", 0, count)
        own = self._shocks(_ROOT, f"token/{token.symbol}", 0, count)
        shocks = market_w * market_all[k:] + category_w * category + own_w * own
        sigma = profile.daily_vol * regime
        # no drift: the median price stays flat, so high-volatility tokens do not decay to dust
        return sigma * shocks, sigma

    def _stable_deviation(self, token: Token, count: int) -> np.ndarray:
        """Pre-tanh deviation from 1 of daily closes 0..count-1: a moving average of shocks."""
        lags = len(_STABLE_WEIGHTS) - 1
        shocks = self._shocks(_ROOT, f"token/{token.symbol}", 0, count + lags)
        smoothed = np.zeros(count)
        for lag, weight in enumerate(_STABLE_WEIGHTS):
            smoothed += weight * shocks[lags - lag : lags - lag + count]
        return _STABLE_SCALE * smoothed

    def _open_times(self, interval: str, n_first: int, n_end: int) -> pd.DatetimeIndex:
        step = interval_length(interval)
        return pd.date_range(
            self.origin + n_first * step, periods=n_end - n_first, freq=step, tz=UTC
        )

    def _daily(self, token: Token, n_first: int, n_end: int) -> _Candles:
        """Daily candles n_first..n_end-1 from the factor model; computes 0..n_end (rounded up
        to a block) for the prefix sum."""
        count = -(-n_end // _BLOCK) * _BLOCK
        profile = profile_for(token)
        window = slice(n_first, n_end)
        if token.stablecoin:
            high_wick = np.abs(self._normals(_ROOT, f"wick-high/{token.symbol}", 0, count))
            low_wick = np.abs(self._normals(_ROOT, f"wick-low/{token.symbol}", 0, count))
            closes_x = self._stable_deviation(token, count)
            opens_x = np.concatenate(([0.0], closes_x[:-1]))[window]
            closes_x = closes_x[window]
            high_x = np.maximum(opens_x, closes_x) + 0.4 * _STABLE_SCALE * high_wick[window]
            low_x = np.minimum(opens_x, closes_x) - 0.4 * _STABLE_SCALE * low_wick[window]

            def squash(x: np.ndarray) -> np.ndarray:
                return profile.price * (1.0 + _STABLE_BAND * np.tanh(x / _STABLE_BAND))

            open_, close, high, low = (
                squash(opens_x),
                squash(closes_x),
                squash(high_x),
                squash(low_x),
            )
            move = np.abs(closes_x - opens_x) / _STABLE_SCALE
        else:
            returns, sigma = self.log_returns(token, count)
            log_close = math.log(profile.price) + np.cumsum(returns)
            log_open = np.concatenate(([math.log(profile.price)], log_close[:-1]))
            u_high = self._uniforms(_ROOT, f"wick-high/{token.symbol}", 0, count)
            u_low = self._uniforms(_ROOT, f"wick-low/{token.symbol}", 0, count)
            log_high = _bridge_extreme(log_open, log_close, sigma, u_high, up=True)
            log_low = _bridge_extreme(log_open, log_close, sigma, u_low, up=False)
            close = np.exp(log_close[window])
            open_ = np.exp(log_open[window])
            if n_first == 0 and n_end > 0:
                open_[0] = profile.price  # exactly, not exp(log(price))
            high = np.maximum(np.exp(log_high[window]), np.maximum(open_, close))
            low = np.minimum(np.exp(log_low[window]), np.minimum(open_, close))
            move = np.abs(returns[window]) / max(profile.daily_vol, 1e-12)
        noise = self._normals(_ROOT, f"volume/{token.symbol}", 0, count)[window]
        usd_volume = (
            profile.daily_usd_volume
            * np.exp(0.45 * noise - 0.1)
            * (0.5 + 0.6 * np.minimum(move, 6.0))
        )
        typical = (high + low + close) / 3.0
        volume = usd_volume / typical
        open_time = self._open_times(_ROOT, n_first, n_end)
        return _Candles(open_time, open_, high, low, close, volume, volume * typical)

    def _child_draws(
        self, token: Token, interval: str, first: int, shape: tuple[int, int]
    ) -> _ChildDraws:
        count = shape[0] * shape[1]

        def draw(values: np.ndarray) -> np.ndarray:
            return values.reshape(shape)

        return _ChildDraws(
            shocks=draw(self._factor_shocks(token, interval, first, count)),
            high=draw(self._uniforms(interval, f"wick-high/{token.symbol}", first, count)),
            low=draw(self._uniforms(interval, f"wick-low/{token.symbol}", first, count)),
            volume=draw(self._normals(interval, f"volume/{token.symbol}", first, count)),
        )

    def candles(self, token: Token, interval: str, n_first: int, n_end: int) -> _Candles:
        """Candles n_first..n_end-1 of `interval`: daily ones from the model, finer ones by
        refining their parents (in aligned blocks), so every interval is one price path."""
        n_end = max(n_first, n_end)
        if interval == _ROOT:
            return self._daily(token, n_first, n_end)
        parent_interval = _parent_interval(interval)
        k = interval_length(parent_interval) // interval_length(interval)
        block = _REFINE_BLOCK
        p_first = n_first // k // block * block
        p_end = _ceil_div(_ceil_div(n_end, k), block) * block
        parent = self.candles(token, parent_interval, p_first, p_end)
        draws = self._child_draws(token, interval, p_first * k, (p_end - p_first, k))
        columns = _refine(parent, draws)
        window = slice(n_first - p_first * k, n_end - p_first * k)
        open_, high, low, close, volume, quote = (v[window] for v in columns)
        open_time = self._open_times(interval, n_first, n_end)
        return _Candles(open_time, open_, high, low, close, volume, quote)


# --- the source ------------------------------------------------------------------------------


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise ConfigError(f"{what} {value.isoformat()} must be timezone-aware (UTC)")
    return value.astimezone(UTC)


#: Columns that are the same on every row of a payload: sent once, like an API's envelope.
_ENVELOPE: dict[Dataset, tuple[str, ...]] = {
    Dataset.OHLCV: ("symbol", "interval", "quote_currency", "source_api"),
    Dataset.MARKET: ("quote_currency", "source_api"),
    Dataset.ORDERBOOK: ("quote_currency", "source_api"),
}


def _payload_body(frame: pd.DataFrame, dataset: Dataset, request: str) -> bytes:
    """The generated rows as a JSON document, shaped like an exchange response: constant fields
    once, then rows with open times in epoch milliseconds and floats at full precision."""
    envelope = {
        column: (str(frame[column].iloc[0]) if len(frame) else None)
        for column in _ENVELOPE[dataset]
    }
    columns = [c for c in frame.columns if c not in _ENVELOPE[dataset]]
    values: list[list[object]] = []
    for column in columns:
        series = frame[column]
        if column == "timestamp":
            naive = series.dt.tz_convert(None).to_numpy(dtype="datetime64[ms]")
            values.append(naive.astype(np.int64).tolist())
        elif pd.api.types.is_float_dtype(series.dtype):
            values.append(series.to_numpy(dtype=np.float64).tolist())
        elif pd.api.types.is_integer_dtype(series.dtype):
            values.append([int(v) for v in series])
        else:
            values.append(series.astype(object).tolist())
    document = {
        "source": "synthetic",
        "dataset": str(dataset),
        "request": request,
        **envelope,
        "columns": columns,
        "data": list(zip(*values, strict=True)),
    }
    return json.dumps(document, allow_nan=False).encode()


def frame_from_payload(body: bytes) -> pd.DataFrame:
    """Rebuild the normalised frame from a synthetic payload (for replaying raw bodies)."""
    document = json.loads(body)
    dataset = Dataset(document["dataset"])
    frame = pd.DataFrame(document["data"], columns=document["columns"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    for column in _ENVELOPE[dataset]:
        frame[column] = document[column]
    return conform(frame, dataset)


class SyntheticSource(Source):
    """Every token, every dataset, no network: see the module docstring for the model."""

    name = "synthetic"
    capabilities = Capabilities(
        datasets=frozenset({Dataset.OHLCV, Dataset.MARKET, Dataset.ORDERBOOK}),
        token_key=None,
        intervals=SERVED_INTERVALS,
    )

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(settings)
        config = settings.sources.synthetic
        self.origin = datetime.combine(config.start, time(0), tzinfo=UTC)
        self._generator = _Generator(config.seed, self.origin)
        self._clock = clock or (lambda: datetime.now(UTC))

    def _candle_range(
        self, interval: str, start: datetime, end: datetime, now: datetime | None
    ) -> tuple[int, int]:
        """Candle numbers whose open time is in [start, end), not before the origin, and (when
        now is given) already closed by now, as a real exchange would serve them."""
        step = interval_length(interval)
        if end < start:
            raise ConfigError(f"window end {end.isoformat()} is before start {start.isoformat()}")
        n_first = max(0, -(-(start - self.origin) // step))
        n_end = max(0, -(-(end - self.origin) // step))
        if now is not None:
            n_end = min(n_end, max(0, (now - self.origin) // step))
        return n_first, max(n_first, n_end)

    def _description(self, kind: str, **params: object) -> str:
        config = self.settings.sources.synthetic
        parts = [f"synthetic {kind}", f"seed={config.seed}", f"origin={self.origin.date()}"]
        parts += [f"{key}={value}" for key, value in params.items()]
        return " ".join(parts)

    def fetch_ohlcv(
        self, token: Token, interval: str, start: datetime, end: datetime
    ) -> FetchResult:
        """Closed candles with open time in [start, end); none before sources.synthetic.start."""
        start, end = _utc(start, "start"), _utc(end, "end")
        n_first, n_end = self._candle_range(interval, start, end, self._clock())
        candles = self._generator.candles(token, interval, n_first, n_end)
        frame = conform(
            pd.DataFrame(
                {
                    "timestamp": candles.open_time,
                    "symbol": token.symbol,
                    "interval": interval,
                    "open": candles.open,
                    "high": candles.high,
                    "low": candles.low,
                    "close": candles.close,
                    "volume": candles.volume,
                    "quote_volume": candles.quote_volume,
                    "quote_currency": QUOTE_CURRENCY,
                    "source_api": self.source_api,
                }
            ),
            Dataset.OHLCV,
        )
        request = self._description(
            "ohlcv",
            symbol=token.symbol,
            interval=interval,
            start=start.isoformat(),
            end=end.isoformat(),
        )
        log.info(
            "synthetic: %d %s candles of %s for %s", len(frame), interval, token.symbol, request
        )
        payload = RawPayload(body=_payload_body(frame, Dataset.OHLCV, request), request=request)
        return FetchResult(self.source_api, Dataset.OHLCV, frame, [payload])

    def fetch_market_data(self, tokens: list[Token], start: datetime, end: datetime) -> FetchResult:
        """Daily 00:00 UTC snapshots in [start, end), up to now: the price at that instant (the
        previous daily close), supply, market cap and the 24 h volume that just ended."""
        start, end = _utc(start, "start"), _utc(end, "end")
        now = self._clock()
        # the snapshot at day D is the close of daily candle D-1, which must be closed by now
        n_first, n_end = self._candle_range("1d", start - _DAY, end - _DAY, now)
        frames = []
        for token in tokens:
            candles = self._generator.candles(token, "1d", n_first, n_end)
            profile = profile_for(token)
            timestamps = candles.open_time + _DAY
            years = np.asarray((timestamps - self.origin) / _DAY, dtype=np.float64) / 365.0
            supply = profile.supply * np.exp(profile.supply_growth * years)
            frames.append(
                pd.DataFrame(
                    {
                        "timestamp": timestamps,
                        "symbol": token.symbol,
                        "price": candles.close,
                        "market_cap": candles.close * supply,
                        "circulating_supply": supply,
                        "total_volume": candles.quote_volume,
                        "quote_currency": QUOTE_CURRENCY,
                        "source_api": self.source_api,
                    }
                )
            )
        frame = (
            conform(pd.concat(frames, ignore_index=True), Dataset.MARKET)
            if frames
            else empty_frame(Dataset.MARKET)
        )
        request = self._description(
            "market",
            symbols=",".join(t.symbol for t in tokens),
            start=start.isoformat(),
            end=end.isoformat(),
        )
        payload = RawPayload(body=_payload_body(frame, Dataset.MARKET, request), request=request)
        return FetchResult(self.source_api, Dataset.MARKET, frame, [payload])

    def fetch_orderbook(
        self, token: Token, depth: int, *, at: datetime | None = None
    ) -> FetchResult:
        """Top `depth` levels a side at `at` (default now) floored to the minute, around the
        market's price at that instant (the open of that minute's candle), with a positive,
        token-typical spread."""
        if depth <= 0:
            raise ConfigError(f"order book depth must be positive, got {depth}")
        when = _utc(at, "at") if at is not None else self._clock()
        ts = when.replace(second=0, microsecond=0)
        if ts < self.origin:
            raise ConfigError(
                f"order book at {ts.isoformat()} is before sources.synthetic.start "
                f"{self.origin.date()}"
            )
        minute = (ts - self.origin) // _MINUTE
        candle = self._generator.candles(token, "1m", minute, minute + 1)
        seed = self.settings.sources.synthetic.seed
        # one stream per minute: level i of a snapshot never reuses another minute's draws
        stream = f"book/{token.symbol}/{minute}"
        noise = _normal(
            _uniforms(_stream_key(seed, "1m", stream + "/u1"), 0, 2 * depth + 1),
            _uniforms(_stream_key(seed, "1m", stream + "/u2"), 0, 2 * depth + 1),
        )
        profile = profile_for(token)
        target_mid = float(candle.open[0])
        relative_spread = profile.spread_bps * 1e-4 * (1.0 + 0.5 * abs(noise[0]))
        best_bid = target_mid * (1.0 - relative_spread / 2.0)
        best_ask = target_mid * (1.0 + relative_spread / 2.0)
        tick = max(relative_spread, 1e-4)
        level_usd = profile.daily_usd_volume / 2.0e4
        levels = np.arange(depth)
        # geometric steps: prices stay positive however deep the book is asked for
        bid_prices = best_bid * (1.0 - tick) ** levels
        ask_prices = best_ask * (1.0 + tick) ** levels
        size_scale = level_usd * (1.0 + 0.15 * levels)
        bid_sizes = size_scale * np.exp(0.5 * noise[1 : 1 + depth]) / bid_prices
        ask_sizes = size_scale * np.exp(0.5 * noise[1 + depth :]) / ask_prices
        bids = [[float(p), float(q)] for p, q in zip(bid_prices, bid_sizes, strict=True)]
        asks = [[float(p), float(q)] for p, q in zip(ask_prices, ask_sizes, strict=True)]
        frame = conform(
            pd.DataFrame(
                {
                    "timestamp": [ts],
                    "symbol": [token.symbol],
                    "bids": [bids],
                    "asks": [asks],
                    "depth": [depth],
                    "best_bid": [best_bid],
                    "best_ask": [best_ask],
                    "spread": [best_ask - best_bid],
                    "mid": [(best_bid + best_ask) / 2.0],
                    "quote_currency": [QUOTE_CURRENCY],
                    "source_api": [self.source_api],
                }
            ),
            Dataset.ORDERBOOK,
        )
        request = self._description(
            "orderbook", symbol=token.symbol, depth=depth, at=ts.isoformat()
        )
        payload = RawPayload(body=_payload_body(frame, Dataset.ORDERBOOK, request), request=request)
        return FetchResult(self.source_api, Dataset.ORDERBOOK, frame, [payload])
