"""Fixtures for the backtest tests: a small synthetic town with an injected incident, as files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer

from data.synthetic import inject_incident, simulate_households
from watch.backtest.command import backtest

#: <repo>/../shared/data: the evaluation data, present on the team's machines only.
SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
ONSET = pd.Timestamp("2025-01-27T07:10:00+09:00")  # a Monday morning, after 3 weeks of history


@dataclass(frozen=True)
class TownFiles:
    readings: Path
    tv: Path
    roster: Path
    labels: Path
    onset: pd.Timestamp
    household_id: str


@pytest.fixture(scope="session")
def town() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Three residents for 28 days from Monday 2025-01-06, H002 down from ``ONSET`` (quiet)."""
    readings, tv, households, _ = simulate_households(3, "2025-01-06", 28, seed=11)
    readings, tv = inject_incident(readings, tv, "H002", ONSET, "quiet", np.random.default_rng(5))
    return readings, tv, households


@pytest.fixture
def town_files(town, tmp_path: Path) -> TownFiles:
    readings, tv, households = town
    paths = TownFiles(
        readings=tmp_path / "readings.csv",
        tv=tmp_path / "tv.csv",
        roster=tmp_path / "households.csv",
        labels=tmp_path / "labels.csv",
        onset=ONSET,
        household_id="H002",
    )
    readings.to_csv(paths.readings, index=False)
    tv.to_csv(paths.tv, index=False)
    households.to_csv(paths.roster, index=False)
    pd.DataFrame(
        {"household_id": ["H002"], "onset": [ONSET.isoformat()], "variant": ["quiet"]}
    ).to_csv(paths.labels, index=False)
    return paths


@pytest.fixture
def cli() -> typer.Typer:
    """A tiny app with the backtest registered as the lead registers it."""
    app = typer.Typer(add_completion=False)
    app.command("backtest")(backtest)

    @app.command("version")
    def version() -> None:  # a second command so "backtest" stays a sub-command
        """Unused."""

    return app


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "lcl_london_2013" / "lcl_2013_halfhourly.parquet").exists():
        pytest.skip(f"evaluation data not present at {SHARED_DATA.resolve()}")
    return SHARED_DATA
