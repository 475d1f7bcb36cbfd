"""Scoring input: find the files, check their columns, read them in chunks, validate each row.

A scoring row is what `POST /v1/projects/assess` takes, flattened: `project_id`, the intake
columns and optionally a status snapshot. Rows are validated by the API's own `ProjectRequest`
schema, so batch scoring rejects exactly what the API rejects (the contract's ranges and
categories, role shares, risk rule, EV/PV within BAC, status after start, PV = BAC after the
planned finish) and scores exactly the values the schema accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from opm_ml.contract import INTAKE_COLUMNS
from opm_ml.features import STATUS_INPUT_COLUMNS
from serving.model_store import first_line

REQUIRED_COLUMNS = ("project_id", *INTAKE_COLUMNS)
# One line per problem: the file, its 1-based data row, the column, the cell and why.
REPORT_COLUMNS = ("file", "row", "column", "value", "reason")
SUFFIXES = (".csv", ".parquet")


class ScoringInputError(ValueError):
    """A whole-input problem (missing file or column, unreadable or empty input)."""


def input_files(path: Path) -> list[Path]:
    """The files to score: `path` itself (CSV or Parquet), or a folder's Parquet parts in order.

    Parts are ordered naturally (`part.2` before `part.10`), as Dask and Spark number them.
    """
    if path.is_dir():
        files = sorted(path.glob("*.parquet"), key=_natural)
        if not files:
            raise ScoringInputError(f"{path} holds no .parquet part files")
        return files
    if not path.exists():
        raise ScoringInputError(f"{path} does not exist")
    if path.suffix.lower() not in SUFFIXES:
        raise ScoringInputError(f"cannot read {path}: expected .csv, .parquet or a folder of "
                                ".parquet parts")
    return [path]


def count_rows(path: Path) -> int:
    """Data rows of a file: Parquet's footer count, a CSV's line count (for progress totals)."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        with path.open("rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))
            handle.seek(max(handle.tell() - 1, 0))
            unterminated = handle.tell() > 0 and handle.read(1) != b"\n"
        return max(lines + unterminated - 1, 0)  # minus the header line
    except Exception as exc:  # pyarrow and the OS raise many types for unreadable files
        raise ScoringInputError(f"cannot read {path}: {first_line(exc)}") from None


def check_columns(path: Path) -> None:
    """ScoringInputError naming the file and every required column it lacks."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        else:
            names = pd.read_csv(path, nrows=0).columns
    except Exception as exc:
        raise ScoringInputError(f"cannot read {path}: {first_line(exc)}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise ScoringInputError(f"{path.name} lacks required column(s): {', '.join(missing)}")


def read_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows in chunks of at most `chunk_rows`: only the columns scoring uses.

    CSV blank lines are kept (and rejected as empty rows) so row numbers match the file's.
    """
    wanted = (*REQUIRED_COLUMNS, *STATUS_INPUT_COLUMNS)
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            source = pq.ParquetFile(path)
            columns = [c for c in wanted if c in source.schema_arrow.names]
            for batch in source.iter_batches(batch_size=chunk_rows, columns=columns):
                yield batch.to_pandas()
        else:
            # project_id as text: "007" is an id, not the number 7.
            yield from pd.read_csv(path, chunksize=chunk_rows, dtype={"project_id": str},
                                   skip_blank_lines=False,
                                   usecols=lambda name: name in wanted)
    except Exception as exc:  # malformed CSV lines, corrupt Parquet pages, I/O errors
        raise ScoringInputError(f"cannot read {path}: {first_line(exc)}") from None


def validate_rows(frame: pd.DataFrame, file: str,
                  first_row: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows as validated values, one report line per problem) for a chunk of rows.

    Rows are numbered from `first_row` (the chunk's position in its file). The valid frame
    holds `project_id`, the intake columns and the status columns (None at intake) in the
    types the schema produced; it is indexed by row number.
    """
    from serving.schemas import ProjectRequest

    status_columns = [c for c in STATUS_INPUT_COLUMNS if c in frame.columns]
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    items, rows, problems = [], [], []
    for offset, record in enumerate(records):
        row = first_row + offset
        if all(value is None for value in record.values()):
            problems.append((row, "", "", "empty row"))
            continue
        if record["project_id"] is None:
            problems.append((row, "project_id", "", "required value is missing"))
            continue
        body = {c: record[c] for c in REQUIRED_COLUMNS}
        body["project_id"] = str(body["project_id"])
        # Any status value makes it a status report, so a partial one is reported, not ignored.
        if any(record[c] is not None for c in status_columns):
            body["status"] = {c: record[c] for c in status_columns}
        try:
            items.append(ProjectRequest.model_validate(body))
            rows.append(row)
        except ValidationError as exc:
            problems += [(row, *_problem(error)) for error in exc.errors()]
    report = pd.DataFrame(problems, columns=list(REPORT_COLUMNS[1:]))
    report.insert(0, "file", file)
    return _valid_frame(items, rows), report.astype({"row": "int64"})


def _valid_frame(items: list, rows: list[int]) -> pd.DataFrame:
    data = {name: [getattr(item, name) for item in items] for name in REQUIRED_COLUMNS}
    for name in STATUS_INPUT_COLUMNS:
        data[name] = [None if item.status is None else getattr(item.status, name)
                      for item in items]
    return pd.DataFrame(data, index=pd.Index(rows, dtype="int64", name="row"))


def _problem(error: dict) -> tuple[str, str, str]:
    """(column, value, reason) of one pydantic error; the column is the file's column name."""
    column = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str)), "")
    value = error.get("input")
    if value is None or error["type"] == "missing":
        return column, "", "required value is missing"
    return column, _cell(value), error["msg"]


def _cell(value) -> str:
    """A cell as the report shows it: 270 not 270.0, dates as YYYY-MM-DD."""
    if isinstance(value, float) and np.isfinite(value):
        return np.format_float_positional(value, trim="-")
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else str(value)
    return str(value)


def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]

