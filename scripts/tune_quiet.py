"""Sweep ``QuietStretchDetector``'s parameters on a labelled copy, fast, through the batch path.

A full replay (``areawatch backtest --detector quiet``) takes minutes. With lag 0 and no
feedback, the replay's score at each tick is the detector's score of the one slot that ends
then, and ``QuietStretchBatch`` gives those scores (score, then learn, slot for slot) for every
home at once. So this script builds each home's slots as the backtest does
(``watch.backtest.run.build_all_slots``), places the homes of one zone on a common UTC slot
grid (NaN readings before a home's first and after its last slot: a slot with no reading and no
TV event changes nothing in the detector, and nothing is learned from the future), scores them
in one batch, and measures the scores with the backtest's own curve
(``watch.backtest.curve``): the same warm-up, spans, labels and false-alert episodes.

For each parameter set it reports, at each false-alert budget (episodes per household-month),
the curve's best point (``operating_point``): threshold, recall within 6/12/24 h, median and p90
delay, false rate. The curve re-thresholds the scores of a detector that learned with its own
``alert_threshold`` (it does not learn stretches it flagged). ``--exact-threshold`` removes that
approximation: it re-runs the batch with ``alert_threshold`` set to the point's threshold, reads
the point at that threshold, and moves the threshold (a few runs) until it is the best one
within the budget.

    python scripts/inject_incidents.py --out /tmp/london_s2 --seed 2
    python scripts/tune_quiet.py /tmp/london_s2 \\
        --params '[{}, {"prior_weight": 2.0}, {"other_day_weight": 0.25}]' --exact-threshold

Limits: lag 0 and no feedback only (answers depend on which alerts fired, so they are not
batched); one ``timezone`` per batch (homes are grouped by zone).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from detectors.batch_quiet import QuietStretchBatch
from detectors.inactivity import QuietStretchDetector
from watch.backtest.curve import ScoreTrace, default_thresholds, operating_point, threshold_curve
from watch.backtest.grid import SLOT_NS, HouseholdSlots
from watch.backtest.inputs import load_labels, load_readings, load_timezones, load_tv
from watch.backtest.metrics import Label, Span
from watch.backtest.run import build_all_slots

log = logging.getLogger("tune_quiet")
WARMUP = timedelta(days=28)  # the backtest's default --warmup
BUDGETS = (0.6, 0.3)  # false-alert episodes per household-month: the target and the stretch
#: Thresholds the curve is read at, besides the backtest's own grid: fine enough to place the
#: operating points to within 0.05.
FINE_THRESHOLDS = np.round(np.arange(1.0, 12.0 + 1e-9, 0.05), 4)
_EXACT_RUNS = 4  # at most this many re-runs per budget in --exact-threshold
#: The loaded copy and its grids, set before worker processes fork so they need no pickling.
_SHARED: dict = {}


@dataclass(frozen=True)
class Copy:
    """A labelled copy: each home's slots (as the backtest builds them), labels and spans."""

    slots: list[HouseholdSlots]
    labels: list[Label]
    spans: list[Span]


@dataclass(frozen=True)
class ZoneGrid:
    """The homes of one zone on one UTC slot grid (NaN readings where a home has no slot)."""

    timezone: str
    rows: np.ndarray  # index of each row's home in ``Copy.slots``
    offsets: np.ndarray  # grid column of each home's first slot
    first_end: datetime
    kwh: np.ndarray
    tv_operations: np.ndarray
    tv_on_minutes: np.ndarray


def spans_of_slots(slots: Sequence[HouseholdSlots]) -> list[Span]:
    """Each home's replayed span at lag 0 (``watch.backtest.report.spans_of``): its first and
    last tick, which are its first and last slot ends."""
    return [
        Span(s.household_id, _utc(s.ends[0]), _utc(s.ends[-1]), s.timezone) for s in slots if len(s)
    ]


def load_copy(folder: Path, default_timezone: str = "Asia/Tokyo") -> Copy:
    """``readings.csv``, ``tv.csv``, ``households.csv`` and ``labels.csv`` of ``folder``, read
    by the backtest's loaders."""
    tv_path = folder / "tv.csv"
    slots = build_all_slots(
        load_readings(folder / "readings.csv"),
        load_tv(tv_path) if tv_path.exists() else None,
        load_timezones(folder / "households.csv"),
        default_timezone,
    )
    return Copy(slots, load_labels(folder / "labels.csv"), spans_of_slots(slots))


