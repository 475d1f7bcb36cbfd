"""Uploaded project tables, read without trusting them: sizes are checked before the data.

A Parquet file's rows, columns and decompressed size come from its footer, so a few KB that
would expand to gigabytes are refused before one page is decompressed. Only the columns the
models read are read, only as plain values (no lists or structs); text is read still
dictionary-encoded and measured before it is decoded, since one long string repeated on every
row is a few bytes in the file and gigabytes in memory. A CSV is parsed for the wanted columns
only, up to one row past the limit.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from dataclasses import dataclass

import pandas as pd

# More columns than any real project table has (the contract has about 40): a header of
# millions of names is refused before a column is built.
MAX_COLUMNS = 1_000


class DashboardInputError(ValueError):
    """A project table the dashboard cannot use; the message names the rows and fields."""


class TableTooLarge(DashboardInputError):
    """More rows, columns or bytes than the server reads (answered with a 413)."""


@dataclass(frozen=True)
class TableLimits:
    """How much of an upload the server reads: data rows, and bytes once decompressed."""

    rows: int
    bytes: int
    columns: int = MAX_COLUMNS


def read_table(content: bytes, filename: str, columns: Collection[str] | None = None,
               limits: TableLimits | None = None) -> pd.DataFrame:
    """An uploaded CSV or Parquet project table (CSV cells as text, validated later).

    `columns`: the only columns read (others are ignored); `limits`: TableTooLarge beyond them.
    """
    parquet = filename.lower().endswith(".parquet")
    try:
        if parquet:
            return _read_parquet(content, filename, columns, limits)
        return _read_csv(content, filename, columns, limits)
    except DashboardInputError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        kind = "Parquet" if parquet else "CSV"
        raise DashboardInputError(f"cannot read {filename!r} as {kind}: {exc}") from None


def check_upload(content: bytes, filename: str, limits: TableLimits) -> None:
    """TableTooLarge (or DashboardInputError) for a file another reader will parse (an
    organisation's export read through its profile): a Parquet file by its footer, a CSV by
    its lines (a quoted line break only over-counts)."""
    if filename.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            file = pq.ParquetFile(io.BytesIO(content))
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise DashboardInputError(f"cannot read {filename!r} as Parquet: {exc}") from None
        _check_footer(file, filename, file.schema_arrow.names, limits)
    elif content.count(b"\n") > limits.rows + 1:
        raise TableTooLarge(f"{filename!r} has more than {limits.rows:,} lines, the limit "
                            "(OPM_ML_MAX_BATCH); split it into smaller tables")


def _read_parquet(content: bytes, filename: str, columns: Collection[str] | None,
                  limits: TableLimits | None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(io.BytesIO(content))
    schema = file.schema_arrow
    names = [n for n in schema.names if columns is None or n in columns]
    _check_footer(file, filename, names, limits)
    # Text stays dictionary-encoded while it is measured: decoding first is the bomb.
    text = [n for n in names if _is_text(schema.field(n).type)]
    file = pq.ParquetFile(io.BytesIO(content), read_dictionary=text)
    table = file.read(columns=names, use_pandas_metadata=False)
    if limits is not None:
        if table.num_rows > limits.rows:
            raise TableTooLarge(f"{filename!r} has more rows than its footer says, over the "
                                f"limit of {limits.rows:,} (OPM_ML_MAX_BATCH)")
        if _decoded_bytes(table) > limits.bytes:
            raise TableTooLarge(f"{filename!r} expands to more than {limits.bytes:,} bytes once "
                                "decoded (OPM_ML_MAX_BODY_BYTES)")
    return _decoded(table).to_pandas(ignore_metadata=True)


def _check_footer(file, filename: str, names: list[str], limits: TableLimits | None) -> None:
    """Refuse what the footer alone shows to be too big or not a flat table."""
    import pyarrow as pa

    meta, schema = file.metadata, file.schema_arrow
    if limits is not None:
        _check_size(filename, meta.num_rows, meta.num_columns, limits)
        packed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if packed > limits.bytes:
            raise TableTooLarge(f"{filename!r} decompresses to {packed:,} bytes, more than the "
                                f"limit of {limits.bytes:,} (OPM_ML_MAX_BODY_BYTES)")
    nested = [n for n in names if pa.types.is_nested(schema.field(n).type)]
    if nested:
        raise DashboardInputError(f"{filename!r}: column(s) {', '.join(nested)} hold lists or "
                                  "structures; a project table holds one value per cell")
    # Prefix-shared strings rebuild each value from the one before: megabytes per row from a
    # few bytes each, and no dictionary to measure them by. No writer uses it by default.
    shared = sorted({meta.row_group(g).column(c).path_in_schema
                     for g in range(meta.num_row_groups) for c in range(meta.num_columns)
                     if "DELTA_BYTE_ARRAY" in meta.row_group(g).column(c).encodings}
                    & set(names))
    if shared:
        raise DashboardInputError(f"{filename!r}: column(s) {', '.join(shared)} use the "
                                  "DELTA_BYTE_ARRAY encoding, which is not accepted; write the "
                                  "file with the default (dictionary or plain) encoding")


def _is_text(kind) -> bool:
    import pyarrow as pa

    return (pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


def _decoded_bytes(table) -> int:
    """Bytes the table takes once its dictionaries are decoded, computed without decoding."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    for column in table.columns:
        for chunk in column.chunks:
            if isinstance(chunk, pa.DictionaryArray) and _is_text(chunk.dictionary.type):
                lengths = pc.take(pc.binary_length(chunk.dictionary), chunk.indices)
                total += (pc.sum(lengths, min_count=0).as_py() or 0) + 8 * len(chunk)
            else:
                total += chunk.nbytes
    return total


def _decoded(table):
    """The table with its text dictionaries decoded to plain strings."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
    return table


def _read_csv(content: bytes, filename: str, columns: Collection[str] | None,
              limits: TableLimits | None) -> pd.DataFrame:
    if limits is not None:
        # Commas of the header line bound its columns (quoted commas only over-count).
        end = content.find(b"\n")
        _check_size(filename, 0, content.count(b",", 0, len(content) if end < 0 else end) + 1,
                    limits)
    frame = pd.read_csv(
        io.BytesIO(content), dtype=str, skip_blank_lines=False,
        usecols=None if columns is None else (lambda name: name in columns),
        nrows=None if limits is None else limits.rows + 1)
    if limits is not None and len(frame) > limits.rows:
        raise TableTooLarge(f"{filename!r} has more than {limits.rows:,} rows, the limit "
                            "(OPM_ML_MAX_BATCH); split it into smaller tables")
    return frame


def _check_size(filename: str, rows: int, columns: int, limits: TableLimits) -> None:
    if rows > limits.rows:
        raise TableTooLarge(f"{filename!r} has {rows:,} rows, more than the limit of "
                            f"{limits.rows:,} (OPM_ML_MAX_BATCH); split it into smaller tables")
    if columns > limits.columns:
        raise TableTooLarge(f"{filename!r} has {columns:,} columns, more than the "
                            f"{limits.columns:,} a project table may have")
