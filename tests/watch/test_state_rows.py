"""A quiet home's state saved as a row of arrays (``watch.state_rows``) comes back bit for bit,
and as the same detectors a pickle of them would give."""

from __future__ import annotations

import pickle
from dataclasses import fields
from datetime import UTC, datetime

import numpy as np

from detectors.batch_quiet import QuietStretchBatch, QuietStretchState, detector_parameters
from detectors.inactivity import QuietStretchDetector
from detectors.outage import DataOutage
from watch import state_rows

FIRST_END = datetime(2025, 1, 6, 0, 30, tzinfo=UTC)
INACTIVITY = detector_parameters(QuietStretchDetector(timezone="Europe/London"))
OUTAGE = detector_parameters(DataOutage(timezone="Europe/London"))


def scored_rows(homes: int = 12, days: int = 9, decimals: int | None = 3, seed: int = 3):
    """Rows after ``days`` of batch scoring, with a few missing readings and one TV on."""
    rng = np.random.default_rng(seed)
    slots = 48 * days
    kwh = 0.05 + rng.exponential(0.1, (homes, slots)) * (rng.random((homes, slots)) < 0.5)
    kwh = np.round(kwh, decimals) if decimals is not None else kwh
    kwh[rng.random(kwh.shape) < 0.03] = np.nan
    model = QuietStretchBatch.like(QuietStretchDetector(timezone="Europe/London"))
    _, state = model.run(kwh, np.zeros(kwh.shape, dtype=np.int64), None, first_end=FIRST_END)
    last_data = np.full(homes, FIRST_END.timestamp() + 1800 * slots)
    last_data[0] = np.nan
    tv_on = np.full(homes, np.nan)
    tv_on[1] = last_data[1]
    return state_rows.Rows(state, last_data, tv_on)


def assert_same_rows(mine: state_rows.Rows, theirs: state_rows.Rows) -> None:
    for name, a, b in zip(
        names(), state_rows._arrays(mine), state_rows._arrays(theirs), strict=True
    ):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)  # NaNs in the same places too


def names() -> list[str]:
    evidence = [f"evidence.{f.name}" for f in fields(state_rows.BatchState)]
    return [*evidence, *(f.name for f in fields(QuietStretchState)[1:]), "last_data", "tv_on"]


def round_trip(rows: state_rows.Rows, fed=None):  # noqa: ANN001, ANN201
    fed = fed or [()] * len(rows.last_data)
    saved = state_rows.encode(rows, INACTIVITY, OUTAGE, fed)
    assert all(state_rows.is_row(s) for s in saved)
    header = state_rows.header_of(saved[0])
    return saved, header, state_rows.decode(saved, header)


def test_rows_come_back_bit_for_bit_with_the_week_in_counts():
    rows = scored_rows()
    saved, header, back = round_trip(rows)
    assert header.window_in_counts and header.small_steps
    assert_same_rows(back, rows)
    # The week is most of a row: in counts it is a quarter of its float64 size.
    assert len(saved[0]) < 5_000


def test_readings_finer_than_a_watt_hour_are_kept_as_they_are():
    rows = scored_rows(decimals=None)
    saved, header, back = round_trip(rows)
    assert not header.window_in_counts
    assert_same_rows(back, rows)


def test_stretches_longer_than_a_byte_holds_are_kept_as_they_are():
    rows = scored_rows()
    rows.state.steps[2, 5, 0] = 600  # a stretch of 300 h remembered
    _, header, back = round_trip(rows)
    assert not header.small_steps
    assert_same_rows(back, rows)


def test_a_row_gives_the_detectors_a_pickle_of_them_gives():
    rows = scored_rows()
    fed = [(7, 9)] + [()] * (len(rows.last_data) - 1)
    saved, _, _ = round_trip(rows, fed)
    built = state_rows.household_states(rows, INACTIVITY, OUTAGE, fed)
    for row, (bytes_, state) in enumerate(zip(saved, built, strict=True)):
        mine = state_rows.household_state(bytes_)
        theirs = state_rows.household_state(pickle.dumps(state))  # the pickled form still reads
        assert mine.outcomes_fed == theirs.outcomes_fed == list(fed[row])
        assert mine.tv == theirs.tv and mine.inactivity_reported == theirs.inactivity_reported
        assert getattr(mine.outage, "_last_data", None) == getattr(
            theirs.outage, "_last_data", None
        )
        assert_same_rows(
            state_rows.Rows(
                QuietStretchState.from_detectors([mine.inactivity]), np.zeros(1), np.zeros(1)
            ),
            state_rows.Rows(
                QuietStretchState.from_detectors([theirs.inactivity]), np.zeros(1), np.zeros(1)
            ),
        )
    assert built[1].tv.on_since is not None
    assert getattr(built[0].outage, "_last_data", None) is None


def test_rows_of_several_saves_join_in_order():
    first, second = scored_rows(homes=5, seed=1), scored_rows(homes=4, seed=2)
    joined = state_rows.concat([first, second])
    order = np.array([8, 0, 5, 3, 1, 7, 2, 6, 4])
    taken = joined.take(order)
    for row, source in enumerate(order.tolist()):
        part, index = (first, source) if source < 5 else (second, source - 5)
        assert_same_rows(taken.take(np.array([row])), part.take(np.array([index])))


def test_only_a_row_is_read_as_one():
    (saved, *_), _, _ = round_trip(scored_rows(homes=2))
    assert not state_rows.is_row(b"XXXX" + saved[4:])
    assert not state_rows.is_row(pickle.dumps({"a": 1}))
    assert not state_rows.is_row(None)


def test_a_reading_too_large_for_int16_counts_keeps_the_week_as_it_is():
    rows = scored_rows()
    rows.state.evidence.window[3, -1] = 20.0  # 40,000 half-Wh: beyond an int16
    _, header, back = round_trip(rows)
    assert not header.window_in_counts
    assert_same_rows(back, rows)
