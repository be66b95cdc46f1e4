"""Snapshot files of the state ``areawatch run`` holds in memory (``watch.resident``), so that
the service stops and starts in seconds instead of writing and reading every household's state
through the database.

**Layout.** ``<folder>/snapshot-<n>/`` holds ``manifest.json`` (format version, the database it
belongs to, when it was written, and per block the detector parameters it was built with) and
one directory per block with one ``.npy`` file per array: every array of the block's
``QuietStretchState``, then ``cursor``, ``base``, ``flush_at`` and ``last_data`` (epoch
seconds), ``ids`` (fixed-width text), ``free`` (the free rows, in the order they are handed
out) and ``fed_rows``/``fed_incidents`` (the outcomes already fed back, as pairs). No pickle:
files are read with ``allow_pickle=False``. A save is bound by the bytes the disk takes, so
arrays are written smaller than they are held, never lossily, and widened back on reading:
integers in the narrowest integer type that holds their values (the stretch history's
half-hours fit a byte unless a stretch reached 63.5 h); the week of slot kWh and each bin's
shortest stretch, whose values lie on a grid (whole or half Wh; half-hours), as integer counts
of its step, NaN and infinities as sentinels, wherever decoding gives every value of the block
back bit for bit (the block's ``scaled`` in the manifest names the step; a block off the grid
keeps its floats); ids as ASCII bytes unless one is not ASCII. A million households take about
4 GB (6.2 GB with only the integers narrowed).

**Crash safety.** A snapshot is written into ``snapshot-<n>.tmp``, every file and directory
fsynced, then renamed to ``snapshot-<n>``; only then are older snapshots removed. The newest
``snapshot-<n>`` is therefore always whole: a crash while writing leaves the previous one (or
none), and the leftover ``.tmp`` is removed by the next write.

**Why a snapshot of any age is safe to load.** A row holds the state at its ``cursor``, derived
by quiet scoring from the database checkpoint whose cursor is ``base``; while a household is
resident nothing else is written for it (its findings, incidents and checkpoint are written
only by the ordinary path, after it is handed back). Every write of a checkpoint moves its
cursor forward (the ordinary path writes only households it scored new slots for, a flush only
rows ahead of their base), so "the database's cursor is still ``base``" means "the database
still holds the very checkpoint this row was derived from". The adopted rows keep their
``base``; the service's first run calls ``reconcile`` as every run does, which evicts each
household whose checkpoint moved since (``areawatch detect`` from cron while the service was
down, a flush by a later process that then died, a household gone from the roster): those go
the ordinary way from the database. The others go on from their snapshot cursor, scoring only
slots after it, as the process that wrote the snapshot would have. A stale snapshot therefore
costs re-scoring, never a finding twice or a slot lost; loading the same snapshot twice (a
process that loaded it died without writing another) is just as safe. The rest of a row is
what the running store had: ``flush_at`` is data time, so a row due for its database write is
written by the first run; ``fed`` lists the outcomes already fed back, so an answer that came
while the service was down is still seen as new and hands the household back;
``last_data`` is the outage detector's as of the cursor. A snapshot written for another
database, by another format version, or whose blocks name detector parameters this version
does not have (a release that added or removed one) is ignored with one log line, as is an
unreadable one: the service then starts empty and reads the database, as without snapshots.
Parameter *values* are kept as written: the database path keeps each household's detectors
with the parameters they were made with too, so changed defaults apply to new households only.

The database checkpoints stay a consistent, older (cursor, state) pair throughout, so
``areawatch detect`` from cron works beside or instead of the service. Stopping writes a
snapshot instead of the database flush; nothing writes one periodically (a crash, as before,
costs re-scoring from the checkpoints, which the data-time flush keeps at most
``flush_every`` behind).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from detectors.batch import BatchState
from detectors.batch_quiet import QuietStretchState, detector_parameters
from detectors.inactivity import QuietStretchDetector
from detectors.outage import DataOutage
from watch.exact_counts import as_counts, from_counts
from watch.resident import Block, ResidentStates

log = logging.getLogger(__name__)

#: Bumped whenever the files' meaning changes, so an older snapshot is ignored, not misread.
#: 2: floats on a grid stored as integer counts (``_SCALES``), ids as ASCII bytes.
FORMAT = 2
MANIFEST = "manifest.json"
_SNAPSHOT = re.compile(r"snapshot-(\d+)")
_BLOCK = re.compile(r"block-\d+")
_EPOCHS = ("cursor", "base", "flush_at", "last_data")
#: Float arrays written as integer counts of ``1 / scale`` where a block's values allow it, with
#: the (scale, integer type) pairs tried in turn. Slot kWh are meter readings summed and rounded
#: to 6 decimals: meters count whole Wh, and an hourly meter's reading split over two slots
#: gives half Wh, so nearly every block fits int16 counts of 0.5 Wh (16 kWh a slot at most);
#: one holding other sums, int32 counts of 1e-6 kWh. The week of them is 43% of a household's
#: bytes as float64. A bin's shortest stretch is a whole number of half-hours.
_SCALES: dict[str, tuple[tuple[int, type[np.integer]], ...]] = {
    "evidence.window": ((2000, np.int16), (1_000_000, np.int32)),
    "bin_min": ((2, np.int8), (2, np.int16)),
}


class SnapshotUnusable(Exception):
    """A snapshot that cannot be adopted; the message says why (never which households)."""


@dataclass(frozen=True)
class SnapshotWritten:
    path: Path
    households: int
    bytes: int


# -- arrays of a block ------------------------------------------------------------------------


def _state_arrays(state: QuietStretchState) -> dict[str, np.ndarray]:
    arrays = {f"evidence.{f.name}": getattr(state.evidence, f.name) for f in fields(BatchState)}
    arrays |= {f.name: getattr(state, f.name) for f in fields(state) if f.name != "evidence"}
    return arrays


def _state_of(arrays: dict[str, np.ndarray]) -> QuietStretchState:
    evidence = {
        name.removeprefix("evidence."): value
        for name, value in arrays.items()
        if name.startswith("evidence.")
    }
    rest = {name: value for name, value in arrays.items() if not name.startswith("evidence.")}
    return QuietStretchState(evidence=BatchState(**evidence), **rest)


def _narrowest(array: np.ndarray) -> np.ndarray:
    """An integer array in the smallest integer type that holds its values (exactly)."""
    if array.dtype.kind != "i" or array.dtype.itemsize == 1 or not array.size:
        return array
    low, high = array.min(), array.max()
    for narrow in (np.int8, np.int16, np.int32):
        info = np.iinfo(narrow)
        if narrow().itemsize < array.dtype.itemsize and info.min <= low and high <= info.max:
            return array.astype(narrow)
    return array


def _encoded(name: str, array: np.ndarray) -> tuple[np.ndarray, int | None]:
    """What is written for the array ``name``, and the scale of its counts (None: as held)."""
    for scale, dtype in _SCALES.get(name, ()):
        counts = as_counts(array, scale, dtype)
        if counts is not None:
            return counts, scale
    return _narrowest(array), None


def _ids_array(ids: list[str | None]) -> np.ndarray:
    """Fixed-width ASCII bytes, a quarter of numpy's unicode, unless an id is not ASCII."""
    held = ["" if i is None else i for i in ids]
    try:
        return np.array(held, dtype=np.bytes_)
    except UnicodeEncodeError:
        return np.array(held, dtype=np.str_)


