"""``areawatch run`` as a real process: it pulls, it is alone, it stops cleanly, it is replaced.

Timings are shortened through the settings file (pulls every 0.6 s, heartbeat 0.5 s, a lease
stale after 3 s); the service itself runs on real time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, func, select

from data.tables import ReadingCorrection
from tests.watch.ops.conftest import count_readings, reading_rows
from watch.scheduler import read_lease

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


def _wait_for(condition: Callable[[], bool], seconds: float = 12) -> None:
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
    assert second.wait(timeout=15) == 1
    assert "another scheduler is running" in _output(second)
    assert first.poll() is None

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0, _output(first)
    assert read_lease(engine)["holder"] is None
    with engine.connect() as connection:
        jobs = set(connection.execute(text("SELECT id FROM apscheduler_jobs")).scalars())
    assert jobs == {"pull:meter", "escalate", "maintain"}

    third = start()
    _wait_for(lambda: _holder_pid(engine) == third.pid)
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=10) == 0, _output(third)


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
    assert successor.wait(timeout=10) == 0, _output(successor)
    assert read_lease(engine)["holder"] is None
