"""Scoring engines: where ``watch.detect.score_household`` runs for each chunk of households.

``local`` (the default, no extra dependency) scores in this process, one household after
another. ``dask`` partitions each chunk's households across the workers of a Dask distributed
cluster (``pip install 'areawatch[dask]'``; the workers need AreaWatch installed, at the same
version, because they import this module). Only scoring moves: the detection job stays the
coordinator that reads the database, writes each chunk in one transaction and calls the incident
hooks, so findings, incidents and checkpoints are the same whichever engine scored them.

While the coordinator writes one chunk, the cluster already scores the next (``ahead``), so the
database work and the scoring overlap. Nothing is scattered: a partition's jobs (state bytes and
the new readings, a few kB per household for a 30-minute tick) travel inside its task.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from watch.detect import HouseholdJob, HouseholdResult, score_household

log = logging.getLogger(__name__)

ENGINES = ("local", "dask")
CONNECT_TIMEOUT_SECONDS = 10.0


class EngineUnavailable(RuntimeError):
    """The scoring engine asked for cannot run (not installed, scheduler unreachable)."""


def score_partition(jobs: list[HouseholdJob], vectorised: bool = True) -> list[HouseholdResult]:
    """One task's work: its households, in order; ``vectorised``, the quiet ones together
    through the detectors' batch path (``watch.batch_scoring``), else each one at a time."""
    if vectorised:
        from watch.batch_scoring import score_jobs

        return score_jobs(jobs)
    return [score_household(job) for job in jobs]


class LocalEngine:
    """Scores in this process, one chunk at a time, as the chunks are asked for."""

    def __init__(self, *, vectorised: bool = True) -> None:
        self.vectorised = vectorised

    def score_chunks(self, chunks: Iterable[list[HouseholdJob]]) -> Iterator[list[HouseholdResult]]:
        for chunk in chunks:
            yield score_partition(chunk, self.vectorised)


class DaskEngine:
    """Scores each chunk's households in partitions on a Dask distributed cluster.

    A chunk is cut into ``partitions_per_thread`` contiguous partitions per worker thread (a
    few, so a slow partition does not leave the other workers idle at the chunk's end), mapped
    with ``client.map`` and gathered in order. Up to ``ahead`` further chunks are submitted
    before the current one is handed back.
    """

    def __init__(  # noqa: ANN001
        self, client, *, partitions_per_thread: int = 2, ahead: int = 1, vectorised: bool = True
    ) -> None:
        self.client = client
        self.partitions_per_thread = partitions_per_thread
        self.ahead = ahead
        self.vectorised = vectorised

    def score_chunks(self, chunks: Iterable[list[HouseholdJob]]) -> Iterator[list[HouseholdResult]]:
        in_flight: deque[list] = deque()
        try:
            for chunk in chunks:
                in_flight.append(self._submit(chunk))
                if len(in_flight) > self.ahead:
                    yield self._gather(in_flight.popleft())
            while in_flight:
                yield self._gather(in_flight.popleft())
        finally:
            # The coordinator stopped early (an error while writing): drop what is still queued.
            for futures in in_flight:
                self.client.cancel(futures)

    def _submit(self, chunk: list[HouseholdJob]) -> list:
        threads = sum(self.client.nthreads().values())
        parts = partition(chunk, max(1, threads) * self.partitions_per_thread)
        # pure=False: no hashing of the arguments to name the tasks (it would cost as much as
        # sending them); every run's tasks are new anyway.
        return self.client.map(score_partition, parts, vectorised=self.vectorised, pure=False)

    def _gather(self, futures: list) -> list[HouseholdResult]:
        return [result for part in self.client.gather(futures) for result in part]


def partition(items: list, parts: int) -> list[list]:
    """``items`` cut into at most ``parts`` contiguous, nearly equal, non-empty slices.

    >>> partition(list(range(7)), 3)
    [[0, 1, 2], [3, 4], [5, 6]]
    >>> partition([1], 4)
    [[1]]
    """
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    slices, start = [], 0
    for k in range(parts):
        stop = start + size + (1 if k < extra else 0)
        slices.append(items[start:stop])
        start = stop
    return slices


@contextmanager
def open_engine(
    kind: str = "local",
    scheduler: str | None = None,
    timeout: float = CONNECT_TIMEOUT_SECONDS,
    *,
    vectorised: bool = True,
) -> Iterator[LocalEngine | DaskEngine]:
    """The scoring engine ``kind``; for ``dask``, connected to ``scheduler`` until the end.

    Raises ``EngineUnavailable`` with a message for the operator when ``distributed`` is not
    installed, no scheduler answers at ``scheduler`` within ``timeout`` seconds, or the
    scheduler has no worker by then.
    """
    if kind == "local":
        yield LocalEngine(vectorised=vectorised)
        return
    if kind != "dask":
        raise EngineUnavailable(f"unknown scoring engine {kind!r}; choose one of {ENGINES}")
    if not scheduler:
        raise EngineUnavailable("the dask engine needs a scheduler address, tcp://HOST:PORT")
    client = _connect(scheduler, timeout)
    try:
        yield DaskEngine(client, vectorised=vectorised)
    finally:
        client.close()


def _connect(scheduler: str, timeout: float):  # noqa: ANN202
    try:
        from distributed import Client
    except ImportError as error:
        raise EngineUnavailable(
            "the dask engine needs Dask distributed: pip install 'areawatch[dask]'"
        ) from error
    _probe(scheduler, timeout)
    try:
        client = Client(scheduler, timeout=timeout, set_as_default=False)
    except Exception as error:  # noqa: BLE001 (a listener that is no scheduler fails oddly)
        raise EngineUnavailable(
            f"{scheduler} did not answer as a Dask scheduler within {timeout:g} s "
            f"({type(error).__name__}: {error})"
        ) from error
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as error:
        client.close()
        raise EngineUnavailable(
            f"the Dask scheduler at {scheduler} has no workers after {timeout:g} s"
        ) from error
    log.info("scoring on Dask at %s", scheduler)
    return client


def _probe(scheduler: str, timeout: float) -> None:
    """Fail fast and cleanly when nothing listens at a ``tcp://`` address.

    A ``Client`` that fails to connect leaves a half-made object whose clean-up blocks for
    seconds and prints a traceback at exit; a plain socket says the same thing without that.
    """
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        if scheme != "tcp":
            return  # tls://, ucx://...: left to the client itself
        host, port = parse_host_port(location)
    except ValueError as error:
        raise EngineUnavailable(f"{scheduler!r} is not a scheduler address ({error})") from error
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        detail = f"timed out after {timeout:g} s" if isinstance(error, TimeoutError) else error
        raise EngineUnavailable(f"no Dask scheduler answered at {scheduler} ({detail})") from error
