"""The targets, on synthetic homes: <= 0.6 false episodes per household-month, recall within
24 h >= 0.9, and faster than today's 12-hour rule. At the default thresholds the median delay
is about 9.5 h with no false episodes (8.25 h at ``alert_threshold=2.5``; 10 h before the
session-4 evidence defaults, docs/detection.md "Session 4"). Before ``min_bandwidth_hours`` went
from 0.75 to 2.0 it was about 6.5 h at 0.33 false episodes: the wider kernel alerts later on
these very regular homes, and on real London homes it gives more recall and a shorter median at
0.6 false episodes (docs/detection.md, "Parameter sweep")."""

from __future__ import annotations

import pytest

from detectors.inactivity import QuietStretchDetector
from detectors.rules import NoActivityRule

from .benchmark import measure


@pytest.mark.slow
def test_the_quiet_stretch_model_meets_the_targets_and_beats_the_12_hour_rule() -> None:
    model = measure(QuietStretchDetector)
    rule = measure(NoActivityRule)
    print(f"\nquiet stretch: {model}\n12-hour rule: {rule}")
    assert model.false_episodes_per_household_month <= 0.6
    assert model.recall_within_24h >= 0.9
    assert model.median_delay_hours <= 10.5
    assert model.median_delay_hours < rule.median_delay_hours - 2
