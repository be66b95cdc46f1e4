"""``areawatch demo``: the bundled sample, replayed through the whole pipeline in under a minute.

Everything is ingested first. The first four weeks are learned as history in one detection run
(a backfill, as when a town joins with past readings); then a simulated clock walks the last four
weeks in 30-minute ticks: the detectors see only readings whose interval has ended by the clock's
time, and escalation
ticks every five simulated minutes while an incident is in flight. A small script plays the
people who answer (a volunteer who cannot go, one who can, and what they find), so the summary
shows a whole escalation. Messages go to a recording channel, never to a phone.
"""

from __future__ import annotations

import heapq
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path

import pandas as pd
from sqlmodel import Session, col, select

from data.db import make_engine
from data.tables import Contact, Finding, Household, Incident, Notification, StaffUser
from notify.actions import resolve
from notify.channels.console import ConsoleChannel
from notify.replies import handle_inbound_sms
from watch.app import App
from watch.clock import FrozenClock
from watch.settings import Settings

TICK = timedelta(minutes=30)
ESCALATION_STEP = timedelta(minutes=5)
HISTORY = timedelta(weeks=4)
SAMPLE = files("data") / "sample"


@dataclass
class DemoResult:
    workdir: Path
    database_url: str
    start: datetime
    end: datetime
    wall_seconds: float
    households: list[Household] = field(default_factory=list)
    labels: pd.DataFrame | None = None
    findings: list[Finding] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    messages: list[tuple[Notification, Contact | None]] = field(default_factory=list)


@dataclass(order=True)
class _Scripted:
    at: datetime
    order: int
    action: str = field(compare=False)
    args: tuple = field(compare=False)


class _People:
    """Plays the people who answer, so the demo shows whole escalations.

    Where the sample's labels say the resident really collapsed, nobody at home answers, family
    are busy, the first volunteer asked cannot go and the next one can, and finds the resident
    needing help. Anywhere else the alert was a false alarm: the resident, back from an outing,
    answers the check-in "1" a few minutes later, which closes the incident.
    """

    def __init__(self, onsets: dict[str, datetime]) -> None:
        self.onsets = onsets
        self.queue: list[_Scripted] = []
        self.seen: set[int] = set()
        self.declined: set[int] = set()
        self._order = 0

    def _at(self, when: datetime, action: str, *args) -> None:  # noqa: ANN002
        self._order += 1
        heapq.heappush(self.queue, _Scripted(when, self._order, action, args))

    def _really_collapsed(self, incident: Incident) -> bool:
        onset = self.onsets.get(incident.household_id)
        return onset is not None and onset <= incident.opened_at <= onset + timedelta(hours=48)

    def notice(self, session: Session) -> None:
        sent = session.exec(
            select(Notification, Contact, Incident)
            .join(Contact, Contact.id == Notification.contact_id)
            .join(Incident, Incident.id == Notification.incident_id)
            .where(Notification.purpose == "ask", col(Notification.sent_at).is_not(None))
        ).all()
        for notification, contact, incident in sent:
            if notification.id in self.seen:
                continue
            self.seen.add(notification.id)
            if not self._really_collapsed(incident):
                if contact.role == "resident":
                    self._at(
                        notification.sent_at + timedelta(minutes=7), "reply", contact.phone, "1"
                    )
            elif contact.role == "volunteer":
                if incident.id not in self.declined:
                    self.declined.add(incident.id)
                    self._at(
                        notification.sent_at + timedelta(minutes=4), "reply", contact.phone, "2"
                    )
                else:
                    self._at(
                        notification.sent_at + timedelta(minutes=6),
                        "reply",
                        contact.phone,
                        "はい、行きます",
                    )
                    self._at(
                        notification.sent_at + timedelta(minutes=40),
                        "resolve",
                        incident.id,
                        contact.id,
                    )

    def act_until(self, app: App, now: datetime) -> None:
        while self.queue and self.queue[0].at <= now:
            item = heapq.heappop(self.queue)
            if item.action == "reply":
                handle_inbound_sms(
                    engine=app.engine, from_phone=item.args[0], body=item.args[1], now=item.at
                )
            else:
                resolve(
                    engine=app.engine,
                    incident_id=item.args[0],
                    outcome="needed_help",
                    now=item.at,
                    contact_id=item.args[1],
                    note="Found on the floor, conscious; ambulance called.",
                )


def _sample_bounds() -> tuple[datetime, datetime]:
    readings = pd.read_csv(SAMPLE / "readings.csv.gz", usecols=["timestamp"])
    stamps = pd.to_datetime(readings["timestamp"], utc=True)
    return stamps.min().to_pydatetime(), stamps.max().to_pydatetime()


