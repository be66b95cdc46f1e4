"""The detection job: score every household's new slots and turn verdicts into incidents.

Per household: restore its state, score the slots that have arrived since the last run (score
before learn; the detectors protect themselves from learning flagged stretches), write a
``Finding`` when an episode reaches a higher severity than already reported, then make the open
incidents match the household's state at the end of the run.

Scoring one household is a pure function (``score_household``: bytes and rows in, bytes and
verdicts out, no database), so a scoring engine (``watch.engines``) may run it in this process
or on a Dask cluster. Everything that touches the database stays here, in the coordinator:
households are processed in chunks, and each chunk's findings, incidents and checkpoints are
written in one transaction. A crash leaves every household either fully processed or
untouched, so the job can simply be run again.
"""

from __future__ import annotations

import logging
import pickle
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Protocol

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from data.new_readings import (
    NO_READINGS,
    ReadingColumns,
    epoch_us,
    oldest_cursor,
    one_of,
    readings_after,
)
from data.tables import DetectorCheckpoint, Finding, Household, TvEvent
from data.upsert import upsert
from detectors.base import Detector, Interval, Severity
from watch.household_state import CHECKPOINT_NAME, HouseholdState, Reported
from watch.slots import SLOT, SLOT_US, build_slots, floor_slot, slot_numbers, slot_of
from watch.state_rows import household_state

if TYPE_CHECKING:
    from watch.resident import ResidentStates

log = logging.getLogger(__name__)

RANK = {Severity.normal: 0, Severity.watch: 1, Severity.alert: 2}


@dataclass
class Verdict:
    """Where one detector stands at the last slot of a run."""

    kind: str
    severity: Severity
    score: float
    reason: str
    since: datetime | None
    at: datetime


@dataclass
class DetectReport:
    households_scored: int = 0
    slots_scored: int = 0
    findings: list[Finding] = field(default_factory=list)
    incidents_opened: list[int] = field(default_factory=list)
    incidents_resolved: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What people said about an incident: fed back so the detector may learn the stretch."""

    incident_id: int
    since: datetime
    outcome: str


class IncidentHooks(Protocol):
    """What detection asks of the incident side; injected by the application so this module
    stays free of policy, silence and escalation details. All run in detection's transaction."""

    def open(
        self, session: Session, household: Household, verdict: Verdict, now: datetime
    ) -> int | None:
        """Open an incident for an ``alert`` verdict; the id if one was newly opened."""

    def close(self, session: Session, household: Household, kind: str, now: datetime) -> int | None:
        """The condition cleared: close the open incident of this kind, if any."""

    def silenced(self, session: Session, now: datetime) -> set[str]:
        """Households with a silence active now (asked once per run)."""

    def vouched_outcomes(self, session: Session, now: datetime) -> dict[str, list[Outcome]]:
        """Recent inactivity incidents that people closed as ordinary life, by household."""

    def activity_seen(
        self, session: Session, household: Household, activity_at: datetime, now: datetime
    ) -> None:
        """A silenced household showed activity at ``activity_at`` (silences may end early)."""


@dataclass(frozen=True)
class HouseholdJob:
    """Everything needed to score one household's new slots; picklable, no database handle."""

    household_id: str
    timezone: str
    state: bytes | None  # saved: a row (``watch.state_rows``) or a pickled ``HouseholdState``
    readings: ReadingColumns  # views of the chunk's arrays; pickling copies only its own rows
    tv_events: list[tuple[datetime, str]]
    after: datetime
    until: datetime
    outcomes: tuple[Outcome, ...]
    silenced: bool
    now: datetime


@dataclass
class HouseholdResult:
    """What scoring one household produced; the coordinator writes it and calls the hooks."""

    household_id: str
    state: bytes
    scored_until: datetime
    slots: int
    findings: list[dict]  # ``Finding`` columns except ``fired_at``
    verdicts: list[Verdict]
    # In order: ("open", verdict) or ("close", kind); the state already records them.
    incident_actions: list[tuple[str, Verdict | str]]
    last_activity: datetime | None  # only for a silenced household that showed activity


class ScoringEngine(Protocol):
    """Runs ``score_household`` over chunks of jobs; results come back in the jobs' order."""

    def score_chunks(self, chunks: Iterable[list[HouseholdJob]]) -> Iterator[list[HouseholdResult]]:
        """One list of results per chunk, in order; may work on later chunks ahead."""


