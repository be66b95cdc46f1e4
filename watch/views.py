"""What the command line shows: status and the demo summary, as rich tables.

Phone numbers are masked here as everywhere: the console may be captured in a log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from data.sources.base import source_health
from data.tables import (
    Contact,
    Household,
    Incident,
    IncidentEvent,
    Ingest,
    Notification,
    Organisation,
    Reading,
)
from data.tables.operations import SourceCursor
from notify.budget import sms_budget_status
from notify.channels.base import mask_phone


def local(when: datetime | None, zone: str = "Asia/Tokyo") -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") if when else ""


@dataclass
class StatusSnapshot:
    now: datetime
    # Household is None for an operator incident about a data source (``source_stale``).
    open_incidents: list[tuple[Incident, Household | None]]
    silent_households: list[tuple[Household, datetime | None]]
    ingests: list[Ingest]
    pending_messages: int
    sms_budgets: list[tuple[Organisation, int, int | None]]
    sources: list[SourceCursor]


def collect_status(engine: Engine, now: datetime, silent_after: timedelta = timedelta(hours=6)):
    with Session(engine) as session:
        open_incidents = session.exec(
            select(Incident, Household)
            .join(Household, Household.id == Incident.household_id, isouter=True)
            .where(Incident.status != "resolved")
            .order_by(Incident.opened_at)
        ).all()
        last_reading = dict(
            session.exec(
                select(Reading.household_id, func.max(Reading.interval_end)).group_by(
                    Reading.household_id
                )
            ).all()
        )
        silent = [
            (household, last_reading.get(household.id))
            for household in session.exec(select(Household).order_by(Household.id))
            if last_reading.get(household.id) is None
            or last_reading[household.id] < now - silent_after
        ]
        ingests = session.exec(select(Ingest).order_by(Ingest.id.desc()).limit(10)).all()
        budgets = [
            (organisation, *sms_budget_status(session, organisation.id, now))
            for organisation in session.exec(select(Organisation).order_by(Organisation.id))
        ]
        pending = session.exec(
            select(func.count())
            .select_from(Notification)
            .where(Notification.status.in_(["pending", "sending"]))
        ).one()
        sources = source_health(session)
    return StatusSnapshot(
        now, list(open_incidents), silent, list(ingests), pending, budgets, sources
    )


def render_status(console: Console, status: StatusSnapshot) -> None:
    table = Table(title=f"Open incidents at {local(status.now)}")
    for column in ("incident", "household", "area", "kind", "status", "opened", "why"):
        table.add_column(column)
    for incident, household in status.open_incidents:
        table.add_row(
            str(incident.id),
            household.id if household else f"source {incident.source}",
            household.area if household else "",
            incident.kind,
            incident.status,
            local(incident.opened_at, household.timezone)
            if household
            else local(incident.opened_at),
            incident.reason,
        )
    console.print(table)
    for line in stale_source_lines(status):
        # Plain text: a source's name is the operator's own and may hold rich markup brackets.
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    silent = Table(title="Households with no meter data for 6 h or more")
    silent.add_column("household")
    silent.add_column("last reading")
    for household, last in status.silent_households:
        silent.add_row(household.id, local(last, household.timezone) if last else "never")
    console.print(silent)
    ingests = Table(title="Last ingests")
    for column in ("id", "kind", "source", "finished", "read", "quarantined"):
        ingests.add_column(column)
    for run in status.ingests:
        ingests.add_row(
            str(run.id),
            run.kind,
            run.source,
            local(run.finished_at) or "unfinished",
            str(run.rows_read),
            str(run.rows_quarantined),
        )
    console.print(ingests)
    sources = Table(title="Sources")
    for column in ("source", "last success", "lag", "last error"):
        sources.add_column(column)
    for source in status.sources:
        lag = _hours(status.now - source.last_success_at) if source.last_success_at else "never"
        error = ""
        if source.last_error and (
            source.last_success_at is None or source.last_error_at > source.last_success_at
        ):
            error = f"{local(source.last_error_at)}: {source.last_error}"
        sources.add_row(source.source, local(source.last_success_at) or "never", lag, error)
    console.print(sources)
    console.print(f"Messages waiting to be sent: {status.pending_messages}")
    budgets = Table(title="SMS this month (segments)")
    for column in ("organisation", "used", "budget"):
        budgets.add_column(column)
    for organisation, used, budget in status.sms_budgets:
        budgets.add_row(organisation.id, str(used), "unlimited" if budget is None else str(budget))
    console.print(budgets)


def stale_source_lines(status: StatusSnapshot) -> list[str]:
    """One line per open ``source_stale`` incident: which source, since when, for how long.

    The incident table above lists it too, but squeezed into a column; this says it plainly.
    """
    lines = []
    for incident, household in status.open_incidents:
        if household is not None or incident.source is None:
            continue
        since = incident.since or incident.opened_at
        lines.append(
            f"STALE SOURCE {incident.source}: no successful pull since {local(since)} "
            f"({_hours(status.now - since)} ago), incident {incident.id} ({incident.status})"
        )
    return lines


def incident_timeline(session: Session, incident_id: int) -> list[IncidentEvent]:
    return list(
        session.exec(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.at, IncidentEvent.id)
        )
    )


def contact_label(contact: Contact | None) -> str:
    if contact is None:
        return "operators"
    return f"{contact.role} {mask_phone(contact.phone)}"


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def _short(when: datetime | None, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M") if when else ""


def render_demo(console: Console, result) -> None:  # noqa: ANN001  (watch.demo.DemoResult)
    zone = {h.id: h.timezone for h in result.households}
    onsets: dict[str, tuple[datetime, str]] = {}
    if result.labels is not None:
        for row in result.labels.itertuples():
            onsets[row.household_id] = (datetime.fromisoformat(row.onset), row.variant)

    counts: dict[str, int] = {}
    for incident in result.incidents:
        counts[incident.household_id] = counts.get(incident.household_id, 0) + 1
    areas: dict[str, list[str]] = {}
    for household in result.households:
        areas.setdefault(household.area, []).append(
            f"{household.id}({counts[household.id]})" if household.id in counts else household.id
        )
    table = Table(title=f"Households watched: {len(result.households)} (incidents in brackets)")
    table.add_column("area")
    table.add_column("households")
    for area, members in sorted(areas.items()):
        table.add_row(area, " ".join(members))
    console.print(table)

    incidents = Table(title="Incidents found (local times)")
    for column in ("#", "household", "kind", "quiet since", "raised", "truth", "outcome"):
        incidents.add_column(column)
    reasons = []
    for incident in result.incidents:
        tz = zone.get(incident.household_id, "Asia/Tokyo")
        onset = onsets.get(incident.household_id)
        if incident.kind != "inactivity":
            truth = "data outage"
        elif onset and onset[0] <= incident.opened_at <= onset[0] + timedelta(hours=48):
            truth = f"[red]{onset[1]}[/red], +{_hours(incident.opened_at - onset[0])}"
        else:
            truth = "false alarm"
        incidents.add_row(
            str(incident.id),
            incident.household_id,
            incident.kind,
            _short(incident.since, tz),
            _short(incident.opened_at, tz),
            truth,
            incident.outcome or incident.status,
        )
        reasons.append(f"  #{incident.id} {incident.household_id}: {incident.reason}")
    console.print(incidents)
    console.print("Why each was raised:")
    for line in reasons:
        console.print(line, highlight=False)

    messages = Table(title="Messages: what would have been sent, to whom (phones masked)")
    for column in ("sent", "#", "to", "purpose", "message"):
        messages.add_column(column)
    household_of = {i.id: i.household_id for i in result.incidents}
    for notification, contact in result.messages:
        tz = zone.get(household_of.get(notification.incident_id), "Asia/Tokyo")
        status = "" if notification.status == "sent" else f" ({notification.status})"
        messages.add_row(
            _short(notification.sent_at or notification.created_at, tz),
            str(notification.incident_id),
            contact_label(contact),
            notification.purpose + status,
            notification.body,
        )
    console.print(messages)
    real = sum(
        1
        for i in result.incidents
        if i.kind == "inactivity"
        and (o := onsets.get(i.household_id))
        and o[0] <= i.opened_at <= o[0] + timedelta(hours=48)
    )
    console.print(
        f"\nReplayed {result.start:%Y-%m-%d} to {result.end:%Y-%m-%d} (simulated clock) in "
        f"{result.wall_seconds:.0f} s: {len(result.incidents)} incidents, {real} of the "
        f"{len(onsets)} labelled collapses found, {len(result.messages)} messages.\n"
        "Explore further:\n"
        f"  areawatch status --database-url {result.database_url}\n"
        f"  areawatch backtest --readings {result.workdir / 'sample' / 'readings.csv.gz'} "
        f"--labels {result.workdir / 'sample' / 'labels.csv'} --alerts-out alerts.csv\n"
        f"  the sample files are in {result.workdir / 'sample'}"
    )


def render_timeline(console: Console, engine: Engine, incident_id: int) -> bool:
    """Print one incident and its events; False when there is no such incident."""
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return False
        household = session.get(Household, incident.household_id)
        zone = household.timezone if household else "Asia/Tokyo"
        contacts = {
            c.id: c
            for c in session.exec(
                select(Contact).where(Contact.household_id == incident.household_id)
            )
        }
        events = incident_timeline(session, incident_id)
    console.print(
        f"Incident {incident.id}: {incident.household_id} {incident.kind} ({incident.status}"
        f"{', ' + incident.outcome if incident.outcome else ''}), opened "
        f"{local(incident.opened_at, zone)}: {incident.reason}",
        highlight=False,
    )
    table = Table()
    for column in ("time", "event", "who", "detail"):
        table.add_column(column)
    for event in events:
        detail = ", ".join(f"{k}={v}" for k, v in (event.detail or {}).items() if v is not None)
        table.add_row(
            local(event.at, zone),
            event.kind,
            contact_label(contacts.get(event.contact_id)) if event.contact_id else "",
            detail,
        )
    console.print(table)
    return True
