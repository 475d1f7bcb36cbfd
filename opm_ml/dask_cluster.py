"""One way to get a Dask client: connect to a scheduler address, or start a LocalCluster.

Batch scoring (`opm-ml score`) and distributed training (`opm-ml train`) both take `--dask`
(start a LocalCluster, closed when done) or `--scheduler ADDRESS` (use a running cluster). The
LocalCluster has one 1-thread worker process per core: LightGBM and the feature code hold the
GIL between numpy calls, so processes scale where threads would not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Optional

import typer

# The address that means "start a LocalCluster here".
LOCAL = "local"

# The options `opm-ml train` and `opm-ml score` share (each words its own --dask/--scheduler).
WorkersOption = Annotated[Optional[int], typer.Option(
    min=1, help="LocalCluster worker processes (with --dask)", show_default="one per core")]
TimeoutOption = Annotated[float, typer.Option(
    min=0.1, help="seconds to wait for the --scheduler to answer")]


class DaskClusterError(RuntimeError):
    """The scheduler could not be reached, or the local cluster could not start."""


@contextmanager
def dask_client(address: str | None = LOCAL, n_workers: int | None = None,
                timeout: float = 30.0) -> Iterator:
    """A `distributed.Client` for `address`, or for a new LocalCluster when it is `local`/None.

    `n_workers` sizes the LocalCluster (default: one worker per core) and is ignored for a
    remote scheduler, whose workers are its own. Raises DaskClusterError naming the address
    when nothing answers there within `timeout` seconds.
    """
    from distributed import Client, LocalCluster

    if address in (None, "", LOCAL):
        workers = n_workers or os.cpu_count() or 1
        try:
            # The scheduler's HTTP server always starts; a free loopback port instead of 8787
            # avoids a warning (and a clash) when another cluster already runs here.
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address="127.0.0.1:0", host="127.0.0.1")
        except Exception as exc:  # ports, spawn failures: say so in one line
            raise DaskClusterError(f"cannot start a local Dask cluster: {exc}") from exc
        with cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise DaskClusterError(
            f"no Dask scheduler answered at {address} within {timeout:g} s: {exc}") from None
    with client:
        yield client


def cluster_address(dask: bool, scheduler: str | None, workers: int | None) -> str | None:
    """What `dask_client` should reach for these options: LOCAL, the scheduler, or None (no Dask).

    ValueError when `--workers` cannot apply: without `--dask`, or with a scheduler whose
    workers are its own.
    """
    if workers is not None and (scheduler is not None or not dask):
        why = "pass --dask too" if scheduler is None else f"{scheduler} has its own workers"
        raise ValueError(f"--workers sizes the Dask LocalCluster; {why}")
    if scheduler is not None:
        return scheduler
    return LOCAL if dask else None


def describe(client) -> str:
    """`2 workers x 1 thread at tcp://127.0.0.1:40123`: what a run logs about its cluster."""
    workers = client.scheduler_info().get("workers", {})
    threads = sorted({w.get("nthreads", 1) for w in workers.values()}) or [0]
    per = "/".join(str(t) for t in threads)
    return f"{len(workers)} worker(s) x {per} thread(s) at {client.scheduler.address}"
