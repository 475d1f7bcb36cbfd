"""CSV formula injection (OWASP): hostile ids and names through the real commands' CSV files.

`opm-ml data validate`, `opm-ml score`, `opm-ml intake score`, `opm-ml portfolio optimize` and
a training run's rejected-rows artifact are CSVs people open in spreadsheets; no cell may start
a formula, and numbers (negative ones included) must stay numbers.
"""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from opm_ml.cli import app
from opm_ml.contract import INTAKE_COLUMNS
from opm_ml.csv_safety import formula_safe, neutralise, write_csv
from opm_ml.settings import get_settings

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
# OWASP's payloads, one per character that starts a formula (tab and CR included).
HOSTILE = ['=HYPERLINK("http://evil.test","open")', "+1+cmd|' /C calc'!A0",
           "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def formula_cells(path: Path) -> list[str]:
    """Cells of a CSV that a spreadsheet would read as a formula (a plain number is not one)."""
    with path.open(newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    bad = []
    for cell in cells:
        if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
            try:
                float(cell)
            except ValueError:
                bad.append(cell)
    return bad


def test_text_cells_are_quoted_and_numbers_are_not():
    frame = pd.DataFrame({
        "id": [*HOSTILE, "-5", "ok", None],
        "amount": [-1.5, -2.0, 3.0, -4.0, 5.0, 6.0, -7.0, 8.0, np.nan],
        "raw": pd.Series(["=A1", -3, "-3", 2.5, "-x", None, "+1e3", "a", "@"], dtype=object),
        "kind": pd.Categorical(["=a", "'=a", "b", "b", "b", "b", "b", "b", "b"]),
    })
    safe = formula_safe(frame)
    assert safe["id"].tolist()[:6] == ["'" + h for h in HOSTILE]
    assert safe["id"].tolist()[6:8] == ["-5", "ok"] and pd.isna(safe["id"].iloc[8])
    pd.testing.assert_series_equal(safe["amount"], frame["amount"])  # numbers stay numbers
    assert safe["raw"].tolist()[:6] == ["'=A1", -3, "-3", 2.5, "'-x", None]
    assert safe["raw"].tolist()[6:] == ["+1e3", "a", "'@"]
    assert safe["kind"].tolist()[:2] == ["'=a", "'=a"]  # both labels kept, no merge error
    assert formula_safe(frame.rename(columns={"id": "=id"})).columns[0] == "'=id"
    assert frame["id"].iloc[0] == HOSTILE[0]  # the caller's frame is not changed
    assert neutralise(-2) == -2 and neutralise("- 2") == "'- 2"


def test_a_carriage_return_inside_a_cell_cannot_start_a_row(tmp_path):
    # Unquoted, "x\r=1+1" would end the row at \r in a spreadsheet and start one with =1+1.
    frame = pd.DataFrame({"id": ["x\r=1+1", "y\n@SUM(1)"], "amount": [-1.0, 2.0]})
    write_csv(frame, tmp_path / "out.csv", index=False)
    with (tmp_path / "out.csv").open(newline="") as handle:
        assert list(csv.reader(handle)) == [["id", "amount"], ["x\r=1+1", "-1.0"],
                                            ["y\n@SUM(1)", "2.0"]]
    assert (tmp_path / "out.csv").read_bytes().startswith(b'"id","amount"\n"x\r=1+1",-1.0')


def test_validate_report_quotes_hostile_values(tmp_path):
    projects = pd.read_csv(EXAMPLES / "bad_history" / "projects.csv", dtype=str)
    projects.loc[0, "project_type"] = HOSTILE[1]  # unknown type: echoed in the report
    projects.loc[1, "sector"] = HOSTILE[0]
    projects.to_csv(tmp_path / "projects.csv", index=False)
    report = tmp_path / "rejects.csv"
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "projects.csv"),
                                 "--report-out", str(report)])
    assert result.exit_code == 1, result.output
    written = pd.read_csv(report, dtype=str, keep_default_na=False)
    assert {"'" + HOSTILE[1], "'" + HOSTILE[0]} <= set(written["value"])
    assert "-5000" in set(written["value"])  # the rejected negative budget, still a number
    assert formula_cells(report) == []


