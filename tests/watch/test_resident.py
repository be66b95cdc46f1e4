"""State held in memory by the long-running scheduler (``watch.resident``) changes nothing that
people or the database see: the same findings, incidents and saved state as reading every
household's checkpoint each run, also when the process dies between flushes or another process
scores beside it."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlmodel import Session, func, select

from data.tables import DetectorCheckpoint, Finding
from tests.watch.test_batch_scoring import (
    START,
    assert_same_states,
    comparable,
    saved_states,
    scenario,
    town,  # noqa: F401 (the fixture)
    town_app,
)
from watch import resident
from watch.app import App
from watch.household_state import CHECKPOINT_NAME
from watch.resident import ResidentStates

TWIN = pytest.mark.parametrize(
    "twin_databases",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


class Scheduler:
    """What ``areawatch run`` does around detection: one store across runs; ``crash_at``: runs
    before which the process dies (the store is lost, nothing flushed)."""

    def __init__(self, app: App, *, flush_every=timedelta(hours=6), crash_at=()) -> None:  # noqa: ANN001
        self.app, self.flush_every, self.crash_at = app, flush_every, set(crash_at)
        self.store = ResidentStates(flush_every=flush_every)
        self.runs = 0
        self.resident_before_run: list[int] = []
        self.lags: list[timedelta] = []  # after each run: how far memory is ahead, at most

    def detect(self):  # noqa: ANN201
        if self.runs in self.crash_at:
            self.store = ResidentStates(flush_every=self.flush_every)
        self.runs += 1
        self.resident_before_run.append(len(self.store))
        report = self.app.detect(resident=self.store)
        saved = {h: s[0] for h, s in saved_states(self.app).items()}
        self.lags.append(
            max((c - saved[h] for h, (c, _) in self.store.held().items()), default=timedelta(0))
        )
        return report

    def states(self, app: App) -> dict[str, tuple]:
        """What the database holds, with the store's households as it would write them."""
        saved = saved_states(app)
        held = {h: comparable(cursor, state) for h, (cursor, state) in self.store.held().items()}
        return saved | held


@pytest.fixture
def reference(twin_databases, town):  # noqa: F811
    """The scenario with every state read from and written to the database."""
    _, plain_db = twin_databases
    return scenario(town_app(plain_db, town, vectorised=True))


@TWIN
def test_resident_state_gives_the_same_runs(twin_databases, town, reference):  # noqa: F811
    app = town_app(twin_databases[0], town, vectorised=True)
    scheduler = Scheduler(app)
    runs = scenario(app, scheduler.detect, scheduler.states)

    for number, (mine, theirs) in enumerate(zip(runs, reference, strict=True)):
        assert mine[:5] == theirs[:5], f"run {number}"
        assert_same_states(mine[5], theirs[5])
    # Not vacuous: after onboarding, most households were scored from memory...
    household_runs = sum(run[0] for run in runs[1:])
    assert sum(scheduler.resident_before_run[1:]) > household_runs / 2

    # ...and the database lags behind until a flush, which then writes what memory held.
    # A crash would cost at most ``flush_every`` of re-scoring: no household's memory got that
    # far ahead of its checkpoint (runs are 2 hours apart; some were written on the way).
    assert timedelta(0) < max(scheduler.lags) < timedelta(hours=6)

    def cursors(states: dict) -> dict:
        return {household: saved[0] for household, saved in states.items()}

    assert cursors(saved_states(app)) != cursors(scheduler.states(app))
    scheduler.store.flush(app.engine, app.clock.now(), everything=True)
    assert_same_states(saved_states(app), reference[-1][5])


@TWIN
def test_a_crash_between_flushes_loses_nothing_and_repeats_nothing(
    twin_databases,
    town,  # noqa: F811
    reference,
    monkeypatch,
):
    monkeypatch.setattr(resident, "BLOCK_ROWS", 3)  # households spread over several blocks
    app = town_app(twin_databases[0], town, vectorised=True)
    scheduler = Scheduler(app, flush_every=timedelta(hours=3), crash_at=(9, 10, 21))
    runs = scenario(app, scheduler.detect, scheduler.states)

    for number, (mine, theirs) in enumerate(zip(runs, reference, strict=True)):
        # The run after a crash re-scores the slots memory had scored: more slots, same news.
        assert mine[2:5] == theirs[2:5], f"run {number}"
        assert_same_states(mine[5], theirs[5])
    assert runs[9][1] > reference[9][1]  # it did re-score
    with Session(app.engine) as session:
        findings = session.exec(select(func.count()).select_from(Finding)).one()
    assert findings == sum(len(run[2]) for run in reference)


