"""Derived features as small arithmetic expressions over columns, compiled once, run on arrays.

A profile declares features such as `hours_per_day = "planned_effort_hours / planned_duration_days"`
or `start_month = "month(start_date)"`. The text is parsed with Python's `ast` and only names,
numbers, `+ - * / **`, unary minus and the functions in `FUNCTIONS` are accepted, so a profile
can never run code. Dates are datetime64[D] arrays: `a - b` of two dates is a number of days.
Non-finite results (log(0), x / 0) become NaN: the models' missing-value branch takes them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Arrays = Mapping[str, np.ndarray]


def _month(d: np.ndarray) -> np.ndarray:
    month = (d.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(float)
    return np.where(np.isnat(d), np.nan, month)


def _year(d: np.ndarray) -> np.ndarray:
    year = (d.astype("datetime64[Y]").astype(np.int64) + 1970).astype(float)
    return np.where(np.isnat(d), np.nan, year)


FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log": np.log, "log1p": np.log1p, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
    "month": _month, "year": _year,
}
CALENDAR_FUNCTIONS = frozenset({"month", "year"})
_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
           ast.Div: np.true_divide, ast.Pow: np.power}


class ExpressionError(ValueError):
    """An expression that is not allowed or names an unknown column (the message says which)."""


@dataclass(frozen=True)
class Expression:
    """One compiled expression: `names` it reads, `evaluate(columns)` gives a float array."""

    text: str
    names: frozenset[str]
    _run: Callable[[Arrays], np.ndarray]
    functions: frozenset[str] = frozenset()

    @property
    def calendar(self) -> bool:
        """Reads the calendar (month, year): a feature of when, not of how big."""
        return bool(self.functions & CALENDAR_FUNCTIONS)

    def evaluate(self, columns: Arrays) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(self._run(columns))
        if out.dtype.kind == "M":  # datetime64 (`np.issubdtype` costs ~1 µs a call)
            raise ExpressionError(f"{self.text!r} gives a date; derived features are numbers "
                                  "(use month(...), year(...) or a difference of two dates)")
        out = out.astype(float, copy=False)
        return np.where(np.isfinite(out), out, np.nan)


def compile_expression(text: str, known: set[str] | None = None) -> Expression:
    """Parse `text`; ExpressionError naming the problem, or an unknown name when `known` given."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {exc.msg}") from None
    names: set[str] = set()
    run = _compile(tree, text, names)
    if known is not None and names - known:
        raise ExpressionError(f"{text!r} uses unknown column(s) {sorted(names - known)}")
    functions = {n.func.id for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return Expression(text, frozenset(names), run, frozenset(functions))


def _compile(node: ast.AST, text: str, names: set[str]) -> Callable[[Arrays], np.ndarray]:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        value = float(node.value)
        return lambda cols: value
    if isinstance(node, ast.Name):
        names.add(node.id)
        name = node.id
        return lambda cols: _numeric_or_date(cols[name])
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op, left, right = _BINARY[type(node.op)], _compile(node.left, text, names), \
            _compile(node.right, text, names)
        if isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
            folded = op(left({}), right({}))  # constants fold once: 40 / 7 is computed here
            return lambda cols: folded
        return lambda cols: _days(op(left(cols), right(cols)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _compile(node.operand, text, names)
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return lambda cols: sign * inner(cols)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in FUNCTIONS and len(node.args) == 1 and not node.keywords:
        fn, arg = FUNCTIONS[node.func.id], _compile(node.args[0], text, names)
        return lambda cols: fn(arg(cols))
    allowed = ", ".join(sorted(FUNCTIONS))
    raise ExpressionError(f"{text!r}: only column names, numbers, + - * / ** and the "
                          f"functions {allowed} (one argument each) are allowed")


def _days(values):
    """A difference of two dates as float days (NaN where either was missing)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "m":  # timedelta64
        days = values.astype("timedelta64[D]")
        return np.where(np.isnat(days), np.nan, days.astype(np.int64).astype(float))
    return values


def _numeric_or_date(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "M":  # datetime64
        return values.astype("datetime64[D]")
    return values.astype(float, copy=False)
