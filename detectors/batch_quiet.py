"""The vectorised batch path of ``QuietStretchDetector`` (households × slots).

``QuietStretchBatch.run`` scores ``kwh[households, slots]`` as numpy, looping only over the
slots, and gives what ``score_one(x)`` then ``learn_one(x)`` give on every slot of one-at-a-time
detectors with the same parameters. Like ``detectors.batch``, exactness needs the bookkeeping,
not just the formulas:

- when ``ActivityEvidence`` refreshes its floor (baseline and noise) depends on when it is asked
  for it, and the detector asks in more places than ``QuietTracker`` alone: ``learn_one`` asks
  ``is_raised`` of every reading it learns the raised rate from, unless the stretch is flagged;
- the history of past stretch lengths changes only when a stretch ends, and the stretch's start
  bin, prior and flag are fixed while it lasts;
- a stretch whose score reached ``alert_threshold`` is not learned unless it was vouched for.

The survival is computed only where it can differ from 1: while the present stretch is no longer
than every remembered stretch in its six bins and than the prior's expected night, the survival is
exactly 1 and the score exactly 0 (``QuietStretchState.bin_min`` keeps each bin's shortest
stretch for this). Elsewhere the kernel sum runs over the filled part of the six bins' ring
buffers at once. Stretch lengths are whole half-hours, so each kernel value is looked up in a
table computed with the detector's formula (homes with a stretch over ``_TABLE_STEPS``
half-hours compute it). The terms are added in another order than ``survival`` adds them (and
in an order that depends on how full the batch's fullest bin is), so scores agree with
``score_one`` to about 1e-15, not bit for bit; a score within that of ``alert_threshold`` could
in principle be flagged differently.

Time: slots are 30 minutes, the same for every household, ending at ``first_end``,
``first_end + 30 min``, … Local time (start bins, the prior's night, the hour of the raised
rate) comes from the detector's one IANA ``timezone`` per batch, converted with ``zoneinfo`` at
each slot boundary, so daylight-saving changes are handled as the one-at-a-time detector handles
them. Homes in other zones go in other batches.

Known limits: ``learn_outcome`` (vouching) is not batched; ``QuietStretchState.learn_outcome``
applies one answer to one row between batches, as the detector would, and a vouch already given
is carried by ``from_detectors``, and ``to_detectors`` writes a state back into one-at-a-time
detectors. Explanations (``explain_one``) stay one at a time. Slots must be 30 minutes
and the ``ActivityEvidence`` window the default week. The state holds, per home, a week of
readings (float64) and 48 × ``history_per_bin`` stretch lengths (int16 half-hours): about
9 KB, 9 GB for a million homes.

Examples
--------
The same scores as ``score_one`` then ``learn_one`` on each interval:

>>> from datetime import UTC, datetime, timedelta
>>> from detectors.base import Interval
>>> kwh = np.array([[0.05, 0.40, 0.05, 0.05, 0.05, 0.05]])
>>> first_end = datetime(2025, 1, 6, 9, tzinfo=UTC)
>>> scores, state = QuietStretchBatch(timezone="UTC").run(
...     kwh, np.zeros(kwh.shape, dtype=int), first_end=first_end
... )
>>> detector, one_at_a_time = QuietStretchDetector(timezone="UTC"), []
>>> for t, reading in enumerate(kwh[0]):
...     x = Interval(first_end + timedelta(minutes=30 * t), float(reading))
...     one_at_a_time.append(detector.score_one(x))
...     detector.learn_one(x)
>>> bool(np.allclose(scores[0], one_at_a_time, rtol=0, atol=1e-9))
True
>>> state.quiet_minutes.tolist()  # the fall after the kettle was a person too
[90.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from detectors.activity import (
    _EPSILON_MINUTES,
    _MIN_READINGS,
    _REFRESH_EVERY,
    ActivityEvidence,
    QuietTracker,
)
from detectors.batch import _CHUNK, BatchState, _baseline_of, _Counts, _noise_of
from detectors.inactivity import (
    _MIN_SURVIVAL,
    _PRIOR_NIGHT_HOURS,
    _PRIOR_WAKE_HOUR,
    VOUCHING_OUTCOMES,
    QuietStretchDetector,
)

_SLOT = timedelta(minutes=30)
_SLOT_MINUTES = 30.0
_BINS = 48
#: QuietStretchDetector builds its ActivityEvidence with these defaults (all but two).
_EVIDENCE = ActivityEvidence()
_WINDOW_DAYS = _EVIDENCE.window_days
#: Stretch lengths (half-hours) the kernel table covers: 10 days; longer ones are computed.
_TABLE_STEPS = 480


def _expected_hours(local: datetime) -> float:
    """The prior's expected length of a stretch that began at ``local`` (as the detector's)."""
    if local.hour in _PRIOR_NIGHT_HOURS:
        clock = local.hour + local.minute / 60
        return (_PRIOR_WAKE_HOUR - clock) % 24
    return 0.0


def _epoch(when: datetime) -> float:
    return when.timestamp()


def _when(epoch: float) -> datetime | None:
    """The aware UTC time of ``epoch`` seconds (``None`` for NaN: no time)."""
    return None if np.isnan(epoch) else datetime.fromtimestamp(float(epoch), tz=UTC)


@dataclass
class QuietStretchState:
    """What one-at-a-time ``QuietStretchDetector`` s hold per household, as arrays (a row each).

    ``evidence`` is the ``ActivityEvidence``/``QuietTracker`` part (``detectors.batch``);
    ``baseline`` is the floor's cached baseline (current where ``evidence.valid``). The present
    stretch began at ``since`` (epoch seconds, NaN: none yet) in bin ``since_bin`` (-1: none),
    where the prior expects ``since_expected`` hours; ``stuck_minutes`` are its trailing raised
    minutes. ``steps`` are the ring buffers of past stretch lengths in half-hours (-1 where
    empty, NaN in the detector's ``_durations`` of hours), ``next_slot`` their write counters,
    ``bin_min`` each bin's shortest stretch in hours (+inf when empty) and ``long_history``
    whether a home ever learned a stretch too long for the kernel table. ``unlearned_*`` is
    the last flagged stretch left out (``unlearned_since`` NaN: none), for a late answer.
    ``next_end`` is when the next batch's first slot must end (NaN: not known, as for fresh
    homes and ``from_detectors``), so a batch that skips or repeats slots is refused.
    """

    evidence: BatchState
    baseline: np.ndarray
    since: np.ndarray
    since_bin: np.ndarray
    since_expected: np.ndarray
    stuck_minutes: np.ndarray
    raised_rate: np.ndarray
    steps: np.ndarray
    next_slot: np.ndarray
    bin_min: np.ndarray
    long_history: np.ndarray
    flagged: np.ndarray
    vouched: np.ndarray
    vouched_minutes: np.ndarray
    learnable: np.ndarray
    unlearned_since: np.ndarray
    unlearned_bin: np.ndarray
    unlearned_hours: np.ndarray
    next_end: np.ndarray

    @classmethod
    def fresh(cls, households: int, history_per_bin: int = 60) -> QuietStretchState:
        """The state of ``households`` new detectors (nothing learned)."""
        return cls(
            evidence=BatchState.fresh(households, _WINDOW_DAYS),
            baseline=np.zeros(households),
            since=np.full(households, np.nan),
            since_bin=np.full(households, -1, dtype=np.int64),
            since_expected=np.zeros(households),
            stuck_minutes=np.zeros(households),
            raised_rate=np.full((households, 24), 0.5),
            steps=np.full((households, _BINS, history_per_bin), -1, dtype=np.int16),
            next_slot=np.zeros((households, _BINS), dtype=np.int64),
            bin_min=np.full((households, _BINS), np.inf, dtype=np.float32),
            long_history=np.zeros(households, dtype=bool),
            flagged=np.zeros(households, dtype=bool),
            vouched=np.zeros(households, dtype=bool),
            vouched_minutes=np.zeros(households),
            learnable=np.zeros(households, dtype=bool),
            unlearned_since=np.full(households, np.nan),
            unlearned_bin=np.zeros(households, dtype=np.int64),
            unlearned_hours=np.zeros(households),
            next_end=np.full(households, np.nan),
        )

    @classmethod
    def from_detectors(cls, detectors: Sequence[QuietStretchDetector]) -> QuietStretchState:
        """The state of running one-at-a-time detectors (which must share their parameters)."""
        params = {detector_parameters(d) for d in detectors}
        if len(params) > 1:
            raise ValueError("all detectors must share their parameters")
        per_bin = dict(params.pop())["history_per_bin"] if params else 60
        trackers = [
            getattr(d, "_tracker", None)
            or QuietTracker(_fresh_evidence(d.noise_factor, d.min_step_kwh))
            for d in detectors
        ]
        state = cls.fresh(len(detectors), per_bin)
        state.evidence = BatchState.from_trackers(trackers)
        for row, detector in enumerate(detectors):
            if not hasattr(detector, "_tracker"):
                continue
            tracker = detector._tracker
            floor = getattr(tracker.evidence, "_floor", None)
            if floor is not None:
                state.baseline[row] = floor[0]
            if tracker.since is not None:
                state.since[row] = _epoch(tracker.since)
                state.since_bin[row] = detector.start_bin(tracker.since)
                state.since_expected[row] = _expected_hours(detector._local(tracker.since))
            state.stuck_minutes[row] = tracker.stuck_minutes
            state.raised_rate[row] = detector._raised_rate
            durations = detector._durations.astype(np.float64)
            steps = np.where(np.isnan(durations), -1.0, durations * 2)
            if (steps != np.round(steps)).any() or steps.max() > np.iinfo(np.int16).max:
                raise ValueError("the batch path needs stretch lengths in whole half-hours")
            state.steps[row] = steps
            state.long_history[row] = steps.max() >= _TABLE_STEPS
            state.next_slot[row] = detector._next_slot
            state.bin_min[row] = np.where(np.isnan(durations), np.inf, durations).min(axis=1)
            state.flagged[row] = detector._flagged
            vouch = detector._vouched
            if vouch is not None and vouch[0] == tracker.since:
                state.vouched[row], state.vouched_minutes[row] = True, vouch[1]
            state.learnable[row] = detector._learnable
            if detector._unlearned is not None:
                since, hours = detector._unlearned
                state.unlearned_since[row] = _epoch(since)
                state.unlearned_bin[row] = detector.start_bin(since)
                state.unlearned_hours[row] = hours
        return state

    def to_detectors(self, detectors: Sequence[QuietStretchDetector]) -> None:
        """Write each row back into the detector of the same index, in place: the inverse of
        ``from_detectors``, so a home can go on one interval at a time (to explain a finding,
        say) from where a batch left it. The detectors must have the batch's parameters."""
        if len(detectors) != len(self.since):
            raise ValueError("one detector per row")
        for detector in detectors:
            detector._init_state()
        self.evidence.to_trackers([d._tracker for d in detectors])
        steps = self.steps.astype(np.float32)
        durations = np.where(steps < 0, np.float32(np.nan), steps / np.float32(2))
        for row, detector in enumerate(detectors):
            if durations[row].shape != detector._durations.shape:
                raise ValueError("the detectors' history_per_bin differs from the state's")
            tracker = detector._tracker
            evidence = tracker.evidence
            evidence._floor = (
                (float(self.baseline[row]), float(self.evidence.noise[row]))
                if self.evidence.valid[row]
                else None
            )
            tracker.since = _when(self.since[row])
            tracker.stuck_minutes = float(self.stuck_minutes[row])
            detector._raised_rate = self.raised_rate[row].copy()
            detector._durations = durations[row].copy()
            detector._next_slot = self.next_slot[row].copy()
            detector._flagged = bool(self.flagged[row])
            detector._vouched = (
                (tracker.since, float(self.vouched_minutes[row]))
                if self.vouched[row] and tracker.since is not None
                else None
            )
            detector._learnable = bool(self.learnable[row])
            unlearned = _when(self.unlearned_since[row])
            detector._unlearned = (
                (unlearned, float(self.unlearned_hours[row])) if unlearned is not None else None
            )
            detector._last_scored = None  # a cached score belongs to the state before

    @property
    def quiet_minutes(self) -> np.ndarray:
        """Observed quiet minutes of each home's present stretch."""
        return self.evidence.quiet_minutes

    def rows(self, part: slice | np.ndarray) -> QuietStretchState:
        """The households in ``part``: views for a slice, copies for an array of row numbers."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["evidence"] = self.evidence.rows(part)
        return QuietStretchState(
            **{k: v if k == "evidence" else v[part] for k, v in values.items()}
        )

    def learn_outcome(self, row: int, since: datetime, outcome: str) -> None:
        """``QuietStretchDetector.learn_outcome`` for the home in ``row``, between batches
        (the batch applies ``vouched_grace_hours`` when the vouched stretch ends)."""
        if outcome not in VOUCHING_OUTCOMES:
            return
        when = _epoch(since)
        if self.since[row] == when and self.learnable[row]:
            self.vouched[row] = True
            self.vouched_minutes[row] = self.evidence.quiet_minutes[row]
        elif self.unlearned_since[row] == when:
            _remember(
                self,
                np.array([row]),
                np.array([self.unlearned_bin[row]]),
                np.array([self.unlearned_hours[row]]),
            )
            self.unlearned_since[row] = np.nan


def _kernel(past: np.ndarray, hours: np.ndarray, min_width: float, relative: float) -> np.ndarray:
    """Each past stretch's share in ``survival``: 1 up to its length, then a half-Gaussian."""
    width = np.maximum(min_width, relative * past)
    excess = np.maximum(0.0, hours - past) / width
    return np.exp(-0.5 * excess**2)


