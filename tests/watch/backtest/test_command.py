"""``areawatch backtest`` end to end through the command line."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from watch.backtest.report import ALERT_COLUMNS


def test_the_backtest_writes_alerts_and_a_report_with_every_baseline(cli, town_files, tmp_path):
    alerts, report = tmp_path / "alerts.csv", tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        [
            "backtest",
            "--readings", str(town_files.readings),
            "--tv", str(town_files.tv),
            "--roster", str(town_files.roster),
            "--labels", str(town_files.labels),
            "--alerts-out", str(alerts),
            "--report-out", str(report),
            "--lag", "60m",
            "--warmup", "14d",
            "--workers", "1",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "quiet" in result.output and "rule24" in result.output
    with alerts.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0].keys()) == ALERT_COLUMNS
    assert {r["kind"] for r in rows} <= {"inactivity", "outage"}
    fired = pd.to_datetime([r["fired_at"] for r in rows], utc=True)
    assert all(t.minute in (0, 30) for t in fired)
    # The collapsed resident is alerted, within a day, by the default detector.
    onset = town_files.onset.tz_convert("UTC")
    hits = [
        t
        for r, t in zip(rows, fired, strict=True)
        if r["household_id"] == "H002" and r["severity"] == "alert" and onset <= t
    ]
    assert hits and hits[0] - onset <= pd.Timedelta(hours=24)

    data = json.loads(report.read_text())
    assert data["detectors_run"] == ["quiet", "rule12", "rule24", "hst"]
    assert data["households"] == 3 and data["labels"] == 1
    quiet = data["detectors"]["quiet"]
    assert quiet["metrics"]["overall"]["recall"]["24h"] == 1.0
    expected = (hits[0] - onset) / pd.Timedelta(hours=1)
    assert quiet["metrics"]["overall"]["median_delay_hours"] == pytest.approx(expected, abs=1e-3)
    assert len(quiet["curve"]) >= 5
    rule24 = data["detectors"]["rule24"]["metrics"]["overall"]
    assert rule24["recall"]["12h"] == 0.0  # a 24 h rule cannot alert within 12 h


def test_one_detector_by_name_and_no_labels_gives_alerts_only(cli, town_files, tmp_path):
    alerts = tmp_path / "alerts.csv"
    result = CliRunner().invoke(
        cli,
        ["backtest", "--readings", str(town_files.readings), "--detector", "rule12",
         "--alerts-out", str(alerts), "--workers", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rule12" in result.output and "hst" not in result.output
    assert alerts.read_text().splitlines()[0] == ",".join(ALERT_COLUMNS)


def test_an_unknown_detector_and_a_time_without_offset_are_refused(cli, town_files, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["backtest", "--readings", str(town_files.readings), "--detector", "magic",
         "--alerts-out", str(tmp_path / "a.csv")],
    )  # fmt: skip
    assert result.exit_code != 0
    naive = tmp_path / "naive.csv"
    naive.write_text("household_id,timestamp,kwh\nH1,2025-01-06T00:30:00,0.1\n")
    result = runner.invoke(
        cli, ["backtest", "--readings", str(naive), "--alerts-out", str(tmp_path / "a.csv")]
    )
    assert result.exit_code == 2
    assert "offset" in result.output


def test_simulated_all_right_replies_never_cost_a_labelled_collapse(cli, town_files, tmp_path):
    reports = {}
    for flag in ("--no-feedback", "--feedback"):
        report = tmp_path / f"report{flag}.json"
        result = CliRunner().invoke(
            cli,
            ["backtest", "--readings", str(town_files.readings), "--tv", str(town_files.tv),
             "--roster", str(town_files.roster), "--labels", str(town_files.labels),
             "--alerts-out", str(tmp_path / f"alerts{flag}.csv"), "--report-out", str(report),
             "--detector", "quiet", "--warmup", "7d", "--workers", "1", flag],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        reports[flag] = json.loads(report.read_text())
    assert reports["--feedback"]["inputs"]["feedback"] is True
    assert reports["--no-feedback"]["inputs"]["feedback"] is False
    with_, without = (
        reports[f]["detectors"]["quiet"]["metrics"] for f in ("--feedback", "--no-feedback")
    )
    assert with_["overall"]["recall"]["24h"] == without["overall"]["recall"]["24h"] == 1.0
    assert with_["false_alert_episodes"] <= without["false_alert_episodes"]
