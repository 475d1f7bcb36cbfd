"""Hostile values in every field of every operation: never a server error.

Beside the schema fuzzing (test_api_fuzz.py), which sends what the schema describes, this sends
what a careless or hostile client does: NaN, +-Infinity, 1e308, -0, denormals, huge integers
(past float range, past Python's 4,300-digit parsing limit), deep nesting, megabyte strings,
unicode of every kind (emoji, right-to-left overrides, NUL, a lone surrogate) and formula or
markup text. Each documented example body is mutated one field at a time; parameters, path
segments, uploaded cells and headers get the same values. The sweep is deterministic: each
field gets a few values, cycling so that every value reaches every operation; `FUZZ_FULL=1`
(benchmarks/fuzz.py) sends every value to every field. Issue 13, "widen the net".
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from test_dashboard_api import inflight_frame

from serving.app import create_app
from serving.model_store import ModelStore

KEY = "hostile-admin-key-0123"
FULL = os.environ.get("FUZZ_FULL") == "1"
PER_FIELD = 2  # values per field in the sampled sweep
ANSWERS: Counter[tuple[str, int]] = Counter()  # (operation, status) -> requests; read by fuzz.py


@dataclass(frozen=True)
class Raw:
    """JSON text sent as is (numbers Python's encoder cannot write, nesting it refuses)."""

    text: str


def deep(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth)


NUMBERS = [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, -0.0, 5e-324, 10**30,
           -(10**30), Raw("1" + "0" * 400), Raw("9" * 5000), Raw("1e999"), Raw("-0")]
TEXTS = ["", " ", "x" * 1_000_000, "é中文😀" * 50, "\u202eevil\u202c", "\u0000nul",
         "\ud800", "=cmd|' /C calc'!A0", "<script>alert(1)</script>", "../../etc/passwd",
         "NaN", "Infinity", "9" * 400, "1" * 10_000]
SHAPES = [None, [], {}, True, deep(900), deep(100_000), [[[[[[[[{}]]]]]]]]]
HOSTILE = [*NUMBERS, *TEXTS, *SHAPES]


def encode(body) -> bytes:
    """JSON text of `body`, with `Raw` values spliced in and NaN/Infinity as bare words."""
    raws: list[str] = []

    def swap(value):
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"\u0001raw{len(raws) - 1}\u0001"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(body))
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\u0001raw{i}\u0001"), raw)
    return text.encode("utf-8", "surrogatepass")


