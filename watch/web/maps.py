"""The area map's data: the organisation's households as GeoJSON points coloured by status, and
each area's outline.

Built on ``queries.list_households``, so the map shows exactly the households (and statuses)
the list shows, scoped to the user's organisation. Outlines come from the configured GeoJSON
file when it names the area, else are drawn around all of the area's located households (not
only those that pass a status filter, so the outline does not jump when a filter changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlmodel import Session

from data.tables import StaffUser
from watch.web import queries
from watch.web.areas import hull_outline, load_outlines
from watch.web.reasons import localise_reason


@dataclass
class AreaMap:
    households: list[queries.HouseholdRow]
    outlines: dict[str, tuple[dict[str, Any], str]]  # area -> (geometry, "settings"|"households")
    unplaced: int  # households that pass the filters but have no coordinates


@lru_cache(maxsize=4)
def _outlines_at(path: str, modified_ns: int) -> dict[str, dict[str, Any]]:
    return load_outlines(path)


def configured_outlines(path: str | None) -> dict[str, dict[str, Any]]:
    """The areas file's outlines, re-read only when the file changes."""
    if not path:
        return {}
    return _outlines_at(path, Path(path).stat().st_mtime_ns)


def _located(row: queries.HouseholdRow) -> bool:
    return row.household.lat is not None and row.household.lon is not None


def area_map(
    session: Session,
    user: StaffUser,
    now: datetime,
    *,
    area: str | None = None,
    status: queries.HouseholdStatus | None = None,
    outlines_file: str | None = None,
) -> AreaMap:
    rows = queries.list_households(session, user, now, area=area)
    configured = configured_outlines(outlines_file)
    points_by_area: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        h = row.household
        points = points_by_area.setdefault(h.area, [])
        if _located(row):
            points.append((h.lon, h.lat))
    outlines: dict[str, tuple[dict[str, Any], str]] = {}
    for name, points in sorted(points_by_area.items()):
        if name in configured:
            outlines[name] = (configured[name], "settings")
        elif name and (drawn := hull_outline(points)) is not None:
            outlines[name] = (drawn, "households")
    wanted = [r for r in rows if status is None or r.status == status]
    located = [r for r in wanted if _located(r)]
    return AreaMap(located, outlines, len(wanted) - len(located))


def as_geojson(found: AreaMap, lang: str = "en") -> dict[str, Any]:
    """One FeatureCollection, JSON-ready: the outlines first (drawn underneath), then the
    households (``reason`` as the detector wrote it, ``reason_localised`` in ``lang``)."""
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": geometry,
            "properties": {"kind": "area", "area": name, "outline": source},
        }
        for name, (geometry, source) in found.outlines.items()
    ]
    for row in found.households:
        h = row.household
        features.append(
            {
                "type": "Feature",
                "id": h.id,
                "geometry": {"type": "Point", "coordinates": [h.lon, h.lat]},
                "properties": {
                    "kind": "household",
                    "id": h.id,
                    "name": h.name,
                    "area": h.area,
                    "status": row.status.value,
                    "since": row.since.isoformat() if row.since else None,
                    "reason": row.reason,
                    "reason_localised": localise_reason(row.reason, lang),
                    "url": f"/households/{quote(h.id, safe='')}",
                },
            }
        )
    return {"type": "FeatureCollection", "features": features, "unplaced": found.unplaced}
