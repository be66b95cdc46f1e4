"""Green Button "Connect My Data": a North American utility's ESPI Atom feed of interval data.

What this covers: ``GET {url}?published-min=<RFC 3339>`` with ``Authorization: Bearer <token>``
answers an Atom ``feed`` whose entries hold ESPI resources (NAESB REQ.21, namespace
``http://naesb.org/espi``):

- ``UsagePoint``: one metered service; its ``title`` (or a configured mapping) names the household.
- ``MeterReading``: its self link lies under its UsagePoint's; a ``related`` link names its
  ``ReadingType``.
- ``ReadingType``: ``uom`` (72 = Wh), ``powerOfTenMultiplier``, ``flowDirection`` (1 = delivered
  to the customer).
- ``IntervalBlock``: its self link lies under its MeterReading's; each ``IntervalReading`` has a
  ``timePeriod`` (``start`` in epoch seconds, ``duration`` in seconds) and a ``value`` in
  ``uom × 10^powerOfTenMultiplier``.

Each IntervalReading becomes one reading: the interval's *end* (``start + duration``) and its
kWh (``value × 10^multiplier / 1000``). A reading that cannot be converted (a missing or
non-numeric start, duration or value) is passed on with its raw text, so the ingest quarantines
it with the reason while the rest of the block goes in. Meter readings that are not energy used
(``uom`` other than Wh, or energy sent to the grid) are skipped and named in the report.

Paging: the feed's ``<link rel="next">`` is followed (its query is the server's own, e.g. ESPI's
``start-index``/``max-results``) until there is none. Links may be relative to the page.

Resumption: the cursor is the end of the newest interval loaded. Each pull sends
``published-min`` (cursor minus ``lookback``) as a hint, and *also* drops, client-side, every
interval ending at or before that time, so a server that ignores the parameter (or reads it as
the resources' publication time, as ESPI strictly does) costs bandwidth, not duplicates. With no
cursor yet, the first pull loads what ended in the last ``backfill``. The cursor moves only
after every page of a pull has been loaded: feeds need not be ordered by time, so a pull that
failed half-way is re-read whole next time, and the idempotent ingest finds the pages it already
loaded unchanged.

Failures (as for the HTTP JSON source): a 5xx, timeout or refused connection is retried with
backoff; 401/403 is recorded at once; a body that is not an Atom feed stops the pull with an
error and leaves the cursor where it was. The XML is parsed with ``defusedxml`` (no entity
expansion, no external resources): the feed comes from outside.

What this does not cover: the OAuth 2.0 dance that obtains the access token (the operator
supplies it, as for the other sources), Green Button "Download My Data" files (use a drop folder
after converting), cost and reading-quality fields, and gas or water usage points.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urljoin
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from data.sources.base import PullReport, read_cursor, record_progress
from data.sources.http_json import (
    MAX_PAGES,
    HttpFetcher,
    PullError,
    load_records,
    parse_cursor,
    try_record_error,
)

logger = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
ESPI = "{http://naesb.org/espi}"
WATT_HOURS = 72  # ESPI UnitSymbolKind
FORWARD = 1  # ESPI FlowDirectionKind: delivered to the customer


@dataclass(frozen=True)
class _ReadingType:
    uom: int | None
    multiplier: int
    flow_direction: int | None


@dataclass
class _FeedIndex:
    """The resources seen so far in one pull (a block may come pages after its ReadingType)."""

    usage_points: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    meter_reading_types: dict[str, str | None] = field(default_factory=dict)
    reading_types: dict[str, _ReadingType] = field(default_factory=dict)
    # IntervalBlocks whose MeterReading, ReadingType or UsagePoint has not been seen yet.
    waiting: list[tuple[str, Element]] = field(default_factory=list)


@dataclass
class GreenButtonSource:
    """Meter readings from a Green Button Connect (ESPI) feed (see the module docstring).

    Parameters
    ----------
    name : str
        The source's name: the key of its cursor.
    url : str
        The feed to pull (e.g. a subscription's ``.../Batch/Subscription/{id}``).
    fetcher : HttpFetcher
        Token, timeout and retry policy.
    usage_points : mapping
        UsagePoint title, Atom ``id`` or self link -> household id. A UsagePoint not in it is
        the household its title names.
    lookback : timedelta
        Also re-read intervals ending this long before the cursor (late or corrected data;
        reloaded as unchanged when nothing changed).
    backfill : timedelta
        With no cursor yet, how far back the first pull reaches.
    """

    name: str
    url: str
    fetcher: HttpFetcher = field(default_factory=HttpFetcher)
    usage_points: Mapping[str, str] = field(default_factory=dict)
    lookback: timedelta = timedelta(0)
    backfill: timedelta = timedelta(days=7)
    kind: str = "readings"

    def pull(self, *, engine: Engine, now: datetime) -> PullReport:
        """Fetch every page and load the intervals after the cursor; never raises for a failure."""
        report = PullReport(source=self.name)
        try:
            stored = read_cursor(engine, self.name)
            cursor = parse_cursor(stored.cursor if stored is not None else None)
            after = (cursor or now - self.backfill) - self.lookback
            newest = self._pull_pages(engine, now, after, report)
        except (PullError, SQLAlchemyError, OSError) as error:
            report.error = str(error) if isinstance(error, PullError) else f"{error!r}"[:400]
            logger.warning("source %s: pull failed: %s", self.name, report.error)
            try_record_error(engine, self.name, report.error, now)
            return report
        moved = newest is not None and (cursor is None or newest > cursor)
        record_progress(
            engine, source=self.name, cursor=newest.isoformat() if moved else None, now=now
        )
        return report

    def _pull_pages(
        self, engine: Engine, now: datetime, after: datetime, report: PullReport
    ) -> datetime | None:
        index = _FeedIndex()
        newest: datetime | None = None
        url: str | None = self.url
        params: dict[str, object] = {"published-min": after.strftime("%Y-%m-%dT%H:%M:%SZ")}
        seen: set[str] = set()
        with tempfile.TemporaryDirectory(prefix="areawatch-greenbutton-") as folder:
            for page in range(1, MAX_PAGES + 1):
                if url is None:
                    break
                seen.add(url)
                feed = self._fetch(url, params)
                records = self._records(feed, url, index, after, report)
                loaded = load_records(
                    engine,
                    self.name,
                    "readings",
                    records,
                    Path(folder) / f"page{page}.csv",
                    now=now,
                    tz=None,
                    report=report,
                    label=f"page {page}",
                )
                if loaded is not None and (newest is None or loaded > newest):
                    newest = loaded
                url = _next_link(feed, url)
                params = {}  # the next link carries the server's own query
                if url in seen:
                    raise PullError(f"the feed's next link loops back to {url}")
        for href, _block in index.waiting:
            report.files_rejected.append(
                f"IntervalBlock {href}: its MeterReading is not in the feed"
            )
        return newest

    def _fetch(self, url: str, params: Mapping[str, object]) -> Element:
        response = self.fetcher.get(url, params, {"Accept": "application/atom+xml"})
        try:
            feed = fromstring(response.content)
        except (ParseError, DefusedXmlException) as error:
            raise PullError(f"the body from {url} is not Atom XML: {error}") from error
        if feed.tag != f"{ATOM}feed":
            raise PullError(f"the body from {url} is not an Atom feed (root {feed.tag!r})")
        return feed

    def _records(
        self,
        feed: Element,
        page_url: str,
        index: _FeedIndex,
        after: datetime,
        report: PullReport,
    ) -> list[object]:
        """Index this page's resources, then turn every block now resolvable into records."""
        for entry in feed.iter(f"{ATOM}entry"):
            href = _link(entry, "self", page_url)
            content = entry.find(f"{ATOM}content")
            if href is None or content is None:
                continue
            if content.find(f"{ESPI}UsagePoint") is not None:
                title = entry.findtext(f"{ATOM}title")
                index.usage_points[href] = (title, entry.findtext(f"{ATOM}id"))
            elif content.find(f"{ESPI}MeterReading") is not None:
                related = [_resolve(link, page_url) for link in _links(entry, "related")]
                types = [link for link in related if "/ReadingType/" in link]
                index.meter_reading_types[href] = types[0] if types else None
            elif (found := content.find(f"{ESPI}ReadingType")) is not None:
                index.reading_types[href] = _reading_type(found)
            elif (block := content.find(f"{ESPI}IntervalBlock")) is not None:
                index.waiting.append((href, block))
        records: list[object] = []
        still_waiting = []
        for href, block in index.waiting:
            resolved = self._resolve_block(href, index)
            if resolved is None:
                still_waiting.append((href, block))
                continue
            household, reading_type, meter_href = resolved
            skip = _not_consumption(reading_type)
            if skip is not None:
                label = f"MeterReading {meter_href}: {skip}"
                if label not in report.files_rejected:
                    report.files_rejected.append(label)
                continue
            records.extend(_block_records(block, household, reading_type, after))
        index.waiting = still_waiting
        return records

    def _resolve_block(
        self, href: str, index: _FeedIndex
    ) -> tuple[str | None, _ReadingType, str] | None:
        meter_href = href.split("/IntervalBlock", 1)[0]
        type_href = index.meter_reading_types.get(meter_href)
        reading_type = index.reading_types.get(type_href) if type_href else None
        point_href = meter_href.split("/MeterReading", 1)[0]
        point = index.usage_points.get(point_href)
        if reading_type is None or point is None:
            return None
        title, atom_id = point
        return self._household(point_href, title, atom_id), reading_type, meter_href

    def _household(self, href: str, title: str | None, atom_id: str | None) -> str | None:
        for key in (title, atom_id, href):
            if key is not None and key in self.usage_points:
                return self.usage_points[key]
        return title.strip() if title else None


def _block_records(
    block: Element, household: str | None, reading_type: _ReadingType, after: datetime
) -> list[object]:
    records: list[object] = []
    for reading in block.iter(f"{ESPI}IntervalReading"):
        start = reading.findtext(f"{ESPI}timePeriod/{ESPI}start")
        duration = reading.findtext(f"{ESPI}timePeriod/{ESPI}duration")
        end = _interval_end(start, duration)
        if end is not None and end <= after:
            continue
        records.append(
            {
                "household_id": household,
                # Unconvertible times and values go on as text: the ingest quarantines them.
                "timestamp": end.isoformat() if end else f"start={start} duration={duration}",
                "kwh": _kwh(reading.findtext(f"{ESPI}value"), reading_type.multiplier),
            }
        )
    return records


def _interval_end(start: str | None, duration: str | None) -> datetime | None:
    try:
        seconds, length = int((start or "").strip()), int((duration or "").strip())
    except ValueError:
        return None
    if length <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds + length, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _kwh(value: str | None, multiplier: int) -> str | None:
    """``value × 10^multiplier`` Wh as kWh text; the raw text when it is not a number."""
    if value is None:
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        return value
    if not amount.is_finite():
        return value
    return format((amount.scaleb(multiplier) / 1000).normalize(), "f")


def _reading_type(element: Element) -> _ReadingType:
    def number(tag: str) -> int | None:
        try:
            return int((element.findtext(f"{ESPI}{tag}") or "").strip())
        except ValueError:
            return None

    return _ReadingType(
        uom=number("uom"),
        multiplier=number("powerOfTenMultiplier") or 0,
        flow_direction=number("flowDirection"),
    )


def _not_consumption(reading_type: _ReadingType) -> str | None:
    """Why a MeterReading is not household consumption in Wh (None when it is)."""
    if reading_type.uom != WATT_HOURS:
        return f"uom {reading_type.uom} is not Wh (72)"
    if reading_type.flow_direction not in (None, FORWARD):
        return f"flowDirection {reading_type.flow_direction} is not energy delivered to the home"
    return None


def _links(entry: Element, rel: str) -> list[str]:
    return [
        link.get("href", "")
        for link in entry.findall(f"{ATOM}link")
        if link.get("rel") == rel and link.get("href")
    ]


def _link(entry: Element, rel: str, page_url: str) -> str | None:
    found = _links(entry, rel)
    return _resolve(found[0], page_url) if found else None


def _resolve(href: str, page_url: str) -> str:
    return urljoin(page_url, href.strip()).rstrip("/")


def _next_link(feed: Element, page_url: str) -> str | None:
    found = [
        link.get("href", "")
        for link in feed.findall(f"{ATOM}link")
        if link.get("rel") == "next" and link.get("href")
    ]
    return urljoin(page_url, found[0].strip()) if found else None
