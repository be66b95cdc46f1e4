"""Sending the outbox: retries, invalid numbers, crashes mid-send, and two senders at once."""

import threading

import pytest
from sqlmodel import Session, col, select

from data.db import make_engine
from data.tables import Contact, IncidentEvent, Notification
from data.tables.incidents import NotificationStatus
from notify.channels import ChannelError, Message, SendResult
from notify.delivery import UNKNOWN_OUTCOME, deliver_pending
from notify.escalation import apply_plan, plan_incident


def _notifications(engine):
    with Session(engine) as session:
        return session.exec(select(Notification).order_by(col(Notification.id))).all()


def _event_kinds(engine, incident_id):
    with Session(engine) as session:
        return session.exec(
            select(IncidentEvent.kind)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(col(IncidentEvent.id))
        ).all()


def test_a_provider_500_is_retried_after_a_backoff_and_then_sent(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = open_for()
    sms.fail_next(ChannelError("twilio error 500 (HTTP 500)", permanent=False, code=500))
    report = tick()
    assert (report.delivery.sent, report.delivery.retrying) == (0, 1)
    [pending] = _notifications(engine)
    assert (pending.status, pending.attempts) == (NotificationStatus.pending, 1)
    assert pending.next_attempt_at == clock.now().replace(minute=1)
    tick(minutes=0.5)
    assert sms.sent == []  # still backing off
    tick(minutes=0.5)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]
    [sent] = _notifications(engine)
    assert (sent.status, sent.attempts) == (NotificationStatus.sent, 2)
    assert _event_kinds(engine, incident_id)[-2:] == ["send_retry", "sent"]


def test_a_message_that_keeps_failing_is_given_up_after_three_attempts_and_the_chain_moves_on(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = open_for()
    sms.fail_next(ChannelError("timeout", permanent=False, code="timeout"), times=3)
    tick()
    tick(minutes=1)
    tick(minutes=2)  # third failure: given up, 3 minutes into the resident's 15
    assert sms.sent == []
    [failed] = _notifications(engine)
    assert (failed.status, failed.attempts) == (NotificationStatus.failed, 3)
    kinds = _event_kinds(engine, incident_id)
    assert kinds.count("send_retry") == 2 and kinds.count("send_failed") == 1
    assert kinds[-1] == "hurried"
    with Session(engine) as session:
        assert (
            session.get(Contact, roster.resident.id).disabled_at is None
        )  # not the number's fault
    tick()
    assert [roster.by_phone(m.to) for m in sms.sent] == ["family"]


def test_an_invalid_number_disables_the_contact_and_the_chain_moves_on(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = open_for()
    tick()
    sms.fail_next(ChannelError("twilio error 21211", permanent=True, code=21211))
    tick(minutes=15)  # the family's number is refused
    with Session(engine) as session:
        family = session.get(Contact, roster.family.id)
        assert family.disabled_at == clock.now()
        assert "21211" in family.disabled_reason
    kinds = _event_kinds(engine, incident_id)
    assert {"send_failed", "contact_disabled", "hurried"} <= set(kinds)
    tick(minutes=1)  # no 30-minute wait for an answer that cannot come
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "volunteer_a"]


class _CrashingChannel:
    """A worker that dies mid-send: the provider may or may not have the message."""

    def send(self, message: Message) -> SendResult:
        raise RuntimeError("worker killed")


def test_a_message_stuck_in_sending_after_a_crash_is_not_sent_again(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = open_for()
    with pytest.raises(RuntimeError):
        tick(with_channels={"sms": _CrashingChannel()})
    [stuck] = _notifications(engine)
    assert stuck.status == NotificationStatus.sending
    tick(minutes=1)  # another worker, soon after: the send may still be in flight
    assert _notifications(engine)[0].status == NotificationStatus.sending
    tick(minutes=10)
    assert [roster.by_phone(m.to) for m in sms.sent] == []
    [failed] = _notifications(engine)
    assert (failed.status, failed.error) == (NotificationStatus.failed, UNKNOWN_OUTCOME)
    assert "delivery_unknown" in _event_kinds(engine, incident_id)
    tick(minutes=4)  # the chain itself goes on: the family is asked on time
    assert [roster.by_phone(m.to) for m in sms.sent] == ["family"]


def test_two_senders_at_once_send_each_message_once(database, clock, roster, sms, open_for):
    incident_id = open_for()
    # Write the step's outbox row without delivering it, as a tick does before it sends.
    plan = plan_incident(database.engine, incident_id, clock.now())
    assert apply_plan(database.engine, plan, clock.now())
    barrier = threading.Barrier(2, timeout=10)
    reports = []

    def worker():
        engine = make_engine(database.url)
        barrier.wait()
        reports.append(deliver_pending(engine=engine, now=clock.now(), channels={"sms": sms}))
        engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]
    assert sum(report.sent for report in reports) == 1
