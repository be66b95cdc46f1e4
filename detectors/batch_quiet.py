"""The batch path of ``QuietStretchDetector`` (households × slots).

``QuietStretchBatch.run`` scores ``kwh[households, slots]`` and gives what ``score_one(x)`` then
``learn_one(x)`` give on every slot of one-at-a-time detectors with the same parameters. The
work is a compiled loop, each household over its slots (``detectors.batch_kernels``); this
module holds the state's arrays and the API. Exactness needs the bookkeeping, not just the
formulas:

- when ``ActivityEvidence`` refreshes its floor (baseline and noise) depends on when it is asked
  for it, and the detector asks in more places than ``QuietTracker`` alone: ``learn_one`` asks
  ``is_raised`` of every reading it learns the raised rate from, unless the stretch is flagged;
- the history of past stretch lengths changes only when a stretch ends, and the stretch's start
  bin, prior and flag are fixed while it lasts;
- a stretch whose score reached ``alert_threshold`` is not learned unless it was vouched for.

The survival is computed only where it can differ from 1: while the present stretch is no longer
than every remembered stretch in its six bins and than the prior's expected night, the survival is
exactly 1 and the score exactly 0 (``QuietStretchState.bin_min`` keeps each bin's shortest
stretch for this). Stretch lengths are whole half-hours, so each kernel value is looked up in a
table computed with the detector's formula (homes with a stretch over ``TABLE_STEPS``
half-hours compute it). The terms are added in another order than ``survival`` adds them, so
scores agree with ``score_one`` to about 1e-15, not bit for bit; a score within that of
``alert_threshold`` could in principle be flagged differently. The rest of the state is bit for
bit the detectors' own.

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

from collections import namedtuple
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from detectors import batch_kernels
from detectors.activity import ActivityEvidence, QuietTracker
from detectors.batch import BatchState
from detectors.batch_kernels import TABLE_STEPS, Clock, Model
from detectors.inactivity import (
    _PRIOR_NIGHT_HOURS,
    _PRIOR_WAKE_HOUR,
    VOUCHING_OUTCOMES,
    QuietStretchDetector,
)

_SLOT = timedelta(minutes=30)
_BINS = 48
#: QuietStretchDetector builds its ActivityEvidence with these defaults (all but two).
_EVIDENCE = ActivityEvidence()
_WINDOW_DAYS = _EVIDENCE.window_days
#: Households per call of the compiled loop (and per thread's task): one chunk's state rows
#: are copied, then updated in place, while they are in cache.
_CHUNK = 4_096


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
            state.long_history[row] = steps.max() >= TABLE_STEPS
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
            too_long = batch_kernels.remember(
                self.steps[row],
                self.next_slot[row],
                self.bin_min[row],
                int(self.unlearned_bin[row]),
                float(self.unlearned_hours[row]),
            )
            self.long_history[row] |= too_long
            self.unlearned_since[row] = np.nan


def _kernel(past: np.ndarray, hours: np.ndarray, min_width: float, relative: float) -> np.ndarray:
    """Each past stretch's share in ``survival``: 1 up to its length, then a half-Gaussian."""
    width = np.maximum(min_width, relative * past)
    excess = np.maximum(0.0, hours - past) / width
    return np.exp(-0.5 * excess**2)


def _fresh_evidence(noise_factor: float, min_step_kwh: float) -> ActivityEvidence:
    return ActivityEvidence(noise_factor=noise_factor, min_step_kwh=min_step_kwh)


# The state's arrays as named tuples, which the compiled loop takes (numba reads no dataclass);
# made from the dataclasses' own fields, so the two cannot drift apart.
EvidenceRows = namedtuple("EvidenceRows", [f.name for f in fields(BatchState)])
StretchRows = namedtuple("StretchRows", [f.name for f in fields(QuietStretchState)][1:])


def detector_parameters(detector: QuietStretchDetector) -> tuple[tuple[str, object], ...]:
    """The public parameters of ``detector``, hashable: detectors with equal ones batch together."""
    return tuple(sorted((k, v) for k, v in vars(detector).items() if not k.startswith("_")))


def _slot_clock(first_end: datetime, slots: int, timezone: str) -> Clock:
    """Local-time facts at each slot boundary of one batch (same for every household)."""
    zone = ZoneInfo(timezone)
    ends = [first_end + _SLOT * t for t in range(slots)]
    local_ends = [e.astimezone(zone) for e in ends]
    local_starts = [(e - _SLOT).astimezone(zone) for e in ends]

    def bin_of(local: datetime) -> int:
        return 24 * int(local.weekday() >= 5) + local.hour

    return Clock(
        end=np.array([_epoch(e) for e in ends], dtype=np.float64),
        end_hour=np.array([e.hour for e in local_ends], dtype=np.int64),
        end_bin=np.array([bin_of(e) for e in local_ends], dtype=np.int64),
        end_expected=np.array([_expected_hours(e) for e in local_ends], dtype=np.float64),
        start_bin=np.array([bin_of(s) for s in local_starts], dtype=np.int64),
        start_expected=np.array([_expected_hours(s) for s in local_starts], dtype=np.float64),
    )


