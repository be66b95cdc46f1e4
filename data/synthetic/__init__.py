"""Synthetic older residents living alone in a Japanese town: meter readings, TV logs, roster.

Seeded simulator (numpy ``Generator``s keyed by seed, stream and household) of single older
residents in local time (Asia/Tokyo by default), in winter. Each resident has a persona (wake
05:30–07:30 and bedtime 21:00–23:30 with day-to-day jitter, appliances, heating kind, TV
habits, a shopping day, perhaps one or two day-centre days with the home empty 09:00–15:00,
occasional naps and outings). Days are simulated minute by minute and reported as:

- 30-minute smart-meter readings ``household_id, timestamp, kwh``: ``timestamp`` is the aware
  local END of the interval. Standby plus fridge is 0.03–0.08 kWh per 30 min with the
  compressor's cycling as noise; mornings show the hot-water pot or kettle, rice cooker,
  microwave or IH hob; evenings lighting, TV and heating (kotatsu, air-con, electric carpet or
  the fan of a kerosene heater), with day-to-day weather shared by the town.
- TV set-top-box events ``household_id, timestamp, event, channel`` with ``event`` one of
  ``power_on``, ``power_off``, ``channel``, ``key``.
- A roster of fictional households and contacts (``roster``), and incidents injected at an
  onset (``incidents``).

What the TV simulator can and cannot show
-----------------------------------------
No public per-household TV log exists, so the TV events are synthetic and encode our own
assumptions. They CAN show: sessions that follow the resident's day (morning news, lunchtime,
evening viewing until bedtime), operations only while the resident is awake and at home, a set
left on while dozing (no operations, auto-off 4 h after the last operation on sets that have
it), the set off while out or at the day centre, and the ``tv_left_on`` incident. They CANNOT
show: real viewing statistics or channel popularity, households with several sets or
visitors, recorder playback, the set-top box's own standby behaviour, lost or duplicated log
lines, or clock skew of real boxes. Detector results on them measure consistency with these
assumptions, not field performance.

Limits of the readings: one resident, no visitors, winter only, no holidays, no power cuts.
On days where the clock changes (zones with daylight saving) plans are off by the shift for the
rest of that day.

Examples
--------
>>> readings, tv, households, contacts = simulate_households(1, "2025-01-06", 2, seed=7)
>>> sorted(tv["event"].unique()) == ["channel", "key", "power_off", "power_on"]
True
"""

from data.synthetic.files import write_csv
from data.synthetic.incidents import Variant, inject_incident, standby_pool
from data.synthetic.personas import Persona, draw_personas
from data.synthetic.simulate import simulate_household, simulate_households

__all__ = [
    "Persona",
    "Variant",
    "draw_personas",
    "inject_incident",
    "simulate_household",
    "simulate_households",
    "standby_pool",
    "write_csv",
]
