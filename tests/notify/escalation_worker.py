"""An escalation process for the fault tests, run as ``python escalation_worker.py ...``.

It sends through the real ``TwilioSmsChannel`` to the fake Twilio server of the test process. The
crash point (if any) comes from ``AREAWATCH_CRASH_AT`` in its environment.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta
from pathlib import Path

ACCOUNT = "AC" + "0" * 32
SENDER = "+815012345678"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--twilio", required=True)
    parser.add_argument("--now", required=True, type=datetime.fromisoformat)
    # Minutes after --now at which to tick (repeated --at); each tick runs --rounds times.
    parser.add_argument("--at", type=float, action="append", default=None)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--go", type=Path, help="wait for this file to exist before starting")
    parser.add_argument("--ready", type=Path, help="create this file once imports are done")
    args = parser.parse_args()

    from data.db import make_engine
    from notify.channels import ConsoleChannel, TwilioSmsChannel
    from notify.escalation import escalation_tick

    engine = make_engine(args.url)
    channels = {
        "sms": TwilioSmsChannel(
            account_sid=ACCOUNT, auth_token="token", from_number=SENDER, base_url=args.twilio
        ),
        "console": ConsoleChannel(),
    }
    if args.ready:
        args.ready.touch()
    if args.go:
        deadline = time.monotonic() + 20
        while not args.go.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    for minutes in args.at or [0.0]:
        for _ in range(args.rounds):
            escalation_tick(
                engine=engine, now=args.now + timedelta(minutes=minutes), channels=channels
            )
    engine.dispose()


if __name__ == "__main__":
    main()
