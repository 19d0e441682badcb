"""The weekly rebalancing report: HTML and Markdown from Jinja2 templates, with the chart.

Why files first: the report is written under `portfolio.rebalancing.reports_dir`
(data/reports/portfolio_<run date>/) before any e-mail is attempted, so a failed send never loses
it. The saved HTML embeds the chart (a data URI) and reads on its own; the e-mail's HTML body shows
the same chart as an inline MIME part (cid), which mail clients display where they block data
URIs, and carries report.html, report.md and frontier.png as attachments.
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from crypto_analytics.config import Settings
from crypto_ml.portfolio.backtest import BacktestMetrics
from crypto_ml.portfolio.inputs import PortfolioInputs
from crypto_ml.portfolio.rebalancing import RebalancePlan
from crypto_ml.portfolio.store import MonteCarloSummary, RunRecord, StrategyResult

CHART_CID = "frontier-chart"
STRATEGY_LABELS = {
    "max_sharpe": "Max Sharpe",
    "min_volatility": "Min volatility",
    "hrp": "Hierarchical risk parity",
    "equal_weight": "Equal weight",
}


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, read back from the run's stored rows."""

    run: RunRecord
    inputs: PortfolioInputs
    categories: dict[str, str]
    strategies: list[StrategyResult]
    target_strategy: str
    frontier: pd.DataFrame
    monte_carlo: pd.DataFrame
    monte_carlo_summary: MonteCarloSummary | None
    backtest: list[BacktestMetrics]
    plan: RebalancePlan
    holdings_file: str
    strategy_order: tuple[str, ...] = field(
        default=("max_sharpe", "min_volatility", "hrp", "equal_weight")
    )

    @property
    def target(self) -> StrategyResult:
        return next(s for s in self.strategies if s.strategy == self.target_strategy)

    @property
    def ordered_strategies(self) -> list[StrategyResult]:
        rank = {name: i for i, name in enumerate(self.strategy_order)}
        return sorted(self.strategies, key=lambda s: rank.get(s.strategy, 99))

    @property
    def weight_rows(self) -> list[tuple[str, str, list[float]]]:
        """(symbol, category, weight per strategy) for every symbol any strategy holds, by the
        target's weight."""
        table = pd.DataFrame({s.strategy: s.weights for s in self.ordered_strategies}).fillna(0.0)
        table = table[(table > 5e-5).any(axis=1)]
        table = table.sort_values(self.target_strategy, ascending=False)
        return [
            (str(symbol), self.categories.get(str(symbol), ""), [float(v) for v in row])
            for symbol, row in zip(table.index, table.to_numpy(), strict=True)
        ]

    @property
    def subject(self) -> str:
        trades = len(self.plan.trades)
        label = STRATEGY_LABELS.get(self.target_strategy, self.target_strategy)
        return (
            f"Portfolio rebalancing {self.run.run_date}: {trades} trade{'s' * (trades != 1)} "
            f"to the {label} target"
        )


@dataclass(frozen=True)
class WrittenReport:
    folder: Path
    html: Path
    markdown: Path
    chart: Path
    subject: str


def _environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("crypto_ml.portfolio", "templates"),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, digits=1: (
        "–" if v is None else f"{(v if abs(v) >= 5e-7 else 0.0) * 100:.{digits}f} %"
    )
    env.filters["num"] = lambda v, digits=2: "–" if v is None else f"{v:,.{digits}f}"
    env.filters["label"] = lambda name: STRATEGY_LABELS.get(name, name)
    return env


def render(report: ReportData, image_src: str) -> tuple[str, str]:
    """(HTML, Markdown) of a report; `image_src` is where the HTML finds the chart."""
    context = {"r": report, "image_src": image_src, "chart_file": "frontier.png"}
    html = _environment(True).get_template("report.html.j2").render(**context)
    markdown = _environment(False).get_template("report.md.j2").render(**context)
    return html, markdown


def _write_atomically(path: Path, content: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_report(report: ReportData, reports_dir: Path) -> WrittenReport:
    """Write report.html, report.md and frontier.png under reports_dir/portfolio_<run date>/
    (replacing a previous report of the same run date)."""
    from crypto_ml.portfolio.chart import frontier_png

    folder = reports_dir / f"portfolio_{report.run.run_date}"
    folder.mkdir(parents=True, exist_ok=True)
    png = frontier_png(
        report.monte_carlo,
        report.frontier,
        report.ordered_strategies,
        report.inputs.risk_free_rate,
        f"Efficient frontier and random portfolios, {report.run.run_date}",
    )
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
    html, markdown = render(report, data_uri)
    written = WrittenReport(
        folder,
        folder / "report.html",
        folder / "report.md",
        folder / "frontier.png",
        report.subject,
    )
    _write_atomically(written.chart, png)
    _write_atomically(written.markdown, markdown.encode())
    _write_atomically(written.html, html.encode())
    (folder / "subject.txt").write_text(report.subject + "\n")
    return written


def load_written_report(html_path: Path) -> WrittenReport:
    """The files of a written report (for sending it later, e.g. in another Airflow task)."""
    folder = html_path.parent
    written = WrittenReport(
        folder,
        html_path,
        folder / "report.md",
        folder / "frontier.png",
        (folder / "subject.txt").read_text().strip() if (folder / "subject.txt").is_file() else "",
    )
    missing = [p.name for p in (written.html, written.markdown, written.chart) if not p.is_file()]
    if missing:
        from crypto_ml.errors import NotEnoughData

        raise NotEnoughData(
            f"report files missing in {folder}: {', '.join(missing)}; run the report step again"
        )
    return written


def report_message(written: WrittenReport, settings: Settings) -> EmailMessage:
    """The e-mail: Markdown as the text part, the HTML with the chart inline, files attached."""
    from crypto_analytics.notifications.smtp import Attachment, build_message

    png = written.chart.read_bytes()
    saved_html = written.html.read_text()
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
    mail_html = saved_html.replace(data_uri, f"cid:{CHART_CID}")
    message = build_message(
        settings.notifications.smtp,
        written.subject or f"Portfolio rebalancing report ({written.folder.name})",
        written.markdown.read_text(),
        html=mail_html,
        attachments=[
            Attachment("report.html", saved_html.encode(), "text/html"),
            Attachment("report.md", written.markdown.read_bytes(), "text/markdown"),
            Attachment("frontier.png", png, "image/png"),
        ],
    )
    body = message.get_body(preferencelist=("html",))
    if body is not None:
        body.add_related(png, maintype="image", subtype="png", cid=f"<{CHART_CID}>")
    return message
