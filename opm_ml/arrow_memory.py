"""Arrow buffers from the C library's allocator in the processes opm-ml starts.

Batch scoring and the API's columnar answers build and write large Arrow buffers chunk after
chunk (strings, Parquet pages). With pyarrow's default pool (mimalloc) scoring 40,000 projects
spent 1.6-2.2 s in the kernel faulting pages in, with the system allocator 0.5-1.0 s, and an
in-process Arrow answer of 10,000 projects 0.8 s against 0.1 s; both ran faster in each of
three alternating pairs (docs/benchmarks.md). The commands and the server call
`use_system_pool` at start; an operator's ARROW_DEFAULT_MEMORY_POOL still wins.
"""

from __future__ import annotations

import os

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_pool() -> None:
    """Make the system allocator Arrow's default pool in this process and in the processes it
    starts (a LocalCluster's Dask workers and uvicorn's workers inherit the variable; a remote
    cluster's workers keep their own), unless ARROW_DEFAULT_MEMORY_POOL already names a pool."""
    if os.environ.get(POOL_VARIABLE):
        return
    os.environ[POOL_VARIABLE] = "system"  # read by pyarrow in processes started from here
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())  # this process: pyarrow may be loaded already