def _fresh_evidence(noise_factor: float, min_step_kwh: float) -> ActivityEvidence:
    return ActivityEvidence(noise_factor=noise_factor, min_step_kwh=min_step_kwh)


def detector_parameters(detector: QuietStretchDetector) -> tuple[tuple[str, object], ...]:
    """The public parameters of ``detector``, hashable: detectors with equal ones batch together."""
    return tuple(sorted((k, v) for k, v in vars(detector).items() if not k.startswith("_")))


def _remember(
    state: QuietStretchState, rows: np.ndarray, bins: np.ndarray, hours: np.ndarray
) -> None:
    """``QuietStretchDetector._remember`` for ``rows`` (each at most once)."""
    per_bin = state.steps.shape[2]
    slot = state.next_slot[rows, bins] % per_bin
    steps = np.round(np.asarray(hours) * 2).astype(np.int64)
    state.steps[rows, bins, slot] = steps
    state.next_slot[rows, bins] += 1
    state.long_history[rows] |= steps >= _TABLE_STEPS
    kept = state.steps[rows, bins]
    shortest = np.where(kept < 0, np.iinfo(np.int16).max, kept).min(axis=1)
    state.bin_min[rows, bins] = shortest / 2


@dataclass(frozen=True)
class _SlotClock:
    """Local-time facts at each slot boundary of one batch (same for every household)."""

    end: np.ndarray  # epoch seconds of each slot's end
    end_hour: np.ndarray  # local hour of the end (the raised rate's hour)
    end_bin: np.ndarray  # start bin of a stretch that begins at the end
    end_expected: np.ndarray
    start_bin: np.ndarray  # ... and at the slot's start (a first observation)
    start_expected: np.ndarray

    @classmethod
    def of(cls, first_end: datetime, slots: int, timezone: str) -> _SlotClock:
        zone = ZoneInfo(timezone)
        ends = [first_end + _SLOT * t for t in range(slots)]
        local_ends = [e.astimezone(zone) for e in ends]
        local_starts = [(e - _SLOT).astimezone(zone) for e in ends]

        def bin_of(local: datetime) -> int:
            return 24 * int(local.weekday() >= 5) + local.hour

        return cls(
            end=np.array([_epoch(e) for e in ends]),
            end_hour=np.array([e.hour for e in local_ends], dtype=np.int64),
            end_bin=np.array([bin_of(e) for e in local_ends], dtype=np.int64),
            end_expected=np.array([_expected_hours(e) for e in local_ends]),
            start_bin=np.array([bin_of(s) for s in local_starts], dtype=np.int64),
            start_expected=np.array([_expected_hours(s) for s in local_starts]),
        )


