"""Numbers written with a decimal comma or point, with or without thousands separators.

Each value is read by its own marks where they tell: with both a comma and a point the last
one is the decimal mark (`1.157,6`, `1,157.6`); a mark that appears more than once groups
thousands (`1.234.567`); a single mark followed by other than three digits is the decimal mark
(`19,03`, `333.0`). Only one mark followed by exactly three digits (`110.643`) is ambiguous:
the file's decimal mark (`[read] decimal`, "." unless set) decides. Spaces and apostrophes
between digits group thousands. Anything else is not a number (NaN).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_GROUPING = re.compile(r"(?<=\d)['\s\u00a0](?=\d{3})")


def parse_numbers(text: pd.Series, decimal: str = ".") -> pd.Series:
    """Text cells as floats (see the module docstring); NaN where empty or not a number."""
    quick = pd.to_numeric(text, errors="coerce").astype(float) if decimal == "." else None
    rest = text.notna() if quick is None else text.notna() & quick.isna()
    if not rest.any():
        return quick
    values = {v: number(str(v), decimal) for v in pd.unique(text[rest])}
    out = quick.copy() if quick is not None else pd.Series(np.nan, index=text.index)
    out[rest] = text[rest].map(values).astype(float)
    return out


def number(value: str, decimal: str = ".") -> float:
    """One cell as a float, NaN if it is not a number."""
    value = _GROUPING.sub("", value.strip())
    commas, points = value.count(","), value.count(".")
    mark = None  # the decimal mark; None: every mark groups thousands
    if commas and points:
        mark = "," if value.rfind(",") > value.rfind(".") else "."
    elif commas + points == 1:
        sep = "," if commas else "."
        mark = sep if len(value) - value.rfind(sep) - 1 != 3 or sep == decimal else None
    head, tail = value.rsplit(mark, 1) if mark else (value, "")
    thousands = {",": ".", ".": ","}[mark] if mark else ("," if commas else ".")
    if thousands in head:
        if not re.fullmatch(rf"[+-]?\d{{1,3}}(\{thousands}\d{{3}})+", head):
            return np.nan
        head = head.replace(thousands, "")
    try:
        return float(head + "." + tail) if mark else float(head)
    except ValueError:
        return np.nan
