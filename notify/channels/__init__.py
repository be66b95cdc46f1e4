"""Channels that carry messages: one small interface, one module per channel."""

from notify.channels.base import Channel, ChannelError, Message, SendResult, mask_phone
from notify.channels.console import ConsoleChannel
from notify.channels.memory import MemoryChannel
from notify.channels.twilio_sms import TwilioSmsChannel
from notify.channels.twilio_voice import TwilioVoiceChannel

__all__ = [
    "Channel",
    "ChannelError",
    "ConsoleChannel",
    "MemoryChannel",
    "Message",
    "SendResult",
    "TwilioSmsChannel",
    "TwilioVoiceChannel",
    "mask_phone",
]
