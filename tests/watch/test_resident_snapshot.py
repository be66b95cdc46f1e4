"""Snapshot files of the state ``areawatch run`` holds (``watch.resident_snapshot``): a stop and
a start in the middle of the runs change nothing people or the database see; a stale, damaged
or foreign snapshot costs only re-scoring; a crash while writing leaves the previous one."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.batch_quiet import detector_parameters
from detectors.inactivity import QuietStretchDetector
from detectors.outage import DataOutage
from tests.watch.test_batch_scoring import (
    START,
    assert_same_states,
    comparable,
    saved_states,
    scenario,
    town,  # noqa: F401 (the fixture)
    town_app,
)
from watch import resident, resident_snapshot
from watch.app import App
from watch.resident import Block, ResidentStates
from watch.resident_snapshot import (
    database_of,
    load_snapshot,
    restore_snapshot,
    save_snapshot,
)
from watch.scheduler import Service, read_lease
from watch.settings import Settings, SettingsError, load_settings, resident_snapshot_dir

TWIN = pytest.mark.parametrize(
    "twin_databases",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
SQLITE = pytest.mark.parametrize("twin_databases", ["sqlite"], indirect=True)


class Restarting:
    """What ``areawatch run`` does around detection, stopped before each run in ``stops`` (its
    store written to a snapshot and dropped) and started again before the run ``stops`` maps it
    to (a new store, the snapshot read into it). Runs while it is down are ``areawatch detect``
    from cron; ``tamper`` may do its worst to the files before a start."""

    def __init__(self, app: App, folder: Path, *, stops: dict[int, int], tamper=None) -> None:  # noqa: ANN001
        self.app, self.folder, self.stops, self.tamper = app, folder, stops, tamper
        self.store: ResidentStates | None = ResidentStates()
        self.runs = 0
        self.held_at_stop: dict[int, dict] = {}
        self.adopted: dict[int, int] = {}
        self.database = database_of(app.engine)

    def detect(self):  # noqa: ANN201
        stopped = None
        if self.runs in self.stops:
            self.held_at_stop[self.runs] = _cursors(self.store)
            save_snapshot(self.store, self.folder, database=self.database, now=self.app.clock.now())
            stopped, self.store = self.store, None
        if self.runs in self.stops.values():
            if self.tamper is not None:
                self.tamper(_newest(self.folder))
            self.store = ResidentStates()
            self.adopted[self.runs] = restore_snapshot(
                self.store, self.folder, database=self.database
            )
            if stopped is not None and self.tamper is None:
                # Started at once: it holds what it held, array for array.
                _assert_same_blocks(stopped, self.store)
        self.runs += 1
        return self.app.detect(resident=self.store)

    def states(self, app: App) -> dict[str, tuple]:
        """What the database holds, with the store's households as it would write them."""
        held = {} if self.store is None else self.store.held()
        return saved_states(app) | {h: comparable(c, s) for h, (c, s) in held.items()}


def _assert_same_blocks(before: ResidentStates, after: ResidentStates) -> None:
    kept = [b for b in before.blocks() if len(b.free) < len(b.ids)]  # empty ones are not written
    assert len(kept) == len(after.blocks())
    for mine, theirs in zip(kept, after.blocks(), strict=True):
        assert (mine.inactivity, mine.outage, mine.ids, mine.free, mine.fed) == (
            theirs.inactivity,
            theirs.outage,
            theirs.ids,
            theirs.free,
            theirs.fed,
        )
        arrays = resident_snapshot._block_arrays(theirs)
        for name, value in resident_snapshot._block_arrays(mine).items():
            assert value.dtype == arrays[name].dtype, name
            np.testing.assert_array_equal(value, arrays[name], err_msg=name)


def _cursors(store: ResidentStates) -> dict:
    return {household: cursor for household, (cursor, _) in store.held().items()}


def _newest(folder: Path) -> Path:
    return sorted(folder.glob("snapshot-*"))[-1]


def _set_to(app: App, hours: int) -> None:
    app.clock.set((START + pd.Timedelta(days=13, hours=hours)).to_pydatetime())


