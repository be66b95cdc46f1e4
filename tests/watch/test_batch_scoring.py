"""Vectorised scoring (``watch.batch_scoring``) gives what scoring one interval at a time gives:
the same findings, incidents, cursors and saved detector state, run after run."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select

import watch.batch_scoring as batch_scoring
from data.synthetic import inject_incident, simulate_households, write_csv
from data.tables import DetectorCheckpoint, Finding, Incident
from detectors.batch_quiet import QuietStretchState
from tests.watch.conftest import app_with_files
from watch.app import App
from watch.settings import DetectionSettings
from watch.state_rows import household_state

START = pd.Timestamp("2025-01-06 00:00", tz="Asia/Tokyo")
DAYS = 17
ONSET = START + pd.Timedelta(days=15, hours=6)
HOMES = 20
COLLAPSED, LAMP, TV, GAP, SILENCED = "H001", "H005", "H009", "H007", "H004"


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    """Twenty residents: a collapse, a lamp and a TV left on, a meter that stops for a day."""
    folder = tmp_path_factory.mktemp("batch-town")
    readings, tv, households, contacts = simulate_households(HOMES, START, DAYS, seed=41)
    rng = np.random.default_rng(5)
    readings, tv = inject_incident(readings, tv, COLLAPSED, ONSET, "quiet", rng)
    readings, tv = inject_incident(
        readings, tv, LAMP, ONSET - pd.Timedelta(hours=20), "lamp_on", rng
    )
    readings, tv = inject_incident(
        readings, tv, TV, ONSET - pd.Timedelta(hours=9), "tv_left_on", rng
    )
    stamps = readings["timestamp"]
    gap = (readings["household_id"] == GAP) & (stamps > START + pd.Timedelta(days=14, hours=3))
    readings = readings[~(gap & (stamps <= START + pd.Timedelta(days=15, hours=3)))]
    files = {"households": households, "contacts": contacts, "readings": readings, "tv": tv}
    return {name: write_csv(frame, folder / f"{name}.csv") for name, frame in files.items()}


def town_app(database, town, vectorised: bool) -> App:
    now = (START + pd.Timedelta(days=DAYS, hours=1)).to_pydatetime()
    return app_with_files(database, town, DetectionSettings(vectorised=vectorised), now)


def scenario(app: App, detect=None, states=None) -> list[tuple]:  # noqa: ANN001
    """A backfill, a silence, ticks through the incidents, a resident vouching; per run: the
    report and every household's saved state (``detect`` and ``states``: how to run detection
    and read the states, ``app.detect`` and ``saved_states`` by default)."""
    detect = detect or app.detect
    states = states or saved_states
    from notify.actions import resolve
    from notify.silences import create_silence

    with Session(app.engine) as session:
        starts = (START + pd.Timedelta(days=13)).to_pydatetime()
        create_silence(
            session=session,
            household_id=SILENCED,
            reason="staying with family",
            starts_at=starts,
            ends_at=starts + pd.Timedelta(days=5),
            created_by="staff:test",
            now=starts,
        )
        session.commit()
    runs = []
    whens = [START + pd.Timedelta(days=13, hours=12)]  # onboarding: the history in one run
    whens += [START + pd.Timedelta(days=14, hours=h) for h in range(0, 62, 2)]
    for when in whens:
        app.clock.set(when.to_pydatetime())
        report = detect()
        runs.append(
            (
                report.households_scored,
                report.slots_scored,
                [(f.household_id, f.kind, f.severity, f.since, f.reason) for f in report.findings],
                report.incidents_opened,
                report.incidents_resolved,
                states(app),
            )
        )
        with Session(app.engine) as session:
            collapse = session.exec(
                select(Incident).where(
                    Incident.household_id == COLLAPSED, Incident.status != "resolved"
                )
            ).first()
        if collapse is not None and when >= ONSET + pd.Timedelta(hours=30):
            resolve(engine=app.engine, incident_id=collapse.id, outcome="fine", now=app.clock.now())
    return runs


def saved_states(app: App) -> dict[str, tuple]:
    """Each household's saved state, as comparable values."""
    with Session(app.engine) as session:
        rows = session.exec(select(DetectorCheckpoint)).all()
    return {
        row.household_id: comparable(row.scored_until, household_state(row.state)) for row in rows
    }


def comparable(scored_until, state) -> tuple:  # noqa: ANN001
    """A household's cursor and state as values that compare equal when the states are."""
    arrays = QuietStretchState.from_detectors([state.inactivity])
    quiet = {f.name: getattr(arrays, f.name) for f in fields(arrays)[1:-1]}
    if not arrays.evidence.valid[0]:
        quiet.pop("baseline")  # a stale floor is never read
    quiet |= {f"evidence.{k}": v for k, v in vars(arrays.evidence).items()}
    return (
        scored_until,
        quiet,
        getattr(state.outage, "_last_data", None),
        state.tv,
        state.inactivity_reported,
        state.outage_reported,
        state.outcomes_fed,
    )


def assert_same_states(vectorised: dict, one_at_a_time: dict) -> None:
    assert vectorised.keys() == one_at_a_time.keys()
    for household, mine in vectorised.items():
        theirs = one_at_a_time[household]
        assert mine[0] == theirs[0] and mine[2:] == theirs[2:], household
        assert mine[1].keys() == theirs[1].keys()
        for name, value in mine[1].items():
            np.testing.assert_array_equal(value, theirs[1][name], err_msg=f"{household} {name}")


@pytest.mark.parametrize(
    "twin_databases",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_vectorised_scoring_gives_the_one_at_a_time_results(twin_databases, town, monkeypatch):
    batched_db, single_db = twin_databases
    one_at_a_time = scenario(town_app(single_db, town, vectorised=False))

    calls = {"one at a time": 0}
    real = batch_scoring.score_household

    def counted(job, state=None):  # noqa: ANN001, ANN202
        calls["one at a time"] += 1
        return real(job, state)

    monkeypatch.setattr(batch_scoring, "score_household", counted)
    resume = batch_scoring._resume_after_quiet_prefix

    def resumed(*args):  # noqa: ANN002, ANN202
        found = resume(*args)
        calls["resumed after a quiet prefix"] = calls.get("resumed after a quiet prefix", 0)
        calls["resumed after a quiet prefix"] += len(found)
        return found

    monkeypatch.setattr(batch_scoring, "_resume_after_quiet_prefix", resumed)
    app = town_app(batched_db, town, vectorised=True)
    vectorised = scenario(app)

    assert len(vectorised) == len(one_at_a_time)
    for run, (mine, theirs) in enumerate(zip(vectorised, one_at_a_time, strict=True)):
        assert mine[:5] == theirs[:5], f"run {run}"
        assert_same_states(mine[5], theirs[5])
    # Not vacuous: the scenario raised incidents of every kind and vouching went back in...
    with Session(app.engine) as session:
        incidents = session.exec(select(Incident)).all()
        findings = session.exec(select(Finding)).all()
    assert {(i.household_id, i.kind) for i in incidents} >= {
        (COLLAPSED, "inactivity"),
        (LAMP, "inactivity"),
        (GAP, "outage"),
    }
    assert any(i.household_id == COLLAPSED and i.outcome == "fine" for i in incidents)
    assert findings
    # ...and most household-runs were scored together, not one at a time.
    household_runs = sum(run[0] for run in vectorised)
    assert calls["one at a time"] < household_runs / 3, (calls, household_runs)
    # Homes reaching ``watch`` part-way through a run went one at a time only from there.
    assert calls["resumed after a quiet prefix"] > 0, calls
