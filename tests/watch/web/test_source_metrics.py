"""Per-source health in ``/metrics``: lag, last success, and whether the last pull failed."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from data.sources import record_error, record_progress


def _by_source(text: str, name: str) -> dict[str, float]:
    return {
        sample.labels["source"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_metrics_show_each_sources_lag_last_success_and_last_failure(engine, clock, client):
    now = clock.now()
    record_progress(engine, source="meter", cursor="a.csv", now=now - timedelta(minutes=10))
    record_progress(engine, source="utility", cursor=None, now=now - timedelta(hours=2))
    record_error(engine, source="utility", error="HTTP 503", now=now - timedelta(minutes=30))
    record_error(engine, source="never-worked", error="authentication failed", now=now)

    text = client.get("/metrics").text

    assert _by_source(text, "areawatch_source_lag_seconds") == {"meter": 600.0, "utility": 7200.0}
    assert _by_source(text, "areawatch_source_last_success_timestamp_seconds") == {
        "meter": (now - timedelta(minutes=10)).timestamp(),
        "utility": (now - timedelta(hours=2)).timestamp(),
    }
    assert _by_source(text, "areawatch_source_last_pull_failed") == {
        "meter": 0,
        "utility": 1,
        "never-worked": 1,
    }


def test_a_source_that_succeeds_after_failing_no_longer_shows_failed(engine, clock, client):
    now = clock.now()
    record_error(engine, source="utility", error="HTTP 503", now=now - timedelta(minutes=30))
    record_progress(engine, source="utility", cursor=None, now=now - timedelta(minutes=1))

    text = client.get("/metrics").text

    assert _by_source(text, "areawatch_source_last_pull_failed") == {"utility": 0}
    assert _by_source(text, "areawatch_source_lag_seconds") == {"utility": 60.0}