def run_demo(*, workdir: Path, progress=None) -> DemoResult:  # noqa: ANN001
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "areawatch.db"
    for stale in workdir.glob("areawatch.db*"):
        stale.unlink()
    url = f"sqlite:///{database}"
    first_end, last_end = _sample_bounds()
    clock = FrozenClock(last_end + timedelta(hours=1))
    channel = ConsoleChannel()  # logs masked lines; the summary reads the outbox
    app = App.from_settings(
        Settings(database_url=url), clock=clock, channels={"sms": channel, "console": channel}
    )
    app.init_db()
    sample_dir = workdir / "sample"
    shutil.rmtree(sample_dir, ignore_errors=True)
    sample_dir.mkdir()
    for name in ("households.csv", "contacts.csv", "readings.csv.gz", "tv.csv.gz", "labels.csv"):
        (sample_dir / name).write_bytes((SAMPLE / name).read_bytes())
    if progress:
        progress.print(f"Loading the sample into {database} ...")
    app.ingest("roster", sample_dir / "households.csv")
    app.ingest("roster", sample_dir / "contacts.csv")
    app.ingest("readings", sample_dir / "readings.csv.gz")
    app.ingest("tv", sample_dir / "tv.csv.gz")

    if progress:
        progress.print("Learning 4 weeks of history, then replaying 4 weeks in 30-minute ticks ...")
    labels = pd.read_csv(sample_dir / "labels.csv")
    people = _People(
        {row.household_id: datetime.fromisoformat(row.onset) for row in labels.itertuples()}
    )
    # Onboarding: the first weeks arrive as history, learned in one detection run (a backfill,
    # as when a town joins with past readings); the rest is replayed live, tick by tick.
    tick = first_end - TICK + HISTORY
    clock.set(tick)
    app.detect()
    while tick < last_end:
        tick += TICK
        clock.set(tick)
        app.detect()
        _escalate_until(app, clock, people, tick + TICK)
    for _ in range(24):  # let incidents opened at the very end play out for two hours
        clock.advance(ESCALATION_STEP)
        _escalate_once(app, clock, people)

    result = DemoResult(
        workdir=workdir, database_url=url, start=first_end, end=clock.now(), wall_seconds=0.0
    )
    with Session(app.engine) as session:
        result.households = list(session.exec(select(Household).order_by(Household.id)))
        result.findings = list(session.exec(select(Finding).order_by(Finding.fired_at)))
        result.incidents = list(session.exec(select(Incident).order_by(Incident.opened_at)))
        result.messages = list(
            session.exec(
                select(Notification, Contact)
                .join(Contact, Contact.id == Notification.contact_id, isouter=True)
                .order_by(Notification.created_at, Notification.id)
            )
        )
    result.labels = labels
    app.engine.dispose()
    result.wall_seconds = time.perf_counter() - started
    return result


def _escalate_until(app: App, clock: FrozenClock, people: _People, next_tick: datetime) -> None:
    """Escalate now, then every 5 simulated minutes until the next tick while anything is live."""
    _escalate_once(app, clock, people)
    while clock.now() + ESCALATION_STEP < next_tick and (_in_flight(app) or people.queue):
        clock.advance(ESCALATION_STEP)
        _escalate_once(app, clock, people)


def _escalate_once(app: App, clock: FrozenClock, people: _People) -> None:
    people.act_until(app, clock.now())
    app.escalate()
    with Session(app.engine) as session:
        people.notice(session)


def _in_flight(app: App) -> bool:
    with Session(app.engine) as session:
        return (
            session.exec(select(Incident.id).where(Incident.status != "resolved").limit(1)).first()
            is not None
        )


#: The account ``areawatch demo --serve`` creates; its password is made afresh on every run.
DEMO_USERNAME = "demo"
DEMO_ORGANISATION = "default"


def create_demo_login(*, database_url: str, now: datetime) -> tuple[str, str]:
    """A staff account on the demo database, replacing any from an earlier run: (name, password).

    The password is random: the account exists only on this throw-away database, but a demo
    server left running on a shared machine should still not open with a guessable password.
    """
    from watch.web.auth import create_user

    password = secrets.token_urlsafe(12)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            for old in session.exec(select(StaffUser).where(StaffUser.username == DEMO_USERNAME)):
                session.delete(old)
            session.flush()
            create_user(
                session=session,
                organisation_id=DEMO_ORGANISATION,
                username=DEMO_USERNAME,
                password=password,
                role="staff",
                now=now,
            )
            session.commit()
    finally:
        engine.dispose()
    return DEMO_USERNAME, password


def demo_server(*, result: DemoResult, host: str, port: int):  # noqa: ANN201  (uvicorn.Server)
    """The dashboard on the demo database, its clock stopped where the replay ended, so the
    pages show the replayed weeks as if they were the last ones."""
    from watch.web.server import make_server

    return make_server(
        settings=Settings(database_url=result.database_url),
        host=host,
        port=port,
        clock=FrozenClock(result.end),
    )
