"""LightGBM predictions of one row through its single-row C API, set up once per booster.

`Booster.predict` builds a predictor, copies parameters and checks the matrix on every call:
about 50 µs, when one explained assessment makes 19 booster calls for one project. LightGBM's
`LGBM_BoosterPredictForMatSingleRowFast` keeps that set-up in a handle made once per (booster,
output kind, width), so a call costs the trees alone. Handles live beside the boosters (never
pickled with a model) and are freed with them; LightGBM guards each booster's single-row
predictor with its own lock, so request threads may share them. Same numbers as `predict`.
"""

from __future__ import annotations

import ctypes
import threading
import weakref

import numpy as np
from lightgbm import Booster
from lightgbm.basic import _LIB, _c_str, _safe_call

NORMAL, RAW_SCORE, CONTRIB = 0, 1, 3  # LightGBM's C_API_PREDICT_* kinds
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64
_handles: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_DOUBLE = ctypes.POINTER(ctypes.c_double)
# Our own prototype of the call (lightgbm's `_LIB` function object stays untyped): with the
# argument types declared, a `c_double.from_buffer` view of a numpy array passes as its
# address at no cost, where `__array_interface__` or `.ctypes` take ~2.5 µs per array.
_PREDICT_ROW = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, _DOUBLE,
                                ctypes.POINTER(ctypes.c_int64), _DOUBLE)(
    ("LGBM_BoosterPredictForMatSingleRowFast", _LIB))


class _Handle:
    """One FastConfig handle, freed when its booster is collected."""

    def __init__(self, booster: Booster, kind: int, width: int):
        self.value = ctypes.c_void_p()
        # As `predict` does: up to the early-stopping iteration when training kept one.
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(kind), ctypes.c_int(0), ctypes.c_int(iterations),
            ctypes.c_int(_FLOAT64), ctypes.c_int32(width), _c_str("num_threads=1"),
            ctypes.byref(self.value)))
        self.size = width + 1 if kind == CONTRIB else 1
        self._free = _LIB.LGBM_FastConfigFree  # module globals may be gone at exit

    def __del__(self):
        if self.value:
            self._free(self.value)


def _handle(booster: Booster, kind: int, width: int) -> _Handle:
    key = (kind, width)
    cached = _handles.get(booster)
    handle = None if cached is None else cached.get(key)
    if handle is None:
        handle = _Handle(booster, *key)
        with _lock:
            _handles.setdefault(booster, {})[key] = handle
    return handle


def _row(row: np.ndarray) -> np.ndarray:
    """`row` as a C-contiguous float64 array whose buffer ctypes may view (writable)."""
    row = np.ascontiguousarray(row, dtype=np.float64)
    return row if row.flags.writeable else row.copy()


def _into(handle: _Handle, row: np.ndarray, out: np.ndarray, offset: int = 0) -> None:
    """One prediction of `row` written at `out`'s float `offset` (both float64, contiguous)."""
    length = ctypes.c_int64(0)
    _safe_call(_PREDICT_ROW(handle.value, ctypes.c_double.from_buffer(row),
                            ctypes.byref(length), ctypes.c_double.from_buffer(out, 8 * offset)))


def predict_row(booster: Booster, row: np.ndarray, kind: int = NORMAL) -> np.ndarray:
    """`booster.predict(row[None])` (CONTRIB: `pred_contrib=True`) for one float64 row."""
    row = _row(row)
    handle = _handle(booster, kind, row.shape[-1])
    out = np.empty(handle.size)
    _into(handle, row, out)
    return out


def predict(booster: Booster, X: np.ndarray, threads: int, kind: int = NORMAL) -> np.ndarray:
    """`booster.predict(X, ...)` for any number of rows; one row takes the fast path."""
    if len(X) == 1:
        out = predict_row(booster, X[0], kind)
        return out[None, :] if kind == CONTRIB else out
    return booster.predict(X, num_threads=threads, raw_score=kind == RAW_SCORE,
                           pred_contrib=kind == CONTRIB)


def predict_columns(boosters: list[Booster], X: np.ndarray, threads: int) -> np.ndarray:
    """(n, len(boosters)): column j is `boosters[j].predict(X)`; one row takes the fast path,
    every booster writing its value into the one output row."""
    if len(X) != 1:
        return np.column_stack([b.predict(X, num_threads=threads) for b in boosters])
    row = _row(X[0])
    out = np.empty((1, len(boosters)))
    for j, booster in enumerate(boosters):
        _into(_handle(booster, NORMAL, row.shape[-1]), row, out, j)
    return out
