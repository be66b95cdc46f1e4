"""The backtest: replay readings and TV events on a simulated clock, measure against labels.

``areawatch backtest`` (``watch.backtest.command.backtest``) reads files, builds each
household's 30-minute slots (``grid``), replays them tick by tick with a delivery lag
(``stream``), in parallel over households (``run``), and scores the alerts against labelled
onsets (``metrics``) and over a sweep of thresholds (``curve``); ``report`` writes the results.
"""

from watch.backtest.command import backtest, parse_duration
from watch.backtest.grid import HouseholdSlots, household_slots
from watch.backtest.metrics import Label, Metrics, Span, evaluate
from watch.backtest.run import DETECTORS, build_all_slots, replay_all
from watch.backtest.stream import Alert, HouseholdRun, SimClock, replay_household

__all__ = [
    "DETECTORS",
    "Alert",
    "HouseholdRun",
    "HouseholdSlots",
    "Label",
    "Metrics",
    "SimClock",
    "Span",
    "backtest",
    "build_all_slots",
    "evaluate",
    "household_slots",
    "parse_duration",
    "replay_all",
    "replay_household",
]
