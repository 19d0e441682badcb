"""Every chart of the dashboard, as functions from query frames to Plotly figures.

Why one module: pages stay about what to show, charts look alike everywhere (one palette per
meaning, one layout), and each builder can be tested without Streamlit. Builders never query:
they take the frames `queries` returns. SVG traces only (no WebGL), so charts draw the same in a
headless browser without a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

UP = "#26a69a"
DOWN = "#ef5350"
VWAP = "#ff9800"
NEUTRAL = "#78909c"
BAND = "rgba(66, 165, 245, 0.15)"
BAND_LINE = "rgba(66, 165, 245, 0.6)"
SUPPORT = "#2e7d32"
RESISTANCE = "#c62828"
#: Support and resistance levels drawn per side (the nearest to the price); the table lists all.
LEVELS_PER_SIDE = 3
#: One colour per token category, the same on every page.
CATEGORY_COLOURS = {
    "Layer 1": "#5c6bc0",
    "DeFi": "#26a69a",
    "Payment": "#8d6e63",
    "Meme": "#ffa726",
    "NFT": "#ab47bc",
    "Infrastructure": "#42a5f5",
    "Other": "#78909c",
}
SEVERITY_COLOURS = {"info": "#42a5f5", "warning": "#ffa726", "critical": "#ef5350"}
STATUS_COLOURS = {
    "fresh": "#26a69a",
    "late": "#ffa726",
    "stale": "#ef5350",
    "failing": "#b71c1c",
    "no_data": "#9e9e9e",
}


def _layout(figure: go.Figure, height: int, title: str | None = None) -> go.Figure:
    figure.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        title=title,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        hovermode="x unified",
    )
    return figure


def _volume_colours(candles: pd.DataFrame) -> list[str]:
    return [UP if c >= o else DOWN for o, c in zip(candles["open"], candles["close"], strict=True)]


def _gap_markers(figure: go.Figure, candles: pd.DataFrame, row: int = 1) -> None:
    """Dotted lines where candles are missing: gaps are shown, never bridged silently."""
    if "has_gap" not in candles:
        return
    for when in candles.loc[candles["has_gap"].fillna(False).astype(bool), "timestamp"]:
        figure.add_vline(x=when, line={"dash": "dot", "color": NEUTRAL, "width": 1}, row=row, col=1)


def candlestick_chart(candles: pd.DataFrame, symbol: str, interval: str) -> go.Figure:
    """Candles with the session VWAP over them and volume below (live-prices page)."""
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03
    )
    figure.add_trace(
        go.Candlestick(
            x=candles["timestamp"],
            open=candles["open"],
            high=candles["high"],
            low=candles["low"],
            close=candles["close"],
            name=f"{symbol} {interval}",
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=candles["timestamp"],
            y=candles["vwap"],
            name="VWAP (UTC session)" if interval != "1d" else "VWAP (day)",
            line={"color": VWAP, "width": 1.5},
            connectgaps=False,
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Bar(
            x=candles["timestamp"],
            y=candles["volume"],
            name="volume",
            marker_color=_volume_colours(candles),
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    _gap_markers(figure, candles)
    figure.update_layout(xaxis_rangeslider_visible=False)
    figure.update_yaxes(title_text="price", row=1, col=1)
    figure.update_yaxes(title_text="volume", row=2, col=1)
    return _layout(figure, 520)


def technical_chart(candles: pd.DataFrame, levels: pd.DataFrame, symbol: str) -> go.Figure:
    """Candles with Bollinger bands, SMAs and support/resistance; volume, RSI and MACD below."""
    figure = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.52, 0.14, 0.17, 0.17],
        vertical_spacing=0.025,
        subplot_titles=(None, "volume", "RSI 14", "MACD 12/26/9"),
    )
    x = candles["timestamp"]
    figure.add_trace(
        go.Scatter(x=x, y=candles["bb_upper"], name="Bollinger 20/2", line={"color": BAND_LINE, "width": 1}, legendgroup="bb"),
        row=1,
        col=1,
    )  # fmt: skip
    figure.add_trace(
        go.Scatter(
            x=x,
            y=candles["bb_lower"],
            name="Bollinger lower",
            line={"color": BAND_LINE, "width": 1},
            fill="tonexty",
            fillcolor=BAND,
            legendgroup="bb",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Candlestick(
            x=x,
            open=candles["open"],
            high=candles["high"],
            low=candles["low"],
            close=candles["close"],
            name=symbol,
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        ),
        row=1,
        col=1,
    )
    for column, colour in (("sma_20", "#42a5f5"), ("sma_50", "#ab47bc"), ("sma_200", "#8d6e63")):
        figure.add_trace(
            go.Scatter(x=x, y=candles[column], name=column.upper().replace("_", " "), line={"color": colour, "width": 1}),
            row=1,
            col=1,
        )  # fmt: skip
    low, high = float(candles["low"].min()), float(candles["high"].max())
    for level in levels.itertuples():
        if (
            level.rank_from_price > LEVELS_PER_SIDE
            or not low * 0.9 <= level.level_price <= high * 1.1
        ):
            continue  # only the nearest levels, and none far outside the candles shown
        colour = SUPPORT if level.kind == "support" else RESISTANCE
        figure.add_hline(
            y=level.level_price,
            line={"color": colour, "width": 1 + min(int(level.touches), 6) / 2, "dash": "dash"},
            annotation_text=f"{level.kind} {level.level_price:.6g} ({int(level.touches)} touches)",
            annotation_position="top left",
            annotation_font_color=colour,
            row=1,
            col=1,
        )
    figure.add_trace(
        go.Bar(x=x, y=candles["volume"], marker_color=_volume_colours(candles), name="volume", showlegend=False),
        row=2,
        col=1,
    )  # fmt: skip
    figure.add_trace(
        go.Scatter(x=x, y=candles["rsi_14"], name="RSI 14", line={"color": "#7e57c2", "width": 1.2}),
        row=3,
        col=1,
    )  # fmt: skip
    for bound in (30, 70):
        figure.add_hline(y=bound, line={"color": NEUTRAL, "dash": "dot", "width": 1}, row=3, col=1)
    histogram = candles["macd_histogram"]
    figure.add_trace(
        go.Bar(
            x=x,
            y=histogram,
            name="MACD histogram",
            marker_color=[UP if (v or 0) >= 0 else DOWN for v in histogram.fillna(0)],
            showlegend=False,
        ),
        row=4,
        col=1,
    )
    figure.add_trace(
        go.Scatter(x=x, y=candles["macd_line"], name="MACD", line={"color": "#42a5f5", "width": 1.2}),
        row=4,
        col=1,
    )  # fmt: skip
    figure.add_trace(
        go.Scatter(x=x, y=candles["macd_signal"], name="signal", line={"color": VWAP, "width": 1.2}),
        row=4,
        col=1,
    )  # fmt: skip
    _gap_markers(figure, candles)
    figure.update_yaxes(range=[0, 100], row=3, col=1)
    figure.update_layout(xaxis_rangeslider_visible=False)
    return _layout(figure, 820)


def correlation_heatmap(matrix: pd.DataFrame, order: Sequence[str]) -> go.Figure:
    """Square heatmap from the long correlation table, tokens in the given order (by category)."""
    square = matrix.pivot(index="symbol_a", columns="symbol_b", values="correlation")
    present = [s for s in order if s in square.index]
    square = square.reindex(index=present, columns=present)
    figure = go.Figure(
        go.Heatmap(
            z=square.to_numpy(),
            x=present,
            y=present,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            colorbar={"title": "ρ"},
            hovertemplate="%{y} / %{x}: %{z:.2f}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(hovermode="closest")
    return _layout(figure, 720)


def _market_tree(distance: np.ndarray) -> list[tuple[int, int]]:
    """Edges of the minimum spanning tree of a distance matrix (scipy's csgraph)."""
    from scipy.sparse.csgraph import minimum_spanning_tree

    # csgraph reads 0 as "no edge": nudge true zeros (identical series) to a tiny distance
    tree = minimum_spanning_tree(np.where(distance > 0, distance, 1e-12)).tocoo()
    return [(int(a), int(b)) for a, b in zip(tree.row, tree.col, strict=True)]


def _classical_mds(distance: np.ndarray) -> np.ndarray:
    """2-D coordinates whose distances best match `distance` (Torgerson's classical scaling):
    deterministic, and tokens that move together land close together."""
    n = len(distance)
    centring = np.eye(n) - np.ones((n, n)) / n
    gram = -0.5 * centring @ (distance**2) @ centring
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:2]
    return vectors[:, top] * np.sqrt(np.clip(values[top], 0, None))


