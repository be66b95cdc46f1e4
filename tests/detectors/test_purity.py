"""The models stay pure: no imports of the application's other packages, no clock of their own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import detectors

MODULES = sorted(Path(next(iter(detectors.__path__))).glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_detectors_import_nothing_from_data_notify_or_watch(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"data", "notify", "watch", "sqlalchemy", "sqlmodel", "requests"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_detectors_never_read_the_clock(path: Path) -> None:
    source = path.read_text()
    for call in ("datetime.now(", "time.time(", "date.today(", "utcnow("):
        assert call not in source
