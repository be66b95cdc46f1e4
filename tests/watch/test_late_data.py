"""Late and corrected readings: each lands in its own interval; none raises a second alert.

What the product does, asserted here:

- A reading that arrives late (within ``data_grace_minutes``) is stored under its interval and
  scored there: detection waits for it rather than counting the slot as "no data".
- Detection scores each slot once. Readings arriving after their slot was scored (a backlog after
  a gap, a utility's correction) are stored, but they never reopen the episode or raise a second
  finding or incident for it.
- Late activity inside an already-alerted quiet stretch does not close the incident: the slots
  after it are still quiet, so the resident is still unaccounted for, and escalation goes on.
  The incident closes when fresh readings show activity again (recovery).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, col, select

from data.synthetic import inject_incident, simulate_households, write_csv
from data.tables import DetectorCheckpoint, Finding, Incident, Reading, ReadingCorrection
from notify.channels.memory import MemoryChannel
from watch.app import App
from watch.clock import FrozenClock
from watch.settings import Settings

START = pd.Timestamp("2025-01-06 00:00", tz="Asia/Tokyo")
ONSET = START + pd.Timedelta(days=10, hours=6)  # a Thursday morning: the routine never starts
STEP = timedelta(minutes=30)


@dataclass
class Resident:
    household_id: str
    normal: pd.DataFrame  # readings of ordinary life, all through
    quiet: pd.DataFrame  # the same, gone quiet from ONSET
    tv: pd.DataFrame
    households: pd.DataFrame
    contacts: pd.DataFrame


@pytest.fixture(scope="module")
def resident() -> Resident:
    readings, tv, households, contacts = simulate_households(1, START, 12, seed=11)
    household_id = households["household_id"].iloc[0]
    quiet, quiet_tv = inject_incident(
        readings, tv, household_id, ONSET, "quiet", np.random.default_rng(5)
    )
    return Resident(household_id, readings, quiet, quiet_tv, households, contacts)


class Feed:
    """An app on a frozen clock, and a meter that delivers chosen readings when told."""

    def __init__(self, database, resident: Resident, folder: Path) -> None:  # noqa: ANN001
        self.resident = resident
        self.folder = folder
        self.clock = FrozenClock((ONSET - pd.Timedelta(hours=2)).to_pydatetime())
        self.app = App.from_settings(
            Settings(database_url=database.url),
            clock=self.clock,
            channels={"sms": MemoryChannel(), "console": MemoryChannel()},
        )
        self._files = 0
        for name, frame in (("households", resident.households), ("contacts", resident.contacts)):
            write_csv(frame, folder / f"{name}.csv")
            self.app.ingest("roster", folder / f"{name}.csv")
        start = pd.Timestamp(0, tz="UTC").to_pydatetime()
        self.deliver(resident.quiet, start, self.clock.now())
        self.deliver(resident.tv, start, self.clock.now(), kind="tv")
        self.app.detect()

    def deliver(self, frame, after: datetime, until: datetime, kind: str = "readings"):  # noqa: ANN001
        """Ingest, at the clock's time, the rows of ``frame`` ending in (after, until]."""
        stamps = pd.to_datetime(frame["timestamp"], utc=True)
        rows = frame[(stamps > after) & (stamps <= until)]
        if rows.empty:
            return None
        self._files += 1
        path = write_csv(rows, self.folder / f"{kind}-{self._files}.csv")
        return self.app.ingest(kind, path)

    def tick(self, *, meter: pd.DataFrame | None, tv: bool = True) -> None:
        """Half an hour passes; the meter's new slot is delivered (unless ``meter`` is None)."""
        before = self.clock.now()
        now = self.clock.advance(STEP)
        if meter is not None:
            self.deliver(meter, before, now)
        if tv:
            self.deliver(self.resident.tv, before, now, kind="tv")
        self.app.detect()
        self.app.escalate()

    def incidents(self, kind: str = "inactivity") -> list[Incident]:
        with Session(self.app.engine) as session:
            return list(
                session.exec(
                    select(Incident).where(
                        Incident.household_id == self.resident.household_id, Incident.kind == kind
                    )
                )
            )

    def alerts(self, kind: str = "inactivity") -> list[Finding]:
        with Session(self.app.engine) as session:
            return list(
                session.exec(
                    select(Finding).where(Finding.kind == kind, Finding.severity == "alert")
                )
            )

    def scored_until(self) -> datetime:
        with Session(self.app.engine) as session:
            return session.exec(select(DetectorCheckpoint.scored_until)).one()

    def walk_until_alerted(self) -> Incident:
        for _ in range(48):
            self.tick(meter=self.resident.quiet)
            if self.incidents():
                (incident,) = self.incidents()
                return incident
        pytest.fail("the quiet resident never raised an alert")


