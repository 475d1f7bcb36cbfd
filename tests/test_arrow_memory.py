"""Arrow's memory pool in the processes opm-ml starts (`opm_ml.arrow_memory`)."""

import os

import pyarrow as pa
import pytest

from opm_ml.arrow_memory import POOL_VARIABLE, use_system_pool


@pytest.fixture
def pool_restored(monkeypatch):
    """The pool and ARROW_DEFAULT_MEMORY_POOL as they were, whatever the test sets."""
    monkeypatch.setenv(POOL_VARIABLE, "")  # recorded, so the original value comes back
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


def test_the_system_allocator_becomes_the_default_here_and_for_child_processes(pool_restored):
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    use_system_pool()
    assert pa.default_memory_pool().backend_name == "system"
    assert os.environ[POOL_VARIABLE] == "system"  # what Dask and uvicorn workers read


def test_an_operators_choice_of_pool_is_kept(pool_restored, monkeypatch):
    monkeypatch.setenv(POOL_VARIABLE, "mimalloc")
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    use_system_pool()
    assert pa.default_memory_pool().backend_name == "mimalloc"
    assert os.environ[POOL_VARIABLE] == "mimalloc"
