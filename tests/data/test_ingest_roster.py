from datetime import time

import pytest
from sqlmodel import Session, select

from data.ingest import IngestError, ingest_contacts, ingest_households
from data.tables import Contact, Household, Organisation

HOUSEHOLD_HEADER = ["household_id", "name", "area", "address", "lat", "lon", "timezone", "policy"]
CONTACT_HEADER = [
    "household_id", "name", "role", "phone", "language", "quiet_start", "quiet_end", "priority",
]  # fmt: skip


def households(engine) -> dict[str, Household]:
    with Session(engine) as session:
        return {h.id: h for h in session.exec(select(Household)).all()}


def contacts(engine) -> list[Contact]:
    with Session(engine) as session:
        return session.exec(select(Contact).order_by(Contact.household_id, Contact.role)).all()


def test_households_are_upserted_by_id(engine, make_csv, now):
    first = make_csv(
        "households.csv",
        HOUSEHOLD_HEADER,
        [
            ["h1", "Sato", "Kita", "1-2 Kita", "35.1", "139.2", "Asia/Tokyo", "default"],
            ["h2", "Suzuki", "Minami", "", "", "", "", ""],
        ],
    )
    inserted = ingest_households(engine=engine, path=first, now=now)
    again = ingest_households(engine=engine, path=first, now=now)
    moved = make_csv(
        "moved.csv",
        HOUSEHOLD_HEADER,
        [["h1", "Sato", "Higashi", "3-4 Higashi", "35.1", "139.2", "Asia/Tokyo", "default"]],
    )
    updated = ingest_households(engine=engine, path=moved, now=now)

    assert (inserted.rows_inserted, again.rows_unchanged, updated.rows_corrected) == (2, 2, 1)
    stored = households(engine)
    assert (stored["h1"].area, stored["h1"].lat, stored["h1"].organisation_id) == (
        "Higashi",
        35.1,
        "default",
    )
    assert (stored["h2"].lat, stored["h2"].timezone, stored["h2"].policy) == (
        None,
        "Asia/Tokyo",
        "default",
    )


def test_a_new_organisation_named_in_the_roster_is_created(engine, make_csv, now):
    path = make_csv(
        "households.csv", ["household_id", "name", "organisation"], [["h1", "Sato", "kita-ward"]]
    )
    ingest_households(engine=engine, path=path, now=now)
    with Session(engine) as session:
        assert session.get(Organisation, "kita-ward") is not None
    assert households(engine)["h1"].organisation_id == "kita-ward"


def test_bad_household_rows_are_quarantined(engine, make_csv, now):
    path = make_csv(
        "households.csv",
        HOUSEHOLD_HEADER,
        [
            ["h1", "Sato", "", "", "", "", "Mars/Olympus", ""],  # line 2
            ["h2", "", "", "", "", "", "", ""],  # 3
            ["h3", "Ito", "", "", "95", "", "", ""],  # 4
            ["h4", "Kato", "", "", "", "", "Europe/London", ""],  # 5: good
        ],
    )
    report = ingest_households(engine=engine, path=path, now=now)
    reasons = {line.line_number: line.reason for line in report.quarantined}
    assert "not an IANA time zone" in reasons[2]
    assert "name is missing" in reasons[3]
    assert "lat must be a number between -90 and 90" in reasons[4]
    assert set(households(engine)) == {"h4"}


def test_a_household_file_without_its_id_column_is_refused(engine, make_csv, now):
    path = make_csv("households.csv", ["name"], [["Sato"]])
    with pytest.raises(IngestError, match="household_id"):
        ingest_households(engine=engine, path=path, now=now)


def test_a_volunteer_may_serve_several_households(engine, make_household, make_csv, now):
    make_household("h1")
    make_household("h2")
    path = make_csv(
        "contacts.csv",
        CONTACT_HEADER,
        [
            ["h1", "Resident", "resident", "+819012345678", "ja", "22:00", "07:00", "1"],
            ["h1", "Volunteer", "volunteer", "+819087654321", "en", "", "", "3"],
            ["h2", "Volunteer", "volunteer", "+819087654321", "", "", "", ""],
        ],
    )
    report = ingest_contacts(engine=engine, path=path, now=now)

    assert report.rows_inserted == 3 and report.rows_quarantined == 0
    stored = contacts(engine)
    resident = next(c for c in stored if c.role == "resident")
    assert (resident.quiet_start, resident.quiet_end) == (time(22, 0), time(7, 0))
    volunteer_for_h2 = next(c for c in stored if c.household_id == "h2")
    assert (volunteer_for_h2.language, volunteer_for_h2.priority) == ("ja", 1)


