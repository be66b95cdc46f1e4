"""Delivery status reported by the provider after a send (Twilio's ``StatusCallback``).

``sent`` only means the provider accepted a message; the callback says whether it reached the
phone. ``delivered`` is recorded; ``failed``/``undelivered`` on an ask counts as a failed send:
when nobody asked at the current step can still be reached, the next step runs at once. Error
21211 (invalid number) or 21614 (not a mobile) disables the number and tells the operators.

A check-in call's final ``CallStatus`` is taken the same way: ``completed`` (answered) is
recorded as delivered; ``busy``, ``no-answer``, ``canceled`` and ``failed`` as a failed send.

Callbacks may come twice or out of order (Twilio sends ``queued``, ``sent``, ``delivered``...):
only the final states change anything, each at most once, by a guarded update.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from data.tables.incidents import Notification, NotificationStatus
from notify.delivery import move_on_if_nobody_left
from notify.operators import disable_contact
from notify.timeline import add_event

logger = logging.getLogger(__name__)

DELIVERED = "delivered"
# Calls report ``completed`` (answered) where messages report ``delivered``.
DELIVERED_STATES = frozenset({DELIVERED, "completed"})
FAILED_STATES = frozenset({"failed", "undelivered", "busy", "no-answer", "canceled"})
# Statuses on the way (nothing to record): the send already recorded ``sent``.
INTERIM_STATES = frozenset(
    {"accepted", "scheduled", "queued", "sending", "sent", "receiving", "initiated", "ringing",
     "in-progress", "answered"}
)  # fmt: skip
NUMBER_INVALID_CODES = frozenset({21211, 21614})
# A final report replaces only ``sent``: repeats and reports after another final one do nothing.


def handle_status_callback(
    *, engine: Engine, message_sid: str, status: str, error_code: int | None, now: datetime
) -> bool:
    """Record a provider's delivery report. True if ``message_sid`` is one of our notifications.

    Parameters
    ----------
    message_sid
        The provider's message id (Twilio ``MessageSid``), as stored in ``provider_id``.
    status
        Twilio's ``MessageStatus``: ``delivered``, ``failed``, ``undelivered``, or an interim one;
        for a call, its ``CallStatus``: ``completed``, ``busy``, ``no-answer``, ``failed``...
    error_code
        Twilio's ``ErrorCode`` when given (30003 unreachable, 21211 invalid number, ...).
    """
    status = status.strip().lower()
    with Session(engine) as session:
        n = session.exec(
            select(Notification).where(Notification.provider_id == message_sid)
        ).first()
        if n is None:
            logger.info("status %s for unknown message %s ignored", status, message_sid)
            return False
        if status in DELIVERED_STATES:
            new_status, error = NotificationStatus.delivered, None
        elif status in FAILED_STATES:
            new_status = NotificationStatus.failed
            error = f"{status} (error {error_code})" if error_code else status
        else:
            if status not in INTERIM_STATES:
                logger.warning("unknown delivery status %r for notification %s", status, n.id)
            return True
        changed = session.execute(
            update(Notification)
            .where(
                col(Notification.id) == n.id, col(Notification.status) == NotificationStatus.sent
            )
            .values(status=new_status, error=error, next_attempt_at=None)
        )
        if changed.rowcount != 1:
            return True  # a repeated or late report: already recorded
        add_event(
            session,
            n.incident_id,
            "delivered" if new_status is NotificationStatus.delivered else "delivery_failed",
            now,
            n.contact_id,
            notification_id=n.id,
            status=status,
            code=error_code,
        )
        if new_status is NotificationStatus.failed:
            if error_code in NUMBER_INVALID_CODES:
                disable_contact(session, n, code=error_code, reason=error, now=now)
            session.flush()
            move_on_if_nobody_left(session, n, now)
        session.commit()
        return True