def _empty_like(state: QuietStretchState) -> QuietStretchState:
    """Arrays of ``state``'s shapes and types, for the state after a batch."""
    return QuietStretchState(
        BatchState(**{k: np.empty_like(v, order="C") for k, v in vars(state.evidence).items()}),
        **{f.name: np.empty_like(getattr(state, f.name), order="C") for f in fields(state)[1:]},
    )


def _copy_rows(source: QuietStretchState, target: QuietStretchState, part: slice) -> None:
    for name, value in vars(source.evidence).items():
        getattr(target.evidence, name)[part] = value[part]
    for f in fields(source)[1:]:
        getattr(target, f.name)[part] = getattr(source, f.name)[part]


class QuietStretchBatch:
    """``QuietStretchDetector`` over households × slots, slot for slot the same scores.

    Parameters are ``QuietStretchDetector``'s (one ``timezone`` for the whole batch), plus
    ``workers``: threads, each scoring its own chunk of households (the compiled loop releases
    the GIL, so two threads use two cores).

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

    def _kernel_table(self) -> np.ndarray:
        """``table[m, j]``: the kernel of a past stretch of ``j`` half-hours at a present length
        of ``m`` (a row per present length, so one slot's sum reads one row)."""
        grid = np.arange(TABLE_STEPS) / 2
        return _kernel(
            grid[None, :], grid[:, None], self.min_bandwidth_hours, self.relative_bandwidth
        )

    def _model(self) -> Model:
        """The parameters and tables the compiled loop needs (built once per instance)."""
        model = getattr(self, "_compiled_model", None)
        if model is None:
            neighbours, weights = self._neighbours()
            model = Model(
                kernel_table=self._kernel_table(),
                neighbours=neighbours,
                weights=weights,
                noise_factor=float(self.noise_factor),
                min_step_kwh=float(self.min_step_kwh),
                prior_noise_kwh=float(_EVIDENCE.prior_noise_kwh),
                tv_auto_off_minutes=float(_EVIDENCE.tv_auto_off_minutes),
                alert_threshold=float(self.alert_threshold),
                stuck_weight=float(self.stuck_weight),
                vouched_grace_hours=float(self.vouched_grace_hours),
                prior_weight=float(self.prior_weight),
                prior_fades_after=float(self.prior_fades_after),
                prior_tail_hours=float(self.prior_tail_hours),
                min_bandwidth_hours=float(self.min_bandwidth_hours),
                relative_bandwidth=float(self.relative_bandwidth),
            )
            self._compiled_model = model
        return model

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
        # One layout and type per input, so the compiled loop has one signature to cache.
        kwh = np.ascontiguousarray(kwh, dtype=np.float64)
        ops = np.asarray(tv_operations)
        on = (
            np.zeros(kwh.shape)
            if tv_on_minutes is None
            else np.ascontiguousarray(tv_on_minutes, dtype=np.float64)
        )
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
        pressed = np.ascontiguousarray(ops > 0)
        clock = _slot_clock(first_end.astimezone(UTC), slots, self.timezone)
        model = self._model()
        # The caller's state is read, never written: the chunks copy their rows into the new
        # state, and the compiled loop carries them on in place.
        new = _empty_like(state)
        evidence = EvidenceRows(**vars(new.evidence))
        stretches = StretchRows(**{f.name: getattr(new, f.name) for f in fields(new)[1:]})
        scores = np.empty((households, slots))
        chunk_rows = _CHUNK

        def chunk(lo: int) -> None:
            hi = min(lo + chunk_rows, households)
            _copy_rows(state, new, slice(lo, hi))
            batch_kernels.run_households(
                lo, hi, kwh, pressed, on, clock, model, evidence, stretches, scores
            )

        starts = range(0, households, chunk_rows)
        if self.workers > 1 and len(starts) > 1:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                list(pool.map(chunk, starts))
        else:
            for lo in starts:
                chunk(lo)
        if slots:
            new.next_end[:] = clock.end[-1] + _SLOT.total_seconds()
        return scores, new

    def score(self, kwh, tv_operations, tv_on_minutes=None, state=None, *, first_end):
        """Only the scores of ``run``."""
        return self.run(kwh, tv_operations, tv_on_minutes, state, first_end=first_end)[0]