def _block_arrays(block: Block) -> dict[str, np.ndarray]:
    arrays = _state_arrays(block.state)
    arrays |= {name: getattr(block, name) for name in _EPOCHS}
    arrays["ids"] = _ids_array(block.ids)
    arrays["free"] = np.array(block.free, dtype=np.int64)
    pairs = [(row, incident) for row, fed in block.fed.items() for incident in fed]
    arrays["fed_rows"] = np.array([row for row, _ in pairs], dtype=np.int64)
    arrays["fed_incidents"] = np.array([incident for _, incident in pairs], dtype=np.int64)
    return arrays


# -- writing -----------------------------------------------------------------------------------


def save_snapshot(
    store: ResidentStates, folder: Path, *, database: str, now: datetime
) -> SnapshotWritten:
    """Write ``store`` as the newest snapshot in ``folder`` (created if missing); ``database``
    names the database whose checkpoints the rows were derived from. Raises ``OSError``."""
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("snapshot-*.tmp"):
        shutil.rmtree(leftover)  # a write that crashed
    number = max((n for n, _ in _snapshots(folder)), default=0) + 1
    final = folder / f"snapshot-{number:06d}"
    part = folder / f"{final.name}.tmp"
    part.mkdir()
    try:
        households, written = _write_snapshot(store, part, database=database, now=now)
        _publish(part, final)
    except OSError:
        # A full disk, most likely: do not leave it fuller (a crash leaves the part instead,
        # for the next write to remove).
        shutil.rmtree(part, ignore_errors=True)
        raise
    for _, older in _snapshots(folder):
        if older != final:
            shutil.rmtree(older, ignore_errors=True)
    return SnapshotWritten(final, households, written)


