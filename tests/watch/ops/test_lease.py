"""One scheduler per database: the lease is taken by a guarded update and heartbeated."""

from __future__ import annotations

from datetime import timedelta

from tests.watch.ops.conftest import NOW
from watch.scheduler import (
    acquire_lease,
    heartbeat_lease,
    read_lease,
    release_lease,
)

STALE = timedelta(minutes=2)


def test_a_second_scheduler_cannot_take_a_live_lease(engine):
    assert acquire_lease(engine, holder="first", now=NOW, stale_after=STALE)
    later = NOW + timedelta(seconds=90)
    assert heartbeat_lease(engine, holder="first", now=later)

    assert not acquire_lease(engine, holder="second", now=later + STALE, stale_after=STALE)
    assert read_lease(engine)["holder"] == "first"


def test_a_stale_lease_is_taken_over_and_the_old_holder_learns_it_lost(engine):
    acquire_lease(engine, holder="first", now=NOW, stale_after=STALE)

    assert acquire_lease(engine, holder="second", now=NOW + timedelta(minutes=3), stale_after=STALE)
    assert not heartbeat_lease(engine, holder="first", now=NOW + timedelta(minutes=3))
    assert not release_lease(engine, holder="first")
    assert read_lease(engine)["holder"] == "second"


def test_a_released_lease_is_free_at_once(engine):
    acquire_lease(engine, holder="first", now=NOW, stale_after=STALE)
    assert release_lease(engine, holder="first")

    assert acquire_lease(engine, holder="second", now=NOW + timedelta(seconds=1), stale_after=STALE)
    lease = read_lease(engine)
    assert lease["holder"] == "second" and lease["acquired_at"] == NOW + timedelta(seconds=1)


def test_the_holder_may_take_its_own_lease_again(engine):
    acquire_lease(engine, holder="first", now=NOW, stale_after=STALE)
    assert acquire_lease(engine, holder="first", now=NOW + timedelta(seconds=5), stale_after=STALE)
