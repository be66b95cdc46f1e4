"""Vectorised checks of one chunk's values; each bad row gets the first reason that applies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

# An ISO 8601 date and time, then (optionally) the UTC offset that makes it unambiguous.
_DATE_TIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
_OFFSET = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
NO_OFFSET = "timestamp has no UTC offset; pass --tz to interpret it"


class Reasons:
    """One slot per row: ``None`` while the row is good, else why it is quarantined."""

    def __init__(self, initial: list[str | None]) -> None:
        self.values = np.array(initial, dtype=object)

    @classmethod
    def all_good(cls, size: int) -> Reasons:
        reasons = cls([])
        reasons.values = np.full(size, None, dtype=object)
        return reasons

    @property
    def ok(self) -> np.ndarray:
        return pd.isna(self.values)

    def flag(self, mask: np.ndarray | pd.Series, reason: str) -> None:
        self.values[np.asarray(mask, dtype=bool) & self.ok] = reason

    def flag_rows(self, row_reasons: np.ndarray) -> None:
        """Give each still-good row its reason from ``row_reasons`` (``None``: no reason)."""
        flagged = ~pd.isna(row_reasons) & self.ok
        self.values[flagged] = row_reasons[flagged]

    def flag_each(
        self, mask: np.ndarray | pd.Series, values: pd.Series, describe: Callable[[str], str]
    ) -> None:
        """Flag with a reason naming the offending value (built only for the bad rows)."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool) & self.ok)
        if len(positions):
            texts = values.iloc[positions].tolist()
            self.values[positions] = [describe(text) for text in texts]


def parse_timestamps(text: pd.Series, zone: ZoneInfo | None, reasons: Reasons) -> np.ndarray:
    """Parse ISO 8601 times to UTC ``datetime64[us]`` (NaT where bad, and a reason flagged).

    A time without offset is read in ``zone`` when one is given; otherwise it is refused, because
    guessing the zone of a meter is how a whole area's readings end up nine hours off.
    """
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    missing = (text == "").to_numpy()
    reasons.flag(missing, "timestamp is missing")
    shaped = text.str.contains(_DATE_TIME, regex=True).to_numpy()
    has_offset = shaped & text.str.contains(_OFFSET, regex=True).to_numpy()
    if has_offset.any():
        result[has_offset] = pd.to_datetime(
            text[has_offset], utc=True, format="ISO8601", errors="coerce"
        ).astype("datetime64[us, UTC]")
    naive = shaped & ~has_offset
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        if zone is None:
            reasons.flag(_spread(naive, local.notna()), NO_OFFSET)
        else:
            zoned = local.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
            reasons.flag_each(
                _spread(naive, local.notna() & zoned.isna()),
                text,
                lambda value: f"local time {value!r} does not exist or is ambiguous in {zone}",
            )
            result[naive] = zoned.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    reasons.flag_each(
        result.isna().to_numpy(),
        text,
        lambda value: f"timestamp {value!r} is not an ISO 8601 date and time",
    )
    return result.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def parse_numbers(text: pd.Series, column: str, reasons: Reasons) -> np.ndarray:
    """Parse finite floats; empty and unparseable values are flagged."""
    numbers = pd.to_numeric(text, errors="coerce").astype("float64").to_numpy()
    missing = (text == "").to_numpy()
    reasons.flag(missing, f"{column} is missing")
    reasons.flag_each(
        ~np.isfinite(numbers), text, lambda value: f"{column} {value!r} is not a number"
    )
    return numbers


def flag_future(ends: np.ndarray, now: datetime, reasons: Reasons, what: str) -> None:
    """Refuse times more than five minutes after ``now``: a wrong clock or a wrong zone."""
    limit = np.datetime64(now.replace(tzinfo=None), "us") + np.timedelta64(5, "m")
    reasons.flag(
        ends > limit, f"{what} is in the future (more than 5 minutes after the ingest time)"
    )


def flag_unknown_households(household_ids: pd.Series, codes: np.ndarray, reasons: Reasons) -> None:
    reasons.flag((household_ids == "").to_numpy(), "household_id is missing")
    reasons.flag_each(
        codes < 0, household_ids, lambda value: f"unknown household {value!r} (not in the roster)"
    )


def _spread(mask: np.ndarray, subset: pd.Series) -> np.ndarray:
    """Put a boolean computed on ``text[mask]`` back onto every row."""
    full = np.zeros(len(mask), dtype=bool)
    full[mask] = subset.to_numpy(dtype=bool)
    return full
