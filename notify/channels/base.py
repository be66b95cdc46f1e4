"""The one small interface every channel implements, after healthchecks' transports.

``send(message)`` returns a ``SendResult`` or raises ``ChannelError``. The error says whether the
failure is permanent *for this recipient* (an invalid number: stop using it) or worth retrying
(provider 5xx, timeout, rate limit). The engine decides what to do with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One outgoing message, taken from the ``Notification`` outbox.

    ``to`` is a phone number in E.164 form, or ``"operator"`` for the operators' console.
    """

    notification_id: int
    to: str
    body: str
    purpose: str = "ask"
    # The recipient's language, for channels that speak their own script (voice).
    language: str = "ja"


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider's id for the sent message (Twilio's ``SM...`` sid), when it gives one."""

    provider_id: str | None = None


class ChannelError(Exception):
    """A send that failed.

    Parameters
    ----------
    message
        What went wrong, without the recipient's number.
    permanent
        True when retrying can never help for this recipient (e.g. Twilio 21211, an invalid
        number): the engine disables the contact. False for outages, timeouts and rate limits.
    code
        The provider's error code or HTTP status, when known.
    """

    def __init__(self, message: str, *, permanent: bool, code: int | str | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class Channel(Protocol):
    def send(self, message: Message) -> SendResult: ...


def mask_phone(phone: str) -> str:
    """A phone number safe for logs: country code and last four digits only.

    >>> mask_phone("+819012345678")
    '+81******5678'
    """
    if not phone.startswith("+") or len(phone) < 8:
        return "*" * max(len(phone) - 4, 0) + phone[-4:]
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
