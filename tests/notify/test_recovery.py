"""Settling a send whose worker died mid-way, from Twilio's message log (in one process)."""

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from data.tables import Notification
from data.tables.incidents import NotificationStatus
from notify.channels import Message, SendResult, TwilioSmsChannel
from notify.policy import load_policy
from notify.status_callbacks import handle_status_callback

ACCOUNT = "AC" + "0" * 32
SENDER = "+815012345678"
STAFF_ONLY = """
name = "staff-only"
[[steps]]
kind = "notify_staff"
wait = 30
[[steps]]
kind = "repeat_staff"
wait = 30
"""


class _DiesMidSend:
    """Claims and (optionally) sends, then the worker dies before recording anything."""

    def __init__(self, inner: TwilioSmsChannel, *, reaches_provider: bool) -> None:
        self.inner = inner
        self.reaches_provider = reaches_provider

    def send(self, message: Message) -> SendResult:
        if self.reaches_provider:
            self.inner.send(message)
        raise RuntimeError("worker killed")


@pytest.fixture
def twilio(fake_twilio, clock):
    fake_twilio.now = clock.now()
    return TwilioSmsChannel(
        account_sid=ACCOUNT, auth_token="token", from_number=SENDER, base_url=fake_twilio.base_url
    )


def _rows(engine):
    with Session(engine) as session:
        return session.exec(select(Notification).order_by(col(Notification.id))).all()


def test_a_send_the_provider_accepted_is_recorded_with_its_sid_and_callbacks_match(
    engine, clock, roster, open_for, tick, fake_twilio, twilio
):
    open_for()
    with pytest.raises(RuntimeError):
        tick(with_channels={"sms": _DiesMidSend(twilio, reaches_provider=True)})
    tick(minutes=10, with_channels={"sms": twilio})
    [row] = _rows(engine)
    [received] = fake_twilio.messages
    assert (row.status, row.provider_id) == (NotificationStatus.sent, received.sid)
    assert handle_status_callback(
        engine=engine,
        message_sid=received.sid,
        status="delivered",
        error_code=None,
        now=clock.now(),
    )


def test_an_identical_earlier_reminder_is_not_taken_for_the_lost_one(
    engine, clock, make_household, make_contact, open_for, tick, fake_twilio, twilio
):
    make_household("h1")
    make_contact("h1", "staff", "+819011110005")
    open_for(policy=load_policy(STAFF_ONLY))
    tick(with_channels={"sms": twilio})  # 09:00 ask
    clock.advance(timedelta(minutes=30))
    fake_twilio.now = clock.now()
    tick(with_channels={"sms": twilio})  # 09:30 first reminder
    clock.advance(timedelta(minutes=30))
    with pytest.raises(RuntimeError):  # 10:00 second reminder, same text: lost before sending
        tick(with_channels={"sms": _DiesMidSend(twilio, reaches_provider=False)})
    fake_twilio.now = clock.now() + timedelta(minutes=10)
    tick(minutes=10, with_channels={"sms": twilio})
    bodies = [m.body for m in fake_twilio.messages]
    assert len(bodies) == 3 and bodies[1] == bodies[2]  # the second reminder went, once
    assert [r.status for r in _rows(engine)] == [NotificationStatus.sent] * 3
    assert len({r.provider_id for r in _rows(engine)}) == 3
