"""The monthly report (JSON, HTML, CSV) and the review list, from known data."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert
from sqlmodel import Session

from data.tables import Finding, Household, Incident, IncidentEvent, Notification, Reading

TOKYO = ZoneInfo("Asia/Tokyo")


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _incident(session, household, kind, opened, *, events=(), resolved=None, outcome=None):  # noqa: ANN001, ANN202
    incident = Incident(
        household_id=household,
        kind=kind,
        severity="alert",
        reason="test",
        opened_at=opened,
        status="resolved" if resolved is not None else ("acknowledged" if events else "open"),
        resolved_at=opened + timedelta(minutes=resolved) if resolved is not None else None,
        outcome=outcome,
    )
    session.add(incident)
    session.flush()
    for kind_, minutes in events:
        session.add(
            IncidentEvent(
                incident_id=incident.id, kind=kind_, at=opened + timedelta(minutes=minutes)
            )
        )
    if resolved is not None:
        session.add(
            IncidentEvent(
                incident_id=incident.id, kind="resolved", at=opened + timedelta(minutes=resolved)
            )
        )
    return incident


def _sms(session, incident, step, body, sent_at):  # noqa: ANN001, ANN202
    session.add(
        Notification(
            incident_id=incident.id,
            step_index=step,
            channel="sms",
            body=body,
            status="sent" if sent_at else "pending",
            created_at=sent_at or incident.opened_at,
            sent_at=sent_at,
        )
    )


@pytest.fixture
def december(engine, wards):
    """December 2024 (Tokyo) for North, with incidents just outside it and South's own."""
    with Session(engine) as session:
        # 1 Dec 00:30 Tokyo: inside. Acknowledged at 10, claimed at 30, resolved at 90 minutes.
        first = _incident(
            session,
            "n1",
            "inactivity",
            _utc(2024, 11, 30, 15, 30),
            events=[("acknowledged", 10), ("claimed", 30)],
            resolved=90,
            outcome="fine",
        )
        # Claimed straight away at 20 (no acknowledgement), resolved at 60.
        _incident(
            session,
            "n2",
            "inactivity",
            _utc(2024, 12, 10),
            events=[("claimed", 20)],
            resolved=60,
            outcome="needed_help",
        )
        _incident(session, "n1", "outage", _utc(2024, 12, 20), resolved=120, outcome="false_alarm")
        # 31 Dec 23:00 Tokyo, acknowledged at 5 minutes, still in hand.
        _incident(session, "n2", "inactivity", _utc(2024, 12, 31, 14), events=[("acknowledged", 5)])
        # Outside: 30 Nov 23:30 and 1 Jan 00:30 Tokyo.
        _incident(
            session, "n1", "inactivity", _utc(2024, 11, 30, 14, 30), resolved=5, outcome="fine"
        )
        _incident(
            session, "n1", "inactivity", _utc(2024, 12, 31, 15, 30), resolved=5, outcome="fine"
        )
        south = _incident(
            session, "s1", "inactivity", _utc(2024, 12, 5), resolved=30, outcome="away"
        )
        _sms(session, first, 0, "Are you OK? Reply 1", _utc(2024, 11, 30, 15, 31))
        _sms(session, first, 1, "x" * 200, _utc(2024, 12, 3))  # two GSM-7 segments
        _sms(session, first, 2, "never sent", None)
        _sms(session, first, 3, "January", _utc(2024, 12, 31, 15, 30))
        _sms(session, south, 0, "South's own", _utc(2024, 12, 5))
        session.commit()


def test_the_monthly_report_counts_kinds_outcomes_times_and_sms_of_the_tokyo_month(
    dashboard, as_user, december
):
    as_user()
    report = dashboard.get("/api/reports/2024-12").json()
    assert report["starts_at"] == "2024-12-01T00:00:00+09:00"
    assert report["incidents_by_kind"] == {"inactivity": 3, "outage": 1}
    assert report["outcomes"] == {
        "fine": 1,
        "away": 0,
        "needed_help": 1,
        "false_alarm": 1,
        "other": 0,
        "open": 1,
    }
    # First stop of the chain: 10 (ack), 20 (claim), 120 (resolved), 5 (ack) minutes.
    assert report["to_ack"] == {"count": 4, "median": 15.0, "p90": 90.0}
    assert report["to_claim"] == {"count": 2, "median": 25.0, "p90": 29.0}
    assert report["to_resolve"] == {"count": 3, "median": 90.0, "p90": 114.0}
    assert report["sms_segments"] == 3
    lines = report["incidents"]
    assert [(x["household_id"], x["kind"], x["outcome"]) for x in lines] == [
        ("n1", "inactivity", "fine"),
        ("n2", "inactivity", "needed_help"),
        ("n1", "outage", "false_alarm"),
        ("n2", "inactivity", "open"),
    ]
    assert [(x["minutes_to_claim"], x["minutes_to_resolve"]) for x in lines] == [
        (30.0, 90.0),
        (20.0, 60.0),
        (None, 120.0),
        (None, None),
    ]


