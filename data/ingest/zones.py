"""IANA time zones, checked once."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, available_timezones


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone(name: str) -> bool:
    return name in _zone_names()


def zone_or_none(name: str | None) -> ZoneInfo | None:
    """The zone called ``name`` (``None`` stays ``None``); an unknown name is a ValueError."""
    if name is None:
        return None
    if not is_zone(name):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Asia/Tokyo'")
    return ZoneInfo(name)