def _network_layout(
    distance: np.ndarray, edges: set[tuple[int, int]], rho: np.ndarray
) -> np.ndarray:
    """Positions for the drawn graph: networkx's force-directed layout (edges pull by |ρ|),
    started from the classical scaling so it is deterministic and keeps the market's shape."""
    import networkx as nx

    start = _classical_mds(distance)
    graph = nx.Graph()
    graph.add_nodes_from(range(len(distance)))
    graph.add_weighted_edges_from((i, j, abs(float(rho[i, j]))) for i, j in edges)
    positions = nx.spring_layout(
        graph, pos={i: tuple(start[i]) for i in graph.nodes}, weight="weight", seed=7, iterations=80
    )
    return np.array([positions[i] for i in range(len(distance))])


def correlation_network_chart(
    matrix: pd.DataFrame, nodes: pd.DataFrame, threshold: float
) -> go.Figure:
    """Tokens as nodes, an edge where |ρ| >= threshold, plus the minimum spanning tree of the
    correlation distance sqrt(2 (1 - ρ)) so every token stays tied to its nearest neighbours
    (Mantegna's market tree). Positions: a force-directed layout of the drawn edges started from
    the classical multidimensional scaling of that distance.
    A pair without a measured correlation counts as uncorrelated (distance sqrt(2))."""
    square = matrix.pivot(index="symbol_a", columns="symbol_b", values="correlation")
    symbols = sorted(set(square.index) | set(square.columns))
    rho = square.reindex(index=symbols, columns=symbols).to_numpy(dtype=float)
    rho = np.where(np.isnan(rho), 0.0, rho)
    np.fill_diagonal(rho, 1.0)
    distance = np.sqrt(np.clip(2.0 * (1.0 - rho), 0.0, None))
    tree = {tuple(sorted(edge)) for edge in _market_tree(distance)}
    strong = {
        (i, j)
        for i in range(len(symbols))
        for j in range(i + 1, len(symbols))
        if abs(rho[i, j]) >= threshold
    }
    positions = (
        _network_layout(distance, tree | strong, rho)
        if len(symbols) > 2
        else np.zeros((len(symbols), 2))
    )
    figure = go.Figure()
    for edges, colour, width, name in (
        (tree - strong, "rgba(120,144,156,0.6)", 1.0, "market tree"),
        (strong, "rgba(239,83,80,0.55)", 1.2, f"|ρ| ≥ {threshold:g}"),
    ):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for i, j in sorted(edges):
            xs += [float(positions[i, 0]), float(positions[j, 0]), None]
            ys += [float(positions[i, 1]), float(positions[j, 1]), None]
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "width": width}, name=name, hoverinfo="skip"))  # fmt: skip
    categories = dict(zip(nodes["symbol"], nodes["category"].fillna("Other"), strict=True))
    degree = dict(zip(nodes["symbol"], nodes["n_strong_peers"].fillna(0), strict=True))
    index = {symbol: i for i, symbol in enumerate(symbols)}
    for category in sorted({categories.get(s, "Other") for s in symbols}):
        members = [s for s in symbols if categories.get(s, "Other") == category]
        figure.add_trace(
            go.Scatter(
                x=[float(positions[index[s], 0]) for s in members],
                y=[float(positions[index[s], 1]) for s in members],
                mode="markers+text",
                text=members,
                textposition="top center",
                marker={
                    "size": [10 + 1.5 * float(degree.get(s, 0)) for s in members],
                    "color": CATEGORY_COLOURS.get(category, NEUTRAL),
                    "line": {"width": 1, "color": "white"},
                },
                name=category,
                hovertemplate="%{text}<extra>" + category + "</extra>",
            )
        )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    figure.update_layout(hovermode="closest")
    return _layout(figure, 640)


