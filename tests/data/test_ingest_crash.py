"""Kill -9 an ingest half-way, run it again, and get exactly what one clean run gives."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, insert, select

from data.db import make_engine
from data.ingest import ingest_readings
from data.tables import Household, Ingest, Reading

pytestmark = pytest.mark.slow

NOW = datetime(2025, 1, 6, tzinfo=UTC)
HOUSEHOLDS = 100
PER_HOUSEHOLD = 3_000  # 300k readings, 30-minute intervals ending before NOW
CHUNK_ROWS = 10_000
PRELOADED = 500  # readings already stored with another value: each must be corrected once

_INGEST_SCRIPT = """
import sys
from datetime import UTC, datetime
from data.db import make_engine
from data.ingest import ingest_readings
ingest_readings(engine=make_engine(sys.argv[1]), path=sys.argv[2],
                now=datetime.fromisoformat(sys.argv[3]), chunk_rows=int(sys.argv[4]))
"""


def write_readings(path) -> None:
    rng = np.random.default_rng(7)
    ends = pd.date_range(end=NOW, periods=PER_HOUSEHOLD, freq="30min")
    stamps = ends.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
    frame = pd.DataFrame(
        {
            "household_id": np.repeat([f"h{i:03d}" for i in range(HOUSEHOLDS)], PER_HOUSEHOLD),
            "timestamp": np.tile(stamps, HOUSEHOLDS),
            "kwh": rng.integers(0, 2000, HOUSEHOLDS * PER_HOUSEHOLD) / 1000,
        }
    )
    frame.sample(frac=1, random_state=3).to_csv(path, index=False)  # rows in no helpful order


def prepare(url: str) -> None:
    engine = make_engine(url)
    ids = [f"h{i:03d}" for i in range(HOUSEHOLDS)]
    ends = pd.date_range(end=NOW, periods=PRELOADED, freq="30min").to_pydatetime()
    with engine.begin() as connection:
        connection.execute(insert(Household), [{"id": i, "name": "Resident"} for i in ids])
        connection.execute(
            insert(Reading),
            [
                {"household_id": "h000", "interval_end": end, "kwh": 99.0, "received_at": NOW}
                for end in ends
            ],
        )
    engine.dispose()


def snapshot(url: str) -> tuple[list[tuple], list[tuple]]:
    """Every reading and correction, as the driver returns them (both databases share a backend)."""
    engine = make_engine(url)
    with engine.connect() as connection:
        readings = connection.exec_driver_sql(
            "SELECT household_id, interval_end, kwh, interval_minutes, received_at FROM reading "
            "ORDER BY household_id, interval_end"
        ).all()
        corrections = connection.exec_driver_sql(
            "SELECT household_id, interval_end, old_kwh, new_kwh FROM readingcorrection "
            "ORDER BY household_id, interval_end"
        ).all()
    engine.dispose()
    return [tuple(r) for r in readings], [tuple(c) for c in corrections]


def reading_count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Reading)).scalar_one()


def test_a_run_killed_mid_file_and_rerun_equals_one_clean_run(
    database, make_fresh_database, tmp_path
):
    path = tmp_path / "readings.csv"
    write_readings(path)
    total = HOUSEHOLDS * PER_HOUSEHOLD
    prepare(database.url)
    clean_url = make_fresh_database()
    prepare(clean_url)

    process = subprocess.Popen(
        [sys.executable, "-c", _INGEST_SCRIPT, database.url, str(path), NOW.isoformat(),
         str(CHUNK_ROWS)]
    )  # fmt: skip
    count_at_kill = 0
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        count = reading_count(database.engine)
        if PRELOADED + 2 * CHUNK_ROWS <= count < total - 2 * CHUNK_ROWS:
            os.kill(process.pid, signal.SIGKILL)
            count_at_kill = count
            break
        time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the ingest was not caught half-way"
    assert PRELOADED < count_at_kill < total

    rerun = ingest_readings(engine=database.engine, path=path, now=NOW, chunk_rows=CHUNK_ROWS)
    clean = ingest_readings(engine=make_engine(clean_url), path=path, now=NOW)

    assert rerun.rows_inserted + rerun.rows_unchanged + rerun.rows_corrected == total
    assert clean.rows_corrected == PRELOADED and clean.rows_inserted == total - PRELOADED
    crashed_readings, crashed_corrections = snapshot(database.url)
    clean_readings, clean_corrections = snapshot(clean_url)
    assert len(crashed_readings) == total
    assert crashed_readings == clean_readings
    assert crashed_corrections == clean_corrections  # each corrected once, never twice
    with database.engine.connect() as connection:
        unfinished = connection.execute(
            select(func.count()).select_from(Ingest).where(Ingest.finished_at.is_(None))
        ).scalar_one()
    assert unfinished == 1  # the killed run stays marked as cut short
