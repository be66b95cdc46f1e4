"""Write a labelled copy of the London readings with injected incidents, for the backtest.

Per household (flat-tariff ``Std`` homes of the LCL 2013 extract), one incident per calendar
month at a random minute, at least ``--min-gap-days`` apart and never in the first
``--history-days`` of the household's data (its history), each of a random variant ``quiet``,
``lamp_on`` or ``tv_left_on`` injected with ``data.synthetic.inject_incident`` (it resamples the
household's own standby) for ``--duration-hours``. Afterwards the home's real data resume, so the
next month's incident has a normal history before it. An onset is only used where at least 90 %
of the half-hours from a day before to the end of the incident have readings.

Homes with a run of exact zeros of 24 h or more (13 of them: meter faults or an empty property,
no ground truth) are left out unless ``--keep-zero-runs`` is given: they would count as false
alarms what may be real emptiness.

TV: the project's TV simulator is driven by a synthetic persona's minute-by-minute day (awake,
at home, wanting TV); 30-minute readings do not give those, so no viewing is simulated for
London. ``tv.csv`` holds only the events the ``tv_left_on`` incidents insert (the last power_on
and the set's auto-off); TV detection is measured on the synthetic sample instead.

Outputs in ``--out``: ``readings.csv`` (``household_id,timestamp,kwh``, timestamp = interval end
in UTC with offset; LCL stamps are taken as interval ends, the source does not say),
``tv.csv``, ``households.csv`` (``household_id,timezone,tariff,acorn``; Europe/London) and
``labels.csv`` (``household_id,onset,variant``).

Example::

    python scripts/inject_incidents.py --out /tmp/london_s1 --seed 1
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from data.synthetic import Variant, inject_incident

log = logging.getLogger("inject_incidents")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO / ".." / "shared" / "data" / "lcl_london_2013"
VARIANTS = (Variant.quiet, Variant.lamp_on, Variant.tv_left_on)
TIMEZONE = "Europe/London"
SLOT = pd.Timedelta(minutes=30)
MIN_COVERAGE = 0.9


def _empty_tv() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": pd.Series(dtype=object),
            "timestamp": pd.Series(dtype="datetime64[us, UTC]"),
            "event": pd.Series(dtype=object),
            "channel": pd.Series(dtype=object),
        }
    )


def _covered(times: pd.Series, start: pd.Timestamp, stop: pd.Timestamp) -> bool:
    expected = (stop - start) / SLOT
    present = int(((times > start) & (times <= stop)).sum())
    return present >= MIN_COVERAGE * expected


def choose_onsets(
    times: pd.Series,
    rng: np.random.Generator,
    *,
    history: pd.Timedelta,
    min_gap: pd.Timedelta,
    duration: pd.Timedelta,
) -> list[pd.Timestamp]:
    """At most one onset per calendar month, ``min_gap`` apart, after ``history``."""
    first, last = times.iloc[0], times.iloc[-1]
    earliest, latest = first + history, last - duration
    onsets: list[pd.Timestamp] = []
    month = earliest.tz_convert(None).to_period("M").to_timestamp().tz_localize("UTC")
    while month < latest:
        following = month + pd.offsets.MonthBegin(1)
        low = max(month, earliest, onsets[-1] + min_gap if onsets else earliest)
        high = min(following, latest)
        for _ in range(5):  # a few tries to land where the meter was reporting
            if high <= low:
                break
            seconds = rng.uniform(0, (high - low).total_seconds())
            onset = (low + pd.Timedelta(seconds=seconds)).floor("min")
            if _covered(times, onset - pd.Timedelta(days=1), onset + duration):
                onsets.append(onset)
                break
        month = following
    return onsets


def inject_household(
    own: pd.DataFrame,
    household_id: str,
    rng: np.random.Generator,
    *,
    history: pd.Timedelta,
    min_gap: pd.Timedelta,
    duration: pd.Timedelta,
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    readings, tv = own, _empty_tv()
    labels = []
    for onset in choose_onsets(
        own["timestamp"], rng, history=history, min_gap=min_gap, duration=duration
    ):
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        readings, tv = inject_incident(
            readings, tv, household_id, onset, variant, rng, duration=duration.to_pytimedelta()
        )
        labels.append({"household_id": household_id, "onset": onset, "variant": variant.value})
    return readings, tv, labels


def _iso(times: pd.Series) -> pd.Series:
    return times.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tariff", default="Std", help="Std, ToU or all")
    parser.add_argument("--households", type=int, default=None, help="Use only the first N.")
    parser.add_argument("--history-days", type=float, default=28)
    parser.add_argument("--min-gap-days", type=float, default=7)
    parser.add_argument("--duration-hours", type=float, default=48)
    parser.add_argument("--keep-zero-runs", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()

    roster = pd.read_csv(args.source / "households.csv")
    if args.tariff != "all":
        roster = roster[roster["tariff"] == args.tariff]
    if not args.keep_zero_runs:
        roster = roster[roster["longest_zero_run_readings"] < 48]
    roster = roster.sort_values("household_id")
    if args.households:
        roster = roster.head(args.households)
    wanted = set(roster["household_id"])
    source = pd.read_parquet(args.source / "lcl_2013_halfhourly.parquet")
    source = source[source["household_id"].isin(wanted)]
    readings = pd.DataFrame(
        {
            "household_id": source["household_id"].astype(str).to_numpy(),
            "timestamp": source["timestamp_utc"].dt.tz_convert("UTC").reset_index(drop=True),
            "kwh": source["kwh"].to_numpy(np.float64).round(3),
        }
    )

    history = pd.Timedelta(days=args.history_days)
    min_gap = pd.Timedelta(days=args.min_gap_days)
    duration = pd.Timedelta(hours=args.duration_hours)
    out_readings, out_tv, labels = [], [], []
    for index, (household_id, own) in enumerate(readings.groupby("household_id", sort=True)):
        rng = np.random.default_rng(np.random.SeedSequence([args.seed, index]))
        own = own.sort_values("timestamp").reset_index(drop=True)
        injected, tv, own_labels = inject_household(
            own, str(household_id), rng, history=history, min_gap=min_gap, duration=duration
        )
        out_readings.append(injected)
        out_tv.append(tv)
        labels.extend(own_labels)

    args.out.mkdir(parents=True, exist_ok=True)
    all_readings = pd.concat(out_readings, ignore_index=True)
    all_readings["timestamp"] = _iso(all_readings["timestamp"])
    all_readings.to_csv(args.out / "readings.csv", index=False, float_format="%.3f")
    tv = pd.concat(out_tv, ignore_index=True)
    tv["timestamp"] = _iso(tv["timestamp"])
    tv.to_csv(args.out / "tv.csv", index=False)
    households = pd.DataFrame(
        {
            "household_id": roster["household_id"],
            "timezone": TIMEZONE,
            "tariff": roster["tariff"],
            "acorn": roster["acorn_grouped"],
        }
    )
    households.to_csv(args.out / "households.csv", index=False)
    label_frame = pd.DataFrame(labels, columns=["household_id", "onset", "variant"])
    label_frame["onset"] = _iso(pd.to_datetime(label_frame["onset"], utc=True))
    label_frame.to_csv(args.out / "labels.csv", index=False)
    log.info(
        "%d households, %d readings, %d incidents (%s), %d TV events in %.0f s -> %s",
        len(households),
        len(all_readings),
        len(label_frame),
        label_frame["variant"].value_counts().to_dict(),
        len(tv),
        time.perf_counter() - started,
        args.out,
    )


if __name__ == "__main__":
    main()
