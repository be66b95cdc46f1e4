"""A local stand-in for a utility's Green Button "Connect My Data" API (ESPI Atom XML).

A threaded ``http.server`` on 127.0.0.1 (port 0) answering ``GET /espi/1_1/resource/Batch/
Subscription/1`` with an Atom feed: per usage point (``fake.usage_points``), an entry each for
its ``UsagePoint``, ``MeterReading`` and ``ReadingType``, then its ``IntervalBlock`` entries
(``block_size`` readings each). Entries link up the way ESPI links them: a MeterReading's self
link lies under its UsagePoint's, an IntervalBlock's under its MeterReading's, and the
MeterReading names its ReadingType with a ``related`` link.

Paging follows ESPI: ``max-results`` entries per page (default ``fake.page_size``) from
``start-index`` (1-based), with ``<link rel="next">`` carrying the whole query on. With
``honour_published_min`` (the default) ``published-min`` keeps only interval readings ending
after it; set it False to play a server that ignores the parameter.

Every request needs ``Authorization: Bearer <fake.token>`` (else 401). Knobs as in
``fake_meter_api``: ``fail_next``, ``hang_next``, ``malformed_next`` (a body that is not XML),
``replace_next`` (a given body). ``requests`` logs each one (path, query, headers).
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.fake_meter_api import LoggedRequest
from tests.fakes.local_http import PlannedFaultsServer

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
FEED_PATH = "/espi/1_1/resource/Batch/Subscription/1"
RESOURCE = "/espi/1_1/resource"
ET.register_namespace("", ATOM)
ET.register_namespace("espi", ESPI)


@dataclass
class Interval:
    """One IntervalReading: a start (epoch seconds), a duration and a value in scaled units.

    Any field may be a string (or None, to leave the element out) to make a malformed reading.
    """

    start: int | str | None
    duration: int | str | None = 1800
    value: int | str | None = 250


@dataclass
class UsagePoint:
    title: str | None
    intervals: list[Interval] = field(default_factory=list)
    power_of_ten_multiplier: int = 0
    uom: int = 72  # Wh
    flow_direction: int = 1  # forward: delivered to the customer


def half_hours(start: datetime, values: list[int]) -> list[Interval]:
    """Consecutive 30-minute readings from ``start``, one per value (Wh at multiplier 0)."""
    first = int(start.timestamp())
    return [Interval(first + 1800 * i, 1800, value) for i, value in enumerate(values)]


class FakeGreenButton(PlannedFaultsServer):
    """Start with ``with FakeGreenButton() as fake:``; point a source at ``fake.feed_url``."""

    def __init__(self, token: str = "gb-token", page_size: int = 50, block_size: int = 48) -> None:
        super().__init__()
        self.token = token
        self.page_size = page_size
        self.block_size = block_size
        self.honour_published_min = True
        self.usage_points: list[UsagePoint] = []
        self.requests: list[LoggedRequest] = []

    @property
    def feed_url(self) -> str:
        return self.base_url + FEED_PATH

    def feed(self, published_min: datetime | None = None) -> bytes:
        """The whole feed as one page (what ``replace_next`` tests start from)."""
        return self._page_xml(self._entries(published_min), None)

    # -- serving --------------------------------------------------------------------------
    def do_get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(LoggedRequest(parts.path, query, dict(handler.headers.items())))
            behaviour, argument = self.next_behaviour()
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            self.send(handler, 401, b"Unauthorized", "text/plain")
            return
        if behaviour == "hang":
            self.hang()
            return
        if behaviour == "fail":
            self.send(handler, int(argument), b"fake failure", "text/plain")
            return
        if behaviour == "malformed":
            self.send(handler, 200, b'{"error": "this is JSON, not Atom"}', "application/json")
            return
        if behaviour == "replace":
            self.send(handler, 200, argument, "application/atom+xml")
            return
        if parts.path != FEED_PATH:
            self.send(handler, 404, b"Not Found", "text/plain")
            return
        published_min = None
        if self.honour_published_min and "published-min" in query:
            published_min = datetime.fromisoformat(query["published-min"].replace("Z", "+00:00"))
        entries = self._entries(published_min)
        start = int(query.get("start-index", 1))
        size = int(query.get("max-results", self.page_size))
        chosen = entries[start - 1 : start - 1 + size]
        next_href = None
        if start - 1 + size < len(entries):
            carried = {**query, "start-index": str(start + size), "max-results": str(size)}
            next_href = FEED_PATH + "?" + urlencode(carried)
        self.send(handler, 200, self._page_xml(chosen, next_href), "application/atom+xml")

    def _entries(self, published_min: datetime | None) -> list[ET.Element]:
        entries = []
        for number, point in enumerate(self.usage_points, start=1):
            point_href = f"{self.base_url}{RESOURCE}/Subscription/1/UsagePoint/{number}"
            reading_href = f"{point_href}/MeterReading/1"
            type_href = f"{self.base_url}{RESOURCE}/ReadingType/{number}"
            usage = _entry(point_href, point.title, "UsagePoint")
            category = ET.SubElement(_content(usage, "UsagePoint"), f"{{{ESPI}}}ServiceCategory")
            _text(category, "kind", 0)
            entries.append(usage)
            meter = _entry(reading_href, "Electricity", "MeterReading")
            ET.SubElement(meter, f"{{{ATOM}}}link", rel="related", href=type_href)
            ET.SubElement(
                meter, f"{{{ATOM}}}link", rel="related", href=reading_href + "/IntervalBlock"
            )
            _content(meter, "MeterReading")
            entries.append(meter)
            kind = _entry(type_href, "Type of Meter Reading Data", "ReadingType")
            reading_type = _content(kind, "ReadingType")
            _text(reading_type, "accumulationBehaviour", 4)
            _text(reading_type, "commodity", 1)
            _text(reading_type, "flowDirection", point.flow_direction)
            _text(reading_type, "intervalLength", 1800)
            _text(reading_type, "kind", 12)
            _text(reading_type, "powerOfTenMultiplier", point.power_of_ten_multiplier)
            _text(reading_type, "uom", point.uom)
            entries.append(kind)
            intervals = [i for i in point.intervals if _ends_after(i, published_min)]
            for block_number, first in enumerate(range(0, len(intervals), self.block_size), 1):
                chunk = intervals[first : first + self.block_size]
                entries.append(_block(f"{reading_href}/IntervalBlock/{block_number}", chunk))
        return entries

    def _page_xml(self, entries: list[ET.Element], next_href: str | None) -> bytes:
        feed = ET.Element(f"{{{ATOM}}}feed")
        ET.SubElement(feed, f"{{{ATOM}}}id").text = "urn:uuid:fake-green-button-feed"
        ET.SubElement(feed, f"{{{ATOM}}}title").text = "Green Button Usage Feed"
        ET.SubElement(feed, f"{{{ATOM}}}updated").text = "2025-01-06T00:00:00Z"
        ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=self.base_url + FEED_PATH)
        if next_href is not None:
            ET.SubElement(feed, f"{{{ATOM}}}link", rel="next", href=next_href)
        feed.extend(entries)
        return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _entry(href: str, title: str | None, _kind: str) -> ET.Element:
    entry = ET.Element(f"{{{ATOM}}}entry")
    ET.SubElement(entry, f"{{{ATOM}}}id").text = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, href)}"
    ET.SubElement(entry, f"{{{ATOM}}}link", rel="self", href=href)
    ET.SubElement(entry, f"{{{ATOM}}}link", rel="up", href=href.rsplit("/", 1)[0])
    if title is not None:
        ET.SubElement(entry, f"{{{ATOM}}}title").text = title
    ET.SubElement(entry, f"{{{ATOM}}}published").text = "2025-01-06T00:00:00Z"
    return entry


def _content(entry: ET.Element, kind: str) -> ET.Element:
    return ET.SubElement(ET.SubElement(entry, f"{{{ATOM}}}content"), f"{{{ESPI}}}{kind}")


def _text(parent: ET.Element, tag: str, value: object) -> None:
    ET.SubElement(parent, f"{{{ESPI}}}{tag}").text = str(value)


def _block(href: str, intervals: list[Interval]) -> ET.Element:
    entry = _entry(href, None, "IntervalBlock")
    block = _content(entry, "IntervalBlock")
    starts = [i.start for i in intervals if isinstance(i.start, int)]
    span = ET.SubElement(block, f"{{{ESPI}}}interval")
    _text(span, "duration", 1800 * len(intervals))
    _text(span, "start", min(starts) if starts else 0)
    for interval in intervals:
        reading = ET.SubElement(block, f"{{{ESPI}}}IntervalReading")
        period = ET.SubElement(reading, f"{{{ESPI}}}timePeriod")
        if interval.duration is not None:
            _text(period, "duration", interval.duration)
        if interval.start is not None:
            _text(period, "start", interval.start)
        if interval.value is not None:
            _text(reading, "value", interval.value)
    return entry


def _ends_after(interval: Interval, moment: datetime | None) -> bool:
    if moment is None or not isinstance(interval.start, int):
        return True
    duration = interval.duration if isinstance(interval.duration, int) else 0
    return datetime.fromtimestamp(interval.start + duration, UTC) > moment
