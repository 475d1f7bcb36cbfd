"""Validation and the EVM core apply one rule set (`opm_ml.rules`): a row validation lets
through never makes the metrics raise for the whole batch (issue 13, item 6).

The issue's reproduction: a snapshot dated after the planned finish with PV below BAC passed
history validation, then `evm_frame` raised for every project, so training aborted and the
dashboard's portfolio and project views answered 500.
"""

import shutil

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from opm_ml.opm_metrics import evm_frame
from opm_ml.validation import load_history
from serving.app import create_app
from serving.dashboard import SAMPLE_DIR
from serving.model_store import ModelStore


@pytest.fixture
def late_snapshot(tmp_path):
    """The sample history plus, for one in-flight project, a snapshot 10 days after its
    planned finish with PV short of its BAC (row number in snapshots.csv, project id)."""
    for name in ("projects.csv", "snapshots.csv", "resource_usage.csv"):
        shutil.copy(SAMPLE_DIR / name, tmp_path / name)
    projects = pd.read_csv(tmp_path / "projects.csv").set_index("project_id")
    snapshots = pd.read_csv(tmp_path / "snapshots.csv")
    reached = snapshots.groupby("project_id")["pv"].max() / projects["budget_at_completion"]
    inflight = projects.index[projects["actual_finish_date"].isna()]
    pid = reached[inflight][reached[inflight] < 0.9].index[0]  # PV still well short of BAC
    project = projects.loc[pid]
    finish = pd.Timestamp(project["start_date"]) + pd.Timedelta(
        days=int(project["planned_duration_days"]) + 10)
    earlier = snapshots[snapshots["project_id"] == pid]
    pv = earlier["pv"].max()  # the baseline does not decrease; it just never reached BAC
    late = {"project_id": pid, "status_date": finish.date().isoformat(),
            "pv": pv, "ev": earlier["ev"].max(), "ac": earlier["ac"].max(),
            "percent_complete": earlier["percent_complete"].max()}
    pd.concat([snapshots, pd.DataFrame([late])]).to_csv(tmp_path / "snapshots.csv", index=False)
    return tmp_path, len(snapshots) + 1, pid


def test_validation_rejects_what_the_metrics_would_refuse(late_snapshot):
    folder, row, pid = late_snapshot
    history = load_history(folder)
    rejected = history.rejections[history.rejections["table"] == "snapshots"]
    assert list(rejected[["row", "column"]].itertuples(index=False, name=None)) == [(row, "pv")]
    assert "once the planned finish" in rejected["reason"].iloc[0]
    # Every snapshot validation kept goes through the metrics, the project's others included.
    frame = history.snapshots.merge(history.projects, on="project_id")
    metrics = evm_frame(frame.rename(columns={"budget_at_completion": "bac"}))
    assert len(metrics) == len(history.snapshots)
    assert (frame["project_id"] == pid).sum() > 0


def test_the_dashboard_serves_a_history_with_such_a_row(late_snapshot, small_registry):
    folder, _, pid = late_snapshot
    settings, _ = small_registry
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    app = create_app(settings, store)
    app.state.dashboard_dir = folder
    client = TestClient(app)
    portfolio = client.get("/v1/dashboard/portfolio")
    assert portfolio.status_code == 200, portfolio.text
    assert pid in {p["project_id"] for p in portfolio.json()["projects"]}
    assert client.get(f"/v1/dashboard/projects/{pid}").status_code == 200
