"""The vectorised batch path of ``ActivityEvidence`` and ``NoActivityRule`` (households × slots).

Scoring a day of a million homes one ``Interval`` at a time costs minutes of Python; here the same
model runs as numpy over a 2-D array ``kwh[households, slots]`` (NaN = no reading), looping only
over the slots. The answers are the one-at-a-time answers, slot for slot, not an approximation:

- ``evidence_batch``: ``ActivityEvidence.is_evidence`` as ``QuietTracker`` drives it (each
  interval judged before it is learned);
- ``quiet_hours_batch``: ``QuietTracker.peek(x).quiet_minutes / 60`` (a missing slot neither
  extends nor ends the stretch);
- ``NoActivityRuleBatch(hours).score``: ``NoActivityRule.score_one`` with ``learn_one`` after it.

Exactness needs the model's bookkeeping too, not just its formulas: ``ActivityEvidence`` caches
its noise and recomputes it only when it is asked for it after ``_REFRESH_EVERY`` learned readings
(or while it has at most ``_MIN_READINGS``), so *when* the noise changes depends on the whole past
of the stream. ``BatchState`` carries that bookkeeping (the window of readings, the last reading,
the refresh counter, the cached noise, the quiet minutes) from one batch to the next, and
``BatchState.from_trackers`` takes it from running one-at-a-time detectors.

The noise is the median of a week of changes, recomputed every few readings: the batch path
keeps, per home, how many changes lie below its present noise, so most recomputations confirm
the old value without a pass over the window; the value it settles on is the one ``np.median``
returns (``_noise_with_hint``).

Known limits: ``is_raised`` and the stuck-load minutes are not reproduced; ``QuietStretchDetector``
has its own batch path (``detectors.batch_quiet``: its floor refreshes also depend on whether the
stretch was flagged, and its history changes within the day as stretches end). Slots are
assumed to be 30 minutes (``window_days * 48`` readings). The state holds a week of readings per
home in float64: about 2.7 GB for a million homes.

Examples
--------
>>> kwh = np.array([[0.05, 0.40, 0.05, np.nan, 0.05]])
>>> evidence_batch(kwh, np.zeros_like(kwh, dtype=int)).tolist()
[[False, True, True, False, False]]
>>> quiet_hours_batch(kwh, np.zeros_like(kwh, dtype=int)).tolist()
[[0.5, 0.0, 0.0, 0.0, 0.5]]
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from detectors.activity import _EPSILON_MINUTES, _MIN_READINGS, _REFRESH_EVERY, QuietTracker

_SLOTS_PER_DAY = 48
_NOISE_FLOOR = 1e-3  # as in ActivityEvidence._baseline_and_noise
_CHUNK = 4_096  # households per pass: small enough that a slot's arrays stay in cache
_BASELINE_QUANTILE = 0.1  # as in ActivityEvidence._baseline_and_noise


@dataclass
class BatchState:
    """What one-at-a-time detectors would hold per household, as arrays (one row a household).

    ``window`` holds the last ``window_days * 48`` observed readings right-aligned (NaN before the
    first), ``length`` how many of them are real. ``valid`` says whether ``noise`` is the cached
    value (``ActivityEvidence._floor`` is not None); ``counter`` is readings learned since it was
    computed, and ``baseline`` the standby floor computed with it. ``last_kwh`` is NaN before any
    reading. ``tv_unattended`` and ``tv_on_at_end`` are
    the TV's minutes on without a key pressed and whether it was on at the end of the last
    counted slot (to tell its auto-off from a person); ``tv_went_off`` whether the set switched
    itself off part-way through that slot (the next reading still falls by its share).
    """

    window: np.ndarray
    length: np.ndarray
    last_kwh: np.ndarray
    counter: np.ndarray
    valid: np.ndarray
    noise: np.ndarray
    baseline: np.ndarray
    quiet_minutes: np.ndarray
    tv_unattended: np.ndarray
    tv_on_at_end: np.ndarray
    tv_went_off: np.ndarray

    @classmethod
    def fresh(cls, households: int, window_days: int = 7) -> BatchState:
        """The state of ``households`` new detectors (nothing learned)."""
        return cls(
            window=np.full((households, window_days * _SLOTS_PER_DAY), np.nan),
            length=np.zeros(households, dtype=np.int64),
            last_kwh=np.full(households, np.nan),
            counter=np.zeros(households, dtype=np.int64),
            valid=np.zeros(households, dtype=bool),
            noise=np.zeros(households),
            baseline=np.zeros(households),
            quiet_minutes=np.zeros(households),
            tv_unattended=np.zeros(households),
            tv_on_at_end=np.zeros(households, dtype=bool),
            tv_went_off=np.zeros(households, dtype=bool),
        )

    @classmethod
    def from_trackers(cls, trackers: Sequence[QuietTracker]) -> BatchState:
        """The state of running ``QuietTracker`` s (e.g. ``NoActivityRule._tracker_state()``)."""
        window_days = {t.evidence.window_days for t in trackers}
        if len(window_days) > 1:
            raise ValueError("all trackers must share window_days")
        state = cls.fresh(len(trackers), window_days.pop() if window_days else 7)
        width = state.window.shape[1]
        for row, tracker in enumerate(trackers):
            state.quiet_minutes[row] = tracker.quiet_minutes
            evidence = tracker.evidence
            if not hasattr(evidence, "_readings"):
                continue
            state.tv_unattended[row], state.tv_on_at_end[row] = getattr(
                evidence, "_tv", (0.0, False)
            )
            state.tv_went_off[row] = getattr(evidence, "_tv_went_off_itself", False)
            readings = list(evidence._readings)
            if readings:
                state.window[row, width - len(readings) :] = readings
            state.length[row] = len(readings)
            if evidence._last_kwh is not None:
                state.last_kwh[row] = evidence._last_kwh
            state.counter[row] = evidence._learned_since_floor
            if evidence._floor is not None:
                state.valid[row] = True
                state.baseline[row], state.noise[row] = evidence._floor
        return state

    def to_trackers(self, trackers: Sequence[QuietTracker]) -> None:
        """Write each row back into the ``QuietTracker`` (and its ``ActivityEvidence``) of the
        same index, in place: the inverse of ``from_trackers``, so one-at-a-time detectors can
        carry on from where a batch left off. The trackers' evidence must have this window."""
        if len(trackers) != len(self.length):
            raise ValueError("one tracker per row")
        width = self.window.shape[1]
        for row, tracker in enumerate(trackers):
            evidence = tracker.evidence
            if evidence.window_days * _SLOTS_PER_DAY != width:
                raise ValueError("the trackers' evidence window differs from the state's")
            readings = evidence._state()
            readings.clear()
            length = int(self.length[row])
            if length:
                readings.extend(self.window[row, width - length :].tolist())
            last = self.last_kwh[row]
            evidence._last_kwh = None if np.isnan(last) else float(last)
            evidence._learned_since_floor = int(self.counter[row])
            evidence._tv = (float(self.tv_unattended[row]), bool(self.tv_on_at_end[row]))
            evidence._tv_went_off_itself = bool(self.tv_went_off[row])
            tracker.quiet_minutes = float(self.quiet_minutes[row])

    def rows(self, part: slice | np.ndarray) -> BatchState:
        """The households in ``part``: views for a slice, copies for an array of row numbers."""
        return BatchState(**{k: v[part] for k, v in vars(self).items()})


