"""Delay against false alarms: the recorded scores re-thresholded at many alert thresholds.

The replay records, per household, the maximum score of each tick. For a threshold ``θ``:

- an incident's delay is the first tick in ``[onset, onset + 48 h]`` whose score is ``>= θ``
  (found for all thresholds at once by a binary search in the running maximum of the window);
- alerts outside the labelled windows are the ticks where the score rises to ``>= θ``; they are
  grouped into episodes (one per household per 24 h) as in ``watch.backtest.metrics``.

Approximation, stated in the report: the detector learned with its own alert threshold (it does
not learn stretches it flagged), so the curve away from that threshold is what the same scores
would give, not what a detector run with ``θ`` would have learned. At the detector's own
threshold the curve and the alert-row metrics differ only where an episode changed its start
while staying above the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from watch.backtest.metrics import (
    EPISODE,
    WINDOW,
    Label,
    Span,
    household_months,
    nearest_rank,
)

_HOUR_NS = 3600 * 10**9


@dataclass(frozen=True)
class ScoreTrace:
    """One household's recorded scores: tick times (UTC ns) and the tick's maximum score."""

    household_id: str
    ticks: np.ndarray
    scores: np.ndarray


def default_thresholds(traces: Sequence[ScoreTrace], *own: float, points: int = 30) -> np.ndarray:
    """Thresholds over the upper tail of the positive scores, an even grid from half the lowest
    to three times the highest of the detector's own thresholds, and those thresholds."""
    positive = np.concatenate([t.scores[t.scores > 0] for t in traces] or [np.zeros(0)])
    levels = 1 - np.logspace(-5.5, -0.3, points)
    grid = np.quantile(positive, levels) if positive.size else np.zeros(0)
    finite = [v for v in own if np.isfinite(v)]
    even = np.linspace(min(finite) / 2, max(finite) * 3, points) if finite else np.zeros(0)
    values = np.r_[grid, even, finite]
    return np.unique(np.round(values.astype(float), 4))


def _episodes_ns(times: np.ndarray, gap_ns: int) -> int:
    count, opened = 0, None
    for when in times.tolist():
        if opened is None or when - opened >= gap_ns:
            count, opened = count + 1, when
    return count


def threshold_curve(
    traces: Sequence[ScoreTrace],
    labels: Sequence[Label],
    spans: Sequence[Span],
    thresholds: np.ndarray,
    *,
    warmup: timedelta,
    window: timedelta = WINDOW,
) -> list[dict]:
    """One point per threshold: recall within 3/6/12/24 h, median and p90 delay, false rate."""
    thresholds = np.asarray(thresholds, dtype=float)
    by_household: dict[str, list[Label]] = {}
    for label in labels:
        by_household.setdefault(label.household_id, []).append(label)
    starts = {s.household_id: s.start for s in spans}
    window_ns = int(window.total_seconds() * 10**9)
    delays = []  # one row per incident: delay (h) at each threshold
    false = np.zeros(len(thresholds), dtype=np.int64)
    traced = set()
    for trace in traces:
        traced.add(trace.household_id)
        ticks, scores = trace.ticks, trace.scores.astype(float)
        excluded = np.zeros(len(ticks), dtype=bool)
        start = starts.get(trace.household_id)
        if start is not None:
            excluded |= ticks < _ns(start + warmup)
        for label in by_household.get(trace.household_id, []):
            onset = _ns(label.onset)
            i0 = np.searchsorted(ticks, onset, side="left")
            i1 = np.searchsorted(ticks, onset + window_ns, side="right")
            excluded[i0:i1] = True
            running = np.maximum.accumulate(scores[i0:i1]) if i1 > i0 else np.zeros(0)
            first = np.searchsorted(running, thresholds, side="left")
            hit = first < len(running)
            at = ticks[np.minimum(i0 + first, len(ticks) - 1)] if len(ticks) else first
            delays.append(np.where(hit, (at - onset) / _HOUR_NS, np.inf))
        previous = np.r_[-np.inf, scores[:-1]]
        for k, threshold in enumerate(thresholds):
            rising = (scores >= threshold) & (previous < threshold) & ~excluded
            false[k] += _episodes_ns(ticks[rising], int(EPISODE.total_seconds() * 10**9))
    for label in labels:
        if label.household_id not in traced:
            delays.append(np.full(len(thresholds), np.inf))
    months = household_months(spans, labels, warmup, window)
    matrix = np.array(delays).reshape(len(delays), len(thresholds))
    points = []
    for k, threshold in enumerate(thresholds):
        column = matrix[:, k].tolist()
        point = {"threshold": float(threshold)}
        for hours in (3, 6, 12, 24):
            hit = matrix[:, k] <= hours
            point[f"recall_{hours}h"] = round(float(hit.mean()), 4) if len(hit) else None
        for name, q in (("median_delay_hours", 0.5), ("p90_delay_hours", 0.9)):
            value = nearest_rank(column, q)
            point[name] = round(value, 3) if np.isfinite(value) else None
        rate = false[k] / months if months else float("nan")
        point["false_episodes_per_household_month"] = round(float(rate), 4)
        points.append(point)
    return points


def operating_point(points: Sequence[dict], max_false_rate: float) -> dict | None:
    """The point with the best recall within 24 h among those at or under ``max_false_rate``."""
    allowed = [p for p in points if p["false_episodes_per_household_month"] <= max_false_rate]
    if not allowed:
        return None
    return max(allowed, key=lambda p: (p["recall_24h"] or 0.0, -(p["median_delay_hours"] or 1e9)))


def _ns(when) -> int:  # noqa: ANN001
    return int(pd.Timestamp(when).value)
