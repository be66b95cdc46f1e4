"""The monthly report of an organisation, and the review list of households worth a look.

Both are scoped to the staff user's organisation, like every dashboard query: another
organisation's incidents, messages and households are never counted.

The monthly report covers the incidents *opened* in a calendar month in Tokyo (the same month
the SMS budget uses). Times to acknowledgement, claim and resolution are minutes from opening;
"acknowledged" is the first moment the chain stopped (an ``acknowledged``, ``claimed`` or
``resolved`` event, whichever came first), so an incident claimed straight away still counts.

The review list holds ``review`` findings and, since no detector emits those yet, a drift check
over each household's last 28 complete local days: the daily kWh of the last 7 days against the
21 before, and the time of day of the first activity (the first 30-minute slot above the day's
minimum + 0.05 kWh), compared as medians.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlmodel import Session, col, select

from data.tables import Finding, Household, Incident, IncidentEvent, Reading, StaffUser
from data.tables.incidents import IncidentStatus
from notify.actions import Outcome
from notify.budget import BUDGET_TIMEZONE, month_window, segments_used

REPORT_TIMEZONE = BUDGET_TIMEZONE
OUTCOMES = [o.value for o in Outcome] + ["open"]
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"

REVIEW_DAYS = 28
RECENT_DAYS = 7
KWH_CHANGE = 0.30
FIRST_ACTIVITY_SHIFT = timedelta(hours=1)
ACTIVITY_ABOVE_MIN_KWH = 0.05
# A local day with fewer readings than this is left out: a half day is not a quiet day.
MIN_SLOTS_PER_DAY = 40
# Fewer known days than these on either side give no verdict.
MIN_RECENT_DAYS = 4
MIN_BEFORE_DAYS = 10
SLOT = timedelta(minutes=30)


def parse_month(month: str) -> tuple[datetime, datetime] | None:
    """``"YYYY-MM"`` as its [start, end) in Tokyo, or None when it is not a month.

    >>> start, end = parse_month("2024-12")
    >>> start.isoformat(), end.isoformat()
    ('2024-12-01T00:00:00+09:00', '2025-01-01T00:00:00+09:00')
    >>> parse_month("2024-13") is None, parse_month("24-1") is None
    (True, True)
    """
    if not re.match(MONTH_PATTERN, month):
        return None
    year, number = int(month[:4]), int(month[5:])
    if year < 1900:
        return None
    return month_window(datetime(year, number, 15, tzinfo=ZoneInfo(REPORT_TIMEZONE)))


@dataclass
class IncidentLine:
    incident_id: int
    household_id: str
    opened_at: datetime
    kind: str
    outcome: str
    minutes_to_ack: float | None
    minutes_to_claim: float | None
    minutes_to_resolve: float | None


@dataclass
class Durations:
    """Minutes from opening, over the incidents that reached the step."""

    count: int
    median: float | None
    p90: float | None


@dataclass
class MonthlyReport:
    organisation_id: str
    month: str
    starts_at: datetime
    ends_at: datetime
    incidents_by_kind: dict[str, int]
    outcomes: dict[str, int]
    to_ack: Durations
    to_claim: Durations
    to_resolve: Durations
    sms_segments: int
    incidents: list[IncidentLine] = field(default_factory=list)


def _minutes(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else round((end - start).total_seconds() / 60, 1)


def durations(values: list[float | None]) -> Durations:
    """Median and 90th percentile (linear interpolation) of the known values.

    >>> durations([10.0, 20.0, None, 30.0])
    Durations(count=3, median=20.0, p90=28.0)
    >>> durations([None])
    Durations(count=0, median=None, p90=None)
    """
    known = [v for v in values if v is not None]
    if not known:
        return Durations(0, None, None)
    return Durations(
        len(known),
        round(float(np.percentile(known, 50)), 1),
        round(float(np.percentile(known, 90)), 1),
    )


def monthly_report(session: Session, user: StaffUser, month: str) -> MonthlyReport | None:
    """The report of ``month`` (``YYYY-MM``) for the user's organisation; None if not a month."""
    window = parse_month(month)
    if window is None:
        return None
    start, end = window
    incidents = session.exec(
        select(Incident)
        .join(Household, col(Household.id) == Incident.household_id)
        .where(
            Household.organisation_id == user.organisation_id,
            col(Incident.opened_at) >= start,
            col(Incident.opened_at) < end,
        )
        .order_by(col(Incident.opened_at), col(Incident.id))
    ).all()
    firsts: dict[tuple[int, str], datetime] = {}
    if incidents:
        for incident_id, kind, at in session.exec(
            select(IncidentEvent.incident_id, IncidentEvent.kind, IncidentEvent.at)
            .where(
                col(IncidentEvent.incident_id).in_([i.id for i in incidents]),
                col(IncidentEvent.kind).in_(["acknowledged", "claimed", "resolved"]),
            )
            .order_by(col(IncidentEvent.at))
        ):
            firsts.setdefault((incident_id, kind), at)
    lines = []
    for incident in incidents:
        stopped = [
            firsts.get((incident.id, kind)) for kind in ("acknowledged", "claimed", "resolved")
        ]
        stopped = [at for at in stopped if at is not None]
        if incident.resolved_at is not None:
            stopped.append(incident.resolved_at)
        resolved = incident.status == IncidentStatus.resolved
        outcome = "open"
        if resolved:
            outcome = incident.outcome if incident.outcome in OUTCOMES else "other"
        lines.append(
            IncidentLine(
                incident_id=incident.id,
                household_id=incident.household_id,
                opened_at=incident.opened_at,
                kind=incident.kind,
                outcome=outcome,
                minutes_to_ack=_minutes(incident.opened_at, min(stopped) if stopped else None),
                minutes_to_claim=_minutes(incident.opened_at, firsts.get((incident.id, "claimed"))),
                minutes_to_resolve=_minutes(
                    incident.opened_at, incident.resolved_at if resolved else None
                ),
            )
        )
    by_kind: dict[str, int] = {}
    for line in lines:
        by_kind[line.kind] = by_kind.get(line.kind, 0) + 1
    return MonthlyReport(
        organisation_id=user.organisation_id,
        month=month,
        starts_at=start,
        ends_at=end,
        incidents_by_kind=dict(sorted(by_kind.items())),
        outcomes={o: sum(1 for line in lines if line.outcome == o) for o in OUTCOMES},
        to_ack=durations([line.minutes_to_ack for line in lines]),
        to_claim=durations([line.minutes_to_claim for line in lines]),
        to_resolve=durations([line.minutes_to_resolve for line in lines]),
        # segments_used counts the whole Tokyo month containing the instant it is given.
        sms_segments=segments_used(session, user.organisation_id, start),
        incidents=lines,
    )


