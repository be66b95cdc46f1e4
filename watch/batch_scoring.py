"""Scoring many households at once: the detectors' batch path, where it gives the same answer.

``score_household`` scores one home one interval at a time (about 80 µs a slot for both
detectors). Most homes, most of the time, have nothing to report: their scores stay below
``watch`` and no incident is open. For those, ``QuietStretchBatch`` scores every home of a
group as numpy arrays (a few µs a slot), the data-outage score is a running maximum, and the
detectors are written back with ``QuietStretchState.to_detectors``, so the saved state is the
one ``score_household`` would have saved.

Everything else goes the one-at-a-time way, from the household's saved state, so its findings,
explanations and incident decisions are exactly the application's rules:

- a home whose inactivity or outage score reached ``watch`` anywhere in the run (a finding may
  be due, and it needs the slot-by-slot episode bookkeeping and ``explain_one``);
- a home with a reported episode or an open incident (it may close);
- a silenced home (silences may end on activity) and one with answers not yet fed back;
- a group too small to be worth the arrays (``MIN_GROUP``).

A group is the homes that share a zone, a slot range (``after``, ``until``) and their detector
parameters: on a 30-minute tick or a daily run that is nearly all of them.
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np

from detectors.base import Severity
from detectors.batch_quiet import QuietStretchBatch, QuietStretchState, detector_parameters
from watch.detect import (
    HouseholdJob,
    HouseholdResult,
    Verdict,
    _feed_back,
    restore_state,
    score_household,
)
from watch.household_state import HouseholdState
from watch.slots import SLOT, build_slots, energy_by_slot

#: Below this many homes in a group the arrays cost more than they save.
MIN_GROUP = 8


def score_jobs(jobs: list[HouseholdJob]) -> list[HouseholdResult]:
    """Results for ``jobs``, in their order: batched where that is exact, else one at a time."""
    results: list[HouseholdResult | None] = [None] * len(jobs)
    groups: dict[tuple, list[tuple[int, HouseholdState]]] = defaultdict(list)
    for index, job in enumerate(jobs):
        state = restore_state(job)
        if _needs_one_at_a_time(job, state):
            results[index] = score_household(job, state)
        else:
            groups[_group_key(job, state)].append((index, state))
    for members in groups.values():
        if len(members) < MIN_GROUP:
            for index, state in members:
                results[index] = score_household(jobs[index], state)
            continue
        indexes = [index for index, _ in members]
        scored = _score_group([jobs[i] for i in indexes], members)
        for index, result in zip(indexes, scored, strict=True):
            results[index] = result if result is not None else score_household(jobs[index])
    return [r for r in results if r is not None]


def _needs_one_at_a_time(job: HouseholdJob, state: HouseholdState) -> bool:
    fed = getattr(state, "outcomes_fed", [])
    return (
        job.silenced
        or any(o.incident_id not in fed for o in job.outcomes)
        or _reporting(state.inactivity_reported)
        or _reporting(state.outage_reported)
    )


def _reporting(reported) -> bool:  # noqa: ANN001
    return reported.severity != "normal" or reported.incident_for is not None


def _group_key(job: HouseholdJob, state: HouseholdState) -> tuple:
    outage = state.outage
    return (
        job.after,
        job.until,
        detector_parameters(state.inactivity),
        (outage.watch_threshold, outage.alert_threshold),
    )


def _score_group(
    jobs: list[HouseholdJob], members: list[tuple[int, HouseholdState]]
) -> list[HouseholdResult | None]:
    """Each home's result, or ``None`` where it must be scored one interval at a time."""
    states = [state for _, state in members]
    after, until = jobs[0].after, jobs[0].until
    kwh, operations, on_minutes = _slot_arrays(jobs, states, after, until)
    end = until

    detectors = [state.inactivity for state in states]
    model = QuietStretchBatch.like(detectors[0])
    scores, after_run = model.run(
        kwh,
        operations,
        on_minutes,
        QuietStretchState.from_detectors(detectors),
        first_end=after + SLOT,
    )
    known = [getattr(s.outage, "_last_data", None) for s in states]
    outage_scores, last_data = outage_scores_of(known, kwh, operations, on_minutes, after)
    quiet = (scores.max(axis=1) < model.watch_threshold) & (
        outage_scores.max(axis=1) < states[0].outage.watch_threshold
    )
    # Every detector takes the batch's state; the homes that go one at a time start again from
    # their saved bytes, so what is written into these copies does not matter for them.
    after_run.to_detectors(detectors)
    results: list[HouseholdResult | None] = []
    for row, (job, state) in enumerate(zip(jobs, states, strict=True)):
        if not quiet[row]:
            results.append(None)
            continue
        state.outage._last_data = last_data[row]
        _feed_back(state, job.outcomes)  # all fed already: keeps the list bounded, as scoring does
        verdicts = [
            Verdict("inactivity", Severity.normal, float(scores[row, -1]), "", None, end),
            Verdict("outage", Severity.normal, float(outage_scores[row, -1]), "", None, end),
        ]
        results.append(
            HouseholdResult(
                household_id=job.household_id,
                state=pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL),
                scored_until=job.until,
                slots=kwh.shape[1],
                findings=[],
                verdicts=verdicts,
                incident_actions=[],
                last_activity=None,
            )
        )
    return results


