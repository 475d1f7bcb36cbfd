"""Uploads to POST /v1/dashboard/portfolio that try to exhaust the process, or slip bad data
through: sizes come from the Parquet footer before any data, strings that expand stop at a
byte budget, only the models' columns are decoded, and a bad status date rejects its row.

Issue 13, items 1 and 7. Memory is measured in a fresh interpreter (pyarrow's high-water mark),
where nothing else has allocated: the unguarded reader decoded 160 MB and 2 GB here.
"""

import io
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from test_dashboard_api import inflight_frame

from serving.app import create_app
from serving.model_store import ModelStore

MAX_ROWS = 50
MAX_BYTES = 4_000_000


@pytest.fixture(scope="module")
def upload(small_registry):
    """POST a table's bytes to an app taking at most 50 rows and 4 MB decoded."""
    settings, history = small_registry
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    client = TestClient(create_app(settings.model_copy(update={
        "max_batch": MAX_ROWS, "max_body_bytes": MAX_BYTES}), store))

    def post(content: bytes, filename: str):
        return client.post(f"/v1/dashboard/portfolio?filename={filename}", content=content)

    post.history = history
    return post


def parquet(table: pa.Table, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def ten_million_rows() -> bytes:
    """The issue's bomb: 10 M rows of two constant columns, about 100 KB on disk."""
    buffer = io.BytesIO()
    chunk = pa.table({"project_id": pa.array(["P"] * 100_000),
                      "budget_at_completion": pa.array(np.ones(100_000))})
    with pq.ParquetWriter(buffer, chunk.schema, compression="zstd") as writer:
        for _ in range(100):
            writer.write_table(chunk, row_group_size=1_000_000)
    return buffer.getvalue()


def expanding_strings(name: str = "project_id", rows: int = 10_000) -> pa.Array:
    """One 200 KB string as every row's value, dictionary-encoded: a few hundred bytes in the
    file, 2 GB once decoded (written without the Arrow schema, so readers decode it)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)),
                                          pa.array(["x" * 200_000]))


def peak_arrow_bytes(content: bytes, tmp_path, max_bytes: int = MAX_BYTES) -> tuple[str, int]:
    """(outcome, pyarrow's peak allocation) of reading `content` with the upload's limits, in a
    fresh interpreter."""
    path = tmp_path / "upload.parquet"
    path.write_bytes(content)
    script = textwrap.dedent(f"""
        import pyarrow as pa
        from serving.dashboard.tables import TableLimits, TableTooLarge, read_table
        try:
            read_table(open({str(path)!r}, "rb").read(), "upload.parquet",
                       {{"project_id", "budget_at_completion"}}, TableLimits({MAX_ROWS}, {max_bytes}))
            print("read")
        except TableTooLarge as exc:
            print("refused:", exc)
        print(pa.default_memory_pool().max_memory())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    outcome, peak = done.stdout.strip().rsplit("\n", 1)
    return outcome, int(peak)


def test_ten_million_rows_are_refused_from_the_footer_before_any_data(upload, tmp_path):
    bomb = ten_million_rows()
    assert len(bomb) < 200_000
    response = upload(bomb, "bomb.parquet")
    assert response.status_code == 413, response.text
    assert response.json()["message"] == (
        "'bomb.parquet' has 10,000,000 rows, more than the limit of 50 (OPM_ML_MAX_BATCH); "
        "split it into smaller tables")
    outcome, peak = peak_arrow_bytes(bomb, tmp_path)
    assert outcome.startswith("refused: 'upload.parquet' has 10,000,000 rows")
    assert peak < 1_000_000  # not one page decoded (the whole table was 160 MB)


def test_strings_that_expand_when_decoded_stop_at_the_byte_budget(upload, tmp_path):
    bomb = parquet(pa.table({"project_id": expanding_strings(rows=MAX_ROWS)}),
                   compression="zstd", store_schema=False)
    assert len(bomb) < 5_000
    response = upload(bomb, "strings.parquet")
    assert response.status_code == 413, response.text
    assert "expands to more than 4,000,000 bytes once decoded" in response.json()["message"]
    outcome, peak = peak_arrow_bytes(bomb, tmp_path)
    assert outcome.startswith("refused: 'upload.parquet' expands to more than")
    assert peak < MAX_BYTES / 2  # measured still encoded: never the 10 MB it decodes to


def test_prefix_shared_strings_are_refused_before_they_are_rebuilt(upload):
    table = pa.table({"project_id": ["x" * 1000 + str(i) for i in range(MAX_ROWS)]})
    content = parquet(table, use_dictionary=False,
                      column_encoding={"project_id": "DELTA_BYTE_ARRAY"})
    response = upload(content, "delta.parquet")
    assert response.status_code == 422
    assert "project_id use the DELTA_BYTE_ARRAY encoding" in response.json()["message"]


def test_only_the_columns_the_models_read_are_decoded(upload):
    """A junk column that would decode to 2 GB rides along unread; the table is scored."""
    frame = inflight_frame(upload.history).head(12).reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.append_column("notes", expanding_strings("notes", rows=len(frame)))
    response = upload(parquet(table, store_schema=False), "extra.parquet")
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 12


def test_a_column_of_lists_is_refused_by_name(upload):
    frame = inflight_frame(upload.history).head(3).reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    index = table.schema.get_field_index("complexity")
    table = table.set_column(index, "complexity", pa.array([[1] * 1000] * 3))
    response = upload(parquet(table), "nested.parquet")
    assert response.status_code == 422
    assert "column(s) complexity hold lists or structures" in response.json()["message"]


def test_a_csv_over_the_row_or_column_limit_is_413(upload):
    frame = inflight_frame(upload.history).head(1)
    rows = pd.concat([frame] * (MAX_ROWS + 1)).to_csv(index=False).encode()
    response = upload(rows, "rows.csv")
    assert response.status_code == 413
    assert "has more than 50 rows" in response.json()["message"]
    wide = (",".join(f"c{i}" for i in range(5000)) + "\n" + "1," * 4999 + "1\n").encode()
    response = upload(wide, "wide.csv")
    assert response.status_code == 413
    assert "has 5,000 columns" in response.json()["message"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_bad_status_date_rejects_its_row_with_the_reason(upload, fmt):
    """A day-first or impossible date used to become NaT: the row was scored at intake with its
    pv, ev and ac silently ignored."""
    frame = inflight_frame(upload.history).head(4).reset_index(drop=True)
    frame["status_date"] = frame["status_date"].dt.strftime("%Y-%m-%d")
    frame.loc[1, "status_date"] = "30/06/2024"
    frame.loc[2, "status_date"] = "2024-13-01"
    content = (frame.to_csv(index=False).encode() if fmt == "csv"
               else parquet(pa.Table.from_pandas(frame, preserve_index=False)))
    response = upload(content, f"status.{fmt}")
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert message.startswith("2 row(s) rejected")
    assert "row 2 (status_date): not a date (expected YYYY-MM-DD)" in message
    assert "row 3 (status_date): not a date (expected YYYY-MM-DD)" in message