def rolling_correlation_chart(frame: pd.DataFrame) -> go.Figure:
    """30-day rolling correlation against BTC and ETH over time, one line per token and anchor."""
    figure = go.Figure()
    for (anchor, symbol), series in frame.groupby(["anchor", "symbol"], sort=True):
        figure.add_trace(
            go.Scatter(
                x=series["date"],
                y=series["correlation_30d"],
                name=f"{symbol} vs {anchor}",
                mode="lines",
                line={"dash": "solid" if anchor == "BTC" else "dot", "width": 1.4},
            )
        )
    figure.add_hline(y=0, line={"color": NEUTRAL, "width": 1})
    figure.update_yaxes(range=[-1, 1], title_text="ρ (30 days)")
    return _layout(figure, 420)


def category_index_chart(index: pd.DataFrame) -> go.Figure:
    """Category indices (base 100), log scale so equal moves look equal."""
    figure = go.Figure()
    for category, series in index.groupby("category", sort=True):
        figure.add_trace(
            go.Scatter(
                x=series["date"],
                y=series["index_level"],
                name=str(category),
                mode="lines",
                line={"color": CATEGORY_COLOURS.get(str(category), NEUTRAL), "width": 1.6},
            )
        )
    figure.update_yaxes(type="log", title_text="index (base 100, log scale)")
    return _layout(figure, 460)


