"""What counts as a sign of a person: a change in usage larger than the home's own standby noise.

A fridge, a router and a freezer give a meter a low, slightly noisy floor. A person makes the
line move: a kettle, a light switched on or off, a cooker. An appliance left running (a lamp, a
heater) is a flat raised line: its first step is a change, after that nothing changes, so it is
not evidence that anyone is moving. A TV operation (a key pressed) is evidence; a TV that is
merely on is not, and neither is the drop in load when a set left on for hours without a key
switches itself off (most sets do after 3-4 hours without operation).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np

from detectors.base import Interval

_MIN_READINGS = 8  # fewer readings than this: the floor is their minimum, the noise the prior
_REFRESH_EVERY = 6  # readings learned between two recomputations of the floor and noise
_EPSILON_MINUTES = 1e-6  # on-minutes are sums of float minutes: "the whole interval" within this


class ActivityEvidence:
    """Online model of one home's standby floor and noise; says which intervals show a person.

    The model keeps the last ``window_days`` of observed readings (bounded memory). From them:

    - ``baseline``: a low quantile of the readings (the standby/fridge floor);
    - ``noise``: the median interval-to-interval change. Most changes in a week are nobody's
      doing (nights, empty and idle hours), so this is how much the line moves on its own,
      whether the fridge hums steadily or cycles.

    An interval is evidence when it carries a TV operation, or when its change from the previous
    observed reading exceeds ``noise_factor`` times ``noise`` and at least ``min_step_kwh`` and
    one of the two readings is raised above the standby level (``baseline`` plus that margin, as
    ``is_raised`` judges it): a change within the standby band is the fridge's, not a person's.
    A fall in usage as the TV goes off, with no key pressed and after at least
    ``tv_auto_off_minutes`` on without one, is the set's own timer and does not count: neither in
    the interval it goes off nor in the next counted one, whose fall is the rest of the set's
    share of the interval before. ``score_one`` is the change in units of noise. Score before
    you learn: the score of ``x`` compares it with the readings seen before ``x``.

    Parameters
    ----------
    window_days
        How many days of readings to remember (336 half-hours for 7 days).
    noise_factor
        How many noise units a change must exceed to count as a person.
    min_step_kwh
        The smallest change that can count, whatever the noise (0.03 kWh per half-hour is a
        60 W change sustained for the half-hour, or a kettle for about a minute).
    prior_noise_kwh
        The noise assumed before enough readings were seen.
    tv_auto_off_minutes
        How long a TV must have been on without a key pressed for its switching off to be taken
        as its auto-off timer (sets switch off after 3-4 hours; a person who watched that long
        without touching the remote shows other evidence soon enough).

    Notes
    -----
    Known limits: appliances that cycle on their own above the standby band (storage heaters, a
    washing machine's programme, an oven on a timer) look like a person; a person whose only
    action stays within the standby band (a small light switched on from the floor) does not,
    and neither does a person who sits still with nothing switched on or off for hours. TV
    operations cover much of the second case.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> evidence = ActivityEvidence()
    >>> start = datetime(2025, 1, 6, tzinfo=UTC)
    >>> for i in range(48):
    ...     evidence.learn_one(Interval(start + timedelta(minutes=30 * i), 0.05 + 0.002 * (i % 3)))
    >>> evidence.is_evidence(Interval(start + timedelta(hours=24), 0.35))  # kettle
    True
    >>> evidence.is_evidence(Interval(start + timedelta(hours=24), 0.052))  # fridge
    False

    A set left on for four hours with no key pressed, then switching itself off a quarter of
    an hour into an interval; the next reading falls by the rest of the set's share:

    >>> t = start + timedelta(hours=24)
    >>> for i in range(8):
    ...     evidence.learn_one(Interval(t + timedelta(minutes=30 * i), 0.17, tv_on_minutes=30))
    >>> went_off = Interval(t + timedelta(hours=4), 0.13, tv_on_minutes=15)
    >>> evidence.is_evidence(went_off)
    False
    >>> evidence.learn_one(went_off)
    >>> evidence.is_evidence(Interval(t + timedelta(hours=4, minutes=30), 0.05))
    False
    """

    def __init__(
        self,
        window_days: int = 7,
        noise_factor: float = 2.0,
        min_step_kwh: float = 0.03,
        prior_noise_kwh: float = 0.01,
        tv_auto_off_minutes: float = 180.0,
    ) -> None:
        self.window_days = window_days
        self.noise_factor = noise_factor
        self.min_step_kwh = min_step_kwh
        self.prior_noise_kwh = prior_noise_kwh
        self.tv_auto_off_minutes = tv_auto_off_minutes

    def _state(self) -> deque[float]:
        if not hasattr(self, "_readings"):
            self._readings: deque[float] = deque(maxlen=self.window_days * 48)
            self._last_kwh: float | None = None
            self._floor: tuple[float, float] | None = None
            self._learned_since_floor = 0
        return self._readings

    def learn_one(self, x: Interval) -> None:
        """Remember ``x``'s reading (missing readings are skipped, not read as zero)."""
        readings = self._state()
        # A slot's reading averages over it, so a set that switches itself off part-way through
        # ``x`` still lowers the next reading by its share of ``x``: remember that it did, until
        # the next interval with a reading or a key (a missing reading does not use it up).
        if x.kwh is not None or x.tv_operations > 0:
            self._tv_went_off_itself = x.tv_on_minutes > 0 and self._went_off_during(x)
        # The TV: on through the end of ``x``, and for how long without a key pressed.
        unattended = 0.0 if x.tv_operations > 0 else self._tv_unattended() + x.tv_on_minutes
        on_at_end = x.tv_on_minutes >= x.minutes - _EPSILON_MINUTES
        self._tv = (unattended if on_at_end else 0.0, on_at_end)
        if x.kwh is None:
            return
        readings.append(float(x.kwh))
        self._last_kwh = float(x.kwh)
        self._learned_since_floor += 1
        # The floor moves slowly: refreshing it every few hours keeps scoring cheap.
        if self._learned_since_floor >= _REFRESH_EVERY or len(readings) <= _MIN_READINGS:
            self._floor = None

    def _baseline_and_noise(self) -> tuple[float, float]:
        """(baseline, noise) from the window; recomputed every few learned readings."""
        readings = self._state()
        if self._floor is not None:
            return self._floor
        self._learned_since_floor = 0
        if len(readings) < _MIN_READINGS:
            self._floor = (min(readings, default=0.0), self.prior_noise_kwh)
            return self._floor
        values = np.fromiter(readings, dtype=float)
        baseline = float(np.quantile(values, 0.1))
        # Most half-hour to half-hour changes in a week are nobody's doing (nights, empty and
        # idle hours), so the median change measures the fridge/standby noise, however it cycles.
        noise = float(np.median(np.abs(np.diff(values))))
        self._floor = (baseline, max(noise, 1e-3))
        return self._floor

    @property
    def baseline(self) -> float:
        """The standby floor in kWh per interval (0.0 before any reading)."""
        return self._baseline_and_noise()[0]

    @property
    def noise(self) -> float:
        """How much the line moves at standby, kWh per interval (the prior before learning)."""
        return self._baseline_and_noise()[1]

    def step_kwh(self, x: Interval) -> float:
        """The change from the previous observed reading (0.0 when there is nothing to compare)."""
        self._state()
        if x.kwh is None or self._last_kwh is None:
            return 0.0
        return float(x.kwh) - self._last_kwh

    def score_one(self, x: Interval) -> float:
        """How strongly ``x`` shows a person: its change in units of standby noise.

        A TV operation scores at least ``noise_factor`` (enough to count on its own).
        """
        score = abs(self.step_kwh(x)) / self.noise
        if x.tv_operations > 0:
            score = max(score, self.noise_factor)
        return score

    def is_evidence(self, x: Interval) -> bool:
        """Whether ``x`` shows a person at home and moving (before learning ``x``)."""
        if x.tv_operations > 0:
            return True
        signed = self.step_kwh(x)
        step = abs(signed)
        if not (step >= self.min_step_kwh and step > self.noise_factor * self.noise):
            return False
        if signed < 0 and self.tv_switched_itself_off(x):
            return False
        return not self.within_standby(x)

    def within_standby(self, x: Interval) -> bool:
        """Whether ``x`` and the reading before it both lie at the standby level (neither raised
        above the floor, as ``is_raised`` judges it): a change between them is the standby's
        own variation (a fridge or freezer cycling), not a person, who lifts the load above it.
        """
        if x.kwh is None or self._last_kwh is None or len(self._state()) < _MIN_READINGS:
            return False
        level = self._standby_level()
        return float(x.kwh) <= level and self._last_kwh <= level

    def _standby_level(self) -> float:
        baseline, noise = self._baseline_and_noise()
        return baseline + max(self.min_step_kwh, self.noise_factor * noise)

    def tv_switched_itself_off(self, x: Interval) -> bool:
        """The TV, on without a key pressed for ``tv_auto_off_minutes``, went off during ``x``
        or during the counted interval before it (whose reading still held part of its load)."""
        if x.tv_operations > 0:
            return False
        return self._went_off_during(x) or getattr(self, "_tv_went_off_itself", False)

    def _went_off_during(self, x: Interval) -> bool:
        was_on = getattr(self, "_tv", (0.0, False))[1]
        return (
            was_on
            and x.tv_operations == 0
            and x.tv_on_minutes < x.minutes - _EPSILON_MINUTES
            and self._tv_unattended() + x.tv_on_minutes >= self.tv_auto_off_minutes
        )

    def _tv_unattended(self) -> float:
        # States pickled before the TV bookkeeping existed have none: the set was off.
        return getattr(self, "_tv", (0.0, False))[0]

    def is_raised(self, x: Interval) -> bool:
        """Whether ``x`` sits clearly above the standby floor (a lamp, a heater, a TV left on)."""
        if x.tv_on_minutes > 0:
            return True
        if x.kwh is None or len(self._state()) < _MIN_READINGS:
            return False
        return float(x.kwh) > self._standby_level()


class Stretch(NamedTuple):
    """The quiet stretch as it stands once an interval is counted."""

    since: datetime | None  # None: the interval shows a person
    quiet_minutes: float  # observed minutes without evidence since ``since``
    stuck_minutes: float  # trailing observed minutes with a raised flat load or the TV on


class QuietTracker:
    """Follows the present quiet stretch of one home: the time since the last evidence.

    Only observed intervals count: an interval with no reading and no TV operation neither
    extends nor ends the stretch (missing data is not quiet). Before the first evidence, the
    stretch is taken to begin with the first observed interval.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> tracker = QuietTracker(ActivityEvidence())
    >>> t = datetime(2025, 1, 6, tzinfo=UTC)
    >>> for i, kwh in enumerate([0.05, 0.40, 0.05, None, 0.05]):
    ...     stretch = tracker.peek(Interval(t + timedelta(minutes=30 * i), kwh))
    ...     _ = tracker.advance(Interval(t + timedelta(minutes=30 * i), kwh))
    >>> stretch.since.strftime("%H:%M"), stretch.quiet_minutes
    ('01:00', 30.0)
    """

    def __init__(self, evidence: ActivityEvidence) -> None:
        self.evidence = evidence
        self.since: datetime | None = None
        self.quiet_minutes = 0.0
        self.stuck_minutes = 0.0

    def peek(self, x: Interval) -> Stretch:
        """The stretch once ``x`` is counted; changes nothing."""
        if x.kwh is None and x.tv_operations == 0:
            return Stretch(self.since, self.quiet_minutes, self.stuck_minutes)
        if self.evidence.is_evidence(x):
            return Stretch(None, 0.0, 0.0)
        since = self.since or (x.end - timedelta(minutes=x.minutes))
        stuck = self.stuck_minutes + x.minutes if self.evidence.is_raised(x) else 0.0
        return Stretch(since, self.quiet_minutes + x.minutes, stuck)

    def advance(self, x: Interval) -> Stretch | None:
        """Count ``x`` (and teach it to the evidence model); returns the stretch ``x`` ended."""
        if x.kwh is None and x.tv_operations == 0:
            return None  # nothing observed: the stretch stands still
        stretch = self.peek(x)
        ended = None
        if stretch.since is None:
            if self.since is not None:
                ended = Stretch(self.since, self.quiet_minutes, self.stuck_minutes)
            stretch = Stretch(x.end, 0.0, 0.0)
        self.since, self.quiet_minutes, self.stuck_minutes = stretch
        self.evidence.learn_one(x)
        return ended
