"""What the API fuzzing sends and gets back: requests per operation and the status codes.

    python benchmarks/fuzz.py

Runs `tests/test_api_fuzz.py` (schemathesis against the app's own OpenAPI schema, derandomised,
so every run sends the same requests) with a plugin that counts each request the tests send and
its answer, and `tests/test_hostile_inputs.py` with FUZZ_FULL=1 (every hostile value in every
field of every operation, not the suite's sample), then prints the counts per operation and
status code. The tests fail on any 5xx; this script shows how much they covered.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
# The repo first: this folder's training.py would otherwise shadow the `training` package.
sys.path.insert(0, str(ROOT))


class CountRequests:
    """pytest plugin: counts (operation, status) of every `Case.call_and_validate`."""

    def __init__(self) -> None:
        self.answers: Counter[tuple[str, int]] = Counter()

    def pytest_configure(self, config) -> None:
        original = schemathesis.Case.call_and_validate
        answers = self.answers

        def counted(case, *args, **kwargs):
            response = original(case, *args, **kwargs)
            answers[(f"{case.method.upper()} {case.path}", response.status_code)] += 1
            return response

        schemathesis.Case.call_and_validate = counted


def report(answers: Counter, seconds: float, exit_code: int, title: str) -> Table:
    statuses = sorted({status for _, status in answers})
    rows: dict[str, Counter] = {}
    probes = "other methods on every path (405 expected)"
    for (operation, status), n in answers.items():
        # The coverage phase tries each path with methods it does not document: one row.
        only_405 = all(s == 405 for (op, s) in answers if op == operation)
        rows.setdefault(probes if only_405 else operation, Counter())[status] += n
    operations = len(rows) - (probes in rows)
    table = Table(title=f"{title}: {sum(answers.values()):,} requests, {operations} operations, "
                        f"in {seconds:.0f} s, pytest exit code {exit_code}")
    table.add_column("operation")
    for status in statuses:
        table.add_column(str(status), justify="right")
    for operation in sorted(rows, key=lambda op: (op == probes, op)):
        table.add_row(operation, *(f"{rows[operation][s]:,}" if rows[operation][s] else ""
                                   for s in statuses))
    table.add_row("all", *(f"{sum(n for (_, s), n in answers.items() if s == status):,}"
                           for status in statuses), style="bold")
    return table


def main() -> int:
    console = Console()
    counter = CountRequests()
    started = time.perf_counter()
    code = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_api_fuzz.py")],
                       plugins=[counter])
    console.print(report(counter.answers, time.perf_counter() - started, int(code),
                         "Schema fuzzing (schemathesis)"))
    os.environ["FUZZ_FULL"] = "1"
    started = time.perf_counter()
    hostile_code = pytest.main(["-q", "-p", "no:cacheprovider",
                                str(ROOT / "tests" / "test_hostile_inputs.py")])
    hostile = sys.modules["test_hostile_inputs"].ANSWERS
    console.print(report(hostile, time.perf_counter() - started, int(hostile_code),
                         "Hostile values in every field"))
    server_errors = sum(n for answers in (counter.answers, hostile)
                        for (_, status), n in answers.items() if status >= 500)
    console.print(f"5xx answers: {server_errors}")
    return int(code) or int(hostile_code) or int(server_errors > 0)


if __name__ == "__main__":
    sys.exit(main())
