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

from data.db import session_scope
from data.sources import DropFolderSource, PullReport, Source, record_error
from data.sources.http_json import HttpFetcher, HttpJsonSource
from data.sources.ngsi import NgsiV2Source
from data.tables import Ingest, QuarantinedRow, ReadingCorrection
from watch.app import App
from watch.settings import Settings, SourceSettings

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
    if source.type in {"http_json", "ngsi_v2"}:
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
    """Pull every configured source once, in the order of the settings."""
    return [pull_source(app, source.name) for source in app.settings.sources]


@dataclass(frozen=True)
class MaintenanceReport:
    ingests_deleted: int
    quarantined_rows_deleted: int
    retention_days: int


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
    logger.info("maintenance: deleted %d ingests and %d quarantined rows", ingests, quarantined)
    return MaintenanceReport(
        ingests_deleted=ingests, quarantined_rows_deleted=quarantined, retention_days=days
    )
