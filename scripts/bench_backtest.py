"""How fast the backtest replays: load, slots, replay per detector, and the harness's own share.

Runs the replay (no metrics) over the first ``--households`` households of a readings file with
each named detector, and once with a detector that does nothing, so the cost of the harness
(slots, intervals, clock, alert bookkeeping, the data-outage watch) is separated from the
detector's own. Prints microseconds per slot and the extrapolation to the whole file.

Example::

    python scripts/bench_backtest.py --readings /tmp/london_s1/readings.csv \
        --roster /tmp/london_s1/households.csv --households 20 --workers 2
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import timedelta
from pathlib import Path

from detectors.base import Detector, Interval
from watch.backtest.inputs import load_readings, load_timezones
from watch.backtest.run import DETECTORS, build_all_slots, replay_all

log = logging.getLogger("bench_backtest")


class NullDetector(Detector):
    """Scores nothing: what remains is the harness."""

    def learn_one(self, x: Interval) -> None:
        return None

    def score_one(self, x: Interval) -> float:
        return 0.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=Path, required=True)
    parser.add_argument("--roster", type=Path, default=None)
    parser.add_argument("--timezone", default="Europe/London")
    parser.add_argument("--households", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--detectors", default="quiet,rule12,hst")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    started = time.perf_counter()
    readings = load_readings(args.readings)
    zones = load_timezones(args.roster) if args.roster else {}
    loaded = time.perf_counter() - started
    mark = time.perf_counter()
    every = build_all_slots(readings, None, zones, args.timezone)
    built = time.perf_counter() - mark
    total_slots = sum(len(s) for s in every)
    log.info(
        "load %.1f s, slots %.1f s: %d households, %d slots", loaded, built, len(every), total_slots
    )
    chosen = every[: args.households]
    slots = sum(len(s) for s in chosen)

    DETECTORS.setdefault("null", lambda zone: NullDetector())
    for name in ["null", *args.detectors.split(",")]:
        mark = time.perf_counter()
        replay_all(chosen, [name], timedelta(0), workers=args.workers)
        seconds = time.perf_counter() - mark
        per_slot = seconds / slots * 1e6
        log.info(
            "%-7s %d households, %d slots, %d workers: %.1f s, %.1f us/slot wall;"
            " whole file ~%.0f s",
            name,
            len(chosen),
            slots,
            args.workers,
            seconds,
            per_slot,
            per_slot * total_slots / 1e6,
        )


if __name__ == "__main__":
    main()
