"""What an ingest tells its caller: counts, the first bad lines, and the households it touched."""

from __future__ import annotations

from dataclasses import dataclass, field

REPORTED_LINES = 100


class IngestError(ValueError):
    """The whole file cannot be ingested (unreadable, or a required column is missing)."""


@dataclass(frozen=True, order=True)
class QuarantinedLine:
    """One rejected line: its 1-based number in the file (the header is line 1) and why."""

    line_number: int
    reason: str


@dataclass
class IngestReport:
    """The outcome of one file's ingest; the same counts are stored on its ``Ingest`` row.

    ``rows_read`` = inserted + unchanged + corrected + quarantined, where identical duplicate
    lines inside one file count as unchanged (they add nothing).
    """

    ingest_id: int
    kind: str
    source: str
    rows_read: int = 0
    rows_inserted: int = 0
    rows_unchanged: int = 0
    rows_corrected: int = 0
    rows_quarantined: int = 0
    quarantined: list[QuarantinedLine] = field(default_factory=list)
    households: set[str] = field(default_factory=set)

    @property
    def rows_loaded(self) -> int:
        return self.rows_inserted + self.rows_unchanged + self.rows_corrected

    @property
    def nothing_read(self) -> bool:
        """True when not one row could be read and loaded (the CLI's only failure case)."""
        return self.rows_loaded == 0
