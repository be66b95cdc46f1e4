"""A quiet household's saved state as one row of arrays, not a pickle of detector objects.

The batch path (``watch.batch_scoring``) scores a group of quiet homes as rows of
``QuietStretchState``. Saving each home as a pickle meant rebuilding its detector objects from
the rows (``to_detectors``), pickling them, and on the next run unpickling them and gathering
the rows again (``from_detectors``): at 100,000 homes a day, about a quarter of detection. A
home that stays quiet is saved instead as its row of those arrays, written and read for a whole
group with a few numpy calls; the objects are built only for a home that needs them (one going
one interval at a time), the way the long-running scheduler rebuilds its held rows
(``watch.resident``): fresh detectors with the saved parameters, then ``to_detectors``.

A row holds only what a quiet home can have: no reported episode, no open incident. Its bytes
are ``MAGIC``, the length and pickle of a small header (the detectors' parameters, the
incidents already fed back, the layout), then each array's row in a fixed order. Pickled
states from before (and from the one-at-a-time path) are still read: ``household_state``.
"""

from __future__ import annotations

import pickle
import struct
from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np

from detectors.batch import BatchState
from detectors.batch_quiet import QuietStretchState, detector_parameters
from detectors.inactivity import QuietStretchDetector
from detectors.outage import DataOutage
from watch.exact_counts import as_counts, from_counts
from watch.household_state import HouseholdState, Reported
from watch.slots import TvState

MAGIC = b"AWR1"
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class RowHeader:
    """What a group of rows shares: rows with equal headers are decoded together."""

    inactivity: tuple  # ``detector_parameters`` of the QuietStretchDetector
    outage: tuple  # and of the DataOutage
    outcomes_fed: tuple[int, ...]
    small_steps: bool  # stretch lengths stored as one byte (every one under 127 h)
    window_in_counts: bool  # the week of readings stored as int16 counts (``_WINDOW_SCALE``)


@dataclass
class Rows:
    """Households' states as arrays: the detectors' rows, and what the application keeps."""

    state: QuietStretchState
    last_data: np.ndarray  # DataOutage's ``_last_data`` (epoch s; NaN: none yet)
    tv_on_since: np.ndarray  # TvState's ``on_since`` (epoch s; NaN: the set is off)

    def take(self, order: np.ndarray) -> Rows:
        """The rows in ``order`` (copies)."""
        return Rows(self.state.rows(order), self.last_data[order], self.tv_on_since[order])


def concat(parts: list[Rows]) -> Rows:
    """The rows of ``parts``, one after another (one part: as it is)."""
    if len(parts) == 1:
        return parts[0]
    per_bin = parts[0].state.steps.shape[2]
    joined = _template(sum(len(p.last_data) for p in parts), per_bin)
    start = 0
    for part in parts:
        stop = start + len(part.last_data)
        for target, source in zip(_arrays(joined), _arrays(part), strict=True):
            target[start:stop] = source
        start = stop
    return joined


def gather(saved: list[bytes | HouseholdState]) -> tuple[Rows, list[tuple[int, ...]]]:
    """Homes' states as rows, in their order, and each one's incidents fed back: saved rows
    are decoded together, ``HouseholdState``s (pickled ones, already read: from before rows,
    or from the one-at-a-time path) are gathered from their detectors; they must all share
    their detectors' parameters. Raises ``ValueError`` for a history rows cannot hold."""
    parts: dict[RowHeader | None, list[int]] = defaultdict(list)  # None: the objects
    for position, item in enumerate(saved):
        parts[header_of(item) if isinstance(item, bytes) else None].append(position)
    pieces, order, fed = [], [], [()] * len(saved)
    for header, positions in parts.items():
        if header is None:
            states = [saved[p] for p in positions]
            pieces.append(from_states(states))
            for position, state in zip(positions, states, strict=True):
                fed[position] = tuple(state.outcomes_fed)
        else:
            pieces.append(decode([saved[p] for p in positions], header))
            for position in positions:
                fed[position] = header.outcomes_fed
        order.extend(positions)
    rows = concat(pieces)
    if order != sorted(order):
        rows = rows.take(np.argsort(order))
    return rows, fed


