"""Named places where a test can kill the escalation process, to prove it recovers.

``crash_point("after_step_claim")`` ends the process at once with ``os._exit(137)`` (what a
``kill -9`` looks like to its parent: no ``finally``, no rollback, no flush) when the environment
variable ``AREAWATCH_CRASH_AT`` names that point. The variable is read once, at import: when it is
unset, a crash point costs one comparison with ``None``.

The points, in the order a message passes them:

``before_step_commit``
    The step's guarded update and outbox rows are written but not committed.
``after_step_claim``
    The step is claimed and its outbox rows are committed; nothing has been sent.
``after_sending_claim``
    An outbox row is marked ``sending`` (committed); the provider has not been called.
``after_provider_accepted``
    The provider accepted the message; the row still says ``sending``.
``after_sent_marked``
    The row is marked ``sent`` (committed).
"""

from __future__ import annotations

import os

CRASH_ENV = "AREAWATCH_CRASH_AT"
CRASH_EXIT_CODE = 137
CRASH_POINTS = (
    "before_step_commit",
    "after_step_claim",
    "after_sending_claim",
    "after_provider_accepted",
    "after_sent_marked",
)

_armed: str | None = os.environ.get(CRASH_ENV) or None
if _armed is not None and _armed not in CRASH_POINTS:
    raise ValueError(f"{CRASH_ENV}={_armed!r} names no crash point (known: {CRASH_POINTS})")


def crash_point(name: str) -> None:
    """Die here, without cleanup, if ``AREAWATCH_CRASH_AT`` names this point."""
    if _armed is not None and _armed == name:
        os._exit(CRASH_EXIT_CODE)