class QuietStretchBatch:
    """``QuietStretchDetector`` over households × slots, slot for slot the same scores.

    Parameters are ``QuietStretchDetector``'s (one ``timezone`` for the whole batch), plus
    ``workers``: threads, each scoring its own chunk of households.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> kwh = np.array([[0.05, 0.40, 0.05, 0.05], [0.05, 0.05, 0.05, 0.05]])
    >>> batch = QuietStretchBatch(timezone="Asia/Tokyo")
    >>> scores, state = batch.run(
    ...     kwh, np.zeros((2, 4), dtype=int), first_end=datetime(2025, 1, 6, 14, tzinfo=UTC)
    ... )
    >>> np.round(scores, 3).tolist()  # 23:00-01:00 in Tokyo
    [[0.0, 0.0, 0.0, 0.007], [0.0, 0.0, 0.0, 0.0]]
    >>> state.quiet_minutes.tolist()
    [30.0, 120.0]
    """

    def __init__(self, timezone: str = "Asia/Tokyo", *, workers: int = 1, **params: object) -> None:
        # The parameters and their defaults are the detector's own: one place defines them, so
        # the batch path cannot drift from the model it must equal.
        model = QuietStretchDetector(timezone, **params)  # type: ignore[arg-type]
        for name, value in vars(model).items():
            setattr(self, name, value)
        self.workers = workers

    @classmethod
    def like(cls, detector: QuietStretchDetector, workers: int = 1) -> QuietStretchBatch:
        """The batch path with ``detector``'s parameters."""
        params = {k: v for k, v in vars(detector).items() if not k.startswith("_")}
        return cls(**params, workers=workers)

    def _neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """Per start bin, its six bins and their weights, in ``_bin_weights``' order."""
        other = self.other_day_weight
        weights = np.array([1.0, 0.5, 0.5, other, other / 2, other / 2])
        bins = np.empty((_BINS, 6), dtype=np.int64)
        for start in range(_BINS):
            day_type, hour = divmod(start, 24)
            flip = 24 * (1 - day_type)
            same = 24 * day_type
            bins[start] = [
                start,
                same + (hour - 1) % 24,
                same + (hour + 1) % 24,
                flip + hour,
                flip + (hour - 1) % 24,
                flip + (hour + 1) % 24,
            ]
        return bins, weights

    def run(
        self,
        kwh: np.ndarray,
        tv_operations: np.ndarray,
        tv_on_minutes: np.ndarray | None = None,
        state: QuietStretchState | None = None,
        *,
        first_end: datetime,
    ) -> tuple[np.ndarray, QuietStretchState]:
        """Scores at every slot (``score_one`` then ``learn_one``), and the state after the last.

        Parameters
        ----------
        kwh
            Readings ``[households, slots]``, NaN where none arrived.
        tv_operations, tv_on_minutes
            Same shape: TV keys pressed, and minutes the set was on (0 if not given).
        state
            Where the detectors stand before the first slot (fresh if not given); not modified.
        first_end
            The aware end of the first slot; slots are 30 minutes apart.
        """
        kwh = np.asarray(kwh, dtype=np.float64)
        ops = np.asarray(tv_operations)
        on = np.zeros(kwh.shape) if tv_on_minutes is None else np.asarray(tv_on_minutes, float)
        if kwh.ndim != 2 or ops.shape != kwh.shape or on.shape != kwh.shape:
            raise ValueError("kwh, tv_operations and tv_on_minutes must be 2-D of the same shape")
        if first_end.tzinfo is None:
            raise ValueError("first_end must be timezone-aware")
        households, slots = kwh.shape
        state = (
            QuietStretchState.fresh(households, self.history_per_bin) if state is None else state
        )
        if state.steps.shape != (households, _BINS, self.history_per_bin):
            raise ValueError("state does not match the households or history_per_bin")
        if state.evidence.window.shape != (households, _WINDOW_DAYS * 48):
            raise ValueError("state does not match the households")
        expected_end = state.next_end[~np.isnan(state.next_end)]
        if (expected_end != _epoch(first_end)).any():
            raise ValueError("first_end is not the end of the slot after the state's last")
        clock = _SlotClock.of(first_end.astimezone(UTC), slots, self.timezone)
        self._neighbours_cache = self._neighbours()
        self._kernel_table()

        def chunk(lo: int) -> tuple[np.ndarray, QuietStretchState]:
            part = slice(lo, lo + _CHUNK)
            return self._run_chunk(kwh[part], ops[part], on[part], state.rows(part), clock)

        starts = range(0, households, _CHUNK)
        if self.workers > 1 and len(starts) > 1:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                parts = list(pool.map(chunk, starts))
        else:
            parts = [chunk(lo) for lo in starts]
        if len(parts) == 1:
            return parts[0]
        evidence = BatchState(
            **{
                k: np.concatenate([vars(p[1].evidence)[k] for p in parts])
                for k in vars(parts[0][1].evidence)
            }
        )
        joined = {
            f.name: np.concatenate([getattr(p[1], f.name) for p in parts])
            for f in fields(QuietStretchState)
            if f.name != "evidence"
        }
        return np.concatenate([p[0] for p in parts]), QuietStretchState(evidence, **joined)

    def score(self, kwh, tv_operations, tv_on_minutes=None, state=None, *, first_end):
        """Only the scores of ``run``."""
        return self.run(kwh, tv_operations, tv_on_minutes, state, first_end=first_end)[0]

    def _kernel_table(self) -> np.ndarray:
        """``table[(j + 1) * _TABLE_STEPS + m]``: the kernel of a past stretch of ``j``
        half-hours at a present length of ``m`` (row 0, an empty slot, is 0)."""
        table = getattr(self, "_table", None)
        if table is None:
            grid = np.arange(_TABLE_STEPS) / 2
            table = np.zeros((_TABLE_STEPS + 1, _TABLE_STEPS))
            table[1:] = _kernel(
                grid[:, None], grid[None, :], self.min_bandwidth_hours, self.relative_bandwidth
            )
            self._table = table = table.ravel()
        return table

    def _survival_scores(
        self,
        steps: np.ndarray,
        next_slot: np.ndarray,
        rows: np.ndarray,
        bins: np.ndarray,
        hours: np.ndarray,
        expected: np.ndarray,
        long_history: np.ndarray,
    ) -> np.ndarray:
        """``max(0, -log10(survival(since, hours)))`` for ``rows`` whose stretch began in
        ``bins`` (as ``QuietStretchDetector.survival`` computes it)."""
        neighbours, weights = self._neighbours_cache
        near = neighbours[bins]  # (n, 6)
        counts = np.minimum(next_slot[rows[:, None], near], steps.shape[2])
        # Ring buffers fill from their first slot: only the filled part can count.
        filled = int(counts.max())
        past = steps[rows[:, None], near, :filled].astype(np.intp)  # (n, 6, filled); -1: empty
        present = np.round(hours * 2).astype(np.intp)
        # Lengths are whole half-hours, so each kernel is a lookup (the same floats as the
        # formula); a home with a very long stretch, or a very long present one, computes it.
        table_rows = ~long_history[rows] & (present < _TABLE_STEPS)
        table = self._kernel_table()
        if table_rows.all():
            past += 1
            past *= _TABLE_STEPS
            past += present[:, None, None]
            kernel = table.take(past)
        else:
            kernel = np.empty(past.shape)
            at = np.flatnonzero(table_rows)
            kernel[at] = table.take((past[at] + 1) * _TABLE_STEPS + present[at, None, None])
            off = np.flatnonzero(~table_rows)
            far = np.where(past[off] < 0, -np.inf, past[off] / 2)
            kernel[off] = _kernel(
                far,
                hours[off, None, None],
                self.min_bandwidth_hours,
                self.relative_bandwidth,
            )
        lasted = (kernel.sum(axis=2) * weights).sum(axis=1)
        seen_weight = (counts * weights).sum(axis=1)  # sums of dyadic weights: exact
        prior_weight = (
            self.prior_weight * self.prior_fades_after / (self.prior_fades_after + seen_weight)
        )
        prior = prior_weight * np.exp(-np.maximum(0.0, hours - expected) / self.prior_tail_hours)
        survival = np.maximum((lasted + prior) / (seen_weight + prior_weight), _MIN_SURVIVAL)
        return np.maximum(0.0, -np.log10(survival))

    def _run_chunk(
        self,
        kwh: np.ndarray,
        ops: np.ndarray,
        tv_on: np.ndarray,
        state: QuietStretchState,
        clock: _SlotClock,
    ) -> tuple[np.ndarray, QuietStretchState]:
        neighbours = self._neighbours_cache[0]
        nf, min_step = self.noise_factor, self.min_step_kwh
        households, slots = kwh.shape
        ev = state.evidence
        width = ev.window.shape[1]
        has = ~np.isnan(kwh)
        # Readings in learning order, as in detectors.batch: the old window, then today's
        # observed readings packed left. Before slot t a row's window is [seen, seen + width).
        packed = np.full((households, width + slots), np.nan)
        packed[:, :width] = ev.window
        seen_after = np.cumsum(has, axis=1)
        r, c = np.nonzero(has)
        packed[r, width + seen_after[r, c] - 1] = kwh[r, c]
        changes = np.abs(np.diff(packed, axis=1))

        # The detectors' own state is copied, never written: the caller's state stays as it was.
        new = QuietStretchState(
            ev, **{f.name: getattr(state, f.name).copy() for f in fields(state)[1:]}
        )
        last = ev.last_kwh.copy()
        counter = ev.counter.copy()
        valid = ev.valid.copy()
        noise = ev.noise.copy()
        quiet = ev.quiet_minutes.copy()
        unattended = ev.tv_unattended.copy()
        on_at_end = ev.tv_on_at_end.copy()
        went_off = ev.tv_went_off.copy()
        baseline = new.baseline
        seen = np.zeros(households, dtype=np.int64)
        everyone = np.arange(households)
        counts = _Counts(
            np.zeros(households, dtype=np.int64),
            np.zeros(households, dtype=np.int64),
            np.zeros(households, dtype=bool),
        )
        scores = np.zeros((households, slots))

        def refresh(rows: np.ndarray, length: np.ndarray) -> None:
            """Recompute the floor of ``rows`` from their present window (it was asked for)."""
            noise[rows] = _noise_of(
                changes,
                rows,
                seen[rows],
                length[rows],
                width,
                _EVIDENCE.prior_noise_kwh,
                noise,
                counts,
            )
            baseline[rows] = _baseline_of(packed, rows, seen[rows], length[rows], width)
            valid[rows] = True
            counter[rows] = 0

        for t in range(slots):
            x, here = kwh[:, t], has[:, t]
            tv = ops[:, t] > 0
            on_minutes = tv_on[:, t]
            tv_shown = on_minutes > 0
            length = np.minimum(ev.length + seen, width)
            full_enough = length >= _MIN_READINGS
            step = np.where(here & ~np.isnan(last), np.abs(x - last), 0.0)
            stepped = step >= min_step
            # QuietTracker.peek asks for the floor in is_evidence (a big enough step) and in
            # is_raised (nothing showed a person): that is what refreshes a stale floor.
            asked = ~tv & here & (stepped | (~tv_shown & full_enough))
            stale = np.flatnonzero(asked & ~valid)
            if stale.size:
                refresh(stale, length)
            # The set's auto-off: in the slot it goes off, and the next counted one after it
            # went off part-way through a slot (as ActivityEvidence.tv_switched_itself_off).
            goes_off = (
                on_at_end
                & (on_minutes < _SLOT_MINUTES - _EPSILON_MINUTES)
                & (unattended + on_minutes >= _EVIDENCE.tv_auto_off_minutes)
            )
            auto_off = (goes_off | went_off) & here & (x < last)
            # A change between two readings at the standby level is not a person.
            level = baseline + np.maximum(min_step, nf * noise)
            standby = full_enough & (x <= level) & (last <= level)
            evident = tv | (here & stepped & (step > nf * noise) & ~auto_off & ~standby)
            observed = here | tv

            # is_raised where it is asked (the floor is current there).
            lifted = tv_shown | (
                here & full_enough & (x > baseline + np.maximum(min_step, nf * noise))
            )
            quiet_now = observed & ~evident
            had_since = ~np.isnan(new.since)
            # The stretch as peek sees it once x is counted.
            begins = quiet_now & ~had_since
            peek_bin = np.where(begins, clock.start_bin[t], new.since_bin)
            peek_expected = np.where(begins, clock.start_expected[t], new.since_expected)
            peek_quiet = np.where(evident, 0.0, np.where(observed, quiet + _SLOT_MINUTES, quiet))
            peek_stuck = np.where(
                evident,
                0.0,
                np.where(
                    observed,
                    np.where(lifted, new.stuck_minutes + _SLOT_MINUTES, 0.0),
                    new.stuck_minutes,
                ),
            )
            in_stretch = ~evident & (had_since | begins) & (peek_quiet > 0)
            hours = peek_quiet / 60
            # Survival is exactly 1 (score 0) until the stretch outlasts the shortest stretch
            # remembered in its six bins, and the prior's expected night.
            candidates = np.flatnonzero(in_stretch)
            if candidates.size:
                near = neighbours[peek_bin[candidates]]
                shortest = new.bin_min[candidates[:, None], near].min(axis=1)
                limit = np.minimum(shortest, peek_expected[candidates])
                candidates = candidates[hours[candidates] > limit]
            score = np.zeros(households)
            if candidates.size:
                score[candidates] = self._survival_scores(
                    new.steps,
                    new.next_slot,
                    candidates,
                    peek_bin[candidates],
                    hours[candidates],
                    peek_expected[candidates],
                    new.long_history,
                )
                stuck_rows = candidates[peek_stuck[candidates] > 0]
                if stuck_rows.size:
                    unusual = 1.0 - new.raised_rate[stuck_rows, clock.end_hour[t]]
                    stuck = np.minimum(1.0, peek_stuck[stuck_rows] / 120)
                    score[stuck_rows] *= 1.0 + self.stuck_weight * stuck * unusual
            scores[:, t] = score

            # learn_one: flag, the raised rate (which asks is_raised of the reading), advance.
            new.flagged |= score >= self.alert_threshold
            rate_rows = (~new.flagged | new.vouched) & here
            stale = np.flatnonzero(rate_rows & ~tv_shown & full_enough & ~valid)
            if stale.size:
                refresh(stale, length)
            learn_rate = np.flatnonzero(rate_rows)
            if learn_rate.size:
                hour = clock.end_hour[t]
                was = new.raised_rate[learn_rate, hour]
                level = baseline[learn_rate] + np.maximum(min_step, nf * noise[learn_rate])
                lifted = tv_shown[learn_rate] | (full_enough[learn_rate] & (x[learn_rate] > level))
                new.raised_rate[learn_rate, hour] = was + 0.05 * (lifted - was)

            ended = np.flatnonzero(evident & had_since)
            if ended.size:
                self._end_stretches(new, ended, quiet[ended] / 60)
            # The tracker's present stretch after x.
            starts_here = evident & observed
            new.since = np.where(
                starts_here,
                clock.end[t],
                np.where(begins, clock.end[t] - _SLOT_MINUTES * 60, new.since),
            )
            new.since_bin = np.where(starts_here, clock.end_bin[t], peek_bin)
            new.since_expected = np.where(starts_here, clock.end_expected[t], peek_expected)
            new.stuck_minutes = peek_stuck
            quiet = peek_quiet

            # ActivityEvidence.learn_one: the TV bookkeeping for every counted slot, the reading
            # (and its change, kept counted for the noise) only where there is one.
            went_off = np.where(observed, ~tv & goes_off & (on_minutes > 0), went_off)
            ends_on = on_minutes >= _SLOT_MINUTES - _EPSILON_MINUTES
            counted_on = np.where(tv, 0.0, unattended + on_minutes)
            unattended = np.where(observed, np.where(ends_on, counted_on, 0.0), unattended)
            on_at_end = np.where(observed, ends_on, on_at_end)
            learned = np.flatnonzero(here & counts.counted)
            if learned.size:
                start, level = seen[learned], noise[learned]
                entering = changes[learned, start + width - 1]
                leaving = changes[learned, start]
                counts.below[learned] += (entering < level).astype(np.int64) - (leaving < level)
                counts.at_or_below[learned] += (entering <= level).astype(np.int64) - (
                    leaving <= level
                )
            last = np.where(here, x, last)
            counter = counter + here
            seen = seen + here
            learned_length = np.minimum(ev.length + seen, width)
            valid &= ~(here & ((counter >= _REFRESH_EVERY) | (learned_length <= _MIN_READINGS)))

        if slots:
            new.next_end[:] = clock.end[-1] + _SLOT_MINUTES * 60
        new.evidence = BatchState(
            window=packed[everyone[:, None], seen[:, None] + np.arange(width)],
            length=np.minimum(ev.length + seen, width),
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
        return scores, new

    def _end_stretches(self, new: QuietStretchState, rows: np.ndarray, hours: np.ndarray) -> None:
        """What ``learn_one`` does with the stretches that ended: learn them unless flagged
        (and not vouched for), else keep them aside for a late answer."""
        learnable, flagged, vouched = new.learnable[rows], new.flagged[rows], new.vouched[rows]
        capped = new.vouched_minutes[rows] / 60 + self.vouched_grace_hours
        hours = np.where(learnable & flagged & vouched, np.minimum(hours, capped), hours)
        keep = learnable & (~flagged | vouched)
        if keep.any():
            _remember(new, rows[keep], new.since_bin[rows[keep]], hours[keep])
        aside = learnable & ~keep
        if aside.any():
            rows_aside = rows[aside]
            new.unlearned_since[rows_aside] = new.since[rows_aside]
            new.unlearned_bin[rows_aside] = new.since_bin[rows_aside]
            new.unlearned_hours[rows_aside] = hours[aside]
        new.flagged[rows] = False
        new.vouched[rows] = False
        new.learnable[rows] = True
