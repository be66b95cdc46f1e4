"""The scheduler's stored jobs follow the settings and keep their missed runs across a restart."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from watch.app import App
from watch.clock import FrozenClock
from watch.scheduler import JOBS_TABLE, job_specs, reconcile_jobs
from watch.settings import SchedulerSettings, Settings, SourceSettings


def _app(database, drop, *, escalate_seconds=60, sources=("meter",), every_minutes=30) -> App:
    settings = Settings(
        database_url=database.url,
        sources=tuple(
            SourceSettings(name=n, kind="readings", path=str(drop), every_minutes=every_minutes)
            for n in sources
        ),
        scheduler=SchedulerSettings(escalate_seconds=escalate_seconds),
    )
    return App.from_settings(settings, clock=FrozenClock(datetime.now(UTC)), channels={})


def _paused_scheduler(app: App) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=app.engine, tablename=JOBS_TABLE)},
        timezone=app.settings.timezone,
    )
    scheduler.start(paused=True)
    return scheduler


def test_every_job_is_coalesced_and_runs_one_at_a_time(database, drop):
    app = _app(database, drop)
    scheduler = _paused_scheduler(app)
    reconcile_jobs(scheduler, job_specs(app))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    scheduler.shutdown(wait=False)

    assert set(jobs) == {"pull:meter", "escalate", "maintain"}
    assert all(job.coalesce and job.max_instances == 1 for job in jobs.values())
    assert jobs["pull:meter"].misfire_grace_time == 30 * 60
    assert str(jobs["maintain"].trigger).startswith("cron[hour='3', minute='0'")


def test_after_downtime_an_unchanged_job_keeps_its_missed_run(database, drop):
    app = _app(database, drop, every_minutes=0.01)
    before = _paused_scheduler(app)
    reconcile_jobs(before, job_specs(app))
    missed = before.get_job("pull:meter").next_run_time
    before.shutdown(wait=False)
    time.sleep(1.0)  # the service is down while its next pull falls due

    after = _paused_scheduler(app)
    reconcile_jobs(after, job_specs(app))
    pull = after.get_job("pull:meter")
    after.shutdown(wait=False)

    # Still due: on start it runs once (coalesced), instead of waiting a whole interval.
    assert pull.next_run_time == missed < datetime.now(UTC)


def test_a_changed_job_is_replaced_and_a_removed_source_loses_its_job(database, drop):
    first = _app(database, drop, sources=("meter", "catv"))
    scheduler = _paused_scheduler(first)
    reconcile_jobs(scheduler, job_specs(first))
    scheduler.shutdown(wait=False)

    changed = _app(database, drop, escalate_seconds=20, sources=("meter",))
    scheduler = _paused_scheduler(changed)
    reconcile_jobs(scheduler, job_specs(changed))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    scheduler.shutdown(wait=False)

    assert set(jobs) == {"pull:meter", "escalate", "maintain"}
    assert jobs["escalate"].trigger.interval == timedelta(seconds=20)