def zone_grids(slots: Sequence[HouseholdSlots]) -> list[ZoneGrid]:
    """One grid per zone, from the zone's earliest to its latest slot."""
    grids = []
    for zone in sorted({s.timezone for s in slots}):
        rows = np.array([i for i, s in enumerate(slots) if s.timezone == zone])
        first = min(int(slots[i].ends[0]) for i in rows)
        last = max(int(slots[i].ends[-1]) for i in rows)
        width = (last - first) // SLOT_NS + 1
        kwh = np.full((len(rows), width), np.nan)
        ops = np.zeros((len(rows), width), dtype=np.int64)
        on = np.zeros((len(rows), width))
        offsets = np.array([(int(slots[i].ends[0]) - first) // SLOT_NS for i in rows])
        for row, (i, at) in enumerate(zip(rows, offsets, strict=True)):
            home = slots[i]
            # len(home) is len(ends): the slots the replay delivers (``kwh`` can hold one more
            # where ``household_slots``' np.arange lost the last end to float rounding).
            kwh[row, at : at + len(home)] = home.kwh[: len(home)]
            ops[row, at : at + len(home)] = home.tv_operations
            on[row, at : at + len(home)] = home.tv_on_minutes
        grids.append(ZoneGrid(zone, rows, offsets, _utc(first), kwh, ops, on))
    return grids


def batch_traces(
    slots: Sequence[HouseholdSlots], grids: Sequence[ZoneGrid], params: dict, workers: int = 2
) -> list[ScoreTrace]:
    """The replay's score traces at lag 0 without feedback, from the batch path: one per home,
    in the order of ``slots``, ticks at the home's own slot ends only."""
    traces: list[ScoreTrace | None] = [None] * len(slots)
    for grid in grids:
        model = QuietStretchBatch(timezone=grid.timezone, workers=workers, **params)
        scores, _ = model.run(
            grid.kwh, grid.tv_operations, grid.tv_on_minutes, first_end=grid.first_end
        )
        for row, (i, at) in enumerate(zip(grid.rows, grid.offsets, strict=True)):
            home = slots[i]
            # The replay keeps float32 scores; the curve compares those with its thresholds.
            own = scores[row, at : at + len(home)].astype(np.float32)
            traces[i] = ScoreTrace(home.household_id, home.ends, own)
    return [t for t in traces if t is not None]


def padding_mismatch(
    copy: Copy, grids: Sequence[ZoneGrid], params: dict, homes: int, workers: int = 2
) -> float:
    """The largest difference between the scores of the ``homes`` latest-starting homes on the
    common grid and on their own span alone (0.0: the padding changes nothing)."""
    traces = batch_traces(copy.slots, grids, params, workers)
    latest = sorted(range(len(copy.slots)), key=lambda i: -int(copy.slots[i].ends[0]))[:homes]
    worst = 0.0
    for i in latest:
        alone = batch_traces([copy.slots[i]], zone_grids([copy.slots[i]]), params, workers)[0]
        worst = max(worst, float(np.max(np.abs(alone.scores - traces[i].scores), initial=0.0)))
    return worst


def curve_of(copy: Copy, traces: Sequence[ScoreTrace], *extra: float) -> list[dict]:
    """The backtest's re-thresholded curve at its own grid, the fine grid and ``extra``."""
    probe = QuietStretchDetector()
    grid = default_thresholds(traces, probe.watch_threshold, probe.alert_threshold)
    thresholds = np.unique(np.r_[grid, FINE_THRESHOLDS, np.round(extra, 4)])
    return threshold_curve(traces, copy.labels, copy.spans, thresholds, warmup=WARMUP)


def point_at(curve: Sequence[dict], threshold: float) -> dict:
    """The curve's point at ``threshold`` (which must be on its grid)."""
    return min(curve, key=lambda p: abs(p["threshold"] - threshold))


def exact_point(
    copy: Copy,
    grids: Sequence[ZoneGrid],
    params: dict,
    budget: float,
    start: float,
    workers: int = 2,
) -> dict | None:
    """The best point within ``budget`` of detectors run with ``alert_threshold`` at the point's
    threshold itself (so what they protect from learning is what they alert on).

    Starts at ``start`` (the re-thresholded curve's point), then moves to the point the last
    run's own curve suggests, until a threshold repeats or ``_EXACT_RUNS`` runs are done.
    """
    best, tried, threshold = None, set(), round(start, 2)
    for _ in range(_EXACT_RUNS):
        tried.add(threshold)
        traces = batch_traces(copy.slots, grids, {**params, "alert_threshold": threshold}, workers)
        curve = curve_of(copy, traces, threshold)
        own = {**point_at(curve, threshold), "how": "exact"}
        log.info("  exact θ %.2f: %s", threshold, _brief(own))
        if own["false_episodes_per_household_month"] <= budget and (
            best is None or _rank(own) > _rank(best)
        ):
            best = own
        suggested = operating_point(curve, budget)
        if suggested is None:
            break
        threshold = round(suggested["threshold"], 2)
        if threshold in tried:
            break
    return best


def measure(
    copy: Copy,
    grids: Sequence[ZoneGrid],
    params: dict,
    budgets: Sequence[float] = BUDGETS,
    exact: bool = False,
    workers: int = 2,
) -> dict:
    """The operating point at each budget of one parameter set (curve, and exact if asked)."""
    started = time.perf_counter()
    curve = curve_of(copy, batch_traces(copy.slots, grids, params, workers))
    result: dict = {"params": params, "points": {}, "curve": curve}
    for budget in budgets:
        point = operating_point(curve, budget)
        if point is not None:
            point = {**point, "how": "curve"}
        if exact and point is not None:
            point = exact_point(copy, grids, params, budget, point["threshold"], workers) or point
        result["points"][budget] = point
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _measure_shared(params: dict, budgets: Sequence[float], exact: bool) -> dict:
    return measure(_SHARED["copy"], _SHARED["grids"], params, budgets, exact, workers=1)


def measure_all(
    copy: Copy,
    grids: Sequence[ZoneGrid],
    configs: Sequence[dict],
    budgets: Sequence[float] = BUDGETS,
    exact: bool = False,
    jobs: int = 1,
    workers: int = 2,
) -> Iterator[dict]:
    """``measure`` of each parameter set, in order; ``jobs`` processes share the sets (a batch
    of a few hundred homes is one chunk for ``QuietStretchBatch``, so its threads do not help)."""
    if jobs <= 1:
        for params in configs:
            yield measure(copy, grids, params, budgets, exact, workers)
        return
    _SHARED.update(copy=copy, grids=grids)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_measure_shared, p, budgets, exact) for p in configs]
        for future in futures:
            yield future.result()


