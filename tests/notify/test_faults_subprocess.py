"""Never lost, never doubled, with real processes: kill -9 mid-escalation, and two at once.

Each escalation process is ``escalation_worker.py`` in a subprocess, sending through the real
``TwilioSmsChannel`` to the fake Twilio server in this process; the fake's log is what the
phones received. ``AREAWATCH_CRASH_AT`` makes a process die (``os._exit(137)``, no cleanup) at a
named point of the family step; a clean process then carries on.

What the design guarantees, point by point:

- before the step's commit, after it, or after the row is marked sent: exactly one message per
  recipient, and no step skipped (the transaction rolled back and the step is re-planned, or
  the outbox row survives and is sent by the next tick);
- between "marked sending" and "marked sent" (before or after the provider was called): the row
  is left alone until its lease (10 minutes) is over, then Twilio's message log is read. If the
  message is there, the row is recorded as sent with its sid; if not, it is sent now. Exactly
  one message.
- the same, when Twilio's log cannot be read: the row is never resent; it is marked failed
  ("unknown outcome after crash", event ``delivery_unknown``) and the chain goes on on time.
  At most one message, never two.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from data.tables import IncidentEvent, Notification
from data.tables.incidents import NotificationStatus
from notify.channels import TwilioSmsChannel
from notify.crashpoints import CRASH_ENV, CRASH_EXIT_CODE
from notify.delivery import UNKNOWN_OUTCOME

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("escalation_worker.py")
ACCOUNT = "AC" + "0" * 32
SENDER = "+815012345678"


def _worker(database, fake, clock, *at: float, crash: str | None = None, **extra) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    args = [sys.executable, str(WORKER), "--url", database.url, "--twilio", fake.base_url]
    args += ["--now", clock.now().isoformat()]
    for minutes in at:
        args += ["--at", str(minutes)]
    for key, value in extra.items():
        args += [f"--{key}", str(value)]
    return args, env


def _run(database, fake, clock, *at: float, crash: str | None = None) -> int:
    args, env = _worker(database, fake, clock, *at, crash=crash)
    done = subprocess.run(args, env=env, timeout=60, capture_output=True)
    if done.returncode not in (0, CRASH_EXIT_CODE):
        pytest.fail(f"escalation process failed:\n{done.stderr.decode()[-3000:]}")
    return done.returncode


def _received(fake, roster) -> list[str]:
    return [roster.by_phone(m.to) for m in fake.messages]


def _family_rows(engine, roster):
    with Session(engine) as session:
        return session.exec(
            select(Notification).where(Notification.contact_id == roster.family.id)
        ).all()


def _event_kinds(engine):
    with Session(engine) as session:
        return session.exec(select(IncidentEvent.kind).order_by(col(IncidentEvent.id))).all()


@pytest.fixture
def twilio_channels(fake_twilio):
    channel = TwilioSmsChannel(
        account_sid=ACCOUNT, auth_token="token", from_number=SENDER, base_url=fake_twilio.base_url
    )
    return {"sms": channel}


@pytest.mark.parametrize("crash", ["before_step_commit", "after_step_claim", "after_sent_marked"])
def test_a_process_killed_around_the_step_claim_neither_repeats_nor_skips(
    crash, database, clock, roster, open_for, tick, fake_twilio, twilio_channels
):
    open_for()
    tick(with_channels=twilio_channels)  # 09:00: the resident
    assert _run(database, fake_twilio, clock, 15, crash=crash) == CRASH_EXIT_CODE
    assert _run(database, fake_twilio, clock, 15, 16) == 0  # a clean process carries on
    tick(minutes=44, with_channels=twilio_channels)  # 09:44: the family still has a minute
    assert _received(fake_twilio, roster) == ["resident", "family"]
    tick(minutes=1, with_channels=twilio_channels)  # 09:45: the volunteer, on time
    assert _received(fake_twilio, roster) == ["resident", "family", "volunteer_a"]
    [family] = _family_rows(database.engine, roster)
    assert family.status == NotificationStatus.sent and family.attempts == 1
    assert _event_kinds(database.engine).count("step") == 3


@pytest.mark.parametrize("crash", ["after_sending_claim", "after_provider_accepted"])
def test_a_process_killed_mid_send_is_settled_from_twilios_log_exactly_once(
    crash, database, clock, roster, open_for, tick, fake_twilio, twilio_channels
):
    open_for()
    tick(with_channels=twilio_channels)
    fake_twilio.now = clock.now() + timedelta(minutes=15)  # Twilio's clock agrees with ours
    assert _run(database, fake_twilio, clock, 15, crash=crash) == CRASH_EXIT_CODE
    assert _run(database, fake_twilio, clock, 15, 20) == 0  # the send may still be in flight
    in_flight = ["resident", "family"] if crash == "after_provider_accepted" else ["resident"]
    assert _received(fake_twilio, roster) == in_flight
    assert _run(database, fake_twilio, clock, 26) == 0  # the lease is over: read the log
    assert _received(fake_twilio, roster) == ["resident", "family"]
    [family] = _family_rows(database.engine, roster)
    assert family.status == NotificationStatus.sent
    assert family.provider_id == fake_twilio.messages[1].sid  # status callbacks will match
    tick(minutes=45, with_channels=twilio_channels)  # the volunteer is asked on time
    assert _received(fake_twilio, roster) == ["resident", "family", "volunteer_a"]


@pytest.mark.parametrize(
    ("crash", "family_got_it"),
    [("after_sending_claim", False), ("after_provider_accepted", True)],
)
def test_without_twilios_log_a_send_killed_midway_is_never_repeated(
    crash, family_got_it, database, clock, roster, open_for, tick, fake_twilio, twilio_channels
):
    open_for()
    tick(with_channels=twilio_channels)
    fake_twilio.log_unreadable = True
    assert _run(database, fake_twilio, clock, 15, crash=crash) == CRASH_EXIT_CODE
    assert _run(database, fake_twilio, clock, 15, 20, 26) == 0
    expected = ["resident", "family"] if family_got_it else ["resident"]
    assert _received(fake_twilio, roster) == expected
    [family] = _family_rows(database.engine, roster)
    assert (family.status, family.error) == (NotificationStatus.failed, UNKNOWN_OUTCOME)
    assert "delivery_unknown" in _event_kinds(database.engine)
    tick(minutes=45, with_channels=twilio_channels)  # the volunteer is asked on time
    assert _received(fake_twilio, roster) == [*expected, "volunteer_a"]


def test_two_processes_ticking_the_same_incidents_send_each_message_once(
    database, clock, make_household, make_contact, open_for, fake_twilio, tmp_path
):
    households = [f"h{i}" for i in range(6)]
    roles = ("resident", "family", "volunteer", "staff")
    for i, household_id in enumerate(households):
        make_household(household_id)
        for j, role in enumerate(roles):
            make_contact(household_id, role, f"+8190{i:04d}{j:04d}")
        open_for(household_id)
    go = tmp_path / "go"
    processes = []
    for k in range(2):
        ready = tmp_path / f"ready-{k}"
        args, env = _worker(
            database, fake_twilio, clock, 0, 15, 45, 75, rounds=3, go=go, ready=ready
        )
        processes.append((subprocess.Popen(args, env=env, stderr=subprocess.PIPE), ready))
    deadline = time.monotonic() + 30
    while not all(ready.exists() for _, ready in processes) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both start ticking together
    for process, _ in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr.decode()[-2000:]
    received = Counter(m.to for m in fake_twilio.messages)
    expected = {f"+8190{i:04d}{j:04d}" for i in range(len(households)) for j in range(len(roles))}
    assert set(received) == expected
    assert set(received.values()) == {1}
    with Session(database.engine) as session:
        statuses = Counter(n.status for n in session.exec(select(Notification)))
    assert statuses == {NotificationStatus.sent: len(expected)}
