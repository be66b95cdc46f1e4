"""``areawatch demo --serve``: the demo's database opened in the dashboard with a demo login."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from sqlmodel import Session, select

from data.tables import StaffUser
from watch.demo import DEMO_USERNAME, create_demo_login
from watch.web.auth import verify_password


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_demo_login_is_a_staff_account_made_afresh_each_time(database, clock):
    name, first = create_demo_login(database_url=database.url, now=clock.now())
    again, second = create_demo_login(database_url=database.url, now=clock.now())
    assert name == again == DEMO_USERNAME
    assert first != second and len(second) >= 12
    with Session(database.engine) as session:
        users = session.exec(select(StaffUser)).all()
    assert [(u.username, u.organisation_id, u.role) for u in users] == [
        ("demo", "default", "staff")
    ]
    assert verify_password(users[0].password_hash, second)
    assert not verify_password(users[0].password_hash, first)


@pytest.mark.slow
def test_demo_serve_answers_and_lets_the_printed_login_in(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watch.cli",
            "demo",
            "--workdir",
            str(tmp_path / "demo"),
            "--serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "150"},
    )
    try:
        login = None
        deadline = time.monotonic() + 600
        for line in process.stdout:
            found = re.search(r"user (\S+)\s+password (\S+)", line)
            if found:
                login = found.groups()
                break
            assert time.monotonic() < deadline
        assert login is not None, "no demo login printed"
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = requests.get(base + "/healthz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert health.status_code == 200
        browser = requests.Session()
        form = browser.get(base + "/login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        signed_in = browser.post(
            base + "/login",
            data={"username": login[0], "password": login[1], "csrf_token": token, "next": "/"},
            allow_redirects=False,
            timeout=30,
        )
        assert signed_in.status_code == 303
        households = browser.get(base + "/api/households", timeout=30).json()
        assert len(households) == 24
        # The clock stands at the replay's end, so the collapses found are on the map.
        points = browser.get(base + "/api/map", timeout=30).json()["features"]
        assert sum(f["properties"]["kind"] == "household" for f in points) == 24
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
