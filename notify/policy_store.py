"""Policies kept in the database, per organisation: loaded from TOML, validated, looked up.

Lookup order for a household: its organisation's policy of that name in the database, then a
``<name>.toml`` in the configured folder, then the built-in default (an alert with the default
chain beats no alert).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from data.tables import EscalationPolicy, Organisation
from notify.policy import Policy, PolicyError, load_policy, policy_from_dict, policy_named


def store_policy(
    *, session: Session, organisation_id: str, path: Path, now: datetime
) -> tuple[Policy, bool]:
    """Validate ``path`` and save it as the organisation's policy of that name.

    Returns the policy and whether it replaced an earlier version. Raises ``PolicyError``
    (nothing saved) when the file or the organisation is wrong.
    """
    policy = load_policy(path)
    if session.get(Organisation, organisation_id) is None:
        raise PolicyError(f"organisation {organisation_id!r} does not exist")
    row = session.exec(
        select(EscalationPolicy).where(
            EscalationPolicy.organisation_id == organisation_id,
            EscalationPolicy.name == policy.name,
        )
    ).first()
    replaced = row is not None
    if row is None:
        row = EscalationPolicy(organisation_id=organisation_id, name=policy.name, loaded_at=now)
    row.definition, row.source, row.loaded_at = policy.snapshot(), str(path), now
    session.add(row)
    return policy, replaced


def policy_for(
    session: Session, organisation_id: str, name: str, directory: Path | None = None
) -> Policy:
    """The policy a household of ``organisation_id`` names (see the module docstring)."""
    row = session.exec(
        select(EscalationPolicy).where(
            EscalationPolicy.organisation_id == organisation_id, EscalationPolicy.name == name
        )
    ).first()
    if row is not None:
        return policy_from_dict(row.definition)
    return policy_named(name, directory)
