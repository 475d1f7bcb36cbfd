"""`opm-ml score` on the session's small registry: real models, real files, one real LocalCluster.

Checks the output against `FamilyModel.predict` and the API's `/v1/projects/assess` for the same
rows, the SHAP identity and the OPM metrics, that a Dask run writes exactly the single-machine
result, and that bad rows and bad inputs stop the command with a clear report or error line.
"""

import math
import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from opm_ml.batch_scoring import cli as score_cli
from opm_ml.batch_scoring import load_models
from opm_ml.cli import app
from opm_ml.contract import INTAKE_COLUMNS
from opm_ml.features import STATUS_INPUT_COLUMNS
from opm_ml.forecasting import FAMILY_NAMES as FAMILIES
from opm_ml.forecasting import family as family_spec
from opm_ml.forecasting.inputs import model_columns
from opm_ml.opm_metrics import evm_frame
from opm_ml.settings import get_settings
from serving.app import create_app
from serving.model_store import ModelStore

runner = CliRunner()
N_INTAKE_FIRST = 12  # the first chunk (of 12 rows) has no in-flight row: schema must not change


@pytest.fixture
def registry(small_registry, monkeypatch):
    """The CLI's settings point at the session registry (via OPM_ML_* like a user's shell)."""
    settings, _ = small_registry
    monkeypatch.setenv("OPM_ML_MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("OPM_ML_MLFLOW_ARTIFACT_ROOT", str(settings.mlflow_artifact_root))
    monkeypatch.setattr(score_cli, "console", Console(width=250))  # one message per line
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def rows(small_registry) -> pd.DataFrame:
    """60 projects: 12 at intake, then every other one with its second status snapshot."""
    _, history = small_registry
    projects = history.projects.sample(60, random_state=4).reset_index(drop=True)
    snaps = history.snapshots.groupby("project_id").nth(1).set_index("project_id")
    frame = projects[["project_id", *INTAKE_COLUMNS]].copy()
    status = snaps.reindex(frame["project_id"])[list(STATUS_INPUT_COLUMNS)].reset_index(drop=True)
    status[(frame.index < N_INTAKE_FIRST) | (frame.index % 2 == 0)] = np.nan
    status.loc[13, "percent_complete"] = np.nan  # optional in a status report
    frame = pd.concat([frame, status], axis=1)
    assert frame["status_date"].notna().sum() >= 20
    return frame


def score(*args: str):
    return runner.invoke(app, ["score", *map(str, args)])


def request_bodies(rows: pd.DataFrame) -> list[dict]:
    """The rows as JSON request bodies: intake fields, and `status` where a snapshot is given."""
    bodies = []
    for record in rows.to_dict("records"):
        body = {c: record[c] for c in ("project_id", *INTAKE_COLUMNS)}
        body["start_date"] = body["start_date"].date().isoformat()
        if pd.notna(record["status_date"]):
            body["status"] = {c: None if pd.isna(record[c]) else record[c]
                              for c in STATUS_INPUT_COLUMNS}
            body["status"]["status_date"] = record["status_date"].date().isoformat()
        bodies.append({k: v.item() if hasattr(v, "item") else v for k, v in body.items()})
    return bodies


def test_csv_and_parquet_equal_predict_the_api_and_evm(registry, rows, tmp_path):
    rows.to_csv(tmp_path / "in.csv", index=False)
    rows.to_parquet(tmp_path / "in.parquet")
    result = score(tmp_path / "in.csv", "--out", tmp_path / "a.parquet", "--chunk-rows", 12)
    assert result.exit_code == 0, result.output
    assert "opm-delay v" in result.output and "60 rows read, 60 scored, 0 rejected" in result.output
    result = score(tmp_path / "in.parquet", "--out", tmp_path / "b.csv", "--chunk-rows", 25)
    assert result.exit_code == 0, result.output
    from_csv = pd.read_parquet(tmp_path / "a.parquet")
    from_parquet = pd.read_csv(tmp_path / "b.csv")
    assert list(from_csv["project_id"]) == list(rows["project_id"])
    assert list(from_parquet.columns) == list(from_csv.columns)
    numbers = from_csv.select_dtypes("number").columns
    np.testing.assert_allclose(from_parquet[numbers].astype(float),
                               from_csv[numbers].astype(float), rtol=1e-12)
    assert (pd.read_csv(tmp_path / "a.rejects.csv").empty)  # the audit file, with no problem

    # Every family's columns are FamilyModel.predict's, prefixed (the late classifier's SHAP
    # only with --late-shap, below); and the SHAP identity holds.
    models = load_models(registry, list(FAMILIES))
    for family, model in models.models.items():
        direct = model.predict(model_columns(rows)).to_frame(late_shap=False).add_prefix(
            f"{family}__")
        assert not from_csv.filter(like=f"{family}__late_shap").columns.size
        pd.testing.assert_frame_equal(from_csv[direct.columns], direct, check_dtype=False)
        planned, quantity = family_spec(family).planned, family_spec(family).quantity
        shap = from_csv.filter(regex=f"^{family}__shap__").sum(axis=1)  # NaN: unused feature
        np.testing.assert_allclose(from_csv[f"{family}__shap_base"] + shap, np.log(
            from_csv[f"{family}__{quantity}_p50"] / rows[planned]), atol=1e-9)

    # The API answers the same P50s and late probabilities, and the same OPM metrics.
    store = ModelStore(registry)
    assert store.reload(wait=True), store.last_error
    bodies = request_bodies(rows)
    items = TestClient(create_app(registry, store)).post("/v1/projects/assess",
                                                         json=bodies).json()["items"]
    for i, item in enumerate(items):
        for task, family in (("delay", "delay"), ("overrun", "overrun"),
                             ("resource-demand", "resource")):
            quantity = family_spec(family).quantity
            assert math.isclose(item["forecasts"][task]["prediction"],
                                from_csv[f"{family}__{quantity}_p50"][i], rel_tol=1e-9)
        assert math.isclose(item["forecasts"]["delay"]["probability_late"],
                            from_csv["delay__probability_late"][i], rel_tol=1e-9)
        spi = from_csv["evm__spi"][i]
        assert (item["opm_metrics"] is None) == pd.isna(spi)
        if item["opm_metrics"] is not None:
            assert math.isclose(item["opm_metrics"]["metrics"]["spi"], spi, rel_tol=1e-9)

    inflight = rows["status_date"].notna().to_numpy()
    expected = evm_frame(pd.DataFrame({
        "bac": rows["budget_at_completion"], "pv": rows["pv"], "ev": rows["ev"], "ac": rows["ac"],
        "start_date": rows["start_date"], "status_date": rows["status_date"],
        "planned_duration_days": rows["planned_duration_days"]})[inflight])
    got = from_csv.loc[inflight, [f"evm__{c}" for c in expected.columns]]
    got.columns = expected.columns
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_index_type=False)
    assert from_csv.loc[~inflight].filter(like="evm__").isna().all().all()


