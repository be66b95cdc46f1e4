"""The console and in-memory channels."""

import io
import logging

import pytest

from notify.channels import ChannelError, ConsoleChannel, MemoryChannel, Message, mask_phone


def test_the_console_writes_a_readable_line_with_the_number_masked():
    stream = io.StringIO()
    result = ConsoleChannel(stream=stream).send(
        Message(notification_id=7, to="+819012345678", body="お変わりありませんか。", purpose="ask")
    )
    assert stream.getvalue() == "[ask -> +81******5678] お変わりありませんか。\n"
    assert result.provider_id == "console-1"


def test_the_console_logger_never_sees_the_body_or_the_number(caplog):
    with caplog.at_level(logging.INFO):
        ConsoleChannel(logger=logging.getLogger("console-test")).send(
            Message(notification_id=7, to="+819012345678", body="山田 花子さん", purpose="ask")
        )
    assert "+81******5678" in caplog.text
    assert "12345678" not in caplog.text and "山田" not in caplog.text


def test_the_memory_channel_fails_when_told_then_records():
    channel = MemoryChannel()
    channel.fail_next(ChannelError("down", permanent=False, code=503))
    message = Message(notification_id=1, to="+819012345678", body="hi")
    with pytest.raises(ChannelError):
        channel.send(message)
    assert channel.send(message).provider_id == "mem-1"
    assert channel.sent == [message]


@pytest.mark.parametrize(
    ("phone", "masked"), [("+819012345678", "+81******5678"), ("09012345678", "*******5678")]
)
def test_phone_numbers_are_masked_for_logs(phone, masked):
    assert mask_phone(phone) == masked
