"""Sources that AreaWatch pulls on a schedule: for now, folders that utilities drop files into."""

from data.sources.base import (
    PullReport,
    Source,
    read_cursor,
    record_error,
    record_progress,
    source_health,
)
from data.sources.drop_folder import DropFolderSource

__all__ = [
    "DropFolderSource",
    "PullReport",
    "Source",
    "read_cursor",
    "record_error",
    "record_progress",
    "source_health",
]
