"""Injection into the real London readings, then the backtest on them (needs the shared data)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "inject_incidents.py"


def _inject_main():
    spec = importlib.util.spec_from_file_location("inject_incidents", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.slow
def test_injected_london_copy_is_reproducible_and_backtests(shared_data, cli, tmp_path):
    main = _inject_main()
    source = shared_data / "lcl_london_2013"
    first, again = tmp_path / "a", tmp_path / "b"
    for out in (first, again):
        main(["--source", str(source), "--out", str(out), "--seed", "3", "--households", "2"])
    labels = pd.read_csv(first / "labels.csv")
    assert labels.equals(pd.read_csv(again / "labels.csv"))
    assert (first / "readings.csv").read_bytes() == (again / "readings.csv").read_bytes()
    onsets = pd.to_datetime(labels["onset"], utc=True)
    assert set(labels["variant"]) <= {"quiet", "lamp_on", "tv_left_on"}
    assert onsets.min() >= pd.Timestamp("2013-01-29", tz="UTC")  # after 28 days of history
    for _, own in onsets.groupby(labels["household_id"]):
        assert own.sort_values().diff().dropna().min() >= pd.Timedelta(days=7)
    households = pd.read_csv(first / "households.csv")
    assert set(households["timezone"]) == {"Europe/London"}

    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        ["backtest", "--readings", str(first / "readings.csv"), "--tv", str(first / "tv.csv"),
         "--roster", str(first / "households.csv"), "--labels", str(first / "labels.csv"),
         "--alerts-out", str(tmp_path / "alerts.csv"), "--report-out", str(report),
         "--detector", "rule24", "--workers", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    overall = json.loads(report.read_text())["detectors"]["rule24"]["metrics"]["overall"]
    assert overall["incidents"] == len(labels)
    assert overall["recall"]["12h"] == 0.0
