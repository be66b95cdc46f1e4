"""Writing frames as CSV that is byte-for-byte reproducible (and gzip with no timestamp)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd

#: Columns written with a fixed number of decimals, so floats never print differently.
DECIMALS = {"kwh": 3, "lat": 5, "lon": 5}


def iso_local(stamps: pd.Series) -> pd.Series:
    """Aware timestamps as ISO 8601 with a ``+09:00``-style offset, to the second.

    >>> iso_local(pd.Series(pd.to_datetime(["2025-01-06 07:30"]).tz_localize("Asia/Tokyo")))[0]
    '2025-01-06T07:30:00+09:00'
    """
    offset = stamps.dt.strftime("%z")
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%S") + offset.str[:3] + ":" + offset.str[3:]


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV with ``\\n`` line ends, fixed decimals and ISO timestamps."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = iso_local(out[column])
        elif column in DECIMALS:
            out[column] = out[column].map(lambda v, d=DECIMALS[column]: f"{v:.{d}f}")
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path``; a ``.gz`` path is gzipped with mtime 0 and no file name."""
    data = csv_bytes(frame)
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
            gz.write(data)
        data = buffer.getvalue()
    path.write_bytes(data)
    return path
