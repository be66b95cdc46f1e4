"""A meter or TV-log API pulled over HTTP: JSON pages of records newer than our cursor.

``GET {url}?since=<cursor>&page=<n>&page_size=<k>`` with ``Authorization: Bearer <token>``
answers ``{"readings": [{"household_id", "timestamp", "kwh"}, ...], "next_page": n | null}``
(TV: ``{"events": [{"household_id", "timestamp", "event", "channel"}, ...]}``). The API is
expected to return records oldest first. Each page is written to a temporary CSV and loaded by
the same ingest functions as a dropped file, so bad records are quarantined exactly as in files.
Only after a page's ingest committed does the cursor move to the newest timestamp in it, so a
crash re-reads at most that page, which the idempotent ingest finds unchanged.

Failures: a 5xx answer, a timeout or a refused connection is retried with exponential backoff
(``tries`` attempts); 401/403 is an authentication failure, recorded at once and not retried;
a body that is not the expected JSON stops the pull with an error, the cursor left where the
last committed page put it, so nothing is lost.
"""

from __future__ import annotations

import csv
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from data.ingest import IngestError, IngestReport, ingest_readings, ingest_tv
from data.sources.base import PullReport, read_cursor, record_error, record_progress

logger = logging.getLogger(__name__)

COLUMNS = {
    "readings": ("household_id", "timestamp", "kwh"),
    "tv": ("household_id", "timestamp", "event", "channel"),
}
LIST_KEYS = {"readings": "readings", "tv": "events"}
INGESTERS: dict[str, Callable[..., IngestReport]] = {"readings": ingest_readings, "tv": ingest_tv}
# A runaway ``next_page`` loop must end; a pull is resumed next time from the cursor anyway.
MAX_PAGES = 1000


class PullError(Exception):
    """A pull cannot go on (authentication refused, server down after retries, bad body)."""