def category_returns_chart(performance: pd.DataFrame, column: str, label: str) -> go.Figure:
    """Sector performance: one bar per category for one period."""
    data = performance.dropna(subset=[column]).sort_values(column)
    figure = go.Figure(
        go.Bar(
            x=data[column] * 100,
            y=data["category"],
            orientation="h",
            marker_color=[UP if v >= 0 else DOWN for v in data[column]],
            text=[f"{v * 100:+.1f} %" for v in data[column]],
            textposition="auto",
        )
    )
    figure.update_xaxes(title_text=f"{label} return, %")
    figure.update_layout(hovermode="closest")
    return _layout(figure, 320)


def market_cap_treemap(tokens: pd.DataFrame, label: str) -> go.Figure:
    """Market cap by category and token, coloured by the period return."""
    data = tokens.dropna(subset=["market_cap"])
    data = data[data["market_cap"] > 0]
    figure = go.Figure(
        go.Treemap(
            labels=list(data["category"].unique()) + list(data["symbol"]),
            parents=[""] * data["category"].nunique() + list(data["category"]),
            values=[0] * data["category"].nunique() + list(data["market_cap"]),
            customdata=[None] * data["category"].nunique() + list(data["period_return"] * 100),
            marker={
                "colors": [0] * data["category"].nunique() + list(data["period_return"].fillna(0) * 100),
                "colorscale": [[0, DOWN], [0.5, "#eceff1"], [1, UP]],
                "cmid": 0,
                "colorbar": {"title": f"{label} %"},
            },
            hovertemplate="%{label}<br>cap %{value:,.0f}<br>" + label + " %{customdata:+.1f} %<extra></extra>",
        )
    )  # fmt: skip
    return _layout(figure, 460)


def freshness_chart(freshness: pd.DataFrame, late_hours: float, stale_hours: float) -> go.Figure:
    """How overdue each feed is (hours beyond one candle interval; negative while its next
    candle is not due), coloured by status, with the late and stale thresholds."""
    data = freshness.assign(
        feed=freshness["source_api"] + " · " + freshness["dataset"] + " · " + freshness["interval"]
    )
    figure = go.Figure(
        go.Bar(
            x=data["overdue_hours"],
            y=data["feed"],
            orientation="h",
            marker_color=[STATUS_COLOURS.get(s, NEUTRAL) for s in data["freshness_status"]],
            text=data["freshness_status"],
            textposition="auto",
            hovertemplate="%{y}: %{x:.1f} h overdue<extra></extra>",
        )
    )
    for hours, name in ((late_hours, "late"), (stale_hours, "stale")):
        figure.add_vline(
            x=hours, line={"dash": "dash", "color": STATUS_COLOURS[name]}, annotation_text=name
        )
    figure.update_xaxes(
        title_text="hours overdue beyond one candle interval (negative: not due yet)"
    )
    figure.update_layout(hovermode="closest")
    return _layout(figure, 120 + 32 * len(data))


STRATEGY_MARKERS = {
    "max_sharpe": ("star", "#d81b60", "max Sharpe"),
    "min_volatility": ("diamond", "#1e88e5", "min volatility"),
    "hrp": ("triangle-up", "#43a047", "HRP"),
    "equal_weight": ("square", "#6d4c41", "equal weight"),
}


