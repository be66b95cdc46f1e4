"""The compiled batch loop (detectors.batch_kernels) against numpy and the one-at-a-time detector.

test_batch_quiet.py holds the batch path to ``score_one`` on the shared synthetic homes; these
tests add what the compiled loop does its own way: the floor's order statistics found from a
hint, and random homes whose histories wrap their ring buffers or outgrow the kernel table.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors import batch_kernels
from detectors.base import Interval
from detectors.batch_quiet import QuietStretchBatch, QuietStretchState
from detectors.inactivity import QuietStretchDetector

START = datetime(2025, 1, 6, tzinfo=UTC)
FIRST_END = START + timedelta(minutes=30)


def _random_window(rng: np.random.Generator, n: int) -> np.ndarray:
    """Readings with ties (rounded), negatives, and both zeros."""
    values = np.round(rng.normal(0.05, 0.1, n), int(rng.integers(1, 4)))
    values[rng.random(n) < 0.1] = -0.0
    values[rng.random(n) < 0.1] = 0.0
    return values


@pytest.mark.parametrize("seed", range(5))
def test_the_floor_is_numpys_quantile_and_median_bit_for_bit_whatever_the_hint(seed) -> None:
    rng = np.random.default_rng(seed)
    keys, cell = np.empty(400, dtype=np.int64), np.empty(1)
    for _ in range(300):
        n = int(rng.integers(2, 337))  # a window filling up, and a full week
        readings = _random_window(rng, n)
        changes = np.abs(np.diff(readings))
        # The last answer (the usual hint), a value in the window, or far off (a full selection).
        for hint in (np.quantile(readings[1:], 0.1), readings[0], 1e6, -1e6, 0.0):
            batch_kernels.order_keys(readings.view(np.int64), keys, 0, n)
            quantile = batch_kernels.low_quantile(keys, 0, n, hint, cell)
            assert quantile == np.quantile(readings, 0.1), (n, hint)
            if n < 2:
                continue
            batch_kernels.order_keys(changes.view(np.int64), keys, 0, n - 1)
            noise = batch_kernels.median_noise(keys, 0, n - 1, abs(hint), cell)
            assert noise == max(np.median(changes), 1e-3), (n, hint)


def _random_homes(rng: np.random.Generator, homes: int, days: int) -> tuple[np.ndarray, ...]:
    """Busy days, quiet nights, runs of missing readings, TV sessions (a set left on for hours
    and switched off by its timer, keys pressed), a lamp left on, and long absences (up to 11
    days, longer than the kernel table's 10)."""
    slots = days * 48
    hour = (np.arange(slots) % 48) / 2
    standby = rng.uniform(0.03, 0.08, (homes, 1))
    kwh = standby + np.round(rng.normal(0, 0.004, (homes, slots)), 3)
    awake = (hour >= 6.5) & (hour < 22.5)
    kwh += np.where(awake & (rng.random((homes, slots)) < 0.4), rng.uniform(0.03, 0.5), 0.0)
    ops = np.where(awake & (hour >= 19), rng.poisson(0.5, (homes, slots)), 0)
    on = np.where(awake & (hour >= 19), np.full((homes, slots), 30.0), 0.0)
    for home in range(homes):
        for _ in range(int(rng.integers(1, 4))):
            start = int(rng.integers(0, slots - 64))
            kind = rng.integers(0, 4)
            length = int(rng.integers(4, 60))
            part = slice(start, start + length)
            if kind == 0:  # the meter drops out
                kwh[home, part] = np.nan
            elif kind == 1:  # a set left on without a key until its timer, part-way through
                kwh[home, part], ops[home, part], on[home, part] = 0.15, 0, 30.0
                on[home, start + length] = 10.0
            elif kind == 2:  # a lamp left on, nobody moving
                kwh[home, part] = standby[home] + 0.06
                ops[home, part], on[home, part] = 0, 0.0
            else:  # away: standby only, for up to 11 days
                away = slice(start, start + int(rng.integers(48, 11 * 48)))
                kwh[home, away] = standby[home]
                ops[home, away], on[home, away] = 0, 0.0
    # One absence surely longer than the table: 11 days from the third.
    away = slice(2 * 48 + 20, 13 * 48 + 20)
    kwh[0, away], ops[0, away], on[0, away] = standby[0], 0, 0.0
    return kwh, ops, on


def _intervals(kwh: np.ndarray, ops: np.ndarray, on: np.ndarray, first: int) -> list[Interval]:
    return [
        Interval(
            FIRST_END + timedelta(minutes=30 * (first + t)),
            None if np.isnan(k) else float(k),
            tv_operations=int(o),
            tv_on_minutes=float(m),
        )
        for t, (k, o, m) in enumerate(zip(kwh, ops, on, strict=True))
    ]


def _one_at_a_time(detectors, kwh, ops, on, first: int) -> np.ndarray:
    scores = np.zeros(kwh.shape)
    for row, detector in enumerate(detectors):
        for t, x in enumerate(_intervals(kwh[row], ops[row], on[row], first)):
            scores[row, t] = detector.score_one(x)
            detector.learn_one(x)
    return scores


def _assert_same_state(batch: QuietStretchState, detectors: list[QuietStretchDetector]) -> None:
    theirs = QuietStretchState.from_detectors(detectors)
    for field in fields(QuietStretchState)[1:-1]:  # the detectors do not know next_end
        mine, expected = getattr(batch, field.name), getattr(theirs, field.name)
        if field.name == "baseline":  # a stale floor is never read: compared where current
            mine, expected = mine[batch.evidence.valid], expected[theirs.evidence.valid]
        if field.name == "long_history":  # the batch's stays set once the long one is overwritten
            mine = mine & expected
        np.testing.assert_array_equal(mine, expected, err_msg=field.name)
    for name, expected in vars(theirs.evidence).items():
        mine = getattr(batch.evidence, name)
        if name in ("noise", "baseline"):
            mine, expected = mine[batch.evidence.valid], expected[theirs.evidence.valid]
        np.testing.assert_array_equal(mine, expected, err_msg=name)


@pytest.mark.parametrize(
    ("seed", "params"),
    [
        (0, {}),
        # Four stretches a bin: the ring buffers wrap and their shortest is found again.
        (1, {"history_per_bin": 4}),
        # Nothing flagged, so absences of over 10 days are learned: scored by the formula.
        (2, {"alert_threshold": 1e9, "history_per_bin": 8}),
    ],
)
def test_random_homes_score_and_end_as_the_detectors_across_runs(seed, params) -> None:
    rng = np.random.default_rng(seed)
    days = 30
    kwh, ops, on = _random_homes(rng, homes=6, days=days)
    detectors = [QuietStretchDetector(**params) for _ in range(len(kwh))]
    model = QuietStretchBatch(**params)
    # Runs of uneven lengths, cut mid-stretch (one of a single slot, one of none).
    cuts = [0, 7 * 48 + 5, 7 * 48 + 6, 7 * 48 + 6, 16 * 48 + 31, days * 48]
    state, got = None, []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        part = slice(lo, hi)
        first_end = FIRST_END + timedelta(minutes=30 * lo)
        scores, state = model.run(
            kwh[:, part], ops[:, part], on[:, part], state, first_end=first_end
        )
        got.append(scores)
        expected = _one_at_a_time(detectors, kwh[:, part], ops[:, part], on[:, part], lo)
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-9)
        _assert_same_state(state, detectors)
    scores = np.hstack(got)
    # Not vacuous: homes alerted, stuck loads and absences were scored, histories filled up.
    assert (scores >= 3.1).any() and (scores > 0).mean() > 0.1
    assert (state.next_slot > state.steps.shape[2]).any() or not params
    if params.get("alert_threshold"):
        assert state.long_history.any()
