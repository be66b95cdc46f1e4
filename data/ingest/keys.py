"""Keys across a whole file: known households, and duplicate keys inside one file.

Both work on compact columns (integer household codes, ``datetime64`` times, floats), so a
million-row file costs tens of megabytes, not a million Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from data.tables import Household


@dataclass(frozen=True)
class KnownHouseholds:
    """The roster's household ids, loaded once per ingest; a household's code is its position."""

    ids: pd.Index

    @classmethod
    def load(cls, engine: Engine) -> KnownHouseholds:
        with engine.connect() as connection:
            ids = connection.execute(select(Household.id).order_by(Household.id)).scalars().all()
        return cls(pd.Index(ids, dtype=object))

    def codes(self, household_ids: pd.Series) -> np.ndarray:
        """Each id's code, or -1 for an id the roster does not know."""
        return self.ids.get_indexer(household_ids.astype(object))

    def id_array(self, codes: np.ndarray) -> np.ndarray:
        return self.ids.to_numpy(dtype=object)[codes]


@dataclass(frozen=True)
class Duplicates:
    """Positions (in the frame) of conflicting rows and of identical repeats to drop."""

    conflicting: np.ndarray
    repeats: np.ndarray

    def keep_mask(self, size: int) -> np.ndarray:
        keep = np.ones(size, dtype=bool)
        keep[self.conflicting] = False
        keep[self.repeats] = False
        return keep


def find_duplicates(frame: pd.DataFrame, keys: list[str], values: list[str]) -> Duplicates:
    """Find keys that occur more than once in one file (``frame`` in file order).

    If every row of a key carries the same values, the later rows are plain repeats (dropped).
    If the values differ, every row of that key conflicts: nothing says which one is right.
    """
    none = np.array([], dtype=np.int64)
    repeated = frame.duplicated(keys, keep=False).to_numpy()
    if not repeated.any():
        return Duplicates(none, none)
    positions = np.flatnonzero(repeated)
    rows = frame.iloc[positions].reset_index(drop=True)
    distinct = rows.drop_duplicates(keys + values)
    bad_keys = distinct[distinct.duplicated(keys, keep=False)][keys].drop_duplicates()
    marked = rows[keys].merge(bad_keys, on=keys, how="left", indicator=True)
    in_conflict = (marked["_merge"] == "both").to_numpy()
    agreeing = rows[~in_conflict]
    repeat = agreeing.duplicated(keys, keep="first").to_numpy()
    return Duplicates(positions[in_conflict], positions[~in_conflict][repeat])
