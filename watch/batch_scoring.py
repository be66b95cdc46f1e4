"""Scoring many households at once: the detectors' batch path, where it gives the same answer.

``score_household`` scores one home one interval at a time (about 80 µs a slot for both
detectors). Most homes, most of the time, have nothing to report: their scores stay below
``watch`` and no incident is open. For those, ``QuietStretchBatch`` scores every home of a
group as numpy arrays (a few µs a slot), the data-outage score is a running maximum, and each
home that stays quiet is saved as its row of the batch's arrays (``watch.state_rows``): the
state ``score_household`` would have saved, without building detector objects for it. A home
saved so is read back the same way the next run (and as detectors wherever it must go one at
a time).

Everything else goes the one-at-a-time way, from the household's saved state, so its findings,
explanations and incident decisions are exactly the application's rules:

- a home whose inactivity or outage score reached ``watch`` anywhere in the run (a finding may
  be due, and it needs the slot-by-slot episode bookkeeping and ``explain_one``), from the
  first slot that reached it: the quiet slots before it are scored in the batch;
- a home with a reported episode or an open incident (it may close);
- a silenced home (silences may end on activity) and one with answers not yet fed back;
- a group too small to be worth the arrays (``MIN_GROUP``).

A group is the homes that share a zone, a slot range (``after``, ``until``) and their detector
parameters: on a 30-minute tick or a daily run that is nearly all of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime

import numpy as np

from detectors.base import Severity
from detectors.batch_quiet import QuietStretchBatch
from detectors.inactivity import QuietStretchDetector
from watch import state_rows
from watch.detect import (
    HouseholdJob,
    HouseholdResult,
    Verdict,
    restore_state,
    score_household,
)
from watch.household_state import HouseholdState
from watch.slots import SLOT, TvState, build_slots, slot_kwh

#: Below this many homes in a group the arrays cost more than they save.
MIN_GROUP = 8


def score_jobs(jobs: list[HouseholdJob]) -> list[HouseholdResult]:
    """Results for ``jobs``, in their order: batched where that is exact, else one at a time."""
    results: list[HouseholdResult | None] = [None] * len(jobs)
    groups: dict[tuple, list[int]] = defaultdict(list)
    restored: dict[int, HouseholdState] = {}
    for index, job in enumerate(jobs):
        if state_rows.is_row(job.state):
            header = state_rows.header_of(job.state)
            if job.silenced or any(o.incident_id not in header.outcomes_fed for o in job.outcomes):
                results[index] = score_household(job)
            else:
                groups[(job.after, job.until, header.inactivity, header.outage)].append(index)
            continue
        state = restore_state(job)
        if _needs_one_at_a_time(job, state) or not state_rows.can_be_row(state):
            results[index] = score_household(job, state)
        else:
            restored[index] = state
            groups[(job.after, job.until, *state_rows.parameters(state))].append(index)
    for (_, _, inactivity, outage), indexes in groups.items():
        if len(indexes) < MIN_GROUP:
            for index in indexes:
                results[index] = score_household(jobs[index], restored.get(index))
            continue
        before, fed = state_rows.gather([restored.get(i) or jobs[i].state for i in indexes])
        scored = _score_group([jobs[i] for i in indexes], before, inactivity, outage, fed)
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


def _score_group(
    jobs: list[HouseholdJob],
    before: state_rows.Rows,
    inactivity: tuple,
    outage: tuple,
    fed: list[tuple[int, ...]],
) -> list[HouseholdResult | None]:
    """Each home's result, or ``None`` where it must be scored one interval at a time.

    ``before``: the homes' rows; ``inactivity``, ``outage``: their detectors' parameters;
    ``fed``: each home's incidents already fed back. Homes that stay quiet are saved as rows.
    """
    after, until = jobs[0].after, jobs[0].until
    tv = [TvState(on) for on in state_rows.whens(before.tv_on_since)]
    kwh, operations, on_minutes = _slot_arrays(jobs, tv, after, until)
    model = QuietStretchBatch.like(QuietStretchDetector(**dict(inactivity)))
    scores, after_run = model.run(kwh, operations, on_minutes, before.state, first_end=after + SLOT)
    outage_scores, last_data = outage_scores_of(
        before.last_data, kwh, operations, on_minutes, after
    )
    flagged = (scores >= model.watch_threshold) | (outage_scores >= dict(outage)["watch_threshold"])
    quiet = np.flatnonzero(~flagged.any(axis=1))
    resumed = _resume_after_quiet_prefix(
        jobs, before, tv, flagged, (kwh, operations, on_minutes), model, (inactivity, outage, fed)
    )
    saved = state_rows.encode(
        state_rows.Rows(
            after_run.rows(quiet),
            last_data=last_data[quiet],
            tv_on_since=state_rows.epochs([tv[row].on_since for row in quiet]),
        ),
        inactivity,
        outage,
        [fed[row][-64:] for row in quiet],  # bounded, as ``_feed_back`` keeps it
    )
    results: list[HouseholdResult | None] = [resumed.get(row) for row in range(len(jobs))]
    for row, state in zip(quiet.tolist(), saved, strict=True):
        verdicts = [
            Verdict("inactivity", Severity.normal, float(scores[row, -1]), "", None, until),
            Verdict("outage", Severity.normal, float(outage_scores[row, -1]), "", None, until),
        ]
        results[row] = HouseholdResult(
            household_id=jobs[row].household_id,
            state=state,
            scored_until=until,
            slots=kwh.shape[1],
            findings=[],
            verdicts=verdicts,
            incident_actions=[],
            last_activity=None,
        )
    return results


def _resume_after_quiet_prefix(
    jobs: list[HouseholdJob],
    before: state_rows.Rows,
    tv: list[TvState],
    flagged: np.ndarray,
    slot_arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    model: QuietStretchBatch,
    saved_with: tuple[tuple, tuple, list[tuple[int, ...]]],
) -> dict[int, HouseholdResult]:
    """Results for the flagged homes, by row, scored one interval at a time only from their
    first flagged slot: the quiet slots before it go through the batch path, as a quiet home's
    would (on a first day, a tenth of the homes reach ``watch``, most of them late in the run).

    Up to that slot the home had nothing to report, so what the one-at-a-time path would do
    there is only to learn: the batch's state after those slots is that state (the equality the
    batch path rests on), and the findings, episodes and incident decisions all come from the
    one-at-a-time path from there on. A home whose first slot is flagged, or whose TV was on or
    used (its set's state is carried slot by slot), is left to ``score_jobs``.
    """
    kwh, operations, on_minutes = slot_arrays
    inactivity, outage, fed = saved_with
    after = jobs[0].after
    by_prefix: dict[int, list[int]] = defaultdict(list)
    for row in np.flatnonzero(flagged.any(axis=1)).tolist():
        first = int(flagged[row].argmax())
        if first > 0 and not jobs[row].tv_events and tv[row].on_since is None:
            by_prefix[first].append(row)
    resumed: dict[int, HouseholdResult] = {}
    for length, rows in by_prefix.items():
        part = np.array(rows)
        _, prefix = model.run(
            kwh[part, :length],
            operations[part, :length],
            on_minutes[part, :length],
            before.state.rows(part),
            first_end=after + SLOT,
        )
        _, last_data = outage_scores_of(
            before.last_data[part],
            kwh[part, :length],
            operations[part, :length],
            on_minutes[part, :length],
            after,
        )
        states = state_rows.household_states(
            state_rows.Rows(prefix, last_data, np.full(len(rows), np.nan)),
            inactivity,
            outage,
            [fed[row] for row in rows],
        )
        for row, state in zip(rows, states, strict=True):
            job = replace(jobs[row], after=after + length * SLOT)
            result = score_household(job, state)
            result.slots += length
            resumed[row] = result
    return resumed


def _slot_arrays(
    jobs: list[HouseholdJob], tv: list[TvState], after: datetime, until: datetime
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``kwh``, TV operations and on-minutes ``[home, slot]`` for the slots ending in
    ``(after, until]``: what ``build_slots`` gives, without an ``Interval`` per slot.

    Every home's kWh comes from one ``slot_kwh`` call, the sums and rounding ``build_slots``
    uses, so the floats are the same. A home with TV events, or a set still on, also goes
    through ``build_slots`` for its TV columns: its on-minutes carry ``TvState`` from run to run
    (``tv``: each home's set, updated in place).
    """
    slots = round((until - after) / SLOT)
    kwh = slot_kwh([job.readings for job in jobs], after, slots)
    operations = np.zeros((len(jobs), slots), dtype=np.int64)
    on_minutes = np.zeros((len(jobs), slots))
    for row, (job, tv_state) in enumerate(zip(jobs, tv, strict=True)):
        if job.tv_events or tv_state.on_since is not None:
            intervals = build_slots(
                after=after,
                until=until,
                readings=job.readings,
                tv_events=job.tv_events,
                tv_state=tv_state,
            )
            operations[row] = [x.tv_operations for x in intervals]
            on_minutes[row] = [x.tv_on_minutes for x in intervals]
    return kwh, operations, on_minutes


def fill_kwh(kwh: np.ndarray, lines: np.ndarray, readings: list, after: datetime) -> None:
    """Write each home's slots into its line of ``kwh`` (``lines[i]`` for ``readings[i]``;
    column ``n - 1`` for the ``n``-th slot after ``after``; NaN where no reading came): all
    homes in one ``slot_kwh`` call, summed and rounded as ``build_slots`` does."""
    kwh[lines] = slot_kwh(readings, after, kwh.shape[1])


def outage_scores_of(
    known: np.ndarray,
    kwh: np.ndarray,
    operations: np.ndarray,
    on_minutes: np.ndarray,
    after: datetime,
) -> tuple[np.ndarray, np.ndarray]:
    """``DataOutage.score_one`` at every slot (hours since the last slot with data), and each
    home's last slot with data after the run (what ``learn_one`` leaves in ``_last_data``);
    ``known`` is each home's ``_last_data`` before the run. Times are epoch seconds, NaN for
    none, as rows and blocks hold them: no datetime per home.

    Before any data the detector counts from the start of the first slot it saw, ``after``.
    """
    has_data = ~np.isnan(kwh) | (operations > 0) | (on_minutes > 0)
    slots = kwh.shape[1]
    ends = after.timestamp() + SLOT.total_seconds() * np.arange(1, slots + 1)
    before = np.where(np.isnan(known), after.timestamp(), known)
    last = np.where(has_data, ends, -np.inf)
    last = np.maximum(np.maximum.accumulate(last, axis=1), before[:, None])
    scores = (ends - last) / 3600
    return scores, last[:, -1] if slots else before
