"""Turning replay results into the alerts file, the JSON report and a readable table."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.table import Table

from watch.backtest.curve import ScoreTrace, default_thresholds, operating_point, threshold_curve
from watch.backtest.grid import HouseholdSlots
from watch.backtest.metrics import Label, Span, evaluate
from watch.backtest.run import DETECTORS
from watch.backtest.stream import OUTAGE, Alert, HouseholdRun

ALERT_COLUMNS = ["household_id", "fired_at", "kind", "severity", "score", "reason"]
#: The false-alert rate at which the curve's operating point is read (the project's target).
TARGET_FALSE_RATE = 0.6


def alerts_of(runs: Sequence[HouseholdRun], name: str) -> list[Alert]:
    """The alerts of detector ``name`` and of the data-outage watch, in time order."""
    rows = [a for run in runs for a in run.alerts.get(name, []) + run.alerts.get(OUTAGE, [])]
    return sorted(rows, key=lambda a: (a.fired_at, a.household_id, a.kind))


def write_alerts(path: Path, alerts: Sequence[Alert]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ALERT_COLUMNS)
        for a in alerts:
            fired = a.fired_at.astimezone(UTC).isoformat()
            writer.writerow([a.household_id, fired, a.kind, a.severity, f"{a.score:.4f}", a.reason])


def spans_of(runs: Sequence[HouseholdRun], slots: Sequence[HouseholdSlots]) -> list[Span]:
    spans = []
    for run, household in zip(runs, slots, strict=True):
        if len(run.ticks) == 0:
            continue
        start = datetime.fromtimestamp(int(run.ticks[0]) / 1e9, tz=UTC)
        end = datetime.fromtimestamp(int(run.ticks[-1]) / 1e9, tz=UTC)
        spans.append(Span(run.household_id, start, end, household.timezone))
    return spans


def detector_report(
    name: str,
    runs: Sequence[HouseholdRun],
    spans: Sequence[Span],
    labels: Sequence[Label],
    warmup: timedelta,
) -> dict:
    """Metrics from the alert rows, and the re-thresholded curve, of one detector."""
    probe = DETECTORS[name]("UTC")
    alert_times = {
        run.household_id: [a.fired_at for a in run.alerts.get(name, []) if a.severity == "alert"]
        for run in runs
    }
    metrics = evaluate(alert_times, labels, spans, warmup=warmup)
    traces = [ScoreTrace(r.household_id, r.ticks, r.scores[name]) for r in runs]
    thresholds = default_thresholds(traces, probe.watch_threshold, probe.alert_threshold)
    curve = threshold_curve(traces, labels, spans, thresholds, warmup=warmup)
    return {
        "detector": type(probe).__name__,
        "watch_threshold": probe.watch_threshold,
        "alert_threshold": probe.alert_threshold,
        "metrics": metrics.as_json(),
        "curve": curve,
        f"best_at_false_rate_{TARGET_FALSE_RATE}": operating_point(curve, TARGET_FALSE_RATE),
    }


def _hours(value: float | None) -> str:
    return ">48h" if value is None else f"{value:.1f}"


def _fraction(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.2f}"


def summary_table(report: dict) -> Table:
    """One row per detector (and per day/night split) of the JSON report."""
    table = Table(title="Backtest: recall within hours of onset, delay, false-alert episodes")
    for column in ("detector", "onsets", "n", "@3h", "@6h", "@12h", "@24h", "median h", "p90 h"):
        table.add_column(column, justify="right")
    table.add_column("false/hh-month", justify="right")
    for name, entry in report["detectors"].items():
        metrics = entry["metrics"]
        false_rate = _fraction(metrics["false_episodes_per_household_month"])
        for part in ("overall", "day", "night"):
            block = metrics[part]
            recall = block["recall"]
            table.add_row(
                name if part == "overall" else "",
                part,
                str(block["incidents"]),
                *(_fraction(recall[h]) for h in ("3h", "6h", "12h", "24h")),
                _hours(block["median_delay_hours"]),
                _hours(block["p90_delay_hours"]),
                false_rate if part == "overall" else "",
            )
    return table
