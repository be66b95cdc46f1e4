"""What the application keeps per household between detection runs, pickled in one row.

The detectors themselves are pure models; this bundle adds what only the application knows:
the TV's on/off state across runs and the severity last reported for the current stretch, so a
stretch that stays at ``alert`` yields one finding, not one per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from detectors.inactivity import QuietStretchDetector
from detectors.outage import DataOutage
from watch.slots import TvState

CHECKPOINT_NAME = "household"


@dataclass
class Reported:
    """The highest severity already reported for the episode that began at ``since``."""

    since: datetime | None = None
    severity: str = "normal"
    # The episode an incident was last opened for (by its start).
    incident_for: datetime | None = None


@dataclass
class HouseholdState:
    inactivity: QuietStretchDetector
    outage: DataOutage
    tv: TvState = field(default_factory=TvState)
    inactivity_reported: Reported = field(default_factory=Reported)
    outage_reported: Reported = field(default_factory=Reported)
    # Incidents whose outcome has been fed back to the detector (recent ones only).
    outcomes_fed: list[int] = field(default_factory=list)

    @classmethod
    def new(cls, timezone: str) -> HouseholdState:
        return cls(
            inactivity=QuietStretchDetector(timezone=timezone),
            outage=DataOutage(timezone=timezone),
        )
