"""Smart meters published on a FIWARE Orion context broker (NGSI v2), polled for current state.

What this covers: ``GET {url}/v2/entities?type=<entity_type>&options=keyValues&limit&offset``
(with ``Fiware-Service`` / ``Fiware-ServicePath`` headers and an optional bearer token for a
PEP proxy), where each entity is one household's meter::

    {"id": "urn:ngsi-ld:SmartMeter:H001", "type": "SmartMeter", "householdId": "H001",
     "<attribute>": 0.21, "dateObserved": "2025-01-06T08:30:00+09:00"}

Each pull pages through all the entities and records one reading per entity whose
``dateObserved`` is newer than the cursor (the newest ``dateObserved`` loaded before), taking
``<attribute>`` as the kWh of the interval ending at ``dateObserved`` (not a cumulative register).
``householdId`` names the household; without it, the last ``:`` part of the entity id does.

What this does not cover: Orion keeps only each entity's *current* state, so readings that came
and went between two pulls are never seen; poll at least as often as meters report. Their history
lives in QuantumLeap or STH-Comet (temporal APIs), which this source does not read. Also not
covered: NGSI-LD, subscriptions/notifications, and a meter whose update reaches the broker after
a newer update of another meter was already pulled (``lookback`` re-reads a window to catch those).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

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


@dataclass
class NgsiV2Source:
    """Meter readings from an Orion context broker's entities (see the module docstring).

    Parameters
    ----------
    name : str
        The source's name: the key of its cursor.
    url : str
        The broker's base URL (``/v2/entities`` is appended).
    entity_type : str
        The entities' ``type`` (e.g. ``SmartMeter``).
    attribute : str
        The attribute holding the interval's kWh.
    fiware_service, fiware_service_path : str, optional
        The tenant headers; omitted when None.
    fetcher : HttpFetcher
        Token, timeout and retry policy.
    page_size : int
        ``limit`` per request (Orion allows at most 1000).
    tz : str, optional
        Zone for ``dateObserved`` values without an offset.
    lookback : timedelta
        Also re-read entities observed this long before the cursor (reloaded as unchanged).
    """

    name: str
    url: str
    entity_type: str = "SmartMeter"
    attribute: str = "kwh"
    fiware_service: str | None = None
    fiware_service_path: str | None = "/"
    fetcher: HttpFetcher = field(default_factory=HttpFetcher)
    page_size: int = 100
    tz: str | None = None
    lookback: timedelta = timedelta(0)
    kind: str = "readings"

    def pull(self, *, engine: Engine, now: datetime) -> PullReport:
        """Read every entity, load those observed after the cursor; never raises for a failure."""
        report = PullReport(source=self.name)
        try:
            stored = read_cursor(engine, self.name)
            cursor = parse_cursor(stored.cursor if stored is not None else None)
            entities = self._entities()
            after = None if cursor is None else cursor - self.lookback
            records = [self._record(entity) for entity in entities]
            fresh = [r for r in records if _observed_after(r, after, self.tz)]
            with tempfile.TemporaryDirectory(prefix="areawatch-ngsi-") as folder:
                newest = load_records(
                    engine,
                    self.name,
                    "readings",
                    fresh,
                    Path(folder) / "entities.csv",
                    now=now,
                    tz=self.tz,
                    report=report,
                    label=f"{len(fresh)} of {len(entities)} entities",
                )
            if newest is not None and (cursor is None or newest > cursor):
                record_progress(engine, source=self.name, cursor=newest.isoformat(), now=now)
        except (PullError, SQLAlchemyError, OSError) as error:
            report.error = str(error) if isinstance(error, PullError) else f"{error!r}"[:400]
            logger.warning("source %s: pull failed: %s", self.name, report.error)
            try_record_error(engine, self.name, report.error, now)
            return report
        record_progress(engine, source=self.name, cursor=None, now=now)
        return report

    def _entities(self) -> list[object]:
        headers = {}
        if self.fiware_service:
            headers["Fiware-Service"] = self.fiware_service
        if self.fiware_service_path:
            headers["Fiware-ServicePath"] = self.fiware_service_path
        url = self.url.rstrip("/") + "/v2/entities"
        entities: list[object] = []
        for page in range(MAX_PAGES):
            params = {
                "type": self.entity_type,
                "options": "keyValues",
                "limit": self.page_size,
                "offset": page * self.page_size,
            }
            body = self.fetcher.get_json(url, params, headers)
            if not isinstance(body, list):
                raise PullError(f"the body from {url} is not a list of entities")
            entities.extend(body)
            if len(body) < self.page_size:
                break
        return entities

    def _record(self, entity: object) -> object:
        """The entity as a reading record; a non-object is passed on for the ingest to refuse."""
        if not isinstance(entity, dict):
            return entity
        household = entity.get("householdId")
        if household is None and isinstance(entity.get("id"), str):
            household = entity["id"].rsplit(":", 1)[-1]
        return {
            "household_id": household,
            "timestamp": entity.get("dateObserved"),
            "kwh": entity.get(self.attribute),
        }


def _observed_after(record: object, after: datetime | None, tz: str | None) -> bool:
    # An unreadable record is kept: the ingest quarantines it with the reason.
    if after is None or not isinstance(record, dict):
        return True
    raw = record.get("timestamp")
    stamp = parse_cursor(raw) if isinstance(raw, str) else None
    if stamp is None and isinstance(raw, str) and tz is not None:
        try:
            stamp = datetime.fromisoformat(raw).replace(tzinfo=ZoneInfo(tz))
        except ValueError:
            return True
    return stamp is None or stamp > after