def run_detection(
    *,
    engine: Engine,
    now: datetime,
    data_grace: timedelta,
    households_per_transaction: int = 500,
    hooks: IncidentHooks,
    scoring: ScoringEngine | None = None,
    resident: ResidentStates | None = None,
) -> DetectReport:
    """Score what has arrived; ``scoring`` defaults to this process (``watch.engines``).

    ``resident`` (the long-running scheduler's, ``watch.resident``) scores the quiet households
    whose state it holds in memory; everything else goes the way described above.
    """
    if scoring is None:
        from watch.engines import LocalEngine

        scoring = LocalEngine()
    report = DetectReport()
    with Session(engine) as session:
        # Only the id and zone of every household: the whole row is read for the few that
        # have something to write (``_write``).
        households = dict(session.exec(select(Household.id, Household.timezone)).all())
        silenced = hooks.silenced(session, now)
        outcomes = hooks.vouched_outcomes(session, now)
        cursors = _all_cursors(session, households)
    handed: dict[str, tuple[datetime, bytes]] = {}
    if resident is not None:
        resident.reconcile(cursors)
        handed = resident.score(
            engine=engine,
            now=now,
            data_grace=data_grace,
            silenced=silenced,
            outcomes=outcomes,
            report=report,
        )
        cursors.update({h: cursor for h, (cursor, _) in handed.items()})

    def jobs_of(ids: list[str]) -> list[HouseholdJob]:
        """The chunk's jobs; its states and new data are read only now, so memory holds a
        chunk or two, not every household's."""
        part = {i: cursors[i] for i in ids}
        readings, tv_events = _load_new_data(engine, part, now)
        states = _load_states(engine, [i for i in ids if part[i] is not None and i not in handed])
        states.update({i: handed[i][1] for i in ids if i in handed})
        starts: dict[str, datetime] = {}
        for household_id in ids:
            rows = readings.get(household_id, NO_READINGS)
            cursor = part[household_id]
            if cursor is None and not rows:
                continue  # nothing ever arrived: not watched yet (the roster says it should be)
            starts[household_id] = cursor if cursor is not None else slot_of(rows.first_end) - SLOT
        untils = scorable_untils(
            [readings.get(h, NO_READINGS) for h in starts],
            list(starts.values()),
            now=now,
            data_grace=data_grace,
        )
        return [
            HouseholdJob(
                household_id=household_id,
                timezone=households[household_id],
                state=states.get(household_id),
                readings=readings.get(household_id, NO_READINGS),
                tv_events=tv_events.get(household_id, []),
                after=after,
                until=until,
                outcomes=tuple(outcomes.get(household_id, ())),
                silenced=household_id in silenced,
                now=now,
            )
            for (household_id, after), until in zip(starts.items(), untils, strict=True)
            if until > after
        ]

    ordinary = sorted(h for h in households if resident is None or h not in resident)
    chunks = (
        jobs for ids in batched(ordinary, households_per_transaction) if (jobs := jobs_of(ids))
    )

    # Households are processed in chunks, each chunk one transaction: a crash loses a chunk's
    # work as a whole and the re-run redoes exactly that, never half a household.
    for results in scoring.score_chunks(chunks):
        with Session(engine, expire_on_commit=False) as session:
            for result in results:
                _write(session, result, now, report, hooks)
            saved = [
                {
                    "household_id": r.household_id,
                    "detector": CHECKPOINT_NAME,
                    "state": r.state,
                    "scored_until": r.scored_until,
                    "updated_at": now,
                }
                for r in results
            ]
            upsert(session, DetectorCheckpoint, saved, key=["household_id", "detector"])
            session.commit()
        if resident is not None:
            resident.admit(results, now, skip=silenced)
    if resident is not None:
        resident.flush(engine, now)
    return report


def _write(session, result, now, report, hooks) -> None:  # noqa: ANN001
    """One household's findings and incident changes, in the order scoring produced them."""
    needed = result.incident_actions or result.last_activity is not None
    household = session.get(Household, result.household_id) if needed else None
    for columns in result.findings:
        finding = Finding(**columns, fired_at=now)
        session.add(finding)
        report.findings.append(finding)
    for action, subject in result.incident_actions:
        if action == "open":
            opened = hooks.open(session, household, subject, now)
            if opened is not None:
                report.incidents_opened.append(opened)
        else:
            closed = hooks.close(session, household, subject, now)
            if closed is not None:
                report.incidents_resolved.append(closed)
    if result.last_activity is not None:
        hooks.activity_seen(session, household, result.last_activity, now)
    report.households_scored += 1
    report.slots_scored += result.slots


def restore_state(job: HouseholdJob) -> HouseholdState:
    """The household's saved state, or a new one for a household never scored."""
    if job.state is None:
        return HouseholdState.new(job.timezone)
    return household_state(job.state)


