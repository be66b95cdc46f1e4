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
from watch.source_health import SOURCE_STALE

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


@dataclass(frozen=True)
class HouseholdBrief:
    """What the list and the map show of a household (read as plain columns: the list of a
    town of thousands is built without loading an ORM object per household)."""

    id: str
    name: str
    area: str
    timezone: str
    lat: float | None
    lon: float | None


@dataclass
class HouseholdRow:
    household: HouseholdBrief
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


@dataclass(frozen=True)
class _Since:
    at: datetime
    reason: str


def list_households(
    session: Session,
    user: StaffUser,
    now: datetime,
    *,
    area: str | None = None,
    status: HouseholdStatus | None = None,
    household_id: str | None = None,
) -> list[HouseholdRow]:
    """The user's households (or the one named), most urgent first, then longest waiting, then
    by id.

    Four queries whatever the size of the organisation: each joins ``Household`` under the same
    filters instead of listing thousands of ids in an ``IN (...)``.
    """
    scope = [_scoped(user)]
    if area:
        scope.append(col(Household.area) == area)
    if household_id is not None:
        scope.append(col(Household.id) == household_id)
    households = [
        HouseholdBrief(*row)
        for row in session.execute(
            select(
                Household.id,
                Household.name,
                Household.area,
                Household.timezone,
                Household.lat,
                Household.lon,
            )
            .where(*scope)
            .order_by(Household.id)
        )
    ]
    if not households:
        return []

    def joined(*columns):  # noqa: ANN001, ANN202
        return select(*columns).join(Household, col(Household.id) == columns[0]).where(*scope)

    incidents: dict[str, list[tuple[int, str, datetime, str]]] = {}
    for hid, incident_id, kind, opened_at, reason in session.execute(
        joined(
            Incident.household_id, Incident.id, Incident.kind, Incident.opened_at, Incident.reason
        )
        .where(Incident.status != IncidentStatus.resolved)
        .order_by(col(Incident.opened_at), col(Incident.id))
    ):
        incidents.setdefault(hid, []).append((incident_id, kind, opened_at, reason))
    silences: dict[str, _Since] = {}
    for hid, starts_at, reason in session.execute(
        joined(Silence.household_id, Silence.starts_at, Silence.reason)
        .where(*_active_silence_clause(now))
        .order_by(col(Silence.starts_at))
    ):
        silences.setdefault(hid, _Since(starts_at, reason))
    latest: dict[str, _Since] = {}
    for hid, fired_at, reason in session.execute(
        joined(Finding.household_id, Finding.fired_at, Finding.reason)
        .where(col(Finding.fired_at) > now - WATCH_WINDOW)
        .order_by(col(Finding.fired_at).desc(), col(Finding.id).desc())
    ):
        latest.setdefault(hid, _Since(fired_at, reason))
    rows = []
    for household in households:
        open_incidents = incidents.get(household.id, [])
        silence = silences.get(household.id)
        finding = latest.get(household.id)
        found = household_status(
            {kind for _, kind, _, _ in open_incidents},
            silence is not None,
            finding.at if finding else None,
            now,
        )
        since, reason = None, ""
        if found in (HouseholdStatus.alert, HouseholdStatus.outage):
            _, _, since, reason = next(i for i in open_incidents if i[1] == _kind_of(found))
        elif found is HouseholdStatus.silenced:
            since, reason = silence.at, silence.reason
        elif found is HouseholdStatus.watch:
            since, reason = finding.at, finding.reason
        rows.append(HouseholdRow(household, found, since, reason, [i[0] for i in open_incidents]))
    if status is not None:
        rows = [r for r in rows if r.status == status]
    far_future = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda r: (SEVERITY_RANK[r.status], r.since or far_future, r.household.id))
    return rows


def _kind_of(status: HouseholdStatus) -> str:
    return "inactivity" if status is HouseholdStatus.alert else "outage"


