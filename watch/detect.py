"""The detection job: score every household's new slots and turn verdicts into incidents.

Per household, in one transaction: restore its state, score the slots that have arrived since the
last run (score before learn; the detectors protect themselves from learning flagged stretches),
write a ``Finding`` when an episode reaches a higher severity than already reported, then make
the open incidents match the household's state at the end of the run. A crash leaves every
household either fully processed or untouched, so the job can simply be run again.
"""

from __future__ import annotations

import logging
import pickle
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from data.tables import DetectorCheckpoint, Finding, Household, Reading, TvEvent
from data.upsert import upsert
from detectors.base import Detector, Interval, Severity
from watch.household_state import CHECKPOINT_NAME, HouseholdState, Reported
from watch.slots import SLOT, build_slots, floor_slot, slot_of

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


def run_detection(
    *,
    engine: Engine,
    now: datetime,
    data_grace: timedelta,
    households_per_transaction: int = 500,
    hooks: IncidentHooks,
) -> DetectReport:
    report = DetectReport()
    with Session(engine) as session:
        households = session.exec(select(Household)).all()
        silenced = hooks.silenced(session, now)
        outcomes = hooks.vouched_outcomes(session, now)
        checkpoints = {
            c.household_id: c
            for c in session.exec(
                select(DetectorCheckpoint).where(DetectorCheckpoint.detector == CHECKPOINT_NAME)
            )
        }
    cursors = {
        h.id: checkpoints[h.id].scored_until if h.id in checkpoints else None for h in households
    }
    readings, tv_events = _load_new_data(engine, cursors, now)

    work = []
    for household in households:
        rows = readings.get(household.id, [])
        cursor = cursors[household.id]
        if cursor is None and not rows:
            continue  # nothing ever arrived: not watched yet (the roster says it should be)
        after = cursor if cursor is not None else slot_of(rows[0][0]) - SLOT
        latest_data = max((slot_of(end) for end, *_ in rows), default=after)
        until = min(floor_slot(now), max(latest_data, floor_slot(now - data_grace)))
        if until > after:
            work.append((household, rows, after, until))

    # Households are processed in chunks, each chunk one transaction: a crash loses a chunk's
    # work as a whole and the re-run redoes exactly that, never half a household.
    for chunk in batched(work, households_per_transaction):
        with Session(engine, expire_on_commit=False) as session:
            saved = []
            for household, rows, after, until in chunk:
                checkpoint = checkpoints.get(household.id)
                state = (
                    pickle.loads(checkpoint.state)  # noqa: S301 (our own rows)
                    if checkpoint is not None
                    else HouseholdState.new(household.timezone)
                )
                slots = build_slots(
                    after=after,
                    until=until,
                    readings=rows,
                    tv_events=tv_events.get(household.id, []),
                    tv_state=state.tv,
                )
                _feed_back(state, outcomes.get(household.id, ()))
                verdicts = _score(state, slots, household, now, session, report)
                for verdict in verdicts:
                    _reconcile_incident(session, household, verdict, state, now, report, hooks)
                if household.id in silenced and slots:
                    last_activity = state.inactivity.quiet_since(slots[-1])
                    if last_activity is not None:
                        hooks.activity_seen(session, household, last_activity, now)
                saved.append(
                    {
                        "household_id": household.id,
                        "detector": CHECKPOINT_NAME,
                        "state": pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL),
                        "scored_until": until,
                        "updated_at": now,
                    }
                )
                report.households_scored += 1
                report.slots_scored += len(slots)
            upsert(session, DetectorCheckpoint, saved, key=["household_id", "detector"])
            session.commit()
    return report


def _feed_back(state: HouseholdState, outcomes) -> None:  # noqa: ANN001
    """Tell the detector, once per incident, what people found (a flagged outing, say)."""
    fed = state.__dict__.setdefault("outcomes_fed", [])  # states pickled before this field
    for outcome in outcomes:
        if outcome.incident_id in fed:
            continue
        state.inactivity.learn_outcome(outcome.since, outcome.outcome)
        fed.append(outcome.incident_id)
    del fed[:-64]  # bounded: only recent incidents can still be answered


def batched(items: list, size: int):  # noqa: ANN201  (itertools.batched is Python 3.12+)
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _load_new_data(engine: Engine, cursors: dict, now: datetime):
    """Readings and TV events after each household's cursor, grouped by household.

    Households are asked for in batches with ``household_id IN (...)`` and a time range, which
    both databases answer from the primary key (household, time): no second index on time is
    needed, so ingest stays fast.
    """
    readings: dict[str, list] = defaultdict(list)
    tv_events: dict[str, list] = defaultdict(list)
    with Session(engine) as session:
        for ids in batched(sorted(cursors), 500):
            known = [cursors[i] for i in ids if cursors[i] is not None]
            oldest = min(known) if len(known) == len(ids) else None
            query = select(
                Reading.household_id, Reading.interval_end, Reading.kwh, Reading.interval_minutes
            ).where(col(Reading.household_id).in_(ids), Reading.interval_end <= now)
            tv_query = select(TvEvent.household_id, TvEvent.at, TvEvent.event).where(
                col(TvEvent.household_id).in_(ids), TvEvent.at <= now
            )
            if oldest is not None:
                query = query.where(Reading.interval_end > oldest)
                tv_query = tv_query.where(TvEvent.at > oldest - SLOT)
            order = (Reading.household_id, Reading.interval_end)
            for household_id, end, kwh, minutes in session.exec(query.order_by(*order)):
                cursor = cursors[household_id]
                if cursor is None or end > cursor:
                    readings[household_id].append((end, kwh, minutes))
            for household_id, at, event in session.exec(
                tv_query.order_by(TvEvent.household_id, TvEvent.at)
            ):
                tv_events[household_id].append((at, event))
    return readings, tv_events


def _score(
    state: HouseholdState,
    slots: list[Interval],
    household: Household,
    now: datetime,
    session: Session,
    report: DetectReport,
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
                finding = Finding(
                    household_id=household.id,
                    kind=kind,
                    severity=severity.value,
                    score=score,
                    reason=verdict.reason,
                    fired_at=now,
                    since=since,
                )
                session.add(finding)
                report.findings.append(finding)
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
                (
                    f.reason
                    for f in reversed(report.findings)
                    if f.household_id == household.id and f.kind == verdict.kind
                ),
                "",
            )
    return list(last.values())


def _episode_start(detector: Detector, x: Interval) -> datetime | None:
    since = getattr(detector, "quiet_since", None) or getattr(detector, "silent_since", None)
    return since(x) if since else None


def _is_new_high(reported: Reported, since: datetime | None, severity: Severity) -> bool:
    if reported.since != since:
        return True
    return RANK[severity] > RANK[Severity(reported.severity)]


def _reconcile_incident(session, household, verdict, state, now, report, hooks) -> None:
    reported = state.inactivity_reported if verdict.kind == "inactivity" else state.outage_reported
    if verdict.severity == Severity.alert:
        # One incident per episode: once people have dealt with this stretch (resolved it as
        # "away", say), the same unbroken stretch does not open a new one every run.
        if reported.incident_for == verdict.since and verdict.since is not None:
            return
        opened = hooks.open(session, household, verdict, now)
        reported.incident_for = verdict.since
        if opened is not None:
            report.incidents_opened.append(opened)
    elif verdict.severity == Severity.normal and reported.incident_for is not None:
        # Only a household we opened an incident for can have one to close: no query otherwise.
        reported.incident_for = None
        closed = hooks.close(session, household, verdict.kind, now)
        if closed is not None:
            report.incidents_resolved.append(closed)
