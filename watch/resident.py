"""Detector state held in memory by the long-running scheduler, for the households that are quiet.

Without it, every detection run reads each household's pickled state from the database,
restores it, scores, pickles it and writes it back: at 100,000 households that round trip is
most of a 30-minute tick. ``areawatch run`` is one long-lived process (it holds the scheduler
lease), so it keeps the state of the quiet households as rows of column arrays
(``QuietStretchState``, the detectors' batch form), scores each run's new slots in place through
the batch path, and writes a household's state to the database only once it has scored
``flush_every`` of data past its checkpoint (and when it stops, unless it keeps a snapshot file
instead: ``watch.resident_snapshot``). The measure is data time, not the clock: it bounds what
a crash costs (at most that much re-scoring per household), and a backfill scored in one run is
written at once.

**Why this stays consistent with only the database as the store of record.** A household is
*resident* only while it has nothing to report: no open episode or incident, no silence, no
answer waiting to be fed back, the TV off between runs. A run that would give a resident
household anything to write (a score reaching ``watch``, a silence, a set left on) first hands
it back to the ordinary path (``watch.detect``) with the state it had before the run, so its
findings, incidents and checkpoint are written in one transaction as always. The checkpoint
row of a resident household is therefore always a consistent (cursor, state) pair from which
the same quiet slots would be scored again. If the process dies, the next process re-scores
those slots from the database (the readings are there); they were quiet, so nothing is written
twice and nothing is lost.

Memory: a row is about 9.3 kB (a week of readings as float64, 48 x 60 stretch lengths as int16
half-hours), so 100,000 quiet households hold about 1 GB.

A checkpoint moved by another process (``areawatch detect`` run by hand beside the scheduler)
evicts the household: the database wins. A flush writes a row only where the database still
holds the cursor this store last saw (a guarded update).
"""

from __future__ import annotations

import logging
import pickle
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.engine import Engine

from data.new_readings import NO_READINGS, ReadingColumns
from data.tables import DetectorCheckpoint
from detectors.batch_quiet import QuietStretchBatch, QuietStretchState, detector_parameters
from detectors.inactivity import QuietStretchDetector
from detectors.outage import DataOutage
from watch import state_rows
from watch.batch_scoring import fill_kwh, outage_scores_of
from watch.detect import (
    CHECKPOINT_NAME,
    DetectReport,
    HouseholdResult,
    Outcome,
    _load_new_data,
    batched,
    scorable_untils,
)
from watch.household_state import HouseholdState, Reported
from watch.slots import SLOT, TvState, build_slots
from watch.state_rows import household_state

log = logging.getLogger(__name__)

#: Households per block: a block's arrays are allocated once (about 38 MB), so memory grows
#: by blocks without copying what is held, and a run's copies stay this size.
BLOCK_ROWS = 4096


def _epoch(when: datetime) -> float:
    return when.timestamp()


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(float(epoch), tz=UTC)


# -- rows of a QuietStretchState -------------------------------------------------------------


def _columns(state: QuietStretchState) -> Iterable[tuple[object, str]]:
    """Every array of ``state`` as (owner, attribute), the evidence's included."""
    for f in fields(state):
        if f.name == "evidence":
            yield from ((state.evidence, name) for name in vars(state.evidence))
        else:
            yield state, f.name


def _put(state: QuietStretchState, rows: np.ndarray, part: QuietStretchState) -> None:
    """Write ``part``'s rows into ``rows`` of ``state``."""
    for (owner, name), (source, _) in zip(_columns(state), _columns(part), strict=True):
        getattr(owner, name)[rows] = getattr(source, name)


# -- blocks of households that share their detector parameters ---------------------------------


