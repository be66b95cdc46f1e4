"""The escalation engine: dedupe, frozen policies, quiet hours, outages, races."""

import threading
from datetime import UTC, datetime, time, timedelta

from sqlmodel import Session, col, select

from data.db import make_engine
from data.tables import Household, Incident, IncidentEvent, Notification
from data.tables.incidents import IncidentStatus
from notify.escalation import (
    apply_plan,
    close_on_recovery,
    escalation_tick,
    open_incident,
    plan_incident,
    resolve,
)
from notify.policy import load_policy
from notify.quiet_hours import in_quiet_hours
from notify.replies import handle_inbound_sms

STAFF_ONLY = """
name = "staff-only"
[[steps]]
kind = "notify_staff"
wait = 30
[[steps]]
kind = "repeat_staff"
wait = 30
"""


def _events(engine, incident_id, kind):
    with Session(engine) as session:
        return session.exec(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == kind)
            .order_by(col(IncidentEvent.id))
        ).all()


def test_a_second_alert_for_the_same_household_returns_the_open_incident(engine, clock, roster):
    kwargs = dict(
        household_id="h1", kind="inactivity", severity="high", reason="quiet", score=0.9, since=None
    )
    with Session(engine) as session:
        first, created = open_incident(session=session, now=clock.now(), **kwargs)
        first_id = first.id
        session.commit()
    with Session(engine) as session:
        again, created_again = open_incident(
            session=session, now=clock.now() + timedelta(minutes=30), **kwargs
        )
        outage, outage_created = open_incident(
            session=session, now=clock.now(), **{**kwargs, "kind": "outage"}
        )
        assert (created, created_again, outage_created) == (True, False, True)
        assert again.id == first_id and outage.id != first_id
        session.commit()
    assert resolve(engine=engine, incident_id=first_id, outcome="away", now=clock.now())
    with Session(engine) as session:
        reopened, created = open_incident(session=session, now=clock.now(), **kwargs)
        assert created and reopened.id != first_id


def test_two_detectors_opening_at_once_get_one_incident_and_keep_their_own_work(
    database, clock, roster
):
    barrier = threading.Barrier(2, timeout=10)
    results = []

    def worker(n):
        engine = make_engine(database.url)
        with Session(engine) as session:
            barrier.wait()
            # The detector's own work in the same transaction must survive losing the race.
            session.add(Household(id=f"other-{n}", name="x"))
            incident, created = open_incident(
                session=session,
                household_id="h1",
                kind="inactivity",
                severity="high",
                reason="quiet",
                score=0.9,
                since=None,
                now=clock.now(),
            )
            session.commit()
            results.append((incident.id, created))
        engine.dispose()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(created for _, created in results) == [False, True]
    assert len({incident_id for incident_id, _ in results}) == 1
    with Session(database.engine) as session:
        assert session.get(Household, "other-0") and session.get(Household, "other-1")


def test_recovery_closes_an_unclaimed_incident_as_fine_and_tells_who_was_asked(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = open_for()
    tick()
    tick(minutes=15)
    with Session(engine) as session:
        closed = close_on_recovery(
            session=session, household_id="h1", kind="inactivity", now=clock.now()
        )
        session.commit()
    assert closed == incident_id
    tick(minutes=1)
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
    assert (incident.status, incident.outcome) == (IncidentStatus.resolved, "fine")
    assert [(roster.by_phone(m.to), m.purpose) for m in sms.sent] == [
        ("resident", "ask"),
        ("family", "ask"),
        ("family", "inform"),
    ]


def test_recovery_leaves_a_claimed_incident_to_the_person_going_there(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = open_for()
    for minutes in (0, 15, 30):
        tick(minutes=minutes)
    phone = roster.volunteer_a.phone
    handle_inbound_sms(engine=engine, from_phone=phone, body="1", now=clock.now())
    with Session(engine) as session:
        closed = close_on_recovery(
            session=session, household_id="h1", kind="inactivity", now=clock.now()
        )
        session.commit()
    assert closed is None
    with Session(engine) as session:
        assert session.get(Incident, incident_id).status == IncidentStatus.claimed


def test_an_incident_keeps_the_policy_it_opened_with(
    engine, clock, roster, sms, open_for, tick, tmp_path
):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        '[[steps]]\nkind = "notify_resident"\nwait = 60\n'
        '[[steps]]\nkind = "notify_family"\nwait = 30\n'
    )
    incident_id = open_for(policy=load_policy(policy_file))
    tick()
    # The operator shortens the wait; the incident in flight still waits its 60 minutes.
    policy_file.write_text(policy_file.read_text().replace("wait = 60", "wait = 5"))
    edited = load_policy(policy_file)
    assert edited.steps[0].wait == 5
    tick(minutes=30)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]
    with Session(engine) as session:
        assert session.get(Incident, incident_id).policy_snapshot["steps"][0]["wait"] == 60
    tick(minutes=30)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "family"]


