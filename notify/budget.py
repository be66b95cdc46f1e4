"""The monthly SMS budget of an organisation, counted in billed segments.

``Organisation.monthly_sms_budget`` is a number of SMS segments per calendar month in Tokyo
(``None``: unlimited). Segments accepted by the provider (``sent_at`` set) count, for every
recipient. Once the next message would go over the budget, SMS to residents, family and
volunteers are not sent (the outbox row fails with ``sms budget exhausted`` and the chain moves
on at once); SMS to staff still go out: a person in danger outranks a budget. The operators'
console is told once a month.

Two delivery workers running at once may each let one message through at the edge, so the
budget can be overshot by a message or two; it is a spending guard, not an accounting ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from data.tables.incidents import Incident, Notification
from data.tables.roster import Household, Organisation
from notify.operators import alert_operators
from notify.templates import render, sms_segments

BUDGET_TIMEZONE = "Asia/Tokyo"
BUDGET_EXHAUSTED = "sms budget exhausted"


def month_window(now: datetime, timezone: str = BUDGET_TIMEZONE) -> tuple[datetime, datetime]:
    """The calendar month containing ``now`` in ``timezone``, as [start, end) aware datetimes.

    >>> from datetime import UTC
    >>> start, end = month_window(datetime(2025, 1, 31, 15, 30, tzinfo=UTC))  # 1 Feb 00:30 Tokyo
    >>> start.isoformat(), end.isoformat()
    ('2025-02-01T00:00:00+09:00', '2025-03-01T00:00:00+09:00')
    """
    local = now.astimezone(ZoneInfo(timezone))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        end = start.replace(year=start.year + 1, month=1)
    else:
        end = start.replace(month=start.month + 1)
    return start, end


def segments_used(session: Session, organisation_id: str, now: datetime) -> int:
    """SMS segments the organisation's messages have used this month (Tokyo) up to now."""
    start, end = month_window(now)
    bodies = session.exec(
        select(Notification.body)
        .join(Incident, col(Incident.id) == Notification.incident_id)
        .join(Household, col(Household.id) == Incident.household_id)
        .where(
            Household.organisation_id == organisation_id,
            Notification.channel == "sms",
            col(Notification.sent_at) >= start,
            col(Notification.sent_at) < end,
        )
    ).all()
    return sum(sms_segments(body) for body in bodies)


def sms_budget_status(
    session: Session, organisation_id: str, now: datetime
) -> tuple[int, int | None]:
    """``(segments used this month, monthly budget or None for unlimited)``."""
    organisation = session.get(Organisation, organisation_id)
    budget = organisation.monthly_sms_budget if organisation is not None else None
    return segments_used(session, organisation_id, now), budget


@dataclass(slots=True)
class BudgetGuard:
    """One delivery sweep's view of the budgets: read once per organisation, then kept up to date
    as this sweep sends."""

    session: Session
    now: datetime
    _status: dict[str, list[int | None]] = field(default_factory=dict)

    def _get(self, organisation_id: str) -> list[int | None]:
        if organisation_id not in self._status:
            used, budget = sms_budget_status(self.session, organisation_id, self.now)
            self._status[organisation_id] = [used, budget]
        return self._status[organisation_id]

    def allows(self, organisation_id: str, body: str) -> bool:
        """Whether sending ``body`` keeps the organisation within its budget."""
        used, budget = self._get(organisation_id)
        return budget is None or used + sms_segments(body) <= budget

    def spend(self, organisation_id: str, body: str) -> None:
        self._get(organisation_id)[0] += sms_segments(body)


def alert_budget_exhausted_once(
    session: Session, n: Notification, organisation_id: str, now: datetime
) -> bool:
    """Tell the operators' console, once per organisation and month, that SMS are being held."""
    start, _ = month_window(now)
    already = session.exec(
        select(Notification.id)
        .join(Incident, col(Incident.id) == Notification.incident_id)
        .join(Household, col(Household.id) == Incident.household_id)
        .where(
            Household.organisation_id == organisation_id,
            Notification.topic == "sms_budget_exhausted",
            col(Notification.created_at) >= start,
        )
    ).first()
    if already is not None:
        return False
    body = render("sms_budget_exhausted")
    alert_operators(session, n.incident_id, n.step_index, "sms_budget_exhausted", body, now)
    return True