def test_the_report_never_counts_another_organisations_incidents(
    dashboard, as_user, december, make_user, log_in
):
    as_user()
    north = dashboard.get("/api/reports/2024-12").json()
    assert "s1" not in {x["household_id"] for x in north["incidents"]}
    assert north["outcomes"]["away"] == 0
    dashboard.cookies.clear()
    make_user("minami", "south")
    assert log_in(dashboard, "minami").status_code == 303
    south = dashboard.get("/api/reports/2024-12").json()
    assert [x["household_id"] for x in south["incidents"]] == ["s1"]
    assert south["outcomes"]["away"] == 1
    assert south["sms_segments"] == 1
    assert "n1" not in dashboard.get("/reports/2024-12.csv").text


def test_the_report_csv_has_a_header_and_one_row_per_incident(dashboard, as_user, december):
    as_user()
    response = dashboard.get("/reports/2024-12.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "incident_id",
        "household_id",
        "opened_at",
        "kind",
        "outcome",
        "minutes_to_ack",
        "minutes_to_claim",
        "minutes_to_resolve",
    ]
    assert len(rows) == 1 + 4
    assert rows[1][1:] == [
        "n1",
        "2024-12-01T00:30+09:00",
        "inactivity",
        "fine",
        "10.0",
        "30.0",
        "90.0",
    ]
    assert rows[4][4:] == ["open", "5.0", "", ""]


def test_a_viewer_can_read_the_report_in_every_form(dashboard, as_user, december):
    as_user("miru", role="viewer")
    assert dashboard.get("/api/reports/2024-12").json()["outcomes"]["fine"] == 1
    page = dashboard.get("/reports/2024-12?lang=en")
    assert page.status_code == 200
    assert 'data-outcome="needed_help">1<' in page.text
    assert "data-sms>3<" in page.text
    assert page.text.count("data-incident=") == 4
    assert dashboard.get("/reports/2024-12.csv").status_code == 200


def test_logged_out_reports_and_review_are_refused(dashboard, wards):
    for path in ["/api/reports/2024-12", "/api/review"]:
        assert dashboard.get(path).status_code == 401, path
    for path in ["/reports/2024-12", "/reports/2024-12.csv", "/review", "/reports"]:
        response = dashboard.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path


def test_a_month_that_is_not_one_is_refused(dashboard, as_user):
    as_user()
    for month in ["2024-13", "2024-1", "december", "0000-01"]:
        assert dashboard.get(f"/api/reports/{month}").status_code == 422, month
        assert dashboard.get(f"/reports/{month}").status_code == 404, month
        assert dashboard.get(f"/reports/{month}.csv").status_code == 404, month


def test_reports_opens_this_months_report_in_tokyo(dashboard, as_user):
    as_user()
    # The clock stands at 2025-01-06 09:00 Tokyo.
    response = dashboard.get("/reports", follow_redirects=False)
    assert response.headers["location"] == "/reports/2025-01"


# --- the review list -------------------------------------------------------------------------


def _days(engine, household: str, profile) -> None:  # noqa: ANN001
    """28 local days before 6 Jan 2025 (Tokyo); ``profile(days_ago, slot)`` gives each kWh."""
    today = datetime(2025, 1, 6, tzinfo=TOKYO)
    rows = []
    for days_ago in range(1, 29):
        day = today - timedelta(days=days_ago)
        for slot in range(48):
            end = (day + timedelta(minutes=30 * (slot + 1))).astimezone(UTC)
            kwh = profile(days_ago, slot)
            rows.append(
                {"household_id": household, "interval_end": end, "kwh": kwh, "received_at": end}
            )
    with Session(engine) as session:
        session.execute(insert(Reading), rows)
        session.commit()


