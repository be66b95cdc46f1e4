"""The bundled sample in data/sample/: complete, consistent, and exactly reproducible."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
FILES = (
    "households.csv",
    "contacts.csv",
    "readings.csv.gz",
    "tv.csv.gz",
    "labels.csv",
    "README.md",
)
E164 = r"\+[1-9]\d{7,14}"


def load_script():
    spec = importlib.util.spec_from_file_location(
        "make_sample_data", REPO / "scripts" / "make_sample_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the class is being built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def readings() -> pd.DataFrame:
    frame = pd.read_csv(SAMPLE / "readings.csv.gz")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601")
    return frame


def test_every_sample_file_is_there():
    for name in FILES:
        assert (SAMPLE / name).is_file(), name


def test_readings_cover_24_households_for_8_weeks_minus_the_outage(readings):
    assert readings["household_id"].nunique() == 24
    assert len(readings) == 24 * 8 * 7 * 48 - 20
    per_household = readings.groupby("household_id").size()
    assert sorted(per_household.unique()) == [8 * 7 * 48 - 20, 8 * 7 * 48]
    assert readings["kwh"].ge(0).all()


def test_reading_stamps_are_interval_ends_in_tokyo_time(readings):
    raw = pd.read_csv(SAMPLE / "readings.csv.gz", nrows=5)
    assert raw["timestamp"].str.endswith("+09:00").all()
    assert raw["timestamp"].iloc[0] == "2025-01-06T00:30:00+09:00"
    assert readings["timestamp"].max() == pd.Timestamp("2025-03-03T00:00:00+09:00")


def test_label_onsets_fall_inside_the_data_and_are_incidents(readings):
    labels = pd.read_csv(SAMPLE / "labels.csv")
    assert set(labels["variant"]) == {"quiet", "lamp_on", "tv_left_on"}
    onsets = pd.to_datetime(labels["onset"], format="ISO8601")
    assert onsets.between(readings["timestamp"].min(), readings["timestamp"].max()).all()
    last_week = pd.Timestamp("2025-02-24T00:00:00+09:00")
    assert (onsets >= last_week).all()
    assert set(labels["household_id"]) <= set(readings["household_id"])


def test_tv_events_parse_and_use_the_four_event_kinds():
    tv = pd.read_csv(SAMPLE / "tv.csv.gz")
    assert set(tv["event"]) == {"power_on", "power_off", "channel", "key"}
    assert tv["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00").all()


def test_every_contact_belongs_to_a_household_and_has_an_e164_phone():
    households = pd.read_csv(SAMPLE / "households.csv")
    contacts = pd.read_csv(SAMPLE / "contacts.csv", dtype={"phone": str})
    assert households["household_id"].is_unique and len(households) == 24
    assert set(contacts["household_id"]) <= set(households["household_id"])
    assert contacts["phone"].str.fullmatch(E164).all()
    assert set(contacts["role"]) == {"resident", "family", "volunteer", "staff"}
    assert (contacts["language"] == "en").any()


def test_the_sample_is_small(readings):
    assert (SAMPLE / "readings.csv.gz").stat().st_size < 1_000_000


@pytest.mark.slow
def test_regenerating_gives_byte_identical_files(tmp_path):
    load_script().main(tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