@dataclass
class Block:
    """Up to ``BLOCK_ROWS`` resident households whose detectors share one set of parameters (and
    time zone): their ``QuietStretchState`` rows and what the application keeps beside them."""

    inactivity: tuple  # ``detector_parameters`` of their QuietStretchDetector
    outage: tuple  # and of their DataOutage
    state: QuietStretchState
    ids: list[str | None]
    cursor: np.ndarray  # scored until (epoch s)
    base: np.ndarray  # the cursor of the database's checkpoint
    flush_at: np.ndarray  # the cursor at which the row is written next (epoch s)
    last_data: np.ndarray  # DataOutage's ``_last_data`` (epoch s; NaN: none)
    free: list[int]
    fed: dict[int, list[int]] = field(default_factory=dict)  # outcomes fed back, by row

    @classmethod
    def new(cls, inactivity: tuple, outage: tuple) -> Block:
        rows = BLOCK_ROWS
        per_bin = dict(inactivity)["history_per_bin"]
        return cls(
            inactivity,
            outage,
            QuietStretchState.fresh(rows, per_bin),
            ids=[None] * rows,
            cursor=np.full(rows, np.nan),
            base=np.full(rows, np.nan),
            flush_at=np.full(rows, np.nan),
            last_data=np.full(rows, np.nan),
            free=list(range(rows - 1, -1, -1)),
        )

    def allocate(self, count: int) -> np.ndarray:
        """Up to ``count`` free rows."""
        return np.array(
            [self.free.pop() for _ in range(min(count, len(self.free)))], dtype=np.int64
        )

    def release(self, row: int) -> None:
        self.ids[row] = None
        self.fed.pop(row, None)
        self.free.append(row)
        # A free row rides along when a whole block is scored: it must not hold a stale slot
        # clock, which the batch path would refuse.
        self.state.next_end[row] = np.nan

    def saved_rows(self, rows: np.ndarray) -> tuple[state_rows.Rows, list[tuple[int, ...]]]:
        """Rows ``rows`` as checkpoint rows (a held household's set is off), and each one's
        incidents fed back."""
        tv_off = np.full(len(rows), np.nan)
        fed = [tuple(self.fed.get(int(row), ())) for row in rows]
        return state_rows.Rows(self.state.rows(rows), self.last_data[rows], tv_off), fed

    def rebuild(self, rows: np.ndarray) -> list[HouseholdState]:
        """The ``HouseholdState`` of each row, as the one-at-a-time path would have saved it."""
        saved, fed = self.saved_rows(rows)
        return state_rows.household_states(saved, self.inactivity, self.outage, fed)


def _parameters(state: HouseholdState) -> tuple[tuple, tuple] | None:
    """The block key of a state that can be resident, else ``None``."""
    if (
        state.tv != TvState()
        or state.inactivity_reported != Reported()
        or state.outage_reported != Reported()
        or type(state.inactivity) is not QuietStretchDetector
        or type(state.outage) is not DataOutage
    ):
        return None
    return detector_parameters(state.inactivity), detector_parameters(state.outage)


