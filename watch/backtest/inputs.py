"""Reading the backtest's input files: readings, TV events, roster and labels (CSV or Parquet).

The files follow the project's contracts (``data/sample/README.md``): readings
``household_id,timestamp,kwh`` with ``timestamp`` the END of the interval, ISO 8601 with an
offset; TV ``household_id,timestamp,event[,channel]``; roster ``household_id,...,timezone``;
labels ``household_id,onset[,variant]``. A Parquet file may carry aware timestamps instead of
text, or a ``timestamp_utc`` column (the shared London extract). Times without an offset are
refused: guessing a meter's zone shifts a whole area by hours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from watch.backtest.metrics import Label


class InputError(ValueError):
    """An input file the backtest cannot use (missing column, time without offset)."""


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A CSV (optionally gzipped) or Parquet file as a frame; all CSV columns read as text."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(path, columns=columns)
    return pd.read_csv(path, dtype=str, keep_default_na=False, usecols=columns)


def _time_column(frame: pd.DataFrame, path: Path, names: tuple[str, ...]) -> pd.Series:
    for name in names:
        if name in frame.columns:
            values = frame[name]
            break
    else:
        raise InputError(f"{path.name}: needs a column {' or '.join(names)}")
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.dt.tz is None:
            if name == "timestamp_utc":
                return values.dt.tz_localize("UTC")
            raise InputError(f"{path.name}: {name} has no time zone")
        return values.dt.tz_convert("UTC")
    text = values.astype(str).str.strip()
    if not text.str.contains(r"(?:[Zz]|[+-]\d{2}:?\d{2})$", regex=True).all():
        raise InputError(f"{path.name}: every {name} needs a UTC offset (e.g. +09:00)")
    return pd.to_datetime(text, utc=True, format="ISO8601")


def to_ns(times: pd.Series) -> np.ndarray:
    """Aware timestamps as int64 UTC nanoseconds."""
    utc = times.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns")
    return utc.to_numpy(dtype="datetime64[ns]").view(np.int64).copy()


def load_readings(path: Path) -> pd.DataFrame:
    """``household_id`` (str), ``end_ns`` (int64 UTC ns), ``kwh`` (float) sorted by household."""
    frame = read_table(path)
    for column in ("household_id", "kwh"):
        if column not in frame.columns:
            raise InputError(f"{path.name}: needs a column {column}")
    times = _time_column(frame, path, ("timestamp", "timestamp_utc"))
    kwh = pd.to_numeric(frame["kwh"], errors="coerce").to_numpy(float)
    out = pd.DataFrame(
        {"household_id": frame["household_id"].astype(str), "end_ns": to_ns(times), "kwh": kwh}
    )
    out = out[np.isfinite(out["kwh"].to_numpy())]
    return out.sort_values(["household_id", "end_ns"], kind="stable").reset_index(drop=True)


def load_tv(path: Path) -> pd.DataFrame:
    """``household_id``, ``at_ns`` (int64 UTC ns), ``event`` sorted by household and time."""
    frame = read_table(path)
    for column in ("household_id", "event"):
        if column not in frame.columns:
            raise InputError(f"{path.name}: needs a column {column}")
    times = _time_column(frame, path, ("timestamp",))
    out = pd.DataFrame(
        {
            "household_id": frame["household_id"].astype(str),
            "at_ns": to_ns(times),
            "event": frame["event"].astype(str).str.strip(),
        }
    )
    return out.sort_values(["household_id", "at_ns"], kind="stable").reset_index(drop=True)


def load_timezones(path: Path) -> dict[str, str]:
    """household_id -> IANA zone from a roster (rows without a zone are left out)."""
    frame = read_table(path)
    if "household_id" not in frame.columns or "timezone" not in frame.columns:
        raise InputError(f"{path.name}: a roster needs household_id and timezone columns")
    zones = frame[["household_id", "timezone"]].astype(str)
    zones = zones[zones["timezone"].str.strip() != ""]
    return dict(zip(zones["household_id"], zones["timezone"].str.strip(), strict=True))


def load_labels(path: Path) -> list[Label]:
    frame = read_table(path)
    if "household_id" not in frame.columns:
        raise InputError(f"{path.name}: needs a column household_id")
    onsets = _time_column(frame, path, ("onset",))
    variants = frame["variant"].astype(str) if "variant" in frame.columns else None
    return [
        Label(
            household_id=str(household_id),
            onset=onset.to_pydatetime(),
            variant=None if variants is None or not variants.iloc[i] else variants.iloc[i],
        )
        for i, (household_id, onset) in enumerate(zip(frame["household_id"], onsets, strict=True))
    ]
