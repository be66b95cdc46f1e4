"""Who the simulated residents are: one frozen set of habits and appliances per household.

Every random stream is keyed by ``(seed, stream, household number)`` through numpy's
``SeedSequence``, so household 7 is the same person whether 10 or 500 households are simulated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Independent random streams; the numbers are part of the output's identity, never renumber.
STREAM_PERSONA = 0
STREAM_DAYS = 1
STREAM_ROSTER = 2
STREAM_WEATHER = 3

HEATING_KINDS = ("kotatsu", "aircon", "kerosene", "carpet")
#: Mean electric draw while heating, W. A kerosene fan heater burns oil; only its fan is electric.
HEATING_W = {
    "kotatsu": (300, 500),
    "aircon": (350, 650),
    "kerosene": (15, 30),
    "carpet": (250, 400),
}
#: Terrestrial channels of the Kanto area, as a cable set-top box would name them.
CHANNELS = ("NHK-G", "NHK-E", "NTV", "EX", "TBS", "TX", "CX", "BS-NHK")


def stream_rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    """A generator for one purpose and one household, independent of all the others."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


def household_id(index: int) -> str:
    """``H001`` for the first household (index 0)."""
    return f"H{index + 1:03d}"


@dataclass(frozen=True)
class Persona:
    """Habits and appliances of one resident. Times are local minutes after midnight."""

    household_id: str
    wake_min: float
    wake_sd: float
    bed_min: float
    bed_sd: float
    standby_w: float
    fridge_w: float
    fridge_duty: float
    fridge_period_min: float
    heating: str
    heating_w: float
    lights_w: float
    tv_w: float
    tv_auto_off: bool
    has_pot: bool
    has_rice_cooker: bool
    has_ih_hob: bool
    electric_blanket: bool
    shopping_weekday: int
    day_centre_weekdays: tuple[int, ...]
    laundry_weekdays: tuple[int, ...]
    nap_prob: float
    outing_prob: float
    morning_tv_prob: float
    noon_tv_prob: float
    afternoon_tv_prob: float
    evening_tv_prob: float
    doze_tv_prob: float
    channel_rate_per_h: float
    key_rate_per_h: float
    channels: tuple[str, ...]

    @property
    def standby_kwh(self) -> float:
        """Expected kWh per 30 min with nobody using anything (standby plus the fridge)."""
        return (self.standby_w + self.fridge_w * self.fridge_duty) * 0.5 / 1000


def draw_persona(seed: int, index: int) -> Persona:
    """Draw the resident of household ``index`` (0-based) for ``seed``."""
    rng = stream_rng(seed, STREAM_PERSONA, index)
    day_centre: tuple[int, ...] = ()
    if rng.random() < 0.5:
        # Day service is booked on weekdays, once or twice a week.
        day_centre = tuple(sorted(rng.choice(5, size=rng.integers(1, 3), replace=False).tolist()))
    shopping = int(rng.choice([d for d in range(6) if d not in day_centre]))
    heating = str(rng.choice(HEATING_KINDS, p=[0.35, 0.3, 0.2, 0.15]))
    laundry = rng.choice(7, size=rng.integers(2, 4), replace=False)
    favourites = rng.permutation(len(CHANNELS))[: rng.integers(3, 6)]
    return Persona(
        household_id=household_id(index),
        wake_min=rng.uniform(5.5 * 60, 7.5 * 60),
        wake_sd=rng.uniform(8, 25),
        bed_min=rng.uniform(21 * 60, 23.5 * 60),
        bed_sd=rng.uniform(10, 30),
        standby_w=rng.uniform(35, 80),
        fridge_w=rng.uniform(70, 120),
        fridge_duty=rng.uniform(0.35, 0.55),
        fridge_period_min=rng.uniform(35, 60),
        heating=heating,
        heating_w=rng.uniform(*HEATING_W[heating]),
        lights_w=rng.uniform(40, 110),
        tv_w=rng.uniform(70, 140),
        tv_auto_off=bool(rng.random() < 0.6),
        has_pot=bool(rng.random() < 0.6),
        has_rice_cooker=bool(rng.random() < 0.8),
        has_ih_hob=bool(rng.random() < 0.4),
        electric_blanket=bool(rng.random() < 0.4),
        shopping_weekday=shopping,
        day_centre_weekdays=day_centre,
        laundry_weekdays=tuple(sorted(laundry.tolist())),
        nap_prob=rng.uniform(0.1, 0.5),
        outing_prob=rng.uniform(0.1, 0.35),
        morning_tv_prob=rng.uniform(0.5, 0.95),
        noon_tv_prob=rng.uniform(0.2, 0.7),
        afternoon_tv_prob=rng.uniform(0.1, 0.4),
        evening_tv_prob=rng.uniform(0.8, 0.98),
        doze_tv_prob=rng.uniform(0.0, 0.05),
        channel_rate_per_h=rng.uniform(0.3, 1.5),
        key_rate_per_h=rng.uniform(0.3, 1.2),
        channels=tuple(CHANNELS[i] for i in favourites),
    )


def draw_personas(n: int, seed: int) -> list[Persona]:
    """The residents of households ``H001`` … for ``seed``.

    >>> [p.household_id for p in draw_personas(2, seed=1)]
    ['H001', 'H002']
    """
    return [draw_persona(seed, index) for index in range(n)]
