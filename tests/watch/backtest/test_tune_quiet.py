"""scripts/tune_quiet.py gives the replay's scores and curve, homes of unequal spans included."""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data.synthetic import inject_incident, simulate_households
from detectors.inactivity import QuietStretchDetector
from watch.backtest.curve import ScoreTrace, threshold_curve
from watch.backtest.report import spans_of
from watch.backtest.stream import replay_household

_PATH = Path(__file__).resolve().parents[3] / "scripts" / "tune_quiet.py"
_spec = importlib.util.spec_from_file_location("tune_quiet", _PATH)
tune = importlib.util.module_from_spec(_spec)
sys.modules["tune_quiet"] = tune  # its dataclasses look their module up there
_spec.loader.exec_module(tune)

ONSET = pd.Timestamp("2025-02-05T09:10:00+09:00")  # a Wednesday morning, day 31


@pytest.fixture(scope="module")
def copy_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three homes for 35 days on different spans: H001 whole, H002 from day 3 (and down from
    ``ONSET``, lamp on), H003 until day 31 with a day of readings missing."""
    readings, tv, households, _ = simulate_households(3, "2025-01-06", 35, seed=11)
    readings, tv = inject_incident(readings, tv, "H002", ONSET, "lamp_on", np.random.default_rng(5))
    when = pd.to_datetime(readings["timestamp"], utc=True)
    start = when.min()
    late_start = (readings["household_id"] == "H002") & (when < start + timedelta(days=3))
    early_end = (readings["household_id"] == "H003") & (when > start + timedelta(days=31))
    gap = (readings["household_id"] == "H003") & when.between(
        start + timedelta(days=12), start + timedelta(days=13)
    )
    readings = readings[~(late_start | early_end | gap)]
    folder = tmp_path_factory.mktemp("copy")
    readings.to_csv(folder / "readings.csv", index=False)
    tv.to_csv(folder / "tv.csv", index=False)
    households.to_csv(folder / "households.csv", index=False)
    pd.DataFrame(
        {"household_id": ["H002"], "onset": [ONSET.isoformat()], "variant": ["lamp_on"]}
    ).to_csv(folder / "labels.csv", index=False)
    return folder


@pytest.mark.parametrize("params", [{}, {"alert_threshold": 2.5, "other_day_weight": 0.25}])
def test_batch_traces_equal_the_replay_slot_for_slot(copy_folder: Path, params: dict) -> None:
    copy = tune.load_copy(copy_folder)
    grids = tune.zone_grids(copy.slots)
    # Not vacuous: the homes sit at different places on the common grid, and see TV events.
    assert len(grids) == 1 and len(set(grids[0].offsets.tolist())) == 2
    assert len({len(s) for s in copy.slots}) == 3
    assert all(s.tv_operations.sum() > 0 for s in copy.slots)

    traces = tune.batch_traces(copy.slots, grids, params, workers=1)

    runs = []
    for home, trace in zip(copy.slots, traces, strict=True):
        detector = QuietStretchDetector(timezone=home.timezone, **params)
        run = replay_household(home, {"quiet": detector}, timedelta(0))
        runs.append(run)
        assert trace.household_id == home.household_id
        np.testing.assert_array_equal(trace.ticks, run.ticks)
        np.testing.assert_allclose(trace.scores, run.scores["quiet"], rtol=0, atol=1e-6)
    assert max(float(t.scores.max()) for t in traces) >= 3.5

    # The spans, and so the whole curve, are the backtest's.
    assert tune.spans_of_slots(copy.slots) == spans_of(runs, copy.slots)
    replayed = [ScoreTrace(r.household_id, r.ticks, r.scores["quiet"]) for r in runs]
    thresholds = np.array([1.0, 2.0, 3.5, 5.0])
    expected = threshold_curve(
        replayed, copy.labels, copy.spans, thresholds, warmup=timedelta(days=28)
    )
    got = tune.curve_of(copy, traces)
    assert [tune.point_at(got, t) for t in thresholds] == expected
    assert expected[2]["recall_24h"] == 1.0  # the incident is caught at 3.5


def test_padding_a_home_on_the_common_grid_changes_none_of_its_scores(copy_folder: Path) -> None:
    copy = tune.load_copy(copy_folder)
    grids = tune.zone_grids(copy.slots)
    assert tune.padding_mismatch(copy, grids, {}, homes=3, workers=1) == 0.0


def test_a_table_row_shows_each_budget() -> None:
    point = {
        "threshold": 6.9,
        "how": "exact",
        "recall_6h": 0.01,
        "recall_12h": 0.18,
        "recall_24h": 0.85,
        "median_delay_hours": 15.7,
        "p90_delay_hours": None,
        "false_episodes_per_household_month": 0.59,
    }
    row = tune.table_row({"params": {"prior_weight": 2.0}, "points": {0.6: point}}, [0.6, 0.3])
    assert row == (
        "| `prior_weight=2.0` | 6.90 | exact | 0.01 | 0.18 | 0.85 | 15.7 | >48h | 0.59"
        " | – | – | – | – | – | – | – | – |"
    )
