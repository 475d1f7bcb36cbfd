"""Run a scoring job: one chunk loop, on this machine or as one Dask task per Parquet part.

`score_files` reads, validates, scores and appends chunk by chunk, so memory stays bounded by
the chunk size however large the input; a Dask run calls the very same function on a worker
for each part file. Output is written under a `.partial` name and renamed only when the run
succeeds, so a failed or stopped run never leaves a file that looks complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from opm_ml.batch_scoring.inputs import (
    REPORT_COLUMNS,
    count_rows,
    profiled_rows,
    read_chunks,
    validate_rows,
)
from opm_ml.batch_scoring.scoring import ScoringModels, score_frame
from opm_ml.csv_safety import write_csv

Progress = Callable[[int], None]


@dataclass
class Outcome:
    """What a run (or one part of it) read, scored and rejected, and where it wrote."""

    rows: int = 0
    scored: int = 0
    rejections: list[pd.DataFrame] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    logged: int = 0  # forecast rows committed to the prediction log
    log_dropped: int = 0

    @property
    def failed(self) -> bool:
        """Rows were rejected; without --allow-rejects nothing is written then."""
        return bool(self.rejections)

    def add(self, other: Outcome) -> None:
        self.rows += other.rows
        self.scored += other.scored
        self.rejections += other.rejections
        self.written += other.written
        self.logged += other.logged
        self.log_dropped += other.log_dropped

    def report(self, files: list[Path]) -> pd.DataFrame:
        """Every problem, in input order (files as given, then row)."""
        if not self.rejections:
            return pd.DataFrame(columns=list(REPORT_COLUMNS))
        order = {path.name: i for i, path in enumerate(files)}
        report = pd.concat(self.rejections, ignore_index=True)
        report.insert(0, "_order", report["file"].map(order))
        return (report.sort_values(["_order", "row"], kind="stable").drop(columns="_order")
                .reset_index(drop=True))


class OutputWriter:
    """Appends scored chunks to a Parquet or CSV file (by suffix); `commit` renames it in place."""

    def __init__(self, path: Path):
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.csv = path.suffix.lower() == ".csv"
        self.rows = 0
        self._columns: list[str] | None = None
        self._parquet = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._columns is None:
            self._columns = list(frame.columns)
        frame = frame[self._columns]
        if self.csv:
            write_csv(frame, self.partial, mode="a" if self.rows else "w",
                      header=not self.rows, index=False)
        else:
            schema = None if self._parquet is None else self._parquet.schema
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            if self._parquet is None:
                # zstd (as the API's Parquet answers): a third smaller than the default
                # snappy on scored chunks (1.5 against 2.3 KB a project) and no slower to write.
                self._parquet = pq.ParquetWriter(self.partial, table.schema, compression="zstd")
            self._parquet.write_table(table)
        self.rows += len(frame)

    def commit(self) -> Path | None:
        """Rename the finished file into place; None (and no file) when nothing was written."""
        self._close()
        if not self.rows:
            return None
        os.replace(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        self._close()
        self.partial.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None


def score_files(files: list[Path], out: Path, models: ScoringModels, *, shap: bool = True,
                late_shap: bool = False, allow_rejects: bool = False, chunk_rows: int = 50_000,
                progress: Progress | None = None, log_url: str | None = None) -> Outcome:
    """Score `files` in order into the one file `out`; the loop every run uses.

    Once a row is rejected without `allow_rejects` the run can only fail, so the remaining
    chunks are validated (for a complete row report) but not scored, and `out` is not written.
    With `log_url`, every forecast also goes to the prediction log of that database.
    """
    writer = OutputWriter(out)
    outcome = Outcome()
    log = _prediction_log(log_url, chunk_rows)
    try:
        for file, first_row, frame in _chunks(files, chunk_rows, models.manifest):
            valid, rejected = validate_rows(frame, file, models.manifest, first_row)
            outcome.rows += len(frame)
            if len(rejected):
                outcome.rejections.append(rejected)
            if len(valid) and (allow_rejects or not outcome.failed):
                writer.write(score_frame(valid, models, shap, log, late_shap))
                outcome.scored += len(valid)
            if progress is not None:
                progress(len(frame))
    except BaseException:
        writer.discard()
        raise
    finally:
        _close_log(log, outcome)
    if outcome.failed and not allow_rejects:
        writer.discard()
    elif (written := writer.commit()) is not None:
        outcome.written.append(written)
    return outcome


def score_profiled(path: Path, out: Path, models: ScoringModels, *, shap: bool = True,
                   late_shap: bool = False, allow_rejects: bool = False,
                   progress: Progress | None = None,
                   log_url: str | None = None) -> Outcome:
    """Score an organisation's export read through the served models' profile (in memory:
    exports are thousands of rows); rows are reported with the file's row numbers. With
    `log_url`, every forecast also goes to the prediction log of that database."""
    valid, problems = profiled_rows(path, models.manifest)
    outcome = Outcome(rows=len(valid) + problems["row"].nunique())
    if len(problems):
        outcome.rejections.append(problems)
    writer = OutputWriter(out)
    log = _prediction_log(log_url, len(valid))
    try:
        if len(valid) and (allow_rejects or not outcome.failed):
            writer.write(score_frame(valid, models, shap, log, late_shap))
            outcome.scored = len(valid)
    except BaseException:
        writer.discard()
        raise
    finally:
        _close_log(log, outcome)
    if progress is not None:
        progress(outcome.rows)
    if outcome.failed and not allow_rejects:
        writer.discard()
    elif (written := writer.commit()) is not None:
        outcome.written.append(written)
    return outcome


def score_dask(client, files: list[Path], out_dir: Path, models: ScoringModels, *,
               shap: bool = True, late_shap: bool = False, allow_rejects: bool = False,
               chunk_rows: int = 50_000, progress: Progress | None = None,
               log_url: str | None = None) -> Outcome:
    """One `score_files` task per part file, each writing `out_dir/<part>.parquet`.

    The models go to every worker once (broadcast), not with each task. Parts are written into
    `<out_dir>.partial/`, renamed to `out_dir` when every task succeeded; workers and this
    process must see the same file system (any shared or local path).
    """
    from distributed import as_completed

    out_dir = out_dir.resolve()
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run
    staging.mkdir(parents=True)
    shipped = client.scatter(models, broadcast=True, hash=False)
    rows = {}
    for path in files:
        future = client.submit(score_files, [path.resolve()], staging / f"{path.stem}.parquet",
                               shipped, shap=shap, late_shap=late_shap,
                               allow_rejects=allow_rejects, chunk_rows=chunk_rows,
                               log_url=log_url, pure=False)
        rows[future] = count_rows(path)
    outcome = Outcome()
    try:
        for future in as_completed(rows):
            outcome.add(future.result())
            if progress is not None:
                progress(rows[future])
    except BaseException:
        client.cancel(list(rows))
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if (outcome.failed and not allow_rejects) or not outcome.scored:
        shutil.rmtree(staging)
        outcome.written = []
        return outcome
    if out_dir.exists():
        out_dir.rmdir()  # the CLI allows only an empty folder here
    os.replace(staging, out_dir)
    outcome.written = [out_dir / p.name for p in outcome.written]
    return outcome


def _close_log(log, outcome: Outcome) -> None:
    """Write what is queued; what cannot be written is counted in the outcome."""
    if log is not None:
        log.stop(timeout=120)
        outcome.logged, outcome.log_dropped = log.stats.written, sum(log.stats.dropped.values())


def _prediction_log(url: str | None, chunk_rows: int):
    """A prediction log of its own for this run (each Dask task opens one on its worker)."""
    if url is None:
        return None
    from opm_ml.monitoring.log import PredictionLog

    return PredictionLog(url, capacity=max(2 * chunk_rows, 20_000))


def _chunks(files: list[Path], chunk_rows: int,
            manifest) -> Iterator[tuple[str, int, pd.DataFrame]]:
    """(file name, number of the chunk's first row in the file, rows) for every chunk."""
    for path in files:
        first_row = 1
        for frame in read_chunks(path, chunk_rows, manifest):
            yield path.name, first_row, frame
            first_row += len(frame)
