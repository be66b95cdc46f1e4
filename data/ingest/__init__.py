"""Ingestion of readings, TV events and the roster: idempotent, chunked, quarantining bad rows."""

from data.ingest.readings import ingest_readings
from data.ingest.report import IngestError, IngestReport, QuarantinedLine
from data.ingest.roster import ingest_contacts, ingest_households
from data.ingest.tv import ingest_tv

__all__ = [
    "IngestError",
    "IngestReport",
    "QuarantinedLine",
    "ingest_contacts",
    "ingest_households",
    "ingest_readings",
    "ingest_tv",
]
