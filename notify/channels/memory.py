"""A channel that records messages in memory: what every engine test sends through."""

from __future__ import annotations

import itertools
import threading

from notify.channels.base import ChannelError, Message, SendResult


class MemoryChannel:
    """Records each sent message; can be told to fail the next sends.

    >>> channel = MemoryChannel()
    >>> channel.send(Message(notification_id=1, to="+819012345678", body="hi")).provider_id
    'mem-1'
    >>> [m.body for m in channel.sent]
    ['hi']
    """

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self._failures: list[ChannelError] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, error: ChannelError, times: int = 1) -> None:
        """Make the next ``times`` sends raise ``error`` (nothing is recorded for them)."""
        with self._lock:
            self._failures.extend([error] * times)

    def send(self, message: Message) -> SendResult:
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
            self.sent.append(message)
            return SendResult(provider_id=f"mem-{next(self._ids)}")
