"""Channels that carry messages: one small interface, one module per channel."""

from notify.channels.base import Channel, ChannelError, Message, SendResult, mask_phone
from notify.channels.console import ConsoleChannel
from notify.channels.memory import MemoryChannel
from notify.channels.twilio_sms import TwilioSmsChannel

__all__ = [
    "Channel",
    "ChannelError",
    "ConsoleChannel",
    "MemoryChannel",
    "Message",
    "SendResult",
    "TwilioSmsChannel",
    "mask_phone",
]
