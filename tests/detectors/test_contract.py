"""The contract every detector keeps (river's ``checks``), one parametrised suite over all."""

from __future__ import annotations

import copy
import importlib
import math
import pickle
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import detectors
from detectors.base import Detector, Interval
from detectors.baselines import HalfSpaceTreesBaseline
from detectors.inactivity import QuietStretchDetector
from detectors.outage import DataOutage
from detectors.rules import NoActivityRule

from .conftest import Collapse, household_stream

START = datetime(2025, 1, 6, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    make: Callable[[], Detector]
    #: The anomaly this detector exists to see: "collapse" or "outage".
    anomaly: str
    #: Least ROC AUC (anomalous intervals vs normal ones) that counts as better than chance.
    min_auc: float


CASES = {
    "quiet_stretch": Case(QuietStretchDetector, "collapse", 0.9),
    "no_activity_rule": Case(NoActivityRule, "collapse", 0.9),
    # A general-purpose detector, kept as a comparison: only asked to beat a coin.
    "half_space_trees": Case(lambda: HalfSpaceTreesBaseline(seed=7), "collapse", 0.55),
    "data_outage": Case(DataOutage, "outage", 0.9),
}


@cache
def _stream(anomaly: str, days: int = 28) -> tuple[tuple[Interval, ...], np.ndarray]:
    """A 4-week stream with the anomaly in week 4, and which intervals are anomalous."""
    at = START + timedelta(days=22, hours=1)  # 10:00 in Tokyo
    until = at + timedelta(hours=24)
    if anomaly == "collapse":
        stream = household_stream(seed=3, days=days, collapse=Collapse(at, until=until))
        return tuple(stream.intervals), stream.collapsed
    stream = household_stream(seed=3, days=days, missing=[(at, until)])
    labels = np.array([at < x.end <= until for x in stream.intervals])
    return tuple(stream.intervals), labels


def _run(detector: Detector, intervals) -> list[float]:
    scores = []
    for x in intervals:
        scores.append(detector.score_one(x))
        detector.learn_one(x)
    return scores


pytestmark = pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())


def test_every_detector_class_is_in_the_contract(case: Case) -> None:
    for module in pkgutil.iter_modules(detectors.__path__):
        importlib.import_module(f"detectors.{module.name}")
    tested = {type(c.make()) for c in CASES.values()}
    # Only the package's own detectors: test doubles defined in other tests are not products.
    shipped = {d for d in Detector.__subclasses__() if d.__module__.startswith("detectors.")}
    assert shipped <= tested


def test_score_before_any_learning_is_a_finite_float(case: Case) -> None:
    for x in (Interval(START, 0.05), Interval(START, None), Interval(START, 0.5, tv_operations=2)):
        score = case.make().score_one(x)
        assert isinstance(score, float)
        assert math.isfinite(score)


def test_learn_one_returns_none_and_leaves_its_input_alone(case: Case) -> None:
    detector = case.make()
    intervals, _ = _stream(case.anomaly)
    for x in intervals[:200]:
        before = copy.deepcopy(x)
        assert detector.learn_one(x) is None
        assert x == before


def test_a_pickled_detector_scores_the_same_as_the_original(case: Case) -> None:
    intervals, _ = _stream(case.anomaly)
    detector = case.make()
    _run(detector, intervals[:700])
    restored = pickle.loads(pickle.dumps(detector))
    assert _run(restored, intervals[700:]) == _run(detector, intervals[700:])


def test_clone_is_an_unfitted_copy_with_the_same_parameters(case: Case) -> None:
    intervals, _ = _stream(case.anomaly)
    fitted = case.make()
    _run(fitted, intervals[:700])
    clone = fitted.clone()
    assert type(clone) is type(fitted)
    assert {k: v for k, v in vars(clone).items()} == {
        k: v for k, v in vars(fitted).items() if not k.startswith("_")
    }
    assert _run(clone, intervals[:300]) == _run(case.make(), intervals[:300])


def test_two_identical_runs_give_identical_scores(case: Case) -> None:
    intervals, _ = _stream(case.anomaly)
    assert _run(case.make(), intervals) == _run(case.make(), intervals)


def test_memory_stays_bounded_as_the_stream_grows(case: Case) -> None:
    intervals = household_stream(seed=5, days=60).intervals
    detector = case.make()
    _run(detector, intervals[: 14 * 48])
    two_weeks = len(pickle.dumps(detector))
    _run(detector, intervals[14 * 48 :])
    two_months = len(pickle.dumps(detector))
    assert two_months < 1.3 * two_weeks + 2_000


def test_it_scores_its_anomaly_higher_than_normal_days(case: Case) -> None:
    intervals, labels = _stream(case.anomaly)
    scores = np.array(_run(case.make(), intervals))
    judged = np.arange(len(intervals)) >= 14 * 48  # after two weeks of learning
    auc = roc_auc_score(labels[judged], scores[judged])
    assert auc > case.min_auc