def frontier_chart(
    cloud: pd.DataFrame, frontier: pd.DataFrame, portfolios: pd.DataFrame
) -> go.Figure:
    """Random portfolios coloured by Sharpe, the efficient frontier beside them, and the
    strategies' portfolios marked (`portfolios`: strategy, expected_return, volatility, sharpe).
    Returns and volatilities are annualised fractions, shown in percent."""
    figure = go.Figure()
    if not cloud.empty:
        figure.add_trace(
            go.Scatter(
                x=cloud["volatility"] * 100,
                y=cloud["expected_return"] * 100,
                mode="markers",
                name="random portfolios",
                marker={
                    "size": 4,
                    "color": cloud["sharpe"],
                    "colorscale": "Viridis",
                    "colorbar": {"title": "Sharpe"},
                    "opacity": 0.6,
                },
                hovertemplate="vol %{x:.1f} %, return %{y:.1f} %, Sharpe %{marker.color:.2f}<extra></extra>",
            )
        )
    if not frontier.empty:
        figure.add_trace(
            go.Scatter(
                x=frontier["volatility"] * 100,
                y=frontier["expected_return"] * 100,
                mode="lines",
                name="efficient frontier",
                line={"color": "#212121", "width": 2.5},
            )
        )
    for row in portfolios.itertuples():
        symbol, colour, label = STRATEGY_MARKERS.get(
            str(row.strategy), ("circle", NEUTRAL, str(row.strategy))
        )
        figure.add_trace(
            go.Scatter(
                x=[row.volatility * 100],
                y=[row.expected_return * 100],
                mode="markers",
                name=label,
                marker={"symbol": symbol, "size": 16, "color": colour, "line": {"width": 1, "color": "white"}},
                hovertemplate=f"{label}<br>vol %{{x:.1f}} %, return %{{y:.1f}} %<extra></extra>",
            )
        )  # fmt: skip
    figure.update_xaxes(title_text="volatility, % a year")
    figure.update_yaxes(title_text="expected return, % a year")
    figure.update_layout(hovermode="closest")
    return _layout(figure, 520)


def weights_chart(weights: pd.DataFrame) -> go.Figure:
    """Weights per strategy (long frame: strategy, symbol, weight), one bar group per token."""
    data = weights[weights["weight"] > 1e-6]
    order = data.groupby("symbol")["weight"].max().sort_values(ascending=False).index.tolist()
    figure = go.Figure()
    for strategy, rows in data.groupby("strategy", sort=True):
        _, colour, label = STRATEGY_MARKERS.get(str(strategy), ("circle", NEUTRAL, str(strategy)))
        rows = rows.set_index("symbol").reindex(order)
        figure.add_trace(go.Bar(x=order, y=rows["weight"] * 100, name=label, marker_color=colour))
    figure.update_yaxes(title_text="weight, %")
    figure.update_layout(barmode="group")
    return _layout(figure, 380)


def equity_chart(backtest: pd.DataFrame) -> go.Figure:
    """Walk-forward backtest equity curves (start = 1), one line per strategy."""
    figure = go.Figure()
    for strategy, rows in backtest.groupby("strategy", sort=True):
        _, colour, label = STRATEGY_MARKERS.get(str(strategy), ("circle", None, str(strategy)))
        figure.add_trace(
            go.Scatter(x=rows["date"], y=rows["equity"], name=label, mode="lines", line={"color": colour, "width": 1.6})
        )  # fmt: skip
    figure.update_yaxes(title_text="equity (start = 1)", type="log")
    return _layout(figure, 420)


MODEL_COLOURS = {
    "naive": "#9e9e9e",
    "drift": "#8d6e63",
    "prophet": "#1e88e5",
    "lstm": "#8e24aa",
    "gbm": "#43a047",
    "ensemble": "#e53935",
}


