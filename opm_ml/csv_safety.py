"""CSV files for people: text cells a spreadsheet would run as a formula get a leading quote.

Project ids, names and rejected raw values come from users; a cell such as
`=HYPERLINK(...)` or `-2+3+cmd|' /C calc'!A0` opened in Excel or LibreOffice is a formula
(OWASP "CSV Injection"). Every CSV the product writes for people goes through `write_csv`.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

# OWASP's list: a cell starting with one of these is read as a formula (tab and CR because
# some spreadsheets strip them and read on).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A cell that is only a decimal number ("-5", "+1.5e3") is read as that number, never a
# formula: leave it alone so a rejected "-5" stays -5 in the report.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def neutralise(value: object) -> object:
    """One cell: a text that could start a formula gets a leading `'`; anything else as is."""
    if (isinstance(value, str) and value.startswith(FORMULA_START)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def formula_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with its text cells and column names neutralised.

    Numeric, boolean and date columns are left as they are, so negative amounts stay numbers;
    only text (object, string or category columns) can carry a formula.
    """
    out = frame.rename(columns=lambda c: neutralise(c) if isinstance(c, str) else c)
    for i, column in enumerate(out.columns):
        values = out.iloc[:, i]
        if _holds_text(values):
            out.isetitem(i, _neutralise_column(values))
    return out


def write_csv(frame: pd.DataFrame, path: str | Path, **to_csv: object) -> None:
    """`frame.to_csv(path, **to_csv)` after `formula_safe`: the one way the product writes CSV.

    Text cells are written in double quotes: pandas leaves a lone CR unquoted, and a
    spreadsheet starts a new row there, whose first cell could then be a formula.
    """
    to_csv.setdefault("quoting", csv.QUOTE_NONNUMERIC)
    formula_safe(frame).to_csv(path, **to_csv)


def _holds_text(values: pd.Series) -> bool:
    dtype = values.dtype
    return (dtype == object or isinstance(dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(dtype))


def _neutralise_column(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)  # two categories could become one label
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        # All text: vectorised, as score outputs can have millions of rows.
        text = values.astype("str")
        risky = (text.str.startswith(FORMULA_START, na=False)
                 & ~text.str.fullmatch(_PLAIN_NUMBER, na=False))
        return values.mask(risky, "'" + text) if risky.any() else values
    return values.map(neutralise)  # mixed cells (e.g. raw rejected values): only str ones