class ResidentStates:
    """The quiet households' detector state, kept by the process that scores them.

    ``run_detection(resident=...)`` asks it to score its households first (``score``), sends
    the ones it hands back and all the others the ordinary way, offers each written result back
    (``admit``) and lets it write what is due (``flush``).
    """

    def __init__(self, *, flush_every: timedelta = timedelta(hours=6)) -> None:
        self.flush_every = flush_every
        self._blocks: dict[tuple, list[Block]] = defaultdict(list)
        self._where: dict[str, tuple[Block, int]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, household_id: object) -> bool:
        return household_id in self._where

    def held(self) -> dict[str, tuple[datetime, HouseholdState]]:
        """Each resident household's cursor and state, as a flush would write them."""
        held = {}
        for household_id, (block, row) in self._where.items():
            (state,) = block.rebuild(np.array([row]))
            held[household_id] = (_when(block.cursor[row]), state)
        return held

    # -- snapshot files (``watch.resident_snapshot``) -----------------------------------------

    def blocks(self) -> list[Block]:
        """Every block, as they are (not copies): for writing a snapshot between runs."""
        return [block for blocks in self._blocks.values() for block in blocks]

    def adopt(self, blocks: Iterable[Block]) -> None:
        """Take blocks read back from a snapshot, into an empty store. Each row keeps its
        ``base``, so the next run's ``reconcile`` evicts every household whose checkpoint
        moved since the snapshot was written."""
        if self._where:
            raise ValueError("only an empty store adopts a snapshot")
        for block in blocks:
            self._blocks[(block.inactivity, block.outage)].append(block)
            for row, household_id in enumerate(block.ids):
                if household_id is not None:
                    self._where[household_id] = (block, row)

    # -- a run --------------------------------------------------------------------------------

    def reconcile(self, cursors: dict[str, datetime | None]) -> None:
        """Drop households gone from the roster or whose checkpoint another process moved;
        then give ``cursors`` the resident households' own (they are ahead of the database's)."""
        for household_id, (block, row) in list(self._where.items()):
            saved = cursors.get(household_id, "gone")
            if saved == "gone" or saved is None or _epoch(saved) != block.base[row]:
                self._drop(household_id)
        for household_id, (block, row) in self._where.items():
            cursors[household_id] = _when(block.cursor[row])

    def score(
        self,
        *,
        engine: Engine,
        now: datetime,
        data_grace: timedelta,
        silenced: set[str],
        outcomes: dict[str, list[Outcome]],
        report: DetectReport,
    ) -> dict[str, tuple[datetime, bytes]]:
        """Score the resident households' new slots in place.

        Returns the households handed back, each with its cursor and its pickled state before
        this run: those to be scored the ordinary way (silenced, an answer to feed back, a score
        reaching ``watch`` somewhere in the new slots, or the TV still on at the end).
        """
        handed: dict[str, tuple[datetime, bytes]] = {}
        for household_id in list(self._where):
            block, row = self._where[household_id]
            fed = block.fed.get(row, [])
            if household_id in silenced or any(
                o.incident_id not in fed for o in outcomes.get(household_id, ())
            ):
                handed[household_id] = self._hand_back(household_id)
        cursors = {h: _when(block.cursor[row]) for h, (block, row) in self._where.items()}
        readings, tv_events = _load_new_data(engine, cursors, now)
        groups: dict[tuple, list[str]] = defaultdict(list)
        untils = scorable_untils(
            [readings.get(h, NO_READINGS) for h in cursors],
            list(cursors.values()),
            now=now,
            data_grace=data_grace,
        )
        for (household_id, after), until in zip(cursors.items(), untils, strict=True):
            if until > after:
                block, _ = self._where[household_id]
                groups[(id(block), after, until)].append(household_id)
        for (_, after, until), members in groups.items():
            self._score_group(members, readings, tv_events, after, until, report, handed)
        return handed

    def _score_group(
        self,
        members: list[str],
        readings: dict[str, ReadingColumns],
        tv_events: dict[str, list],
        after: datetime,
        until: datetime,
        report: DetectReport,
        handed: dict[str, tuple[datetime, bytes]],
    ) -> None:
        block = self._where[members[0]][0]
        rows = np.array([self._where[h][1] for h in members], dtype=np.int64)
        slots = round((until - after) / SLOT)
        # On a tick, a group is usually every household of its block: then the block's arrays
        # go through the batch path as they are (free rows too, as missing data) and the
        # result replaces them, instead of copying the rows out and back.
        whole = len(rows) == len(block.ids) - len(block.free)
        lines = rows if whole else np.arange(len(members))  # each member's row in the matrices
        height = len(block.ids) if whole else len(members)
        kwh = np.full((height, slots), np.nan)
        operations = np.zeros(kwh.shape, dtype=np.int64)
        on_minutes = np.zeros(kwh.shape)
        left_on = np.zeros(len(members), dtype=bool)  # the set still on: state we cannot hold
        # Every member's kWh in one call; the few with TV events also get their TV columns.
        fill_kwh(kwh, lines, [readings.get(h, NO_READINGS) for h in members], after)
        for number in [n for n, h in enumerate(members) if tv_events.get(h)]:
            tv = TvState()  # a resident household's set was off
            intervals = build_slots(
                after=after,
                until=until,
                readings=readings.get(members[number], NO_READINGS),
                tv_events=tv_events[members[number]],
                tv_state=tv,
            )
            line = lines[number]
            operations[line] = [x.tv_operations for x in intervals]
            on_minutes[line] = [x.tv_on_minutes for x in intervals]
            left_on[number] = tv.on_since is not None
        before = block.state if whole else block.state.rows(rows)
        model = QuietStretchBatch.like(QuietStretchDetector(**dict(block.inactivity)))
        scores, after_run = model.run(kwh, operations, on_minutes, before, first_end=after + SLOT)
        outage_scores, last_data = outage_scores_of(
            block.last_data[rows], kwh[lines], operations[lines], on_minutes[lines], after
        )
        quiet = (
            (scores[lines].max(axis=1) < model.watch_threshold)
            & (outage_scores.max(axis=1) < dict(block.outage)["watch_threshold"])
            & ~left_on
        )
        for number in np.flatnonzero(~quiet):
            # Handed back with the state from before the run, still in the block.
            handed[members[number]] = self._hand_back(members[number])
        kept = np.flatnonzero(quiet)
        if whole:
            block.state = after_run  # rows just handed back are free: nothing reads them
            block.state.next_end[block.free] = np.nan  # as ``release`` leaves a free row
        else:
            _put(block.state, rows[kept], after_run.rows(kept))
        block.cursor[rows[kept]] = _epoch(until)
        block.last_data[rows[kept]] = last_data[kept]
        report.households_scored += len(kept)
        report.slots_scored += len(kept) * slots

    def _hand_back(self, household_id: str) -> tuple[datetime, bytes]:
        block, row = self._where[household_id]
        (state,) = block.rebuild(np.array([row]))
        cursor = _when(block.cursor[row])
        self._drop(household_id)
        return cursor, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def _drop(self, household_id: str) -> None:
        block, row = self._where.pop(household_id)
        block.release(row)

    # -- households coming in ---------------------------------------------------------------

    def admit(self, results: list[HouseholdResult], now: datetime, skip: set[str]) -> int:
        """Keep the quiet ones among ``results``, just written to the database; how many."""
        by_block: dict[tuple, list[tuple[HouseholdResult, bytes | HouseholdState]]]
        by_block = defaultdict(list)
        for result in results:
            if result.household_id in skip or result.household_id in self._where:
                continue
            if state_rows.is_row(result.state):  # a quiet home's, as the batch path saves it
                header = state_rows.header_of(result.state)
                by_block[(header.inactivity, header.outage)].append((result, result.state))
                continue
            state = household_state(result.state)
            key = _parameters(state)
            if key is not None:
                by_block[key].append((result, state))
        admitted = 0
        for key, members in by_block.items():
            try:
                arrays, fed = state_rows.gather([saved for _, saved in members])
            except ValueError:  # a history the batch path cannot hold: stays in the database
                continue
            off = np.flatnonzero(np.isnan(arrays.tv_on_since))  # a set left on is not held
            if len(off) < len(members):
                arrays = arrays.take(off)
                fed = [fed[i] for i in off]
                members = [members[i] for i in off]
            blocks = self._blocks[key]
            placed = 0
            while placed < len(members):
                block = next((b for b in blocks if b.free), None)
                if block is None:
                    block = Block.new(*key)
                    blocks.append(block)
                rows = block.allocate(len(members) - placed)
                taken = slice(placed, placed + len(rows))
                _put(block.state, rows, arrays.state.rows(taken))
                block.last_data[rows] = arrays.last_data[taken]
                for row, (result, _), outcomes_fed in zip(
                    rows, members[taken], fed[taken], strict=True
                ):
                    block.ids[row] = result.household_id
                    block.cursor[row] = block.base[row] = _epoch(result.scored_until)
                    block.flush_at[row] = (
                        block.cursor[row] + self._every - self._stagger(len(self._where))
                    )
                    if outcomes_fed:
                        block.fed[int(row)] = list(outcomes_fed)
                    self._where[result.household_id] = (block, int(row))
                placed += len(rows)
            admitted += len(members)
        return admitted

    @property
    def _every(self) -> float:
        return self.flush_every.total_seconds()

    def _stagger(self, number: int) -> float:
        """How much sooner than ``flush_every`` the ``number``-th household admitted is first
        written, so that households admitted together (all of them, on the first run) are
        written a twelfth at a time rather than all in one run."""
        return (number % 12) / 12 * self._every

    # -- writing to the database ----------------------------------------------------------------

    def flush(self, engine: Engine, now: datetime, *, everything: bool = False) -> int:
        """Write the households that have scored ``flush_every`` of data past their checkpoint
        (``everything``: all scored past it, as on shutdown); how many were written. ``now`` is
        only the rows' ``updated_at``."""
        written = 0
        for block in (b for blocks in self._blocks.values() for b in blocks):
            ahead = np.array([i is not None for i in block.ids]) & (block.cursor != block.base)
            if not everything:
                ahead &= block.cursor >= block.flush_at
            for part in batched(np.flatnonzero(ahead).tolist(), 500):
                rows = np.array(part, dtype=np.int64)
                written += self._write(engine, block, rows, now)
        return written

    def _write(self, engine: Engine, block: Block, rows: np.ndarray, now: datetime) -> int:
        # Saved as rows (``watch.state_rows``): what ``Block.rebuild`` would give, without
        # building and pickling detector objects for every household written.
        held, fed = block.saved_rows(rows)
        saved = state_rows.encode(held, block.inactivity, block.outage, fed)
        table = DetectorCheckpoint.__table__
        statement = (
            update(table)
            .where(
                and_(
                    table.c.household_id == bindparam("b_household"),
                    table.c.detector == CHECKPOINT_NAME,
                    table.c.scored_until == bindparam("b_base"),
                )
            )
            .values(
                state=bindparam("b_state"),
                scored_until=bindparam("b_cursor"),
                updated_at=bindparam("b_now"),
            )
        )
        values = [
            {
                "b_household": block.ids[row],
                "b_base": _when(block.base[row]),
                "b_state": state,
                "b_cursor": _when(block.cursor[row]),
                "b_now": now,
            }
            for row, state in zip(rows, saved, strict=True)
        ]
        ids = [block.ids[row] for row in rows]
        with engine.begin() as connection:
            connection.execute(statement, values)
            stored = dict(
                connection.execute(
                    select(table.c.household_id, table.c.scored_until).where(
                        table.c.detector == CHECKPOINT_NAME, table.c.household_id.in_(ids)
                    )
                ).all()
            )
        written = 0
        for row, household_id in zip(rows, ids, strict=True):
            if stored.get(household_id) != _when(block.cursor[row]):
                # Another process moved this checkpoint since we read it: ours was not written,
                # and the database wins.
                self._drop(household_id)
                continue
            block.base[row] = block.cursor[row]
            block.flush_at[row] = block.cursor[row] + self._every
            written += 1
        return written
