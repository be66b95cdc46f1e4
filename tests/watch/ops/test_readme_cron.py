"""The README's crontab, run by hand in its order, processes the bundled sample.

The commands are read from README.md (the ``cron`` block under "Running it"), not copied here,
so the test fails when the README documents something that does not work. The settings file is
the README's own ``[[sources]]`` example with its folder pointed at a temporary drop folder (and
a second source beside it for the TV log); the clock is fixed with ``AREAWATCH_NOW`` an hour after
the sample's last reading.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from datetime import timedelta
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import Session, col, func, select

from data.tables import Incident, Notification, Reading, TvEvent

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[3] / "README.md"
SAMPLE = files("data") / "sample"
CONFIG_IN_README = "/etc/areawatch/areawatch.toml"


def _section(markdown: str, heading: str) -> str:
    start = markdown.index(heading)
    following = re.search(r"^#{1,3} ", markdown[start + len(heading) :], flags=re.MULTILINE)
    return (
        markdown[start : start + len(heading) + following.start()]
        if following
        else markdown[start:]
    )


def _fenced(section: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)


def readme_crontab() -> list[str]:
    """The commands of the README's crontab, in order, without their five time fields."""
    section = _section(README.read_text(encoding="utf-8"), "### Running it: a scheduler, or cron")
    (block,) = _fenced(section, "cron")
    commands = []
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            continue  # an environment line (PATH): the test puts its own venv on PATH instead
        fields = line.split(maxsplit=5)
        assert len(fields) == 6, f"not a crontab line: {line!r}"
        commands.append(fields[5])
    return commands


def readme_settings() -> dict:
    section = _section(README.read_text(encoding="utf-8"), "### Running it: a scheduler, or cron")
    (block,) = _fenced(section, "toml")
    return tomllib.loads(block)


def _toml(settings: dict) -> str:
    """Enough of a TOML writer for the README's example (tables of strings and numbers)."""

    def value(v: object) -> str:
        return f'"{v}"' if isinstance(v, str) else str(v)

    lines = []
    for source in settings.get("sources", []):
        lines.append("[[sources]]")
        lines += [f"{key} = {value(v)}" for key, v in source.items()]
    for name, table in settings.items():
        if name != "sources":
            lines.append(f"[{name}]")
            lines += [f"{key} = {value(v)}" for key, v in table.items()]
    return "\n".join(lines) + "\n"


def test_the_readme_crontab_is_readable():
    commands = readme_crontab()
    assert [c.split()[1] for c in commands] == ["pull", "escalate", "maintain"]
    assert all(CONFIG_IN_README in c for c in commands)


def test_the_readme_crontab_processes_the_sample(database, tmp_path):
    readings = pd.read_csv(SAMPLE / "readings.csv.gz", usecols=["timestamp"])
    last = pd.to_datetime(readings["timestamp"], utc=True).max().to_pydatetime()
    now = last + timedelta(hours=1)
    labels = pd.read_csv(SAMPLE / "labels.csv")

    settings = readme_settings()
    (meter,) = settings["sources"]
    folders = {"meter": tmp_path / "drop" / "meter", "catv": tmp_path / "drop" / "catv"}
    for folder in folders.values():
        folder.mkdir(parents=True)
    meter["path"] = str(folders["meter"])
    settings["sources"] = [
        meter,
        {**meter, "name": "catv", "kind": "tv", "path": str(folders["catv"])},
    ]
    config = tmp_path / "areawatch.toml"
    config.write_text(_toml(settings), encoding="utf-8")

    roster = tmp_path / "roster"
    roster.mkdir()
    for name in ("households.csv", "contacts.csv"):
        (roster / name).write_bytes((SAMPLE / name).read_bytes())
    delivered = [
        folders["meter"] / "readings.csv.gz",
        folders["catv"] / "tv.csv.gz",
    ]
    for path in delivered:
        path.write_bytes((SAMPLE / path.name).read_bytes())
        stamp = (now - timedelta(hours=1)).timestamp()  # delivered, and settled, before "now"
        os.utime(path, (stamp, stamp))

    bin_dir = Path(sys.executable).parent
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AREAWATCH_DATABASE_URL": database.url,
        "AREAWATCH_NOW": now.isoformat(),
        "AREAWATCH_CHANNEL": "console",
    }
    environment.pop("AREAWATCH_CONFIG", None)

    def sh(command: str) -> str:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    # Set-up, once (the README's Commands): the schema and the roster.
    sh("areawatch init")
    sh(f"areawatch ingest roster {roster / 'households.csv'} {roster / 'contacts.csv'}")
    outputs = [sh(c.replace(CONFIG_IN_README, shlex.quote(str(config)))) for c in readme_crontab()]

    engine = database.engine
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Reading)).one() == len(readings)
        assert session.exec(select(func.count()).select_from(TvEvent)).one() > 0
        incidents = session.exec(select(Incident)).all()
        first_steps = session.exec(
            select(Notification).where(Notification.step_index == 0, Notification.purpose == "ask")
        ).all()
        assert not list(folders["meter"].glob("*.gz")), "the pulled file was archived"
        assert list(folders["meter"].glob("archive/*/readings.csv.gz"))
        open_for = {i.household_id: i for i in incidents if i.status == "open"}
        for household_id in labels["household_id"]:
            incident = open_for.get(household_id)
            assert incident is not None, f"{household_id} (labelled collapsed) has no open incident"
            sent = [n for n in first_steps if n.incident_id == incident.id]
            assert sent and all(n.status == "sent" for n in sent), household_id
        assert session.exec(
            select(func.count()).select_from(Notification).where(col(Notification.status) == "sent")
        ).one() >= len(labels)
    assert "Scored" in outputs[0] and "incidents opened" in outputs[0]
    assert "Maintenance" in outputs[2]
