"""The service's jobs, the same whether cron runs them one-shot or ``areawatch run`` schedules them.

Each is safe to re-run and to overlap with itself: pulls are idempotent and a drop folder is
locked while pulled; maintenance deletes by age.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from data.db import session_scope
from data.partitions import (
    PartitionReport,
    drop_old_readings,
    ensure_reading_partitions,
    retention_start,
)
from data.sources import DropFolderSource, PullReport, Source, record_error
from data.sources.green_button import GreenButtonSource
from data.sources.http_json import HttpFetcher, HttpJsonSource
from data.sources.ngsi import NgsiV2Source
from data.tables import Ingest, QuarantinedRow, ReadingCorrection
from watch.app import App
from watch.settings import Settings, SourceSettings
from watch.source_health import StalenessReport, check_sources

logger = logging.getLogger(__name__)


def build_source(source: SourceSettings, settings: Settings) -> Source:
    """The source a ``[[sources]]`` table describes."""
    if source.type == "drop_folder":
        return DropFolderSource(
            name=source.name,
            kind=source.kind,
            folder=Path(source.path),
            settle_seconds=source.settle_seconds,
            archive=source.archive,
            rejected=source.rejected,
            tz=source.tz,
            archive_zone=settings.timezone,
        )
    if source.type in {"http_json", "ngsi_v2", "green_button"}:
        return _build_remote_source(source)
    raise ValueError(f"unknown source type {source.type!r}")


def _build_remote_source(source: SourceSettings) -> Source:
    token = None
    if source.token_env:
        # Read at pull time, so a rotated token needs no restart; its value is never logged.
        token = os.environ.get(source.token_env)
        if not token:
            raise ValueError(f"environment variable {source.token_env} (the token) is not set")
    fetcher = HttpFetcher(token=token, timeout_seconds=source.timeout_seconds)
    if source.type == "green_button":
        return GreenButtonSource(
            name=source.name,
            url=str(source.url),
            fetcher=fetcher,
            usage_points=dict(source.usage_points or {}),
            lookback=timedelta(minutes=source.lookback_minutes),
        )
    if source.type == "http_json":
        return HttpJsonSource(
            name=source.name,
            kind=source.kind,
            url=str(source.url),
            fetcher=fetcher,
            page_size=source.page_size,
            tz=source.tz,
        )
    return NgsiV2Source(
        name=source.name,
        url=str(source.url),
        entity_type=source.entity_type,
        attribute=source.attribute,
        fiware_service=source.fiware_service,
        fiware_service_path=source.fiware_service_path,
        fetcher=fetcher,
        page_size=min(source.page_size, 1000),  # Orion's own maximum
        tz=source.tz,
    )


def pull_source(app: App, name: str) -> PullReport:
    """Pull the configured source called ``name`` once, then check every source for staleness."""
    report = _pull_one(app, name)
    check_stale_sources(app)
    return report


def _pull_one(app: App, name: str) -> PullReport:
    """Pull the configured source called ``name`` once; a crash becomes the report's error."""
    configured = {source.name: source for source in app.settings.sources}
    if name not in configured:
        return PullReport(source=name, error=f"no source named {name!r} in the settings")
    now = app.clock.now()
    try:
        return build_source(configured[name], app.settings).pull(engine=app.engine, now=now)
    except Exception as error:  # noqa: BLE001  (one broken source must not stop the others)
        logger.exception("source %s: pull crashed", name)
        message = f"{type(error).__name__}: {error}"
        try:
            record_error(app.engine, source=name, error=message, now=now)
        except Exception:  # noqa: BLE001
            logger.warning("source %s: could not record the error", name)
        return PullReport(source=name, error=message)


def pull_all(app: App) -> list[PullReport]:
    """Pull every configured source once, in the order of the settings; then check staleness."""
    reports = [_pull_one(app, source.name) for source in app.settings.sources]
    check_stale_sources(app)
    return reports


def check_stale_sources(app: App) -> StalenessReport | None:
    """Open (or close) operator incidents for sources with no success for too long.

    Runs after pulls, so a source whose own pulls hang is still caught by the others'. A failed
    check is logged, never raised: it must not turn a good pull into a failed job.
    """
    try:
        return check_sources(
            engine=app.engine,
            sources=app.settings.sources,
            now=app.clock.now(),
            timezone=app.settings.timezone,
        )
    except SQLAlchemyError as error:
        logger.warning("source staleness check failed: %s", type(error).__name__)
        return None


@dataclass(frozen=True)
class MaintenanceReport:
    ingests_deleted: int
    quarantined_rows_deleted: int
    retention_days: int
    # Readings past [maintenance] readings_retention_days (whole months), and partitions.
    readings_deleted: int = 0
    reading_partitions_created: tuple[str, ...] = ()
    reading_partitions_dropped: tuple[str, ...] = ()


def maintain(app: App) -> MaintenanceReport:
    """Delete ingest records and quarantined rows older than the retention (daily job).

    Corrections keep their old and new values; only their link to a deleted ingest is cleared.
    """
    days = app.settings.maintenance.retention_days
    cutoff = app.clock.now() - timedelta(days=days)
    old = select(Ingest.id).where(Ingest.started_at < cutoff).scalar_subquery()
    with session_scope(app.engine) as session:
        quarantined = session.execute(
            delete(QuarantinedRow).where(QuarantinedRow.ingest_id.in_(old))
        ).rowcount
        session.execute(
            update(ReadingCorrection)
            .where(ReadingCorrection.ingest_id.in_(old))
            .values(ingest_id=None)
        )
        ingests = session.execute(delete(Ingest).where(Ingest.started_at < cutoff)).rowcount
    logger.info(
        "maintenance: deleted %d ingests and %d quarantined rows",
        ingests,
        quarantined,
        extra={"ingests_deleted": ingests, "quarantined_rows_deleted": quarantined},
    )
    readings = _maintain_readings(app)
    return MaintenanceReport(
        ingests_deleted=ingests,
        quarantined_rows_deleted=quarantined,
        retention_days=days,
        readings_deleted=readings.rows_deleted,
        reading_partitions_created=tuple(readings.created),
        reading_partitions_dropped=tuple(readings.dropped),
    )


def _maintain_readings(app: App) -> PartitionReport:
    """Old readings out by whole months (if a retention is set); coming months' partitions in."""
    settings = app.settings.maintenance
    now = app.clock.now()
    keep_from = None
    if settings.readings_retention_days is not None:
        keep_from = retention_start(now, settings.readings_retention_days)
    report = ensure_reading_partitions(
        engine=app.engine,
        now=now,
        months_ahead=settings.reading_partitions_ahead_months,
        keep_from=keep_from,
    )
    if keep_from is not None:
        dropped = drop_old_readings(engine=app.engine, keep_from=keep_from)
        report.dropped, report.rows_deleted = dropped.dropped, dropped.rows_deleted
    logger.info(
        "maintenance: %d readings deleted; reading partitions created %s, dropped %s",
        report.rows_deleted, report.created, report.dropped,
    )  # fmt: skip
    return report