def from_states(states: list[HouseholdState]) -> Rows:
    """Rows from ``HouseholdState``s that ``can_be_row``."""
    return Rows(
        QuietStretchState.from_detectors([state.inactivity for state in states]),
        last_data=epochs([getattr(s.outage, "_last_data", None) for s in states]),
        tv_on_since=epochs([s.tv.on_since for s in states]),
    )


def epochs(whens: list[datetime | None]) -> np.ndarray:
    """Times as epoch seconds, NaN for ``None``."""
    return np.array([np.nan if w is None else w.timestamp() for w in whens], dtype=np.float64)


def whens(epochs: np.ndarray) -> list[datetime | None]:
    """The inverse of ``epochs``."""
    return [None if np.isnan(e) else datetime.fromtimestamp(e, tz=UTC) for e in epochs.tolist()]


def is_row(saved: bytes | None) -> bool:
    return saved is not None and saved[: len(MAGIC)] == MAGIC


def _body_start(saved: bytes) -> int:
    return len(MAGIC) + _LENGTH.size + _LENGTH.unpack_from(saved, len(MAGIC))[0]


def header_of(saved: bytes) -> RowHeader:
    """The header of a row (cached: a group's rows share a handful of headers)."""
    size = _LENGTH.unpack_from(saved, len(MAGIC))[0]
    start = len(MAGIC) + _LENGTH.size
    return _parse_header(bytes(saved[start : start + size]))


@lru_cache(maxsize=256)
def _parse_header(raw: bytes) -> RowHeader:
    return RowHeader(*pickle.loads(raw))  # noqa: S301 (our own rows)


