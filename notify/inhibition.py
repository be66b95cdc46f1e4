"""Inhibition: an area-wide data outage mutes per-household inactivity alerts in that area.

After Alertmanager's ``inhibit/``: one alert (many outages in an area: a power cut, a broken
concentrator) makes others (each household "inactive" because its meter went quiet)
meaningless. Asking a dozen residents "are you all right?" because the grid went down would
teach them to ignore the question. While the area is inhibited, its inactivity incidents are held
(event ``inhibited``, no messages) and re-checked; they go on by themselves once the outages close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from data.tables.incidents import Incident, IncidentStatus
from data.tables.roster import Household

OUTAGE = "outage"
DEFAULT_SHARE = 0.5
DEFAULT_MIN_HOUSEHOLDS = 3


@dataclass(frozen=True, slots=True)
class AreaOutage:
    area: str
    households: int
    in_outage: int

    @property
    def share(self) -> float:
        return self.in_outage / self.households if self.households else 0.0


def area_outage(session: Session, area: str, now: datetime) -> AreaOutage:
    """How many of the area's households have an outage incident open at ``now``."""
    households = session.exec(
        select(func.count()).select_from(Household).where(Household.area == area)
    ).one()
    in_outage = session.exec(
        select(func.count(func.distinct(Incident.household_id)))
        .join(Household, col(Household.id) == Incident.household_id)
        .where(
            Household.area == area,
            Incident.kind == OUTAGE,
            Incident.status != IncidentStatus.resolved,
            col(Incident.opened_at) <= now,
        )
    ).one()
    return AreaOutage(area=area, households=households, in_outage=in_outage)


def is_inhibited(
    outage: AreaOutage,
    share: float = DEFAULT_SHARE,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
) -> bool:
    """The rule, pure: at least ``min_households`` in outage and at least ``share`` of the area.

    >>> is_inhibited(AreaOutage("a", households=6, in_outage=3))
    True
    >>> is_inhibited(AreaOutage("a", households=4, in_outage=2))  # half, but only two homes
    False
    >>> is_inhibited(AreaOutage("a", households=10, in_outage=4))
    False
    """
    return outage.in_outage >= min_households and outage.share >= share


def area_inhibited(
    session: Session,
    area: str,
    now: datetime,
    *,
    share: float = DEFAULT_SHARE,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
) -> bool:
    """Whether inactivity escalation in ``area`` is held because of an area-wide outage."""
    if not area:
        return False  # households without an area are not one neighbourhood
    return is_inhibited(area_outage(session, area, now), share, min_households)