def _slot_arrays(
    jobs: list[HouseholdJob], states: list[HouseholdState], after: datetime, until: datetime
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``kwh``, TV operations and on-minutes ``[home, slot]`` for the slots ending in
    ``(after, until]``: what ``build_slots`` gives, without an ``Interval`` per slot.

    Readings are summed into their slot (an hourly one split over two) in the order they come,
    and rounded to 6 places by Python's ``round``, as ``build_slots`` does, so the floats are
    the same. A home with TV events, or a set still on, goes through ``build_slots`` itself:
    its on-minutes carry ``TvState`` from run to run.
    """
    width = SLOT.total_seconds()
    slots = round((until - after).total_seconds() / width)
    kwh = np.full((len(jobs), slots), np.nan)
    operations = np.zeros((len(jobs), slots), dtype=np.int64)
    on_minutes = np.zeros((len(jobs), slots))
    for row, (job, state) in enumerate(zip(jobs, states, strict=True)):
        if job.tv_events or state.tv.on_since is not None:
            intervals = build_slots(
                after=after,
                until=until,
                readings=job.readings,
                tv_events=job.tv_events,
                tv_state=state.tv,
            )
            kwh[row] = [np.nan if x.kwh is None else x.kwh for x in intervals]
            operations[row] = [x.tv_operations for x in intervals]
            on_minutes[row] = [x.tv_on_minutes for x in intervals]
            continue
        fill_kwh(kwh[row], job.readings, after)
    return kwh, operations, on_minutes


def fill_kwh(row: np.ndarray, readings: list, after: datetime) -> None:
    """Write each slot's summed readings into ``row`` (column ``n - 1`` for the ``n``-th slot
    after ``after``), rounded as ``build_slots`` rounds; slots without a reading stay as they are.
    """
    for number, total in energy_by_slot(readings, after).items():
        if 1 <= number <= row.shape[0]:
            row[number - 1] = round(total, 6)


def outage_scores_of(
    known: list[datetime | None],
    kwh: np.ndarray,
    operations: np.ndarray,
    on_minutes: np.ndarray,
    after: datetime,
) -> tuple[np.ndarray, list[datetime]]:
    """``DataOutage.score_one`` at every slot (hours since the last slot with data), and each
    home's last slot with data after the run (what ``learn_one`` leaves in ``_last_data``);
    ``known`` is each home's ``_last_data`` before the run.

    Before any data the detector counts from the start of the first slot it saw, ``after``.
    """
    has_data = ~np.isnan(kwh) | (operations > 0) | (on_minutes > 0)
    slots = kwh.shape[1]
    ends = after.timestamp() + SLOT.total_seconds() * np.arange(1, slots + 1)
    before = np.array([(k or after).timestamp() for k in known])
    last = np.where(has_data, ends, -np.inf)
    last = np.maximum(np.maximum.accumulate(last, axis=1), before[:, None])
    scores = (ends - last) / 3600
    last_data = [
        datetime.fromtimestamp(float(last[row, -1]), tz=UTC)
        if has_data[row].any()
        else (known[row] or after)
        for row in range(len(known))
    ]
    return scores, last_data
