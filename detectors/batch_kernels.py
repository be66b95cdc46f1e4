"""The compiled loop of ``QuietStretchBatch``: each household walks its slots one by one.

``detectors.batch_quiet`` holds the API (``QuietStretchBatch``, ``QuietStretchState``); this
module holds the work, compiled with numba. Vectorised numpy over households had to treat every
slot as a batch of special cases (which homes ask for their floor, which stretch ended, which
home needs a survival), paying for index arrays more than for arithmetic, and could not do
much better than 0.4M readings/s. A household's slots are a short sequential loop with scalar
state, which compiles into tight code: the same steps as ``QuietStretchDetector.score_one`` then
``learn_one``, in the same order, with the detector's state as array rows.

What is cheap here and was not before:

- The floor (``ActivityEvidence``'s baseline and noise) is refreshed every few readings from a
  week of them. The refreshed values are exactly ``np.quantile(readings, 0.1)`` and
  ``max(np.median(changes), 1e-3)``, found from the previous values: a few new readings seldom
  move an order statistic by more than a step or two, so counting passes over the window find
  it (``kth_smallest``) and a full selection is the exception.
- The survival of the present stretch only depends on its length while it lasts (its start
  bin, and so its six bins of history, are fixed until it ends, and only its end changes the
  history), so the six bins are summed once per stretch into a histogram of lengths, and each
  slot's survival is one short dot product with a row of the kernel table.

The kernel sums run in another order than ``QuietStretchDetector.survival``'s, so scores agree
with it to about 1e-15 (not bit for bit); the floor and every other part of the state are
bit for bit what the detector holds.

Compiled functions are cached on disk (``cache=True``: ``__pycache__`` beside this file, or
``NUMBA_CACHE_DIR``); the first call in a fresh environment compiles them (a few seconds).
They release the GIL, so ``QuietStretchBatch(workers=2)`` runs two threads on two cores.

Examples
--------
>>> values, keys, cell = np.array([0.3, -0.1, 0.2, 0.2, 0.5]), np.empty(5, np.int64), np.empty(1)
>>> order_keys(values.view(np.int64), keys, 0, 5)
>>> bool(low_quantile(keys, 0, 5, 0.2, cell) == np.quantile(values, 0.1))  # 0.2: a hint
True
>>> bool(median_noise(keys, 0, 5, 0.0, cell) == np.median(values))
True
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numba
import numpy as np

from detectors.activity import _EPSILON_MINUTES, _MIN_READINGS, _REFRESH_EVERY
from detectors.batch import _BASELINE_QUANTILE as BASELINE_QUANTILE
from detectors.batch import _NOISE_FLOOR as NOISE_FLOOR
from detectors.inactivity import _MIN_SURVIVAL as MIN_SURVIVAL

if TYPE_CHECKING:  # the state's arrays as named tuples, which compiled code takes
    from detectors.batch_quiet import EvidenceRows, StretchRows

SLOT_MINUTES = 30.0
#: Stretch lengths (half-hours) the kernel table covers: 10 days; longer ones are computed.
TABLE_STEPS = 480
_INT16_MAX = np.iinfo(np.int16).max
#: Steps from a hint to the order statistic before a full selection is cheaper.
_SEARCH_STEPS = 8

_compiled = numba.njit(cache=True, nogil=True)


class Clock(NamedTuple):
    """Local-time facts at each slot boundary of one batch (the same for every household)."""

    end: np.ndarray  # epoch seconds of each slot's end
    end_hour: np.ndarray  # local hour of the end (the raised rate's hour)
    end_bin: np.ndarray  # start bin of a stretch that begins at the end
    end_expected: np.ndarray  # the prior's expected hours of such a stretch
    start_bin: np.ndarray  # ... and at the slot's start (a first observation)
    start_expected: np.ndarray


class Model(NamedTuple):
    """``QuietStretchDetector``'s parameters and its ``ActivityEvidence``'s, with the tables
    built from them."""

    kernel_table: np.ndarray  # [present, past] half-hours: a past stretch's share in survival
    neighbours: np.ndarray  # [start bin, 6]: the bins ``_bin_weights`` weighs
    weights: np.ndarray  # [6]: their weights
    noise_factor: float
    min_step_kwh: float
    prior_noise_kwh: float
    tv_auto_off_minutes: float
    alert_threshold: float
    stuck_weight: float
    vouched_grace_hours: float
    prior_weight: float
    prior_fades_after: float
    prior_tail_hours: float
    min_bandwidth_hours: float
    relative_bandwidth: float


# -- order statistics of a window, as numpy computes them ----------------------------------------
#
# The searches run on int64 keys in the order of the floats (their bits, the magnitude flipped
# for negatives): compiled integer passes use the vector units, float ones did not (0.1 against
# 0.4 us a pass over a week). The value found is the float itself, not a rounding of it.

_MAGNITUDE_BITS = 0x7FFF_FFFF_FFFF_FFFF
_NO_KEY_ABOVE = np.iinfo(np.int64).max
_NO_KEY_BELOW = np.iinfo(np.int64).min


@_compiled
def order_keys(bits: np.ndarray, keys: np.ndarray, lo: int, n: int) -> None:
    """``keys[lo:lo + n]``: int64s ordered as the floats whose bits are ``bits[lo:lo + n]``
    (``values.view(np.int64)``; no NaN), equal for equal floats (0.0 and -0.0 too)."""
    for i in range(lo, lo + n):
        b = bits[i]
        key = b ^ ((b >> 63) & _MAGNITUDE_BITS)
        keys[i] = key + (key == -1)  # -1 is -0.0's key: 0.0's instead


@_compiled
def _key_of(value: float, cell: np.ndarray) -> int:
    cell[0] = value
    bits = cell.view(np.int64)
    order_keys(bits, bits, 0, 1)
    return bits[0]


@_compiled
def _value_of(key: int, cell: np.ndarray) -> float:
    cell.view(np.int64)[0] = key ^ ((key >> 63) & _MAGNITUDE_BITS)
    return cell[0]


@_compiled
def _ranks(keys: np.ndarray, lo: int, n: int, level: int) -> tuple[int, int]:
    """How many of ``keys[lo:lo + n]`` lie below ``level``, and at or below it."""
    below = 0
    at_or_below = 0
    for i in range(lo, lo + n):
        below += keys[i] < level
        at_or_below += keys[i] <= level
    return below, at_or_below


# The two searches pick with bit masks, not ``a if c else b``: compiled as a branch, that was
# 8 times slower on readings that fall either side of the level at random.


@_compiled
def _next_above(keys: np.ndarray, lo: int, n: int, level: int) -> int:
    """The smallest of ``keys[lo:lo + n]`` above ``level`` (``_NO_KEY_ABOVE``: none)."""
    following = _NO_KEY_ABOVE
    for i in range(lo, lo + n):
        above = -np.int64(keys[i] > level)  # all ones where above
        following = min(following, (keys[i] & above) | (_NO_KEY_ABOVE & ~above))
    return following


@_compiled
def _next_below(keys: np.ndarray, lo: int, n: int, level: int) -> int:
    """The largest of ``keys[lo:lo + n]`` below ``level`` (``_NO_KEY_BELOW``: none)."""
    preceding = _NO_KEY_BELOW
    for i in range(lo, lo + n):
        below = -np.int64(keys[i] < level)
        preceding = max(preceding, (keys[i] & below) | (_NO_KEY_BELOW & ~below))
    return preceding


@_compiled
def _count_equal(keys: np.ndarray, lo: int, n: int, level: int) -> int:
    count = 0
    for i in range(lo, lo + n):
        count += keys[i] == level
    return count


@_compiled
def kth_smallest(keys: np.ndarray, lo: int, n: int, k: int, hint: int) -> tuple[int, int]:
    """The ``k``-th smallest (from 0) of ``keys[lo:lo + n]``, and how many are at or below it.

    Counts the keys below and at ``hint`` (usually the last answer's key): if ``hint`` holds
    rank ``k`` it is the answer; otherwise the distinct keys next above (or below) it are
    visited in order until rank ``k`` is reached (a few new readings seldom move an order
    statistic by more than a step or two), and after ``_SEARCH_STEPS`` a full selection takes
    over.
    """
    below, at_or_below = _ranks(keys, lo, n, hint)
    if below <= k < at_or_below:
        return hint, at_or_below
    level = hint
    if k >= at_or_below:
        counted = at_or_below  # keys at or below ``level``
        for _ in range(_SEARCH_STEPS):
            level = _next_above(keys, lo, n, level)
            counted += _count_equal(keys, lo, n, level)
            if k < counted:
                return level, counted
    else:
        counted = below  # keys below ``level``
        for _ in range(_SEARCH_STEPS):
            level = _next_below(keys, lo, n, level)
            at_or_below = counted
            counted -= _count_equal(keys, lo, n, level)
            if k >= counted:
                return level, at_or_below
    key = np.partition(keys[lo : lo + n], k)[k]
    return key, _ranks(keys, lo, n, key)[1]


@_compiled
def _kth_and_next(keys: np.ndarray, lo: int, n: int, k: int, hint: int) -> tuple[int, int]:
    """The ``k``-th and ``k + 1``-th smallest keys (``k + 1 < n``)."""
    lower, at_or_below = kth_smallest(keys, lo, n, k, hint)
    upper = lower if k + 1 < at_or_below else _next_above(keys, lo, n, lower)
    return lower, upper


@_compiled
def median_noise(keys: np.ndarray, lo: int, n: int, hint: float, cell: np.ndarray) -> float:
    """``max(np.median(changes[lo:lo + n]), NOISE_FLOOR)`` bit for bit (``n >= 1``), from the
    changes' ``keys`` (``order_keys``); ``cell`` (one float) is scratch space."""
    upper = n // 2  # the middle rank, or the upper of the two middle ones
    if n % 2 == 1:  # the usual case (a full week): the hint often settles it in one pass
        below, at_or_below = _ranks(keys, lo, n, _key_of(hint, cell))
        if below <= upper < at_or_below and hint >= NOISE_FLOOR:
            return hint  # still the middle value
        if upper < at_or_below and hint <= NOISE_FLOOR:
            return NOISE_FLOOR  # the middle value lies at or under the hint, so the floor
    if _ranks(keys, lo, n, _key_of(NOISE_FLOOR, cell))[1] > upper:
        return NOISE_FLOOR  # the middle value(s) lie at or under the floor
    if n % 2 == 1:
        return _value_of(kth_smallest(keys, lo, n, upper, _key_of(hint, cell))[0], cell)
    lower_middle, upper_middle = _kth_and_next(keys, lo, n, upper - 1, _key_of(hint, cell))
    # np.median's mean of the two middle values: their sum, divided by 2.
    total = _value_of(lower_middle, cell) + _value_of(upper_middle, cell)
    return max(total / 2.0, NOISE_FLOOR)


@_compiled
def low_quantile(keys: np.ndarray, lo: int, n: int, hint: float, cell: np.ndarray) -> float:
    """``np.quantile(readings[lo:lo + n], BASELINE_QUANTILE)`` bit for bit (``n >= 2``), from
    the readings' ``keys``: the "linear" method's interpolation, with numpy's own formula
    (``_lerp``)."""
    position = (n - 1) * BASELINE_QUANTILE
    previous = math.floor(position)
    gamma = position - previous
    lower_key, upper_key = _kth_and_next(keys, lo, n, int(previous), _key_of(hint, cell))
    lower, upper = _value_of(lower_key, cell), _value_of(upper_key, cell)
    difference = upper - lower
    if gamma >= 0.5:
        return upper - difference * (1 - gamma)
    return lower + difference * gamma


@_compiled
def _floor(
    packed: np.ndarray,
    reading_keys: np.ndarray,
    change_keys: np.ndarray,
    start: int,
    length: int,
    noise_hint: float,
    baseline_hint: float,
    prior_noise_kwh: float,
    cell: np.ndarray,
) -> tuple[float, float]:
    """``ActivityEvidence._baseline_and_noise`` of the window ``packed[start:start + length]``
    (the keys of its readings and of its changes start at ``start`` too): (noise, baseline)."""
    if length < _MIN_READINGS:
        baseline = 0.0
        if length > 0:
            baseline = packed[start : start + length].min()
        return prior_noise_kwh, baseline
    noise = median_noise(change_keys, start, length - 1, noise_hint, cell)
    return noise, low_quantile(reading_keys, start, length, baseline_hint, cell)


# -- the history of stretch lengths --------------------------------------------------------------


@_compiled
def remember(
    steps: np.ndarray, next_slot: np.ndarray, bin_min: np.ndarray, start_bin: int, hours: float
) -> bool:
    """``QuietStretchDetector._remember`` on one home's rows (``steps`` in half-hours, -1 where
    empty); returns whether the stretch is too long for the kernel table."""
    per_bin = steps.shape[1]
    length = int(np.rint(hours * 2))
    steps[start_bin, next_slot[start_bin] % per_bin] = length
    next_slot[start_bin] += 1
    shortest = _INT16_MAX
    for kept in steps[start_bin]:
        if 0 <= kept < shortest:
            shortest = kept
    bin_min[start_bin] = shortest / 2
    return length >= TABLE_STEPS


@_compiled
def _histogram(
    steps: np.ndarray,
    next_slot: np.ndarray,
    near: np.ndarray,
    weights: np.ndarray,
    counts: np.ndarray,
    used: int,
) -> tuple[int, float]:
    """The weighted count of each remembered length (half-hours) in the six bins ``near``, into
    ``counts`` (nonzero below ``used`` only); returns one past the longest, and the total weight
    (``survival``'s ``seen_weight``: sums of dyadic weights, exact)."""
    counts[:used] = 0.0
    per_bin = steps.shape[1]
    top = 0
    seen_weight = 0.0
    for b in range(near.shape[0]):
        start = near[b]
        filled = min(next_slot[start], per_bin)
        seen_weight += filled * weights[b]
        for i in range(filled):
            length = steps[start, i]
            if length >= 0:
                counts[length] += weights[b]
                top = max(top, length + 1)
    return top, seen_weight


@_compiled
def _lasted_by_table(counts: np.ndarray, top: int, row: np.ndarray) -> float:
    """``survival``'s weighted kernel sum from the histogram and the table's row for the present
    length (four sums at once: a single one waits on each addition)."""
    a, b, c, d = 0.0, 0.0, 0.0, 0.0
    length = 0
    while length + 4 <= top:
        a += counts[length] * row[length]
        b += counts[length + 1] * row[length + 1]
        c += counts[length + 2] * row[length + 2]
        d += counts[length + 3] * row[length + 3]
        length += 4
    while length < top:
        a += counts[length] * row[length]
        length += 1
    return (a + b) + (c + d)


@_compiled
def _lasted_by_formula(
    steps: np.ndarray, next_slot: np.ndarray, near: np.ndarray, hours: float, model: Model
) -> tuple[float, float]:
    """``survival``'s weighted kernel sum and seen weight, each kernel from its formula (for a
    home with a stretch longer than the table, or a present stretch that is)."""
    per_bin = steps.shape[1]
    lasted = 0.0
    seen_weight = 0.0
    for b in range(near.shape[0]):
        start = near[b]
        filled = min(next_slot[start], per_bin)
        seen_weight += filled * model.weights[b]
        total = 0.0
        for i in range(filled):
            length = steps[start, i]
            if length < 0:
                continue
            past = length / 2
            width = max(model.min_bandwidth_hours, model.relative_bandwidth * past)
            excess = max(0.0, hours - past) / width
            total += math.exp(-0.5 * excess * excess)
        lasted += total * model.weights[b]
    return lasted, seen_weight


@_compiled
def _score_of(
    lasted: float, seen_weight: float, hours: float, expected: float, model: Model
) -> float:
    """``max(0, -log10(survival))`` from the history's part, as ``survival`` blends the prior."""
    prior_weight = (
        model.prior_weight * model.prior_fades_after / (model.prior_fades_after + seen_weight)
    )
    prior = prior_weight * math.exp(-max(0.0, hours - expected) / model.prior_tail_hours)
    survival = max((lasted + prior) / (seen_weight + prior_weight), MIN_SURVIVAL)
    return max(0.0, -math.log10(survival))


# -- one household over the batch's slots ---------------------------------------------------------


@_compiled
def _run_household(
    h: int,
    kwh: np.ndarray,
    pressed: np.ndarray,
    tv_on: np.ndarray,
    clock: Clock,
    model: Model,
    ev: EvidenceRows,
    st: StretchRows,
    scores: np.ndarray,
    packed: np.ndarray,
    packed_bits: np.ndarray,
    reading_keys: np.ndarray,
    changes: np.ndarray,
    cell: np.ndarray,
    counts: np.ndarray,
) -> None:
    """``score_one(x)`` then ``learn_one(x)`` for each slot of row ``h``, in place on the rows.

    ``packed`` holds the readings in learning order (the old window, then the batch's observed
    readings; ``packed_bits`` is its int64 view), ``reading_keys`` their ``order_keys``,
    ``changes`` their absolute changes (never negative, so their bits are their keys),
    ``counts`` the present stretch's histogram (zero where it starts); ``cell`` is the floor's
    scratch space.
    """
    slots = kwh.shape[1]
    width = ev.window.shape[1]
    steps, next_slot, bin_min = st.steps[h], st.next_slot[h], st.bin_min[h]
    raised_rate = st.raised_rate[h]
    for i in range(width):
        packed[i] = ev.window[h, i]
    order_keys(packed_bits, reading_keys, 0, width)
    for i in range(width - 1):
        changes[i] = abs(packed[i + 1] - packed[i])
    change_keys = changes.view(np.int64)
    old_length = ev.length[h]
    last, counter, valid = ev.last_kwh[h], ev.counter[h], ev.valid[h]
    noise, baseline, quiet = ev.noise[h], st.baseline[h], ev.quiet_minutes[h]
    unattended, on_at_end, went_off = ev.tv_unattended[h], ev.tv_on_at_end[h], ev.tv_went_off[h]
    since, since_bin, since_expected = st.since[h], st.since_bin[h], st.since_expected[h]
    stuck, long_history = st.stuck_minutes[h], st.long_history[h]
    flagged, vouched, learnable = st.flagged[h], st.vouched[h], st.learnable[h]
    seen = 0  # readings learned in this batch
    top = -1  # the present stretch's histogram: -1 until it is built
    used = 0  # where ``counts`` may be nonzero
    seen_weight = 0.0
    for t in range(slots):
        x = kwh[h, t]
        here = not math.isnan(x)
        tv = pressed[h, t]
        on_minutes = tv_on[h, t]
        tv_shown = on_minutes > 0
        length = min(old_length + seen, width)
        full_enough = length >= _MIN_READINGS
        step = abs(x - last) if here and not math.isnan(last) else 0.0
        stepped = step >= model.min_step_kwh
        # QuietTracker.peek asks for the floor in is_evidence (a big enough step) and in
        # is_raised (nothing showed a person): that is what refreshes a stale floor.
        if not valid and not tv and here and (stepped or (not tv_shown and full_enough)):
            noise, baseline = _floor(
                packed, reading_keys, change_keys, seen + width - length, length, noise,
                baseline, model.prior_noise_kwh, cell,
            )  # fmt: skip
            valid, counter = True, 0
        # The set's auto-off: in the slot it goes off, and the next counted one after it went
        # off part-way through a slot (as ActivityEvidence.tv_switched_itself_off).
        goes_off = (
            on_at_end
            and on_minutes < SLOT_MINUTES - _EPSILON_MINUTES
            and unattended + on_minutes >= model.tv_auto_off_minutes
        )
        auto_off = (goes_off or went_off) and here and x < last
        level = baseline + max(model.min_step_kwh, model.noise_factor * noise)
        # A change between two readings at the standby level is not a person.
        standby = full_enough and x <= level and last <= level
        evident = tv or (
            here and stepped and step > model.noise_factor * noise and not auto_off and not standby
        )
        observed = here or tv
        lifted = tv_shown or (here and full_enough and x > level)  # is_raised
        had_since = not math.isnan(since)
        begins = observed and not evident and not had_since
        # The stretch as peek sees it once x is counted.
        peek_bin = clock.start_bin[t] if begins else since_bin
        peek_expected = clock.start_expected[t] if begins else since_expected
        peek_quiet, peek_stuck = quiet, stuck
        if evident:
            peek_quiet, peek_stuck = 0.0, 0.0
        elif observed:
            peek_quiet = quiet + SLOT_MINUTES
            peek_stuck = stuck + SLOT_MINUTES if lifted else 0.0
        score = 0.0
        if not evident and (had_since or begins) and peek_quiet > 0:
            hours = peek_quiet / 60
            near = model.neighbours[peek_bin]
            # Survival is exactly 1 (score 0) until the stretch outlasts the shortest stretch
            # remembered in its six bins, and the prior's expected night.
            limit = peek_expected
            for b in near:
                limit = min(limit, bin_min[b])
            if hours > limit:
                present = int(np.rint(hours * 2))
                if long_history or present >= TABLE_STEPS:
                    lasted, seen_weight = _lasted_by_formula(steps, next_slot, near, hours, model)
                else:
                    if top < 0:
                        top, seen_weight = _histogram(
                            steps, next_slot, near, model.weights, counts, used
                        )
                        used = top
                    lasted = _lasted_by_table(counts, top, model.kernel_table[present])
                score = _score_of(lasted, seen_weight, hours, peek_expected, model)
                if peek_stuck > 0:
                    unusual = 1.0 - raised_rate[clock.end_hour[t]]
                    score *= 1.0 + model.stuck_weight * min(1.0, peek_stuck / 120) * unusual
        scores[h, t] = score

        # learn_one: flag, the raised rate (which asks is_raised of the reading), advance.
        if score >= model.alert_threshold:
            flagged = True
        if (not flagged or vouched) and here:
            if not valid and not tv_shown and full_enough:
                noise, baseline = _floor(
                    packed, reading_keys, change_keys, seen + width - length, length, noise,
                    baseline, model.prior_noise_kwh, cell,
                )  # fmt: skip
                valid, counter = True, 0
            hour = clock.end_hour[t]
            level = baseline + max(model.min_step_kwh, model.noise_factor * noise)
            raised = 1.0 if tv_shown or (full_enough and x > level) else 0.0
            raised_rate[hour] = raised_rate[hour] + 0.05 * (raised - raised_rate[hour])
        if evident and had_since:
            # The stretch ended: learned unless flagged (and not vouched for), else kept aside
            # for a late answer.
            hours = quiet / 60
            if learnable and flagged and vouched:
                hours = min(hours, st.vouched_minutes[h] / 60 + model.vouched_grace_hours)
            if learnable and (not flagged or vouched):
                if remember(steps, next_slot, bin_min, since_bin, hours):
                    long_history = True
            elif learnable:
                st.unlearned_since[h] = since
                st.unlearned_bin[h] = since_bin
                st.unlearned_hours[h] = hours
            flagged, vouched, learnable = False, False, True
        # The tracker's present stretch after x.
        if evident:
            since, since_bin, since_expected = clock.end[t], clock.end_bin[t], clock.end_expected[t]
            top = -1  # a new stretch: other bins, perhaps a longer history
        elif begins:
            since = clock.end[t] - SLOT_MINUTES * 60
            since_bin, since_expected = peek_bin, peek_expected
        quiet, stuck = peek_quiet, peek_stuck

        # ActivityEvidence.learn_one: the TV bookkeeping for every counted slot, the reading
        # (and its change) only where there is one.
        if observed:
            went_off = not tv and goes_off and on_minutes > 0
            ends_on = on_minutes >= SLOT_MINUTES - _EPSILON_MINUTES
            unattended = (0.0 if tv else unattended + on_minutes) if ends_on else 0.0
            on_at_end = ends_on
        if here:
            packed[width + seen] = x
            order_keys(packed_bits, reading_keys, width + seen, 1)
            changes[width + seen - 1] = abs(x - packed[width + seen - 1])
            last = x
            counter += 1
            seen += 1
            if counter >= _REFRESH_EVERY or min(old_length + seen, width) <= _MIN_READINGS:
                valid = False

    counts[:used] = 0.0  # as the next household expects it
    for i in range(width):
        ev.window[h, i] = packed[seen + i]
    ev.length[h] = min(old_length + seen, width)
    ev.last_kwh[h], ev.counter[h], ev.valid[h], ev.noise[h] = last, counter, valid, noise
    ev.baseline[h], st.baseline[h], ev.quiet_minutes[h] = baseline, baseline, quiet
    ev.tv_unattended[h], ev.tv_on_at_end[h], ev.tv_went_off[h] = unattended, on_at_end, went_off
    st.since[h], st.since_bin[h], st.since_expected[h] = since, since_bin, since_expected
    st.stuck_minutes[h], st.long_history[h] = stuck, long_history
    st.flagged[h], st.vouched[h], st.learnable[h] = flagged, vouched, learnable


@_compiled
def run_households(
    lo: int,
    hi: int,
    kwh: np.ndarray,
    pressed: np.ndarray,
    tv_on: np.ndarray,
    clock: Clock,
    model: Model,
    ev: EvidenceRows,
    st: StretchRows,
    scores: np.ndarray,
) -> None:
    """Rows ``lo`` to ``hi`` of a batch: ``ev`` and ``st`` hold the state before the batch and
    are updated in place to the state after it; ``scores[h, t]`` is each slot's score."""
    slots = kwh.shape[1]
    width = ev.window.shape[1]
    packed = np.empty(width + slots)
    packed_bits = packed.view(np.int64)
    reading_keys = np.empty(width + slots, dtype=np.int64)
    changes = np.empty(width + slots)
    cell = np.empty(1)
    counts = np.zeros(TABLE_STEPS)
    for h in range(lo, hi):
        _run_household(
            h, kwh, pressed, tv_on, clock, model, ev, st, scores, packed, packed_bits,
            reading_keys, changes, cell, counts,
        )  # fmt: skip
