"""From a home's minute-by-minute state to what the smart meter reports every 30 minutes.

Power is summed in watts per minute: standby (router, heated toilet seat, set-top box), the
fridge compressor cycling on its thermostat, lights after dark, heating of the persona's kind,
the TV, and the appliances already placed by ``schedule``. The meter reports the energy of each
30-minute interval in kWh.
"""

from __future__ import annotations

import numpy as np

from data.synthetic.personas import Persona
from data.synthetic.schedule import HouseArrays, Timeline, daylight

#: Small always-on draw of an occupied, awake home (phone charger, radio, clocks being looked at).
AWAKE_BASE_W = 20.0
DAYTIME_LIGHT_W = 15.0


def _cycle(minutes: int, period: float, duty: float, rng: np.random.Generator) -> np.ndarray:
    """A thermostat's on/off square wave whose period wanders a little, like a real one."""
    phase = np.cumsum((1 + 0.1 * rng.standard_normal(minutes)) / period) + rng.random()
    return (phase % 1.0) < duty


def _rising_edges(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask & ~np.concatenate([[False], mask[:-1]]))


def heating_w(
    p: Persona, on: np.ndarray, factor: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Heating power per minute while ``on``; ``factor`` scales it with the day's cold."""
    minutes = len(on)
    mean = p.heating_w * factor
    if p.heating in ("kotatsu", "carpet"):
        # Thermostat of a heater under a futon: full power about half the time.
        cycling = _cycle(minutes, rng.uniform(10, 16), 0.5, rng)
        return on * mean * np.where(cycling, 1.7, 0.3)
    power = on * mean * (1 + 0.1 * rng.standard_normal(minutes)).clip(0.7, 1.3)
    starts = _rising_edges(on)
    if p.heating == "aircon":
        # The first half hour warms a cold room at more than twice the running power.
        warmup, extra = 30, 1.2 * p.heating_w
    else:
        # A kerosene fan heater draws electricity mainly for its igniter.
        warmup, extra = 4, 650.0
    for start in starts:
        stop = min(start + warmup, minutes)
        power[start:stop] += extra * on[start:stop]
    return power


def minute_power_w(
    p: Persona,
    timeline: Timeline,
    a: HouseArrays,
    tv_on: np.ndarray,
    cold_factor: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Whole-home power in watts for every simulated minute."""
    minutes = timeline.minutes
    fridge = p.fridge_w * _cycle(minutes, p.fridge_period_min, p.fridge_duty, rng)
    standby = p.standby_w + 2.0 * rng.standard_normal(minutes)
    sun = np.array([daylight(d) for d in timeline.dates])
    sunrise, sunset = sun[timeline.day_of_minute, 0], sun[timeline.day_of_minute, 1]
    # Lights go on a little before sunset indoors, and stay on until well after sunrise.
    dark = (timeline.minute_of_day < sunrise + 20) | (timeline.minute_of_day > sunset - 30)
    up = a.home & a.awake
    lights = up * np.where(dark, p.lights_w, DAYTIME_LIGHT_W) + up * AWAKE_BASE_W
    heat = heating_w(p, a.heat & a.home & (a.awake | a.nap), cold_factor, rng)
    return standby + fridge + lights + heat + p.tv_w * tv_on + a.load_w


def half_hour_kwh(power_w: np.ndarray) -> np.ndarray:
    """Energy of each 30-minute interval, kWh, from per-minute watts; 3 decimals like a meter.

    >>> half_hour_kwh(np.full(60, 120.0)).tolist()
    [0.06, 0.06]
    """
    return np.round(power_w.reshape(-1, 30).sum(axis=1) / 60 / 1000, 3)
