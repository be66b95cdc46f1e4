"""Households' coordinates in the roster: ``lat,lon`` or ``latitude,longitude``, optional,
checked, and a bad pair quarantined with its line."""

from sqlmodel import Session, select

from data.ingest import ingest_households
from data.tables import Household


def _stored(engine) -> dict[str, tuple[float | None, float | None]]:
    with Session(engine) as session:
        return {h.id: (h.lat, h.lon) for h in session.exec(select(Household))}


def test_spelled_out_latitude_and_longitude_columns_are_accepted(engine, make_csv, now):
    path = make_csv(
        "households.csv",
        ["household_id", "name", "area", "latitude", "longitude"],
        [["h1", "Sato", "Kita", "36.0125", "138.9967"], ["h2", "Ito", "Kita", "", ""]],
    )
    report = ingest_households(engine=engine, path=path, now=now)
    assert report.rows_quarantined == 0
    assert _stored(engine) == {"h1": (36.0125, 138.9967), "h2": (None, None)}


def test_a_bad_or_half_given_location_is_quarantined(engine, make_csv, now):
    path = make_csv(
        "households.csv",
        ["household_id", "name", "latitude", "longitude"],
        [
            ["h1", "Sato", "36.01", ""],  # line 2: half a location
            ["h2", "Ito", "36.01", "181"],  # 3: out of range
            ["h3", "Kato", "north", "139"],  # 4: not a number
            ["h4", "Abe", "-33.87", "151.21"],  # 5: good (southern and eastern)
        ],
    )
    report = ingest_households(engine=engine, path=path, now=now)
    reasons = {line.line_number: line.reason for line in report.quarantined}
    assert "lat and lon must both be set or both be empty" in reasons[2]
    assert "lon must be a number between -180 and 180" in reasons[3]
    assert "lat must be a number between -90 and 90" in reasons[4]
    assert _stored(engine) == {"h4": (-33.87, 151.21)}
