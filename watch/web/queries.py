"""What a staff user may read, always scoped to the user's organisation.

Every function takes the user and joins ``Household`` filtered by ``organisation_id``: a
household or incident of another organisation is simply not found (the routes answer 404, so
staff cannot even learn that it exists). Household status is derived here, in one place, from
open incidents, silences and recent findings; nothing about it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlmodel import Session, col, func, or_, select

from data.tables import (
    Contact,
    Finding,
    Household,
    Incident,
    IncidentEvent,
    Reading,
    Silence,
    StaffRole,
    StaffUser,
    TvEvent,
    ViewAudit,
)
from data.tables.incidents import IncidentStatus
from notify.channels.base import mask_phone
from notify.silences import SilenceState, silence_state

SLOT = timedelta(minutes=30)
DETAIL_DAYS = 14
BAND_DAYS = 28
# A band from fewer days than this says nothing about a household's rhythm.
BAND_MIN_DAYS = 7
WATCH_WINDOW = timedelta(hours=24)
RECENT_INCIDENTS = timedelta(days=30)


class HouseholdStatus(StrEnum):
    alert = "alert"
    outage = "outage"
    watch = "watch"
    silenced = "silenced"
    normal = "normal"


# Most urgent first: the order of the area list.
SEVERITY_RANK = {s: i for i, s in enumerate(HouseholdStatus)}


def household_status(
    open_kinds: set[str], silenced: bool, latest_finding_at: datetime | None, now: datetime
) -> HouseholdStatus:
    """The household's status from what is open, silenced and recently found.

    A silence holds inactivity escalation, so a silenced household with an open inactivity
    incident reads "silenced", not "alert"; a data outage is shown whatever the silence.

    >>> from datetime import UTC
    >>> now = datetime(2025, 1, 6, tzinfo=UTC)
    >>> household_status({"inactivity"}, False, None, now).value
    'alert'
    >>> household_status({"inactivity"}, True, None, now).value
    'silenced'
    >>> household_status(set(), False, now - timedelta(hours=3), now).value
    'watch'
    >>> household_status(set(), False, now - timedelta(hours=30), now).value
    'normal'
    """
    if "inactivity" in open_kinds and not silenced:
        return HouseholdStatus.alert
    if "outage" in open_kinds:
        return HouseholdStatus.outage
    if silenced:
        return HouseholdStatus.silenced
    if latest_finding_at is not None and latest_finding_at > now - WATCH_WINDOW:
        return HouseholdStatus.watch
    return HouseholdStatus.normal


@dataclass
class HouseholdRow:
    household: Household
    status: HouseholdStatus
    # When the status began (incident opened, finding fired, silence started); None if normal.
    since: datetime | None
    reason: str
    open_incident_ids: list[int]


def _scoped(user: StaffUser):  # noqa: ANN202
    return col(Household.organisation_id) == user.organisation_id


def _active_silence_clause(now: datetime):  # noqa: ANN202
    return (
        col(Silence.starts_at) <= now,
        col(Silence.ends_at) > now,
        or_(col(Silence.ended_early_at).is_(None), col(Silence.ended_early_at) > now),
    )


def list_households(
    session: Session,
    user: StaffUser,
    now: datetime,
    *,
    area: str | None = None,
    status: HouseholdStatus | None = None,
) -> list[HouseholdRow]:
    """The user's households, most urgent first, then longest waiting, then by id."""
    query = select(Household).where(_scoped(user))
    if area:
        query = query.where(Household.area == area)
    households = list(session.exec(query.order_by(Household.id)))
    ids = [h.id for h in households]
    if not ids:
        return []
    incidents: dict[str, list[Incident]] = {}
    for incident in session.exec(
        select(Incident)
        .where(col(Incident.household_id).in_(ids), Incident.status != IncidentStatus.resolved)
        .order_by(col(Incident.opened_at))
    ):
        incidents.setdefault(incident.household_id, []).append(incident)
    silences: dict[str, Silence] = {}
    for silence in session.exec(
        select(Silence)
        .where(col(Silence.household_id).in_(ids), *_active_silence_clause(now))
        .order_by(col(Silence.starts_at))
    ):
        silences.setdefault(silence.household_id, silence)
    latest: dict[str, Finding] = {}
    for finding in session.exec(
        select(Finding)
        .where(col(Finding.household_id).in_(ids), col(Finding.fired_at) > now - WATCH_WINDOW)
        .order_by(col(Finding.fired_at).desc(), col(Finding.id).desc())
    ):
        latest.setdefault(finding.household_id, finding)
    rows = []
    for household in households:
        open_incidents = incidents.get(household.id, [])
        silence = silences.get(household.id)
        finding = latest.get(household.id)
        found = household_status(
            {i.kind for i in open_incidents},
            silence is not None,
            finding.fired_at if finding else None,
            now,
        )
        since, reason = None, ""
        if found in (HouseholdStatus.alert, HouseholdStatus.outage):
            first = next(i for i in open_incidents if i.kind == _kind_of(found))
            since, reason = first.opened_at, first.reason
        elif found is HouseholdStatus.silenced:
            since, reason = silence.starts_at, silence.reason
        elif found is HouseholdStatus.watch:
            since, reason = finding.fired_at, finding.reason
        rows.append(HouseholdRow(household, found, since, reason, [i.id for i in open_incidents]))
    if status is not None:
        rows = [r for r in rows if r.status == status]
    far_future = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda r: (SEVERITY_RANK[r.status], r.since or far_future, r.household.id))
    return rows


