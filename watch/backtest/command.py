"""``areawatch backtest``: replay files through the detectors and measure them against labels.

The lead registers it with ``app.command("backtest")(backtest)``. This module is an output
layer: it parses options, calls the library and prints.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from watch.backtest.inputs import (
    InputError,
    load_labels,
    load_readings,
    load_timezones,
    load_tv,
)
from watch.backtest.report import (
    alerts_of,
    detector_report,
    spans_of,
    summary_table,
    write_alerts,
)
from watch.backtest.run import DEFAULT_DETECTOR, DETECTORS, build_all_slots, replay_all

log = logging.getLogger(__name__)
console = Console()

_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days"}
BASELINES = ("rule12", "rule24", "hst")


def parse_duration(text: str) -> timedelta:
    """``"60m"``, ``"1h"``, ``"90s"``, ``"28d"`` or ``"0"`` as a timedelta.

    >>> parse_duration("90m")
    datetime.timedelta(seconds=5400)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*", text)
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration such as 60m, 1h or 28d")
    value, unit = match.groups()
    if unit is None and float(value) != 0:
        raise typer.BadParameter(f"{text!r} needs a unit (s, m, h or d)")
    return timedelta(**{_UNITS[unit or "s"]: float(value)})


def backtest(
    readings: Annotated[
        Path, typer.Option("--readings", help="household_id,timestamp,kwh (CSV or Parquet).")
    ],
    alerts_out: Annotated[
        Path, typer.Option("--alerts-out", help="Where to write the alerts (CSV).")
    ],
    tv: Annotated[
        Path | None, typer.Option("--tv", help="household_id,timestamp,event[,channel].")
    ] = None,
    roster: Annotated[
        Path | None, typer.Option("--roster", help="households.csv with a timezone column.")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="household_id,onset[,variant].")
    ] = None,
    report_out: Annotated[
        Path | None, typer.Option("--report-out", help="Where to write the JSON report.")
    ] = None,
    lag: Annotated[
        str, typer.Option("--lag", help="Delivery delay of an interval after its end.")
    ] = "0m",
    detector: Annotated[
        str | None,
        typer.Option(
            "--detector",
            help=f"One of {', '.join(DETECTORS)}. Default: {DEFAULT_DETECTOR}, and with "
            "--labels also every baseline for comparison.",
        ),
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="Zone of households the roster does not name.")
    ] = "Asia/Tokyo",
    warmup: Annotated[
        str,
        typer.Option("--warmup", help="History before false alerts count (each household)."),
    ] = "28d",
    workers: Annotated[
        int | None, typer.Option("--workers", help="Processes (default: up to 2).")
    ] = None,
    feedback: Annotated[
        bool,
        typer.Option(
            "--feedback/--no-feedback",
            help="Simulate residents answering 'fine' an hour after each alert outside the "
            "labelled incidents (detectors with learn_outcome learn the stretch).",
        ),
    ] = False,
) -> None:
    """Replay readings (and TV events) on a simulated clock through the detectors.

    Writes every alert (a row each time an episode reaches a new severity) and, with --labels,
    reports recall within 3/6/12/24 h of onset, median/p90 delay (day and night onsets) and
    false-alert episodes per household-month, with a threshold curve.

    Example: areawatch backtest --readings readings.csv --roster households.csv
    --labels labels.csv --alerts-out alerts.csv --report-out report.json --lag 60m
    """
    if detector is not None and detector not in DETECTORS:
        raise typer.BadParameter(f"choose from {', '.join(DETECTORS)}", param_hint="--detector")
    lag_delta, warmup_delta = parse_duration(lag), parse_duration(warmup)
    primary = detector or DEFAULT_DETECTOR
    names = [primary] if detector or labels is None else [primary, *BASELINES]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        frame = load_readings(readings)
        tv_frame = load_tv(tv) if tv else None
        zones = load_timezones(roster) if roster else {}
        label_list = load_labels(labels) if labels else []
    except (InputError, OSError) as error:
        console.print(f"[red]Input error:[/red] {error}")
        raise typer.Exit(2) from error
    slots = build_all_slots(frame, tv_frame, zones, timezone)
    timings["load_and_slots"] = time.perf_counter() - started

    mark = time.perf_counter()
    runs = replay_all(
        slots, names, lag_delta, workers=workers, feedback=feedback, labels=label_list
    )
    timings["replay"] = time.perf_counter() - mark
    slot_count = sum(len(s) for s in slots)
    alerts = alerts_of(runs, primary)
    write_alerts(alerts_out, alerts)

    mark = time.perf_counter()
    spans = spans_of(runs, slots)
    report = {
        "inputs": {
            "readings": str(readings),
            "tv": str(tv) if tv else None,
            "labels": str(labels) if labels else None,
            "lag": lag,
            "warmup": warmup,
            "feedback": feedback,
        },
        "households": len(slots),
        "slots": slot_count,
        "labels": len(label_list),
        "alerts_written": len(alerts),
        "detectors": {
            name: detector_report(name, runs, spans, label_list, warmup_delta) for name in names
        },
    }
    timings["metrics"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    report["runtime_seconds"] = {k: round(v, 2) for k, v in timings.items()}
    report["detectors_run"] = names
    if report_out:
        report_out.write_text(json.dumps(report, indent=2), encoding="utf-8")

    console.print(
        f"Replayed {len(slots)} households, {slot_count:,} slots, detectors {', '.join(names)}"
        f" in {timings['replay']:.1f} s; {len(alerts)} alert rows -> {alerts_out}"
    )
    if label_list:
        console.print(summary_table(report))
