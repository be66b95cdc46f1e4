"""``areawatch run``: the jobs of the crontab, in one long-running process.

APScheduler 3's ``BlockingScheduler`` keeps its jobs in the application's own database
(``apscheduler_jobs``, created by the job store itself), so a restart after downtime finds the
missed runs and, coalesced, runs each once. Only one scheduler may run per database: it holds a
``SchedulerLease`` row, taken by a guarded update (free, or not heartbeated for
``lease_stale_seconds``) and heartbeated by a thread of its own. A second instance refuses to
start while the first is alive; after a ``kill -9`` it takes over once the lease went stale.
SIGTERM and SIGINT let the job in hand finish, then release the lease. The detector state held
in memory (``watch.resident``) is written to a snapshot file on stopping and read back on starting
(``watch.resident_snapshot``), or, without a snapshot folder, written to the database on stopping.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from data.tables import SchedulerLease
from watch import logs
from watch.app import App
from watch.resident import ResidentStates
from watch.resident_snapshot import database_of, restore_snapshot, save_snapshot
from watch.settings import resident_snapshot_dir

logger = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
JOBS_TABLE = "apscheduler_jobs"
EXIT_LEASE_LOST = 3
_LEASE = SchedulerLease.__table__


class LeaseHeld(RuntimeError):
    """Another scheduler holds the lease and is alive."""


# -- the lease ------------------------------------------------------------------------------
def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire_lease(
    engine: Engine, *, holder: str, now: datetime, stale_after: timedelta, name: str = LEASE_NAME
) -> bool:
    """Take the lease if it is free, stale, or already ours; True if we hold it now."""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(_LEASE).values(name=name, holder=holder, acquired_at=now, heartbeat_at=now)
            )
        return True
    except IntegrityError:
        pass  # the row exists: compete for it with one guarded update
    with engine.begin() as connection:
        taken = connection.execute(
            update(_LEASE)
            .where(
                _LEASE.c.name == name,
                or_(
                    _LEASE.c.holder.is_(None),
                    _LEASE.c.holder == holder,
                    _LEASE.c.heartbeat_at.is_(None),
                    _LEASE.c.heartbeat_at < now - stale_after,
                ),
            )
            .values(holder=holder, acquired_at=now, heartbeat_at=now)
        )
        return taken.rowcount == 1


def heartbeat_lease(engine: Engine, *, holder: str, now: datetime, name: str = LEASE_NAME) -> bool:
    """Refresh our lease; False if it is no longer ours (another process took it over)."""
    with engine.begin() as connection:
        beaten = connection.execute(
            update(_LEASE)
            .where(_LEASE.c.name == name, _LEASE.c.holder == holder)
            .values(heartbeat_at=now)
        )
        return beaten.rowcount == 1


def release_lease(engine: Engine, *, holder: str, name: str = LEASE_NAME) -> bool:
    with engine.begin() as connection:
        released = connection.execute(
            update(_LEASE)
            .where(_LEASE.c.name == name, _LEASE.c.holder == holder)
            .values(holder=None)
        )
        return released.rowcount == 1


def read_lease(engine: Engine, name: str = LEASE_NAME) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(_LEASE).where(_LEASE.c.name == name)).mappings().first()
    return dict(row) if row else None


# -- the jobs -------------------------------------------------------------------------------
# Jobs are stored pickled in the database, so they name module-level functions and plain
# arguments; the running service (one per process) is found here when they fire.
_service: Service | None = None


def pull_job(source_name: str) -> None:
    """Pull one source, then detect (new data, or none when some was due)."""
    from watch.jobs import pull_source

    service = _running()
    with logs.job(f"pull:{source_name}"):
        report = pull_source(service.app, source_name)
        logger.info(
            "source %s: %d files loaded, %d rejected, %d waiting%s",
            source_name, len(report.files_loaded), len(report.files_rejected),
            len(report.files_waiting), f", error: {report.error}" if report.error else "",
            extra={
                "source": source_name, "files_loaded": len(report.files_loaded),
                "files_rejected": len(report.files_rejected), "rows_inserted": report.rows_inserted,
                "rows_quarantined": report.rows_quarantined, "error": report.error,
            },
        )  # fmt: skip
        with service.detect_lock:
            found = service.app.detect(resident=service.resident)
        logger.info(
            "detection: %d slots of %d households scored, %d incidents opened, %d resolved",
            found.slots_scored, found.households_scored, len(found.incidents_opened),
            len(found.incidents_resolved),
            extra={
                "slots_scored": found.slots_scored, "households_scored": found.households_scored,
                "incidents_opened": found.incidents_opened,
                "incidents_resolved": found.incidents_resolved,
            },
        )  # fmt: skip


def escalate_job() -> None:
    with logs.job("escalate"):
        tick = _running().app.escalate()
        if tick.steps_applied or tick.queued or tick.delivery.sent or tick.delivery.failed:
            logger.info(
                "escalation: %d steps applied, %d messages sent, %d failed",
                tick.steps_applied, tick.delivery.sent, tick.delivery.failed,
                extra={
                    "steps_applied": tick.steps_applied, "queued": tick.queued,
                    "sent": tick.delivery.sent, "failed": tick.delivery.failed,
                    "held": tick.held,
                },
            )  # fmt: skip


def maintain_job() -> None:
    from watch.jobs import maintain

    with logs.job("maintain"):
        maintain(_running().app)


def _running() -> Service:
    if _service is None:
        raise RuntimeError("a scheduler job ran outside 'areawatch run'")
    return _service


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: str
    trigger: BaseTrigger
    args: tuple[str, ...] = ()
    misfire_grace_seconds: int = 60


def job_specs(app: App) -> list[JobSpec]:
    """Every job the settings ask for: a pull per source, escalation, daily maintenance."""
    settings = app.settings
    specs = []
    for source in settings.sources:
        seconds = source.every_minutes * 60
        specs.append(
            JobSpec(
                id=f"pull:{source.name}",
                func="watch.scheduler:pull_job",
                trigger=IntervalTrigger(seconds=seconds, timezone=settings.timezone),
                args=(source.name,),
                misfire_grace_seconds=max(int(seconds), 1),
            )
        )
    escalate_every = settings.scheduler.escalate_seconds
    specs.append(
        JobSpec(
            id="escalate",
            func="watch.scheduler:escalate_job",
            trigger=IntervalTrigger(seconds=escalate_every, timezone=settings.timezone),
            misfire_grace_seconds=max(int(escalate_every), 1),
        )
    )
    hour, minute = (int(part) for part in settings.scheduler.maintain_at.split(":"))
    specs.append(
        JobSpec(
            id="maintain",
            func="watch.scheduler:maintain_job",
            trigger=CronTrigger(hour=hour, minute=minute, timezone=settings.timezone),
            misfire_grace_seconds=23 * 3600,
        )
    )
    return specs


def reconcile_jobs(scheduler: BaseScheduler, specs: list[JobSpec]) -> None:
    """Make the stored jobs match the settings.

    A job whose definition is unchanged keeps its stored next run time, so runs missed while
    the service was down are found (and coalesced into one); a changed job is replaced; a job
    no longer configured (a source removed) is deleted.
    """
    stored = {job.id: job for job in scheduler.get_jobs(jobstore="default")}
    for spec in specs:
        job = stored.pop(spec.id, None)
        if job is not None and _same(job, spec):
            continue
        scheduler.add_job(
            spec.func,
            trigger=spec.trigger,
            args=spec.args,
            id=spec.id,
            name=spec.id,
            jobstore="default",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=spec.misfire_grace_seconds,
        )
    for job_id in stored:
        scheduler.remove_job(job_id, jobstore="default")


def _same(job: Any, spec: JobSpec) -> bool:  # noqa: ANN401  (an APScheduler Job)
    return (
        job.func_ref == spec.func
        and tuple(job.args) == spec.args
        and str(job.trigger) == str(spec.trigger)
        and str(getattr(job.trigger, "timezone", "")) == str(spec.trigger.timezone)
        and job.misfire_grace_time == spec.misfire_grace_seconds
        and job.coalesce
        and job.max_instances == 1
    )


# -- the service ----------------------------------------------------------------------------
class _Scheduler(BlockingScheduler):
    def _process_jobs(self) -> float | None:
        # APScheduler's loop looks for due jobs once more after shutdown; a job found then could
        # not run, yet its run would count as done. A stopped scheduler looks for nothing.
        if self.state == STATE_STOPPED:
            return None
        return super()._process_jobs()


class Service:
    """One running scheduler: the app, its lease, and how it stops."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.holder = new_holder()
        self.detect_lock = threading.Lock()
        self.resident = resident_states(app)
        # Where the held state goes when the service stops, and comes back from when it starts.
        self.snapshots = resident_snapshot_dir(app.settings) if self.resident is not None else None
        self.lease_lost = False
        self._stopping = threading.Event()
        self._stop_requested = threading.Event()
        self._stopper: threading.Thread | None = None
        self.scheduler = _Scheduler(
            jobstores={
                "default": SQLAlchemyJobStore(engine=app.engine, tablename=JOBS_TABLE),
            },
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=app.settings.timezone,
        )

    def run(self) -> int:
        """Hold the lease, run the jobs until told to stop; the exit status."""
        signals = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in signals}
        try:
            self._take_lease()
            return self._run_holding_lease()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _take_lease(self) -> None:
        engine = self.app.engine
        stale = timedelta(seconds=self.app.settings.scheduler.lease_stale_seconds)
        if not acquire_lease(
            engine, holder=self.holder, now=self.app.clock.now(), stale_after=stale
        ):
            lease = read_lease(engine) or {}
            raise LeaseHeld(
                f"another scheduler is running on this database ({lease.get('holder')}, "
                f"last heartbeat {lease.get('heartbeat_at')}); it may be taken over "
                f"{int(stale.total_seconds())} s after its last heartbeat"
            )
        logger.info("scheduler lease taken by %s", self.holder)

    def _run_holding_lease(self) -> int:
        global _service
        _service = self
        heart = threading.Thread(target=self._heartbeat, name="lease-heartbeat", daemon=True)
        heart.start()
        specs = job_specs(self.app)

        def started(_event: object) -> None:
            reconcile_jobs(self.scheduler, specs)
            if self._stop_requested.is_set():  # a signal came while we were starting
                self.stop()

        self.scheduler.add_listener(started, EVENT_SCHEDULER_STARTED)
        try:
            self._restore_resident()
            if not self._stop_requested.is_set():
                self.scheduler.start()
            if self._stopper is not None:
                self._stopper.join()  # the jobs in hand have finished
        finally:
            self._stopping.set()
            heart.join(timeout=5)
            _service = None
            if not self.lease_lost:
                self._keep_resident()
                release_lease(self.app.engine, holder=self.holder)
                logger.info("scheduler lease released by %s", self.holder)
        return EXIT_LEASE_LOST if self.lease_lost else 0

    def _restore_resident(self) -> None:
        """Take back the state the previous process held, from its snapshot: only now, holding
        the lease, so a second instance that may not run never reads (or writes) one."""
        if self.resident is not None and self.snapshots is not None:
            restore_snapshot(self.resident, self.snapshots, database=database_of(self.app.engine))

    def _keep_resident(self) -> None:
        """Keep the state held in memory for the next start: as a snapshot when there is a
        folder for one (the database keeps older, consistent checkpoints), else in the database.
        """
        if self.resident is None:
            return
        if self.snapshots is not None:
            try:
                with self.detect_lock:
                    written = save_snapshot(
                        self.resident,
                        self.snapshots,
                        database=database_of(self.app.engine),
                        now=self.app.clock.now(),
                    )
            except OSError as error:
                logger.warning(
                    "resident snapshot not written (%s): writing the state to the database", error
                )
            else:
                logger.info(
                    "resident snapshot of %d households written on stopping (%d MB)",
                    written.households, written.bytes // 2**20,
                )  # fmt: skip
                return
        self._flush_resident()

    def _flush_resident(self) -> None:
        """Write the state held in memory before letting go (a crash loses only time: the next
        process re-scores from the last checkpoints)."""
        if self.resident is None or not len(self.resident):
            return
        try:
            with self.detect_lock:
                written = self.resident.flush(
                    self.app.engine, self.app.clock.now(), everything=True
                )
            logger.info("detector state of %d households written on stopping", written)
        except SQLAlchemyError as error:
            logger.warning("detector state not written on stopping (re-scored on start): %s", error)

    def stop(self) -> None:
        """Stop taking new jobs, let running ones finish, then return from ``run``."""
        self._stop_requested.set()
        if self._stopper is not None or not self.scheduler.running:
            return
        self.scheduler.pause()
        # Shutting down waits for running jobs: not inside a signal handler, but beside it.
        self._stopper = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True})
        self._stopper.start()

    def _on_signal(self, signum: int, _frame: object) -> None:
        logger.info("signal %d: stopping after the jobs in hand", signum)
        self.stop()

    def _heartbeat(self) -> None:
        every = self.app.settings.scheduler.heartbeat_seconds
        while not self._stopping.wait(every):
            try:
                still_ours = heartbeat_lease(
                    self.app.engine, holder=self.holder, now=self.app.clock.now()
                )
            except SQLAlchemyError as error:
                # A database blip: try again; if it lasts, another instance may take over and
                # the next heartbeat that gets through finds the lease gone.
                logger.warning("scheduler heartbeat failed: %s", error)
                continue
            if not still_ours:
                logger.error("scheduler lease was taken over by another process; stopping")
                self.lease_lost = True
                os.kill(os.getpid(), signal.SIGTERM)
                return


def resident_states(app: App) -> ResidentStates | None:
    """The memory for quiet households' state this scheduler keeps, if the settings want one
    (only for scoring in this process: a Dask cluster's workers hold no state between runs)."""
    detection = app.settings.detection
    if detection.resident_flush_minutes <= 0 or detection.engine != "local":
        return None
    return ResidentStates(flush_every=timedelta(minutes=detection.resident_flush_minutes))


def run_service(app: App) -> int:
    """Run the scheduler in the foreground until SIGTERM/SIGINT; raise ``LeaseHeld`` if taken."""
    return Service(app).run()