@pytest.fixture
def reference(twin_databases, town):  # noqa: F811
    """The scenario with every state read from and written to the database."""
    return scenario(town_app(twin_databases[1], town, vectorised=True))


@TWIN
def test_a_stop_and_a_start_change_nothing(twin_databases, town, reference, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(resident, "BLOCK_ROWS", 3)  # several blocks, some rows free
    app = town_app(twin_databases[0], town, vectorised=True)
    service = Restarting(app, tmp_path / "snapshots", stops={3: 3, 9: 9, 20: 20})
    runs = scenario(app, service.detect, service.states)

    for number, (mine, theirs) in enumerate(zip(runs, reference, strict=True)):
        # The same slots scored too: after a start nothing was scored again.
        assert mine[:5] == theirs[:5], f"run {number}"
        assert_same_states(mine[5], theirs[5])
    for run, held in service.held_at_stop.items():
        assert service.adopted[run] == len(held) > 10, f"run {run}"
    service.store.flush(app.engine, app.clock.now(), everything=True)
    assert_same_states(saved_states(app), reference[-1][5])


@TWIN
def test_a_snapshot_gone_stale_while_cron_scored_gives_way_to_the_database(
    twin_databases,
    town,  # noqa: F811
    reference,
    tmp_path,
):
    app = town_app(twin_databases[0], town, vectorised=True)
    # Down for runs 10 and 11, which cron's ``areawatch detect`` scores from the checkpoints.
    service = Restarting(app, tmp_path / "snapshots", stops={10: 12})
    runs = scenario(app, service.detect, service.states)

    for number, (mine, theirs) in enumerate(zip(runs, reference, strict=True)):
        assert mine[2:5] == theirs[2:5], f"run {number}"
        assert_same_states(mine[5], theirs[5])
    # The snapshot was read back, and every household in it was evicted: cron had moved their
    # checkpoints. Run 12 scored exactly the reference's slots, from the database.
    assert service.adopted[12] == len(service.held_at_stop[10]) > 10
    assert runs[12][:5] == reference[12][:5]
    assert runs[10][1] > reference[10][1]  # cron re-scored what memory had scored


def _garble_manifest(path: Path) -> None:
    (path / "manifest.json").write_text('{"format": 1, "blocks": [', encoding="utf-8")


def _truncate_an_array(path: Path) -> None:
    steps = path / "block-00000" / "steps.npy"
    steps.write_bytes(steps.read_bytes()[: steps.stat().st_size // 2])


def _edit_manifest(change):  # noqa: ANN001, ANN202
    def tamper(path: Path) -> None:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        change(manifest)
        (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    return tamper


TAMPERING = {
    "garbled manifest": _garble_manifest,
    "truncated array": _truncate_an_array,
    "a newer version's parameter": _edit_manifest(
        lambda m: m["blocks"][0]["inactivity"].update(nap_weight=0.5)
    ),
    "another format": _edit_manifest(lambda m: m.update(format=m["format"] + 1)),
    "the format before counts": _edit_manifest(lambda m: m.update(format=1)),
    # Without its scale, a block's kWh counts would read as kWh 2000 times too large.
    "counts not named as such": _edit_manifest(lambda m: m["blocks"][0]["scaled"].clear()),
    "a scale never written": _edit_manifest(
        lambda m: m["blocks"][0]["scaled"].update({"evidence.window": 1000})
    ),
    "another database": _edit_manifest(lambda m: m.update(database="sqlite:///other.db")),
}


@SQLITE
@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_a_damaged_or_foreign_snapshot_is_ignored_and_the_database_used(
    twin_databases,
    town,  # noqa: F811
    reference,
    tmp_path,
    tamper,
    caplog,
):
    app = town_app(twin_databases[0], town, vectorised=True)
    service = Restarting(app, tmp_path / "snapshots", stops={9: 9}, tamper=tamper)
    with caplog.at_level(logging.INFO, logger="watch.resident_snapshot"):
        runs = scenario(app, service.detect, service.states)

    assert service.adopted[9] == 0 < len(service.held_at_stop[9])
    for number, (mine, theirs) in enumerate(zip(runs, reference, strict=True)):
        assert mine[2:5] == theirs[2:5], f"run {number}"
        assert_same_states(mine[5], theirs[5])
    assert runs[9][1] > reference[9][1]  # started empty: re-scored from the checkpoints
    said = [r for r in caplog.records if r.name == "watch.resident_snapshot"]
    assert [r.levelno for r in said] == [logging.WARNING]
    assert "ignored" in said[0].getMessage()
    assert not any(household in said[0].getMessage() for household in runs[-1][5])


@SQLITE
def test_a_snapshot_reads_back_every_row_as_it_was_held(
    twin_databases,
    town,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    monkeypatch.setattr(resident, "BLOCK_ROWS", 4)
    app = town_app(twin_databases[0], town, vectorised=True)
    store = ResidentStates()
    for hours in (12, 16):
        _set_to(app, hours)
        app.detect(resident=store)
    held = [(b, row) for b in store.blocks() for row, i in enumerate(b.ids) if i is not None]
    block, row = held[0]
    block.fed[row] = [7, 9]  # answers to incidents 7 and 9 already fed back to its detector
    cursors = {h: saved[0] for h, saved in saved_states(app).items()}
    del cursors[held[-2][0].ids[held[-2][1]]]  # gone from the roster: a free row mid-block
    store.reconcile(cursors)
    database, folder = database_of(app.engine), tmp_path / "snapshots"

    save_snapshot(store, folder, database=database, now=app.clock.now())
    again = ResidentStates()
    restore_snapshot(again, folder, database=database)

    assert len(again) == len(held) - 1
    _assert_same_blocks(store, again)
    # The town's meters count whole Wh: every block's week of kWh went to disk as 2-byte counts.
    manifest = json.loads((_newest(folder) / "manifest.json").read_text(encoding="utf-8"))
    assert {entry["scaled"]["evidence.window"] for entry in manifest["blocks"]} == {2000}


@SQLITE
def test_a_crash_while_writing_leaves_the_previous_snapshot(
    twin_databases,
    town,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    app = town_app(twin_databases[0], town, vectorised=True)
    database, folder = database_of(app.engine), tmp_path / "snapshots"
    store = ResidentStates()
    _set_to(app, 12)
    app.detect(resident=store)
    save_snapshot(store, folder, database=database, now=app.clock.now())
    first = _cursors(store)
    _set_to(app, 16)
    app.detect(resident=store)
    assert _cursors(store) != first

    class PowerCut(BaseException):
        """The process dies here: no handler runs."""

    def power_cut(part: Path, final: Path) -> None:
        raise PowerCut

    monkeypatch.setattr(resident_snapshot, "_publish", power_cut)
    with pytest.raises(PowerCut):
        save_snapshot(store, folder, database=database, now=app.clock.now())
    assert list(folder.glob("snapshot-*.tmp"))  # the new one was written, all but its name
    again = ResidentStates()
    assert restore_snapshot(again, folder, database=database) == len(first)
    assert _cursors(again) == first

    def disk_full(path: Path, array: np.ndarray) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(resident_snapshot, "_write_array", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_snapshot(store, folder, database=database, now=app.clock.now())
    assert not list(folder.glob("snapshot-*.tmp"))  # neither part left to fill the disk
    again = ResidentStates()
    assert restore_snapshot(again, folder, database=database) == len(first)
    assert _cursors(again) == first

    monkeypatch.undo()
    save_snapshot(store, folder, database=database, now=app.clock.now())
    assert [p.name for p in folder.iterdir()] == [_newest(folder).name]  # the rest cleared
    blocks, manifest = load_snapshot(folder, database=database)
    assert manifest["households"] == len(store)
    assert manifest["written_at"] == app.clock.now().isoformat()


def _with_snapshot_dir(app: App, chosen: str | None) -> None:
    detection = replace(app.settings.detection, resident_snapshot_dir=chosen)
    app.settings = replace(app.settings, detection=detection)


def _stop_and_start(service: Service) -> None:
    """``areawatch run`` told to stop as it starts: it takes the lease, reads its snapshot,
    runs no job, then puts its state away and lets the lease go."""
    service.stop()
    assert service.run() == 0
    assert read_lease(service.app.engine)["holder"] is None


@SQLITE
def test_the_service_writes_a_snapshot_when_it_stops_and_reads_it_when_it_starts(
    twin_databases,
    town,  # noqa: F811
    tmp_path,
):
    app = town_app(twin_databases[0], town, vectorised=True)
    folder = tmp_path / "snapshots"
    _with_snapshot_dir(app, str(folder))
    first = Service(app)
    assert first.snapshots == folder
    for hours in (12, 16):
        _set_to(app, hours)
        app.detect(resident=first.resident)
    held = _cursors(first.resident)
    checkpoints = {h: saved[0] for h, saved in saved_states(app).items()}
    assert any(checkpoints[h] != cursor for h, cursor in held.items())

    _stop_and_start(first)

    assert _newest(folder).is_dir()
    # Stopping wrote the snapshot instead of the database: its checkpoints stayed as they were.
    assert {h: saved[0] for h, saved in saved_states(app).items()} == checkpoints
    second = Service(app)
    assert len(second.resident) == 0
    _stop_and_start(second)
    assert _cursors(second.resident) == held


@SQLITE
def test_without_a_snapshot_folder_stopping_writes_the_state_to_the_database(
    twin_databases,
    town,  # noqa: F811
    tmp_path,
):
    app = town_app(twin_databases[0], town, vectorised=True)
    database_file = Path(app.engine.url.database)
    assert Service(app).snapshots == database_file.with_name(database_file.name + ".resident")
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    for chosen in ("", str(tmp_path / "a-file")):  # off; a folder that cannot be made
        _with_snapshot_dir(app, chosen)
        service = Service(app)
        for hours in (12, 16) if chosen == "" else (18, 20):
            _set_to(app, hours)
            app.detect(resident=service.resident)
        held = _cursors(service.resident)

        _stop_and_start(service)

        saved = {h: saved[0] for h, saved in saved_states(app).items()}
        assert held and {h: saved[h] for h in held} == held, chosen


def test_the_snapshot_folder_setting(tmp_path):
    sqlite = Settings(database_url=f"sqlite:///{tmp_path / 'watch.db'}")
    assert resident_snapshot_dir(sqlite) == tmp_path / "watch.db.resident"
    assert resident_snapshot_dir(Settings(database_url="postgresql://db.example/watch")) is None
    assert resident_snapshot_dir(Settings(database_url="sqlite://")) is None

    config = tmp_path / "areawatch.toml"
    for value, expected in (('""', None), (f'"{tmp_path / "state"}"', tmp_path / "state")):
        config.write_text(f"[detection]\nresident_snapshot_dir = {value}\n", encoding="utf-8")
        assert resident_snapshot_dir(load_settings(config, environ={})) == expected
    for value, message in (("5", "must be a path"), (f'"{config}"', "is not a folder")):
        config.write_text(f"[detection]\nresident_snapshot_dir = {value}\n", encoding="utf-8")
        with pytest.raises(SettingsError, match=message):
            load_settings(config, environ={})


# -- what the files hold ----------------------------------------------------------------------


def make_block(window: np.ndarray, ids: list[str]) -> Block:
    """A block of ``len(ids)`` households (the rest of its rows free) whose week of slot kWh
    is ``window``, one row each; the rest as new households hold it."""
    key = (detector_parameters(QuietStretchDetector()), detector_parameters(DataOutage()))
    block = Block.new(*key)
    rows = len(ids)
    block.state.evidence.window[:rows] = window
    block.ids[:rows] = ids
    block.free = block.free[: len(block.ids) - rows]
    block.cursor[:rows] = block.base[:rows] = START.timestamp()
    return block


def saved_and_read(blocks: list[Block], folder: Path) -> tuple[list[Block], dict]:
    store = ResidentStates()
    store.adopt(blocks)
    save_snapshot(store, folder, database="db", now=START.to_pydatetime())
    return load_snapshot(folder, database="db")


def _bits(array: np.ndarray) -> np.ndarray:
    return array.view(f"u{array.itemsize}")


def _week(kwh: list[float]) -> np.ndarray:
    """A week of slots: NaN before the first reading, then ``kwh`` over and over."""
    window = np.full(7 * 48, np.nan)
    window[-300:] = np.resize(kwh, 300)
    return window


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(resident, "BLOCK_ROWS", 4)


@pytest.mark.usefixtures("small_blocks")
def test_slot_kwh_on_the_wh_grid_are_written_as_counts_and_read_back_bit_for_bit(tmp_path):
    # Sums rounded to 6 decimals as slots are; 0.0615 half of an hourly meter's 0.123.
    wh = _week([0.0, 0.001, round(0.1 + 0.2, 6), 1.234, 16.383, 0.0615, -0.002])
    on_grid = make_block(np.stack([wh, wh[::-1], np.full(7 * 48, np.nan)]), ["a", "b", "c"])
    on_grid.state.bin_min[0, :3] = [np.inf, 0.5, 11.0]
    # Rounded to 6 decimals off the Wh grid (an hourly reading split three ways): int32 counts.
    sixths = make_block(_week([0.0, round(0.1 / 3, 6), 2.5]), ["d"])
    expected = [b.state.evidence.window.copy() for b in (on_grid, sixths)]

    blocks, manifest = saved_and_read([on_grid, sixths], tmp_path)

    for block, window in zip(blocks, expected, strict=True):
        assert block.state.evidence.window.dtype == np.float64
        np.testing.assert_array_equal(_bits(block.state.evidence.window), _bits(window))
    np.testing.assert_array_equal(_bits(blocks[0].state.bin_min), _bits(on_grid.state.bin_min))
    files = [_newest(tmp_path) / entry["name"] for entry in manifest["blocks"]]
    assert np.load(files[0] / "evidence.window.npy").dtype == np.int16
    assert np.load(files[0] / "bin_min.npy").dtype == np.int8
    assert np.load(files[1] / "evidence.window.npy").dtype == np.int32
    assert [entry["scaled"]["evidence.window"] for entry in manifest["blocks"]] == [
        2000,
        1_000_000,
    ]


@pytest.mark.parametrize(
    "odd",
    [0.1 + 0.2, 5000.0, -0.0, -np.nan],
    ids=["a sum not rounded", "beyond int32 counts", "minus zero", "a negative NaN"],
)
@pytest.mark.usefixtures("small_blocks")
def test_a_block_with_one_value_no_count_holds_keeps_its_floats(tmp_path, odd):
    block = make_block(np.stack([_week([0.123, 0.5]), _week([0.2, 0.01])]), ["a", "b"])
    block.state.evidence.window[1, -1] = odd
    window = block.state.evidence.window.copy()

    blocks, manifest = saved_and_read([block], tmp_path)

    np.testing.assert_array_equal(_bits(blocks[0].state.evidence.window), _bits(window))
    assert "evidence.window" not in manifest["blocks"][0]["scaled"]
    written = _newest(tmp_path) / "block-00000" / "evidence.window.npy"
    assert np.load(written).dtype == np.float64


@pytest.mark.usefixtures("small_blocks")
def test_ids_are_written_as_ascii_where_they_are_and_read_back_as_text(tmp_path):
    ascii_ids = make_block(_week([0.1]), ["H0000001", "H0000002"])
    other_ids = make_block(_week([0.1]), ["世帯-3", "H4"])

    blocks, manifest = saved_and_read([ascii_ids, other_ids], tmp_path)

    assert [b.ids[:2] for b in blocks] == [["H0000001", "H0000002"], ["世帯-3", "H4"]]
    files = [_newest(tmp_path) / entry["name"] / "ids.npy" for entry in manifest["blocks"]]
    assert [np.load(file).dtype.kind for file in files] == ["S", "U"]