def _write_snapshot(
    store: ResidentStates, part: Path, *, database: str, now: datetime
) -> tuple[int, int]:
    """Every file of a snapshot, into ``part``, fsynced; how many households and bytes.

    The files are fsynced once all are written, not each in turn: the disk then writes back
    while the next blocks are prepared (a quarter faster than waiting for each file)."""
    blocks, households, written = [], 0, 0
    paths = []
    for block in store.blocks():
        held = len(block.ids) - len(block.free)
        if not held:
            continue
        name = f"block-{len(blocks):05d}"
        (part / name).mkdir()
        scaled = {}
        for array_name, array in _block_arrays(block).items():
            encoded, scale = _encoded(array_name, array)
            if scale is not None:
                scaled[array_name] = scale
            paths.append(part / name / f"{array_name}.npy")
            written += _write_array(paths[-1], encoded)
        paths.append(part / name)
        blocks.append(
            {
                "name": name,
                "rows": len(block.ids),
                "households": held,
                "inactivity": dict(block.inactivity),
                "outage": dict(block.outage),
                "scaled": scaled,
            }
        )
        households += held
    for path in paths:
        _fsync(path)
    manifest = {
        "format": FORMAT,
        "database": database,
        "written_at": now.isoformat(),
        "households": households,
        "blocks": blocks,
    }
    with open(part / MANIFEST, "w", encoding="utf-8") as file:
        json.dump(manifest, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    _fsync(part)
    return households, written


def _write_array(path: Path, array: np.ndarray) -> int:
    with open(path, "wb") as file:
        np.save(file, array, allow_pickle=False)
        return file.tell()


def _publish(part: Path, final: Path) -> None:
    """The one step that makes a snapshot visible, whole."""
    os.rename(part, final)
    _fsync(final.parent)


def _fsync(path: Path) -> None:
    """Make a written file, or a directory's entries, durable."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _snapshots(folder: Path) -> list[tuple[int, Path]]:
    """The whole snapshots in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        matched = _SNAPSHOT.fullmatch(path.name)
        if matched and path.is_dir():
            found.append((int(matched.group(1)), path))
    return sorted(found)


# -- reading -----------------------------------------------------------------------------------


def load_snapshot(folder: Path, *, database: str) -> tuple[list[Block], dict] | None:
    """The newest snapshot's blocks and manifest, or None when there is none; raises
    ``SnapshotUnusable`` for one that must not be adopted."""
    snapshots = _snapshots(folder)
    if not snapshots:
        return None
    path = snapshots[-1][1]
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        _check_manifest(manifest, database)
        if any(not _BLOCK.fullmatch(entry["name"]) for entry in manifest["blocks"]):
            raise SnapshotUnusable("a block name that is not one")
        blocks = [_read_block(path / entry["name"], entry) for entry in manifest["blocks"]]
    except SnapshotUnusable:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        # What numpy and json raise for truncated or garbled files; no household ids in them.
        raise SnapshotUnusable(f"unreadable: {type(error).__name__}: {error}") from error
    ids = [i for block in blocks for i in block.ids if i is not None]
    if len(ids) != len(set(ids)) or len(ids) != manifest["households"]:
        raise SnapshotUnusable("its blocks do not add up to the households it lists")
    return blocks, manifest


def _check_manifest(manifest: dict, database: str) -> None:
    if manifest.get("format") != FORMAT:
        raise SnapshotUnusable(f"format {manifest.get('format')!r}, this version reads {FORMAT}")
    if manifest.get("database") != database:
        raise SnapshotUnusable("written for another database")
    expected = (_parameter_names(QuietStretchDetector()), _parameter_names(DataOutage()))
    for entry in manifest["blocks"]:
        if (set(entry["inactivity"]), set(entry["outage"])) != expected:
            raise SnapshotUnusable("its detector parameters are not this version's")


def _parameter_names(detector: QuietStretchDetector | DataOutage) -> set[str]:
    return {name for name, _ in detector_parameters(detector)}


def _read_block(path: Path, entry: dict) -> Block:
    rows = int(entry["rows"])
    inactivity = tuple(sorted(entry["inactivity"].items()))
    outage = tuple(sorted(entry["outage"].items()))
    layout = _state_arrays(QuietStretchState.fresh(1, dict(inactivity)["history_per_bin"]))
    layout |= {name: np.zeros(1) for name in _EPOCHS}
    scaled = entry["scaled"]
    if not set(scaled) <= set(_SCALES) or any(
        scaled[name] not in {scale for scale, _ in _SCALES[name]} for name in scaled
    ):
        raise SnapshotUnusable(f"{path.name}: a scale this version does not write")
    arrays = {
        name: _read_array(path, name, like, rows, scaled.get(name)) for name, like in layout.items()
    }
    ids = np.load(path / "ids.npy", allow_pickle=False)
    if ids.dtype.kind == "S":
        ids = ids.astype(np.str_)  # ASCII; other bytes raise UnicodeDecodeError
    free, fed_rows, fed_incidents = (
        np.load(path / f"{name}.npy", allow_pickle=False).astype(np.int64, casting="safe")
        for name in ("free", "fed_rows", "fed_incidents")
    )
    if ((free < 0) | (free >= rows)).any() or ((fed_rows < 0) | (fed_rows >= rows)).any():
        raise SnapshotUnusable(f"{path.name}: a row number out of range")
    held = np.ones(rows, dtype=bool)
    held[free] = False
    if (
        ids.shape != (rows,)
        or ids.dtype.kind != "U"
        or len(np.unique(free)) != len(free)
        or (ids[held] == "").any()
        or fed_rows.shape != fed_incidents.shape
        or not held[fed_rows].all()
    ):
        raise SnapshotUnusable(f"{path.name}: its rows do not fit together")
    fed: dict[int, list[int]] = {}
    for row, incident in zip(fed_rows.tolist(), fed_incidents.tolist(), strict=True):
        fed.setdefault(row, []).append(incident)
    epochs = {name: arrays.pop(name) for name in _EPOCHS}
    return Block(
        inactivity,
        outage,
        _state_of(arrays),
        ids=[str(i) if keep else None for i, keep in zip(ids.tolist(), held, strict=True)],
        free=free.tolist(),
        fed=fed,
        **epochs,
    )


def _read_array(
    path: Path, name: str, like: np.ndarray, rows: int, scale: int | None
) -> np.ndarray:
    array = np.load(path / f"{name}.npy", allow_pickle=False)
    # Only arrays the manifest names as counts may change kind (an int read as a float is not).
    kind = "i" if scale is not None else like.dtype.kind
    if (
        array.shape != (rows, *like.shape[1:])
        or array.dtype.kind != kind
        or not np.can_cast(array.dtype, np.int32 if scale is not None else like.dtype)
    ):
        raise SnapshotUnusable(f"{path.name}/{name}: not the shape or type this version holds")
    if scale is not None:
        return from_counts(array, scale, like.dtype)
    return array.astype(like.dtype, copy=False)


# -- what the service calls --------------------------------------------------------------------


def database_of(engine: Engine) -> str:
    """The database a snapshot belongs to, as its manifest records it (no password)."""
    return engine.url.render_as_string(hide_password=True)


def restore_snapshot(store: ResidentStates, folder: Path, *, database: str) -> int:
    """Adopt the newest snapshot in ``folder`` into the empty ``store``; how many households.
    One without use is logged and left for the next write to replace."""
    try:
        loaded = load_snapshot(folder, database=database)
    except SnapshotUnusable as error:
        log.warning("resident snapshot in %s ignored, starting empty: %s", folder, error)
        return 0
    if loaded is None:
        log.info("no resident snapshot in %s: starting empty", folder)
        return 0
    blocks, manifest = loaded
    store.adopt(blocks)
    log.info(
        "resident snapshot read: %d households, written %s",
        len(store), manifest["written_at"],
    )  # fmt: skip
    return len(store)