@TWIN
def test_another_process_scoring_beside_it_wins(twin_databases, town, reference):  # noqa: F811
    app = town_app(twin_databases[0], town, vectorised=True)
    scheduler = Scheduler(app)
    beside = {12, 13, 25}
    scored_beside: dict[int, int] = {}

    def detect():  # noqa: ANN202
        if scheduler.runs in beside:
            # E.g. ``areawatch detect`` run by hand an hour before the scheduler's next run:
            # it scores from the database's checkpoints and moves them past what memory saw.
            now = app.clock.now()
            app.clock.set(now - timedelta(hours=1))
            scored_beside[scheduler.runs] = app.detect().slots_scored
            app.clock.set(now)
        return scheduler.detect()

    runs = scenario(app, detect, scheduler.states)

    for number, (mine, theirs) in enumerate(zip(runs, reference, strict=True)):
        assert mine[2:5] == theirs[2:5], f"run {number}"
        assert_same_states(mine[5], theirs[5])
        if number in beside:
            # The scheduler went on from the checkpoints the other process had moved an hour
            # on (half the slots of a 2-hour run), not from what it held in memory.
            assert mine[1] == theirs[1] / 2, f"run {number}"
    assert all(scored_beside.values())
    scheduler.store.flush(app.engine, app.clock.now(), everything=True)
    assert_same_states(saved_states(app), reference[-1][5])


@TWIN
def test_flushing_every_run_keeps_the_database_current(twin_databases, town, reference):  # noqa: F811
    app = town_app(twin_databases[0], town, vectorised=True)
    scheduler = Scheduler(app, flush_every=timedelta(0))
    runs = scenario(app, scheduler.detect, saved_states)  # the database alone

    for number, (mine, theirs) in enumerate(zip(runs, reference, strict=True)):
        assert mine[:5] == theirs[:5], f"run {number}"
        assert_same_states(mine[5], theirs[5])


@TWIN
def test_a_flush_never_overwrites_a_checkpoint_another_process_moved(twin_databases, town):  # noqa: F811
    app = town_app(twin_databases[0], town, vectorised=True)
    store = ResidentStates(flush_every=timedelta(days=1))  # nothing falls due by itself here
    app.clock.set((START + pd.Timedelta(days=13, hours=12)).to_pydatetime())
    app.detect(resident=store)  # onboarding: every state written, the quiet ones kept
    app.clock.set((START + pd.Timedelta(days=13, hours=16)).to_pydatetime())
    app.detect(resident=store)  # memory is now 4 hours ahead of the database
    held = store.held()
    before = {r.household_id: r.scored_until for r in _checkpoints(app)}
    ahead = sorted(h for h, (cursor, _) in held.items() if before[h] != cursor)
    assert len(ahead) > 5
    theirs = ahead[0]
    moved = app.clock.now() - timedelta(hours=1)
    with Session(app.engine) as session:
        row = session.get(DetectorCheckpoint, (theirs, CHECKPOINT_NAME))
        row.scored_until, row.state = moved, b"another process's state"
        session.add(row)
        session.commit()

    written = store.flush(app.engine, app.clock.now(), everything=True)

    assert written == len(ahead) - 1
    assert theirs not in store
    saved = {r.household_id: r for r in _checkpoints(app)}
    assert saved[theirs].state == b"another process's state"
    assert saved[theirs].scored_until == moved
    for household, (cursor, _) in held.items():
        if household != theirs:
            assert saved[household].scored_until == cursor


def _checkpoints(app: App) -> list[DetectorCheckpoint]:
    with Session(app.engine) as session:
        return session.exec(select(DetectorCheckpoint)).all()


@pytest.mark.parametrize("twin_databases", ["sqlite"], indirect=True)
def test_the_scheduler_keeps_a_store_and_writes_it_when_it_stops(twin_databases, town):  # noqa: F811
    from dataclasses import replace

    from watch.scheduler import Service, resident_states

    app = town_app(twin_databases[0], town, vectorised=True)
    service = Service(app)
    assert service.resident is not None
    assert service.resident.flush_every == timedelta(hours=6)  # the default setting
    chosen = app.settings
    for detection in (
        replace(chosen.detection, resident_flush_minutes=0),
        replace(chosen.detection, engine="dask", scheduler="tcp://127.0.0.1:1"),
    ):
        app.settings = replace(chosen, detection=detection)
        assert resident_states(app) is None
    app.settings = chosen

    for hours in (12, 16):
        app.clock.set((START + pd.Timedelta(days=13, hours=hours)).to_pydatetime())
        app.detect(resident=service.resident)
    held = {h: cursor for h, (cursor, _) in service.resident.held().items()}
    assert any(saved[0] != held[h] for h, saved in saved_states(app).items() if h in held)

    service._flush_resident()  # what stopping does, after the last job

    assert {h: saved[0] for h, saved in saved_states(app).items() if h in held} == held
