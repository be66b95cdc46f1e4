"""A resident's days, painted minute by minute: awake, at home, napping, wanting the TV, heating.

Each local day is planned in minutes after local midnight (wake, outings, naps, meals, TV
sessions) and painted onto arrays that run over the whole period, one element per minute. The
arrays then become power (``meter``) and TV operations (``tv``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from data.synthetic.personas import Persona

#: Latitude of the fictional town; only used for sunrise and sunset (when the lights go on).
TOWN_LATITUDE = 36.0
#: Local clock time of solar noon near 139° E in winter, minutes after midnight.
SOLAR_NOON_MIN = 11 * 60 + 50


@dataclass(frozen=True)
class Timeline:
    """The simulated period: every minute from ``start`` (local midnight) for ``days`` days."""

    start: pd.Timestamp
    days: int
    day_offsets: np.ndarray  # minutes from start to each local midnight, length days + 1
    minute_of_day: np.ndarray  # local clock minute (0..1439) of every simulated minute
    day_of_minute: np.ndarray  # which local day every simulated minute belongs to
    dates: tuple[date, ...]

    @property
    def minutes(self) -> int:
        return int(self.day_offsets[-1])


def make_timeline(start: pd.Timestamp, days: int) -> Timeline:
    """The minute grid of ``days`` local days from ``start``, which must be a local midnight."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if start != start.normalize():
        raise ValueError(f"start must be a local midnight, got {start.isoformat()}")
    midnights = [
        (start.normalize().tz_localize(None) + pd.Timedelta(days=d)).tz_localize(start.tz)
        for d in range(days + 1)
    ]
    offsets = np.array([int((m - start) / pd.Timedelta(minutes=1)) for m in midnights])
    grid = pd.date_range(start, periods=int(offsets[-1]), freq="min")
    return Timeline(
        start=start,
        days=days,
        day_offsets=offsets,
        minute_of_day=(grid.hour * 60 + grid.minute).to_numpy(),
        day_of_minute=np.repeat(np.arange(days), np.diff(offsets)),
        dates=tuple(m.date() for m in midnights[:-1]),
    )


def daylight(day: date) -> tuple[float, float]:
    """Approximate local sunrise and sunset (minutes after midnight) in the town."""
    doy = day.timetuple().tm_yday
    declination = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365)
    cos_h = -np.tan(np.radians(TOWN_LATITUDE)) * np.tan(declination)
    half_day_min = np.degrees(np.arccos(np.clip(cos_h, -1, 1))) * 4
    return SOLAR_NOON_MIN - half_day_min, SOLAR_NOON_MIN + half_day_min


@dataclass
class HouseArrays:
    """Minute-by-minute state of one home; ``load_w`` holds appliance power already placed."""

    home: np.ndarray
    awake: np.ndarray
    nap: np.ndarray
    tv_want: np.ndarray
    tv_doze: np.ndarray  # minutes the TV may stay on with the resident asleep
    heat: np.ndarray
    load_w: np.ndarray
    offset: int = field(default=0)

    @classmethod
    def empty(cls, minutes: int) -> HouseArrays:
        return cls(
            home=np.ones(minutes, bool),
            awake=np.zeros(minutes, bool),
            nap=np.zeros(minutes, bool),
            tv_want=np.zeros(minutes, bool),
            tv_doze=np.zeros(minutes, bool),
            heat=np.zeros(minutes, bool),
            load_w=np.zeros(minutes),
        )

    def put(self, name: str, start: float, end: float, value: bool = True) -> None:
        """Set a state from ``start`` to ``end`` local minutes of the current day."""
        array = getattr(self, name)
        a, b = self._clip(start, end)
        array[a:b] = value

    def add(self, start: float, minutes: float, watts: float) -> None:
        """Run an appliance of ``watts`` for ``minutes`` from ``start`` (local minutes)."""
        a, b = self._clip(start, start + minutes)
        self.load_w[a:b] += watts

    def _clip(self, start: float, end: float) -> tuple[int, int]:
        size = len(self.home)
        a = min(max(self.offset + round(start), 0), size)
        b = min(max(self.offset + round(end), 0), size)
        return a, b


def _outings(
    p: Persona, weekday: int, wake: float, bed: float, rng: np.random.Generator
) -> list[tuple[float, float]]:
    at_centre = weekday in p.day_centre_weekdays
    outs: list[tuple[float, float]] = []
    if at_centre:
        # The day-service minibus collects at about 08:45 and brings the resident back at 15:15.
        outs.append((rng.normal(525, 5), rng.normal(915, 10)))
    elif weekday == p.shopping_weekday:
        leave = rng.normal(600, 30)
        outs.append((leave, leave + rng.uniform(90, 180)))
    if rng.random() < p.outing_prob:
        leave = rng.uniform(570, 900)
        back = leave + rng.uniform(45, 150)
        if all(back + 30 < s or leave > e + 30 for s, e in outs):
            outs.append((leave, back))
    clipped = [(max(s, wake + 45), min(e, bed - 60)) for s, e in outs]
    return [(s, e) for s, e in clipped if e - s >= 20]


def _cook_rice(a: HouseArrays, start: float, rng: np.random.Generator) -> None:
    a.add(start, 12, 650)
    a.add(start + 12, 30, 120)
    a.add(start + 42, rng.uniform(120, 300), 25)  # keep-warm until the rice is eaten


