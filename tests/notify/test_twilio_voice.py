"""The Twilio voice channel: a check-in call with "press 1", against the local fake server."""

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from data.tables import Incident
from data.tables.incidents import IncidentStatus
from notify.channels import ChannelError, Message, TwilioVoiceChannel
from notify.policy import load_policy
from notify.replies import handle_voice_keypress
from notify.status_callbacks import handle_status_callback

ACCOUNT = "AC" + "0" * 32
CALLER = "+815012345678"
GATHER = "https://areawatch.example/voice/gather"
CALLBACK = "https://areawatch.example/voice/status"

CALL_FIRST = """
name = "call-first"
[[steps]]
kind = "notify_resident"
wait = 15
channels = ["voice"]
[[steps]]
kind = "notify_family"
wait = 30
"""


def _channel(fake, **kwargs):
    return TwilioVoiceChannel(
        account_sid=ACCOUNT,
        auth_token="token",
        from_number=CALLER,
        gather_url=GATHER,
        base_url=fake.base_url,
        **kwargs,
    )


def test_a_call_asks_in_japanese_to_press_1_and_sends_the_key_to_our_endpoint(fake_twilio):
    result = _channel(fake_twilio, status_callback=CALLBACK).send(
        Message(notification_id=1, to="+819011110001", body="(sms text)")
    )
    [call] = fake_twilio.calls
    assert result.provider_id == call.sid and call.sid.startswith("CA")
    assert (call.account_sid, call.to, call.from_) == (ACCOUNT, "+819011110001", CALLER)
    assert call.status_callback == CALLBACK
    assert f'<Gather action="{GATHER}" method="POST" numDigits="1"' in call.twiml
    assert '<Say language="ja-JP">みまもりサービスです。' in call.twiml
    assert "1を押してください" in call.twiml
    assert "(sms text)" not in call.twiml and fake_twilio.messages == []


def test_an_english_speaker_is_asked_in_english(fake_twilio):
    _channel(fake_twilio).send(
        Message(notification_id=1, to="+819011110001", body="", language="en")
    )
    assert '<Say language="en-US">' in fake_twilio.calls[0].twiml
    assert "press 1" in fake_twilio.calls[0].twiml


def test_a_number_that_cannot_be_called_is_a_permanent_error(fake_twilio):
    fake_twilio.fail_next(status=400, code=21211)
    with pytest.raises(ChannelError) as caught:
        _channel(fake_twilio).send(Message(notification_id=1, to="+81123", body=""))
    assert (caught.value.permanent, caught.value.code) == (True, 21211)


def test_a_server_error_on_a_call_is_worth_retrying(fake_twilio):
    fake_twilio.fail_next(status=503)
    with pytest.raises(ChannelError) as caught:
        _channel(fake_twilio).send(Message(notification_id=1, to="+819011110001", body=""))
    assert caught.value.permanent is False


def test_a_resident_who_presses_1_on_the_call_closes_the_incident(
    engine, clock, roster, sms, open_for, tick, fake_twilio
):
    incident_id = open_for(policy=load_policy(CALL_FIRST))
    tick(with_channels={"sms": sms, "voice": _channel(fake_twilio)})
    assert [roster.by_phone(c.to) for c in fake_twilio.calls] == ["resident"]
    assert sms.sent == []
    clock.advance(timedelta(minutes=1))
    said = handle_voice_keypress(
        engine=engine, callee_phone=fake_twilio.calls[0].to, digits="1", now=clock.now()
    )
    assert said == "ありがとうございます。お元気で安心しました。"
    with Session(engine) as session:
        incident = session.exec(select(Incident).where(Incident.id == incident_id)).one()
    assert (incident.status, incident.outcome) == (IncidentStatus.resolved, "fine")


def test_an_unanswered_call_moves_on_to_the_family_at_once(
    engine, clock, roster, sms, open_for, tick, fake_twilio
):
    open_for(policy=load_policy(CALL_FIRST))
    channels = {"sms": sms, "voice": _channel(fake_twilio)}
    tick(with_channels=channels)
    clock.advance(timedelta(minutes=1))
    assert handle_status_callback(
        engine=engine,
        message_sid=fake_twilio.calls[0].sid,
        status="no-answer",
        error_code=None,
        now=clock.now(),
    )
    tick(with_channels=channels)  # 09:01, not 09:15
    assert [roster.by_phone(m.to) for m in sms.sent] == ["family"]
