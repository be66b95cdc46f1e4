from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import Session, select

from data.tables import Household, Reading


def test_times_come_back_aware_utc_whatever_zone_went_in(engine):
    tokyo = timezone(timedelta(hours=9))
    with Session(engine) as session:
        session.add(Household(id="h1", name="Resident"))
        session.commit()
        session.add(
            Reading(
                household_id="h1",
                interval_end=datetime(2025, 1, 6, 7, 30, tzinfo=tokyo),
                kwh=0.2,
                received_at=datetime(2025, 1, 6, tzinfo=UTC),
            )
        )
        session.commit()
    with Session(engine) as session:
        reading = session.exec(select(Reading)).one()
    assert reading.interval_end == datetime(2025, 1, 5, 22, 30, tzinfo=UTC)
    assert reading.interval_end.tzinfo is not None


def test_a_naive_time_is_refused(engine):
    with Session(engine) as session:
        session.add(Household(id="h1", name="Resident"))
        session.commit()
        session.add(
            Reading(
                household_id="h1",
                interval_end=datetime(2025, 1, 6),
                kwh=0.2,
                received_at=datetime(2025, 1, 6, tzinfo=UTC),
            )
        )
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()
