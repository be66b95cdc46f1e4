"""The main inactivity model: how unusual is the present quiet stretch, given when it began?

A quiet stretch is the time since the last evidence of a person (see ``detectors.activity``),
counting only intervals that were observed: a missing reading neither extends nor ends it. The
model remembers this household's completed stretches by the local hour and day type (weekday or
weekend) at which they began, and scores the present stretch by how rarely a stretch that began
then lasted this long. A quiet night of nine hours is ordinary; five quiet hours from 07:30 in a
home that is always busy by 08:00 is not.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from detectors.activity import ActivityEvidence, QuietTracker, Stretch
from detectors.base import Detector, Interval

#: Hours in which a stretch that begins is, before learning, assumed to be the night: it is
#: expected to last until ``_PRIOR_WAKE_HOUR`` local time.
_PRIOR_NIGHT_HOURS = frozenset({21, 22, 23, 0, 1, 2, 3, 4})
_PRIOR_WAKE_HOUR = 7.0
_MIN_SURVIVAL = 1e-12  # so the score stays finite (at most 12)
#: Outcomes by which people vouch that a flagged stretch was ordinary life, so it may be learned.
VOUCHING_OUTCOMES = frozenset({"fine", "away", "false_alarm"})


class QuietStretchDetector(Detector):
    """Scores a quiet stretch by ``-log10 P(D >= d | local start hour, day type)``.

    ``D`` is the length of this household's past quiet stretches that began in the same local
    hour (neighbouring hours and the other day type count with less weight); ``d`` is the present
    stretch's observed length. The survival probability is a kernel-smoothed empirical estimate
    (each past stretch ``D_i`` contributes 1 up to ``D_i`` then a half-Gaussian tail of width
    ``max(min_bandwidth_hours, relative_bandwidth * D_i)``) blended with a population prior worth
    ``prior_weight`` stretches: nights last until about 07:00, then an exponential tail of
    ``prior_tail_hours``. So the score is defined before any learning and a new home gets
    cautious, night-aware scores. The prior's weight fades as the home's own history grows (to
    half once ``prior_fades_after`` weighted stretches are known).

    A score of ``s`` means "a stretch starting then lasts this long about once in ``10**s``
    stretches". Defaults: ``watch_threshold=2.0`` (1 in 100: shown on the dashboard),
    ``alert_threshold=3.1`` (about 1 in 1,250: escalate; on London meter data that is about 0.6
    false alerts per household-month, docs/detection.md). When the home has a raised flat load
    (a lamp or heater left on, a TV on with no key pressed) for the last hours and that is
    unusual for this hour, the score is multiplied by up to ``1 + stuck_weight``.

    Never learns from what it flagged: a stretch whose score reached ``alert_threshold`` is not
    added to the history (river's ``protect_anomaly_detector``), so a week of silence does not
    teach the model that silence is normal. Unless people vouch for it: ``learn_outcome`` with
    ``fine``, ``away`` or ``false_alarm`` makes the flagged stretch learnable again, so a home
    that is often out all day stops alerting once its outings have been answered a few times.

    Parameters
    ----------
    timezone
        The household's IANA zone; stretches are binned by their local start hour.
    watch_threshold, alert_threshold
        Scores (``-log10`` survival) at which the stretch is shown, and escalated.
    history_per_bin
        How many past stretches to remember per (day type, hour) bin (bounded memory).
    prior_weight, prior_tail_hours, prior_fades_after
        The population prior: its weight in stretches, its tail in hours, and how much own
        history halves its weight.
    min_bandwidth_hours, relative_bandwidth
        The width of each past stretch's tail (how much longer than ``D_i`` is still "like" it).
    stuck_weight
        How much an unusual stuck load can add (``score * (1 + stuck_weight)`` at most).
    other_day_weight
        The weight of the other day type's stretches (weekday for a weekend and vice versa).
    noise_factor, min_step_kwh
        Passed to ``ActivityEvidence``: what counts as a person.
    vouched_grace_hours
        A stretch vouched for by ``learn_outcome`` is learned as at most its length when the
        answer came plus this much: an answer says the resident was fine then, not that what
        followed in the same quiet stretch was ordinary.

    Notes
    -----
    Known limits: the score only knows what ``ActivityEvidence`` calls a person; a resident who
    goes out leaves a quiet stretch like a collapse does (outings the home usually makes are
    learned, unusual ones raise scores). A home whose history holds long outings is slower to
    alert. A collapse in the night is seen only once the usual morning fails to start: on the
    synthetic resident up at about 06:30, alerts come at about 10:30-12:30 with 4 weeks of
    history. Real homes with cycling loads (electric heating, freezers) make changes that look
    like a person and can hide a collapse.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> detector = QuietStretchDetector(timezone="Asia/Tokyo")
    >>> night = Interval(datetime(2025, 1, 6, 14, 0, tzinfo=UTC), 0.05)  # 23:00 in Tokyo
    >>> detector.score_one(night)
    0.0
    >>> detector.quiet_since(night).isoformat()
    '2025-01-06T13:30:00+00:00'
    """

    def __init__(
        self,
        timezone: str = "Asia/Tokyo",
        watch_threshold: float = 2.0,
        alert_threshold: float = 3.1,
        history_per_bin: int = 60,
        prior_weight: float = 0.5,
        prior_tail_hours: float = 1.5,
        prior_fades_after: float = 20.0,
        min_bandwidth_hours: float = 2.0,
        relative_bandwidth: float = 0.1,
        stuck_weight: float = 0.5,
        other_day_weight: float = 0.5,
        noise_factor: float = 1.3,
        min_step_kwh: float = 0.02,
        vouched_grace_hours: float = 6.0,
    ) -> None:
        self.timezone = timezone
        self.watch_threshold = watch_threshold
        self.alert_threshold = alert_threshold
        self.history_per_bin = history_per_bin
        self.prior_weight = prior_weight
        self.prior_tail_hours = prior_tail_hours
        self.prior_fades_after = prior_fades_after
        self.min_bandwidth_hours = min_bandwidth_hours
        self.relative_bandwidth = relative_bandwidth
        self.stuck_weight = stuck_weight
        self.other_day_weight = other_day_weight
        self.noise_factor = noise_factor
        self.min_step_kwh = min_step_kwh
        self.vouched_grace_hours = vouched_grace_hours

    # -- state -------------------------------------------------------------------------------

    def _init_state(self) -> None:
        if hasattr(self, "_tracker"):
            return
        self._tracker = QuietTracker(
            ActivityEvidence(noise_factor=self.noise_factor, min_step_kwh=self.min_step_kwh)
        )
        # Ring buffers of past stretch lengths (hours) per bin: 2 day types x 24 local hours.
        self._durations = np.full((48, self.history_per_bin), np.nan, dtype=np.float32)
        self._next_slot = np.zeros(48, dtype=np.int64)
        # How often each local hour has a raised load, to judge whether a stuck load is unusual.
        self._raised_rate = np.full(24, 0.5)
        self._flagged = False
        # (start, quiet minutes then) of the present stretch if people vouched for it.
        self._vouched: tuple[datetime, float] | None = None
        # The last flagged stretch that ended unlearned, (start, hours): an answer may come late.
        self._unlearned: tuple[datetime, float] | None = None
        # The first stretch began before we saw anything: its length is unknown, do not learn it.
        self._learnable = False

    # -- pickling: a household's state is saved after every detection run --------------------

    def __getstate__(self) -> dict:
        """The state to pickle, with the history of stretch lengths packed.

        The ring buffers are most of a saved state (48 bins x ``history_per_bin`` float32:
        11.5 kB of about 14 kB by default). Stretch lengths are whole half-hours on a 30-minute
        grid, so they are saved as half-hour counts in the smallest integer that holds them
        (one byte while no stretch reached 127 h), with the unfilled tail cut off. Lengths that
        are not whole half-hours are saved as they are. Unpickling gives back the same floats.
        """
        state = self.__dict__.copy()
        durations = state.get("_durations")
        if durations is not None:
            state["_durations"] = _pack_durations(durations)
        state.pop("_last_scored", None)  # a cache: rebuilt on the next score
        return state

    def __setstate__(self, state: dict) -> None:
        durations = state.get("_durations")
        if isinstance(durations, tuple):
            state["_durations"] = _unpack_durations(durations, state["history_per_bin"])
        self.__dict__.update(state)

    def _local(self, when: datetime) -> datetime:
        return when.astimezone(ZoneInfo(self.timezone))

    def start_bin(self, when: datetime) -> int:
        """The history bin of a stretch that began at ``when``: ``24 * weekend + local hour``."""
        local = self._local(when)
        return 24 * int(local.weekday() >= 5) + local.hour

    # -- the present stretch -----------------------------------------------------------------

    def _peek(self, x: Interval) -> Stretch:
        self._init_state()
        return self._tracker.peek(x)

    def quiet_since(self, x: Interval) -> datetime | None:
        """When the present quiet stretch began (``None`` if ``x`` shows a person)."""
        return self._peek(x).since

    # -- the survival model ------------------------------------------------------------------

    def _bin_weights(self, start_bin: int) -> list[tuple[int, float]]:
        day_type, hour = divmod(start_bin, 24)
        other = 1 - day_type
        return [
            (start_bin, 1.0),
            (24 * day_type + (hour - 1) % 24, 0.5),
            (24 * day_type + (hour + 1) % 24, 0.5),
            (24 * other + hour, self.other_day_weight),
            (24 * other + (hour - 1) % 24, self.other_day_weight / 2),
            (24 * other + (hour + 1) % 24, self.other_day_weight / 2),
        ]

    def _prior_survival(self, start: datetime, hours: float) -> float:
        local = self._local(start)
        expected = 0.0
        if local.hour in _PRIOR_NIGHT_HOURS:
            clock = local.hour + local.minute / 60
            expected = (_PRIOR_WAKE_HOUR - clock) % 24
        return math.exp(-max(0.0, hours - expected) / self.prior_tail_hours)

    def survival(self, start: datetime, hours: float) -> float:
        """Smoothed ``P(D >= hours)`` for a quiet stretch that began at ``start``."""
        self._init_state()
        bins = self._bin_weights(self.start_bin(start))
        durations = self._durations[[b for b, _ in bins]].astype(float)
        weights = np.repeat([w for _, w in bins], self.history_per_bin).reshape(durations.shape)
        seen = ~np.isnan(durations)
        durations, weights = durations[seen], weights[seen]
        width = np.maximum(self.min_bandwidth_hours, self.relative_bandwidth * durations)
        excess = np.maximum(0.0, hours - durations) / width
        lasted = float(np.sum(weights * np.exp(-0.5 * excess**2)))
        seen_weight = float(weights.sum())
        # The population prior matters while the home's own history is short, then steps back:
        # otherwise its generic 07:00 morning would hold back alerts in every home, for ever.
        prior_weight = (
            self.prior_weight * self.prior_fades_after / (self.prior_fades_after + seen_weight)
        )
        prior = prior_weight * self._prior_survival(start, hours)
        return max((lasted + prior) / (seen_weight + prior_weight), _MIN_SURVIVAL)

    def _score(self, x: Interval, stretch: Stretch) -> float:
        if stretch.since is None or stretch.quiet_minutes == 0:
            return 0.0
        score = max(0.0, -math.log10(self.survival(stretch.since, stretch.quiet_minutes / 60)))
        if stretch.stuck_minutes > 0:
            unusual = 1.0 - float(self._raised_rate[self._local(x.end).hour])
            score *= 1.0 + self.stuck_weight * min(1.0, stretch.stuck_minutes / 120) * unusual
        return score

    def _scored(self, x: Interval) -> tuple[Stretch, float]:
        # score_one then learn_one on the same interval is the usual call pattern: compute the
        # survival once. Only learning changes the state, and learning clears the cache.
        cached = getattr(self, "_last_scored", None)
        if cached is not None and (cached[0] is x or cached[0] == x):
            return cached[1], cached[2]
        stretch = self._peek(x)
        score = self._score(x, stretch)
        self._last_scored = (x, stretch, score)
        return stretch, score

    def score_one(self, x: Interval) -> float:
        """How unusual the quiet stretch is at ``x.end`` (0.0 when ``x`` shows a person)."""
        return self._scored(x)[1]

    def usual_hours(self, start: datetime, quantile: float = 0.9) -> float | None:
        """Within how many hours stretches that began like ``start`` usually ended (None: no
        history yet)."""
        self._init_state()
        durations = self._durations[self.start_bin(start)]
        durations = durations[~np.isnan(durations)]
        if durations.size == 0:
            return None
        return float(np.quantile(durations, quantile))

    def explain_one(self, x: Interval) -> str:
        """E.g. "no activity since 07:30 (5.5 h); on weekdays this home is usually active again
        within 1.5 h of 07:30"."""
        stretch = self._peek(x)
        if stretch.since is None:
            return "activity in the last interval"
        local = self._local(stretch.since)
        clock = local.strftime("%H:%M")
        text = f"no activity since {clock} ({stretch.quiet_minutes / 60:.1f} h)"
        day_type = "weekends" if local.weekday() >= 5 else "weekdays"
        usual = self.usual_hours(stretch.since)
        if usual is None:
            text += f"; no history yet for {day_type} around {clock}"
        else:
            text += f"; on {day_type} this home is usually active again within {usual:.1f} h of"
            text += f" {clock}"
        if stretch.stuck_minutes >= 60:
            text += "; a flat load (lamp, heater or TV) has run unchanged for "
            text += f"{stretch.stuck_minutes / 60:.1f} h"
        return text

    # -- learning ----------------------------------------------------------------------------

    def learn_one(self, x: Interval) -> None:
        """Count ``x`` into the present stretch; a stretch that ends goes into the history
        unless it was flagged (its score reached ``alert_threshold``) and nobody vouched for it."""
        stretch, score = self._scored(x)
        self._last_scored = None  # the state changes below
        if score >= self.alert_threshold:
            self._flagged = True
        vouched = self._vouched is not None and self._vouched[0] == self._tracker.since
        if (not self._flagged or vouched) and x.kwh is not None:
            hour = self._local(x.end).hour
            raised = float(self._tracker.evidence.is_raised(x))
            self._raised_rate[hour] += 0.05 * (raised - self._raised_rate[hour])
        ended = self._tracker.advance(x)
        if ended is None:
            return
        hours = ended.quiet_minutes / 60
        if self._learnable and self._flagged and vouched and self._vouched is not None:
            hours = min(hours, self._vouched[1] / 60 + self.vouched_grace_hours)
        if self._learnable and (not self._flagged or vouched):
            self._remember(ended.since, hours)
        elif self._learnable:
            self._unlearned = (ended.since, hours)
        self._flagged = False
        self._vouched = None
        self._learnable = True

    def _remember(self, since: datetime, hours: float) -> None:
        start_bin = self.start_bin(since)
        self._durations[start_bin, self._next_slot[start_bin] % self.history_per_bin] = hours
        self._next_slot[start_bin] += 1

    def learn_outcome(self, since: datetime, outcome: str) -> None:
        """Learn what people said about the flagged stretch that began at ``since``.

        ``fine``, ``away`` and ``false_alarm`` vouch that it was ordinary life: the stretch is
        added to the history when it ends, as at most its length now plus
        ``vouched_grace_hours`` (or at once, if it already ended and was the last one left
        out). ``needed_help`` and any other outcome keep it out. An answer about an older
        stretch, or about the first stretch (its length is unknown), changes nothing.

        Examples
        --------
        A day out from 09:30 to 21:30 in a new home is flagged; one resident answers "fine". Then
        a stretch of 11 h from 09:30 scores (``-log10`` survival) as ordinary for them only:

        >>> from datetime import UTC, datetime, timedelta
        >>> def day_out(detector: QuietStretchDetector, answer: str | None) -> None:
        ...     t = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
        ...     for i in range(48):  # busy (a step every half hour) except 09:30-21:00
        ...         x = Interval(t + timedelta(minutes=30 * (i + 1)), 0.1 + 0.3 * (i % 2))
        ...         x = Interval(x.end, 0.1) if 3 <= i < 26 else x
        ...         if answer and detector.severity(detector.score_one(x)) == "alert":
        ...             detector.learn_outcome(detector.quiet_since(x), answer)
        ...         detector.learn_one(x)
        >>> vouched, unanswered = QuietStretchDetector("UTC"), QuietStretchDetector("UTC")
        >>> day_out(vouched, "fine"), day_out(unanswered, None)
        (None, None)
        >>> morning = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)
        >>> [round(-math.log10(d.survival(morning, 11.0)), 1) for d in (vouched, unanswered)]
        [0.4, 3.7]
        """
        if outcome not in VOUCHING_OUTCOMES:
            return
        self._init_state()
        if self._tracker.since == since and self._learnable:
            self._vouched = (since, self._tracker.quiet_minutes)
        elif self._unlearned is not None and self._unlearned[0] == since:
            self._remember(*self._unlearned)
            self._unlearned = None


def _pack_durations(durations: np.ndarray) -> tuple | np.ndarray:
    """``(dtype, filled columns, half-hour counts)``; empty cells are the dtype's maximum.

    >>> d = np.full((48, 60), np.nan, dtype=np.float32)
    >>> d[7, :2] = [9.5, 11.0]
    >>> packed = _pack_durations(d)
    >>> packed[0], packed[1], len(packed[2])
    ('uint8', 2, 96)
    >>> back = _unpack_durations(packed, 60)
    >>> bool(np.array_equal(back, d, equal_nan=True)), back.dtype.name
    (True, 'float32')
    """
    steps = durations * 2
    seen = ~np.isnan(steps)
    if not np.array_equal(steps[seen], np.round(steps[seen])):
        return durations  # not on the half-hour grid: saved as it is
    columns = int(seen.any(axis=0).nonzero()[0].max()) + 1 if seen.any() else 0
    longest = float(steps[seen].max()) if seen.any() else 0.0
    dtype = np.uint8 if longest < np.iinfo(np.uint8).max else np.uint16
    if longest >= np.iinfo(np.uint16).max:
        return durations
    empty = np.iinfo(dtype).max
    counts = np.where(seen, steps, empty)[:, :columns].astype(dtype)
    return (np.dtype(dtype).name, columns, counts.tobytes())


def _unpack_durations(packed: tuple, history_per_bin: int) -> np.ndarray:
    dtype_name, columns, raw = packed
    dtype = np.dtype(dtype_name)
    counts = np.frombuffer(raw, dtype=dtype).reshape(48, columns)
    durations = np.full((48, history_per_bin), np.nan, dtype=np.float32)
    filled = counts != np.iinfo(dtype).max
    block = durations[:, :columns]
    block[filled] = counts[filled].astype(np.float32) / np.float32(2)
    return durations
