"""The health check and the Prometheus metrics."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from data.db import make_engine
from data.tables import Ingest, Notification
from data.tables.incidents import Incident, NotificationStatus
from watch.settings import Settings
from watch.web import create_app


def _unreachable_app(tmp_path, clock) -> TestClient:
    # A SQLite file in a directory that does not exist: every connection attempt fails.
    url = f"sqlite:///{tmp_path / 'missing' / 'areawatch.db'}"
    app = create_app(engine=make_engine(url), settings=Settings(database_url=url), clock=clock)
    return TestClient(app)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_healthz_is_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path, clock):
    with _unreachable_app(tmp_path, clock) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] != "ok"


def test_metrics_count_open_incidents_pending_messages_and_ingest_age(engine, clock, story, client):
    now = clock.now()
    with Session(engine) as session:
        session.add(
            Incident(
                household_id=story.household_id,
                kind="outage",
                severity="low",
                reason="no readings for 3 hours",
                opened_at=now,
                status="acknowledged",
            )
        )
        for minutes in (0, 5):
            session.add(
                Notification(
                    incident_id=story.incident_id,
                    step_index=3,
                    contact_id=story.family.id,
                    purpose="reminder",
                    topic=f"check{minutes}",
                    channel="sms",
                    body="再送",
                    status=NotificationStatus.pending,
                    created_at=now - timedelta(minutes=minutes),
                )
            )
        for kind, finished_ago in (("readings", 90), ("readings", 30), ("tv", 600)):
            session.add(
                Ingest(
                    kind=kind,
                    source=f"{kind}.csv",
                    started_at=now - timedelta(minutes=finished_ago + 1),
                    finished_at=now - timedelta(minutes=finished_ago),
                )
            )
        session.add(Ingest(kind="contacts", source="crashed.csv", started_at=now))
        session.commit()

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples[("areawatch_up", ())] == 1
    assert samples[("areawatch_open_incidents", (("kind", "inactivity"), ("status", "open")))] == 1
    assert (
        samples[("areawatch_open_incidents", (("kind", "outage"), ("status", "acknowledged")))] == 1
    )
    assert samples[("areawatch_pending_notifications", ())] == 2  # the three sent asks are not
    assert samples[("areawatch_last_ingest_age_seconds", (("kind", "readings"),))] == 30 * 60
    assert samples[("areawatch_last_ingest_age_seconds", (("kind", "tv"),))] == 600 * 60
    # An ingest that never finished says nothing about freshness.
    assert ("areawatch_last_ingest_age_seconds", (("kind", "contacts"),)) not in samples


def test_resolved_incidents_are_not_counted_as_open(engine, story, client):
    with Session(engine) as session:
        incident = session.get(Incident, story.incident_id)
        incident.status = "resolved"
        session.add(incident)
        session.commit()
    samples = _samples(client.get("/metrics").text)
    assert not [key for key in samples if key[0] == "areawatch_open_incidents"]


def test_metrics_report_the_database_down_instead_of_failing(tmp_path, clock):
    with _unreachable_app(tmp_path, clock) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    samples = _samples(response.text)
    assert samples == {("areawatch_up", ()): 0}