def _active(start_slot: int, level: float = 0.3):  # noqa: ANN202
    """Asleep at 0.05 kWh, active at ``level`` from ``start_slot`` to 22:00."""
    return lambda slot: level if start_slot <= slot < 44 else 0.05


@pytest.fixture
def drifting(engine, wards):
    with Session(engine) as session:
        session.add_all(
            [
                Household(id="r1", organisation_id="north", name="使用量減", area="桜台"),
                Household(id="r2", organisation_id="north", name="起床遅れ", area="桜台"),
                Household(id="r3", organisation_id="north", name="安定", area="桜台"),
                Household(id="s2", organisation_id="south", name="南の減少", area="南町"),
            ]
        )
        session.commit()
    usual, quiet = _active(12), _active(12, level=0.15)
    # r1: half the use in the last 7 days, waking at 06:00 throughout.
    _days(engine, "r1", lambda ago, slot: (quiet if ago <= 7 else usual)(slot))
    # r2: same use per slot, waking at 08:00 instead of 06:00 in the last 7 days.
    _days(engine, "r2", lambda ago, slot: (_active(16) if ago <= 7 else usual)(slot))
    # r3: waking 30 minutes later only: not worth a look.
    _days(engine, "r3", lambda ago, slot: (_active(13) if ago <= 7 else usual)(slot))
    _days(engine, "s2", lambda ago, slot: (quiet if ago <= 7 else usual)(slot))


def test_review_lists_a_household_whose_daily_use_dropped_with_its_numbers(
    dashboard, as_user, drifting
):
    as_user()
    items = {i["household_id"]: i for i in dashboard.get("/api/review").json()}
    r1 = items["r1"]
    assert r1["source"] == "drift"
    # 32 active slots a day at 0.3 then 0.15 kWh, 16 asleep at 0.05.
    assert r1["trend"] == {
        "recent_days": 7,
        "before_days": 21,
        "recent_kwh_per_day": 5.6,
        "before_kwh_per_day": 10.4,
        "kwh_change_pct": -46.2,
        "recent_first_activity": "06:00",
        "before_first_activity": "06:00",
        "first_activity_shift_minutes": 0.0,
    }
    assert r1["reasons"] == ["daily use -46.2% (5.6 vs 10.4 kWh/day)"]


def test_review_lists_a_household_whose_first_activity_moved_later(dashboard, as_user, drifting):
    as_user()
    items = {i["household_id"]: i for i in dashboard.get("/api/review").json()}
    trend = items["r2"]["trend"]
    assert (trend["recent_first_activity"], trend["before_first_activity"]) == ("08:00", "06:00")
    assert trend["first_activity_shift_minutes"] == 120.0
    # 28 active slots instead of 32: under the 30 % line, so only the later start is a reason.
    assert items["r2"]["reasons"] == ["first activity 120 min later (08:00 vs 06:00)"]


def test_review_leaves_out_steady_households_and_other_organisations(dashboard, as_user, drifting):
    as_user()
    ids = [i["household_id"] for i in dashboard.get("/api/review").json()]
    # n1 (the fixture's steady fortnight and more), r3 (30 minutes later), s2 (South's).
    assert ids == ["r1", "r2"]


def test_review_lists_review_findings_of_the_organisation(engine, dashboard, as_user, clock):
    as_user()
    now = clock.now()
    with Session(engine) as session:
        for household, kind, hours in [
            ("n2", "review", 3),
            ("n2", "review", 24 * 40),  # too old
            ("n1", "inactivity", 1),  # not a review
            ("s1", "review", 2),  # South's
        ]:
            session.add(
                Finding(
                    household_id=household,
                    kind=kind,
                    severity="watch",
                    score=0.5,
                    reason=f"{kind} {hours}h",
                    fired_at=now - timedelta(hours=hours),
                )
            )
        session.commit()
    items = [i for i in dashboard.get("/api/review").json() if i["source"] == "finding"]
    assert [(i["household_id"], i["reasons"]) for i in items] == [("n2", ["review 3h"])]
    assert items[0]["trend"] is None


def test_the_review_page_shows_the_numbers_that_raised_each_household(dashboard, as_user, drifting):
    as_user("miru", role="viewer")
    page = dashboard.get("/review?lang=en")
    assert page.status_code == 200
    assert 'data-household="r1" data-source="drift"' in page.text
    assert "5.6 / 10.4 (-46.2%)" in page.text
    assert "08:00 / 06:00 (+120 min)" in page.text
    assert "南の減少" not in page.text