@pytest.fixture
def registry(small_registry, monkeypatch):
    """The commands' settings point at the session registry, as a user's OPM_ML_* would."""
    settings, history = small_registry
    monkeypatch.setenv("OPM_ML_MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("OPM_ML_MLFLOW_ARTIFACT_ROOT", str(settings.mlflow_artifact_root))
    get_settings.cache_clear()
    yield history
    get_settings.cache_clear()


def test_score_output_and_rejects_quote_hostile_ids(registry, tmp_path):
    rows = registry.projects[["project_id", *INTAKE_COLUMNS]].head(8).reset_index(drop=True)
    rows = rows.astype({"project_type": object})
    rows.loc[: len(HOSTILE) - 1, "project_id"] = HOSTILE
    rows.loc[6, "project_type"] = "=cmd|' /C calc'!A0"  # rejected: value echoed
    rows.to_csv(tmp_path / "in.csv", index=False, quoting=csv.QUOTE_NONNUMERIC)  # keeps \r
    out, rejects = tmp_path / "out.csv", tmp_path / "rejects.csv"
    result = runner.invoke(app, ["score", str(tmp_path / "in.csv"), "--out", str(out),
                                 "--rejects-out", str(rejects), "--allow-rejects"])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out, dtype={"project_id": str})
    assert scored["project_id"].tolist()[:6] == ["'" + h for h in HOSTILE]
    shap = scored.filter(like="shap")
    assert shap.dtypes.map(pd.api.types.is_float_dtype).all() and (shap < 0).any().any()
    written = pd.read_csv(rejects, dtype=str)
    assert written["value"].tolist() == ["'=cmd|' /C calc'!A0"]
    assert formula_cells(out) == [] and formula_cells(rejects) == []


def test_intake_and_portfolio_csvs_quote_hostile_ids_and_names(registry, tmp_path):
    candidates = pd.read_csv(EXAMPLES / "candidates.csv", dtype={"project_id": str})
    # Ids the constraints file does not name (it names C002, C007, C009, C010).
    for i, hostile in zip((0, 2, 3, 4, 5, 7), HOSTILE, strict=True):
        candidates.loc[i, "project_id"] = hostile
    candidates.loc[10, "name"] = "=HYPERLINK(\"http://evil.test\",\"x\")"
    candidates.to_csv(tmp_path / "candidates.csv", index=False, quoting=csv.QUOTE_NONNUMERIC)
    ranked = tmp_path / "ranked.csv"
    result = runner.invoke(app, ["intake", "score", str(tmp_path / "candidates.csv"),
                                 "--out", str(ranked)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(ranked, dtype={"project_id": str}, keep_default_na=False)
    assert {"'" + h for h in HOSTILE} <= set(table["project_id"])
    assert "'=HYPERLINK(\"http://evil.test\",\"x\")" in set(table["name"])
    assert pd.api.types.is_float_dtype(table["npv"]) and (table["npv"] < 0).any()
    assert formula_cells(ranked) == []

    result = runner.invoke(app, ["portfolio", "optimize", str(tmp_path / "candidates.csv"),
                                 "--constraints", str(EXAMPLES / "portfolio_constraints.toml"),
                                 "--out-dir", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    decisions = pd.read_csv(tmp_path / "p" / "decisions.csv", dtype={"project_id": str},
                            keep_default_na=False)
    assert {"'" + h for h in HOSTILE} <= set(decisions["project_id"])
    for path in (tmp_path / "p").glob("*.csv"):
        assert formula_cells(path) == [], path.name


def test_training_rejections_artifact_quotes_hostile_values(tmp_path):
    import mlflow

    from training.tracking import log_rejections

    rejections = pd.DataFrame({"table": ["projects"], "row": [2], "column": ["project_type"],
                               "value": [HOSTILE[0]], "reason": ["unknown project_type"]})
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("csv", artifact_location=str(tmp_path / "art"))
        with mlflow.start_run(experiment_id=experiment) as run:
            log_rejections(rejections)
        path = Path(mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="rejected_rows.csv", dst_path=str(tmp_path)))
    finally:
        mlflow.set_tracking_uri(previous)
    assert pd.read_csv(path)["value"].tolist() == ["'" + HOSTILE[0]]
    assert formula_cells(path) == []
