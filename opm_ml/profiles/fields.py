"""Type checks of a profile's TOML values: every wrong type is one ProfileError line naming the
file and the field (`read.join[0].on must be text`), never a KeyError or AttributeError later.

`Fields(source)` checks one value at a time; `read_options` checks the whole `[read]` table,
whose options the reader then uses without checking again.
"""

from __future__ import annotations

import codecs
from typing import Any

READ = {"format", "separator", "decimal", "thousands", "encoding", "date_format",
        "date_formats", "missing", "join", "reports", "finished", "deduplicate"}
# What a joined file may set for itself (the rest of [read] applies to every file).
JOIN = {"file", "on", "format", "separator", "decimal", "thousands", "encoding", "missing"}
REPORTS = {"date", "min_reports"}
FORMATS = ("csv", "parquet", "arff")


class ProfileError(ValueError):
    """A profile that cannot be used: the message names the file, the field and the problem."""


class Fields:
    """Checks of single values; each failure names `source` and the field's dotted key."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, problem: str):
        raise ProfileError(f"{self.source}: {key} {problem}")

    def table(self, value: Any, key: str, allowed: set[str] | None = None,
              what: str = "field") -> dict:
        if not isinstance(value, dict):
            self.fail(key or "the profile", f"must be a table ({{ key = value, ... }}), got "
                                            f"{_shown(value)}")
        for name in sorted(set(value) - allowed) if allowed is not None else ():
            self.fail(f"{key}.{name}" if key else name, f"is not a {what}")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be non-empty text, got {_shown(value)}")
        return value

    def texts(self, value: Any, key: str, at_least: int = 1, numbers: bool = False) -> tuple:
        """A list of text (or, with `numbers`, of whole numbers too, read as their text)."""
        ok = (str, int) if numbers else (str,)
        if not isinstance(value, list) or len(value) < at_least or any(
                isinstance(v, bool) or not isinstance(v, ok) for v in value):
            self.fail(key, f"must be a list of at least {at_least} text value(s), got "
                           f"{_shown(value)}")
        return tuple(str(v) for v in value)

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"must be a number, got {_shown(value)}")
        return float(value)

    def flag(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {_shown(value)}")
        return value

    def char(self, value: Any, key: str, empty: bool = False) -> str:
        if not isinstance(value, str) or len(value) > 1 or (not value and not empty):
            self.fail(key, f"must be one character, got {_shown(value)}")
        return value


def read_options(raw: Any, check: Fields) -> dict:
    """The `[read]` table, every option checked (see docs/profiles.md)."""
    read = dict(check.table(raw, "read", READ, "read option"))
    if "format" in read and read["format"] not in FORMATS:
        check.fail("read.format", f"must be one of {', '.join(FORMATS)}, got "
                                  f"{_shown(read['format'])}")
    _file_options(read, "read", check)
    if "date_format" in read:
        _date_format(read["date_format"], "read.date_format", check)
    for column, fmt in check.table(read.get("date_formats", {}), "read.date_formats").items():
        _date_format(fmt, f"read.date_formats.{column}", check)
    joins = read.get("join", [])
    if isinstance(joins, dict):
        joins = read["join"] = [joins]
    if not isinstance(joins, list):
        check.fail("read.join", f"must be a list of files ([[read.join]]), got {_shown(joins)}")
    read["join"] = joins = [dict(check.table(j, f"read.join[{i}]", JOIN, "join option"))
                            for i, j in enumerate(joins)]
    for i, join in enumerate(joins):
        key = f"read.join[{i}]"
        for field in ("file", "on"):
            check.text(join.get(field), f"{key}.{field}")
        _file_options(join, key, check)
    if "reports" in read:
        reports = check.table(read["reports"], "read.reports", REPORTS, "reports option")
        check.text(reports.get("date"), "read.reports.date")
        least = reports.get("min_reports", 2)
        if isinstance(least, bool) or not isinstance(least, int) or least < 2:
            check.fail("read.reports.min_reports", f"must be a whole number >= 2, got "
                                                   f"{_shown(least)}")
    if "finished" in read:
        finished = check.table(read["finished"], "read.finished", {"column", "values"},
                               "finished option")
        check.text(finished.get("column"), "read.finished.column")
        read["finished"] = {**finished, "values": check.texts(
            finished.get("values"), "read.finished.values", numbers=True)}
    if "deduplicate" in read:
        key = read["deduplicate"]
        if isinstance(key, list):
            check.texts(key, "read.deduplicate")
        else:
            check.text(key, "read.deduplicate")
    return read


def _file_options(options: dict, key: str, check: Fields) -> None:
    if "separator" in options:
        check.char(options["separator"], f"{key}.separator")
    if "decimal" in options:
        check.char(options["decimal"], f"{key}.decimal")
    if "thousands" in options:
        check.char(options["thousands"], f"{key}.thousands", empty=True)
    if options.get("thousands") and options.get("thousands") == options.get("decimal", "."):
        check.fail(f"{key}.thousands", "must differ from the decimal mark")
    if "encoding" in options:
        try:
            codecs.lookup(check.text(options["encoding"], f"{key}.encoding"))
        except LookupError:
            check.fail(f"{key}.encoding", f"is not a known text encoding: "
                                          f"{options['encoding']!r} (e.g. utf-8, cp1252, latin-1)")
    if "missing" in options:
        options["missing"] = list(check.texts(options["missing"], f"{key}.missing",
                                              numbers=True))


def _date_format(value: Any, key: str, check: Fields) -> None:
    if "%" not in check.text(value, key):
        check.fail(key, f"must be a strftime format such as \"%d/%m/%Y\", got {value!r}")


def _shown(value: Any) -> str:
    kind = {dict: "a table", list: "a list", bool: "a true/false", str: "text"}.get(
        type(value), type(value).__name__)
    return "nothing" if value is None else f"{kind} {value!r}"[:80]


def profile_rules(raw, known: set[str], check: Fields) -> tuple[dict, ...]:
    """The `[[rules]]`: multi-column checks over known columns (`opm_ml.rules`)."""
    if not isinstance(raw, list):
        check.fail("rules", f"must be a list of rules ([[rules]]), got {raw!r}")
    out = []
    for i, rule in enumerate(raw):
        key = f"rules[{i}]"
        check.table(rule, key, {"kind", "columns", "total", "tolerance", "name", "label",
                                "type"}, "rule field")
        kind = rule.get("kind")
        if kind not in ("sum_to", "zero_together"):
            check.fail(f"{key}.kind", f'must be "sum_to" or "zero_together", got {kind!r}')
        columns = check.texts(rule.get("columns"), f"{key}.columns", at_least=2)
        for column in columns:
            if column not in known:
                check.fail(f"{key}.columns", f"names unknown feature {column!r}")
        rule = {**rule, "columns": list(columns)}
        if kind == "zero_together" and len(columns) != 2:
            check.fail(f"{key}.columns", "of zero_together are two: a count and its value")
        if kind == "sum_to":
            rule["total"] = check.number(rule.get("total"), f"{key}.total")
            rule["tolerance"] = check.number(rule.get("tolerance", 0), f"{key}.tolerance")
        out.append(rule)
    return tuple(out)
