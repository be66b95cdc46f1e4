"""Detection delay and false alerts on synthetic households (the numbers in the detector report).

Each synthetic home (routine varied by seed: rising 06:00-07:30, bed 21:30-23:00, going out on
10-50 % of days) is run twice for ``days`` days: once normal, to count false-alert episodes
(rising edges into ``alert`` after a 2-week warm-up, per household-month of 30 days), and once
with a collapse at a random half-hour after day ``warm_days + 7`` (every third with a lamp left
on), to time the first alert after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from detectors.base import Detector

from .conftest import Collapse, household_stream


@dataclass(frozen=True)
class Measurement:
    false_episodes_per_household_month: float
    median_delay_hours: float
    recall_within_24h: float
    delays_hours: tuple[float, ...]


def _scores(detector: Detector, intervals) -> np.ndarray:
    scores = []
    for x in intervals:
        scores.append(detector.score_one(x))
        detector.learn_one(x)
    return np.array(scores)


def measure(
    make: Callable[[], Detector], *, households: int = 20, days: int = 60, warm_days: int = 14
) -> Measurement:
    rng = np.random.default_rng(123)
    episodes, months, delays = 0, 0.0, []
    for seed in range(households):
        routine = {
            "wake_hour": 6 + (seed % 4) * 0.5,
            "bed_hour": 21.5 + (seed % 3) * 0.75,
            "outing_probability": [0.1, 0.3, 0.5][seed % 3],
        }
        normal = household_stream(seed=seed, days=days, **routine)
        detector = make()
        alerting = _scores(detector, normal.intervals)[warm_days * 48 :] >= detector.alert_threshold
        episodes += int(alerting[0]) + int(np.sum(alerting[1:] & ~alerting[:-1]))
        months += (days - warm_days) / 30

        start = normal.intervals[0].end - timedelta(minutes=30)
        at = start + timedelta(
            days=int(rng.integers(warm_days + 7, days - 3)), minutes=30 * int(rng.integers(0, 48))
        )
        collapse = Collapse(at, lamp_left_on=seed % 3 == 0)
        stream = household_stream(seed=seed, days=days, collapse=collapse, **routine)
        detector = make()
        alerts = np.flatnonzero(
            stream.collapsed & (_scores(detector, stream.intervals) >= detector.alert_threshold)
        )
        end = stream.intervals[alerts[0]].end if alerts.size else None
        delays.append((end - at).total_seconds() / 3600 if end else float("inf"))
    delays_array = np.array(delays)
    return Measurement(
        episodes / months,
        float(np.median(delays_array)),
        float(np.mean(delays_array <= 24)),
        tuple(sorted(delays)),
    )
