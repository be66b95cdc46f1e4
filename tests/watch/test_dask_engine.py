"""The dask engine: households scored on a local cluster of worker processes give exactly the
findings, incidents and checkpoints of the single-process run, and a crash mid-run loses nothing.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select

from data.synthetic import inject_incident, simulate_households, write_csv
from data.tables import DetectorCheckpoint, Finding, Incident
from tests.conftest import _sqlite_database
from tests.watch.conftest import app_with_files
from watch.app import App, _AppIncidentHooks
from watch.settings import DetectionSettings

distributed = pytest.importorskip("distributed")

START = pd.Timestamp("2025-01-06 00:00", tz="Asia/Tokyo")
DAYS = 17
ONSET = START + pd.Timedelta(days=15, hours=6)
COLLAPSED, LAMP, GAP, SILENCED = "H001", "H005", "H007", "H004"


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each: every household crosses a process boundary."""
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        silence_logs=40,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    """Eight residents; one collapses, one leaves a lamp on, one meter stops for a day."""
    folder = tmp_path_factory.mktemp("dask-town")
    readings, tv, households, contacts = simulate_households(8, START, DAYS, seed=23)
    rng = np.random.default_rng(3)
    readings, tv = inject_incident(readings, tv, COLLAPSED, ONSET, "quiet", rng)
    readings, tv = inject_incident(
        readings, tv, LAMP, ONSET - pd.Timedelta(hours=20), "lamp_on", rng
    )
    stamps = readings["timestamp"]
    gap = (readings["household_id"] == GAP) & (stamps > START + pd.Timedelta(days=14, hours=3))
    readings = readings[~(gap & (stamps <= START + pd.Timedelta(days=15, hours=3)))]
    files = {"households": households, "contacts": contacts, "readings": readings, "tv": tv}
    return {name: write_csv(frame, folder / f"{name}.csv") for name, frame in files.items()}


def _app(database, town, detection: DetectionSettings) -> App:
    now = (START + pd.Timedelta(days=DAYS, hours=1)).to_pydatetime()
    return app_with_files(database, town, detection, now)


def _scenario(app: App) -> list[tuple]:
    """A backfill, a silence, ticks through a collapse, a resident vouching: each run's report."""
    from notify.actions import resolve
    from notify.silences import create_silence

    with Session(app.engine) as session:
        starts = (START + pd.Timedelta(days=13)).to_pydatetime()
        create_silence(
            session=session,
            household_id=SILENCED,
            reason="staying with family",
            starts_at=starts,
            ends_at=starts + timedelta(days=5),
            created_by="staff:test",
            now=starts,
        )
        session.commit()
    reports = []

    def detect_at(when) -> None:  # noqa: ANN001
        app.clock.set(pd.Timestamp(when).to_pydatetime())
        report = app.detect()
        reports.append(
            (
                report.households_scored,
                report.slots_scored,
                [(f.household_id, f.kind, f.severity, f.since) for f in report.findings],
                report.incidents_opened,
                report.incidents_resolved,
            )
        )

    detect_at(START + pd.Timedelta(days=13, hours=12))  # onboarding: the history in one run
    for hours in range(0, 60, 6):
        detect_at(START + pd.Timedelta(days=14, hours=hours))
        with Session(app.engine) as session:
            collapse = session.exec(
                select(Incident).where(
                    Incident.household_id == COLLAPSED, Incident.status != "resolved"
                )
            ).first()
        if collapse is not None and hours >= 42:
            resolve(engine=app.engine, incident_id=collapse.id, outcome="fine", now=app.clock.now())
    return reports


def _outcome(app: App):  # noqa: ANN202
    with Session(app.engine) as session:
        findings = session.exec(select(Finding).order_by(Finding.id)).all()
        incidents = session.exec(select(Incident).order_by(Incident.id)).all()
        checkpoints = session.exec(
            select(DetectorCheckpoint).order_by(DetectorCheckpoint.household_id)
        ).all()
    return (
        [
            (f.household_id, f.kind, f.severity, f.since, f.fired_at, f.reason, f.score)
            for f in findings
        ],
        [
            (i.id, i.household_id, i.kind, i.severity, i.since, i.opened_at, i.status, i.outcome)
            for i in incidents
        ],
        [(c.household_id, c.scored_until) for c in checkpoints],
    )