def score_household(job: HouseholdJob, state: HouseholdState | None = None) -> HouseholdResult:
    """Score one household's new slots: pure, so it can run in any process.

    Restores the state (or starts one; ``state``: already restored from ``job.state`` and not
    yet changed), builds the slots, feeds back what people said about earlier incidents, scores
    before learning, and decides which incidents to open or close; the state it returns already
    records those decisions.
    """
    state = state if state is not None else restore_state(job)
    slots = build_slots(
        after=job.after,
        until=job.until,
        readings=job.readings,
        tv_events=job.tv_events,
        tv_state=state.tv,
    )
    _feed_back(state, job.outcomes)
    findings: list[dict] = []
    verdicts = _score(state, slots, job.household_id, findings)
    actions = [a for v in verdicts if (a := _incident_action(v, state)) is not None]
    last_activity = None
    if job.silenced and slots:
        last_activity = state.inactivity.quiet_since(slots[-1])
    return HouseholdResult(
        household_id=job.household_id,
        state=pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL),
        scored_until=job.until,
        slots=len(slots),
        findings=findings,
        verdicts=verdicts,
        incident_actions=actions,
        last_activity=last_activity,
    )


def _feed_back(state: HouseholdState, outcomes) -> None:  # noqa: ANN001
    """Tell the detector, once per incident, what people found (a flagged outing, say)."""
    fed = state.__dict__.setdefault("outcomes_fed", [])  # states pickled before this field
    for outcome in outcomes:
        if outcome.incident_id in fed:
            continue
        state.inactivity.learn_outcome(outcome.since, outcome.outcome)
        fed.append(outcome.incident_id)
    del fed[:-64]  # bounded: only recent incidents can still be answered


def scorable_until(
    rows: ReadingColumns | list, *, after: datetime, now: datetime, data_grace: timedelta
) -> datetime:
    """The last slot that can be scored now: every slot up to it has its reading, or is older
    than ``data_grace`` (then it is "no data" for good).

    A missing slot still within the grace stops scoring there, even when a newer reading has
    already arrived: its reading may yet come, and once the cursor has passed a slot it is
    never scored again.

    >>> from datetime import UTC
    >>> t = datetime(2025, 1, 6, 12, tzinfo=UTC)
    >>> rows = [(t + SLOT, 0.1, 30), (t + 3 * SLOT, 0.1, 30)]  # t + 2 * SLOT is missing
    >>> scorable_until(rows, after=t, now=t + 3 * SLOT, data_grace=timedelta(hours=2)) - t
    datetime.timedelta(seconds=1800)
    >>> scorable_until(rows, after=t, now=t + 6 * SLOT, data_grace=timedelta(hours=1)) - t
    datetime.timedelta(seconds=7200)
    """
    (until,) = scorable_untils([rows], [after], now=now, data_grace=data_grace)
    return until


def scorable_untils(
    readings: Sequence[ReadingColumns],
    afters: Sequence[datetime],
    *,
    now: datetime,
    data_grace: timedelta,
) -> list[datetime]:
    """``scorable_until`` of many households (``readings[i]`` after ``afters[i]``) at once.

    One numpy pass over all their readings: called per household, numpy's overheads alone
    cost about 20 µs, more than the Python loop it replaced. Slots are numbered from each
    household's own ``after``; it can be scored up to the first slot after ``reached`` (the
    slots past the grace) that has no reading, and no further than ``due`` (the last slot ended).
    """
    after_us = np.array([epoch_us(after) for after in afters], dtype=np.int64)
    reached = np.maximum(0, _slots_from(after_us, floor_slot(now - data_grace)))
    due = _slots_from(after_us, floor_slot(now))
    numbers, home = slot_numbers(readings, after_us)
    step = numbers - reached[home]  # 1: the first slot not yet certain
    wanted = (step >= 1) & (numbers <= due[home])
    # Each household's distinct steps, in order: its run of present slots is the steps that
    # equal their rank (1, 2, 3, ...), a prefix, since distinct steps only pull ahead of ranks.
    key = np.unique((home[wanted] << 32) | step[wanted])
    owner, step = key >> 32, key & 0xFFFFFFFF
    first = np.flatnonzero(np.diff(owner, prepend=-1))
    rank = np.arange(len(key)) - np.repeat(first, np.diff(np.append(first, len(key))))
    run = np.bincount(owner[step == rank + 1], minlength=len(after_us))
    scored = np.minimum(due, reached + run).tolist()
    return [after + slots * SLOT for after, slots in zip(afters, scored, strict=True)]


def _slots_from(after_us: np.ndarray, end: datetime) -> np.ndarray:
    """How many slots from each ``after`` to ``end`` (all on the grid; negative if before)."""
    return np.rint((epoch_us(end) - after_us) / SLOT_US).astype(np.int64)


def batched(items: list, size: int):  # noqa: ANN201  (itertools.batched is Python 3.12+)
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _all_cursors(session: Session, households: dict) -> dict[str, datetime | None]:
    """Every household's cursor (``None``: never scored), without reading the states."""
    cursors: dict[str, datetime | None] = dict.fromkeys(households)
    query = select(DetectorCheckpoint.household_id, DetectorCheckpoint.scored_until).where(
        DetectorCheckpoint.detector == CHECKPOINT_NAME
    )
    for household_id, scored_until in session.exec(query):
        if household_id in cursors:
            cursors[household_id] = scored_until
    return cursors


