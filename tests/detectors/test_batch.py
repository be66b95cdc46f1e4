"""The batch path gives the one-at-a-time answers, slot for slot (STYLE.md, "Detectors")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors import batch
from detectors.activity import ActivityEvidence, QuietTracker
from detectors.base import Interval
from detectors.batch import BatchState, NoActivityRuleBatch, evidence_batch, run_batch
from detectors.rules import NoActivityRule
from tests.detectors.conftest import Collapse, HouseholdStream

START = datetime(2025, 1, 6, tzinfo=UTC)
DAYS = 10


def _homes(make: Callable[..., HouseholdStream]) -> list[list[Interval]]:
    """Homes with missing data, TV operations, a lamp left on, a TV left on and a collapse."""
    collapse_at = START + timedelta(days=8, hours=1)  # 10:00 in Tokyo
    streams = [
        make(seed=1, days=DAYS),
        make(seed=2, days=DAYS, collapse=Collapse(collapse_at, lamp_left_on=True)),
        make(seed=3, days=DAYS, collapse=Collapse(collapse_at, tv_left_on=True)),
        make(seed=4, days=DAYS, collapse=Collapse(collapse_at)),
        make(
            seed=5,
            days=DAYS,
            missing=[
                (START + timedelta(days=2), START + timedelta(days=2, hours=9)),
                (START + timedelta(days=7, hours=3), START + timedelta(days=7, hours=4)),
            ],
        ),
        make(seed=6, days=DAYS, missing=[(START, START + timedelta(hours=40))]),
    ]
    homes = [list(s.intervals) for s in streams]
    # A meter that reads the same most of the time (most changes exactly 0: the noise floor),
    # with a kettle now and then and a 0.0015 kWh step (under 2 units of the 1e-3 floor).
    flat = [
        0.05 + (0.3 if i % 17 == 0 else 0.0) + (0.0015 if i % 29 == 0 else 0.0)
        for i in range(DAYS * 48)
    ]
    homes.append([replace(x, kwh=k, tv_operations=0) for x, k in zip(homes[0], flat, strict=True)])
    # A freezer that dips below the floor now and then (changes within the standby band, not a
    # person), with a kettle now and then.
    freezer = [
        (0.02 if i % 20 == 0 else 0.06) + (0.3 if i % 23 == 0 else 0.0) for i in range(DAYS * 48)
    ]
    homes.append(
        [replace(x, kwh=k, tv_operations=0) for x, k in zip(homes[0], freezer, strict=True)]
    )
    # A set left on without a key for 4.5 h that then switches itself off (not a person), and
    # a short session switched off after an hour (the drop is a person's doing).
    tv_home = [replace(x, kwh=0.05, tv_operations=0, tv_on_minutes=0.0) for x in homes[0]]
    for i in range(200, 209):
        tv_home[i] = replace(tv_home[i], kwh=0.15, tv_on_minutes=30.0)
    tv_home[209] = replace(tv_home[209], kwh=0.05, tv_on_minutes=10.0)
    for i in range(300, 302):
        tv_home[i] = replace(tv_home[i], kwh=0.15, tv_on_minutes=30.0)
    tv_home[302] = replace(tv_home[302], kwh=0.05, tv_on_minutes=20.0)
    # Switched off part-way through a slot, the load falls over two readings: by a person
    # after a short session (322-323); by the set's timer after 4 h (431-432, across the day
    # boundary of the day-by-day tests; 448-450 with a missing reading in between).
    for i in (320, 321, *range(423, 431), *range(440, 448), *range(460, 468)):
        tv_home[i] = replace(tv_home[i], kwh=0.15, tv_on_minutes=30.0)
    for i in (322, 431, 448):
        tv_home[i] = replace(tv_home[i], kwh=0.10, tv_on_minutes=10.0)
    tv_home[449] = replace(tv_home[449], kwh=None)
    # Off on the slot boundary: the next reading holds none of the set's load, so a second fall
    # after it is somebody else's doing.
    tv_home[468] = replace(tv_home[468], kwh=0.10)
    homes.append(tv_home)
    # A TV key pressed while the meter reading is missing: evidence, but nothing to learn.
    for i in range(100, 110):
        x = homes[4][i]
        homes[4][i] = replace(x, kwh=None, tv_operations=1)
    return homes


def _arrays(homes: list[list[Interval]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kwh = np.array([[np.nan if x.kwh is None else x.kwh for x in h] for h in homes])
    ops = np.array([[x.tv_operations for x in h] for h in homes])
    on = np.array([[x.tv_on_minutes for x in h] for h in homes])
    return kwh, ops, on


def _one_at_a_time(rules: list[NoActivityRule], homes: list[list[Interval]]):
    evidence = np.zeros((len(homes), len(homes[0])), dtype=bool)
    scores = np.zeros(evidence.shape)
    for row, (rule, home) in enumerate(zip(rules, homes, strict=True)):
        tracker = rule._tracker_state()
        for t, x in enumerate(home):
            evidence[row, t] = tracker.evidence.is_evidence(x)
            scores[row, t] = rule.score_one(x)
            rule.learn_one(x)
    return evidence, scores


@pytest.fixture
def homes(make_household_stream: Callable[..., HouseholdStream]) -> list[list[Interval]]:
    return _homes(make_household_stream)


def test_batch_scores_equal_score_one_from_fresh_detectors(homes) -> None:
    kwh, ops, on = _arrays(homes)
    expected_evidence, expected_scores = _one_at_a_time([NoActivityRule(12) for _ in homes], homes)

    result = run_batch(kwh, ops, on)
    scores = NoActivityRuleBatch(12).score(kwh, ops, on)

    np.testing.assert_array_equal(result.evidence, expected_evidence)
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.quiet_minutes / 60 / 12, expected_scores, rtol=0, atol=1e-12)
    # The collapses do show: every collapsed home alerts (score >= 1) before the end.
    assert (scores[1:4, -1] >= 1.0).all()
    assert expected_evidence.any(axis=1).all() and not expected_evidence.all(axis=1).any()


def test_batch_continues_from_running_detectors_day_by_day(homes) -> None:
    kwh, ops, on = _arrays(homes)
    rules = [NoActivityRule(12) for _ in homes]
    split = 8 * 48
    _one_at_a_time(rules, [h[:split] for h in homes])
    state = BatchState.from_trackers([r._tracker_state() for r in rules])
    expected_evidence, expected_scores = _one_at_a_time(rules, [h[split:] for h in homes])

    got_evidence, got_scores = [], []
    for day in (slice(split, split + 48), slice(split + 48, split + 96)):
        result = run_batch(kwh[:, day], ops[:, day], on[:, day], state)
        state = result.state
        got_evidence.append(result.evidence)
        got_scores.append(result.quiet_minutes / 60 / 12)

    np.testing.assert_array_equal(np.hstack(got_evidence), expected_evidence)
    np.testing.assert_allclose(np.hstack(got_scores), expected_scores, rtol=0, atol=1e-12)
    # And the state the batch ends in is the state the detectors end in.
    final = BatchState.from_trackers([r._tracker_state() for r in rules])
    for name, value in vars(final).items():
        # A stale floor is never read: compare it only where it is current.
        if name not in ("noise", "baseline"):
            np.testing.assert_array_equal(getattr(state, name), value, err_msg=name)
    np.testing.assert_array_equal(state.noise[state.valid], final.noise[final.valid])
    np.testing.assert_array_equal(state.baseline[state.valid], final.baseline[final.valid])


def test_households_split_across_chunks_score_as_one_batch(homes, monkeypatch) -> None:
    kwh, ops, on = _arrays(homes)
    whole = run_batch(kwh, ops, on)
    monkeypatch.setattr(batch, "_CHUNK", 4)
    split = run_batch(kwh, ops, on)
    np.testing.assert_array_equal(split.evidence, whole.evidence)
    np.testing.assert_array_equal(split.quiet_minutes, whole.quiet_minutes)
    np.testing.assert_array_equal(split.state.window, whole.state.window)


@pytest.mark.parametrize("noise_factor, min_step_kwh", [(1.5, 0.02), (2.0, 0.001)])
def test_other_evidence_parameters_match_activity_evidence_with_them(
    homes, noise_factor: float, min_step_kwh: float
) -> None:
    kwh, ops, on = _arrays(homes)
    expected = np.zeros(kwh.shape, dtype=bool)
    for row, home in enumerate(homes):
        tracker = QuietTracker(
            ActivityEvidence(noise_factor=noise_factor, min_step_kwh=min_step_kwh)
        )
        for t, x in enumerate(home):
            expected[row, t] = tracker.evidence.is_evidence(x)
            tracker.peek(x)
            tracker.advance(x)
    got = evidence_batch(kwh, ops, on, noise_factor=noise_factor, min_step_kwh=min_step_kwh)
    np.testing.assert_array_equal(got, expected)


def test_the_noise_from_a_hint_is_the_noise_activity_evidence_computes() -> None:
    rng = np.random.default_rng(7)
    readings = np.round(0.05 + rng.normal(0, 0.003, (400, 336)), 3)
    readings[:100] = 0.05 + np.where(rng.random((100, 336)) < 0.1, 0.0015, 0.0)  # mostly flat
    changes = np.abs(np.diff(readings, axis=1))
    expected = np.array([max(float(np.median(row)), 1e-3) for row in changes])
    right = expected.copy()
    hints = (
        right,
        right + 1e-9,
        right - 1e-9,
        np.zeros(400),
        np.full(400, 1e-3),
        np.full(400, np.nan),
    )
    for hint in hints:
        np.testing.assert_array_equal(batch._noise_with_hint(changes.copy(), hint)[0], expected)


def test_batch_input_is_not_mutated_and_mismatched_shapes_are_refused(homes) -> None:
    kwh, ops, on = _arrays(homes)
    before = kwh.copy()
    run_batch(kwh, ops, on)
    np.testing.assert_array_equal(kwh, before)
    with pytest.raises(ValueError):
        run_batch(kwh, ops[:, :-1])


def _evidence_one_at_a_time(home: list[Interval]) -> list[bool]:
    """``ActivityEvidence.is_evidence`` of each interval, before learning it."""
    evidence = ActivityEvidence()
    seen = []
    for x in home:
        seen.append(evidence.is_evidence(x))
        evidence.learn_one(x)
    return seen


def test_a_freezer_dipping_within_the_standby_band_is_not_a_person(homes) -> None:
    freezer = homes[-2]
    seen = _evidence_one_at_a_time(freezer)
    dips = [i for i in range(48, len(freezer)) if i % 20 in (0, 1) and i % 23 not in (0, 1)]
    assert dips and not any(seen[i] for i in dips)
    kettles = [i for i in range(48, len(freezer)) if i % 23 == 0]
    assert all(seen[i] for i in kettles)
    assert evidence_batch(*_arrays([freezer]))[0].tolist() == seen


def test_a_tv_switching_itself_off_is_not_a_person_but_a_short_session_ending_is(homes) -> None:
    tv_home = homes[-1]
    seen = _evidence_one_at_a_time(tv_home)
    assert seen[200]  # switching on: a step up
    assert not seen[209]  # 4.5 h without a key, then off: the set's timer
    assert seen[302]  # off after an hour: somebody switched it off
    assert seen[322] and seen[323]  # the same, the fall spread over two readings
    # The set's timer part-way through a slot: neither fall is a person, even with a missing
    # reading between the two.
    assert not any(seen[431:433]) and not any(seen[448:451])
    assert not seen[468] and seen[469]  # off on the boundary: only the first fall is the set's
    batch_evidence = evidence_batch(*_arrays([tv_home]))[0]
    assert batch_evidence.tolist() == seen
