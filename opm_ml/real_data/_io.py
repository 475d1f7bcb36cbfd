"""Readers for the raw formats in the real-data folder: ARFF (incl. string/date) and odd CSVs.

`scipy.io.arff` refuses `string` and `date` attributes (kitchenham, isbsg10, cosmic), so ARFF is
parsed here: header for names and types, data lines with the csv module (ARFF quoting rules).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

MISSING = "?"


def read_arff(path: Path) -> pd.DataFrame:
    """Dense ARFF file as a DataFrame: numeric attributes float, all others str (`?` -> NaN)."""
    lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    names: list[str] = []
    numeric: list[bool] = []
    data_start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        low = line.lower()
        if not line or line.startswith("%"):
            continue
        if low.startswith("@attribute"):
            name, kind = _parse_attribute(line[len("@attribute"):].strip(), path, i + 1)
            names.append(name)
            numeric.append(kind in ("numeric", "real", "integer"))
        elif low.startswith("@data"):
            data_start = i + 1
            break
    if data_start is None or not names:
        raise ValueError(f"{path}: no @attribute/@data section; not an ARFF file")

    rows = [ln for ln in lines[data_start:] if ln.strip() and not ln.lstrip().startswith("%")]
    if any(r.lstrip().startswith("{") for r in rows):
        raise ValueError(f"{path}: sparse ARFF rows are not supported")
    parsed = list(csv.reader(rows, quotechar="'", escapechar="\\", skipinitialspace=True))
    for lineno, values in enumerate(parsed, start=1):
        if len(values) != len(names):
            raise ValueError(
                f"{path}: data row {lineno} has {len(values)} values, header declares {len(names)}"
            )
    frame = pd.DataFrame(parsed, columns=names).replace(MISSING, np.nan)
    for name, is_num in zip(names, numeric, strict=True):
        if is_num:
            try:
                frame[name] = pd.to_numeric(frame[name]).astype(float)
            except ValueError as exc:
                raise ValueError(f"{path}: numeric attribute {name!r}: {exc}") from None
        else:
            frame[name] = frame[name].astype("str").str.strip()
    return frame


def _parse_attribute(spec: str, path: Path, lineno: int) -> tuple[str, str]:
    """Split `name type` of an @attribute line; the name may be quoted, the type is lower-cased."""
    if spec[:1] in ("'", '"'):
        end = spec.find(spec[0], 1)
        if end < 0:
            raise ValueError(f"{path}:{lineno}: unterminated quoted attribute name")
        name, rest = spec[1:end], spec[end + 1:].strip()
    else:
        name, _, rest = re.sub(r"\s+", " ", spec, count=1).partition(" ")
        rest = rest.strip()
    if rest.startswith("{"):
        return name.strip(), "nominal"
    kind = re.split(r"\s+", rest, maxsplit=1)[0].lower() if rest else ""
    if kind not in ("numeric", "real", "integer", "string", "date"):
        raise ValueError(f"{path}:{lineno}: attribute {name!r} has unknown type {kind!r}")
    return name.strip(), kind


def european_number(values: pd.Series, name: str, *, thousands: bool) -> pd.Series:
    """Parse numbers written the European way: `,` decimal mark, `.` thousands separator.

    `thousands=True` reads `110.643` as 110643 (HuijgensPhD costs); `thousands=False` reads
    `19,03` as 19.03 and rejects a `.` (durations), so a mixed-up column fails loudly.
    """
    text = values.astype("str").str.strip()
    if thousands:
        bad = text.str.contains(",", regex=False, na=False)
        cleaned = text.str.replace(".", "", regex=False)
    else:
        bad = text.str.contains(".", regex=False, na=False)
        cleaned = text.str.replace(",", ".", regex=False)
    if bad.any():
        raise ValueError(f"column {name!r}: unexpected separator in {text[bad].iloc[0]!r}")
    try:
        return pd.to_numeric(cleaned).astype(float)
    except ValueError as exc:
        raise ValueError(f"column {name!r}: {exc}") from None


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with the file name in any parse error."""
    try:
        return pd.read_csv(path, **kwargs)
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: cannot parse ({exc})") from None
