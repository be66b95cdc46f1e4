"""The area map: GeoJSON from /api/map (scoped, filtered like the list), outlines from a file or
drawn around the households, and a page that loads nothing from another site."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from data.tables import Household
from watch.settings import DashboardSettings, Settings
from watch.web import create_app
from watch.web.areas import OutlineError, hull_outline, load_outlines

STATIC = Path(__file__).resolve().parents[4] / "watch" / "web" / "static"


@pytest.fixture
def located(engine, wards):
    """North's two households and South's one placed in their towns; a third North one unplaced."""
    with Session(engine) as session:
        for household_id, lat, lon in [
            ("n1", 36.0101, 139.0001),
            ("n2", 36.0202, 139.0102),
            ("s1", 35.5, 138.5),
        ]:
            household = session.get(Household, household_id)
            household.lat, household.lon = lat, lon
            session.add(household)
        session.add(Household(id="n3", organisation_id="north", name="木村 実", area="桜台"))
        session.commit()
    return wards


def _points(body: dict) -> dict[str, dict]:
    return {
        f["properties"]["id"]: f for f in body["features"] if f["properties"]["kind"] == "household"
    }


def _outlines(body: dict) -> dict[str, dict]:
    return {
        f["properties"]["area"]: f for f in body["features"] if f["properties"]["kind"] == "area"
    }


def test_the_map_shows_the_organisations_households_with_their_status(dashboard, as_user, located):
    as_user()
    body = dashboard.get("/api/map").json()
    assert body["type"] == "FeatureCollection"
    points = _points(body)
    assert sorted(points) == ["n1", "n2"]
    assert points["n1"]["geometry"] == {"type": "Point", "coordinates": [139.0001, 36.0101]}
    assert points["n1"]["properties"]["status"] == "alert"
    assert points["n2"]["properties"]["status"] == "normal"
    assert points["n1"]["properties"]["url"] == "/households/n1"
    assert body["unplaced"] == 1  # n3 has no coordinates


def test_staff_of_another_organisation_cannot_see_its_points_or_areas(dashboard, as_user, located):
    as_user("tanaka", organisation_id="south")
    body = dashboard.get("/api/map").json()
    assert sorted(_points(body)) == ["s1"]
    assert sorted(_outlines(body)) == ["南町"]
    text = json.dumps(body, ensure_ascii=False)
    assert "山田" not in text and "桜台" not in text
    assert dashboard.get("/api/map", params={"area": "桜台"}).json()["features"] == []


def test_the_map_needs_a_login(dashboard, located):
    assert dashboard.get("/api/map").status_code == 401


def test_area_and_status_filters_apply_to_the_map(dashboard, as_user, located):
    as_user()
    alerts = dashboard.get("/api/map", params={"status": "alert"}).json()
    assert sorted(_points(alerts)) == ["n1"]
    # The outline stays drawn around every household of the area, whatever the status filter.
    assert sorted(_outlines(alerts)) == ["旭丘", "桜台"]
    one_area = dashboard.get("/api/map", params={"area": "旭丘"}).json()
    assert sorted(_points(one_area)) == ["n2"]
    assert sorted(_outlines(one_area)) == ["旭丘"]
    assert dashboard.get("/api/map", params={"status": "bogus"}).status_code == 422


def test_without_an_areas_file_each_outline_surrounds_its_households(dashboard, as_user, located):
    as_user()
    outline = _outlines(dashboard.get("/api/map").json())["桜台"]
    assert outline["properties"]["outline"] == "households"
    ring = outline["geometry"]["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    assert min(lons) < 139.0001 < max(lons) and min(lats) < 36.0101 < max(lats)
    assert ring[0] == ring[-1]


def test_an_areas_file_gives_the_outlines_it_names(
    engine, settings, clock, make_user, located, log_in, tmp_path
):
    square = [[[138.9, 35.9], [139.1, 35.9], [139.1, 36.1], [138.9, 36.1], [138.9, 35.9]]]
    areas = tmp_path / "areas.geojson"
    areas.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"area": "桜台"},
                        "geometry": {"type": "Polygon", "coordinates": square},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    configured = Settings(
        database_url=settings.database_url,
        dashboard=DashboardSettings(areas_geojson=str(areas)),
    )
    app = create_app(engine=engine, settings=configured, clock=clock, session_secret="s")
    with TestClient(app) as client:
        make_user("sato")
        assert log_in(client, "sato").status_code == 303
        outlines = _outlines(client.get("/api/map").json())
    assert outlines["桜台"]["properties"]["outline"] == "settings"
    assert outlines["桜台"]["geometry"]["coordinates"] == square
    assert outlines["旭丘"]["properties"]["outline"] == "households"


def test_the_area_page_loads_the_bundled_map_and_nothing_from_another_site(
    dashboard, as_user, located
):
    as_user()
    html = dashboard.get("/", params={"status": "alert"}).text
    assert 'id="area-map"' in html
    assert 'data-src="/api/map?status=alert"' in html
    assert 'data-tiles=""' in html
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert "/static/leaflet/leaflet.js" in references
    assert "/static/leaflet/leaflet.css" in references
    assert not [r for r in references if "//" in r], references
    for path in ("/static/leaflet/leaflet.js", "/static/leaflet/leaflet.css", "/static/areamap.js"):
        assert dashboard.get(path).status_code == 200, path
    # Our script requests only what the page names; Leaflet requests tiles only when told to.
    script = (STATIC / "areamap.js").read_text(encoding="utf-8")
    assert not re.search(r"https?://", script)


def test_a_configured_tile_server_is_handed_to_the_map(
    engine, settings, clock, make_user, located, log_in
):
    tiles = "https://tiles.example.jp/{z}/{x}/{y}.png"
    configured = Settings(
        database_url=settings.database_url,
        dashboard=DashboardSettings(tile_url=tiles, tile_attribution="© example"),
    )
    app = create_app(engine=engine, settings=configured, clock=clock, session_secret="s")
    with TestClient(app) as client:
        make_user("sato")
        log_in(client, "sato")
        html = client.get("/").text
    assert f'data-tiles="{tiles}"' in html
    assert 'data-attribution="© example"' in html


def test_leaflet_is_bundled_with_its_licence():
    leaflet = STATIC / "leaflet"
    assert "Leaflet 1.9.4" in (leaflet / "leaflet.js").read_text(encoding="utf-8")[:200]
    assert "BSD 2-Clause License" in (leaflet / "LICENSE").read_text(encoding="utf-8")
    assert (leaflet / "images" / "marker-icon.png").is_file()


def test_a_hull_around_one_or_two_points_is_still_an_area():
    assert hull_outline([]) is None
    for points in ([(139.0, 36.0)], [(139.0, 36.0), (139.001, 36.0)]):
        ring = hull_outline(points)["coordinates"][0]
        assert len(ring) > 4 and ring[0] == ring[-1]


def test_an_areas_file_without_area_names_is_refused(tmp_path):
    path = tmp_path / "areas.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "Point", "coordinates": [0, 0]},
                    }
                ],
            }
        )
    )
    with pytest.raises(OutlineError, match="properties.area"):
        load_outlines(path)
    path.write_text("not json")
    with pytest.raises(OutlineError, match="not a readable GeoJSON"):
        load_outlines(path)


def test_a_nul_character_in_an_id_or_filter_is_a_client_error(dashboard, as_user, located):
    """PostgreSQL cannot store NUL in text; schemathesis found these answering 500 there."""
    headers = as_user()
    for path in ("/api/map?area=%00", "/api/households?area=a%00", "/api/households/n%001"):
        assert dashboard.get(path).status_code == 422, path
    assert dashboard.post("/api/households/%00/silences/1/end", headers=headers).status_code == 422
