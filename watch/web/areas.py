"""Area outlines for the map: from a GeoJSON file when one is configured, else drawn around the
households.

The drawn outline is the convex hull of an area's households with a margin (each point widened
to a small circle before the hull is taken), so an area of one or two households still gets a
shape, and points never sit on the outline's edge.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: How far the drawn outline stays from the outermost households.
MARGIN_METRES = 120.0
_METRES_PER_DEGREE = 111_320.0
_CIRCLE_POINTS = 12
_POLYGONS = ("Polygon", "MultiPolygon")

Point = tuple[float, float]  # (lon, lat), GeoJSON's order


class OutlineError(ValueError):
    """The areas file cannot be used; the message says why."""


def load_outlines(path: str | Path) -> dict[str, dict[str, Any]]:
    """Each area's geometry (a GeoJSON Polygon or MultiPolygon) from a FeatureCollection whose
    features name their area in ``properties.area``.

    Raises
    ------
    OutlineError
        If the file is not such a FeatureCollection.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OutlineError(f"{path}: not a readable GeoJSON file ({error})") from error
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise OutlineError(f"{path}: must be a GeoJSON FeatureCollection")
    outlines: dict[str, dict[str, Any]] = {}
    for number, feature in enumerate(document.get("features") or [], start=1):
        where = f"{path}: feature {number}"
        if not isinstance(feature, dict):
            raise OutlineError(f"{where} is not an object")
        properties = feature.get("properties") or {}
        area = properties.get("area") if isinstance(properties, dict) else None
        if not isinstance(area, str) or not area:
            raise OutlineError(f"{where} needs properties.area, the area's name in the roster")
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict) or geometry.get("type") not in _POLYGONS:
            raise OutlineError(f"{where} ({area}) must be a Polygon or MultiPolygon")
        if not _valid_rings(geometry):
            raise OutlineError(f"{where} ({area}) has a ring that is not [lon, lat] positions")
        if area in outlines:
            raise OutlineError(f"{where}: area {area!r} appears twice")
        outlines[area] = {"type": geometry["type"], "coordinates": geometry["coordinates"]}
    return outlines


def _valid_rings(geometry: dict[str, Any]) -> bool:
    polygons = geometry.get("coordinates")
    if geometry["type"] == "Polygon":
        polygons = [polygons]
    if not isinstance(polygons, list) or not polygons:
        return False
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            return False
        for ring in polygon:
            if not isinstance(ring, list) or len(ring) < 4:
                return False
            for position in ring:
                if not (
                    isinstance(position, list)
                    and len(position) >= 2
                    and all(isinstance(v, int | float) for v in position[:2])
                    and -180 <= position[0] <= 180
                    and -90 <= position[1] <= 90
                ):
                    return False
    return True


def hull_outline(points: Iterable[Point], margin_metres: float = MARGIN_METRES) -> dict | None:
    """A GeoJSON Polygon around ``points`` (lon, lat) with a margin, or None without points.

    >>> outline = hull_outline([(139.0, 36.0)])
    >>> outline["type"], len(outline["coordinates"][0]) - 1
    ('Polygon', 12)
    >>> ring = hull_outline([(139.0, 36.0), (139.01, 36.0), (139.0, 36.01)])["coordinates"][0]
    >>> ring[0] == ring[-1] and min(lon for lon, _ in ring) < 139.0
    True
    """
    points = tuple(points)
    if not points:
        return None
    return _hull_outline(points, margin_metres)


# The map asks for the same areas' outlines on every load, and the households rarely move:
# a few thousand points cost tens of milliseconds of pure Python, a dictionary lookup does not.
@functools.lru_cache(maxsize=256)
def _hull_outline(points: tuple[Point, ...], margin_metres: float) -> dict:
    mean_lat = sum(lat for _, lat in points) / len(points)
    d_lat = margin_metres / _METRES_PER_DEGREE
    d_lon = d_lat / max(math.cos(math.radians(mean_lat)), 0.01)
    widened = [
        (
            lon + d_lon * math.cos(2 * math.pi * k / _CIRCLE_POINTS),
            lat + d_lat * math.sin(2 * math.pi * k / _CIRCLE_POINTS),
        )
        for lon, lat in _convex_hull(points)
        for k in range(_CIRCLE_POINTS)
    ]
    ring = [[round(lon, 6), round(lat, 6)] for lon, lat in _convex_hull(widened)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _convex_hull(points: list[Point]) -> list[Point]:
    """Andrew's monotone chain, counter-clockwise (GeoJSON's order for an outer ring)."""
    unique = sorted(set(points))
    if len(unique) <= 2:
        return unique

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    upper: list[Point] = []
    for p in unique:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(unique):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]
