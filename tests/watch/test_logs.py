"""Logs: JSON lines on request, phone numbers masked, no resident's name or number in them."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from sqlmodel import Session, select

from data.tables import Contact, Household, Incident, Notification
from watch import logs
from watch.settings import SettingsError, load_settings


@pytest.fixture
def capture():
    """The root logger configured by ``logs.configure`` into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()

    def configure(**options) -> io.StringIO:
        logs.configure(stream=buffer, **options)
        return buffer

    yield configure
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_a_json_record_carries_time_level_logger_message_and_extras(capture):
    buffer = capture(format="json", level="INFO")
    with logs.job("pull:meter"):
        logging.getLogger("watch.test").info(
            "source %s: %d rows", "meter", 12, extra={"source": "meter", "rows_inserted": 12}
        )
    entry = json.loads(buffer.getvalue())
    assert entry["level"] == "INFO"
    assert entry["logger"] == "watch.test"
    assert entry["message"] == "source meter: 12 rows"
    assert entry["source"] == "meter" and entry["rows_inserted"] == 12
    assert entry["job"] == "pull:meter"
    assert entry["time"].endswith("+00:00")


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_phone_numbers_are_masked_in_messages_extras_and_tracebacks(capture, log_format):
    buffer = capture(format=log_format, level="INFO")
    logger = logging.getLogger("watch.test")
    logger.warning(
        "call %s or 090-1234-5678 or 08012345678", "+819012345678", extra={"to": "+1 415 555 0100"}
    )
    try:
        raise ValueError("bad number +442071838750")
    except ValueError:
        logger.exception("sending failed")
    text = buffer.getvalue()
    for phone in ("819012345678", "090-1234-5678", "08012345678", "415 555 0100", "442071838750"):
        assert phone not in text
    assert text.count(logs.MASK) >= 4


def test_times_dates_and_counts_are_not_mistaken_for_phone_numbers():
    line = "slot 2025-01-06T07:30:00+09:00, 1234567 slots, incident 42, household H007"
    assert logs.redact(line) == line


def test_the_level_below_warning_is_dropped_unless_verbose(capture):
    buffer = capture(format="json", level="WARNING")
    logging.getLogger("watch.test").info("quiet")
    assert buffer.getvalue() == ""
    buffer = capture(format="json", level="WARNING", verbose=True)
    logging.getLogger("watch.test").info("heard")
    assert json.loads(buffer.getvalue())["message"] == "heard"


def test_the_environment_overrides_the_logging_section(tmp_path):
    config = tmp_path / "areawatch.toml"
    config.write_text('[logging]\nformat = "text"\nlevel = "error"\n', encoding="utf-8")
    assert load_settings(config, {}).logging.level == "ERROR"
    chosen = load_settings(config, {"AREAWATCH_LOG_FORMAT": "json"}).logging
    assert (chosen.format, chosen.level) == ("json", "ERROR")
    with pytest.raises(SettingsError, match="logging.format"):
        load_settings(config, {"AREAWATCH_LOG_FORMAT": "xml"})


@pytest.mark.slow
def test_detect_and_escalate_write_only_json_lines_without_names_or_phones(
    make_loaded_app, database, tmp_path
):
    """A real run that opens an incident and messages its resident, logging in JSON."""
    app = make_loaded_app()
    now = app.clock.now()
    environment = {
        **os.environ,
        "AREAWATCH_LOG_FORMAT": "json",
        "AREAWATCH_NOW": now.isoformat(),
        "AREAWATCH_CHANNEL": "console",
    }
    environment.pop("AREAWATCH_CONFIG", None)
    stderr = ""
    for command in ("detect", "escalate", "status"):
        done = subprocess.run(
            [sys.executable, "-m", "watch.cli", "-v", command, "--database-url", database.url],
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        stderr += done.stderr

    with Session(database.engine) as session:
        incidents = session.exec(select(Incident)).all()
        sent = session.exec(select(Notification).where(Notification.status == "sent")).all()
        contacts = session.exec(select(Contact)).all()
        households = session.exec(select(Household)).all()
    assert incidents and sent, "the run should have opened an incident and messaged someone"
    lines = stderr.splitlines()
    assert any("console message" in json.loads(line)["message"] for line in lines)
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    personal = {c.name for c in contacts} | {c.phone for c in contacts if c.phone}
    personal |= {h.name for h in households} | {h.address for h in households if h.address}
    personal |= {phone.lstrip("+") for phone in personal if phone and phone.startswith("+")}
    leaked = sorted(p for p in personal if p and p in stderr)
    assert not leaked, leaked
