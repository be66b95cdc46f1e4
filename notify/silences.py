"""Silences: a household's inactivity escalation muted for a stated reason and time.

After Alertmanager's ``silence/``: a silence is a window with a reason and an author; its state
(pending, active, expired) is a pure function of the silence and ``now``. While one is active the
household's inactivity incidents are still opened and recorded, but the engine holds them (an
event ``silenced``, no messages). A silence ends early when the household shows activity again:
"in hospital until the 14th" is over when the lights come on on the 10th.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from data.tables.silences import Silence

ACTIVITY_RESUMED = "activity resumed"


class SilenceState(StrEnum):
    pending = "pending"
    active = "active"
    expired = "expired"


def silence_end(silence: Silence) -> datetime:
    """When the silence stops muting: its planned end, or earlier if it was ended early."""
    if silence.ended_early_at is not None and silence.ended_early_at < silence.ends_at:
        return silence.ended_early_at
    return silence.ends_at


def silence_state(silence: Silence, now: datetime) -> SilenceState:
    """Pending before it starts, active in ``[starts_at, end)``, expired from its end on.

    >>> from datetime import UTC, timedelta
    >>> start = datetime(2025, 1, 6, tzinfo=UTC)
    >>> s = Silence(household_id="h1", reason="in hospital", starts_at=start,
    ...             ends_at=start + timedelta(days=7), created_by="staff", created_at=start)
    >>> [silence_state(s, start + timedelta(days=d)).value for d in (-1, 0, 6, 7)]
    ['pending', 'active', 'active', 'expired']
    >>> s.ended_early_at = start + timedelta(days=2)
    >>> silence_state(s, start + timedelta(days=3)).value
    'expired'

    A silence called off before it began is over, not still waiting to start:

    >>> s.ended_early_at = start - timedelta(hours=1)
    >>> silence_state(s, start - timedelta(minutes=30)).value
    'expired'
    """
    if now >= silence_end(silence) or (
        silence.ended_early_at is not None and now >= silence.ended_early_at
    ):
        return SilenceState.expired
    if now < silence.starts_at:
        return SilenceState.pending
    return SilenceState.active


def create_silence(
    *,
    session: Session,
    household_id: str,
    reason: str,
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    now: datetime,
) -> Silence:
    """Record a silence (in the caller's transaction; the caller commits).

    Raises
    ------
    ValueError
        If the window is empty or a time is naive.
    """
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("a silence needs aware datetimes")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    silence = Silence(
        household_id=household_id,
        reason=reason,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=created_by,
        created_at=now,
    )
    session.add(silence)
    session.flush()
    return silence


def _active_clause(now: datetime):  # noqa: ANN202
    return (
        col(Silence.starts_at) <= now,
        col(Silence.ends_at) > now,
        or_(col(Silence.ended_early_at).is_(None), col(Silence.ended_early_at) > now),
    )


def active_silences(session: Session, household_id: str, now: datetime) -> list[Silence]:
    """The household's silences active at ``now``, the one ending last first."""
    return list(
        session.exec(
            select(Silence)
            .where(Silence.household_id == household_id, *_active_clause(now))
            .order_by(col(Silence.ends_at).desc(), col(Silence.id))
        )
    )


def end_silence(*, session: Session, silence_id: int, now: datetime, reason: str) -> bool:
    """End an active or pending silence now (staff changed their mind). False if already over."""
    ended = session.execute(
        update(Silence)
        .where(
            col(Silence.id) == silence_id,
            col(Silence.ends_at) > now,
            col(Silence.ended_early_at).is_(None),
        )
        .values(ended_early_at=now, ended_reason=reason)
    )
    return ended.rowcount == 1


#: Activity this soon after a silence starts is the resident leaving, not coming back.
SETTLE = timedelta(hours=2)


def end_silences_on_activity(
    *,
    session: Session,
    household_id: str,
    now: datetime,
    activity_at: datetime | None = None,
    settle: timedelta = SETTLE,
) -> int:
    """The household shows activity again: end its active silences now. Returns how many.

    ``activity_at`` is when the activity was seen (default ``now``); only silences that began
    at least ``settle`` before it end. Pending silences stay (a hospital stay booked for next
    week is still booked). Held incidents are re-checked by the engine within
    ``HOLD_RECHECK``. Runs in the caller's transaction.
    """
    activity_at = activity_at or now
    ended = session.execute(
        update(Silence)
        .where(
            col(Silence.household_id) == household_id,
            col(Silence.starts_at) <= activity_at - settle,
            *_active_clause(now),
        )
        .values(ended_early_at=now, ended_reason=ACTIVITY_RESUMED)
    )
    return ended.rowcount


def silenced_households(session: Session, now: datetime) -> set[str]:
    """Households with a silence active at ``now`` (one query, for the detection job)."""
    return set(session.exec(select(Silence.household_id).where(*_active_clause(now))))