def _kind_of(status: HouseholdStatus) -> str:
    return "inactivity" if status is HouseholdStatus.alert else "outage"


def areas(session: Session, user: StaffUser) -> list[str]:
    return list(
        session.exec(
            select(Household.area).where(_scoped(user)).distinct().order_by(Household.area)
        )
    )


def get_household(session: Session, user: StaffUser, household_id: str) -> Household | None:
    """The household if it belongs to the user's organisation, else None."""
    return session.exec(
        select(Household).where(Household.id == household_id, _scoped(user))
    ).first()


def get_incident(
    session: Session, user: StaffUser, incident_id: int
) -> tuple[Incident, Household] | None:
    """The incident and its household if it belongs to the user's organisation, else None."""
    row = session.exec(
        select(Incident, Household)
        .join(Household, col(Household.id) == Incident.household_id)
        .where(Incident.id == incident_id, _scoped(user))
    ).first()
    return (row[0], row[1]) if row else None


def record_view(
    session: Session,
    user: StaffUser,
    what: str,
    household_id: str,
    now: datetime,
    incident_id: int | None = None,
) -> None:
    """Note that ``user`` opened a household or incident (in the caller's transaction)."""
    session.add(
        ViewAudit(
            user_id=user.id, household_id=household_id, incident_id=incident_id, at=now, what=what
        )
    )


@dataclass
class ContactView:
    id: int
    name: str
    role: str
    phone: str  # masked unless the user is an admin
    disabled: bool


def contacts_for(session: Session, user: StaffUser, household_id: str) -> list[ContactView]:
    rows = session.exec(
        select(Contact)
        .where(Contact.household_id == household_id)
        .order_by(col(Contact.priority), col(Contact.id))
    )
    return [
        ContactView(
            id=c.id,
            name=c.name,
            role=c.role.value,
            phone=c.phone if user.role == StaffRole.admin else mask_phone(c.phone),
            disabled=c.disabled_at is not None,
        )
        for c in rows
    ]


@dataclass
class UsageSlot:
    interval_end: datetime
    kwh: float | None
    band_low: float | None
    band_high: float | None


def usage_with_band(
    session: Session, household: Household, now: datetime, days: int = DETAIL_DAYS
) -> list[UsageSlot]:
    """The last ``days`` days in 30-minute slots, each with its usual band.

    The band of a slot is the 10th–90th percentile of the same local time of day over the
    ``BAND_DAYS`` days before that slot's day (none when fewer than ``BAND_MIN_DAYS`` are known),
    so a quiet day is compared with the weeks before it, not with itself.
    """
    end = _slot_floor(now)
    start = end - timedelta(days=days)
    readings = session.exec(
        select(Reading.interval_end, Reading.kwh).where(
            Reading.household_id == household.id,
            col(Reading.interval_end) > start - timedelta(days=BAND_DAYS + 1),
            col(Reading.interval_end) <= end,
        )
    ).all()
    zone = ZoneInfo(household.timezone)
    slots = pd.date_range(start + SLOT, end, freq=SLOT)
    if not readings:
        return [UsageSlot(t.to_pydatetime(), None, None, None) for t in slots]
    frame = pd.DataFrame(readings, columns=["interval_end", "kwh"])
    frame["interval_end"] = pd.to_datetime(frame["interval_end"], utc=True)
    local = frame["interval_end"].dt.tz_convert(zone)
    frame["day"] = local.dt.date
    frame["slot"] = local.dt.hour * 2 + local.dt.minute // 30
    table = frame.pivot_table(index="day", columns="slot", values="kwh", aggfunc="mean")
    all_days = pd.date_range(table.index.min(), table.index.max(), freq="D").date
    table = table.reindex(index=all_days, columns=range(48))
    # shift(1): a day's band is made from the days before it only.
    history = table.rolling(BAND_DAYS, min_periods=BAND_MIN_DAYS)
    low = history.quantile(0.1).shift(1)
    high = history.quantile(0.9).shift(1)
    values = dict(zip(frame["interval_end"], frame["kwh"], strict=True))
    out = []
    for t in slots:
        at_local = t.tz_convert(zone)
        day, slot = at_local.date(), at_local.hour * 2 + at_local.minute // 30
        lo = hi = None
        if day in low.index:
            lo, hi = low.at[day, slot], high.at[day, slot]
            lo = None if np.isnan(lo) else round(float(lo), 4)
            hi = None if np.isnan(hi) else round(float(hi), 4)
        kwh = values.get(t)
        out.append(UsageSlot(t.to_pydatetime(), None if kwh is None else float(kwh), lo, hi))
    return out