def _assert_same(local, dask) -> None:  # noqa: ANN001
    local_findings, local_incidents, local_cursors = local
    dask_findings, dask_incidents, dask_cursors = dask
    assert [f[:-1] for f in dask_findings] == [f[:-1] for f in local_findings]
    assert [f[-1] for f in dask_findings] == pytest.approx(
        [f[-1] for f in local_findings], rel=0, abs=1e-9
    )
    assert dask_incidents == local_incidents
    assert dask_cursors == local_cursors


@pytest.mark.parametrize(
    "twin_databases",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_scoring_on_a_dask_cluster_gives_the_single_process_results(twin_databases, town, cluster):
    local_db, dask_db = twin_databases
    local_app = _app(local_db, town, DetectionSettings())
    dask_app = _app(
        dask_db, town, DetectionSettings(engine="dask", scheduler=cluster.scheduler_address)
    )

    local_reports = _scenario(local_app)
    dask_reports = _scenario(dask_app)

    assert dask_reports == local_reports
    local, dask = _outcome(local_app), _outcome(dask_app)
    _assert_same(local, dask)
    # The scenario did reach what it is meant to compare, not only quiet households.
    findings, incidents, cursors = local
    assert {(i[1], i[2]) for i in incidents} >= {(COLLAPSED, "inactivity"), (GAP, "outage")}
    assert any(i[1] == COLLAPSED and i[7] == "fine" for i in incidents)
    assert len(cursors) == 8 and len({c[1] for c in cursors}) <= 2  # the gap may lag


class Boom(Exception):
    """Stands for the coordinator dying between two chunks' commits."""


def test_a_crash_while_the_cluster_scores_ahead_loses_no_household_and_doubles_none(
    sqlite_database, tmp_path, town, cluster, monkeypatch
):
    import watch.detect as detect_module
    from watch.engines import open_engine

    app = _app(sqlite_database, town, DetectionSettings())
    now = (START + pd.Timedelta(days=15, hours=14)).to_pydatetime()
    real_upsert = detect_module.upsert
    calls = {"n": 0}

    def upsert_then_die(session, model, rows, key):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 2:
            raise Boom
        real_upsert(session, model, rows, key=key)

    monkeypatch.setattr(detect_module, "upsert", upsert_then_die)
    with pytest.raises(Boom), open_engine("dask", cluster.scheduler_address) as scoring:
        detect_module.run_detection(
            engine=app.engine,
            now=now,
            data_grace=timedelta(0),
            households_per_transaction=3,
            hooks=_AppIncidentHooks(),
            scoring=scoring,
        )
    monkeypatch.setattr(detect_module, "upsert", real_upsert)
    with Session(app.engine) as session:
        assert len(session.exec(select(DetectorCheckpoint)).all()) == 3, "the first chunk only"
    with open_engine("dask", cluster.scheduler_address) as scoring:
        detect_module.run_detection(
            engine=app.engine,
            now=now,
            data_grace=timedelta(0),
            households_per_transaction=3,
            hooks=_AppIncidentHooks(),
            scoring=scoring,
        )

    reference = _app(_fresh_sqlite(tmp_path), town, DetectionSettings())
    detect_module.run_detection(
        engine=reference.engine, now=now, data_grace=timedelta(0), hooks=_AppIncidentHooks()
    )
    crashed, straight = _outcome(app), _outcome(reference)
    # Re-run after the crash equals one uninterrupted run; findings' fired_at/ids aside.
    assert sorted(f[:4] for f in crashed[0]) == sorted(f[:4] for f in straight[0])
    assert crashed[2] == straight[2]
    assert len(crashed[0]) == len(set(f[:4] for f in crashed[0])), "no finding written twice"


def _fresh_sqlite(tmp_path):  # noqa: ANN202
    folder = tmp_path / "reference"
    folder.mkdir()
    return next(_sqlite_database(folder))


def test_detect_says_clearly_when_no_scheduler_answers(sqlite_database):
    import socket

    from typer.testing import CliRunner

    from watch.cli import app as cli

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(
        cli,
        [
            "detect",
            "--database-url",
            sqlite_database.url,
            "--engine",
            "dask",
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
        ],
    )
    said = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 2, said
    assert f"no Dask scheduler answered at tcp://127.0.0.1:{port}" in said
