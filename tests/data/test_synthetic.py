"""The simulator: reproducible, realistic in shape, and incidents that look like what they claim."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from data.synthetic import Variant, draw_personas, inject_incident, simulate_households
from data.synthetic.files import csv_bytes
from data.synthetic.incidents import standby_pool

SEED = 11
START = "2025-01-06"
DAYS = 14
HALF_HOUR = pd.Timedelta(minutes=30)


@pytest.fixture(scope="module")
def town():
    return simulate_households(4, START, DAYS, seed=SEED)


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def tokyo(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_localize("Asia/Tokyo")


def own(frame: pd.DataFrame, household_id: str) -> pd.DataFrame:
    return frame[frame["household_id"] == household_id]


def test_the_same_seed_gives_identical_data_and_another_seed_does_not(town):
    again = simulate_households(4, START, DAYS, seed=SEED)
    for first, second in zip(town, again, strict=True):
        pd.testing.assert_frame_equal(first, second)
    other = simulate_households(4, START, DAYS, seed=SEED + 1)[0]
    assert not np.array_equal(other["kwh"].to_numpy(), town[0]["kwh"].to_numpy())


def test_a_household_does_not_depend_on_how_many_are_simulated(town):
    alone = simulate_households(1, START, DAYS, seed=SEED)
    pd.testing.assert_frame_equal(alone[0], own(town[0], "H001"))
    pd.testing.assert_frame_equal(alone[1], own(town[1], "H001").reset_index(drop=True))


def test_timestamps_are_interval_ends_every_30_minutes_with_offsets(town):
    readings = town[0]
    for _, frame in readings.groupby("household_id"):
        stamps = frame["timestamp"]
        assert stamps.iloc[0] == tokyo(START) + HALF_HOUR
        assert stamps.iloc[-1] == tokyo(START) + pd.Timedelta(days=DAYS)
        assert (stamps.diff().dropna() == HALF_HOUR).all()
        assert len(frame) == DAYS * 48
    first_row = csv_bytes(readings.head(1)).decode().splitlines()[1]
    assert re.fullmatch(r"H001,2025-01-06T00:30:00\+09:00,\d+\.\d{3}", first_row)


def test_night_usage_is_lower_than_evening_usage(town):
    readings = town[0]
    hour = readings["timestamp"].dt.hour
    night = readings[(hour >= 2) & (hour < 5)].groupby("household_id")["kwh"].mean()
    evening = readings[(hour >= 18) & (hour < 21)].groupby("household_id")["kwh"].mean()
    assert (evening > 2 * night).all()


def test_the_night_baseline_is_standby_and_fridge_level(town):
    hour = town[0]["timestamp"].dt.hour
    night = town[0][(hour >= 2) & (hour < 5)].groupby("household_id")["kwh"].median()
    assert night.between(0.025, 0.09).all()


def test_tv_sessions_alternate_on_and_off_and_operations_fall_inside_them(town):
    for _, events in town[1].groupby("household_id"):
        on = False
        for event in events["event"]:
            if event == "power_on":
                assert not on
                on = True
            elif event == "power_off":
                assert on
                on = False
            else:
                assert on, f"{event} while the set is off"
        assert events["timestamp"].is_monotonic_increasing


def test_the_home_is_empty_and_the_tv_off_during_a_day_centre_visit(town):
    personas = {p.household_id: p for p in draw_personas(4, SEED)}
    visitors = [h for h, p in personas.items() if p.day_centre_weekdays]
    assert visitors, "seed should give at least one day-centre user"
    for hid in visitors:
        events = own(town[1], hid)
        stamps = events["timestamp"]
        on_centre_day = stamps.dt.day_of_week.isin(personas[hid].day_centre_weekdays)
        minute = stamps.dt.hour * 60 + stamps.dt.minute
        assert not (on_centre_day & minute.between(9 * 60 + 30, 14 * 60 + 30)).any()


def test_quiet_makes_readings_after_onset_look_like_standby_and_switches_tv_off(town, rng):
    readings, tv = town[0], town[1]
    onset = tokyo("2025-01-15T19:10")
    new_readings, new_tv = inject_incident(readings, tv, "H002", onset, "quiet", rng)
    mine = own(new_readings, "H002")
    after = mine.loc[mine["timestamp"] >= onset + HALF_HOUR, "kwh"]
    pool = standby_pool(readings, "H002", onset)
    assert after.max() <= pool.max()
    assert abs(after.median() - np.median(pool)) < 0.01
    tv_after = own(new_tv, "H002").query("timestamp >= @onset")
    assert set(tv_after["event"]) <= {"power_off"} and len(tv_after) <= 1
    untouched = own(new_readings, "H001")["kwh"].to_numpy()
    assert np.array_equal(untouched, own(readings, "H001")["kwh"].to_numpy())


def test_lamp_on_is_flat_and_raised_above_standby(town, rng):
    readings, tv = town[0], town[1]
    onset = tokyo("2025-01-16T14:00")
    new, _ = inject_incident(readings, tv, "H003", onset, "lamp_on", rng, extra_kwh=0.2)
    after = own(new, "H003").query("timestamp > @onset")["kwh"]
    pool = standby_pool(readings, "H003", onset)
    assert abs(after.mean() - np.mean(pool) - 0.2) < 0.01
    assert after.std() < 0.02
    assert after.min() > pool.max()


def test_tv_left_on_has_no_operations_and_the_set_switches_itself_off_after_4_hours(town, rng):
    readings, tv = town[0], town[1]
    onset = tokyo("2025-01-14T19:45")
    new_readings, new_tv = inject_incident(
        readings, tv, "H001", onset, "tv_left_on", rng, extra_kwh=0.06
    )
    events = own(new_tv, "H001").query("timestamp >= @onset")
    assert events["event"].iloc[0] in ("power_on", "key")
    assert events["timestamp"].iloc[0] == onset
    assert list(events["event"].iloc[1:]) == ["power_off"]
    assert events["timestamp"].iloc[1] == onset + pd.Timedelta(hours=4)
    mine = own(new_readings, "H001").set_index("timestamp")["kwh"]
    pool = standby_pool(readings, "H001", onset)
    while_on = mine[onset + pd.Timedelta(hours=1) : onset + pd.Timedelta(hours=3, minutes=30)]
    after_off = mine[onset + pd.Timedelta(hours=5) :]
    assert abs(while_on.mean() - np.mean(pool) - 0.06) < 0.01
    assert abs(after_off.mean() - np.mean(pool)) < 0.01


def test_tv_left_on_without_auto_off_never_switches_off(town, rng):
    onset = tokyo("2025-01-14T19:45")
    _, new_tv = inject_incident(
        town[0], town[1], "H001", onset, Variant.tv_left_on, rng, auto_off_hours=None
    )
    events = own(new_tv, "H001").query("timestamp >= @onset")
    assert len(events) == 1 and events["event"].iloc[0] in ("power_on", "key")


def test_meter_outage_removes_readings_and_leaves_tv_alone(town, rng):
    readings, tv = town[0], town[1]
    onset = tokyo("2025-01-12T01:00")
    new, new_tv = inject_incident(
        readings, tv, "H004", onset, "meter_outage", rng, duration=pd.Timedelta(hours=10)
    )
    assert len(new) == len(readings) - 20
    stamps = own(new, "H004")["timestamp"]
    assert not ((stamps > onset) & (stamps <= onset + pd.Timedelta(hours=10))).any()
    pd.testing.assert_frame_equal(new_tv, tv.reset_index(drop=True))
    assert not Variant.meter_outage.is_incident


def test_away_is_standby_for_its_span_and_life_resumes_after(town, rng):
    readings, tv = town[0], town[1]
    onset, back = tokyo("2025-01-13T10:00"), tokyo("2025-01-16T10:00")
    new, new_tv = inject_incident(readings, tv, "H002", onset, "away", rng, duration=back - onset)
    mine, before = own(new, "H002"), own(readings, "H002")
    span = mine.query("timestamp > @onset and timestamp <= @back")["kwh"]
    assert span.max() <= standby_pool(readings, "H002", onset).max()
    later = mine.query("timestamp > @back")["kwh"].to_numpy()
    assert np.array_equal(later, before.query("timestamp > @back")["kwh"].to_numpy())
    assert own(new_tv, "H002").query("timestamp >= @onset and timestamp < @back").empty
    assert not Variant.away.is_incident and Variant.quiet.is_incident


def test_injection_does_not_modify_its_inputs(town, rng):
    readings, tv = town[0].copy(), town[1].copy()
    inject_incident(readings, tv, "H001", tokyo("2025-01-10T08:00"), "lamp_on", rng)
    pd.testing.assert_frame_equal(readings, town[0])
    pd.testing.assert_frame_equal(tv, town[1])


def test_a_naive_onset_is_refused(town, rng):
    with pytest.raises(ValueError, match="aware"):
        inject_incident(town[0], town[1], "H001", pd.Timestamp("2025-01-10 08:00"), "quiet", rng)


def test_roster_has_shared_volunteers_two_staff_per_area_and_fictional_phones():
    _, _, households, contacts = simulate_households(24, START, 1, seed=SEED)
    assert contacts["phone"].str.fullmatch(r"\+8190000\d{5}").all()
    assert set(contacts["household_id"]) == set(households["household_id"])
    with_area = contacts.merge(households[["household_id", "area"]], on="household_id")
    staff = with_area[with_area["role"] == "staff"].groupby("area")["phone"].nunique()
    assert (staff == 2).all() and len(staff) == 3
    volunteers = with_area[with_area["role"] == "volunteer"]
    served = volunteers.groupby("phone")["household_id"].nunique()
    assert served.min() >= 2
    assert volunteers.groupby("area")["phone"].nunique().between(2, 3).all()
    residents = contacts[contacts["role"] == "resident"]
    assert residents["phone"].is_unique and len(residents) == 24