def paint_day(
    p: Persona, a: HouseArrays, weekday: int, anomaly: float, rng: np.random.Generator
) -> None:
    """Plan one local day of ``p`` and paint it onto ``a`` (whose ``offset`` is that midnight).

    ``anomaly`` is the day's temperature anomaly (about °C, shared by the town); cold days
    mean heating through the middle of the day.
    """
    at_centre = weekday in p.day_centre_weekdays
    wake = float(np.clip(rng.normal(p.wake_min, p.wake_sd), 300, 480))
    if at_centre:
        wake = min(wake, 435 - abs(rng.normal(0, 10)))
    bed = float(np.clip(rng.normal(p.bed_min, p.bed_sd), 1230, 1435))
    a.put("awake", wake, bed)
    outs = _outings(p, weekday, wake, bed, rng)
    for s, e in outs:
        a.put("home", s, e, False)

    def free(s: float, e: float) -> bool:
        return all(e <= os_ or s >= oe for os_, oe in outs)

    nap: tuple[float, float] | None = None
    if rng.random() < p.nap_prob:
        s = rng.uniform(765, 870)
        e = s + rng.uniform(30, 90)
        if free(s, e):
            nap = (s, e)
            a.put("awake", s, e, False)
            a.put("nap", s, e)

    if anomaly < -1 or rng.random() < 0.3:
        a.put("heat", wake, bed)
    else:
        a.put("heat", wake, rng.uniform(630, 720))
        a.put("heat", rng.uniform(900, 990), bed)
    if p.electric_blanket:
        a.add(bed - 30, 120, 55)  # switched on to warm the futon, off by its own timer

    _paint_tv_wishes(p, a, wake, bed, nap, rng)
    _paint_meals(p, a, wake, bed, outs, free, rng)
    if weekday in p.laundry_weekdays:
        start = wake + rng.uniform(60, 120)
        if free(start, start + 45):
            a.add(start, 45, 350)
    if weekday == (p.shopping_weekday + 3) % 7:
        start = rng.uniform(600, 660)
        if free(start, start + 12):
            a.add(start, 12, 900)  # vacuum cleaner
    _paint_sporadic(a, wake, bed, free, nap, rng)
    for _ in range(rng.poisson(1.2)):
        # Night trips to the toilet: a light and the heated seat for a few minutes.
        a.add(rng.uniform(60, max(wake - 20, 61)), 5, 45)


def _paint_tv_wishes(
    p: Persona,
    a: HouseArrays,
    wake: float,
    bed: float,
    nap: tuple[float, float] | None,
    rng: np.random.Generator,
) -> None:
    if rng.random() < p.morning_tv_prob:
        a.put("tv_want", wake + rng.uniform(5, 30), rng.uniform(480, 570))
    if rng.random() < p.noon_tv_prob:
        a.put("tv_want", rng.uniform(710, 720), rng.uniform(745, 780))
    if rng.random() < p.afternoon_tv_prob:
        s = rng.uniform(840, 960)
        a.put("tv_want", s, s + rng.uniform(30, 120))
    if rng.random() < p.evening_tv_prob:
        s = rng.uniform(1050, 1140)
        if rng.random() < p.doze_tv_prob:
            # Fell asleep in front of the TV: it runs until auto-off, or until a night waking.
            end = bed + rng.uniform(60, 360)
            a.put("tv_want", s, end)
            a.put("tv_doze", bed, end)
        else:
            a.put("tv_want", s, bed - rng.uniform(0, 20))
    if nap is not None:
        if rng.random() < 0.5:
            a.put("tv_doze", *nap)  # dozing with the TV on
        else:
            a.put("tv_want", *nap, value=False)


def _paint_meals(
    p: Persona,
    a: HouseArrays,
    wake: float,
    bed: float,
    outs: list[tuple[float, float]],
    free: Callable[[float, float], bool],
    rng: np.random.Generator,
) -> None:
    boil = wake + rng.uniform(3, 10)
    if p.has_pot:
        a.add(boil, 12, 900)  # electric hot-water pot: boil, then keep warm all day
        a.add(boil + 12, bed - boil - 12, 35)
    else:
        a.add(boil, 3.5, 1250)
    breakfast = wake + rng.uniform(20, 50)
    if p.has_rice_cooker and rng.random() < 0.5:
        _cook_rice(a, wake + 5, rng)
    if rng.random() < 0.5:
        a.add(breakfast, rng.uniform(2, 4), 1150)  # microwave
    if p.has_ih_hob:
        a.add(breakfast, rng.uniform(4, 8), 1300)  # miso soup
    lunch = rng.uniform(705, 750)
    if free(lunch, lunch + 30):
        if rng.random() < 0.6:
            a.add(lunch, rng.uniform(2, 5), 1150)
        if p.has_ih_hob and rng.random() < 0.4:
            a.add(lunch, 10, 1300)
    tea = rng.uniform(885, 930)
    if not p.has_pot and free(tea, tea + 5) and rng.random() < 0.5:
        a.add(tea, 3.5, 1250)
    dinner = rng.uniform(1035, 1125)
    if not free(dinner - 50, dinner + 30):
        dinner = max(e for _, e in outs) + 60
    if p.has_rice_cooker and rng.random() < 0.6:
        _cook_rice(a, dinner - 50, rng)
    if p.has_ih_hob:
        a.add(dinner, rng.uniform(10, 25), 1300)
    if rng.random() < 0.6:
        a.add(dinner + rng.uniform(0, 10), rng.uniform(2, 5), 1150)


def _paint_sporadic(
    a: HouseArrays,
    wake: float,
    bed: float,
    free: Callable[[float, float], bool],
    nap: tuple[float, float] | None,
    rng: np.random.Generator,
) -> None:
    """Radio, sewing machine, hair dryer, phone charger…: short loads at random awake times."""
    for _ in range(rng.poisson(0.4 * (bed - wake) / 60)):
        start = rng.uniform(wake + 30, bed - 30)
        minutes = rng.uniform(5, 30)
        napping = nap is not None and nap[0] - minutes <= start < nap[1]
        if free(start, start + minutes) and not napping:
            a.add(start, minutes, rng.uniform(50, 400))
