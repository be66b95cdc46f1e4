"""``areawatch run`` as a real process: it pulls, it is alone, it stops cleanly, it is replaced,
and killed in the middle of a pull it loses nothing and sends nothing twice.

Timings are shortened through the settings file (pulls every 0.6 s, heartbeat 0.5 s, a lease
stale after 3 s); the first tests run the service on real time, the last on a simulated clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlmodel import Session, col, func, select

from data.synthetic import inject_incident, simulate_households, write_csv
from data.tables import (
    Contact,
    DetectorCheckpoint,
    Incident,
    Notification,
    Reading,
    ReadingCorrection,
)
from tests.fakes.fake_meter_api import FakeMeterApi
from tests.fakes.fake_twilio import FakeTwilio
from tests.watch.ops.conftest import count_readings, reading_rows
from watch.app import App
from watch.clock import FrozenClock
from watch.scheduler import read_lease
from watch.settings import Settings

pytestmark = pytest.mark.slow

STALE_SECONDS = 3


@pytest.fixture
def config(tmp_path: Path, drop: Path) -> Path:
    path = tmp_path / "areawatch.toml"
    path.write_text(
        f'[[sources]]\nname = "meter"\nkind = "readings"\npath = "{drop}"\n'
        "every_minutes = 0.01\nsettle_seconds = 0.2\n"
        "[scheduler]\nescalate_seconds = 1\nheartbeat_seconds = 0.5\n"
        f"lease_stale_seconds = {STALE_SECONDS}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def start(database, config: Path, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen]]:
    """Start ``areawatch run`` on the test database; every process is gone after the test."""
    processes: list[subprocess.Popen] = []

    def launch() -> subprocess.Popen:
        log = open(tmp_path / f"run-{len(processes)}.log", "wb")  # noqa: SIM115
        args = [sys.executable, "-m", "watch.cli", "-v", "run"]
        args += ["--config", str(config), "--database-url", database.url]
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        process.log_path = log.name  # type: ignore[attr-defined]
        processes.append(process)
        return process

    yield launch
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _drop(folder: Path, name: str, rows) -> Path:  # noqa: ANN001
    # Written beside, then renamed in: how a careful sender delivers (and a .part is ignored).
    part = folder / f"{name}.part"
    part.write_text(
        "household_id,timestamp,kwh\n" + "".join(",".join(row) + "\n" for row in rows),
        encoding="utf-8",
    )
    os.replace(part, folder / name)
    return folder / name


def _wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    # A generous bound, not a timing assert: starting python on a loaded machine takes seconds.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"not within {seconds} s: {condition.__doc__ or condition}")


def _holder_pid(engine) -> int | None:  # noqa: ANN001
    lease = read_lease(engine)
    if not lease or not lease["holder"]:
        return None
    return int(lease["holder"].split(":")[1])


def _output(process) -> str:  # noqa: ANN001
    return Path(process.log_path).read_text(encoding="utf-8", errors="replace")


def _recent(hours: int) -> datetime:
    # The service runs on the real clock: readings must not lie in its future.
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours)


def test_it_pulls_dropped_files_refuses_a_second_instance_and_stops_cleanly(
    database, drop, start, make_resident
):
    engine = database.engine
    make_resident("h1")
    first = start()
    _wait_for(lambda: _holder_pid(engine) == first.pid)
    _drop(drop, "meter-1.csv", reading_rows("h1", 4, _recent(2)))
    _wait_for(lambda: count_readings(engine) == 4)
    _wait_for(lambda: not (drop / "meter-1.csv").exists())
    assert list((drop / "archive").glob("*/meter-1.csv"))

    second = start()
    assert second.wait(timeout=60) == 1
    assert "another scheduler is running" in _output(second)
    assert first.poll() is None

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0, _output(first)
    assert read_lease(engine)["holder"] is None
    with engine.connect() as connection:
        jobs = set(connection.execute(text("SELECT id FROM apscheduler_jobs")).scalars())
    assert jobs == {"pull:meter", "escalate", "maintain"}

    third = start()
    _wait_for(lambda: _holder_pid(engine) == third.pid)
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=30) == 0, _output(third)


def test_after_a_kill_the_next_instance_takes_over_once_the_lease_is_stale(
    database, drop, start, make_resident
):
    engine = database.engine
    make_resident("h1")
    killed = start()
    _wait_for(lambda: _holder_pid(engine) == killed.pid)
    _drop(drop, "meter-1.csv", reading_rows("h1", 4, _recent(2)))
    _wait_for(lambda: count_readings(engine) == 4)
    killed.kill()
    killed.wait(timeout=10)
    assert _holder_pid(engine) == killed.pid  # nobody released it

    # (Started at once, the successor might still find the lease fresh and refuse; python's start
    # takes seconds here, so wait out the staleness to make the takeover certain.)
    time.sleep(STALE_SECONDS)
    successor = start()
    _wait_for(lambda: _holder_pid(engine) == successor.pid)
    # A re-send overlapping what was loaded, plus two new readings.
    _drop(drop, "meter-1.csv", reading_rows("h1", 6, _recent(2)))
    _wait_for(lambda: not list(drop.glob("*.csv")))
    assert count_readings(engine) == 6
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(ReadingCorrection)).one() == 0
    successor.send_signal(signal.SIGTERM)
    assert successor.wait(timeout=30) == 0, _output(successor)
    assert read_lease(engine)["holder"] is None


# -- killed in the middle of a pull, on a simulated clock -----------------------------------
# One resident goes quiet at 06:00 on day 10 (synthetic, data.synthetic); ten days of history are
# loaded as a file, then the service pulls the rest, an hour at a time, from a fake meter API
# (readings one per page, so every pull has several pages) and a fake CATV API. The service's
# clock is a file the test rewrites (AREAWATCH_NOW=@file); APScheduler runs on real time, pulling
# every 0.6 s, so each simulated hour is pulled, scored and escalated before the next.
SIM_START = pd.Timestamp("2025-01-06 00:00", tz="Asia/Tokyo")
SIM_ONSET = SIM_START + pd.Timedelta(days=10, hours=6)
HOUR = timedelta(hours=1)
METER_TOKEN_ENV = "AREAWATCH_TEST_METER_TOKEN"


class TrappingMeterApi(FakeMeterApi):
    """The fake meter API, able to hold one request for a second page until released.

    Armed, the next ``/readings`` request for page 2 sets ``reached`` and gets no answer: the
    pulling process has committed page 1 and is waiting inside the pull, where it is killed.
    """

    def __init__(self) -> None:
        super().__init__(token="meter-token")
        self.armed = threading.Event()
        self.reached = threading.Event()
        self.release = threading.Event()

    def do_get(self, handler) -> None:  # noqa: ANN001
        query = parse_qs(urlsplit(handler.path).query)
        if (
            self.armed.is_set()
            and handler.path.startswith("/readings")
            and query.get("page") == ["2"]
        ):
            self.armed.clear()
            self.reached.set()
            self.release.wait(timeout=60)
            return  # the client is dead by now: no answer
        super().do_get(handler)


def _records(frame: pd.DataFrame, after: datetime, until: datetime) -> list[dict]:
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    chosen = frame[(stamps > after) & (stamps <= until)]
    return [{key: _json(value) for key, value in row.items()} for row in chosen.to_dict("records")]


def _json(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return None if pd.isna(value) else value


def _set_clock(path: Path, when: datetime) -> None:
    part = path.with_suffix(".part")
    part.write_text(when.isoformat(), encoding="utf-8")
    os.replace(part, path)


def _scored_until(engine) -> datetime | None:  # noqa: ANN001
    with Session(engine) as session:
        return session.exec(select(func.min(DetectorCheckpoint.scored_until))).one()


def _escalation_caught_up(engine, now: datetime) -> bool:  # noqa: ANN001
    """No open incident has a step due, and no message waits to be sent."""
    with Session(engine) as session:
        due = session.exec(
            select(func.count())
            .select_from(Incident)
            .where(Incident.status == "open", col(Incident.next_step_at) <= now)
        ).one()
        unsent = session.exec(
            select(func.count())
            .select_from(Notification)
            .where(col(Notification.status).in_(("pending", "sending")))
        ).one()
    return due == 0 and unsent == 0


def test_killed_mid_pull_it_loads_every_reading_once_and_sends_every_due_step_once(
    database, tmp_path
):
    engine = database.engine
    readings, tv, households, contacts = simulate_households(1, SIM_START, 12, seed=11)
    household = households["household_id"].iloc[0]
    readings, tv = inject_incident(
        readings, tv, household, SIM_ONSET, "quiet", np.random.default_rng(5)
    )
    begin = (SIM_ONSET - HOUR).to_pydatetime().astimezone(UTC)

    # The town joins with its past: roster and ten days of history, loaded as files.
    history = App.from_settings(
        Settings(database_url=database.url), clock=FrozenClock(begin), channels={}
    )
    files = {
        "households.csv": ("roster", households),
        "contacts.csv": ("roster", contacts),
        "readings.csv": (
            "readings",
            readings[pd.to_datetime(readings["timestamp"], utc=True) <= begin],
        ),
        "tv.csv": ("tv", tv[pd.to_datetime(tv["timestamp"], utc=True) <= begin]),
    }
    for name, (kind, frame) in files.items():
        write_csv(frame, tmp_path / name)
        assert history.ingest(kind, tmp_path / name).rows_quarantined == 0
    history.engine.dispose()

    clock_file = tmp_path / "now.txt"
    _set_clock(clock_file, begin)
    with TrappingMeterApi() as api, FakeTwilio() as twilio:
        config = tmp_path / "sim.toml"
        config.write_text(
            f'[[sources]]\nname = "meter"\ntype = "http_json"\nkind = "readings"\n'
            f'url = "{api.base_url}/readings"\ntoken_env = "{METER_TOKEN_ENV}"\n'
            "page_size = 1\nevery_minutes = 0.01\nstale_after_minutes = 180\n"
            f'[[sources]]\nname = "catv"\ntype = "http_json"\nkind = "tv"\n'
            f'url = "{api.base_url}/events"\ntoken_env = "{METER_TOKEN_ENV}"\n'
            "page_size = 50\nevery_minutes = 0.01\nstale_after_minutes = 180\n"
            f'[twilio]\nbase_url = "{twilio.base_url}"\n'
            "[scheduler]\nescalate_seconds = 0.5\nheartbeat_seconds = 0.5\n"
            # The state held in memory is written once a minute of data past the checkpoint,
            # that is after every run here, so the checkpoint's cursor (what ``settled`` waits
            # for) follows each run; the kill below also throws away held state.
            "[detection]\nresident_flush_minutes = 1\n",
            encoding="utf-8",
        )
        environment = {
            **os.environ,
            "AREAWATCH_NOW": f"@{clock_file}",
            METER_TOKEN_ENV: api.token,
            "AREAWATCH_CHANNEL": "sms",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "twilio-token",
            "AREAWATCH_TWILIO_FROM": "+815000000000",
        }
        environment.pop("AREAWATCH_CONFIG", None)
        processes: list[subprocess.Popen] = []

        def launch() -> subprocess.Popen:
            log = open(tmp_path / f"sim-{len(processes)}.log", "wb")  # noqa: SIM115
            args = [sys.executable, "-m", "watch.cli", "-v", "run", "--config", str(config)]
            args += ["--database-url", database.url]
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=environment)
            process.log_path = log.name  # type: ignore[attr-defined]
            processes.append(process)
            return process

        def step(now: datetime, before: datetime) -> None:
            """Move the clock an hour; the APIs now hold that hour's records."""
            # The clock first: a pull that starts in between must not see records from its
            # future (they would be quarantined as such, and the counts would be one short).
            _set_clock(clock_file, now)
            api.readings.extend(_records(readings, before, now))
            api.events.extend(_records(tv, before, now))

        def settled(now: datetime) -> None:
            """Wait until the hour is pulled, scored and escalated."""
            expected = len(readings[pd.to_datetime(readings["timestamp"], utc=True) <= now])
            _wait_for(lambda: count_readings(engine) == expected, 30)
            _wait_for(lambda: (_scored_until(engine) or begin) >= now, 30)
            _wait_for(lambda: _escalation_caught_up(engine, now), 30)

        try:
            service = launch()
            _wait_for(lambda: _holder_pid(engine) == service.pid, 60)
            now, opened_at, killed = begin, None, False
            for _hour in range(20):
                before, now = now, now + HOUR
                kill_now = opened_at is not None and not killed and now >= opened_at + HOUR
                if kill_now:
                    api.armed.set()
                step(now, before)
                if kill_now:
                    assert api.reached.wait(30), _output(service)
                    service.send_signal(signal.SIGKILL)  # waiting for page 2 of the pull
                    service.wait(timeout=10)
                    api.release.set()
                    # Page 1 of the hour (one reading) was committed; page 2 was never read.
                    loaded = pd.to_datetime(readings["timestamp"], utc=True) <= before
                    assert count_readings(engine) == int(loaded.sum()) + 1
                    killed = True
                    before, now = now, now + HOUR  # the restart comes an hour later
                    step(now, before)
                    service = launch()
                    restarted = service.pid
                    _wait_for(lambda: _holder_pid(engine) == restarted, 60)  # noqa: B023
                settled(now)
                with Session(engine) as session:
                    incident = session.exec(
                        select(Incident).where(Incident.household_id == household)
                    ).first()
                if incident is not None and opened_at is None:
                    opened_at = incident.opened_at
                if killed and now >= opened_at + 6 * HOUR:
                    break
            assert killed, "the household never went quiet enough to open an incident"
            time.sleep(2)  # a few more escalation ticks: nothing may be sent twice
            assert _escalation_caught_up(engine, now)
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=20) == 0, _output(service)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
            api.release.set()

    # Every reading delivered is in the database exactly once, never "corrected".
    delivered = readings[pd.to_datetime(readings["timestamp"], utc=True) <= now]
    assert count_readings(engine) == len(delivered)
    with Session(engine) as session:
        stored = session.exec(select(Reading.interval_end)).all()
        expected = pd.to_datetime(delivered["timestamp"], utc=True)
        assert sorted(stored) == sorted(stamp.to_pydatetime() for stamp in expected)
        assert session.exec(select(func.count()).select_from(ReadingCorrection)).one() == 0
        incident = session.exec(select(Incident).where(Incident.household_id == household)).one()
        asks = session.exec(
            select(Notification, Contact)
            .join(Contact, col(Contact.id) == Notification.contact_id)
            .where(Notification.incident_id == incident.id)
            .order_by(Notification.step_index, Notification.id)
        ).all()
        every_notification = session.exec(select(Notification)).all()

    # Every message the fake Twilio received belongs to exactly one outbox row, and every outbox
    # row was sent: nothing twice, nothing missing.
    received = Counter(message.sid for message in twilio.messages)
    assert every_notification and all(n.status == "sent" for n in every_notification)
    texts = [n for n in every_notification if n.channel == "sms"]
    assert sorted(received) == sorted(n.provider_id for n in texts)
    assert set(received.values()) == {1}
    # Every step due by the end was taken, in the policy's order: the resident, family, the
    # volunteers one at a time, then staff, reminded every 30 minutes.
    assert incident.status == "open" and incident.next_step_at > now
    steps = sorted({n.step_index for n, _ in asks})
    assert steps == list(range(len(steps))) and len(steps) >= 5
    assert incident.step_index in (len(steps) - 1, len(steps))  # the step in hand, or the next
    roles = [{c.role for n, c in asks if n.step_index == s} for s in steps]
    assert roles[:4] == [{"resident"}, {"family"}, {"volunteer"}, {"staff"}]
    assert all(r == {"staff"} for r in roles[4:])
    volunteers = [c.id for n, c in asks if c.role == "volunteer"]
    assert len(volunteers) == len(set(volunteers)) == 2