CSV_HEADER = [
    "incident_id",
    "household_id",
    "opened_at",
    "kind",
    "outcome",
    "minutes_to_ack",
    "minutes_to_claim",
    "minutes_to_resolve",
]


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def report_csv(report: MonthlyReport) -> str:
    """One header line and one line per incident; times in Tokyo, ISO 8601."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    zone = ZoneInfo(REPORT_TIMEZONE)
    for line in report.incidents:
        row = asdict(line)
        row["opened_at"] = line.opened_at.astimezone(zone).isoformat(timespec="minutes")
        writer.writerow([_cell(row[name]) for name in CSV_HEADER])
    return out.getvalue()


@dataclass
class DriftTrend:
    """What the last 7 days look like against the 21 before them."""

    recent_days: int
    before_days: int
    recent_kwh_per_day: float
    before_kwh_per_day: float
    kwh_change_pct: float | None
    recent_first_activity: str | None  # local HH:MM, median over the days
    before_first_activity: str | None
    first_activity_shift_minutes: float | None


@dataclass
class ReviewItem:
    household_id: str
    household_name: str
    area: str
    source: str  # finding | drift
    reasons: list[str]
    fired_at: datetime | None = None
    score: float | None = None
    trend: DriftTrend | None = None


def _clock(minutes: float | None) -> str | None:
    if minutes is None or np.isnan(minutes):
        return None
    whole = int(round(minutes))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def drift_trend(frame: pd.DataFrame, zone: ZoneInfo, now: datetime) -> DriftTrend | None:
    """The trend of one household's readings (columns ``interval_end``, ``kwh``), or None when
    there are too few complete days to say anything.

    The days are the ``REVIEW_DAYS`` complete local days before today; a reading belongs to the
    local day its interval starts in.
    """
    today = pd.Timestamp(now).tz_convert(zone).normalize()
    first_day = today - pd.Timedelta(days=REVIEW_DAYS)
    starts = pd.to_datetime(frame["interval_end"], utc=True).dt.tz_convert(zone) - SLOT
    data = pd.DataFrame({"start": starts, "kwh": frame["kwh"].astype(float)})
    data = data[(data["start"] >= first_day) & (data["start"] < today)]
    if data.empty:
        return None
    data["day"] = data["start"].dt.normalize()
    days = data.groupby("day")
    complete = days.size()
    complete = complete[complete >= MIN_SLOTS_PER_DAY].index
    data = data[data["day"].isin(complete)]
    if data.empty:
        return None
    data = data.sort_values("start")
    daily_kwh = data.groupby("day")["kwh"].sum()
    threshold = data.groupby("day")["kwh"].transform("min") + ACTIVITY_ABOVE_MIN_KWH
    active = data[data["kwh"] > threshold]
    first = active.groupby("day")["start"].min()
    first_minutes = (first.dt.hour * 60 + first.dt.minute).astype(float)
    split = today - pd.Timedelta(days=RECENT_DAYS)
    recent, before = daily_kwh[daily_kwh.index >= split], daily_kwh[daily_kwh.index < split]
    if len(recent) < MIN_RECENT_DAYS or len(before) < MIN_BEFORE_DAYS:
        return None
    recent_mean, before_mean = float(recent.mean()), float(before.mean())
    change = (recent_mean - before_mean) / before_mean * 100 if before_mean > 0 else None
    recent_first = first_minutes[first_minutes.index >= split]
    before_first = first_minutes[first_minutes.index < split]
    recent_at = float(recent_first.median()) if len(recent_first) else None
    before_at = float(before_first.median()) if len(before_first) else None
    shift = None if recent_at is None or before_at is None else recent_at - before_at
    return DriftTrend(
        recent_days=len(recent),
        before_days=len(before),
        recent_kwh_per_day=round(recent_mean, 3),
        before_kwh_per_day=round(before_mean, 3),
        kwh_change_pct=None if change is None else round(change, 1),
        recent_first_activity=_clock(recent_at),
        before_first_activity=_clock(before_at),
        first_activity_shift_minutes=None if shift is None else round(shift, 1),
    )


def drift_reasons(trend: DriftTrend) -> list[str]:
    """Why the trend is worth a look; empty when it is not.

    >>> quiet = DriftTrend(7, 21, 2.0, 4.0, -50.0, "08:00", "06:00", 120.0)
    >>> drift_reasons(quiet)
    ['daily use -50.0% (2.0 vs 4.0 kWh/day)', 'first activity 120 min later (08:00 vs 06:00)']
    """
    reasons = []
    if trend.kwh_change_pct is not None and abs(trend.kwh_change_pct) > KWH_CHANGE * 100:
        reasons.append(
            f"daily use {trend.kwh_change_pct:+.1f}% "
            f"({trend.recent_kwh_per_day} vs {trend.before_kwh_per_day} kWh/day)"
        )
    shift = trend.first_activity_shift_minutes
    if shift is not None and shift > FIRST_ACTIVITY_SHIFT.total_seconds() / 60:
        reasons.append(
            f"first activity {shift:.0f} min later "
            f"({trend.recent_first_activity} vs {trend.before_first_activity})"
        )
    return reasons


def review_list(session: Session, user: StaffUser, now: datetime) -> list[ReviewItem]:
    """``review`` findings of the last 28 days, newest first, then households whose trend
    drifted, by id."""
    households = {
        h.id: h
        for h in session.exec(
            select(Household)
            .where(Household.organisation_id == user.organisation_id)
            .order_by(Household.id)
        )
    }
    if not households:
        return []
    items = []
    for finding in session.exec(
        select(Finding)
        .where(
            col(Finding.household_id).in_(list(households)),
            Finding.kind == "review",
            col(Finding.fired_at) > now - timedelta(days=REVIEW_DAYS),
            col(Finding.fired_at) <= now,
        )
        .order_by(col(Finding.fired_at).desc(), col(Finding.id).desc())
    ):
        h = households[finding.household_id]
        items.append(
            ReviewItem(
                h.id, h.name, h.area, "finding", [finding.reason], finding.fired_at, finding.score
            )
        )
    # Two days of slack on the window: local days in zones ahead of UTC start before it.
    readings = session.exec(
        select(Reading.household_id, Reading.interval_end, Reading.kwh).where(
            col(Reading.household_id).in_(list(households)),
            col(Reading.interval_end) > now - timedelta(days=REVIEW_DAYS + 2),
            col(Reading.interval_end) <= now,
        )
    ).all()
    if not readings:
        return items
    frame = pd.DataFrame(readings, columns=["household_id", "interval_end", "kwh"])
    for household_id, rows in frame.groupby("household_id", sort=True):
        h = households[household_id]
        trend = drift_trend(rows, ZoneInfo(h.timezone), now)
        reasons = drift_reasons(trend) if trend is not None else []
        if reasons:
            items.append(ReviewItem(h.id, h.name, h.area, "drift", reasons, trend=trend))
    return items
