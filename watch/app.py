"""The application object: one place that wires settings, database, clock, detectors and channels.

Commands, the scheduler and the demo all go through ``App`` so that they behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from data.db import init_db, make_engine
from data.partitions import ensure_reading_partitions
from data.tables import Household
from notify.channels.base import Channel
from notify.channels.console import ConsoleChannel
from watch.clock import Clock, SystemClock, clock_from_environment
from watch.detect import DetectReport, Outcome, Verdict, run_detection
from watch.engines import open_engine
from watch.settings import Settings

if TYPE_CHECKING:
    from watch.resident import ResidentStates

# Outcomes that mean "that was ordinary life"; needed_help and other keep the stretch unlearned.
VOUCHED_OUTCOMES = ("fine", "away", "false_alarm")
OUTCOME_MEMORY = timedelta(days=7)


@dataclass
class App:
    settings: Settings
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)
    channels: dict[str, Channel] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        clock: Clock | None = None,
        channels: dict[str, Channel] | None = None,
    ) -> App:
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            clock=clock or clock_from_environment(),
            channels=channels if channels is not None else _channels_for(settings),
        )

    def init_db(self) -> None:
        init_db(self.engine)
        # On a partitioned PostgreSQL ``reading``, this month's and the coming months'
        # partitions exist from the start, not only after the first nightly maintenance.
        ensure_reading_partitions(
            engine=self.engine,
            now=self.clock.now(),
            months_ahead=self.settings.maintenance.reading_partitions_ahead_months,
        )

    # -- ingest -----------------------------------------------------------------------------
    def ingest(self, kind: str, path: Path, tz: str | None = None):  # noqa: ANN201
        from data import ingest

        now = self.clock.now()
        if kind == "readings":
            return ingest.ingest_readings(engine=self.engine, path=path, now=now, tz=tz)
        if kind == "tv":
            return ingest.ingest_tv(engine=self.engine, path=path, now=now, tz=tz)
        if kind == "roster":
            header = _header(path)
            if "role" in header:
                return ingest.ingest_contacts(engine=self.engine, path=path, now=now)
            return ingest.ingest_households(engine=self.engine, path=path, now=now)
        raise ValueError(f"unknown kind of file {kind!r}")

    # -- detect -----------------------------------------------------------------------------
    def detect(self, resident: ResidentStates | None = None) -> DetectReport:
        """Score what has arrived; ``resident``: the quiet households' state held in memory
        (``watch.resident``, the long-running scheduler's), else every state is read and
        written back."""
        detection = self.settings.detection
        with open_engine(
            detection.engine, detection.scheduler, vectorised=detection.vectorised
        ) as scoring:
            return run_detection(
                engine=self.engine,
                now=self.clock.now(),
                data_grace=timedelta(minutes=detection.data_grace_minutes),
                hooks=_AppIncidentHooks(
                    Path(self.settings.policies_dir) if self.settings.policies_dir else None
                ),
                scoring=scoring,
                resident=resident,
            )

    # -- escalate ---------------------------------------------------------------------------
    def escalate(self):  # noqa: ANN201
        from notify.escalation import escalation_tick

        return escalation_tick(engine=self.engine, now=self.clock.now(), channels=self.channels)

    def status(self):  # noqa: ANN201
        from watch.views import collect_status

        return collect_status(self.engine, self.clock.now())


class _AppIncidentHooks:
    """Detection's view of incidents: notify's engine, policies and silences."""

    def __init__(self, policies_dir: Path | None = None) -> None:
        self.policies_dir = policies_dir

    def open(
        self, session: Session, household: Household, verdict: Verdict, now: datetime
    ) -> int | None:
        from notify.escalation import open_incident
        from notify.policy_store import policy_for

        incident, created = open_incident(
            session=session,
            household_id=household.id,
            kind=verdict.kind,
            severity=verdict.severity.value,
            reason=verdict.reason,
            score=verdict.score,
            since=verdict.since,
            now=now,
            policy=policy_for(
                session, household.organisation_id, household.policy, self.policies_dir
            ),
        )
        return incident.id if created else None

    def close(self, session: Session, household: Household, kind: str, now: datetime) -> int | None:
        from notify.escalation import close_on_recovery

        return close_on_recovery(session=session, household_id=household.id, kind=kind, now=now)

    def silenced(self, session: Session, now: datetime) -> set[str]:
        from notify.silences import silenced_households

        return silenced_households(session, now)

    def vouched_outcomes(self, session: Session, now: datetime) -> dict[str, list[Outcome]]:
        from data.tables import Incident, IncidentEvent

        recent = session.exec(
            select(Incident.id, Incident.household_id, Incident.since, Incident.outcome).where(
                Incident.kind == "inactivity",
                Incident.status == "resolved",
                col(Incident.outcome).in_(VOUCHED_OUTCOMES),
                col(Incident.resolved_at) >= now - OUTCOME_MEMORY,
                col(Incident.since).is_not(None),
            )
        ).all()
        if not recent:
            return {}
        # Only people vouch: an incident closed because activity resumed taught us nothing.
        automatic = {
            event.incident_id
            for event in session.exec(
                select(IncidentEvent).where(
                    IncidentEvent.kind == "resolved",
                    col(IncidentEvent.incident_id).in_([r[0] for r in recent]),
                )
            )
            if (event.detail or {}).get("note") == "activity resumed"
        }
        by_household: dict[str, list[Outcome]] = {}
        for incident_id, household_id, since, outcome in recent:
            if incident_id not in automatic:
                by_household.setdefault(household_id, []).append(
                    Outcome(incident_id, since, outcome)
                )
        return by_household

    def activity_seen(
        self, session: Session, household: Household, activity_at: datetime, now: datetime
    ) -> None:
        from notify.silences import end_silences_on_activity

        end_silences_on_activity(
            session=session, household_id=household.id, now=now, activity_at=activity_at
        )


def _channels_for(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {"console": ConsoleChannel()}
    if settings.channel == "sms":
        from notify.channels.twilio_sms import TwilioSmsChannel
        from notify.channels.twilio_voice import TwilioVoiceChannel

        twilio = settings.twilio
        common = {
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "from_number": twilio.from_number,
            "base_url": twilio.base_url,
            "status_callback": twilio.status_callback,
        }
        # Keypresses come back to our own webhook, at the address Twilio already calls.
        callback = twilio.status_callback
        gather = callback.rsplit("/twilio/", 1)[0] + "/twilio/voice/gather" if callback else None
        channels["sms"] = TwilioSmsChannel(**common)
        channels["voice"] = TwilioVoiceChannel(**common, gather_url=gather)
    else:
        channels["sms"] = channels["voice"] = ConsoleChannel()
    smtp = settings.smtp
    if smtp.host:
        from notify.channels.email import EmailChannel

        channels["email"] = EmailChannel(
            host=smtp.host,
            port=smtp.port,
            sender=smtp.sender,
            username=smtp.username,
            password=smtp.password,
            starttls=smtp.starttls,
            timeout=smtp.timeout,
        )
    return channels


def _header(path: Path) -> set[str]:
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        return set(pq.read_schema(path).names)
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return {c.strip() for c in handle.readline().split(",")}