class BatchResult(NamedTuple):
    """Per slot: whether it shows a person, the quiet minutes once it is counted; and the state
    after the last slot (to carry into the next batch)."""

    evidence: np.ndarray
    quiet_minutes: np.ndarray
    state: BatchState


class _Counts(NamedTuple):
    """Per row, how many changes in the full window lie below, and at or below, its noise
    (valid where ``counted``): kept up to date reading by reading, so confirming that the noise
    has not moved needs no pass over the window."""

    below: np.ndarray
    at_or_below: np.ndarray
    counted: np.ndarray


def _noise_of(
    changes: np.ndarray,
    rows: np.ndarray,
    seen: np.ndarray,
    lengths: np.ndarray,
    width: int,
    prior_noise_kwh: float,
    noise: np.ndarray,
    counts: _Counts,
) -> np.ndarray:
    """``ActivityEvidence``'s noise for ``rows``: the prior below ``_MIN_READINGS`` readings, else
    the median absolute change over the window (at least 1e-3).

    ``changes`` are the absolute changes between readings in learning order; a row whose window
    starts at reading ``seen`` holds its changes in columns ``[seen, seen + width - 1)``. Rows are
    grouped by window position so each group is a plain column slice (fast to copy). Each row's
    present ``noise`` is usually still the answer: ``counts`` confirm it without looking at the
    window; otherwise ``_noise_with_hint`` starts from it. ``counts`` are updated for ``rows``.
    """
    hints = noise[rows]
    result = np.full(len(rows), prior_noise_kwh)
    middle = (width - 1) // 2
    full = lengths == width
    sure = (
        full
        & ((width - 1) % 2 == 1)
        & counts.counted[rows]
        & (hints >= _NOISE_FLOOR)
        & (middle < counts.at_or_below[rows])
        & ((counts.below[rows] <= middle) | (hints <= _NOISE_FLOOR))
    )
    result[sure] = hints[sure]
    counts.counted[rows[~sure]] = False  # until counted again below
    look = np.flatnonzero(~sure & (lengths >= _MIN_READINGS))
    key = seen[look] * (width + 1) + lengths[look]
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for group in np.split(look[order], bounds) if look.size else ():
        start, length = int(seen[group[0]]), int(lengths[group[0]])
        block = changes[rows[group], start + width - length : start + width - 1]
        rows_here = rows[group]
        below = counts.below[rows_here].copy()
        at_or_below = counts.at_or_below[rows_here].copy()
        unknown = np.flatnonzero(~counts.counted[rows_here])
        if unknown.size:
            level = hints[group][unknown, None]
            below[unknown] = np.count_nonzero(block[unknown] < level, axis=1)
            at_or_below[unknown] = np.count_nonzero(block[unknown] <= level, axis=1)
        found = _noise_with_hint(block, hints[group], below, at_or_below)
        result[group] = found[0]
        if length == width:
            counts.below[rows_here], counts.at_or_below[rows_here] = found[1], found[2]
            counts.counted[rows_here] = found[3]
    return result


