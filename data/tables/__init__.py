"""All SQLModel tables. Importing this package registers every table on ``SQLModel.metadata``."""

from data.tables.accounts import StaffRole, StaffUser, ViewAudit
from data.tables.detection import DetectorCheckpoint, Finding
from data.tables.incidents import Incident, IncidentEvent, Notification
from data.tables.operations import SchedulerLease, SourceCursor
from data.tables.policies import EscalationPolicy
from data.tables.readings import Ingest, QuarantinedRow, Reading, ReadingCorrection, TvEvent
from data.tables.roster import Contact, ContactRole, Household, Organisation
from data.tables.silences import Silence

__all__ = [
    "Contact",
    "ContactRole",
    "DetectorCheckpoint",
    "EscalationPolicy",
    "Finding",
    "Household",
    "Incident",
    "IncidentEvent",
    "Ingest",
    "Notification",
    "Organisation",
    "QuarantinedRow",
    "Reading",
    "ReadingCorrection",
    "SchedulerLease",
    "Silence",
    "SourceCursor",
    "StaffRole",
    "StaffUser",
    "TvEvent",
    "ViewAudit",
]
