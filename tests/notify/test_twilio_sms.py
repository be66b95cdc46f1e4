"""The Twilio SMS channel, with the real ``twilio`` client pointed at a local fake server."""

import pytest

from notify.channels import ChannelError, Message, TwilioSmsChannel

ACCOUNT = "AC" + "0" * 32
SENDER = "+815012345678"
CALLBACK = "https://areawatch.example/sms/status"


def _channel(fake, **kwargs):
    return TwilioSmsChannel(
        account_sid=ACCOUNT,
        auth_token="token",
        from_number=SENDER,
        base_url=fake.base_url,
        **kwargs,
    )


def _message(to="+819011110001", body="【みまもり】お変わりありませんか。"):
    return Message(notification_id=1, to=to, body=body)


def test_it_sends_through_twilio_with_the_status_callback(fake_twilio):
    result = _channel(fake_twilio, status_callback=CALLBACK).send(_message())
    assert result.provider_id.startswith("SM")
    [received] = fake_twilio.messages
    assert (received.account_sid, received.to, received.from_, received.body) == (
        ACCOUNT,
        "+819011110001",
        SENDER,
        "【みまもり】お変わりありませんか。",
    )
    assert received.status_callback == CALLBACK


def test_without_a_status_callback_none_is_sent(fake_twilio):
    _channel(fake_twilio).send(_message())
    assert fake_twilio.messages[0].status_callback is None


def test_an_invalid_number_is_a_permanent_error(fake_twilio):
    fake_twilio.fail_next(status=400, code=21211)
    with pytest.raises(ChannelError) as caught:
        _channel(fake_twilio).send(_message(to="+81123"))
    assert (caught.value.permanent, caught.value.code) == (True, 21211)
    assert "+81123" not in str(caught.value)


def test_a_server_error_is_worth_retrying(fake_twilio):
    fake_twilio.fail_next(status=500)
    channel = _channel(fake_twilio)
    with pytest.raises(ChannelError) as caught:
        channel.send(_message())
    assert caught.value.permanent is False
    assert channel.send(_message()).provider_id.startswith("SM")


def test_a_hung_provider_times_out_and_is_worth_retrying(fake_twilio):
    fake_twilio.hang_next()
    with pytest.raises(ChannelError) as caught:
        _channel(fake_twilio, timeout=0.2).send(_message())
    assert (caught.value.permanent, caught.value.code) == (False, "timeout")


def test_the_story_starts_the_same_over_twilio(engine, clock, roster, open_for, tick, fake_twilio):
    channels = {"sms": _channel(fake_twilio, status_callback=CALLBACK)}
    open_for()
    tick(with_channels=channels)
    tick(minutes=15, with_channels=channels)
    fake_twilio.fail_next(status=503)
    tick(minutes=30, with_channels=channels)  # the volunteer's send fails once...
    tick(minutes=1, with_channels=channels)  # ...and goes on the retry
    assert [(roster.by_phone(m.to), m.body) for m in fake_twilio.messages] == [
        ("resident", "【みまもり】お変わりありませんか。大丈夫でしたら「1」と返信してください。"),
        (
            "family",
            "【みまもり】山田 花子さんの電気の使用が1/6 9:00から見られません。"
            "様子を確認できる場合は「1」、できない場合は「2」と返信してください。",
        ),
        (
            "volunteer_a",
            "【みまもり】桜台三丁目の山田 花子さんの様子が1/6 9:00から確認できません。"
            "訪問できる場合は「1」、難しい場合は「2」と返信してください。",
        ),
    ]
    assert {m.from_ for m in fake_twilio.messages} == {SENDER}
    assert {m.status_callback for m in fake_twilio.messages} == {CALLBACK}