def test_late_shap_adds_the_classifiers_columns_only(registry, rows, tmp_path):
    """--late-shap: the late classifier's SHAP columns, as `to_frame()` writes them, and
    every other column unchanged."""
    rows.to_parquet(tmp_path / "in.parquet")
    for name, options in (("plain", ()), ("late", ("--late-shap",))):
        result = score(tmp_path / "in.parquet", "--out", tmp_path / f"{name}.parquet",
                       "--models", "delay", *options)
        assert result.exit_code == 0, result.output
    plain, late = (pd.read_parquet(tmp_path / f"{n}.parquet") for n in ("plain", "late"))
    added = [c for c in late.columns if c not in plain.columns]
    assert added and all(c.startswith("delay__late_shap") for c in added)
    pd.testing.assert_frame_equal(late[plain.columns], plain)
    model = load_models(registry, ["delay"]).models["delay"]
    direct = model.predict(model_columns(rows)).to_frame().add_prefix("delay__")
    pd.testing.assert_frame_equal(late[added], direct[added], check_dtype=False)


def test_local_cluster_writes_the_single_machine_result(registry, rows, tmp_path):
    """3 parts on 2 workers, one bad row: same output and the same file+row report."""
    parts = tmp_path / "parts"
    parts.mkdir()
    bad = rows.copy()
    bad.loc[33, "ev"] = bad.loc[33, "budget_at_completion"] * 2  # in part.1, its row 15
    for i, start in enumerate((0, 19, 40)):
        bad.iloc[start:(19, 40, 60)[i]].to_parquet(parts / f"part.{i}.parquet")

    result = score(parts, "--out", tmp_path / "one.parquet", "--allow-rejects")
    assert result.exit_code == 0, result.output
    result = score(parts, "--out", tmp_path / "dask", "--dask", "--workers", 2,
                   "--allow-rejects")
    assert result.exit_code == 0, result.output
    assert "2 worker(s)" in result.output and "3 Parquet part(s)" in result.output
    assert sorted(p.name for p in (tmp_path / "dask").iterdir()) == [
        f"part.{i}.parquet" for i in range(3)]
    on_cluster = pd.concat([pd.read_parquet(tmp_path / "dask" / f"part.{i}.parquet")
                            for i in range(3)], ignore_index=True)
    single = pd.read_parquet(tmp_path / "one.parquet")
    pd.testing.assert_frame_equal(on_cluster, single)
    assert list(single["project_id"]) == list(rows["project_id"].drop(33))
    for report in (tmp_path / "one.rejects.csv", tmp_path / "dask.rejects.csv"):
        rejected = pd.read_csv(report)
        assert rejected[["file", "row", "column"]].values.tolist() == [["part.1.parquet", 15,
                                                                         "ev"]]
        assert "exceeds the project's budget_at_completion" in rejected["reason"][0]