def _rank(point: dict) -> tuple[float, float]:
    return (point["recall_24h"] or 0.0, -(point["median_delay_hours"] or 1e9))


def _brief(point: dict) -> str:
    return (
        f"@24h {point['recall_24h']:.3f} median {_hours(point['median_delay_hours'])}"
        f" false {point['false_episodes_per_household_month']:.3f}"
    )


def _hours(value: float | None) -> str:
    return ">48h" if value is None else f"{value:.1f}"


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(int(ns) / 1e9, tz=UTC)


def table_header(budgets: Sequence[float]) -> str:
    cells = ["params"]
    for budget in budgets:
        cells += [f"≤{budget:g}: θ", "how", "@6h", "@12h", "@24h", "median h", "p90 h", "false"]
    return "| " + " | ".join(cells) + " |\n|" + " --- |" * len(cells)


def table_row(result: dict, budgets: Sequence[float]) -> str:
    params = ", ".join(f"`{k}={v}`" for k, v in result["params"].items()) or "defaults"
    cells = [params]
    for budget in budgets:
        p = result["points"].get(budget)
        if p is None:
            cells += ["–"] * 8
            continue
        cells += [
            f"{p['threshold']:.2f}",
            p["how"],
            f"{p['recall_6h']:.2f}",
            f"{p['recall_12h']:.2f}",
            f"{p['recall_24h']:.2f}",
            _hours(p["median_delay_hours"]),
            _hours(p["p90_delay_hours"]),
            f"{p['false_episodes_per_household_month']:.2f}",
        ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a copy written by scripts/inject_incidents.py")
    parser.add_argument(
        "--params",
        default="[{}]",
        help="a JSON list of parameter dicts for QuietStretchDetector ({} is the defaults), "
        "or @file holding one",
    )
    parser.add_argument(
        "--budgets",
        default=",".join(f"{b:g}" for b in BUDGETS),
        help="false-alert episodes per household-month, comma-separated",
    )
    parser.add_argument(
        "--exact-threshold",
        action="store_true",
        help="re-run each reported point with alert_threshold at its threshold",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="QuietStretchBatch threads (help above 4,096 homes)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes, one parameter set each")
    parser.add_argument("--timezone", default="Asia/Tokyo", help="zone of homes not in the roster")
    parser.add_argument("--json-out", type=Path, help="write every result, curves included")
    parser.add_argument(
        "--check-padding",
        type=int,
        default=0,
        metavar="N",
        help="first score the N latest-starting homes alone and compare (defaults only)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    text = args.params
    configs = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        parser.error("--params must be a JSON list of objects")
    budgets = [float(b) for b in args.budgets.split(",")]

    started = time.perf_counter()
    copy = load_copy(args.folder, args.timezone)
    grids = zone_grids(copy.slots)
    log.info(
        "%d homes, %d labels, loaded in %.0f s",
        len(copy.slots),
        len(copy.labels),
        time.perf_counter() - started,
    )
    if args.check_padding:
        worst = padding_mismatch(copy, grids, {}, args.check_padding, args.workers)
        log.info(
            "padding check, %d homes: largest score difference %.3g", args.check_padding, worst
        )
    print(table_header(budgets), flush=True)
    results = []
    runs = measure_all(copy, grids, configs, budgets, args.exact_threshold, args.jobs, args.workers)
    for params, result in zip(configs, runs, strict=True):
        results.append(result)
        log.info("%s in %.0f s", params, result["seconds"])
        print(table_row(result, budgets), flush=True)
        if args.json_out:
            args.json_out.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
