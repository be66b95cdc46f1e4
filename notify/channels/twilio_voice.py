"""Voice calls through Twilio, for residents who do not read SMS: "press 1 if you are all right".

The call's TwiML is sent inline (``twiml=``): a ``<Gather numDigits="1">`` around a spoken
question, in the contact's language (Japanese by default, English), then a goodbye if no key is
pressed. Twilio posts the key to ``gather_url`` (the web endpoint, which hands it to
``notify.replies.handle_voice_keypress``). Errors are sorted as for SMS: an invalid or
unreachable number is permanent for that recipient; everything else is worth retrying.
"""

from __future__ import annotations

import logging

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.twiml.voice_response import Gather, VoiceResponse

from notify.channels.base import ChannelError, Message, SendResult, mask_phone
from notify.channels.twilio_sms import twilio_client

logger = logging.getLogger(__name__)

# 21211 invalid 'To', 21214 'To' cannot be reached, 13224 not a valid number for a call.
PERMANENT_ERROR_CODES = frozenset({21211, 21214, 13224})
GATHER_SECONDS = 10

_VOICE = {
    "ja": (
        "ja-JP",
        "みまもりサービスです。お変わりありませんか。大丈夫でしたら、1を押してください。",
        "お返事がありませんでした。のちほど、あらためてご連絡します。",
    ),
    "en": (
        "en-US",
        "This is the watch service. Are you all right? If you are fine, press 1.",
        "We did not hear from you. We will be in touch again soon.",
    ),
}


def check_in_twiml(language: str | None, gather_url: str | None = None) -> str:
    """The call's script: ask, wait for one key, say goodbye if none comes.

    >>> twiml = check_in_twiml("en", "https://areawatch.example/voice/gather")
    >>> '<Gather action="https://areawatch.example/voice/gather" method="POST"' in twiml
    True
    >>> 'numDigits="1"' in twiml and "press 1" in twiml
    True
    """
    locale, question, goodbye = _VOICE.get(language or "ja", _VOICE["ja"])
    response = VoiceResponse()
    options = {"num_digits": 1, "timeout": GATHER_SECONDS}
    if gather_url:
        options |= {"action": gather_url, "method": "POST"}
    gather = Gather(**options)
    gather.say(question, language=locale)
    response.append(gather)
    response.say(goodbye, language=locale)
    return str(response)


class TwilioVoiceChannel:
    """Place check-in calls with ``twilio.rest.Client``.

    Parameters
    ----------
    account_sid, auth_token
        Twilio credentials.
    from_number
        The calling number (E.164).
    gather_url
        Where Twilio posts the pressed key (``Digits``); the web endpoint's URL.
    base_url
        Where the API lives; ``None`` for Twilio itself.
    status_callback
        URL Twilio calls when the call ends (answered, busy, no-answer, failed).
    timeout
        Seconds to wait for Twilio before the call counts as a (retryable) failure.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        gather_url: str | None = None,
        base_url: str | None = None,
        status_callback: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.client = twilio_client(account_sid, auth_token, base_url=base_url, timeout=timeout)
        self.from_number = from_number
        self.gather_url = gather_url
        self.status_callback = status_callback

    def send(self, message: Message) -> SendResult:
        params: dict[str, str] = {
            "to": message.to,
            "from_": self.from_number,
            "twiml": check_in_twiml(message.language, self.gather_url),
        }
        if self.status_callback:
            params["status_callback"] = self.status_callback
        try:
            call = self.client.calls.create(**params)
        except (TwilioRestException, TwilioServiceException) as error:
            code = error.code
            logger.warning(
                "twilio refused call %s to %s: status %s code %s",
                message.notification_id,
                mask_phone(message.to),
                error.status,
                code,
            )
            raise ChannelError(
                f"twilio error {code} (HTTP {error.status})",
                permanent=code in PERMANENT_ERROR_CODES,
                code=code,
            ) from error
        except requests.Timeout as error:
            raise ChannelError("twilio timed out", permanent=False, code="timeout") from error
        except requests.ConnectionError as error:
            raise ChannelError("twilio unreachable", permanent=False, code="connection") from error
        return SendResult(provider_id=call.sid)