def _load_states(engine: Engine, ids: list[str]) -> dict[str, bytes]:
    """The saved states of ``ids``."""
    states: dict[str, bytes] = {}
    dialect = engine.dialect.name
    with Session(engine) as session:
        for part in batched(ids, 500):
            query = select(DetectorCheckpoint.household_id, DetectorCheckpoint.state).where(
                DetectorCheckpoint.detector == CHECKPOINT_NAME,
                one_of(DetectorCheckpoint.household_id, part, dialect),
            )
            states.update(session.exec(query).all())
    return states


def _load_new_data(engine: Engine, cursors: dict, now: datetime):
    """Readings and TV events after each household's cursor, grouped by household.

    Households are asked for in batches by id and a time range, which both databases answer
    from the primary key (household, time): no second index on time is needed, so ingest
    stays fast. Readings come back through ``data.new_readings`` (by COPY on PostgreSQL).
    """
    readings: dict[str, ReadingColumns] = {}
    tv_events: dict[str, list] = defaultdict(list)
    dialect = engine.dialect.name
    with Session(engine) as session:
        connection = session.connection()
        # 5,000 a statement: a tick reads one row a household, and at 500 the statements'
        # own cost was most of it (a 100,000-household tick's COPY: 1.3 s, against 0.3 s).
        for ids in batched(sorted(cursors), 5000):
            part = {i: cursors[i] for i in ids}
            readings.update(readings_after(connection, part, now))
            oldest = oldest_cursor(part)
            tv_query = select(TvEvent.household_id, TvEvent.at, TvEvent.event).where(
                one_of(TvEvent.household_id, ids, dialect), TvEvent.at <= now
            )
            if oldest is not None:
                tv_query = tv_query.where(TvEvent.at > oldest - SLOT)
            for household_id, at, event in connection.execute(
                tv_query.order_by(TvEvent.household_id, TvEvent.at)
            ):
                tv_events[household_id].append((at, event))
    return readings, tv_events


def _score(
    state: HouseholdState, slots: list[Interval], household_id: str, findings: list[dict]
) -> list[Verdict]:
    last: dict[str, Verdict] = {}
    for x in slots:
        for kind, detector, reported in (
            ("inactivity", state.inactivity, state.inactivity_reported),
            ("outage", state.outage, state.outage_reported),
        ):
            score = detector.score_one(x)
            severity = detector.severity(score)
            since = _episode_start(detector, x) if severity != Severity.normal else None
            verdict = Verdict(kind, severity, score, "", since, x.end)
            if severity != Severity.normal and _is_new_high(reported, since, severity):
                verdict.reason = detector.explain_one(x)
                findings.append(
                    {
                        "household_id": household_id,
                        "kind": kind,
                        "severity": severity.value,
                        "score": score,
                        "reason": verdict.reason,
                        "since": since,
                    }
                )
                reported.since, reported.severity = since, severity.value
            if severity != Severity.normal and not verdict.reason and x is slots[-1]:
                verdict.reason = detector.explain_one(x)  # before learning, as it was scored
            if severity == Severity.normal and reported.severity != "normal":
                reported.since, reported.severity = None, "normal"
            detector.learn_one(x)
            last[kind] = verdict
    for verdict in last.values():
        if verdict.severity != Severity.normal and not verdict.reason:
            verdict.reason = next(
                (f["reason"] for f in reversed(findings) if f["kind"] == verdict.kind), ""
            )
    return list(last.values())


def _episode_start(detector: Detector, x: Interval) -> datetime | None:
    since = getattr(detector, "quiet_since", None) or getattr(detector, "silent_since", None)
    return since(x) if since else None


def _is_new_high(reported: Reported, since: datetime | None, severity: Severity) -> bool:
    if reported.since != since:
        return True
    return RANK[severity] > RANK[Severity(reported.severity)]


def _incident_action(verdict: Verdict, state: HouseholdState) -> tuple[str, Verdict | str] | None:
    """Whether this verdict opens or closes an incident; records the decision in ``state``."""
    reported = state.inactivity_reported if verdict.kind == "inactivity" else state.outage_reported
    if verdict.severity == Severity.alert:
        # One incident per episode: once people have dealt with this stretch (resolved it as
        # "away", say), the same unbroken stretch does not open a new one every run.
        if reported.incident_for == verdict.since and verdict.since is not None:
            return None
        reported.incident_for = verdict.since
        return ("open", verdict)
    if verdict.severity == Severity.normal and reported.incident_for is not None:
        # Only a household we opened an incident for can have one to close: no query otherwise.
        reported.incident_for = None
        return ("close", verdict.kind)
    return None
