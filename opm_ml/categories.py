"""Category labels spelled one way everywhere: the reader, training's levels, the API and batch
scoring all turn a value into its label here, so `2`, `2.0` and `"2.0"` are the level `"2"`.

ARFF and Parquet files store coded categories as numbers (a client code 4 arrives as 4.0), a
JSON request may send `{"client": 2}`, a CSV holds the text `2`: a number is written as its
shortest text (an integral number without `.0`), text is stripped, and text that spells an
integral number with a decimal point loses it. Other text is kept as given (`"02"` stays).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

_INTEGRAL = re.compile(r"([+-]?\d+)\.0*")


def category_label(value) -> str | None:
    """One value as its label; None for a missing value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    match = _INTEGRAL.fullmatch(text)
    return match.group(1) if match else text


def category_labels(values: pd.Series) -> pd.Series:
    """A column as labels (object dtype, None where missing or blank), same index; the same
    labels `category_label` gives one value at a time, vectorised."""
    out = np.full(len(values), None, dtype=object)
    if pd.api.types.is_bool_dtype(values.dtype):
        present = values.notna().to_numpy()
        out[present] = np.where(values[present].astype(bool), "true", "false")
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        integral = np.isfinite(numbers) & (np.nan_to_num(numbers) % 1 == 0)
        out[integral] = numbers[integral].astype(np.int64).astype(str)
        other = ~np.isnan(numbers) & ~integral
        out[other] = [repr(float(x)) for x in numbers[other]]
    else:
        text = values.astype("str").str.strip().str.replace(r"^([+-]?\d+)\.0*$", r"\1",
                                                            regex=True)
        keep = (values.notna() & (text != "")).to_numpy()
        out[keep] = text.to_numpy(dtype=object)[keep]
    return pd.Series(out, index=values.index, dtype=object)


def label_array(values) -> np.ndarray:
    """Any sequence of values as an object array of labels (None where missing)."""
    return np.array([category_label(v) for v in values], dtype=object)
