"""Twilio's webhooks: inbound SMS, delivery status callbacks, and keypresses on check-in calls.

Every request must carry a valid ``X-Twilio-Signature`` (HMAC of the public URL Twilio called
plus the form parameters, keyed by the auth token); anything else is refused with 403 before the
database is touched. The URL is rebuilt from the configured public base URL, because behind a
proxy the URL the server sees (``http://127.0.0.1:8000/...``) is not the one Twilio signed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from data.tables.roster import Contact
from notify.channels.base import mask_phone
from notify.replies import handle_inbound_sms

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/twilio")

# Keys a resident may press on a check-in call; they mean what the same SMS reply means.
_REPLY_DIGITS = frozenset({"1", "2"})
_VOICE = {
    "ja": {"code": "ja-JP", "unclear": "入力を確認できませんでした。"},
    "en": {"code": "en-US", "unclear": "Sorry, we did not understand that key."},
}


@dataclass(frozen=True)
class SignatureChecker:
    """Checks Twilio's request signatures against the public URL.

    ``auth_token`` None refuses everything: an unconfigured server must not act on requests.
    """

    auth_token: str | None
    public_base_url: str | None

    def url_for(self, request: Request) -> str:
        if self.public_base_url is None:
            return str(request.url)
        query = request.url.query
        return self.public_base_url + request.url.path + (f"?{query}" if query else "")

    def is_valid(
        self,
        url: str,
        params: ImmutableMultiDict,
        signature: str | None,
        signature_settings: str | None = None,
    ) -> bool:
        if not self.auth_token or not signature:
            return False
        algorithm = get_signature_algorithm(signature_settings)
        return RequestValidator(self.auth_token).validate(url, params, signature, algorithm)


async def signed_form(request: Request) -> ImmutableMultiDict:
    """The request's form parameters, once its Twilio signature has been verified (else 403)."""
    raw = await request.body()
    try:
        form = ImmutableMultiDict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as error:
        raise HTTPException(status_code=400, detail="form body is not UTF-8") from error
    checker: SignatureChecker = request.app.state.signatures
    signature = request.headers.get(SIGNATURE_HEADER)
    settings_header = request.headers.get(SIGNATURE_SETTINGS_HEADER)
    if not checker.is_valid(checker.url_for(request), form, signature, settings_header):
        logger.warning(
            "refused %s: %s Twilio signature (From %s)",
            request.url.path,
            "invalid" if signature else "missing",
            mask_phone(form.get("From", "")) or "-",
        )
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return form


# Routes take this: the form, available only once the signature has been verified.
SignedForm = Annotated[ImmutableMultiDict, Depends(signed_form)]


def _xml(twiml: MessagingResponse | VoiceResponse) -> Response:
    return Response(content=str(twiml), media_type="application/xml")


@router.post("/sms")
async def inbound_sms(request: Request, form: SignedForm) -> Response:
    """A text from someone: act on it and answer with the reply text (nothing for strangers)."""
    state = request.app.state
    reply = await run_in_threadpool(
        handle_inbound_sms,
        engine=state.engine,
        from_phone=form.get("From", ""),
        body=form.get("Body", ""),
        now=state.clock.now(),
    )
    answer = MessagingResponse()
    if reply:
        answer.message(reply)
    return _xml(answer)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@router.post("/status", status_code=204)
async def delivery_status(request: Request, form: SignedForm) -> Response:
    """Twilio reports how a message we sent fared (queued, sent, delivered, failed ...)."""
    # Imported here so the web app starts even while the delivery side is being deployed.
    from notify.status_callbacks import handle_status_callback

    message_sid, status = form.get("MessageSid"), form.get("MessageStatus")
    if not message_sid or not status:
        raise HTTPException(status_code=400, detail="MessageSid and MessageStatus are required")
    state = request.app.state
    await run_in_threadpool(
        handle_status_callback,
        engine=state.engine,
        message_sid=message_sid,
        status=status,
        error_code=_int_or_none(form.get("ErrorCode")),
        now=state.clock.now(),
    )
    return Response(status_code=204)


def _language_of(engine: Engine, phone: str) -> str | None:
    """The contact's voice language, or None for a number not in the roster."""
    with Session(engine) as session:
        language = session.exec(select(Contact.language).where(Contact.phone == phone)).first()
    if language is None:
        return None
    return language if language in _VOICE else "ja"


@router.post("/voice/gather")
async def voice_gather(request: Request, form: SignedForm) -> Response:
    """A key pressed on a check-in call: "1" and "2" mean what the same SMS reply means.

    Numbers not in the roster get an empty answer (the call ends), as strangers' texts do.
    """
    state = request.app.state
    # On a call we placed the person pressing keys is the callee; on one they placed, the caller.
    outbound = form.get("Direction", "").startswith("outbound")
    phone = (form.get("To" if outbound else "From") or "").strip()
    digits = form.get("Digits", "").strip()
    answer = VoiceResponse()
    language = await run_in_threadpool(_language_of, state.engine, phone) if phone else None
    if language is None:
        logger.info("keypress from unknown number %s ignored", mask_phone(phone) or "-")
        return _xml(answer)
    voice = _VOICE[language]
    if digits not in _REPLY_DIGITS:
        logger.info("keypress %r from %s not understood", digits[:4], mask_phone(phone))
        answer.say(voice["unclear"], language=voice["code"])
        return _xml(answer)
    reply = await run_in_threadpool(
        handle_inbound_sms,
        engine=state.engine,
        from_phone=phone,
        body=digits,
        now=state.clock.now(),
    )
    answer.say(reply, language=voice["code"])
    return _xml(answer)
