"""TV sessions turned into set-top-box events: power_on, channel, key, power_off.

A session is a run of minutes in which the set is on. The resident operates it only while awake:
a channel chosen right after switching on, then channel changes and key presses (volume, guide)
at the persona's rates. A set with auto-off switches itself off 4 hours after the last operation,
which is how a resident dozing in front of the TV looks in a real log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.synthetic.personas import Persona

AUTO_OFF_MINUTES = 240
#: Runs shorter than this are a flicker of the plan, not a session anyone would have.
MIN_SESSION_MINUTES = 3


@dataclass(frozen=True, slots=True)
class TvEvent:
    second: int  # seconds after the start of the simulated period
    event: str
    channel: str | None = None


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` index ranges where ``mask`` is true.

    >>> runs(np.array([0, 1, 1, 0, 1], bool))
    [(1, 3), (4, 5)]
    """
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def _operations(
    start: int, end: int, awake: np.ndarray, rate_per_h: float, rng: np.random.Generator
) -> np.ndarray:
    """Seconds of Poisson-timed operations in minutes ``start+1 .. end-2`` when awake."""
    minutes = np.arange(start + 1, end - 1)
    minutes = minutes[awake[minutes]]
    if len(minutes) == 0:
        return np.empty(0, np.int64)
    count = rng.poisson(rate_per_h * len(minutes) / 60)
    chosen = rng.choice(minutes, size=count, replace=True)
    return np.sort(chosen * 60 + rng.integers(0, 60, size=count))


def _next_channel(p: Persona, current: str, rng: np.random.Generator) -> str:
    options = [c for c in p.channels if c != current] or list(p.channels)
    return str(rng.choice(options))


def tv_session_events(
    tv_on: np.ndarray, awake: np.ndarray, p: Persona, rng: np.random.Generator
) -> tuple[list[TvEvent], np.ndarray]:
    """The events of every session in ``tv_on``, and the on-mask after auto-off cut sessions.

    Channel and key events only fall in awake minutes, strictly between the session's power_on
    and power_off.
    """
    final = tv_on.copy()
    events: list[TvEvent] = []
    channel = p.channels[0]
    for start, end in runs(tv_on):
        if end - start < MIN_SESSION_MINUTES:
            final[start:end] = False
            continue
        on_second = start * 60 + int(rng.integers(0, 60))
        ops: list[TvEvent] = []
        if rng.random() < 0.4:
            channel = _next_channel(p, channel, rng)
            ops.append(TvEvent(on_second + int(rng.integers(5, 90)), "channel", channel))
        changes = _operations(start, end, awake, p.channel_rate_per_h, rng)
        keys = _operations(start, end, awake, p.key_rate_per_h, rng)
        for second in changes:
            channel = _next_channel(p, channel, rng)
            ops.append(TvEvent(int(second), "channel", channel))
        ops.extend(TvEvent(int(second), "key") for second in keys)
        ops = sorted((e for e in ops if e.second > on_second), key=lambda e: e.second)
        off_second = max(end * 60 - 1 - int(rng.integers(0, 30)), on_second + 1)
        if ops:
            off_second = max(off_second, ops[-1].second + 1)
        if p.tv_auto_off:
            off_second, ops = _auto_off(on_second, ops, off_second)
            final[off_second // 60 + 1 : end] = False
        events.append(TvEvent(on_second, "power_on"))
        events.extend(ops)
        events.append(TvEvent(off_second, "power_off"))
    return _fill_opening_channels(events, p.channels[0]), final


def _auto_off(on_second: int, ops: list[TvEvent], off_second: int) -> tuple[int, list[TvEvent]]:
    """Cut the session where 4 h pass without an operation."""
    limit = AUTO_OFF_MINUTES * 60
    last = on_second
    for index, op in enumerate(ops):
        if op.second - last > limit:
            return last + limit, ops[:index]
        last = op.second
    if off_second - last > limit:
        return last + limit, ops
    return off_second, ops


def _fill_opening_channels(events: list[TvEvent], initial: str) -> list[TvEvent]:
    """A set powers on showing the channel it was last on: name it on the power_on event."""
    filled: list[TvEvent] = []
    last_channel = initial
    for event in events:
        if event.event == "channel":
            last_channel = event.channel
        if event.event == "power_on":
            event = TvEvent(event.second, "power_on", last_channel)
        filled.append(event)
    return filled