@pytest.fixture
def feed(database, resident, tmp_path) -> Feed:
    feed = Feed(database, resident, tmp_path)
    yield feed
    feed.app.engine.dispose()


def _reading(feed: Feed, end: datetime) -> Reading:
    with Session(feed.app.engine) as session:
        return session.exec(
            select(Reading).where(
                Reading.household_id == feed.resident.household_id, Reading.interval_end == end
            )
        ).one()


def test_a_reading_late_within_the_grace_lands_in_its_interval_and_is_scored_there(feed):
    slot = feed.clock.now() + STEP
    feed.tick(meter=None)  # the slot ends; its reading is late
    feed.tick(meter=None)
    assert feed.scored_until() < slot, "within the grace the slot waits for its reading"

    arrived = feed.clock.advance(timedelta(minutes=15))
    feed.deliver(feed.resident.quiet, slot - STEP, slot)
    feed.app.detect()

    reading = _reading(feed, slot)
    expected = feed.resident.quiet
    expected = expected[pd.to_datetime(expected["timestamp"], utc=True) == slot]["kwh"].iloc[0]
    assert reading.kwh == pytest.approx(expected)
    assert reading.received_at == arrived
    assert feed.scored_until() >= slot


def test_a_backlog_after_a_gap_raises_no_second_alert_for_the_same_episode(feed):
    incident = feed.walk_until_alerted()
    assert len(feed.alerts()) == 1
    gap_start = feed.clock.now()
    for _ in range(5):  # two and a half hours without meter data: past the grace
        feed.tick(meter=None)
    # Slots older than the grace were scored as "no data"; the newest wait for their readings.
    assert gap_start < feed.scored_until() < feed.clock.now()

    # The utility delivers the gap late (still quiet), then the current slot on time.
    backlog = feed.deliver(feed.resident.quiet, gap_start, feed.clock.now())
    assert backlog.rows_inserted == 5
    feed.tick(meter=feed.resident.quiet)
    # ... and sends the same backlog file again.
    assert feed.deliver(feed.resident.quiet, gap_start, feed.clock.now() - STEP).rows_inserted == 0
    feed.tick(meter=feed.resident.quiet)

    assert [i.id for i in feed.incidents()] == [incident.id]
    assert feed.incidents()[0].status == "open"
    assert len(feed.alerts()) == 1
    with Session(feed.app.engine) as session:
        stored = session.exec(
            select(Reading.interval_end).where(
                col(Reading.interval_end) > gap_start,
                col(Reading.interval_end) <= gap_start + 5 * STEP,
            )
        ).all()
    assert len(stored) == 5  # each in its own interval


def test_late_activity_inside_an_alerted_stretch_keeps_the_incident_until_recovery(feed):
    incident = feed.walk_until_alerted()
    alerted_at = feed.clock.now()
    # A correction arrives for a slot an hour back, inside the quiet stretch: the meter's ordinary
    # value there (the resident up and about), not the standby the first delivery said.
    slot = alerted_at - 2 * STEP
    normal = feed.resident.normal
    active = normal[pd.to_datetime(normal["timestamp"], utc=True) == slot].copy()
    active["kwh"] = 0.9
    report = feed.deliver(active, slot - STEP, slot)
    assert report.rows_corrected == 1
    assert _reading(feed, slot).kwh == pytest.approx(0.9)
    with Session(feed.app.engine) as session:
        assert len(session.exec(select(ReadingCorrection)).all()) == 1

    for _ in range(2):  # still quiet since: the incident stays open and escalation goes on
        feed.tick(meter=feed.resident.quiet)
    (still,) = feed.incidents()
    assert still.id == incident.id and still.status == "open"
    assert still.step_index > 0, "escalation went on"
    assert len(feed.alerts()) == 1

    # Fresh readings show the resident active again: the incident closes on recovery.
    for _ in range(8):
        feed.tick(meter=normal)
        if feed.incidents()[0].status == "resolved":
            break
    (closed,) = feed.incidents()
    assert closed.status == "resolved"
    assert len(feed.alerts()) == 1


def test_a_reading_overtaken_by_a_newer_one_is_still_waited_for_within_the_grace(feed):
    missing = feed.clock.now() + STEP
    newer = missing + STEP
    feed.clock.advance(2 * STEP)
    feed.deliver(feed.resident.quiet, missing, newer)  # the newer slot arrives first
    feed.app.detect()
    assert feed.scored_until() < missing, "the missing slot is within the grace: wait for it"
