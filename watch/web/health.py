"""``/healthz`` for load balancers and ``/metrics`` for Prometheus.

The metrics are read from the database at scrape time (a custom collector on a registry of the
app's own), so they are never stale and several apps in one process never clash. They carry
counts only: no names, numbers or addresses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from data.tables.incidents import Incident, IncidentStatus, Notification, NotificationStatus
from data.tables.operations import SourceCursor
from data.tables.readings import Ingest
from watch.clock import Clock

logger = logging.getLogger(__name__)

router = APIRouter()


def database_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        logger.warning("health check: database unreachable (%s)", type(error).__name__)
        return False
    return True


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    if await run_in_threadpool(database_reachable, request.app.state.engine):
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "database unreachable"}, status_code=503)


class AreaWatchCollector(Collector):
    """Gauges read from the database on every scrape.

    ``areawatch_up`` is 0 (and the other gauges absent) when the database cannot be read, so a
    scrape still succeeds and the outage can be alerted on.
    """

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("areawatch_up", "1 when the database could be read for metrics")
        try:
            metrics = self._read()
        except SQLAlchemyError as error:
            logger.warning("metrics: database unreachable (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _read(self) -> list[Metric]:
        now = self.clock.now()
        incidents = GaugeMetricFamily(
            "areawatch_open_incidents",
            "Incidents not yet resolved, by kind and status",
            labels=["kind", "status"],
        )
        pending = GaugeMetricFamily(
            "areawatch_pending_notifications",
            "Notifications in the outbox waiting to be sent (including retries)",
        )
        ingest_age = GaugeMetricFamily(
            "areawatch_last_ingest_age_seconds",
            "Seconds since the last finished ingest, by kind of file",
            labels=["kind"],
        )
        with Session(self.engine) as session:
            for kind, status, count in session.exec(
                select(Incident.kind, Incident.status, func.count())
                .where(Incident.status != IncidentStatus.resolved)
                .group_by(Incident.kind, Incident.status)
                .order_by(Incident.kind, Incident.status)
            ):
                incidents.add_metric([kind, IncidentStatus(status).value], count)
            pending.add_metric(
                [],
                session.exec(
                    select(func.count()).where(
                        col(Notification.status) == NotificationStatus.pending
                    )
                ).one(),
            )
            for kind, finished in session.exec(
                select(Ingest.kind, func.max(Ingest.finished_at))
                .where(col(Ingest.finished_at).is_not(None))
                .group_by(Ingest.kind)
                .order_by(Ingest.kind)
            ):
                ingest_age.add_metric([kind], (now - finished).total_seconds())
            sources = _source_metrics(session, now)
        return [incidents, pending, ingest_age, *sources]


def _source_metrics(session: Session, now: datetime) -> list[Metric]:
    """Per source (by its configured name): lag, last success, and whether the last pull failed.

    A source that never succeeded has no lag or last-success sample, only ``last_pull_failed``;
    alert on ``absent()`` or on the ``source_stale`` incidents for it.
    """
    lag = GaugeMetricFamily(
        "areawatch_source_lag_seconds",
        "Seconds since the source's last successful pull",
        labels=["source"],
    )
    last_success = GaugeMetricFamily(
        "areawatch_source_last_success_timestamp_seconds",
        "Unix time of the source's last successful pull",
        labels=["source"],
    )
    failed = GaugeMetricFamily(
        "areawatch_source_last_pull_failed",
        "1 when the source's most recent pull recorded an error, else 0",
        labels=["source"],
    )
    for row in session.exec(select(SourceCursor).order_by(SourceCursor.source)):
        if row.last_success_at is not None:
            lag.add_metric([row.source], max(0.0, (now - row.last_success_at).total_seconds()))
            last_success.add_metric([row.source], row.last_success_at.timestamp())
        # A pull that loaded some pages and then failed records both at once: it failed.
        errored = row.last_error_at is not None and (
            row.last_success_at is None or row.last_error_at >= row.last_success_at
        )
        if row.last_error_at is not None or row.last_success_at is not None:
            failed.add_metric([row.source], 1 if errored else 0)
    return [lag, last_success, failed]


def metrics_registry(engine: Engine, clock: Clock) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AreaWatchCollector(engine, clock))
    return registry


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
