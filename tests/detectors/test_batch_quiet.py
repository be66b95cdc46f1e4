"""The batch path of QuietStretchDetector gives the one-at-a-time scores (STYLE.md, "Detectors")."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors import batch
from detectors.base import Interval
from detectors.batch_quiet import QuietStretchBatch, QuietStretchState
from detectors.inactivity import QuietStretchDetector
from tests.detectors.conftest import HouseholdStream
from tests.detectors.test_batch import _arrays, _homes

START = datetime(2025, 1, 6, tzinfo=UTC)
FIRST_END = START + timedelta(minutes=30)


def _one_at_a_time(detectors: list[QuietStretchDetector], homes: list[list[Interval]]):
    scores = np.zeros((len(homes), len(homes[0])))
    for row, (detector, home) in enumerate(zip(detectors, homes, strict=True)):
        for t, x in enumerate(home):
            scores[row, t] = detector.score_one(x)
            detector.learn_one(x)
    return scores


@pytest.fixture
def homes(make_household_stream: Callable[..., HouseholdStream]) -> list[list[Interval]]:
    return _homes(make_household_stream)


def test_batch_scores_equal_score_one_from_fresh_detectors(homes) -> None:
    kwh, ops, on = _arrays(homes)
    expected = _one_at_a_time([QuietStretchDetector() for _ in homes], homes)

    scores, _ = QuietStretchBatch().run(kwh, ops, on, first_end=FIRST_END)

    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-9)
    # Not vacuous: the collapsed homes alert, and stuck loads multiplied some scores.
    assert (expected[1:4].max(axis=1) >= 3.5).all()
    assert (expected > 0).mean() > 0.2


def test_batch_continues_from_running_detectors_day_by_day(homes) -> None:
    kwh, ops, on = _arrays(homes)
    detectors = [QuietStretchDetector() for _ in homes]
    split = 8 * 48
    _one_at_a_time(detectors, [h[:split] for h in homes])
    state = QuietStretchState.from_detectors(detectors)
    expected = _one_at_a_time(detectors, [h[split:] for h in homes])

    model, got = QuietStretchBatch.like(detectors[0]), []
    for day in (slice(split, split + 48), slice(split + 48, split + 96)):
        first_end = FIRST_END + timedelta(minutes=30 * day.start)
        scores, state = model.run(kwh[:, day], ops[:, day], on[:, day], state, first_end=first_end)
        got.append(scores)

    np.testing.assert_allclose(np.hstack(got), expected, rtol=0, atol=1e-9)
    # The state the batch ends in is the state the detectors end in.
    final = QuietStretchState.from_detectors(detectors)
    for field in fields(QuietStretchState)[1:-1]:  # the detectors do not know next_end
        mine, theirs = getattr(state, field.name), getattr(final, field.name)
        if field.name == "baseline":  # a stale floor is never read: compare it where current
            mine, theirs = mine[state.evidence.valid], theirs[final.evidence.valid]
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12, err_msg=field.name)
    for name, value in vars(final.evidence).items():
        if name not in ("noise", "baseline"):  # the floor: compared above where current
            np.testing.assert_array_equal(getattr(state.evidence, name), value, err_msg=name)
    valid = state.evidence.valid
    np.testing.assert_array_equal(state.evidence.baseline[valid], state.baseline[valid])


def test_a_pickled_state_continues_as_the_running_one(homes) -> None:
    kwh, ops, on = _arrays(homes)
    model = QuietStretchBatch()
    whole, _ = model.run(kwh, ops, on, first_end=FIRST_END)
    split = 5 * 48 + 7  # mid-morning: stretches in flight
    _, state = model.run(kwh[:, :split], ops[:, :split], on[:, :split], first_end=FIRST_END)
    state = pickle.loads(pickle.dumps(state))
    rest, _ = model.run(
        kwh[:, split:],
        ops[:, split:],
        on[:, split:],
        state,
        first_end=FIRST_END + timedelta(minutes=30 * split),
    )
    np.testing.assert_allclose(rest, whole[:, split:], rtol=0, atol=1e-12)


def test_households_split_across_chunks_and_threads_score_as_one_batch(homes, monkeypatch) -> None:
    kwh, ops, on = _arrays(homes)
    whole, whole_state = QuietStretchBatch().run(kwh, ops, on, first_end=FIRST_END)
    monkeypatch.setattr("detectors.batch_quiet._CHUNK", 3)
    split, split_state = QuietStretchBatch(workers=2).run(kwh, ops, on, first_end=FIRST_END)
    np.testing.assert_allclose(split, whole, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(split_state.steps, whole_state.steps)
    assert batch._CHUNK > 3  # the evidence module's own chunking is untouched


def test_batch_input_and_state_are_not_mutated_and_mismatched_shapes_are_refused(homes) -> None:
    kwh, ops, on = _arrays(homes)
    model = QuietStretchBatch()
    _, state = model.run(kwh[:, :48], ops[:, :48], on[:, :48], first_end=FIRST_END)
    before, state_before = (kwh.copy(), ops.copy(), on.copy()), pickle.dumps(state)
    model.run(kwh[:, 48:], ops[:, 48:], on[:, 48:], state, first_end=FIRST_END + timedelta(1))
    for array, copy in zip((kwh, ops, on), before, strict=True):
        np.testing.assert_array_equal(array, copy)
    assert pickle.dumps(state) == state_before
    with pytest.raises(ValueError):
        model.run(kwh, ops[:, :-1], on, first_end=FIRST_END)
    with pytest.raises(ValueError):
        model.run(kwh[:3], ops[:3], on[:3], state, first_end=FIRST_END)
    with pytest.raises(ValueError):
        model.run(kwh, ops, on, first_end=datetime(2025, 1, 6))  # naive


def test_a_zone_with_daylight_saving_scores_as_the_detector(make_household_stream) -> None:
    start = datetime(2025, 3, 25, tzinfo=UTC)  # Europe/London springs forward on the 30th
    homes = [
        make_household_stream(seed=seed, days=8, start=start, timezone="Europe/London").intervals
        for seed in (11, 12)
    ]
    kwh, ops, on = _arrays(homes)
    expected = _one_at_a_time([QuietStretchDetector("Europe/London") for _ in homes], homes)
    scores, _ = QuietStretchBatch("Europe/London").run(
        kwh, ops, on, first_end=start + timedelta(minutes=30)
    )
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-9)


def test_an_answer_between_batches_is_learned_as_by_the_detector() -> None:
    # 18.5 quiet hours from 10:30 in a new home, flagged; answered "fine" while the stretch
    # lasts (vouched) or after it ended (learned late).
    def day(i: int) -> Interval:
        kwh = 0.1 if 3 <= i < 40 else 0.1 + 0.3 * (i % 2)
        return Interval(START + timedelta(minutes=30 * (i + 1)), kwh)

    home = [day(i) for i in range(96)]
    kwh, ops, on = _arrays([home])
    for answer_at in (35, 45):  # during the stretch, and after it ended
        detector = QuietStretchDetector()
        _one_at_a_time([detector], [home[:answer_at]])
        _, state = QuietStretchBatch().run(
            kwh[:, :answer_at], ops[:, :answer_at], on[:, :answer_at], first_end=FIRST_END
        )
        flagged_since = START + timedelta(minutes=30 * 3)
        assert state.flagged[0] or state.unlearned_since[0] == flagged_since.timestamp()
        detector.learn_outcome(flagged_since, "fine")
        state.learn_outcome(0, flagged_since, "fine")
        expected = _one_at_a_time([detector], [home[answer_at:]])
        got, end_state = QuietStretchBatch().run(
            kwh[:, answer_at:],
            ops[:, answer_at:],
            on[:, answer_at:],
            state,
            first_end=FIRST_END + timedelta(minutes=30 * answer_at),
        )
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
        if answer_at == 35:
            assert state.vouched[0]  # the answer reached the stretch in flight
        else:
            assert np.isnan(state.unlearned_since[0])  # the stretch left out is learned now
        learned = QuietStretchState.from_detectors([detector]).steps
        np.testing.assert_array_equal(end_state.steps, learned)


def test_fresh_detectors_give_the_fresh_state_and_mixed_parameters_are_refused(homes) -> None:
    kwh, ops, on = _arrays(homes)
    carried = QuietStretchState.from_detectors([QuietStretchDetector() for _ in homes])
    model = QuietStretchBatch()
    np.testing.assert_array_equal(
        model.score(kwh, ops, on, carried, first_end=FIRST_END),
        model.score(kwh, ops, on, first_end=FIRST_END),
    )
    with pytest.raises(ValueError):
        QuietStretchState.from_detectors([QuietStretchDetector(), QuietStretchDetector("UTC")])


def test_a_batch_that_skips_or_repeats_slots_is_refused(homes) -> None:
    kwh, ops, on = _arrays(homes)
    model = QuietStretchBatch()
    _, state = model.run(kwh[:, :48], ops[:, :48], on[:, :48], first_end=FIRST_END)
    for wrong in (FIRST_END, FIRST_END + timedelta(days=1, minutes=30)):
        with pytest.raises(ValueError):
            model.run(kwh[:, 48:], ops[:, 48:], on[:, 48:], state, first_end=wrong)
    model.run(kwh[:, 48:], ops[:, 48:], on[:, 48:], state, first_end=FIRST_END + timedelta(1))


def test_detectors_carry_on_one_at_a_time_from_where_the_batch_left_them(homes) -> None:
    """``to_detectors`` is the way back: batch a week, then score one interval at a time."""
    split = 8 * 48 + 13  # mid-morning: stretches in flight, floors cached, some flagged
    reference = [QuietStretchDetector() for _ in homes]
    _one_at_a_time(reference, [h[:split] for h in homes])
    expected = _one_at_a_time(reference, [h[split:] for h in homes])

    kwh, ops, on = _arrays([h[:split] for h in homes])
    _, state = QuietStretchBatch().run(kwh, ops, on, first_end=FIRST_END)
    carried = [QuietStretchDetector() for _ in homes]
    state.to_detectors(carried)
    # The state written back reads back the same...
    again = QuietStretchState.from_detectors(carried)
    for field in fields(QuietStretchState)[1:-1]:
        mine, back = getattr(state, field.name), getattr(again, field.name)
        if field.name == "baseline":  # a stale floor is not written back: it is never read
            mine, back = mine[state.evidence.valid], back[state.evidence.valid]
        np.testing.assert_array_equal(back, mine, err_msg=field.name)
    # ...and the detectors go on as if they had scored every interval themselves.
    got = _one_at_a_time(carried, [h[split:] for h in homes])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert (expected >= 3.5).any()  # not vacuous: alerts after the hand-over
    with pytest.raises(ValueError):
        state.to_detectors(carried[:-1])
    with pytest.raises(ValueError):
        state.to_detectors([QuietStretchDetector(history_per_bin=10) for _ in homes])
