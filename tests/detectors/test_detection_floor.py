"""The floor script's stretch bookkeeping, on hand-made lines (scripts/detection_floor.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "detection_floor.py"
_spec = importlib.util.spec_from_file_location("detection_floor", _PATH)
floor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor)


def test_a_missing_reading_neither_ends_nor_extends_a_quiet_stretch() -> None:
    kwh = np.array([[0.1, 0.5, 0.1, np.nan, 0.1, 0.1, 0.6, 0.1]])
    evidence = np.array([[False, True, False, False, False, False, True, False]])
    rows = floor.quiet_stretches(kwh, evidence).tolist()
    # (home, first slot, stop slot, observed quiet slots)
    assert rows == [[0, 0, 1, 1], [0, 2, 6, 3], [0, 7, 8, 1]]


def test_cells_split_weekdays_from_weekends_in_local_time() -> None:
    # 2013-01-05 was a Saturday; slot k starts at t0 + 30 min * (k - 1).
    t0 = int(np.datetime64("2013-01-04T23:30:00", "s").astype(np.int64))
    cells = floor.cells_of_slots(t0, 4, "Europe/London")
    # slot 0 starts Friday 23:00, slots 1-3 start Saturday 23:30, 00:00 and 00:30
    assert cells.tolist() == [23, 23, 24, 24]


def test_a_home_that_never_goes_quiet_for_long_costs_no_false_alerts() -> None:
    slots = 40 * 48
    busy = np.full((1, slots), 0.1)
    busy[0, ::4] = 0.8  # a kettle every two hours: never two quiet hours in a row
    grid = {
        "ids": np.array(["H1"]),
        "t0": 0,
        "kwh": busy,
        "label_home": np.array([0]),
        "label_slot": np.array([30 * 48]),
        "label_variant": np.array(["quiet"]),
        "zone": "UTC",
    }
    grid["kwh"][0, 30 * 48 : 30 * 48 + 24] = 0.05  # the incident: 12 h of standby
    report = floor.measure(grid, delays=[6.0], budgets=[0.6])
    assert report["real_stretches_per_household_month"][">=6h"] == 0.0
    assert report["quiet_from_onset"]["6h"]["quiet"] == 1.0
    assert report["hindsight_recall_bound"]["6h"]["<=0.6"] == 1.0


def test_a_tv_that_switches_itself_off_does_not_end_the_incidents_quiet(tmp_path: Path) -> None:
    slots, onset_slot = 40 * 48, 30 * 48
    home = np.full((1, slots), 0.05)
    home[0, ::6] = 0.8  # a kettle every three hours: never six quiet hours in a row
    home[0, onset_slot : onset_slot + 24] = 0.05  # the incident: 12 h of standby
    # The resident switches the set on 10 min into the onset's slot and no key follows; the
    # set (0.1 kWh a half-hour) switches itself off 4 h 10 min later, part-way through a slot.
    onset = (onset_slot - 1) * floor.SLOT_SECONDS + 600
    off = onset + 4 * 3600 + 600
    (tmp_path / "tv.csv").write_text(
        "household_id,timestamp,event\n"
        f"H1,{pd.Timestamp(onset, unit='s', tz='UTC').isoformat()},power_on\n"
        f"H1,{pd.Timestamp(off, unit='s', tz='UTC').isoformat()},power_off\n"
    )
    operations, on_minutes = floor.load_tv_grid(tmp_path / "tv.csv", np.array(["H1"]), 0, slots)
    assert operations[0, onset_slot] == 1 and operations.sum() == 1
    assert on_minutes[0, onset_slot] == 20.0 and on_minutes[0, onset_slot + 8] == 20.0
    home += 0.1 * on_minutes / 30
    grid = {
        "ids": np.array(["H1"]),
        "t0": 0,
        "kwh": home,
        "label_home": np.array([0]),
        "label_slot": np.array([onset_slot]),
        "label_variant": np.array(["tv_left_on"]),
        "zone": "UTC",
    }
    without_tv = floor.measure(grid, delays=[6.0], budgets=[0.6])
    with_tv = floor.measure(
        {**grid, "tv_operations": operations, "tv_on_minutes": on_minutes},
        delays=[6.0],
        budgets=[0.6],
    )
    # Without the TV's events its two falls in load (4 h in) look like a person.
    assert without_tv["quiet_from_onset"]["6h"]["tv_left_on"] == 0.0
    assert with_tv["quiet_from_onset"]["6h"]["tv_left_on"] == 1.0
