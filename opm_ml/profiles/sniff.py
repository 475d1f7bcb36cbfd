"""What an export holds, column by column, for `infer` to draft a profile from.

`read_any(path)` reads a file with its encoding (a UTF-8 byte-order mark is dropped, even in a
cp1252 file), separator and number convention (decimal comma or point, judged per column: a
comma or point followed by other than three digits is a decimal mark, `1.157,6` or `1,157.6`
shows both) detected; `summarise(values, name, read)` types one column: number, integer,
boolean, date (its format; day-first and month-first told apart by a value that only one of
them reads, or by a day field that never changes), category or text.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from opm_ml.profiles.numbers import parse_numbers
from opm_ml.profiles.source import read_file

DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y", "%m/%d/%Y", "%d/%m/%Y %H:%M:%S",
                "%m/%d/%Y %I:%M:%S %p", "%d/%m/%Y %I:%M:%S %p", "%d-%b-%y", "%d-%b-%Y",
                "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y", "%m/%d/%y", "%d-%m-%Y", "%m-%d-%Y")
# Integer columns that name people, teams or codes are categories, not quantities.
ID_WORDS = re.compile(r"(^|\s)(id|code|no|nr|number|key|type|class|category|group)$")
BOOLEAN = {"yes", "no", "true", "false", "y", "n", "0", "1", "t", "f"}
MAX_LEVELS = 50
_DECIMAL_COMMA = re.compile(r"-?\d{1,3}(\.\d{3})+,\d+|-?\d*,(\d{1,2}|\d{4,})")
_DECIMAL_POINT = re.compile(r"-?\d{1,3}(,\d{3})+\.\d+|-?\d*\.(\d{1,2}|\d{4,})")


@dataclass
class ColumnSummary:
    """What inference saw in one column."""

    column: str
    kind: str  # number, integer, date, boolean, category, text
    missing_share: float
    distinct: int
    detail: str = ""  # date format, top levels, range
    role: str = ""
    stage: str = "intake"
    warning: str = ""
    formats: tuple[str, ...] = field(default=())  # date formats it may be in (ambiguous: 2)


def read_any(path: Path) -> tuple[pd.DataFrame, dict, list[str]]:
    """(the file as text cells, the read options found, warnings about them)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".arff"):
        read = {"format": suffix[1:]}
        return read_file(path, read), read, []
    raw = path.read_bytes()[:200_000]
    encoding = "utf-8"
    try:
        sample = raw.decode("utf-8")
    except UnicodeDecodeError:
        encoding, sample = "cp1252", raw.decode("cp1252", errors="replace")
    sample = sample.lstrip("\ufeff\u00ef\u00bb\u00bf")
    try:
        separator = csv.Sniffer().sniff(sample.split("\n", 20)[0] + "\n", ";,\t|").delimiter
    except csv.Error:
        separator = ","
    read = {"format": "csv", "separator": separator, "encoding": encoding}
    frame = read_file(path, read)
    convention, warnings = number_convention(frame)
    read.update(convention)
    return frame, read, warnings


def number_convention(frame: pd.DataFrame) -> tuple[dict, list[str]]:
    """({decimal, thousands} of a decimal-comma file, else {}), and a warning when columns
    disagree: each value is read by its own marks, but a value such as 1.234 is read with
    the file's one decimal mark (`numbers`)."""
    comma, point = [], []
    for name in frame.columns:
        text = frame[name].dropna().astype(str).str.strip().head(2000)
        if not len(text) or not text.str.fullmatch(r"[-+\d.,]+").mean() > 0.9:
            continue
        if text.str.fullmatch(_DECIMAL_COMMA).any():
            comma.append(str(name))
        elif text.str.fullmatch(_DECIMAL_POINT).any():
            point.append(str(name))
    warnings = []
    if comma and point:
        mark = "comma" if len(comma) > len(point) else "point"
        warnings.append(f"number format: {', '.join(comma)} use a decimal comma, "
                        f"{', '.join(point)} a decimal point; a value such as 1.234 or 1,234 "
                        f"is read with the decimal {mark} of most columns: check them")
    if len(comma) > len(point):
        return {"decimal": ",", "thousands": "."}, warnings
    return {}, warnings


