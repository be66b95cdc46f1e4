"""Silences: "in hospital until the 14th" mutes a household's inactivity escalation."""

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from data.tables import Incident, Silence
from data.tables.incidents import IncidentStatus
from notify.silences import (
    SilenceState,
    active_silences,
    create_silence,
    end_silences_on_activity,
    silence_state,
)


@pytest.fixture
def silence(engine, clock):
    def make(household_id="h1", *, starts=0, hours=24 * 7, reason="in hospital"):
        with Session(engine) as session:
            made = create_silence(
                session=session,
                household_id=household_id,
                reason=reason,
                starts_at=clock.now() + timedelta(minutes=starts),
                ends_at=clock.now() + timedelta(minutes=starts) + timedelta(hours=hours),
                created_by="staff:tanaka",
                now=clock.now(),
            )
            session.commit()
            return made.id

    return make


def _silence(engine, silence_id):
    with Session(engine) as session:
        return session.get(Silence, silence_id)


def test_a_silence_is_pending_then_active_then_expired(clock):
    now = clock.now()
    s = Silence(
        household_id="h1",
        reason="staying with family",
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=3),
        created_by="staff",
        created_at=now,
    )
    states = [silence_state(s, now + timedelta(hours=h)) for h in (0, 1, 2, 3)]
    assert states == ["pending", "active", "active", "expired"]
    s.ended_early_at = now + timedelta(hours=2)
    assert silence_state(s, now + timedelta(hours=2)) is SilenceState.expired
    assert silence_state(s, now + timedelta(hours=1)) is SilenceState.active


def test_a_silence_must_end_after_it_starts(engine, clock, roster):
    with Session(engine) as session, pytest.raises(ValueError, match="end after"):
        create_silence(
            session=session,
            household_id="h1",
            reason="x",
            starts_at=clock.now(),
            ends_at=clock.now(),
            created_by="staff",
            now=clock.now(),
        )


def test_an_active_silence_records_the_incident_but_sends_nothing(
    engine, clock, roster, sms, open_for, tick, timeline, silence
):
    silence()
    incident_id = open_for()
    for minutes in (0, 15, 30, 60, 120):
        tick(minutes=minutes)
    assert sms.sent == []
    assert timeline(incident_id) == [("opened", "-"), ("silenced", "-")]
    with Session(engine) as session:
        assert session.get(Incident, incident_id).status == IncidentStatus.open


def test_escalation_resumes_where_it_was_when_the_silence_expires(
    engine, clock, roster, sms, open_for, tick, timeline, silence
):
    incident_id = open_for()
    tick()  # the resident is asked...
    silence(starts=5, hours=1)  # ...then staff learn she is at the clinic for an hour
    tick(minutes=15)
    tick(minutes=30)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]
    tick(minutes=20)  # 10:05: the silence is over
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "family"]
    kinds = [kind for kind, _ in timeline(incident_id)]
    assert kinds.count("silenced") == 1 and kinds.count("resumed") == 1
    assert kinds.index("silenced") < kinds.index("resumed")


def test_a_silence_of_another_household_mutes_nothing_here(
    engine, clock, roster, make_household, sms, open_for, tick, silence
):
    make_household("h2")
    silence("h2")
    open_for()
    tick()
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]


def test_activity_ends_active_silences_early_but_keeps_planned_ones(engine, clock, roster, silence):
    now_active = silence(starts=-180)
    next_week = silence(starts=60 * 24 * 7, reason="short stay")
    with Session(engine) as session:
        assert end_silences_on_activity(session=session, household_id="h1", now=clock.now()) == 1
        session.commit()
    ended = _silence(engine, now_active)
    assert (ended.ended_early_at, ended.ended_reason) == (clock.now(), "activity resumed")
    assert silence_state(ended, clock.now()) is SilenceState.expired
    assert _silence(engine, next_week).ended_early_at is None
    with Session(engine) as session:
        assert active_silences(session, "h1", clock.now()) == []
        later = clock.now() + timedelta(days=8)
        assert [s.id for s in active_silences(session, "h1", later)] == [next_week]


def test_activity_just_after_a_silence_starts_is_the_resident_leaving_and_ends_nothing(
    engine, clock, roster, silence
):
    silence(starts=-30)
    with Session(engine) as session:
        assert end_silences_on_activity(session=session, household_id="h1", now=clock.now()) == 0
        assert len(active_silences(session, "h1", clock.now())) == 1


def test_a_silence_ended_by_activity_lets_a_held_incident_go_on_within_15_minutes(
    engine, clock, roster, sms, open_for, tick, silence
):
    silence(starts=-180)
    open_for()
    tick()
    tick(minutes=5)
    with Session(engine) as session:
        end_silences_on_activity(session=session, household_id="h1", now=clock.now())
        session.commit()
    tick(minutes=10)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]
    with Session(engine) as session:
        assert len(session.exec(select(Silence)).all()) == 1
