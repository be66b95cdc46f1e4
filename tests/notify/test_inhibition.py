"""Inhibition: when much of an area has lost its data feed, its residents are not asked."""

import pytest
from sqlmodel import Session

from notify.escalation import close_on_recovery
from notify.inhibition import area_inhibited

AREA = "桜台三丁目"


@pytest.fixture
def neighbours(make_household):
    """Households h2..h7 in the same area as the roster's h1 (seven in all)."""
    for i in range(2, 8):
        make_household(f"h{i}", area=AREA)
    make_household("elsewhere", area="旭丘一丁目")


def _recover(engine, clock, household_ids, kind="outage"):
    with Session(engine) as session:
        for household_id in household_ids:
            close_on_recovery(
                session=session, household_id=household_id, kind=kind, now=clock.now()
            )
        session.commit()


def test_an_area_is_inhibited_when_half_its_households_and_at_least_three_are_in_outage(
    engine, clock, roster, neighbours, open_for
):
    inhibited = []
    for household_id in ["h2", "h3", "h4", "h5"]:  # of seven households in the area
        open_for(household_id, kind="outage")
        with Session(engine) as session:
            inhibited.append(area_inhibited(session, AREA, clock.now()))
            assert area_inhibited(session, "旭丘一丁目", clock.now()) is False
    assert inhibited == [False, False, False, True]


def test_a_small_area_needs_three_households_in_outage(engine, clock, make_household, open_for):
    for i in range(4):
        make_household(f"s{i}", area="小さな町")
    open_for("s0", kind="outage")
    open_for("s1", kind="outage")
    with Session(engine) as session:
        assert area_inhibited(session, "小さな町", clock.now()) is False  # half, but two homes
        assert area_inhibited(session, "小さな町", clock.now(), min_households=2) is True


def test_an_area_outage_holds_inactivity_alerts_until_the_area_recovers(
    engine, clock, roster, neighbours, sms, console, open_for, tick, timeline
):
    outages = ["h2", "h3", "h4", "h5"]
    for household_id in outages:
        open_for(household_id, kind="outage")
    incident_id = open_for()  # h1 looks inactive: its meter went quiet with the others
    tick()
    tick(minutes=15)
    tick(minutes=15)
    assert sms.sent == []
    assert len(console.sent) == 4  # the operators hear about each outage
    assert [kind for kind, _ in timeline(incident_id)] == ["opened", "inhibited"]
    _recover(engine, clock, outages)
    tick(minutes=15)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]
    assert [kind for kind, _ in timeline(incident_id)][:4] == [
        "opened",
        "inhibited",
        "resumed",
        "step",
    ]


def test_an_outage_elsewhere_does_not_hold_this_area(
    engine, clock, roster, make_household, sms, open_for, tick
):
    for i in range(4):
        make_household(f"x{i}", area="旭丘一丁目")
        open_for(f"x{i}", kind="outage")
    open_for()
    tick()
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]
