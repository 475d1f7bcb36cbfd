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


def predict_row(booster: Booster, row: np.ndarray, kind: int = NORMAL) -> np.ndarray:
    """`booster.predict(row[None])` (CONTRIB: `pred_contrib=True`) for one float64 row."""
    row = np.ascontiguousarray(row, dtype=np.float64)
    key = (kind, row.shape[-1])
    cached = _handles.get(booster)
    handle = None if cached is None else cached.get(key)
    if handle is None:
        handle = _Handle(booster, *key)
        with _lock:
            _handles.setdefault(booster, {})[key] = handle
    out = np.empty(handle.size)
    length = ctypes.c_int64(0)
    # Plain addresses: `ndarray.ctypes.data_as` costs ~3 µs a call in casts; both arrays live
    # until the call returns.
    _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFast(
        handle.value, _address(row), ctypes.byref(length), _address(out)))
    return out


def _address(array: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(array.__array_interface__["data"][0])


def predict(booster: Booster, X: np.ndarray, threads: int, kind: int = NORMAL) -> np.ndarray:
    """`booster.predict(X, ...)` for any number of rows; one row takes the fast path."""
    if len(X) == 1:
        out = predict_row(booster, X[0], kind)
        return out[None, :] if kind == CONTRIB else out
    return booster.predict(X, num_threads=threads, raw_score=kind == RAW_SCORE,
                           pred_contrib=kind == CONTRIB)