def _header_bytes(header: RowHeader) -> bytes:
    raw = pickle.dumps(
        (
            header.inactivity,
            header.outage,
            header.outcomes_fed,
            header.small_steps,
            header.window_in_counts,
        ),
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    return MAGIC + _LENGTH.pack(len(raw)) + raw


# -- the layout of a row ----------------------------------------------------------------------


def _arrays(rows: Rows) -> list[np.ndarray]:
    """Every array of ``rows`` in the order a row stores them."""
    state = rows.state
    evidence = [getattr(state.evidence, f.name) for f in fields(BatchState)]
    rest = [getattr(state, f.name) for f in fields(state) if f.name != "evidence"]
    return [*evidence, *rest, rows.last_data, rows.tv_on_since]


def _steps_index() -> int:
    return len(fields(BatchState)) + [f.name for f in fields(QuietStretchState)][1:].index("steps")


_WINDOW = [f.name for f in fields(BatchState)].index("window")
#: The week of slot kWh as int16 counts of half a watt-hour where that is exact: meters count
#: whole Wh and an hourly one's reading is split over two slots (16 kWh a slot at most).
_WINDOW_SCALE = 2000


def _template(households: int, history_per_bin: int) -> Rows:
    return Rows(
        QuietStretchState.fresh(households, history_per_bin),
        last_data=np.full(households, np.nan),
        tv_on_since=np.full(households, np.nan),
    )


# -- writing ----------------------------------------------------------------------------------


def encode(
    rows: Rows, inactivity: tuple, outage: tuple, outcomes_fed: list[tuple[int, ...]]
) -> list[bytes]:
    """Each household's saved bytes; ``outcomes_fed``: each one's incidents fed back."""
    arrays = _arrays(rows)
    households = len(rows.last_data)
    steps_at = _steps_index()
    steps = arrays[steps_at]
    small = bool(steps.size == 0 or steps.max() < np.iinfo(np.uint8).max - 1)
    if small:
        arrays[steps_at] = (steps + 1).astype(np.uint8)  # -1 (no stretch) becomes 0
    counts = as_counts(arrays[_WINDOW], _WINDOW_SCALE, np.int16)
    if counts is not None:
        arrays[_WINDOW] = counts
    body = np.concatenate(
        [np.ascontiguousarray(a).reshape(households, -1).view(np.uint8) for a in arrays], axis=1
    )
    headers: dict[tuple[int, ...], bytes] = {}
    saved = []
    for row, fed in enumerate(outcomes_fed):
        prefix = headers.get(fed)
        if prefix is None:
            header = RowHeader(inactivity, outage, fed, small, counts is not None)
            prefix = headers[fed] = _header_bytes(header)
        saved.append(prefix + body[row].tobytes())
    return saved


# -- reading ----------------------------------------------------------------------------------


def decode(saved: list[bytes], header: RowHeader) -> Rows:
    """The rows of ``saved``, whose headers must all have ``header``'s layout (its parameters
    and ``small_steps``, ``window_in_counts``; they may differ in the incidents fed back)."""
    per_bin = dict(header.inactivity)["history_per_bin"]
    rows = _template(len(saved), per_bin)
    targets = _arrays(rows)
    steps_at = _steps_index()
    stored = {  # the arrays written narrower than they are held
        steps_at: header.small_steps and np.uint8,
        _WINDOW: header.window_in_counts and np.int16,
    }
    widths = [
        (a[0].size if a.ndim > 1 else 1) * np.dtype(stored.get(i) or a.dtype).itemsize
        for i, a in enumerate(targets)
    ]
    body = np.frombuffer(b"".join(s[_body_start(s) :] for s in saved), dtype=np.uint8)
    body = body.reshape(len(saved), sum(widths))
    offset = 0
    for index, (target, width) in enumerate(zip(targets, widths, strict=True)):
        part = np.ascontiguousarray(body[:, offset : offset + width])
        offset += width
        if index == steps_at and header.small_steps:
            target[...] = part.reshape(target.shape).astype(target.dtype) - 1
        elif index == _WINDOW and header.window_in_counts:
            counts = part.view(np.int16).reshape(target.shape)
            target[...] = from_counts(counts, _WINDOW_SCALE, target.dtype)
        else:
            target[...] = part.view(target.dtype).reshape(target.shape)
    return rows


def household_states(
    rows: Rows, inactivity: tuple, outage: tuple, outcomes_fed: list[tuple[int, ...]]
) -> list[HouseholdState]:
    """The ``HouseholdState`` of each row, as the one-at-a-time path would hold it
    (``inactivity``, ``outage``: the detectors' parameters; ``outcomes_fed``: each row's)."""
    detectors = [QuietStretchDetector(**dict(inactivity)) for _ in rows.last_data]
    rows.state.to_detectors(detectors)
    states = []
    for detector, last, on, fed in zip(
        detectors, rows.last_data, rows.tv_on_since, outcomes_fed, strict=True
    ):
        data_outage = DataOutage(**dict(outage))
        if not np.isnan(last):
            data_outage._last_data = _when(last)
        states.append(
            HouseholdState(
                inactivity=detector,
                outage=data_outage,
                tv=TvState(None if np.isnan(on) else _when(on)),
                outcomes_fed=list(fed),
            )
        )
    return states


def household_state(saved: bytes) -> HouseholdState:
    """A saved state in either form: a row, or a pickled ``HouseholdState``."""
    if is_row(saved):
        header = header_of(saved)
        rows = decode([saved], header)
        (state,) = household_states(rows, header.inactivity, header.outage, [header.outcomes_fed])
        return state
    return pickle.loads(saved)  # noqa: S301 (our own rows)


def can_be_row(state: HouseholdState) -> bool:
    """Whether ``state`` is all a row holds (a quiet home's, with the default detectors)."""
    return (
        state.inactivity_reported == Reported()
        and state.outage_reported == Reported()
        and type(state.inactivity) is QuietStretchDetector
        and type(state.outage) is DataOutage
    )


def parameters(state: HouseholdState) -> tuple[tuple, tuple]:
    return detector_parameters(state.inactivity), detector_parameters(state.outage)


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(float(epoch), tz=UTC)
