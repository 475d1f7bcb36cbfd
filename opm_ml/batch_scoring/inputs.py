"""Scoring input: find the files, check their columns, read them in chunks, validate each row.

A scoring row is what `POST /v1/projects/assess` takes, flattened: `project_id`, the served
manifest's intake columns and optionally a status snapshot. Rows are validated vectorised by
`opm_ml.validation` with the rules of `opm_ml.rules` (ranges, categories, role shares, risk
rule, EV/PV within BAC, status after start, PV = BAC after the planned finish, partial status
snapshots), the same checks the API and history validation run, so batch scoring rejects
exactly what they reject.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from opm_ml.manifest import FeatureManifest
from opm_ml.text import first_line
from opm_ml.validation import scoring_table, validate_frame

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


def required_columns(manifest: FeatureManifest) -> tuple[str, ...]:
    """`project_id` and the intake columns a row must have."""
    return ("project_id", *(c for c in manifest.intake_columns
                            if not manifest.column(c).nullable))


def check_columns(path: Path, manifest: FeatureManifest) -> None:
    """ScoringInputError naming the file and every required column it lacks."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        else:
            names = pd.read_csv(path, nrows=0).columns
    except Exception as exc:
        raise ScoringInputError(f"cannot read {path}: {first_line(exc)}") from None
    missing = [c for c in required_columns(manifest) if c not in names]
    if missing:
        raise ScoringInputError(f"{path.name} lacks required column(s): {', '.join(missing)}")


def read_chunks(path: Path, chunk_rows: int,
                manifest: FeatureManifest) -> Iterator[pd.DataFrame]:
    """The file's rows in chunks of at most `chunk_rows`: only the columns scoring uses.

    CSV cells are read as text (a bad cell is a row rejection, not a failed file) and blank
    lines are kept (and rejected as empty rows) so row numbers match the file's.
    """
    wanted = ("project_id", *manifest.intake_columns, *manifest.snapshot_columns)
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            source = pq.ParquetFile(path)
            columns = [c for c in wanted if c in source.schema_arrow.names]
            for batch in source.iter_batches(batch_size=chunk_rows, columns=columns):
                yield batch.to_pandas()
        else:
            yield from pd.read_csv(path, chunksize=chunk_rows, dtype=str,
                                   skip_blank_lines=False,
                                   usecols=lambda name: name in wanted)
    except Exception as exc:  # malformed CSV lines, corrupt Parquet pages, I/O errors
        raise ScoringInputError(f"cannot read {path}: {first_line(exc)}") from None


def validate_rows(frame: pd.DataFrame, file: str, manifest: FeatureManifest,
                  first_row: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows, typed; one report line per problem) for a chunk of rows.

    Rows are numbered from `first_row` (the chunk's position in its file); the valid frame is
    indexed by that row number.
    """
    result = validate_frame(frame, scoring_table(manifest))
    offset = first_row - 1
    # Ids are echoed exactly as given (validation strips text cells), so output rows join back.
    raw_ids = frame["project_id"].to_numpy(dtype=object)[result.good.index.to_numpy() - 1]
    good = result.good.assign(project_id=[str(i) for i in raw_ids])
    good = good.set_axis(good.index + offset)
    report = result.rejections.assign(row=result.rejections["row"] + offset)
    report.insert(0, "file", file)
    return good, report[list(REPORT_COLUMNS)].astype({"row": "int64"})


def profiled_rows(path: Path, manifest: FeatureManifest) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An organisation's export read through the profile the models were trained on, validated:
    (valid rows indexed by their row in the file; one report line per problem, numbered the same
    way: cells that did not parse and rows the rules reject)."""
    from opm_ml.profiles.profile import parse_profile
    from opm_ml.profiles.reader import scoring_rows

    profile = parse_profile(manifest.source, f"the {manifest.profile} profile of the models")
    frame, source_rows, failed = scoring_rows(profile, path)
    valid, rejected = validate_rows(frame, path.name, manifest)
    rejected["row"] = source_rows[rejected["row"].to_numpy() - 1] if len(rejected) else []
    valid.index = pd.Index(source_rows[valid.index.to_numpy() - 1], name="row")
    failed.insert(0, "file", path.name)
    return valid, pd.concat([failed, rejected], ignore_index=True).astype({"row": "int64"})


def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]