def test_a_family_member_in_quiet_hours_is_skipped_and_the_chain_moves_on(
    engine, clock, make_household, make_contact, sms, open_for, tick
):
    make_household("h1")
    make_contact("h1", "resident", "+819011110001")
    # 09:00-10:00 Tokyo: the clock says 09:00 in Tokyo.
    family = make_contact("h1", "family", "+819011110002", quiet=(time(9, 0), time(10, 0)))
    volunteer = make_contact("h1", "volunteer", "+819011110003")
    incident_id = open_for()
    tick()
    tick(minutes=15)
    assert [m.to for m in sms.sent] == ["+819011110001", volunteer.phone]
    skipped = _events(engine, incident_id, "skipped")
    assert [(e.contact_id, e.detail["reason"]) for e in skipped] == [(family.id, "quiet_hours")]
    assert [e.detail["role"] for e in _events(engine, incident_id, "unreachable")] == ["family"]


def test_staff_are_asked_even_in_their_quiet_hours(
    engine, clock, make_household, make_contact, sms, open_for, tick
):
    make_household("h1")
    staff = make_contact("h1", "staff", "+819011110005", quiet=(time(8, 0), time(18, 0)))
    open_for(policy=load_policy(STAFF_ONLY))
    tick()
    assert [m.to for m in sms.sent] == [staff.phone]


def test_quiet_hours_follow_the_households_daylight_saving_time():
    night = (time(22, 0), time(7, 0))
    # New York, 9 March 2025: clocks jump from 02:00 EST to 03:00 EDT. 11:30 UTC is 07:30 EDT
    # (awake); a fixed EST offset would have said 06:30 (quiet).
    assert not in_quiet_hours(*night, "America/New_York", datetime(2025, 3, 9, 11, 30, tzinfo=UTC))
    assert in_quiet_hours(*night, "America/New_York", datetime(2025, 3, 8, 11, 30, tzinfo=UTC))


def test_an_outage_only_alerts_the_operator_console(
    engine, clock, roster, sms, console, open_for, tick, timeline
):
    incident_id = open_for(kind="outage")
    for minutes in (0, 15, 30, 60, 120):
        tick(minutes=minutes)
    assert sms.sent == []
    assert [(m.to, m.purpose) for m in console.sent] == [("operator", "alert")]
    assert "山田" not in console.sent[0].body
    assert timeline(incident_id) == [("opened", "-"), ("operator_alerted", "-"), ("sent", "-")]


def test_it_records_no_volunteer_reachable_and_goes_to_staff(
    engine, clock, make_household, make_contact, sms, open_for, tick
):
    make_household("h1")
    make_contact("h1", "resident", "+819011110001")
    make_contact("h1", "family", "+819011110002")
    staff = make_contact("h1", "staff", "+819011110005")
    incident_id = open_for()
    tick()
    tick(minutes=15)
    tick(minutes=30)
    assert sms.sent[-1].to == staff.phone
    assert [e.detail["role"] for e in _events(engine, incident_id, "unreachable")] == ["volunteer"]


def test_staff_are_reminded_every_30_minutes_until_one_acknowledges(
    engine, clock, make_household, make_contact, sms, open_for, tick
):
    make_household("h1")
    staff = make_contact("h1", "staff", "+819011110005")
    incident_id = open_for(policy=load_policy(STAFF_ONLY))
    tick()
    tick(minutes=30)
    tick(minutes=30)
    tick(minutes=29)
    assert [m.purpose for m in sms.sent] == ["ask", "reminder", "reminder"]
    reply = handle_inbound_sms(engine=engine, from_phone=staff.phone, body="1", now=clock.now())
    assert reply == "ありがとうございます。確認をお願いします。"
    tick(minutes=1)
    tick(minutes=60)
    assert len(sms.sent) == 3
    with Session(engine) as session:
        assert session.get(Incident, incident_id).status == IncidentStatus.acknowledged


def test_two_schedulers_planning_the_same_step_apply_it_once(engine, clock, roster, open_for):
    incident_id = open_for()
    first = plan_incident(engine, incident_id, clock.now())
    second = plan_incident(engine, incident_id, clock.now())
    assert apply_plan(engine, first, clock.now()) is True
    assert apply_plan(engine, second, clock.now()) is False
    with Session(engine) as session:
        assert len(session.exec(select(Notification)).all()) == 1
        assert (
            len(session.exec(select(IncidentEvent).where(IncidentEvent.kind == "step")).all()) == 1
        )


def test_two_engines_ticking_at_once_send_one_set_of_messages(
    database, clock, roster, sms, channels, open_for
):
    open_for()
    barrier = threading.Barrier(2, timeout=10)
    reports = []

    def worker():
        engine = make_engine(database.url)
        barrier.wait()
        reports.append(escalation_tick(engine=engine, now=clock.now(), channels=channels))
        engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]
    assert sum(r.steps_applied for r in reports) == 1
    assert sum(r.delivery.sent for r in reports) == 1


def test_the_database_refuses_a_second_open_incident_without_breaking_the_transaction(
    engine, clock, roster, open_for
):
    from notify.escalation import _insert_unless_open

    first = open_for()
    with Session(engine) as session:
        values = dict(
            household_id="h1",
            kind="inactivity",
            severity="high",
            status=IncidentStatus.open,
            reason="quiet",
            score=0.5,
            opened_at=clock.now(),
            since=None,
            policy_snapshot={},
            step_index=0,
            next_step_at=clock.now(),
            version=0,
        )
        assert _insert_unless_open(session, values) is None
        session.add(Household(id="still-here", name="x"))
        session.commit()
    with Session(engine) as session:
        assert session.get(Household, "still-here") is not None
        assert session.exec(select(Incident.id)).all() == [first]
