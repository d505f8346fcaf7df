"""report.html: one self-contained page, charts inlined as base64 PNG."""

from __future__ import annotations

import base64
import io
from html import escape

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from monitoring.drift import FeatureDrift
from monitoring.join import OUTCOME
from monitoring.report import GroupReport, Report

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.verdict { font-size: 1.4rem; padding: .8rem; background: #eef; display: inline-block; }
.drifted { color: #b00; font-weight: bold; }
img { max-width: 100%; }
"""
_METRICS = (
    "rows", "positives", "base_rate", "mean_score", "roc_auc", "pr_auc", "brier", "log_loss",
    "expected_calibration_error", "threshold", "precision", "recall",
)  # fmt: skip


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="chart" src="data:image/png;base64,{encoded}">'


def _label(group: GroupReport) -> str:
    return f"{group.arm} {group.bundle_version}"


def _rows(joined: pd.DataFrame, group: GroupReport) -> pd.DataFrame:
    selected = (joined["arm"] == group.arm) & (joined["bundle_version"] == group.bundle_version)
    return joined[selected]


def _quality_charts(joined: pd.DataFrame, groups: list[GroupReport]) -> str:
    figure = Figure(figsize=(15, 4.5))
    roc, reliability, histogram = figure.subplots(1, 3)
    for group in groups:
        rows = _rows(joined, group)
        outcomes, scores = rows[OUTCOME].to_numpy(), rows["churn_probability"].to_numpy()
        if group.roc_auc is not None:
            false_positive, true_positive, _ = roc_curve(outcomes, scores)
            roc.plot(
                false_positive, true_positive, label=f"{_label(group)} (AUC {group.roc_auc:.3f})"
            )
        curve = group.reliability
        reliability.plot(curve.mean_predicted, curve.observed_rate, marker="o", label=_label(group))
        histogram.hist(
            scores, bins=20, range=(0, 1), density=True, histtype="step", label=_label(group)
        )
    _titled(roc, "ROC", "false positive rate", "true positive rate", diagonal=True)
    _titled(reliability, "Reliability", "mean predicted", "observed churn rate", diagonal=True)
    _titled(histogram, "Scores", "churn probability", "density", diagonal=False)
    return _png(figure)


def _titled(axes: Axes, title: str, x: str, y: str, *, diagonal: bool) -> None:
    if diagonal:
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes.set(title=title, xlabel=x, ylabel=y)
    axes.legend(fontsize="small")


def _drift_chart(group: GroupReport, drifts: list[FeatureDrift], alert: float) -> str:
    names = [d.feature for d in drifts]
    values = np.array([d.psi for d in drifts])
    figure = Figure(figsize=(8, 0.28 * len(names) + 1))
    axes = figure.subplots()
    axes.barh(names, values, color=np.where(values >= alert, "#c33", "#69c"))
    axes.axvline(alert, color="grey", linestyle=":")
    axes.invert_yaxis()
    axes.set(title=f"PSI, {_label(group)}", xlabel="population stability index")
    return _png(figure)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape("" if value is None else str(value))


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _drift_section(group: GroupReport, alert: float) -> str:
    title = f"<h3>Drift: {escape(_label(group))}</h3>"
    if group.drift is None:
        return f"{title}<p>{escape(group.drift_skipped or 'skipped')}</p>"
    rows: list[list[object]] = [
        [d.feature, d.kind, d.rows, d.psi, d.statistic, d.value, d.p_adjusted,
         "drifted" if d.drifted else ""]
        for d in group.drift
    ]  # fmt: skip
    header = ["feature", "kind", "rows", "PSI", "test", "value", "p (BH)", ""]
    return title + _drift_chart(group, group.drift, alert) + _table(header, rows)


def render(report: Report, joined: pd.DataFrame, psi_alert: float) -> str:
    groups = [*report.arms.values(), *report.earlier_versions]
    comparison = report.comparison
    intervals: list[list[object]] = [
        [name, i.estimate, i.low, i.high]
        for name, i in (
            ("ROC AUC, candidate - stable", comparison.roc_auc_difference),
            ("Brier, candidate - stable", comparison.brier_difference),
        )
        if i is not None
    ]
    parts = [
        f"<h1>Churn model monitoring</h1><p>Generated {escape(report.generated_at)} from "
        f"{escape(report.inputs.predictions)} and {escape(report.inputs.labels)}.</p>",
        f'<p class="verdict">Verdict: <b>{escape(report.verdict.value)}</b>: '
        f"{escape(comparison.reason)}</p>",
        _table(["difference", "estimate", "low", "high"], intervals),
        f"<p>{comparison.confidence:.0%} percentile intervals, {comparison.resamples} "
        "bootstrap resamples per arm.</p>",
        "<h2>Arms</h2>",
        _table(
            ["arm", "bundle", *_METRICS],
            [[g.arm, g.bundle_version, *(getattr(g, m) for m in _METRICS)] for g in groups],
        ),
        _table(["count", "rows"], [[k, v] for k, v in report.counts.items()]),
    ]
    if not joined.empty:
        parts.append(_quality_charts(joined, groups))
    parts.append("<h2>Drift</h2>")
    parts.extend(_drift_section(group, psi_alert) for group in groups)
    if report.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f"<li>{escape(note)}</li>" for note in report.notes)
        parts.append("</ul>")
    body = "\n".join(parts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Churn monitoring: {escape(report.verdict.value)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
