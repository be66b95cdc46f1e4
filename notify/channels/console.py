"""A channel that writes a readable line per message: the demo's and the operators' console.

With a stream (the CLI's stdout), the line carries the body: the operator reading the console is
the intended reader. With a logger, only the masked recipient, purpose and outbox id are logged:
logs travel further than consoles, and bodies name residents.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TextIO

from notify.channels.base import Message, SendResult, mask_phone


class ConsoleChannel:
    """Write each message to ``stream`` (if given) and/or ``logger``; never fails."""

    def __init__(self, stream: TextIO | None = None, logger: logging.Logger | None = None) -> None:
        self.stream = stream
        self.logger = (
            logger if logger is not None or stream is not None else logging.getLogger(__name__)
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def send(self, message: Message) -> SendResult:
        recipient = message.to if message.to == "operator" else mask_phone(message.to)
        with self._lock:
            provider_id = f"console-{next(self._ids)}"
            if self.stream is not None:
                self.stream.write(f"[{message.purpose} -> {recipient}] {message.body}\n")
                self.stream.flush()
        if self.logger is not None:
            self.logger.info(
                "console message %s (%s) to %s", message.notification_id, message.purpose, recipient
            )
        return SendResult(provider_id=provider_id)
