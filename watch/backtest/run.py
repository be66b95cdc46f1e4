"""Running the replay over every household, in parallel processes when there is enough work."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from detectors.base import Detector
from detectors.baselines import HalfSpaceTreesBaseline
from detectors.inactivity import QuietStretchDetector
from detectors.rules import NoActivityRule
from watch.backtest.grid import HouseholdSlots, household_slots
from watch.backtest.metrics import WINDOW, Label
from watch.backtest.stream import HouseholdRun, replay_household

log = logging.getLogger(__name__)

#: ``--detector`` names -> a fresh detector for a household in the given zone.
DETECTORS: dict[str, Callable[[str], Detector]] = {
    "quiet": lambda zone: QuietStretchDetector(timezone=zone),
    "rule12": lambda zone: NoActivityRule(hours=12),
    "rule24": lambda zone: NoActivityRule(hours=24),
    "hst": lambda zone: HalfSpaceTreesBaseline(timezone=zone),
}
DEFAULT_DETECTOR = "quiet"
#: Below this many slots the work is done in this process: starting workers costs more.
_PARALLEL_FROM_SLOTS = 50_000


def _groups(frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """Rows per household, for a frame already sorted by household."""
    ids = frame["household_id"].to_numpy()
    if len(ids) == 0:
        return
    bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(ids)], strict=True):
        yield str(ids[start]), frame.iloc[start:stop]


def build_all_slots(
    readings: pd.DataFrame,
    tv: pd.DataFrame | None,
    timezones: dict[str, str],
    default_timezone: str,
) -> list[HouseholdSlots]:
    """Slots of every household that has readings (frames from ``watch.backtest.inputs``)."""
    tv_by_household = dict(_groups(tv)) if tv is not None else {}
    slots = []
    for household_id, rows in _groups(readings):
        events = tv_by_household.get(household_id)
        slots.append(
            household_slots(
                household_id,
                timezones.get(household_id, default_timezone),
                rows["end_ns"].to_numpy(),
                rows["kwh"].to_numpy(),
                None if events is None else events["at_ns"].to_numpy(),
                None if events is None else events["event"].to_numpy(),
            )
        )
    return slots


@dataclass(frozen=True)
class _Task:
    slots: HouseholdSlots
    detector_names: tuple[str, ...]
    lag: timedelta
    feedback: bool = False
    incident_windows: tuple[tuple[datetime, datetime], ...] = ()


def _replay(task: _Task) -> HouseholdRun:
    zone = task.slots.timezone
    detectors = {name: DETECTORS[name](zone) for name in task.detector_names}
    return replay_household(
        task.slots,
        detectors,
        task.lag,
        feedback=task.feedback,
        incident_windows=task.incident_windows,
    )


def replay_all(
    slots: Sequence[HouseholdSlots],
    detector_names: Sequence[str],
    lag: timedelta,
    workers: int | None = None,
    *,
    feedback: bool = False,
    labels: Sequence[Label] = (),
) -> list[HouseholdRun]:
    """Replay every household through fresh detectors; results in the order of ``slots``.

    ``workers`` processes share the households (default: up to 2, the cores we plan for). With
    ``feedback``, alerts outside the ``labels``' windows are answered ``fine`` (see
    ``watch.backtest.stream``).
    """
    unknown = [n for n in detector_names if n not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; choose from {sorted(DETECTORS)}")
    windows: dict[str, list[tuple[datetime, datetime]]] = {}
    for label in labels:
        windows.setdefault(label.household_id, []).append((label.onset, label.onset + WINDOW))
    tasks = [
        _Task(s, tuple(detector_names), lag, feedback, tuple(windows.get(s.household_id, ())))
        for s in slots
    ]
    workers = workers or min(2, os.cpu_count() or 1)
    if workers <= 1 or sum(len(s) for s in slots) < _PARALLEL_FROM_SLOTS:
        return [_replay(t) for t in tasks]
    # Longest households first so no worker is left with a long one at the end.
    order = sorted(range(len(tasks)), key=lambda i: -len(tasks[i].slots))
    results: list[HouseholdRun | None] = [None] * len(tasks)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for index, run in zip(order, pool.map(_replay, [tasks[i] for i in order]), strict=True):
            results[index] = run
    return [r for r in results if r is not None]
