"""The replay: one household's slots fed to its detectors on a simulated 30-minute clock.

The clock ticks every half hour. A slot ending at ``t`` is delivered at the first tick at or after
``t + lag`` (``lag`` models how late meter data arrive), and only then do the detectors see it:
score first, then learn, one slot at a time, one detector instance per household. ``fired_at``
of an alert is the tick at which it would have been raised.

Alerts follow the application's rule (``watch.detect``): a row each time an episode (keyed by
when its quiet stretch began, where the detector says) reaches a higher severity than already
reported (``watch``, then ``alert``); a stretch that stays at ``alert`` is one row; a slot back at
``normal`` ends the episode. A ``DataOutage`` runs alongside, as in the application, and its rows
have kind ``outage``.

With ``feedback``, the resident answers every ``alert`` that fired outside the household's
labelled incident windows with ``fine`` one hour later: at the first tick at or after then, the
detector's ``learn_outcome(since, "fine")`` is called (if it has one) before that tick's slots are
scored. Alerts inside a labelled window get no answer.

Households are independent, so replaying them one after the other (or in parallel) gives the same
alerts as one clock over all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from detectors.base import Detector, Severity
from detectors.outage import DataOutage
from watch.backtest.grid import SLOT_NS, HouseholdSlots

INACTIVITY = "inactivity"
OUTAGE = "outage"
_RANK = {Severity.normal: 0, Severity.watch: 1, Severity.alert: 2}
#: How long after an alert the simulated resident answers it.
ANSWER_AFTER = timedelta(hours=1)
FINE = "fine"


@dataclass(frozen=True)
class Alert:
    """One row of the alerts file."""

    household_id: str
    fired_at: datetime
    kind: str
    severity: str
    score: float
    reason: str


@dataclass
class SimClock:
    """The simulated time, readable by anyone who wants to check what was known when."""

    now: datetime | None = None


@dataclass
class HouseholdRun:
    """What replaying one household produced, per detector name."""

    household_id: str
    ticks: np.ndarray  # int64 UTC ns: the tick at which each slot was delivered
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # float32, max per tick
    alerts: dict[str, list[Alert]] = field(default_factory=dict)


def delivery_ticks(ends: np.ndarray, lag: timedelta) -> np.ndarray:
    """The tick (UTC ns) at which each slot ending at ``ends`` is delivered.

    >>> ends = np.array([1800, 3600], dtype=np.int64) * 10**9
    >>> (delivery_ticks(ends, timedelta(minutes=45)) // 10**9).tolist()
    [5400, 7200]
    """
    lag_ns = int(lag.total_seconds() * 10**9)
    return -(-(ends + lag_ns) // SLOT_NS) * SLOT_NS


class _Episode:
    """The application's "new high" rule for one detector of one household."""

    def __init__(self) -> None:
        self.since: datetime | None = None
        self.severity = Severity.normal

    def is_new_high(self, since: datetime | None, severity: Severity) -> bool:
        if severity == Severity.normal:
            self.since, self.severity = None, Severity.normal
            return False
        if since != self.since or _RANK[severity] > _RANK[self.severity]:
            self.since, self.severity = since, severity
            return True
        return False


def _episode_start(detector: Detector, x) -> datetime | None:  # noqa: ANN001
    since = getattr(detector, "quiet_since", None) or getattr(detector, "silent_since", None)
    return since(x) if since else None


def replay_household(
    slots: HouseholdSlots,
    detectors: Mapping[str, Detector],
    lag: timedelta,
    *,
    outage: Detector | None = None,
    clock: SimClock | None = None,
    feedback: bool = False,
    incident_windows: Sequence[tuple[datetime, datetime]] = (),
) -> HouseholdRun:
    """Replay ``slots`` through ``detectors`` (name -> fresh instance for this household).

    Each detector's alerts have kind ``inactivity``; ``outage`` (a ``DataOutage`` by default, or
    pass one; its alerts are listed under the name ``"outage"``) watches data arrival. ``clock``
    is set to each tick before the detectors are called. With ``feedback``, alerts outside
    ``incident_windows`` (this household's labelled ``(onset, end)``) are answered ``fine`` an
    hour later (see the module docstring).
    """
    clock = clock or SimClock()
    outage = outage if outage is not None else DataOutage(timezone=slots.timezone)
    ticks = delivery_ticks(slots.ends, lag)
    watched: dict[str, tuple[Detector, str]] = {
        name: (detector, INACTIVITY) for name, detector in detectors.items()
    }
    watched[OUTAGE] = (outage, OUTAGE)
    run = HouseholdRun(slots.household_id, ticks)
    scores = {name: np.full(len(slots), -np.inf, dtype=np.float32) for name in watched}
    episodes = {name: _Episode() for name in watched}
    alerts: dict[str, list[Alert]] = {name: [] for name in watched}
    # Slots delivered at the same tick share one score cell (the tick's maximum).
    tick_index = np.r_[0, np.cumsum(np.diff(ticks) > 0)]
    answers: list[tuple[datetime, Detector, datetime]] = []  # (due, detector, since), by due
    for index in range(len(slots)):
        x = slots.interval(index)
        now = datetime.fromtimestamp(int(ticks[index]) / 1e9, tz=UTC)
        clock.now = now
        while answers and answers[0][0] <= now:
            _, answered, since = answers.pop(0)
            answered.learn_outcome(since, FINE)  # type: ignore[attr-defined]
        cell = tick_index[index]
        for name, (detector, kind) in watched.items():
            score = detector.score_one(x)
            severity = detector.severity(score)
            if score > scores[name][cell]:
                scores[name][cell] = score
            since = _episode_start(detector, x) if severity != Severity.normal else None
            if episodes[name].is_new_high(since, severity):
                alerts[name].append(
                    Alert(
                        slots.household_id,
                        now,
                        kind,
                        severity.value,
                        float(score),
                        detector.explain_one(x),
                    )
                )
                if (
                    feedback
                    and severity == Severity.alert
                    and since is not None
                    and hasattr(detector, "learn_outcome")
                    and not any(start <= now <= end for start, end in incident_windows)
                ):
                    answers.append((now + ANSWER_AFTER, detector, since))
            detector.learn_one(x)
    cells = int(tick_index[-1]) + 1 if len(slots) else 0
    run.ticks = np.unique(ticks)
    run.scores = {name: values[:cells] for name, values in scores.items()}
    run.alerts = alerts
    return run