@dataclass(frozen=True)
class StaleSource:
    """An open ``source_stale`` incident, as the area page's banner shows it."""

    incident_id: int
    source: str
    since: datetime


def sees_operations(user: StaffUser) -> bool:
    """Whether ``user`` is shown the deployment's operational warnings (stale data sources).

    A data source has no organisation (``[[sources]]`` belongs to the deployment, and one feed
    may serve several organisations' households), so the warning cannot be scoped like a
    household. It carries no personal data, only the source's configured name and times, and
    the households fed by it may look silent to every organisation: so admins and staff of
    every organisation see it. Viewers do not: they read only and cannot act on a feed.
    """
    return user.role in (StaffRole.admin, StaffRole.staff)


def stale_sources(session: Session, user: StaffUser) -> list[StaleSource]:
    """The sources with an open ``source_stale`` incident, longest stale first; none for a user
    who does not see operations (see ``sees_operations``)."""
    if not sees_operations(user):
        return []
    rows = session.exec(
        select(Incident.id, Incident.source, Incident.since, Incident.opened_at)
        .where(
            col(Incident.household_id).is_(None),
            col(Incident.source).is_not(None),
            Incident.kind == SOURCE_STALE,
            Incident.status != IncidentStatus.resolved,
        )
        .order_by(col(Incident.opened_at), col(Incident.id))
    ).all()
    found = [StaleSource(i, source, since or opened) for i, source, since, opened in rows]
    return sorted(found, key=lambda s: (s.since, s.incident_id))


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


def get_silence(
    session: Session, user: StaffUser, household_id: str, silence_id: int
) -> Silence | None:
    """The household's silence if the household belongs to the user's organisation, else None."""
    return session.exec(
        select(Silence)
        .join(Household, col(Household.id) == Silence.household_id)
        .where(Silence.id == silence_id, Silence.household_id == household_id, _scoped(user))
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


def chart_range(now: datetime, days: int = DETAIL_DAYS) -> tuple[datetime, datetime]:
    """The readings a chart of the last ``days`` days reads: those ending after the first time
    and up to the second (the band needs the ``BAND_DAYS`` days before, and one more day for
    local days that straddle UTC ones)."""
    end = _slot_floor(now)
    return end - timedelta(days=days + BAND_DAYS + 1), end


def chart_readings(session: Session, household_id: str, now: datetime, days: int = DETAIL_DAYS):  # noqa: ANN201
    """``(interval_end, kwh)`` of the readings the chart of ``household_id`` reads."""
    after, end = chart_range(now, days)
    return session.exec(
        select(Reading.interval_end, Reading.kwh).where(
            Reading.household_id == household_id,
            col(Reading.interval_end) > after,
            col(Reading.interval_end) <= end,
        )
    ).all()


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
    readings = chart_readings(session, household.id, now, days)
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
    # Looked up for all slots at once: a per-slot .at[] costs ~0.2 s over 14 days.
    local_slots = slots.tz_convert(zone)
    day_rows = low.index.get_indexer(pd.Index(local_slots.date))
    slot_cols = np.asarray(local_slots.hour * 2 + local_slots.minute // 30)
    known = day_rows >= 0
    rows = np.where(known, day_rows, 0)
    lows = np.where(known, low.to_numpy()[rows, slot_cols], np.nan)
    highs = np.where(known, high.to_numpy()[rows, slot_cols], np.nan)
    kwh = frame.set_index("interval_end")["kwh"].reindex(slots).to_numpy()
    return [
        UsageSlot(
            t,
            None if np.isnan(k) else float(k),
            None if np.isnan(lo) else round(lo, 4),
            None if np.isnan(hi) else round(hi, 4),
        )
        for t, k, lo, hi in zip(
            slots.to_pydatetime(), kwh.tolist(), lows.tolist(), highs.tolist(), strict=True
        )
    ]


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
    row = next(iter(list_households(session, user, now, household_id=household_id)), None)
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
