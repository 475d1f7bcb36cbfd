"""`opm-ml train` on bad input: rows are only dropped when asked, and a failed run registers nothing.

Mixed bad rows stop training with the row report unless `--allow-rejects` is given; an empty or
all-bad projects file stops with a one-line error. Each case runs the real CLI against its own
throw-away MLflow store (OPM_ML_* environment) and then reads that registry back.
"""

import re
import shutil

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from rich.console import Console
from typer.testing import CliRunner

from opm_ml.cli import app
from opm_ml.settings import get_settings
from opm_ml.synthetic import generate_history, write_history
from training import cli as training_cli

runner = CliRunner()
BAD_ROWS = [5, 17, 40]  # projects.csv rows given complexity 9 (the contract allows 1-5)


@pytest.fixture(scope="module")
def good_history(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good_history")
    write_history(generate_history(300, seed=3), folder, fmt="csv")
    return folder


def history_with(good, folder, change) -> str:
    """A copy of the good history whose projects.csv is rewritten by `change(frame)`."""
    shutil.copytree(good, folder)
    projects = pd.read_csv(folder / "projects.csv")
    change(projects).to_csv(folder / "projects.csv", index=False)
    return str(folder)


def with_bad_rows(frame):
    frame.loc[BAD_ROWS, "complexity"] = 9
    return frame


def all_bad(frame):
    frame["complexity"] = 9
    return frame


@pytest.fixture()
def store(tmp_path, monkeypatch):
    """A private tracking URI for the CLI; returns a client on it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("OPM_ML_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("OPM_ML_MLFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setattr(training_cli, "console", Console(width=250))  # one message per line
    previous = mlflow.get_tracking_uri()
    get_settings.cache_clear()
    yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    get_settings.cache_clear()
    mlflow.set_tracking_uri(previous)


def train(folder: str, *flags: str):
    return runner.invoke(app, ["train", "--data", folder, "--models", "delay", *flags])


def test_bad_rows_stop_training_with_the_row_report(good_history, tmp_path, store):
    result = train(history_with(good_history, tmp_path / "h", with_bad_rows))
    assert result.exit_code == 1, result.output
    reported = re.findall(r"│ projects\s+│\s+(\d+) │ complexity\s+│ 9", result.output)
    assert reported == [str(row + 1) for row in BAD_ROWS]  # the report counts rows from 1
    assert "complexity must be <= 5, got 9" in result.output
    assert "pass --allow-rejects to train on the valid rows only" in result.output
    assert store.search_registered_models() == []
    assert store.search_experiments(filter_string="name = 'opm-ml'") == []  # no run started


def test_allow_rejects_trains_on_the_good_rows_only(good_history, tmp_path, store):
    result = train(history_with(good_history, tmp_path / "h", with_bad_rows), "--allow-rejects")
    assert result.exit_code == 0, result.output
    assert "297 projects" in result.output
    experiment = store.get_experiment_by_name("opm-ml")
    parent = store.search_runs([experiment.experiment_id],
                               filter_string="tags.`opm_ml.kind` = 'train'")
    assert len(parent) == 1
    metrics = parent[0].data.metrics
    assert metrics["data/projects_rows"] == 297
    assert metrics["data/rejected_rows"] > len(BAD_ROWS)  # plus their snapshots and usage


@pytest.mark.parametrize("flags", [(), ("--allow-rejects",)])
@pytest.mark.parametrize("content", ["empty file", "header only", "all rows bad"])
def test_empty_or_all_bad_projects_stop_with_one_clear_line(good_history, tmp_path, store,
                                                            content, flags):
    if content == "empty file":
        folder = tmp_path / "h"
        shutil.copytree(good_history, folder)
        (folder / "projects.csv").write_text("")
        folder = str(folder)
    else:
        folder = history_with(good_history, tmp_path / "h",
                              all_bad if content == "all rows bad" else lambda f: f.head(0))
    result = train(folder, *flags)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    if content == "empty file":
        assert errors[0] == f"error: cannot read {folder}/projects.csv: No columns to parse from file"
    elif flags:
        assert errors[0].startswith(f"error: no valid projects to train on in {folder} (")
    else:
        assert errors[0].startswith("error: rejected rows found")
    assert store.search_registered_models() == []
