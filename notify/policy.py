"""Escalation policies: an ordered list of named steps, frozen onto an incident when it opens.

Shaped after Grafana OnCall's escalation snapshots: steps are enum kinds (not numbers), a policy
is plain data that loads from TOML, and ``snapshot()`` is the JSON-able form stored on
``Incident.policy_snapshot``. The engine runs from the snapshot only, so editing a policy does not
change incidents already in flight.

Example TOML::

    name = "default"

    [[steps]]
    kind = "notify_resident"
    wait = 15
    channels = ["sms"]

    [[steps]]
    kind = "notify_volunteers"
    wait = 30
    batch_size = 1
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from data.tables.roster import ContactRole

logger = logging.getLogger(__name__)


class StepKind(StrEnum):
    notify_resident = "notify_resident"
    notify_family = "notify_family"
    notify_volunteers = "notify_volunteers"
    notify_staff = "notify_staff"
    repeat_staff = "repeat_staff"


# Who each step asks. Staff steps are the last resort: quiet hours do not apply to them.
STEP_ROLE: dict[StepKind, ContactRole] = {
    StepKind.notify_resident: ContactRole.resident,
    StepKind.notify_family: ContactRole.family,
    StepKind.notify_volunteers: ContactRole.volunteer,
    StepKind.notify_staff: ContactRole.staff,
    StepKind.repeat_staff: ContactRole.staff,
}
QUIET_HOURS_EXEMPT = frozenset({StepKind.notify_staff, StepKind.repeat_staff})
KNOWN_CHANNELS = frozenset({"sms", "voice", "console", "email"})


class PolicyError(ValueError):
    """A policy that cannot be run, with a message that names the step and the field."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a policy.

    Parameters
    ----------
    kind
        Whom to ask (see ``StepKind``).
    wait
        Minutes to wait for an answer before the next batch or the next step. For
        ``repeat_staff``, the interval between reminders.
    channels
        Channel names to send on, e.g. ``["sms"]``; one message per channel.
    batch_size
        How many contacts to ask at once, in priority order; ``None`` asks them all together.
    """

    kind: StepKind
    wait: int
    channels: tuple[str, ...] = ("sms",)
    batch_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "wait": self.wait,
            "channels": list(self.channels),
            "batch_size": self.batch_size,
        }


@dataclass(frozen=True, slots=True)
class Policy:
    """An ordered list of steps. ``repeat_staff``, if present, must be the last step."""

    name: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def snapshot(self) -> dict[str, Any]:
        """The plain, JSON-able form frozen onto an incident when it opens."""
        return {"name": self.name, "steps": [step.to_dict() for step in self.steps]}


def _step_from_dict(raw: Any, position: int) -> Step:
    where = f"step {position + 1}"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: expected a table, got {type(raw).__name__}")
    unknown = set(raw) - {"kind", "wait", "channels", "batch_size"}
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {sorted(unknown)}")
    kind_name = raw.get("kind")
    try:
        kind = StepKind(kind_name)
    except ValueError:
        known = ", ".join(k.value for k in StepKind)
        raise PolicyError(f"{where}: unknown step kind {kind_name!r} (known: {known})") from None
    wait = raw.get("wait")
    if isinstance(wait, bool) or not isinstance(wait, int):
        raise PolicyError(f"{where} ({kind}): wait must be a whole number of minutes")
    if wait < 0:
        raise PolicyError(f"{where} ({kind}): wait must not be negative, got {wait}")
    if kind is StepKind.repeat_staff and wait == 0:
        raise PolicyError(f"{where} ({kind}): a repeating step needs a wait above 0")
    channels = raw.get("channels", ["sms"])
    if not isinstance(channels, list) or not channels:
        raise PolicyError(f"{where} ({kind}): channels must be a non-empty list")
    for channel in channels:
        if channel not in KNOWN_CHANNELS:
            raise PolicyError(f"{where} ({kind}): unknown channel {channel!r}")
    batch_size = raw.get("batch_size")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise PolicyError(f"{where} ({kind}): batch_size must be a whole number >= 1")
    return Step(kind=kind, wait=wait, channels=tuple(channels), batch_size=batch_size)


def policy_from_dict(raw: dict[str, Any]) -> Policy:
    """Build and validate a policy from plain data (a parsed TOML file or a snapshot).

    >>> policy = policy_from_dict({"name": "p", "steps": [{"kind": "notify_family", "wait": 30}]})
    >>> policy.steps[0].kind, policy.steps[0].wait, policy.steps[0].channels
    (<StepKind.notify_family: 'notify_family'>, 30, ('sms',))
    """
    name = raw.get("name", "unnamed")
    if not isinstance(name, str) or not name:
        raise PolicyError("policy name must be a non-empty string")
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise PolicyError(f"policy {name!r}: needs at least one [[steps]] entry")
    steps = tuple(_step_from_dict(step, i) for i, step in enumerate(raw_steps))
    for i, step in enumerate(steps[:-1]):
        if step.kind is StepKind.repeat_staff:
            raise PolicyError(f"policy {name!r}: step {i + 1} repeat_staff must be the last step")
    return Policy(name=name, steps=steps)


def steps_from_snapshot(snapshot: dict[str, Any]) -> tuple[Step, ...]:
    """The steps frozen on an incident (possibly none, for the operator-only path)."""
    return tuple(_step_from_dict(step, i) for i, step in enumerate(snapshot.get("steps", [])))


def load_policy(source: str | Path) -> Policy:
    """Load a policy from a TOML file, or from TOML text (a ``str`` containing a newline)."""
    if isinstance(source, Path) or "\n" not in source:
        text = Path(source).read_text(encoding="utf-8")
    else:
        text = source
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy is not valid TOML: {error}") from error
    return policy_from_dict(raw)


DEFAULT_POLICY = Policy(
    name="default",
    steps=(
        # "Reply 1 if you are all right": most alerts end here.
        Step(StepKind.notify_resident, wait=15),
        Step(StepKind.notify_family, wait=30),
        # Volunteers one at a time, so two people are not sent to the same door.
        Step(StepKind.notify_volunteers, wait=30, batch_size=1),
        Step(StepKind.notify_staff, wait=30),
        Step(StepKind.repeat_staff, wait=30),
    ),
)

POLICIES: dict[str, Policy] = {DEFAULT_POLICY.name: DEFAULT_POLICY}


def policy_named(name: str, directory: Path | None = None) -> Policy:
    """The policy a household names: ``<directory>/<name>.toml`` if present, else built in.

    An unknown name falls back to the default policy (with a warning): an alert with the
    default chain is better than no alert at all.
    """
    if directory is not None:
        path = directory / f"{name}.toml"
        if path.is_file():
            return load_policy(path)
    if name in POLICIES:
        return POLICIES[name]
    logger.warning("unknown escalation policy %r; using the default policy", name)
    return DEFAULT_POLICY


# Outages (a meter or feed gone quiet) are the operator's business: nobody in the roster is asked.
OPERATOR_ONLY_SNAPSHOT: dict[str, Any] = {"name": "operator-only", "steps": []}