def test_unreachable_scheduler_is_one_error_line(registry, rows, tmp_path):
    rows.to_parquet(tmp_path / "in.parquet")
    result = score(tmp_path / "in.parquet", "--out", tmp_path / "out", "--scheduler",
                   "tcp://127.0.0.1:9", "--timeout", 0.5)
    assert result.exit_code == 2, result.output
    assert "error: no Dask scheduler answered at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_rejected_rows_stop_the_run_unless_allowed(registry, rows, tmp_path):
    bad = rows.astype({"budget_at_completion": object}).copy()
    bad.loc[2, "budget_at_completion"] = "12k"
    bad.loc[4, "project_type"] = "spaceflight"
    bad.loc[15, "pv"] = np.nan  # a status report without its planned value
    bad.loc[20, "role_share_build"] += 0.2
    bad.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.parquet"

    result = score(tmp_path / "in.csv", "--out", out, "--chunk-rows", 10)
    assert result.exit_code == 1, result.output
    for row, column, value in ((3, "budget_at_completion", "12k"),
                               (5, "project_type", "spaceflight"), (16, "pv", ""),
                               (21, r"role_share_\*", "1.2")):
        assert re.search(rf"in.csv +│ +{row} │ {column} +│ {value}", result.output), row
    assert "error: rejected rows found" in result.output
    assert not out.exists() and not list(tmp_path.glob("*.partial"))

    result = score(tmp_path / "in.csv", "--out", out, "--allow-rejects",
                   "--rejects-out", tmp_path / "problems.parquet", "--models", "delay",
                   "--no-shap")
    assert result.exit_code == 0, result.output
    assert "60 rows read, 56 scored, 4 rejected" in result.output
    scored = pd.read_parquet(out)
    assert list(scored["project_id"]) == list(rows["project_id"].drop([2, 4, 15, 20]))
    assert not scored.filter(like="shap").columns.size
    assert not scored.filter(regex="^(overrun|resource)__").columns.size
    problems = pd.read_parquet(tmp_path / "problems.parquet")
    assert problems["row"].tolist() == [3, 5, 16, 21]
    assert problems["reason"][2].startswith("partial status snapshot: a status report needs")


@pytest.mark.parametrize("case, message", [
    ("missing_column", "in.csv lacks required column(s): complexity"),
    ("header_only", "in.csv has no rows to score"),
    ("no_file", "does not exist"),
    ("bad_models", "--models takes delay, overrun, resource; got delay, cost"),
    ("no_models", "none of the models is in the registry: opm-delay@nowhere is not"),
    ("one_missing", "opm-delay-untrained@champion is not in the registry"),
])
def test_unusable_input_or_models_is_one_error_line(registry, rows, tmp_path, monkeypatch,
                                                    case, message):
    frame = rows.drop(columns="complexity") if case == "missing_column" else rows
    (frame.head(0) if case == "header_only" else frame).to_csv(tmp_path / "in.csv", index=False)
    source = tmp_path / ("nowhere.csv" if case == "no_file" else "in.csv")
    extra = {"bad_models": ["--models", "delay,cost"], "no_models": ["--alias", "nowhere"],
             "one_missing": ["--models", "delay"]}.get(case, [])
    if case == "one_missing":
        monkeypatch.setenv("OPM_ML_MODEL_NAMES", '{"delay": "opm-delay-untrained"}')
        get_settings.cache_clear()
    result = score(source, "--out", tmp_path / "out.csv", *extra)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.csv").exists()


def test_a_broken_model_of_another_family_does_not_stop_a_run(registry, tmp_path):
    """Only the chosen families are loaded: `--models delay,overrun` does not read resource's."""
    from mlflow import MlflowClient

    from opm_ml.batch_scoring import ModelsUnavailable

    client = MlflowClient(tracking_uri=registry.mlflow_tracking_uri,
                          registry_uri=registry.mlflow_tracking_uri)
    client.create_registered_model("opm-resource-broken")
    (tmp_path / "no-model").mkdir()
    version = client.create_model_version("opm-resource-broken", source=str(tmp_path / "no-model"))
    client.set_registered_model_alias("opm-resource-broken", "champion", version.version)
    broken = registry.model_copy(update={"model_names": {"resource": "opm-resource-broken"}})

    assert list(load_models(broken, ["delay", "overrun"]).models) == ["delay", "overrun"]
    with pytest.raises(ModelsUnavailable, match="opm-resource-broken v1 .* cannot be loaded"):
        load_models(broken, list(FAMILIES))