def _noise_with_hint(
    block: np.ndarray,
    hints: np.ndarray,
    below: np.ndarray | None = None,
    at_or_below: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``max(median(row), 1e-3)`` for each row of ``block`` (which it reorders), exactly.

    A few new changes rarely move the median of a week of them, and never by more than a few
    ranks: counting the values below and at the previous noise (``hints``; the counts are taken
    if not given) confirms it, and when it moved by one distinct value, the next value up or down
    is it. Only the rows where it moved further pay for a selection. Returns the noise and, per
    row, the counts below and at or below it, and whether those counts are known.
    """
    count = block.shape[1]
    if count % 2 == 0:  # only short windows: np.median's mean of the two middle values
        unknown = np.zeros(len(block), dtype=np.int64)
        noise = np.maximum(np.median(block, axis=1), _NOISE_FLOOR)
        return noise, unknown, unknown, np.zeros(len(block), dtype=bool)
    middle = count // 2
    column = hints[:, None]
    if below is None or at_or_below is None:
        at_or_below = np.count_nonzero(block <= column, axis=1)
        below = np.count_nonzero(block < column, axis=1)
    # The hint is the median when it sits at the middle rank; a floor hint also stands when the
    # median is anywhere at or under the floor.
    kept = (middle < at_or_below) & ((below <= middle) | (hints <= _NOISE_FLOOR))
    kept &= hints >= _NOISE_FLOOR  # else the floor, not the hint, is the noise
    noise = np.maximum(hints, _NOISE_FLOOR)
    new_below, new_at_or_below = below.copy(), at_or_below.copy()
    counted = kept.copy()
    known = ~np.isnan(hints)
    for up in (True, False):
        rows = np.flatnonzero(~kept & known & ((at_or_below <= middle) == up))
        if rows.size == 0:
            continue
        part, hint = block[rows], column[rows]
        if up:
            step = np.where(part > hint, part, np.inf).min(axis=1)
            under = at_or_below[rows]  # nothing lies between the hint and the step
            upto = np.count_nonzero(part <= step[:, None], axis=1)
        else:
            step = np.where(part < hint, part, -np.inf).max(axis=1)
            under = np.count_nonzero(part < step[:, None], axis=1)
            upto = below[rows]
        found = (under <= middle) & (middle < upto) & (step >= _NOISE_FLOOR)
        hit = rows[found]
        noise[hit], new_below[hit], new_at_or_below[hit] = step[found], under[found], upto[found]
        kept[hit] = counted[hit] = True
    moved = np.flatnonzero(~kept)
    if moved.size:
        rest = block[moved]
        # The middle order statistic, which is what np.median returns for an odd count.
        rest.partition(middle, axis=1)
        noise[moved] = np.maximum(rest[:, middle], _NOISE_FLOOR)
    return noise, new_below, new_at_or_below, counted


def _baseline_of(
    packed: np.ndarray, rows: np.ndarray, seen: np.ndarray, lengths: np.ndarray, width: int
) -> np.ndarray:
    """``ActivityEvidence``'s baseline for ``rows``: the 10% quantile of the window's readings
    (their minimum below ``_MIN_READINGS``, 0.0 with none). Rows are grouped by window position
    so each group is a plain column slice."""
    result = np.zeros(len(rows))
    key = seen * (width + 1) + lengths
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for group in np.split(order, bounds) if rows.size else ():
        start, length = int(seen[group[0]]), int(lengths[group[0]])
        if length == 0:
            continue
        block = packed[rows[group], start + width - length : start + width]
        if length < _MIN_READINGS:
            result[group] = block.min(axis=1)
        else:
            result[group] = np.quantile(block, _BASELINE_QUANTILE, axis=1)
    return result


def _run_chunk(
    kwh: np.ndarray,
    ops: np.ndarray,
    tv_on: np.ndarray,
    state: BatchState,
    noise_factor: float,
    min_step_kwh: float,
    prior_noise_kwh: float,
    slot_minutes: float,
    tv_auto_off_minutes: float,
) -> BatchResult:
    households, slots = kwh.shape
    width = state.window.shape[1]
    has = ~np.isnan(kwh)
    # Readings laid out in the order they are learned: the old window, then today's observed
    # readings packed left. Before slot t the window is columns [seen, seen + width).
    packed = np.full((households, width + slots), np.nan)
    packed[:, :width] = state.window
    seen_after = np.cumsum(has, axis=1)
    rows, cols = np.nonzero(has)
    packed[rows, width + seen_after[rows, cols] - 1] = kwh[rows, cols]
    changes = np.abs(np.diff(packed, axis=1))

    last = state.last_kwh.copy()
    counter = state.counter.copy()
    valid = state.valid.copy()
    noise = state.noise.copy()
    baseline = state.baseline.copy()
    quiet = state.quiet_minutes.copy()
    unattended = state.tv_unattended.copy()
    on_at_end = state.tv_on_at_end.copy()
    went_off = state.tv_went_off.copy()
    seen = np.zeros(households, dtype=np.int64)
    evidence_out = np.zeros((households, slots), dtype=bool)
    quiet_out = np.empty((households, slots))
    window_cols = np.arange(width)
    counts = _Counts(
        np.zeros(households, dtype=np.int64),
        np.zeros(households, dtype=np.int64),
        np.zeros(households, dtype=bool),
    )
    for t in range(slots):
        x, here = kwh[:, t], has[:, t]
        tv = ops[:, t] > 0
        length = np.minimum(state.length + seen, width)
        step = np.where(here & ~np.isnan(last), np.abs(x - last), 0.0)
        stepped = step >= min_step_kwh
        # When the one-at-a-time model asks for its noise: is_evidence when the step is big
        # enough, is_raised when nothing showed a person (peek). The answer does not matter
        # here, the asking does: it is what refreshes a stale noise.
        asked = ~tv & here & (stepped | (~(tv_on[:, t] > 0) & (length >= _MIN_READINGS)))
        refresh = np.flatnonzero(asked & ~valid)
        if refresh.size:
            noise[refresh] = _noise_of(
                changes,
                refresh,
                seen[refresh],
                length[refresh],
                width,
                prior_noise_kwh,
                noise,
                counts,
            )
            baseline[refresh] = _baseline_of(packed, refresh, seen[refresh], length[refresh], width)
            valid[refresh] = True
            counter[refresh] = 0
        on_minutes = tv_on[:, t]
        # The set's own auto-off: a fall in usage as a TV long on without a key goes off, or in
        # the next counted slot after it went off part-way through one.
        goes_off = (
            on_at_end
            & (on_minutes < slot_minutes - _EPSILON_MINUTES)
            & (unattended + on_minutes >= tv_auto_off_minutes)
        )
        auto_off = (goes_off | went_off) & here & (x < last)
        # A change between two readings at the standby level is the standby's own, not a person.
        level = baseline + np.maximum(min_step_kwh, noise_factor * noise)
        standby = (length >= _MIN_READINGS) & (x <= level) & (last <= level)
        evident = tv | (~tv & here & stepped & (step > noise_factor * noise) & ~auto_off & ~standby)
        observed = here | tv
        # learn_one's TV bookkeeping, for every slot the tracker counts.
        went_off = np.where(observed, ~tv & goes_off & (on_minutes > 0), went_off)
        ends_on = on_minutes >= slot_minutes - _EPSILON_MINUTES
        counted = np.where(tv, 0.0, unattended + on_minutes)
        unattended = np.where(observed, np.where(ends_on, counted, 0.0), unattended)
        on_at_end = np.where(observed, ends_on, on_at_end)
        quiet = np.where(evident, 0.0, np.where(observed, quiet + slot_minutes, quiet))
        evidence_out[:, t] = evident
        quiet_out[:, t] = quiet
        # learn_one: only a reading is learned (a TV operation without one is not). In a full
        # window the new change comes in and the oldest goes out: keep the counts.
        learned = np.flatnonzero(here & counts.counted)
        if learned.size:
            start, level = seen[learned], noise[learned]
            entering = changes[learned, start + width - 1]
            leaving = changes[learned, start]
            counts.below[learned] += (entering < level).astype(np.int64) - (leaving < level)
            counts.at_or_below[learned] += (entering <= level).astype(np.int64) - (leaving <= level)
        last = np.where(here, x, last)
        counter = counter + here
        seen = seen + here
        learned_length = np.minimum(state.length + seen, width)
        valid &= ~(here & ((counter >= _REFRESH_EVERY) | (learned_length <= _MIN_READINGS)))

    end = replace(
        state,
        window=packed[np.arange(households)[:, None], seen[:, None] + window_cols],
        length=np.minimum(state.length + seen, width),
        last_kwh=last,
        counter=counter,
        valid=valid,
        noise=noise,
        baseline=baseline,
        quiet_minutes=quiet,
        tv_unattended=unattended,
        tv_on_at_end=on_at_end,
        tv_went_off=went_off,
    )
    return BatchResult(evidence_out, quiet_out, end)


def run_batch(
    kwh: np.ndarray,
    tv_operations: np.ndarray,
    tv_on_minutes: np.ndarray | None = None,
    state: BatchState | None = None,
    *,
    window_days: int = 7,
    noise_factor: float = 2.0,
    min_step_kwh: float = 0.03,
    prior_noise_kwh: float = 0.01,
    slot_minutes: float = 30.0,
    tv_auto_off_minutes: float = 180.0,
    workers: int = 1,
) -> BatchResult:
    """Run ``QuietTracker(ActivityEvidence(...))`` over ``kwh[households, slots]`` at once.

    Parameters
    ----------
    kwh
        Readings, NaN where none arrived (never read as zero).
    tv_operations, tv_on_minutes
        Same shape; TV keys pressed, and minutes the set was on (0 if not given).
    state
        Where the detectors stand before the first slot (fresh detectors if not given).
    window_days, noise_factor, min_step_kwh, prior_noise_kwh, tv_auto_off_minutes
        ``ActivityEvidence``'s parameters.
    workers
        Threads, each scoring its own chunk of households (numpy releases the GIL in the heavy
        parts, so two threads on two cores come close to twice the speed).
    """
    kwh = np.asarray(kwh, dtype=np.float64)
    ops = np.asarray(tv_operations)
    on = np.zeros(kwh.shape) if tv_on_minutes is None else np.asarray(tv_on_minutes, dtype=float)
    if kwh.ndim != 2 or ops.shape != kwh.shape or on.shape != kwh.shape:
        raise ValueError("kwh, tv_operations and tv_on_minutes must be 2-D of the same shape")
    households = kwh.shape[0]
    state = BatchState.fresh(households, window_days) if state is None else state
    if state.window.shape != (households, window_days * _SLOTS_PER_DAY):
        raise ValueError("state does not match the households or window_days")

    def chunk(lo: int) -> BatchResult:
        part = slice(lo, lo + _CHUNK)
        return _run_chunk(
            kwh[part],
            ops[part],
            on[part],
            state.rows(part),
            noise_factor,
            min_step_kwh,
            prior_noise_kwh,
            slot_minutes,
            tv_auto_off_minutes,
        )

    starts = range(0, households, _CHUNK)
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(chunk, starts))
    else:
        parts = [chunk(lo) for lo in starts]
    if len(parts) == 1:
        return parts[0]
    joined = BatchState(
        **{k: np.concatenate([vars(p.state)[k] for p in parts]) for k in vars(parts[0].state)}
    )
    return BatchResult(
        np.concatenate([p.evidence for p in parts]),
        np.concatenate([p.quiet_minutes for p in parts]),
        joined,
    )


def evidence_batch(
    kwh: np.ndarray,
    tv_operations: np.ndarray,
    tv_on_minutes: np.ndarray | None = None,
    state: BatchState | None = None,
    **params: float,
) -> np.ndarray:
    """``ActivityEvidence.is_evidence`` at every slot (each judged before it is learned)."""
    return run_batch(kwh, tv_operations, tv_on_minutes, state, **params).evidence


def quiet_hours_batch(
    kwh: np.ndarray,
    tv_operations: np.ndarray,
    tv_on_minutes: np.ndarray | None = None,
    state: BatchState | None = None,
    **params: float,
) -> np.ndarray:
    """Observed quiet hours at every slot once it is counted (``QuietTracker.peek``)."""
    return run_batch(kwh, tv_operations, tv_on_minutes, state, **params).quiet_minutes / 60


class NoActivityRuleBatch:
    """``NoActivityRule`` over households × slots: score = quiet hours / ``hours``.

    Examples
    --------
    >>> kwh = np.full((2, 4), 0.05)
    >>> kwh[1, 2] = 0.5  # a kettle in the second home
    >>> NoActivityRuleBatch(hours=1).score(kwh, np.zeros((2, 4), dtype=int)).tolist()
    [[0.5, 1.0, 1.5, 2.0], [0.5, 1.0, 0.0, 0.0]]
    """

    def __init__(self, hours: float = 12.0, workers: int = 1) -> None:
        self.hours = hours
        self.workers = workers

    def run(
        self,
        kwh: np.ndarray,
        tv_operations: np.ndarray,
        tv_on_minutes: np.ndarray | None = None,
        state: BatchState | None = None,
    ) -> tuple[np.ndarray, BatchState]:
        """Scores at every slot, and the state after the last slot."""
        result = run_batch(kwh, tv_operations, tv_on_minutes, state, workers=self.workers)
        # The same arithmetic as score_one, so the floats are equal, not just close.
        return result.quiet_minutes / 60 / self.hours, result.state

    def score(
        self,
        kwh: np.ndarray,
        tv_operations: np.ndarray,
        tv_on_minutes: np.ndarray | None = None,
        state: BatchState | None = None,
    ) -> np.ndarray:
        """``NoActivityRule.score_one`` at every slot (``learn_one`` after each)."""
        return self.run(kwh, tv_operations, tv_on_minutes, state)[0]
