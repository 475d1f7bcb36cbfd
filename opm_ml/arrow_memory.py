"""Arrow buffers from the C library's allocator in the processes opm-ml starts.

Batch scoring and the API's columnar answers build and write large Arrow buffers chunk after
chunk (strings, Parquet pages). With pyarrow's default pool (mimalloc) scoring 40,000 projects
spent 1.6-2.2 s in the kernel faulting pages in, with the system allocator 0.5-1.0 s, and the
run was faster in each of three alternating pairs (docs/benchmarks.md). The commands and the
server call `use_system_pool` at start; an operator's ARROW_DEFAULT_MEMORY_POOL still wins.
"""

from __future__ import annotations

import os

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_pool() -> None:
    """Make the system allocator Arrow's default pool in this process and in the processes it
    starts (Dask workers, uvicorn workers inherit the variable), unless ARROW_DEFAULT_MEMORY_POOL
    already names a pool."""
    if os.environ.get(POOL_VARIABLE):
        return
    os.environ[POOL_VARIABLE] = "system"  # read by pyarrow in processes started from here
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())  # this process: pyarrow may be loaded already
