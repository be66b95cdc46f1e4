"""How many readings per second ``QuietStretchBatch`` scores, against ``QuietStretchDetector``.

Generates ``--households`` synthetic homes (seeded, vectorised, ``--chunk`` homes at a time so
a million fit in memory): ``--history-days`` of history learned first by the batch path
(untimed, so stretches end and the histories fill), then ``--slots`` slots scored from that state
(timed, best of ``--repeat``; readings/s is households x slots / seconds). The first call, which
compiles the batch path's loop or loads it from numba's cache, is timed on its own. A sample of
``--sample`` homes is replayed one ``Interval`` at a time through ``QuietStretchDetector``
(history untimed, the scored slots timed) and checked against the batch scores (within 1e-9).

Memory: the state is about 9 KB a home and a run writes a new one, so a million homes need
about 20 GB.

Example::

    python scripts/bench_batch_quiet.py --households 100000 --slots 48 --workers 2
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import numpy as np

from detectors.base import Interval
from detectors.batch_quiet import QuietStretchBatch, QuietStretchState
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


def put_rows(state: QuietStretchState, rows: slice, part: QuietStretchState) -> None:
    """Write ``part`` into ``rows`` of ``state``."""
    for name, value in vars(part.evidence).items():
        getattr(state.evidence, name)[rows] = value
    for f in fields(part)[1:]:
        getattr(state, f.name)[rows] = getattr(part, f.name)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--slots", type=int, default=48)
    parser.add_argument("--history-days", type=int, default=14)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=100_000, help="homes generated at a time")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    model = QuietStretchBatch(workers=args.workers)
    started = time.perf_counter()
    model.run(np.full((1, 1), 0.05), np.zeros((1, 1), dtype=int), first_end=START)
    log.info(
        "first call (compiles, or loads the compiled cache): %.2f s", time.perf_counter() - started
    )

    history = args.history_days * 48
    households, slots = args.households, args.slots
    state = QuietStretchState.fresh(households, model.history_per_bin) if history else None
    kwh_day, ops_day, on_day = (
        np.empty((households, slots)),
        np.empty((households, slots)),
        np.empty((households, slots)),
    )
    collapsed = np.empty(households, dtype=bool)
    started = time.perf_counter()
    for lo in range(0, households, args.chunk):
        rows = slice(lo, min(lo + args.chunk, households))
        kwh, ops, on, collapsed[rows] = synthetic(
            rows.stop - lo, history + slots, args.seed + lo // args.chunk
        )
        if history:
            past = slice(0, history)
            first = START + timedelta(minutes=30)
            _, part = model.run(kwh[:, past], ops[:, past], on[:, past], first_end=first)
            put_rows(state, rows, part)
            del part
        kwh_day[rows], ops_day[rows], on_day[rows] = (
            kwh[:, history:],
            ops[:, history:],
            on[:, history:],
        )
        if lo == 0:  # the sample replayed one at a time
            sample = min(args.sample, households)
            sample_arrays = kwh[:sample].copy(), ops[:sample].copy(), on[:sample].copy()
        del kwh, ops, on
    log.info("history: %d slots learned in %.1f s (batch)", history, time.perf_counter() - started)
    if state is not None:
        filled = np.minimum(state.next_slot, state.steps.shape[2]).sum(axis=1)
        log.info("stretches remembered per home: median %d", int(np.median(filled)))

    first_end = START + timedelta(minutes=30 * (history + 1))
    timings = []
    for _ in range(args.repeat):
        log.info("load before a run: %s", load())
        started = time.perf_counter()
        scores, after = model.run(kwh_day, ops_day, on_day, state, first_end=first_end)
        timings.append(time.perf_counter() - started)
        del after  # a million homes' state is 9 GB: not two of them at once
    seconds = min(timings)
    readings = households * slots
    log.info("batch runs (s): %s", ", ".join(f"{t:.2f}" for t in timings))
    log.info(
        "batch: %d households x %d slots = %d readings in %.2f s: %.0f readings/s, %d worker(s)"
        " (load %s)",
        households,
        slots,
        readings,
        seconds,
        readings / seconds,
        args.workers,
        load(),
    )

    kwh, ops, on = sample_arrays
    day = slice(history, None)
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
        slots,
        one_seconds,
        sample * args.slots / one_seconds,
    )
    worst = float(np.abs(scores[:sample] - expected).max()) if sample else 0.0
    log.info("largest difference from score_one on the sample: %.2e", worst)
    log.info(
        "alerts (score >= alert_threshold) at the last slot: %d of %d; collapsed homes: %d",
        int((scores[:, -1] >= model.alert_threshold).sum()),
        len(scores),
        int(collapsed.sum()),
    )
    if worst > 1e-9:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
