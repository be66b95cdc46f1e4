"""Inbound SMS: what a reply means, and what it does to the incident it answers.

Only a number in the roster may act, and only on open incidents of households it is a contact
of, and only on one it was asked about. The reply text returned is for the webhook to send back
(TwiML); an empty string means "send nothing" (unknown numbers get no answer, so the service
cannot be used to send texts to strangers).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import datetime
from enum import StrEnum

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from data.tables.incidents import Incident, IncidentEvent, IncidentStatus, Notification
from data.tables.roster import Contact, ContactRole
from notify.actions import Outcome, acknowledge, claim, hurry, resolve
from notify.channels.base import mask_phone
from notify.planner import ASKING_PURPOSES
from notify.templates import render
from notify.timeline import add_event

logger = logging.getLogger(__name__)


class ReplyIntent(StrEnum):
    yes = "yes"
    no = "no"
    unknown = "unknown"


_YES = frozenset(
    {"1", "ok", "okay", "yes", "y", "はい", "大丈夫", "だいじょうぶ", "行きます", "いきます",
     "元気", "げんき", "了解", "りょうかい"}
)  # fmt: skip
_NO = frozenset(
    {"2", "no", "n", "いいえ", "行けません", "いけません", "無理", "むり", "だめ", "ダメ"}
)  # fmt: skip
# Punctuation and politeness people add after the word that matters ("大丈夫です。").
_PUNCTUATION = re.compile(r"[!?.。、,~〜ー\s]+$")
_WORD_BREAK = re.compile(r"[\s、,。]+")
_POLITE = re.compile(r"(です|でした|だよ|よ|ね)+$")


def parse_reply(text: str) -> ReplyIntent:
    """What a reply means: yes/ok, no, or unknown.

    Full-width digits and letters are folded (NFKC), case is ignored, and trailing politeness
    ("です", "。") is dropped; the first word decides when there are several, and Japanese
    commas separate words as spaces do ("はい、行きます").

    >>> [parse_reply(t).value for t in ["１", "OK!", "大丈夫です。", "行けません", "hello"]]
    ['yes', 'yes', 'yes', 'no', 'unknown']
    >>> [parse_reply(t).value for t in ["はい、行きます", "いいえ、行けません", "2 sorry"]]
    ['yes', 'no', 'no']
    """
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    words = _WORD_BREAK.split(folded)
    for candidate in (folded, *[w for w in words if w][:1]):
        word = _PUNCTUATION.sub("", candidate)
        for form in (word, _POLITE.sub("", word)):
            if form in _YES:
                return ReplyIntent.yes
            if form in _NO:
                return ReplyIntent.no
    return ReplyIntent.unknown


def _find_target(session: Session, phone: str) -> tuple[Incident, Contact] | None:
    """The active incident this number was most recently asked about, and who was asked."""
    row = session.exec(
        select(Incident, Contact)
        .join(Notification, col(Notification.incident_id) == Incident.id)
        .join(Contact, col(Notification.contact_id) == Contact.id)
        .where(
            Contact.phone == phone,
            col(Notification.purpose).in_(ASKING_PURPOSES),
            Incident.status != IncidentStatus.resolved,
            # Only its own households' incidents: the contact row belongs to the household.
            Contact.household_id == Incident.household_id,
        )
        .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
    ).first()
    return (row[0], row[1]) if row else None


def _everyone_asked_declined(session: Session, incident: Incident) -> bool:

    asked = {
        n.contact_id
        for n in session.exec(
            select(Notification).where(
                Notification.incident_id == incident.id,
                Notification.step_index == incident.step_index,
                col(Notification.purpose).in_(ASKING_PURPOSES),
            )
        )
    }
    declined = {
        e.contact_id
        for e in session.exec(
            select(IncidentEvent).where(
                IncidentEvent.incident_id == incident.id, IncidentEvent.kind == "declined"
            )
        )
    }
    return bool(asked) and asked <= declined


def handle_inbound_sms(*, engine: Engine, from_phone: str, body: str, now: datetime) -> str:
    """Act on a reply and return the text to send back ("" for unknown numbers).

    Resident "1": resolved as fine. Family or staff "1": acknowledged (the chain stops).
    Volunteer "1": claimed (the chain stops, everyone asked is told). "2" from someone asked at
    the current step: when everyone asked there has said no, the next step runs at once.
    """
    phone = re.sub(r"[\s\-()]", "", from_phone)
    intent = parse_reply(body)
    with Session(engine) as session:
        known = session.exec(select(Contact.id).where(Contact.phone == phone)).first()
        if known is None:
            logger.info("reply from unknown number %s ignored", mask_phone(phone))
            return ""
        target = _find_target(session, phone)
        if target is None:
            language = session.exec(select(Contact.language).where(Contact.phone == phone)).first()
            return render("reply_no_incident", language)
        incident, contact = target
        add_event(
            session, incident.id, "reply", now, contact.id, intent=intent.value, text=body[:160]
        )
        # The person who went reports back (often answering a claim reminder).
        reporting_back = (
            incident.status == IncidentStatus.claimed
            and incident.claimed_by_contact_id == contact.id
        )
        if intent is ReplyIntent.no and not reporting_back:
            add_event(session, incident.id, "declined", now, contact.id)
        session.commit()
        incident_id, role, language, contact_id = (
            incident.id,
            contact.role,
            contact.language,
            contact.id,
        )
        hurry_now = intent is ReplyIntent.no and _everyone_asked_declined(session, incident)

    if intent is ReplyIntent.unknown:
        return render("reply_help", language)
    if reporting_back:
        fine = intent is ReplyIntent.yes
        resolve(
            engine=engine,
            incident_id=incident_id,
            outcome=Outcome.fine if fine else Outcome.needed_help,
            now=now,
            contact_id=contact_id,
            note="reported by the person who went",
        )
        return render("reply_fine" if fine else "reply_not_fine", language)
    if intent is ReplyIntent.no:
        if hurry_now:
            hurry(engine=engine, incident_id=incident_id, now=now, reason="everyone asked said no")
        key = "reply_not_fine" if role == ContactRole.resident else "reply_decline"
        return render(key, language)
    if role == ContactRole.resident:
        done = resolve(
            engine=engine,
            incident_id=incident_id,
            outcome=Outcome.fine,
            now=now,
            contact_id=contact_id,
            note="resident replied",
        )
        return render("reply_fine" if done else "reply_closed", language)
    if role == ContactRole.volunteer:
        done = claim(engine=engine, incident_id=incident_id, contact_id=contact_id, now=now)
        return render("reply_claim" if done else "reply_closed", language)
    done = acknowledge(engine=engine, incident_id=incident_id, now=now, contact_id=contact_id)
    return render("reply_ack" if done else "reply_closed", language)


def handle_voice_keypress(*, engine: Engine, callee_phone: str, digits: str, now: datetime) -> str:
    """A key pressed during a check-in call: it means what the same SMS reply would.

    ``callee_phone`` is the number called (Twilio's ``To`` on an outbound call's ``<Gather>``
    request). Returns the text to say back ("" for a number not in the roster).
    """
    return handle_inbound_sms(engine=engine, from_phone=callee_phone, body=digits, now=now)