def forecast_chart(
    actuals: pd.DataFrame,
    latest: pd.DataFrame,
    history: pd.DataFrame,
    banded_model: str | None,
    horizon_days: int,
) -> go.Figure:
    """Actual daily closes, then each model's newest forecasts (every horizon, drawn from the
    last close they started from), one model's 80 % and 95 % bands around its path, and the
    model's earlier forecasts at one horizon as markers on the day they forecast (so they can be
    checked against what happened)."""
    figure = go.Figure()
    as_of = latest["as_of_date"].max() if not latest.empty else None
    origin = actuals[actuals["date"] == as_of]
    start = origin.iloc[-1] if not origin.empty else None
    anchor = (
        pd.DataFrame({"target_date": [start["date"]], "point": [start["close"]], "lower_80": [start["close"]], "upper_80": [start["close"]], "lower_95": [start["close"]], "upper_95": [start["close"]]})
        if start is not None
        else pd.DataFrame()
    )  # fmt: skip
    if banded_model is not None:
        band = pd.concat(
            [anchor, latest[latest["model"] == banded_model].sort_values("target_date")]
        )
        colour = MODEL_COLOURS.get(banded_model, "#1e88e5")
        for low, high, opacity, label in (
            ("lower_95", "upper_95", 0.12, "95 %"),
            ("lower_80", "upper_80", 0.22, "80 %"),
        ):
            figure.add_trace(
                go.Scatter(
                    x=band["target_date"],
                    y=band[high],
                    mode="lines",
                    line={"width": 0},
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
            figure.add_trace(
                go.Scatter(
                    x=band["target_date"], y=band[low], mode="lines", line={"width": 0}, fill="tonexty",
                    fillcolor=_with_alpha(colour, opacity), name=f"{banded_model} {label} interval",
                )
            )  # fmt: skip
    figure.add_trace(
        go.Scatter(x=actuals["date"], y=actuals["close"], mode="lines", name="actual close", line={"color": "#212121", "width": 2})
    )  # fmt: skip
    for model, rows in latest.groupby("model", sort=True):
        path = pd.concat([anchor, rows.sort_values("target_date")])
        figure.add_trace(
            go.Scatter(
                x=path["target_date"], y=path["point"], mode="lines+markers", name=f"{model}",
                line={"color": MODEL_COLOURS.get(str(model)), "width": 2 if model == banded_model else 1.2},
            )
        )  # fmt: skip
    for model, rows in history.groupby("model", sort=True):
        figure.add_trace(
            go.Scatter(
                x=rows["target_date"], y=rows["point"], mode="markers", name=f"{model}, earlier {horizon_days} d forecasts",
                marker={"color": MODEL_COLOURS.get(str(model)), "size": 5, "symbol": "circle-open"},
                legendgroup=str(model), visible="legendonly" if model != banded_model else True,
            )
        )  # fmt: skip
    figure.update_yaxes(title_text="close")
    return _layout(figure, 520)


def _with_alpha(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def feature_importance_chart(importance: pd.DataFrame, top: int = 15) -> go.Figure:
    """Permutation importance, largest first, with its spread over the repeats."""
    data = importance.nlargest(top, "importance_mean").iloc[::-1]
    figure = go.Figure(
        go.Bar(
            x=data["importance_mean"],
            y=data["feature"],
            orientation="h",
            error_x={"type": "data", "array": data["importance_std"]},
            marker_color="#43a047",
        )
    )
    figure.update_xaxes(title_text="score drop when shuffled")
    figure.update_layout(hovermode="closest")
    return _layout(figure, 120 + 24 * len(data))


def alert_timeline_chart(alerts: pd.DataFrame, since: pd.Timestamp | None = None) -> go.Figure:
    """Each alert episode as a bar from when it fired to when it resolved (now if still open),
    one row per rule, coloured by severity; the time axis spans `since` to now when given."""
    now = pd.Timestamp.now(tz="UTC")
    figure = go.Figure()
    for severity, rows in alerts.groupby("severity", sort=False):
        # a column with no resolution yet holds only nulls: make both sides times explicitly
        start = pd.to_datetime(rows["fired_at"], utc=True)
        end = pd.to_datetime(rows["resolved_at"], utc=True).fillna(now)
        figure.add_trace(
            go.Bar(
                x=(end - start).dt.total_seconds() * 1000,
                y=rows["rule_id"],
                base=start,
                orientation="h",
                name=str(severity),
                marker_color=SEVERITY_COLOURS.get(str(severity), NEUTRAL),
                customdata=rows[["subject", "message"]].to_numpy(),
                hovertemplate="%{y} · %{customdata[0]}<br>%{customdata[1]}<extra></extra>",
            )
        )
    figure.update_xaxes(type="date", range=[since, now] if since is not None else None)
    figure.update_layout(hovermode="closest", barmode="overlay")
    return _layout(figure, 160 + 28 * alerts["rule_id"].nunique())
