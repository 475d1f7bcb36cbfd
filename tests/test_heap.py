"""`heap.settle`: what is alive is frozen out of full collections, and what a later load
replaced is collected rather than kept frozen forever."""

import gc
import weakref

from opm_ml import heap
from serving.model_store import ModelStore


class _Cyclic:
    """Freed only by the cyclic collector (like parts of a loaded model set)."""

    def __init__(self):
        self.me = self


def test_settle_freezes_the_living_and_collects_what_was_replaced():
    try:
        old = _Cyclic()
        gone = weakref.ref(old)
        heap.settle()
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        del old
        gc.collect()
        assert gone() is not None  # frozen: full passes skip it, so its cycle survives them
        heap.settle()  # the next load: the dropped cycle is collected before refreezing
        assert gone() is None
        assert gc.get_freeze_count() < frozen + 1000
    finally:
        gc.unfreeze()


def test_a_store_with_freezing_on_settles_after_each_swap(small_registry):
    settings, _ = small_registry
    store = ModelStore(settings.model_copy(update={"freeze_models": True}))
    holder = _Cyclic()  # alive at the first settle, so frozen with the first set
    try:
        assert store.reload()
        assert gc.get_freeze_count() > 0
        holder.model_set = store.current
        first = weakref.ref(store.current)
        del holder  # now only its own cycle holds it (and through it the first set)
        assert store.reload()  # swapped: the second settle unfreezes and collects it
        assert first() is None and store.current is not None
    finally:
        gc.unfreeze()
    off = ModelStore(settings)  # the test processes' default (conftest): never freezes
    assert off.reload() and gc.get_freeze_count() == 0
