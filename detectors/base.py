"""What every detector shares: the observation it sees and the river-shaped contract.

A detector follows river's ``AnomalyDetector``: the constructor only stores parameters, state is
built on first use, ``learn_one`` returns nothing and ``score_one`` returns a float where higher
means more anomalous (defined before any learning). One instance watches one household; the
application pickles it between runs.

Convention: parameters are public attributes set in ``__init__``; learned state lives in
attributes whose names start with ``_`` and is created lazily. ``clone`` relies on it.
"""

from __future__ import annotations

import abc
import copy
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Interval:
    """One metering interval of one household, as the detectors see it.

    ``end`` is the aware UTC end of the interval. ``kwh`` is ``None`` when no reading arrived for
    the interval: missing data is never read as a quiet home. ``tv_operations`` counts deliberate
    actions on the TV in the interval (power on, channel change, any key); ``tv_on_minutes`` is how
    long the set was on, operated or not.
    """

    end: datetime
    kwh: float | None
    minutes: int = 30
    tv_operations: int = 0
    tv_on_minutes: float = 0.0

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError("Interval.end must be timezone-aware (UTC)")


class Severity(StrEnum):
    """What a score means for people: ``watch`` shows on the dashboard, ``alert`` escalates."""

    normal = "normal"
    watch = "watch"
    alert = "alert"


class Detector(abc.ABC):
    """Base class: river's shape, plus thresholds that turn a score into a severity."""

    #: Scores at or above these thresholds are ``watch`` and ``alert``. Subclasses set defaults.
    watch_threshold: float = float("inf")
    alert_threshold: float = float("inf")

    @abc.abstractmethod
    def learn_one(self, x: Interval) -> None:
        """Update the model with one interval. Returns nothing."""

    @abc.abstractmethod
    def score_one(self, x: Interval) -> float:
        """How anomalous the household looks at ``x.end``; higher is more anomalous."""

    def explain_one(self, x: Interval) -> str:
        """The reason for the current score in plain words (for staff and for the SMS)."""
        return f"score {self.score_one(x):.2f}"

    def severity(self, score: float) -> Severity:
        if score >= self.alert_threshold:
            return Severity.alert
        if score >= self.watch_threshold:
            return Severity.watch
        return Severity.normal

    def clone(self) -> Detector:
        """A fresh, unfitted detector with the same parameters (river's ``clone``)."""
        fresh = copy.copy(self)
        fresh.__dict__ = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return fresh
