"""SMS through Twilio, with the real ``twilio`` client.

``base_url`` points the client somewhere other than ``https://api.twilio.com`` (the tests' local
fake server). Errors are sorted the way the engine needs them: an invalid or unreachable number
(21211, 21614, 21610 opted out) is permanent for that recipient; 5xx, timeouts, connection errors
and everything else are retryable, because they say nothing about the number.
"""

from __future__ import annotations

import logging
from datetime import datetime

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from notify.channels.base import ChannelError, Message, SendResult, mask_phone

logger = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
# 21211 invalid 'To', 21614 not a mobile number, 21610 recipient replied STOP.
PERMANENT_ERROR_CODES = frozenset({21211, 21614, 21610})
# How many of the recipient's latest messages ``find_sent`` reads from Twilio's message log.
LOOKUP_DEPTH = 20


class RebasedHttpClient(TwilioHttpClient):
    """The stock HTTP client, with ``https://api.twilio.com`` swapped for ``base_url``."""

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args, **kwargs) -> Response:  # noqa: ANN002, ANN003
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def twilio_client(
    account_sid: str, auth_token: str, *, base_url: str | None, timeout: float
) -> Client:
    """The real ``twilio`` client; ``base_url`` points it at a local fake in tests."""
    http_client = (
        RebasedHttpClient(base_url, timeout=timeout)
        if base_url
        else TwilioHttpClient(timeout=timeout)
    )
    return Client(account_sid, auth_token, http_client=http_client)


class TwilioSmsChannel:
    """Send SMS with ``twilio.rest.Client``.

    Parameters
    ----------
    account_sid, auth_token
        Twilio credentials.
    from_number
        The sending number (E.164) or a messaging service's sender.
    base_url
        Where the API lives; ``None`` for Twilio itself.
    status_callback
        URL Twilio calls with delivery status updates, when set.
    timeout
        Seconds to wait for Twilio before the send counts as a (retryable) failure.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str | None = None,
        status_callback: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.client = twilio_client(account_sid, auth_token, base_url=base_url, timeout=timeout)
        self.from_number = from_number
        self.status_callback = status_callback

    def send(self, message: Message) -> SendResult:
        params: dict[str, str] = {"to": message.to, "from_": self.from_number, "body": message.body}
        if self.status_callback:
            params["status_callback"] = self.status_callback
        try:
            sent = self.client.messages.create(**params)
        except (TwilioRestException, TwilioServiceException) as error:
            code = error.code
            permanent = code in PERMANENT_ERROR_CODES
            logger.warning(
                "twilio refused message %s to %s: status %s code %s",
                message.notification_id,
                mask_phone(message.to),
                error.status,
                code,
            )
            raise ChannelError(
                f"twilio error {code} (HTTP {error.status})", permanent=permanent, code=code
            ) from error
        except requests.Timeout as error:
            raise ChannelError("twilio timed out", permanent=False, code="timeout") from error
        except requests.ConnectionError as error:
            raise ChannelError("twilio unreachable", permanent=False, code="connection") from error
        return SendResult(provider_id=sent.sid)

    def find_sent(
        self, message: Message, not_before: datetime, exclude: frozenset[str] = frozenset()
    ) -> SendResult | None:
        """Did Twilio accept this message (same recipient, sender and text) since ``not_before``?

        Used after a crash between the send and its record: Twilio's message log is the only
        place that knows. ``exclude`` lists sids already recorded for other outbox rows, so one
        accepted message can account for one row only. Raises ``ChannelError`` if the log
        cannot be read.
        """
        try:
            recent = self.client.messages.list(
                to=message.to, from_=self.from_number, limit=LOOKUP_DEPTH
            )
        except TwilioException as error:  # a failed page fetch raises the base class
            raise ChannelError("twilio lookup failed", permanent=False) from error
        except requests.RequestException as error:
            raise ChannelError("twilio lookup failed", permanent=False) from error
        for sent in recent:
            created = sent.date_created
            if (
                sent.body == message.body
                and sent.sid not in exclude
                and isinstance(created, datetime)
                and created >= not_before
            ):
                return SendResult(provider_id=sent.sid)
        return None