def numbers(text: pd.Series, read: dict) -> pd.Series:
    """Text as numbers under the file's decimal mark (NaN where it is not a number)."""
    return parse_numbers(text, read.get("decimal", "."))


def summarise(values: pd.Series, name: str, read: dict | None = None) -> ColumnSummary:
    """Type, missing share, distinct values and a short detail of one column."""
    present = values.dropna()
    text = present.astype(str).str.strip()
    text = text[text != ""]
    distinct = int(text.nunique())
    summary = ColumnSummary(name, "text", round(1 - len(text) / max(len(values), 1), 3),
                            distinct)
    if not len(text):
        summary.detail = "empty"
        return summary
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    parsed = present.astype(float) if numeric else numbers(text, read or {})
    lower = set(text.str.lower().unique())
    if lower <= BOOLEAN and distinct == 2:
        summary.kind, summary.detail = "boolean", "/".join(sorted(lower))
    elif parsed.notna().mean() >= 0.95:
        integral = bool((parsed.dropna() % 1 == 0).all())
        summary.kind = "integer" if integral else "number"
        summary.detail = f"{parsed.min():g} .. {parsed.max():g}"
        if integral and ID_WORDS.search(words(name)) and distinct <= 0.5 * len(text):
            summary.kind, summary.detail = "category", levels(text)
    elif date_kind(summary, text):
        pass
    elif distinct <= MAX_LEVELS and distinct <= 0.5 * len(text):
        summary.kind, summary.detail = "category", levels(text)
    return summary


def date_kind(summary: ColumnSummary, text: pd.Series) -> bool:
    """Whether `text` holds dates; sets the summary's formats, detail and warning."""
    sample = text.head(2000)
    parsed = {f: pd.to_datetime(sample, format=f, errors="coerce") for f in DATE_FORMATS}
    share = {f: float(p.notna().mean()) for f, p in parsed.items()}
    best = max(share, key=share.get)
    covered = pd.concat([p.notna() for p in parsed.values()], axis=1).any(axis=1).mean()
    if covered < 0.95:
        return False
    summary.kind = "date"
    tied = [f for f in DATE_FORMATS if share[f] == share[best]
            and not parsed[f].equals(parsed[best])]
    if tied:
        best = _plausible([best, *tied], parsed)
    summary.formats = (best,) if isinstance(best, str) else tuple(best)
    summary.detail = " or ".join(summary.formats)
    if len(summary.formats) > 1:
        summary.warning = (f"ambiguous dates: every value reads as {' and as '.join(summary.formats)}"
                           "; the draft leaves the format to you (see the TODO in [read])")
    elif share[best] < 0.95:
        summary.warning = (f"mixed date formats: {share[best]:.0%} of the values are "
                           f"{best}, the rest in other formats; drafted as {best}, so those "
                           "rows will be reported: write the column in one format")
    return True


def _plausible(formats: list[str], parsed: dict[str, pd.Series]) -> str | list[str]:
    """Of formats reading every value differently, the one whose day of month never changes
    while its month does (monthly dates on one day: the other reading would put every date
    in one month of the year); all of them when that does not decide."""
    fixed_day = [f for f in formats if parsed[f].dt.day.nunique() == 1
                 and parsed[f].dt.month.nunique() > 1]
    return fixed_day[0] if len(fixed_day) == 1 else formats


def levels(text: pd.Series) -> str:
    counts = text.value_counts()
    shown = ", ".join(f"{k} ({v})" for k, v in counts.head(6).items())
    return shown + (f", ... {len(counts)} levels" if len(counts) > 6 else "")


def words(column: str) -> str:
    """A column name in lower-case words: `Actual.start.date` -> `actual start date`."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", column)
    return re.sub(r"[\W_]+", " ", spaced).strip().lower()