def paths(node, prefix=()) -> Iterator[tuple]:
    """Every field's path: containers first, then their members."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):  # a batch's first items stand for the rest
            yield from paths(value, (*prefix, i))


def replaced(node, path: tuple, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: replaced(node[head], rest, value)}
    return [replaced(v, rest, value) if i == head else v for i, v in enumerate(node)]


def values_for(position: int) -> list:
    """The hostile values field number `position` gets (all of them with FUZZ_FULL)."""
    if FULL:
        return HOSTILE
    start = position * PER_FIELD
    return [HOSTILE[(start + k) % len(HOSTILE)] for k in range(PER_FIELD)]


@dataclass
class Case:
    operation: str
    method: str
    url: str
    content: bytes | None = None
    headers: dict[str, str | bytes] = field(default_factory=dict)


def body_cases(operation: str, method: str, url: str, examples: list) -> Iterator[Case]:
    """Each example as is, then with one field at a time replaced (fields numbered across the
    examples, so the sample's values keep cycling from one example to the next)."""
    json_type = {"content-type": "application/json"}
    fields = [(example, path) for example in examples for path in paths(example)]
    for example in examples:
        yield Case(operation, method, url, encode(example), json_type)
    for position, (example, path) in enumerate(fields):
        for value in values_for(position):
            yield Case(operation, method, url, encode(replaced(example, path, value)), json_type)


def text_of(value) -> str:
    """A hostile value as a URL segment, query value or CSV cell."""
    if isinstance(value, Raw):
        return value.text[:10_000]
    return "" if value is None else str(value)


def parameter_cases(operation: str, method: str, template: str, names: list[str],
                    fixed: dict[str, str], body: bytes | None = None) -> Iterator[Case]:
    for position, name in enumerate(names):
        for value in values_for(position) + TEXTS:
            # URLs stop at a few KB in any server (uvicorn's limit is 16 KB of request head).
            given = {**fixed, name: quote(text_of(value)[:2_000].encode("utf-8", "surrogatepass"),
                                          safe="")}
            path = template.format(**{k: v for k, v in given.items() if "{" + k + "}" in template})
            query = "&".join(f"{k}={v}" for k, v in given.items()
                             if "{" + k + "}" not in template)
            yield Case(operation, method, f"{path}?{query}" if query else path, body,
                       {"content-type": "application/json"} if body else {})


def upload_cases(table: pd.DataFrame, rows: int) -> Iterator[Case]:
    """The dashboard upload, one table per hostile value: row k holds the value in column k and
    is valid otherwise (rows are judged one by one, so one upload tests `rows` cells). The
    sample rotates through the columns and alternates CSV and Parquet; FUZZ_FULL sends every
    column in both formats."""
    operation, columns = "POST /v1/dashboard/portfolio", list(table.columns)
    for index, value in enumerate(HOSTILE):
        if FULL:
            groups, formats = [columns[i:i + rows] for i in range(0, len(columns), rows)], (
                "csv", "parquet")
        else:
            start = index * rows % len(columns)
            groups, formats = [(columns * 2)[start:start + rows]], (("csv", "parquet")[index % 2],)
        for group in groups:
            cells = pd.concat([table.iloc[[0]]] * len(group), ignore_index=True).astype(object)
            # object, not Arrow strings: a lone surrogate must fit in any cell, the id's too
            cells["project_id"] = pd.Series([f"P-{k}" for k in range(len(group))], dtype=object)
            for k, column in enumerate(group):
                cells.at[k, column] = text_of(value)[:100_000]
            for fmt in formats:
                buffer = io.BytesIO()
                if fmt == "csv":
                    buffer.write(cells.to_csv(index=False).encode("utf-8", "surrogatepass"))
                else:
                    # Parquet text is UTF-8: a lone surrogate arrives as U+FFFD.
                    cells.map(lambda v: str(v).encode("utf-8", "surrogatepass")
                              .decode("utf-8", "replace")).to_parquet(buffer)
                yield Case(operation, "POST", f"/v1/dashboard/portfolio?filename=t.{fmt}",
                           buffer.getvalue())


def all_cases(openapi: dict, table: pd.DataFrame, rows: int) -> Iterator[Case]:
    for template, item in openapi["paths"].items():
        for method, op in item.items():
            operation = f"{method.upper()} {template}"
            names = [p["name"] for p in op.get("parameters", []) if p["in"] != "header"]
            content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            examples = [e["value"] for e in content.get("examples", {}).values()]
            fixed = {"task": "delay", "project_id": "C-001", "filename": "t.csv"}
            if template == "/v1/admin/reload":
                headers = {"X-API-Key": KEY}
                for value in ("", "x" * 10_000, (KEY + "\u00e9").encode(), b"\xff" * 20):
                    yield Case(operation, "POST", template, None, {"X-API-Key": value})
                yield Case(operation, "POST", f"{template}?wait=maybe", None, headers)
                continue
            if template == "/v1/dashboard/portfolio" and method == "post":
                yield from upload_cases(table, rows)
            if examples:
                url = template.format(task="delay")
                yield from body_cases(operation, method.upper(), url, examples)
                yield from parameter_cases(operation, method.upper(), template, names, fixed,
                                           encode(examples[0]))
            elif names:
                yield from parameter_cases(operation, method.upper(), template, names, fixed)
            else:  # no input: unexpected query and body must not matter
                yield Case(operation, method.upper(), f"{template}?x=%00&top_k=1e999",
                           encode(deep(100_000)), {"content-type": "application/json"})


@pytest.fixture(scope="module")
def fuzzed(small_registry, tmp_path_factory):
    """Every case's answer: (case, status, body text), against real models and a private
    pipeline database."""
    settings, history = small_registry
    settings = settings.model_copy(update={
        "api_key": SecretStr(KEY), "max_batch": 20,
        "database_url": f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'pipeline.db'}"})
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    app = create_app(settings, store)
    app.state.dashboard_dir = settings.data_dir
    client = TestClient(app, raise_server_exceptions=False)
    table = inflight_frame(history).head(1).reset_index(drop=True)
    table["start_date"] = table["start_date"].dt.strftime("%Y-%m-%d")
    table["status_date"] = table["status_date"].dt.strftime("%Y-%m-%d")
    answers = []
    for case in all_cases(app.openapi(), table, settings.max_batch):
        response = client.request(case.method, case.url, content=case.content,
                                  headers=case.headers)
        ANSWERS[(case.operation, response.status_code)] += 1
        answers.append((case, response.status_code, response.text))
    return app.openapi(), answers


def test_every_operation_is_fuzzed(fuzzed):
    openapi, answers = fuzzed
    documented = {f"{m.upper()} {p}" for p, item in openapi["paths"].items() for m in item}
    assert {case.operation for case, _, _ in answers} == documented
    assert len(answers) > 1_000


def test_every_value_reaches_every_operation_with_a_body(fuzzed):
    openapi, _ = fuzzed
    for item in openapi["paths"].values():
        for op in item.values():
            content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            examples = [e["value"] for e in content.get("examples", {}).values()]
            fields = sum(len(list(paths(e))) for e in examples)
            assert not examples or fields * PER_FIELD >= len(HOSTILE), op["summary"]


def test_no_hostile_value_gets_a_server_error(fuzzed):
    _, answers = fuzzed
    errors = [(c.operation, c.url[:120], (c.content or b"")[:300], status, text[:300])
              for c, status, text in answers if status >= 500]
    assert errors == [], errors[:5]


def test_answers_are_strict_json_without_infinity(fuzzed):
    """Whatever got in, nothing non-finite comes out (a bare NaN would fail this parse)."""
    _, answers = fuzzed
    for case, status, text in answers:
        if case.operation != "GET /metrics" and status != 405:
            json.loads(text, parse_constant=lambda word: pytest.fail(
                f"{word} in the answer to {case.operation}: {text[:200]}"))


@pytest.mark.parametrize("cell", ["inf", "-Infinity", "1e999", "nan", "3.5"])
def test_a_whole_number_cell_that_is_not_one_is_a_rejection(cell):
    """Found by this fuzzing: an infinite value in an integer column of an upload crashed the
    validator (inf % 1 is NaN, and NaN is neither whole nor not); now it rejects the row."""
    from test_validation import valid_project

    from opm_ml.validation import validate_frame

    result = validate_frame(pd.DataFrame([valid_project() | {"planned_duration_days": cell}]),
                            "projects")
    assert list(result.rejections[["row", "column", "reason"]].itertuples(
        index=False, name=None)) == [(1, "planned_duration_days", "not a whole number")]
