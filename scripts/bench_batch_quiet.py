"""How many readings per second ``QuietStretchBatch`` scores, against ``QuietStretchDetector``.

Generates ``--households`` synthetic homes (seeded, vectorised): ``--history-days`` of history
learned first by the batch path (untimed, so stretches end and the histories fill), then
``--slots`` slots scored from that state (timed, best of ``--repeat``). A sample of ``--sample``
homes is replayed one ``Interval`` at a time through ``QuietStretchDetector`` (history untimed,
the scored slots timed) and checked against the batch scores (within 1e-9).

Example::

    python scripts/bench_batch_quiet.py --households 100000 --slots 48
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from detectors.base import Interval
from detectors.batch_quiet import QuietStretchBatch
from detectors.inactivity import QuietStretchDetector

log = logging.getLogger("bench_batch_quiet")
START = datetime(2025, 1, 5, 15, tzinfo=UTC)  # midnight in Tokyo, the detector's default zone


def synthetic(households: int, slots: int, seed: int) -> tuple[np.ndarray, ...]:
    """kwh (NaN for about 1% missing), TV operations and TV on-minutes, local time from
    midnight: standby with fridge noise, use by day with outings, TV in the evening; a tenth
    of the homes collapse for their last 20 hours, half of those with a lamp left on."""
    rng = np.random.default_rng(seed)
    hour = (np.arange(slots) % 48) / 2
    day = np.arange(slots) // 48
    wake = 6.5 + rng.normal(0, 0.35, (households, slots // 48 + 1))[:, day]
    bed = 22.5 + rng.normal(0, 0.4, (households, slots // 48 + 1))[:, day]
    leave = rng.uniform(9.5, 14.0, (households, slots // 48 + 1))
    back = leave + rng.uniform(1.5, 4.5, leave.shape)
    out = (rng.random(leave.shape) < 0.3)[:, day] & (leave[:, day] <= hour) & (hour < back[:, day])
    standby = rng.uniform(0.04, 0.07, (households, 1))
    kwh = standby + rng.normal(0, 0.004, (households, slots))
    kwh += np.where(rng.random((households, slots)) < 0.25, 0.01, 0.0)
    awake = (hour >= wake) & (hour < bed) & ~out
    active = awake & (rng.random((households, slots)) < 0.45)
    kwh += np.where(active, rng.uniform(0.03, 0.4, (households, slots)), 0.0)
    evening = awake & (hour >= 19)
    tv_on = np.where(evening, 30.0, 0.0)
    kwh += np.where(evening, 0.05, 0.0)
    ops = np.where(evening, rng.poisson(0.6, (households, slots)), 0)
    quiet = rng.random(households) < 0.1
    lamp = np.where(rng.random(int(quiet.sum())) < 0.5, 0.05, 0.0)[:, None]
    kwh[quiet, -40:] = standby[quiet] + lamp + rng.normal(0, 0.004, (int(quiet.sum()), 40))
    ops[quiet, -40:] = 0
    tv_on[quiet, -40:] = 0.0
    kwh = np.round(np.maximum(kwh, 0.0), 3)
    kwh[rng.random((households, slots)) < 0.01] = np.nan
    return kwh, ops, tv_on, quiet


def intervals(kwh, ops, on, first: int) -> list[Interval]:
    return [
        Interval(
            START + timedelta(minutes=30 * (first + t + 1)),
            None if np.isnan(k) else float(k),
            tv_operations=int(o),
            tv_on_minutes=float(m),
        )
        for t, (k, o, m) in enumerate(zip(kwh, ops, on, strict=True))
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--slots", type=int, default=48)
    parser.add_argument("--history-days", type=int, default=14)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    history = args.history_days * 48
    kwh, ops, on, collapsed = synthetic(args.households, history + args.slots, args.seed)
    model = QuietStretchBatch(workers=args.workers)
    started = time.perf_counter()
    state = None
    if history:
        past = slice(0, history)
        first = START + timedelta(minutes=30)
        _, state = model.run(kwh[:, past], ops[:, past], on[:, past], first_end=first)
    log.info("history: %d slots learned in %.1f s (batch)", history, time.perf_counter() - started)
    if state is not None:
        filled = np.minimum(state.next_slot, state.steps.shape[2]).sum(axis=1)
        log.info("stretches remembered per home: median %d", int(np.median(filled)))

    first_end = START + timedelta(minutes=30 * (history + 1))
    day = slice(history, None)
    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        scores, _ = model.run(kwh[:, day], ops[:, day], on[:, day], state, first_end=first_end)
        timings.append(time.perf_counter() - started)
    seconds = min(timings)
    readings = args.households * args.slots
    log.info("batch runs (s): %s", ", ".join(f"{t:.2f}" for t in timings))
    log.info(
        "batch: %d households x %d slots = %d readings in %.2f s: %.0f readings/s (load %s)",
        args.households,
        args.slots,
        readings,
        seconds,
        readings / seconds,
        " ".join(f"{x:.2f}" for x in os.getloadavg()),
    )

    sample = min(args.sample, args.households)
    detectors, days = [], []
    for h in range(sample):
        detector = QuietStretchDetector()
        for x in intervals(kwh[h, :history], ops[h, :history], on[h, :history], 0):
            detector.score_one(x)
            detector.learn_one(x)
        detectors.append(detector)
        days.append(intervals(kwh[h, day], ops[h, day], on[h, day], history))
    expected = np.zeros((sample, args.slots))
    started = time.perf_counter()
    for h, (detector, todays) in enumerate(zip(detectors, days, strict=True)):
        for t, x in enumerate(todays):
            expected[h, t] = detector.score_one(x)
            detector.learn_one(x)
    one_seconds = time.perf_counter() - started
    log.info(
        "one at a time: %d households x %d slots in %.3f s: %.0f readings/s",
        sample,
        args.slots,
        one_seconds,
        sample * args.slots / one_seconds,
    )
    worst = float(np.abs(scores[:sample] - expected).max()) if sample else 0.0
    log.info("largest difference from score_one on the sample: %.2e", worst)
    log.info(
        "alerts (score >= 3.5) at the last slot: %d of %d; collapsed homes: %d",
        int((scores[:, -1] >= model.alert_threshold).sum()),
        len(scores),
        int(collapsed.sum()),
    )
    if worst > 1e-9:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
