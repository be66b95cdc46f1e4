"""README command 1: the demo replays the bundled sample end to end and finds its collapses."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_the_demo_finds_the_sample_collapses_and_shows_the_messages(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "watch.cli", "demo", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Incidents found" in out and "Messages" in out
    assert "3 of the 3 labelled collapses found" in out
    for household in ("H007", "H009", "H017"):
        assert household in out
    assert "needed_help" in out
    assert "+8190000" not in out, "phone numbers are masked"
    assert "Explore further" in out
