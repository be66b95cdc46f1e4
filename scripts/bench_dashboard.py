"""How fast the dashboard answers for an organisation of 5,000 households.

Builds an organisation (5,000 households in 10 areas with coordinates; 14 days of 30-minute
readings for some, 6 weeks for the household that is timed; open and resolved incidents,
findings, silences; a timeline on the timed incident), then times, through the real app in
FastAPI's TestClient, logged in as a staff member: the area view, a household page, an incident
page, the API's household list and the map's GeoJSON. Each is requested ``--repeat`` times after
one warm-up; prints the median and 95th percentile in milliseconds. Target: under 300 ms each.

Example::

    python scripts/bench_dashboard.py                      # a fresh SQLite file in a temp dir
    python scripts/bench_dashboard.py --database-url postgresql://postgres@127.0.0.1:5432/empty
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import insert, inspect, text
from sqlmodel import Session

from data.db import init_db, make_engine
from data.tables import (
    Contact,
    Finding,
    Household,
    Incident,
    IncidentEvent,
    Organisation,
    Reading,
    Silence,
)
from watch.clock import FrozenClock
from watch.settings import Settings
from watch.web import auth, create_app

NOW = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
ORG = "bench"
PASSWORD = "benchmark password"
TIMED = "B00000"  # the household and incident whose pages are timed


def _insert(session: Session, table: type, rows: list[dict], batch: int = 20_000) -> None:
    for start in range(0, len(rows), batch):
        session.execute(insert(table), rows[start : start + batch])


def build(engine, households: int, with_readings: int, seed: int = 7) -> int:  # noqa: ANN001
    """Fill the database; returns the timed incident's id."""
    rng = np.random.default_rng(seed)
    ids = [f"B{i:05d}" for i in range(households)]
    with Session(engine) as session:
        session.add(Organisation(id=ORG, name="Benchmark town"))
        session.flush()
        _insert(
            session,
            Household,
            [
                {
                    "id": hid,
                    "organisation_id": ORG,
                    "name": f"Resident {i}",
                    "area": f"Area {i % 10}",
                    "address": "",
                    "lat": 36.0 + (i % 10) * 0.01 + rng.uniform(0, 0.008),
                    "lon": 139.0 + (i // 10 % 10) * 0.01 + rng.uniform(0, 0.008),
                    "timezone": "Asia/Tokyo",
                    "policy": "default",
                }
                for i, hid in enumerate(ids)
            ],
        )
        _insert(
            session,
            Contact,
            [
                {
                    "household_id": TIMED,
                    "name": name,
                    "role": role,
                    "phone": f"+8190000{n:05d}",
                    "language": "ja",
                    "priority": n,
                }
                for n, (name, role) in enumerate(
                    [("Resident", "resident"), ("Son", "family"), ("Ward office", "staff")]
                )
            ],
        )
        slots = 48 * 14
        readings = []
        for n, hid in enumerate([TIMED, *ids[1:with_readings]]):
            count = 48 * 42 if n == 0 else slots
            ends = [NOW - timedelta(minutes=30 * k) for k in range(1, count + 1)]
            kwh = rng.gamma(2.0, 0.08, size=count).round(3)
            readings.extend(
                {
                    "household_id": hid,
                    "interval_end": end,
                    "kwh": float(v),
                    "interval_minutes": 30,
                    "received_at": end,
                }
                for end, v in zip(ends, kwh, strict=True)
            )
        _insert(session, Reading, readings)
        incidents = []
        # 150 open inactivity alerts, 50 outages, 500 resolved in the last month.
        for n, hid in enumerate(ids[:700]):
            opened = NOW - timedelta(hours=int(rng.integers(1, 600)))
            status = "open" if n < 200 else "resolved"
            incidents.append(
                {
                    "household_id": hid,
                    "kind": "outage" if 150 <= n < 200 else "inactivity",
                    "severity": "alert",
                    "status": status,
                    "reason": "no electricity use for 14 hours",
                    "score": 0.9,
                    "opened_at": opened,
                    "since": opened - timedelta(hours=12),
                    "step_index": 0,
                    "resolved_at": None if status == "open" else opened + timedelta(hours=1),
                    "outcome": None if status == "open" else "fine",
                    "version": 0,
                }
            )
        _insert(session, Incident, incidents)
        timed_incident = session.execute(
            text("SELECT id FROM incident WHERE household_id = :h AND status = 'open'"),
            {"h": TIMED},
        ).scalar_one()
        _insert(
            session,
            IncidentEvent,
            [
                {
                    "incident_id": timed_incident,
                    "at": NOW - timedelta(minutes=90 - 3 * k),
                    "kind": ("step", "message", "delivery", "reply")[k % 4],
                    "detail": {"step": k // 4},
                }
                for k in range(24)
            ],
        )
        _insert(
            session,
            Finding,
            [
                {
                    "household_id": hid,
                    "kind": "inactivity",
                    "severity": "watch",
                    "score": 0.7,
                    "reason": "quieter than usual this morning",
                    "fired_at": NOW - timedelta(hours=int(rng.integers(1, 20 * 24))),
                }
                for hid in ids[:1500]
                for _ in range(3)
            ],
        )
        _insert(
            session,
            Silence,
            [
                {
                    "household_id": hid,
                    "reason": "in hospital",
                    "starts_at": NOW - timedelta(days=2),
                    "ends_at": NOW + timedelta(days=5),
                    "created_by": "bench",
                    "created_at": NOW - timedelta(days=2),
                }
                for hid in ids[1000:1100]
            ],
        )
        session.commit()
        auth.create_user(
            session=session,
            organisation_id=ORG,
            username="bench",
            password=PASSWORD,
            role="staff",
            now=NOW,
        )
        session.commit()
    return timed_incident


def _time(client: TestClient, path: str, repeat: int) -> list[float]:
    assert client.get(path).status_code == 200, path  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--households", type=int, default=5000)
    parser.add_argument("--with-readings", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    workdir = tempfile.TemporaryDirectory(prefix="bench-dashboard-")
    url = args.database_url or f"sqlite:///{Path(workdir.name) / 'bench.db'}"
    engine = make_engine(url)
    if inspect(engine).get_table_names():
        raise SystemExit(f"{url} is not empty: give the benchmark an empty database of its own")
    init_db(engine)
    # Production hashing cost is for logins, not for what is measured here.
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024)
    started = time.perf_counter()
    incident_id = build(engine, args.households, args.with_readings)
    print(
        f"built {args.households} households on {engine.dialect.name} in "
        f"{time.perf_counter() - started:.1f} s"
    )
    app = create_app(
        engine=engine,
        settings=Settings(database_url=url),
        clock=FrozenClock(NOW),
        session_secret="bench",
    )
    pages = {
        "area view (/)": "/",
        "household page": f"/households/{TIMED}",
        "incident page": f"/incidents/{incident_id}",
        "API list (/api/households)": "/api/households",
        "API map (/api/map)": "/api/map",
    }
    with TestClient(app) as client:
        form = client.get("/login").text
        token = form.split('name="csrf_token" value="')[1].split('"')[0]
        login = client.post(
            "/login",
            data={"username": "bench", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert login.status_code == 303
        print(f"{'page':30} {'median ms':>10} {'p95 ms':>10} {'bytes':>10}")
        for name, path in pages.items():
            times = _time(client, path, args.repeat)
            size = len(client.get(path).content)
            p95 = float(np.percentile(times, 95))
            print(f"{name:30} {statistics.median(times):10.1f} {p95:10.1f} {size:10,}")
    engine.dispose()
    workdir.cleanup()


if __name__ == "__main__":
    main()
