"""Metrics on a hand-made case: known onsets and alerts give known recall, delay, false rate."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from watch.backtest.curve import ScoreTrace, operating_point, threshold_curve
from watch.backtest.metrics import Label, Span, evaluate, household_months

T0 = datetime(2025, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
DAY = timedelta(days=1)
# Two homes replayed for 70 days, the first 10 of them history.
SPANS = [Span("H1", T0, T0 + 70 * DAY, "UTC"), Span("H2", T0, T0 + 70 * DAY, "UTC")]
WARMUP = 10 * DAY
LABELS = [
    Label("H1", T0 + 20 * DAY + 10 * H, "quiet"),  # day onset, 10:00
    Label("H1", T0 + 40 * DAY + 23 * H, "lamp_on"),  # night onset, 23:00
    Label("H2", T0 + 30 * DAY + 14 * H, "quiet"),  # day onset, never alerted
]
ALERTS = {
    "H1": [
        T0 + 5 * DAY,  # in the warm-up: not counted
        T0 + 20 * DAY + 12 * H,  # 2 h after the first onset
        T0 + 21 * DAY,  # still inside the first incident's 48 h: neither detection nor false
        T0 + 40 * DAY + 36 * H,  # 13 h after the second onset
        T0 + 50 * DAY,  # false: episode 1
        T0 + 50 * DAY + 5 * H,  # within 24 h of it: same episode
        T0 + 51 * DAY + 6 * H,  # 30 h later: episode 2
    ],
    "H2": [T0 + 30 * DAY + 13 * H],  # one hour BEFORE its onset: false, not a detection
}


def test_recall_delay_and_false_episodes_of_a_hand_made_case():
    metrics = evaluate(ALERTS, LABELS, SPANS, warmup=WARMUP)
    assert metrics.delays_hours == (2.0, 13.0, math.inf)
    assert metrics.overall.recall == {3: 1 / 3, 6: 1 / 3, 12: 1 / 3, 24: 2 / 3}
    assert metrics.overall.median_delay_hours == 13.0
    assert metrics.overall.p90_delay_hours == math.inf
    assert (metrics.day.incidents, metrics.night.incidents) == (2, 1)
    assert metrics.day.recall[3] == 0.5 and metrics.night.recall[12] == 0.0
    assert metrics.night.median_delay_hours == 13.0
    assert metrics.by_variant["lamp_on"].recall[24] == 1.0
    assert metrics.false_alert_episodes == 3
    # 60 days at risk per home, less 2 days per labelled window: (56 + 58) / 30 months.
    assert metrics.household_months == pytest.approx(114 / 30)
    assert metrics.false_episodes_per_household_month == pytest.approx(3 / (114 / 30))
    assert metrics.as_json()["overall"]["p90_delay_hours"] is None


def test_a_window_that_overhangs_the_end_of_the_data_is_only_subtracted_where_it_overlaps():
    spans = [Span("H1", T0, T0 + 30 * DAY, "UTC")]
    labels = [Label("H1", T0 + 29 * DAY)]
    assert household_months(spans, labels, warmup=DAY) == pytest.approx(28 / 30)


def test_the_curve_rethresholds_recorded_scores():
    ticks = T0 + np.arange(70 * 48) * timedelta(minutes=30)
    ns = np.array([int(t.timestamp()) for t in ticks], dtype=np.int64) * 10**9
    scores = np.zeros(len(ticks), dtype=np.float32)
    onset = 20 * 48 + 20  # H1's first onset, 10:00 on day 20
    scores[onset + 4 : onset + 20] = 5.0  # crosses 5 two hours after onset
    scores[onset + 2] = 2.0  # crosses 2 one hour after onset
    scores[50 * 48 : 50 * 48 + 3] = 3.0  # a false rise to 3, counted at thresholds <= 3
    traces = [ScoreTrace("H1", ns, scores)]
    labels = LABELS[:1]
    points = threshold_curve(traces, labels, SPANS[:1], np.array([1.0, 3.0, 6.0]), warmup=WARMUP)
    low, mid, high = points
    assert (low["median_delay_hours"], mid["median_delay_hours"]) == (1.0, 2.0)
    assert high["median_delay_hours"] is None and high["recall_24h"] == 0.0
    months = 58 / 30
    assert low["false_episodes_per_household_month"] == pytest.approx(1 / months, abs=1e-4)
    assert high["false_episodes_per_household_month"] == 0.0
    assert operating_point(points, 0.1) == high
    assert operating_point(points, 1.0) == low