def test_contacts_are_upserted_by_household_role_and_phone(engine, make_household, make_csv, now):
    make_household("h1")
    row = ["h1", "Daughter", "family", "+819011112222", "ja", "", "", "2"]
    ingest_contacts(engine=engine, path=make_csv("c1.csv", CONTACT_HEADER, [row]), now=now)
    same = ingest_contacts(engine=engine, path=make_csv("c2.csv", CONTACT_HEADER, [row]), now=now)
    changed = ingest_contacts(
        engine=engine, path=make_csv("c3.csv", CONTACT_HEADER, [row[:4] + ["en", "", "", "1"]]),
        now=now,
    )  # fmt: skip

    assert (same.rows_unchanged, changed.rows_corrected) == (1, 1)
    [contact] = contacts(engine)
    assert (contact.language, contact.priority) == ("en", 1)


def test_bad_contact_rows_are_quarantined_without_repeating_the_phone(
    engine, make_household, make_csv, now
):
    make_household("h1")
    path = make_csv(
        "contacts.csv",
        CONTACT_HEADER,
        [
            ["h1", "A", "neighbour", "+819012345678", "ja", "", "", "1"],  # line 2
            ["h1", "B", "family", "090-1234-5678", "ja", "", "", "1"],  # 3
            ["h1", "C", "family", "+819012345670", "fr", "", "", "1"],  # 4
            ["h1", "D", "family", "+819012345671", "ja", "25:00", "07:00", "1"],  # 5
            ["h1", "E", "family", "+819012345672", "ja", "22:00", "", "1"],  # 6
            ["h1", "F", "family", "+819012345673", "ja", "", "", "first"],  # 7
            ["h9", "G", "family", "+819012345674", "ja", "", "", "1"],  # 8
        ],
    )
    report = ingest_contacts(engine=engine, path=path, now=now)
    reasons = {line.line_number: line.reason for line in report.quarantined}
    assert "role must be one of" in reasons[2]
    assert "E.164" in reasons[3] and "5678" not in reasons[3]
    assert "language must be ja or en" in reasons[4]
    assert "quiet_start must be HH:MM" in reasons[5]
    assert "both be set or both be empty" in reasons[6]
    assert "priority must be a whole number" in reasons[7]
    assert "unknown household 'h9'" in reasons[8]
    assert report.nothing_read and contacts(engine) == []


def test_an_optional_email_column_is_stored_and_updated(engine, make_household, make_csv, now):
    make_household("h1")
    header = [*CONTACT_HEADER, "email"]
    daughter = ["h1", "Daughter", "family", "+819011112222", "ja", "", "", "1"]
    volunteer = ["h1", "Volunteer", "volunteer", "+819011113333", "ja", "", "", "1"]
    first = make_csv("c1.csv", header, [[*daughter, "ichiro@example.jp"], [*volunteer, ""]])
    ingest_contacts(engine=engine, path=first, now=now)
    moved = make_csv("c2.csv", header, [[*daughter, "ichiro@example.org"], [*volunteer, ""]])
    report = ingest_contacts(engine=engine, path=moved, now=now)

    assert (report.rows_corrected, report.rows_unchanged) == (1, 1)
    assert {c.role: c.email for c in contacts(engine)} == {
        "family": "ichiro@example.org",
        "volunteer": None,
    }


def test_a_contacts_file_without_an_email_column_leaves_email_empty(
    engine, make_household, make_csv, now
):
    make_household("h1")
    row = ["h1", "Daughter", "family", "+819011112222", "ja", "", "", "1"]
    ingest_contacts(engine=engine, path=make_csv("c.csv", CONTACT_HEADER, [row]), now=now)
    assert [c.email for c in contacts(engine)] == [None]


def test_a_malformed_email_is_quarantined_without_repeating_it(
    engine, make_household, make_csv, now
):
    make_household("h1")
    header = [*CONTACT_HEADER, "email"]
    path = make_csv(
        "contacts.csv",
        header,
        [
            ["h1", "A", "family", "+819012345670", "ja", "", "", "1", "ichiro.example.jp"],  # 2
            ["h1", "B", "family", "+819012345671", "ja", "", "", "1", "a@b@example.jp"],  # 3
            ["h1", "C", "family", "+819012345672", "ja", "", "", "1", "ichiro yamada@ex.jp"],  # 4
            ["h1", "D", "family", "+819012345673", "ja", "", "", "1", "x" * 250 + "@e.jp"],  # 5
            ["h1", "E", "family", "+819012345674", "ja", "", "", "1", "e@example.jp"],  # 6: good
        ],
    )
    report = ingest_contacts(engine=engine, path=path, now=now)
    reasons = {line.line_number: line.reason for line in report.quarantined}
    assert set(reasons) == {2, 3, 4, 5}
    for line in (2, 3, 4):
        assert "email must have one @ and no spaces" in reasons[line]
        assert "example" not in reasons[line] and "ex.jp" not in reasons[line]
    assert "email is longer than 254 characters" in reasons[5]
    assert [(c.name, c.email) for c in contacts(engine)] == [("E", "e@example.jp")]