def _slot_floor(when: datetime) -> datetime:
    return pd.Timestamp(when).floor("30min").to_pydatetime()


@dataclass
class HouseholdDetail:
    household: Household
    status: HouseholdRow | None
    usage: list[UsageSlot]
    tv_events: list[TvEvent]
    incidents: list[Incident]
    findings: list[Finding]
    contacts: list[ContactView]
    silences: list[tuple[Silence, SilenceState]]

    @property
    def current_reasons(self) -> list[str]:
        """The latest finding's reasons, one per line: what the detectors say now."""
        if not self.findings:
            return []
        latest = self.findings[0]
        same_time = [f.reason for f in self.findings if f.fired_at == latest.fired_at]
        return [part.strip() for r in same_time for part in r.split(";") if part.strip()]


def household_detail(
    session: Session, user: StaffUser, household_id: str, now: datetime
) -> HouseholdDetail | None:
    household = get_household(session, user, household_id)
    if household is None:
        return None
    window_start = now - timedelta(days=DETAIL_DAYS)
    row = next(
        (r for r in list_households(session, user, now) if r.household.id == household_id), None
    )
    tv = session.exec(
        select(TvEvent)
        .where(TvEvent.household_id == household_id, col(TvEvent.at) > window_start)
        .where(col(TvEvent.at) <= now)
        .order_by(col(TvEvent.at))
    ).all()
    incidents = session.exec(
        select(Incident)
        .where(
            Incident.household_id == household_id,
            or_(
                Incident.status != IncidentStatus.resolved,
                col(Incident.opened_at) > now - RECENT_INCIDENTS,
            ),
        )
        .order_by(col(Incident.opened_at).desc())
    ).all()
    findings = session.exec(
        select(Finding)
        .where(Finding.household_id == household_id, col(Finding.fired_at) > window_start)
        .where(col(Finding.fired_at) <= now)
        .order_by(col(Finding.fired_at).desc(), col(Finding.id).desc())
    ).all()
    silences = session.exec(
        select(Silence)
        .where(Silence.household_id == household_id, col(Silence.ends_at) > now - RECENT_INCIDENTS)
        .order_by(col(Silence.starts_at).desc())
    ).all()
    return HouseholdDetail(
        household=household,
        status=row,
        usage=usage_with_band(session, household, now),
        tv_events=list(tv),
        incidents=list(incidents),
        findings=list(findings),
        contacts=contacts_for(session, user, household_id),
        silences=[(s, silence_state(s, now)) for s in silences],
    )


@dataclass
class TimelineEntry:
    at: datetime
    kind: str
    who: str
    detail: dict


def timeline(session: Session, user: StaffUser, incident: Incident) -> list[TimelineEntry]:
    """The incident's events, oldest first, contacts named with phones masked for non-admins."""
    contacts = {c.id: c for c in contacts_for(session, user, incident.household_id)}
    events = session.exec(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id)
        .order_by(col(IncidentEvent.at), col(IncidentEvent.id))
    )
    out = []
    for event in events:
        contact = contacts.get(event.contact_id)
        who = f"{contact.name} ({contact.role} {contact.phone})" if contact else ""
        if not who and event.detail and event.detail.get("user"):
            who = str(event.detail["user"])
        out.append(TimelineEntry(event.at, event.kind, who, dict(event.detail or {})))
    return out


def count_views(session: Session, user_id: int) -> int:
    return session.exec(select(func.count()).where(ViewAudit.user_id == user_id)).one()