@dataclass
class HttpFetcher:
    """GET JSON with a bearer token, retrying only what is worth retrying.

    Parameters
    ----------
    token : str, optional
        Sent as ``Authorization: Bearer``; never logged.
    timeout_seconds : float
        Per request (connect and read).
    tries : int
        Attempts for a 5xx, timeout or connection error; 401/403 and other 4xx are not retried.
    backoff_seconds : float
        Wait before the second attempt; doubled before each further one.
    sleep : callable
        How to wait (tests pass a no-op).
    """

    token: str | None = None
    timeout_seconds: float = 10
    tries: int = 3
    backoff_seconds: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)

    def get_json(
        self, url: str, params: Mapping[str, object], headers: Mapping[str, str] | None = None
    ) -> object:
        """The decoded JSON body of ``GET url?params``; raises ``PullError`` with the reason."""
        response = self.get(url, params, headers)
        try:
            return response.json()
        except ValueError as error:
            raise PullError(f"the body from {url} is not JSON: {error}") from error

    def get(
        self, url: str, params: Mapping[str, object], headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        """A 2xx answer to ``GET url?params`` (any body), after the retries; else ``PullError``."""
        sent = dict(headers or {})
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        last = ""
        for attempt in range(max(1, self.tries)):
            if attempt:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self.session.get(
                    url, params=dict(params), headers=sent, timeout=self.timeout_seconds
                )
            except (requests.Timeout, requests.ConnectionError) as error:
                last = f"{type(error).__name__} after {self.timeout_seconds}s"
                logger.info("GET %s failed (%s), attempt %d", url, last, attempt + 1)
                continue
            if response.status_code in (401, 403):
                raise PullError(f"authentication failed: HTTP {response.status_code} from {url}")
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                logger.info("GET %s answered %s, attempt %d", url, last, attempt + 1)
                continue
            if response.status_code >= 400:
                raise PullError(f"HTTP {response.status_code} from {url}: {response.text[:200]}")
            return response
        raise PullError(f"{url} failed {self.tries} times; last: {last}")


@dataclass
class HttpJsonSource:
    """Readings or TV events from a paged JSON API (see the module docstring for the protocol).

    Parameters
    ----------
    name : str
        The source's name: the key of its cursor.
    kind : str
        ``readings`` or ``tv``.
    url : str
        The endpoint, without query.
    fetcher : HttpFetcher
        Token, timeout and retry policy.
    page_size : int
        Records asked per page.
    tz : str, optional
        Zone for timestamps without an offset (passed to the ingest).
    backfill : timedelta
        With no cursor yet, how far back the first pull asks (``since = now - backfill``).
    """

    name: str
    kind: str
    url: str
    fetcher: HttpFetcher = field(default_factory=HttpFetcher)
    page_size: int = 500
    tz: str | None = None
    backfill: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.kind not in COLUMNS:
            raise ValueError(f"an HTTP source gives 'readings' or 'tv', not {self.kind!r}")

    def pull(self, *, engine: Engine, now: datetime) -> PullReport:
        """Fetch and ingest every page newer than the cursor; never raises for a failed pull."""
        report = PullReport(source=self.name)
        try:
            stored = read_cursor(engine, self.name)
            since = parse_cursor(stored.cursor if stored is not None else None)
            since = since or now - self.backfill
            # The query's ``since`` stays fixed for the whole pull: moving it with the cursor
            # would shift the pages under us and skip records.
            asked = since.isoformat()
            with tempfile.TemporaryDirectory(prefix="areawatch-http-") as folder:
                page: int | None = 1
                for _ in range(MAX_PAGES):
                    if page is None:
                        break
                    params = {"since": asked, "page": page, "page_size": self.page_size}
                    body = self.fetcher.get_json(self.url, params)
                    records, next_page = self._parse(body)
                    newest = load_records(
                        engine,
                        self.name,
                        self.kind,
                        records,
                        Path(folder) / f"page{page}.csv",
                        now=now,
                        tz=self.tz,
                        report=report,
                        label=f"page {page}",
                    )
                    if newest is not None and newest > since:
                        since = newest
                        record_progress(engine, source=self.name, cursor=since.isoformat(), now=now)
                    page = next_page
        except (PullError, SQLAlchemyError, OSError) as error:
            report.error = str(error) if isinstance(error, PullError) else _describe(error)
            logger.warning("source %s: pull failed: %s", self.name, report.error)
            try_record_error(engine, self.name, report.error, now)
            return report
        record_progress(engine, source=self.name, cursor=None, now=now)
        return report

    def _parse(self, body: object) -> tuple[list[object], int | None]:
        key = LIST_KEYS[self.kind]
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise PullError(f"the body from {self.url} has no {key!r} list")
        next_page = body.get("next_page")
        if next_page is not None and (
            not isinstance(next_page, int) or isinstance(next_page, bool)
        ):
            raise PullError(f"the body from {self.url} has a next_page that is not a number")
        return body[key], next_page


def load_records(
    engine: Engine,
    source: str,
    kind: str,
    records: list[object],
    path: Path,
    *,
    now: datetime,
    tz: str | None,
    report: PullReport,
    label: str,
) -> datetime | None:
    """Write ``records`` to a CSV at ``path`` and ingest it; return the newest good timestamp.

    A record that is not an object, or lacks a field, is written with empty fields so the ingest
    quarantines it with its line, like a bad line of a file. Returns None when nothing was read.
    """
    if not records:
        return None
    columns = COLUMNS[kind]
    write_csv(path, columns, records)
    try:
        result = INGESTERS[kind](engine=engine, path=path, now=now, tz=tz)
    except IngestError as error:
        raise PullError(f"{label} could not be ingested: {error}") from error
    report.rows_inserted += result.rows_inserted
    report.rows_corrected += result.rows_corrected
    report.rows_quarantined += result.rows_quarantined
    (report.files_rejected if result.nothing_read else report.files_loaded).append(label)
    return newest_timestamp(records, tz, now)


def write_csv(path: Path, columns: Iterable[str], records: list[object]) -> None:
    columns = tuple(columns)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            if isinstance(record, dict):
                writer.writerow([_cell(record.get(column)) for column in columns])
            else:
                # Keep what was sent in the first field, so the quarantined line shows it.
                writer.writerow([json.dumps(record)[:200], *[""] * (len(columns) - 1)])


def newest_timestamp(records: list[object], tz: str | None, now: datetime) -> datetime | None:
    """The newest readable timestamp not in the future, in UTC (what the cursor holds)."""
    zone = ZoneInfo(tz) if tz else None
    newest = None
    for record in records:
        raw = record.get("timestamp") if isinstance(record, dict) else None
        try:
            stamp = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            continue
        if stamp is None:
            continue
        if stamp.tzinfo is None:
            if zone is None:
                continue  # the ingest refuses these too
            stamp = stamp.replace(tzinfo=zone)
        stamp = stamp.astimezone(UTC)
        if stamp <= now and (newest is None or stamp > newest):
            newest = stamp
    return newest


def parse_cursor(cursor: str | None) -> datetime | None:
    """A stored cursor back as an aware UTC time; None when absent or unreadable."""
    try:
        stamp = datetime.fromisoformat(cursor) if cursor else None
    except ValueError:
        return None
    if stamp is None or stamp.tzinfo is None:
        return None
    return stamp.astimezone(UTC)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:400]


def try_record_error(engine: Engine, source: str, error: str, now: datetime) -> None:
    try:
        record_error(engine, source=source, error=error, now=now)
    except SQLAlchemyError:
        logger.warning("source %s: could not record the error either", source)
