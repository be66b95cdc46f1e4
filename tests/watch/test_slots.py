"""Readings into 30-minute slots: numpy's sums (``slot_kwh``), for one home or a whole group,
are ``energy_by_slot``'s one-reading-at-a-time sums, float for float, wherever they are used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from data.new_readings import NO_READINGS, ReadingColumns
from watch.batch_scoring import fill_kwh
from watch.detect import scorable_until, scorable_untils
from watch.slots import SLOT, TvState, build_slots, energy_by_slot, floor_slot, slot_kwh

AFTER = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
SLOTS = 48


def mixed_readings(seed: int) -> list[tuple[datetime, float, int]]:
    """A day of one meter whose interval keeps changing (5, 15, 30, 60 minutes), starting two
    hours before ``AFTER`` and running two hours past the last slot, with gaps, ends a
    microsecond off the grid, and kWh that are no short decimals."""
    rng = np.random.default_rng(seed)
    rows = []
    end = AFTER - timedelta(hours=2)
    while end < AFTER + SLOTS * SLOT + timedelta(hours=2):
        minutes = int(rng.choice([5, 15, 30, 60]))
        end += timedelta(minutes=minutes)
        if rng.random() < 0.1:
            continue  # a reading that never came
        jitter = timedelta(microseconds=1) if rng.random() < 0.1 else timedelta(0)
        rows.append((end + jitter, float(rng.gamma(2.0, 0.05)), minutes))
    return rows


def on_the_edges() -> list[tuple[datetime, float, int]]:
    """Readings ending exactly on slot boundaries, just past them, and at both ends."""
    return [
        (AFTER, 0.7, 30),  # ends at ``after``: the slot before the first
        (AFTER + timedelta(microseconds=1), 0.1, 5),  # just inside slot 1
        (AFTER + SLOT, 0.2, 15),  # the end of slot 1
        (AFTER + SLOT + timedelta(microseconds=1), 0.3, 15),  # slot 2
        (AFTER + 2 * SLOT, 0.4, 60),  # slots 2 and 1
        (AFTER + 3 * SLOT, 0.5, 60),  # slots 3 and 2
        (AFTER + SLOTS * SLOT, 0.6, 60),  # the last two slots
        (AFTER + SLOTS * SLOT + timedelta(microseconds=1), 0.8, 60),  # the last, and one past
    ]


def by_energy_by_slot(rows, slots: int = SLOTS) -> np.ndarray:  # noqa: ANN001
    """What the slots hold by the one-at-a-time definition, rounded as the slots round."""
    energy = energy_by_slot(rows, AFTER)
    return np.array(
        [np.round(energy[n], 6) if n in energy else np.nan for n in range(1, slots + 1)]
    )


@pytest.mark.parametrize("seed", range(6))
def test_numpy_slot_energy_is_energy_by_slot_on_mixed_intervals(seed):
    rows = mixed_readings(seed)

    (got,) = slot_kwh([ReadingColumns.from_rows(rows)], AFTER, SLOTS)

    np.testing.assert_array_equal(got, by_energy_by_slot(rows))
    # Not vacuous: readings on both sides of the range, hourly ones split, gaps, crowded slots.
    assert rows[0][0] < AFTER and rows[-1][0] > AFTER + SLOTS * SLOT
    assert any(minutes == 60 for _, _, minutes in rows)
    assert np.isnan(got).any() and not np.isnan(got).all()
    numbers = [-((AFTER - end) // SLOT) for end, _, _ in rows]
    assert max(numbers.count(n) for n in range(1, SLOTS + 1)) >= 3


def test_readings_on_slot_boundaries_fall_in_the_slot_they_end():
    rows = on_the_edges()

    (got,) = slot_kwh([ReadingColumns.from_rows(rows)], AFTER, SLOTS)

    np.testing.assert_array_equal(got, by_energy_by_slot(rows))
    assert got[:3].tolist() == [0.5, 0.75, 0.25]  # 0.1 + 0.2 + 0.2; 0.3 + 0.2 + 0.25; 0.25
    assert got[-2:].tolist() == [0.3, 0.7]  # 0.3; 0.3 + 0.4 (0.4: the reading's other half)


def test_a_group_filled_at_once_is_each_home_filled_alone():
    homes = [ReadingColumns.from_rows(mixed_readings(seed)) for seed in range(5)]
    homes.insert(2, NO_READINGS)
    homes.append(ReadingColumns.from_rows(on_the_edges()))

    together = slot_kwh(homes, AFTER, SLOTS)

    for row, home in enumerate(homes):
        np.testing.assert_array_equal(together[row], slot_kwh([home], AFTER, SLOTS)[0])
    assert np.isnan(together[2]).all()


def test_fill_kwh_writes_each_home_into_its_own_line_and_nothing_else():
    homes = [ReadingColumns.from_rows(mixed_readings(seed)) for seed in range(3)]
    kwh = np.full((6, SLOTS), 9.0)  # what the lines held before
    lines = np.array([4, 0, 2])

    fill_kwh(kwh, lines, homes, AFTER)

    for line, home in zip(lines, homes, strict=True):
        np.testing.assert_array_equal(kwh[line], by_energy_by_slot(list(home)))
    assert (kwh[[1, 3, 5]] == 9.0).all()  # lines not asked for keep what they held


def test_build_slots_gives_the_same_kwh_from_columns_and_from_rows():
    rows = mixed_readings(7) + on_the_edges()
    rows.sort(key=lambda row: row[0])
    until = AFTER + SLOTS * SLOT

    def kwh_of(readings) -> list:  # noqa: ANN001
        slots = build_slots(
            after=AFTER, until=until, readings=readings, tv_events=[], tv_state=TvState()
        )
        return [x.kwh for x in slots]

    expected = [None if np.isnan(k) else float(k) for k in by_energy_by_slot(rows)]
    assert kwh_of(rows) == kwh_of(ReadingColumns.from_rows(rows)) == expected
    assert None in expected


def scorable_by_the_loop(rows, after, now, data_grace):  # noqa: ANN001, ANN201
    """``scorable_until`` as it was written before the columns: slot by slot."""
    present = energy_by_slot(rows, after)
    reached = max(0, round((floor_slot(now - data_grace) - after) / SLOT))
    while reached + 1 in present:
        reached += 1
    return after + min(round((floor_slot(now) - after) / SLOT), reached) * SLOT


@pytest.mark.parametrize("seed", range(4))
def test_scorable_until_stops_where_the_slot_by_slot_definition_stops(seed):
    rows = [row for row in mixed_readings(seed) if row[0] > AFTER]
    columns = ReadingColumns.from_rows(rows)
    stops = set()
    for hours in (0.2, 1, 5, 12, 23.9, 24, 26, 30):
        for grace in (timedelta(0), timedelta(hours=2), timedelta(hours=30)):
            now = AFTER + timedelta(hours=hours)
            got = scorable_until(columns, after=AFTER, now=now, data_grace=grace)
            assert got == scorable_by_the_loop(rows, AFTER, now, grace), (hours, grace)
            stops.add(got)
    assert len(stops) > 4  # gaps, grace and ``now`` all moved the answer


def test_scorable_untils_of_a_group_are_each_household_s_alone():
    """Households with their own cursors, one with no reading at all, one never reaching."""
    homes = [[row for row in mixed_readings(seed) if row[0] > AFTER] for seed in range(5)]
    homes.append([])
    afters = [AFTER, AFTER + 3 * SLOT, AFTER, AFTER + 20 * SLOT, AFTER - 4 * SLOT, AFTER]
    now, grace = AFTER + timedelta(hours=20), timedelta(hours=30)  # stops at first gaps

    together = scorable_untils(
        [ReadingColumns.from_rows(rows) for rows in homes], afters, now=now, data_grace=grace
    )

    alone = [
        scorable_by_the_loop(rows, after, now, grace)
        for rows, after in zip(homes, afters, strict=True)
    ]
    assert together == alone
    assert len(set(together)) > 3
