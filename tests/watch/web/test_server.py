"""The real server: ``serve`` under uvicorn in its own process, reached over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlmodel import Session

from data.tables import Incident
from data.tables.incidents import IncidentStatus
from tests.watch.web.conftest import AUTH_TOKEN, PUBLIC_BASE, TWILIO_NUMBER, twilio_signature

REPO = Path(__file__).resolve().parents[3]
SERVE = (
    "import sys\n"
    "from watch.settings import load_settings\n"
    "from watch.web.server import serve\n"
    "serve(settings=load_settings(), port=int(sys.argv[1]), public_base_url=sys.argv[2])\n"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(base: str, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{process.stderr.read().decode()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy in time")


def test_the_served_app_takes_a_signed_reply_over_real_http(database, story):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AREAWATCH_")}
    env |= {"AREAWATCH_DATABASE_URL": database.url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port), PUBLIC_BASE],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_healthy(base, process)
        params = {"From": story.volunteer.phone, "To": TWILIO_NUMBER, "Body": "1"}
        signature = twilio_signature(PUBLIC_BASE + "/twilio/sms", params)
        refused = httpx.post(f"{base}/twilio/sms", data=params)
        answered = httpx.post(
            f"{base}/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert refused.status_code == 403
    assert answered.status_code == 200
    assert "<Message>ありがとうございます。訪問をお願いします。</Message>" in answered.text
    with Session(database.engine) as session:
        incident = session.get(Incident, story.incident_id)
    assert (incident.status, incident.claimed_by_contact_id) == (
        IncidentStatus.claimed,
        story.volunteer.id,
    )
