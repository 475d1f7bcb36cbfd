"""The `opm-ml` command line: real commands on real (small) data, errors without tracebacks."""

from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from opm_ml import cli

from opm_ml.cli import app
from opm_ml.contract import TABLES, schema_markdown
from opm_ml.settings import get_settings

runner = CliRunner()
BAD_HISTORY = Path(__file__).resolve().parents[1] / "data" / "examples" / "bad_history"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich wraps to the terminal; a wide console keeps messages on one line for asserts."""
    monkeypatch.setattr(cli, "console", Console(width=250))


def test_every_command_has_help():
    for args in (["--help"], ["data", "--help"], ["data", "generate", "--help"],
                 ["data", "validate", "--help"], ["evm", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, args
        assert "Usage" in result.output


def test_schema_lists_every_contract_column():
    result = runner.invoke(app, ["data", "schema"])
    assert result.exit_code == 0
    for columns in TABLES.values():
        for col in columns:
            assert f"`{col.name}`" in result.output


def test_generate_then_validate_then_summarise(tmp_path):
    out = tmp_path / "history"
    result = runner.invoke(app, ["data", "generate", "--projects", "200", "--seed", "3",
                                 "--out", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out / "projects.csv")) == 200

    result = runner.invoke(app, ["data", "validate", str(out)])
    assert result.exit_code == 0, result.output
    assert "projects: 200 rows, 200 valid, 0 rejected" in result.output

    result = runner.invoke(app, ["data", "summary", str(out)])
    assert result.exit_code == 0, result.output
    assert "it_software" in result.output and "all" in result.output


def test_validate_prints_each_planted_problem_and_writes_report(tmp_path):
    report = tmp_path / "rejects.csv"
    result = runner.invoke(app, ["data", "validate", str(BAD_HISTORY), "--report-out",
                                 str(report)])
    assert result.exit_code == 1
    assert "budget_at_completion must be >= 1, got -5000" in result.output
    assert "unknown project_type 'spaceflight'" in result.output
    assert "before start_date" in result.output
    written = pd.read_csv(report)
    assert set(written.columns) == {"table", "row", "column", "value", "reason"}
    assert (written["table"] == "snapshots").any() and (written["column"] == "ev").any()


def test_bad_input_is_a_one_line_error_not_a_traceback(tmp_path):
    cases = [
        ["data", "validate", str(tmp_path / "missing")],
        ["data", "validate", str(BAD_HISTORY / "projects.csv"), "--table", "nonsense"],
        ["data", "generate", "--out", str(tmp_path), "--format", "xlsx"],
        ["evm", "--bac", "100", "--pv", "50", "--ev", "40", "--ac", "45",
         "--start", "2024-13-01", "--duration", "100", "--status-date", "2024-03-01"],
        ["evm", "--bac", "100", "--pv", "50", "--ev", "140", "--ac", "45",
         "--start", "2024-01-01", "--duration", "100", "--status-date", "2024-03-01"],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output, args


@pytest.mark.parametrize("key", ["", "change-me"])
def test_serve_refuses_an_empty_or_short_api_key_in_one_line(monkeypatch, key):
    monkeypatch.setenv("OPM_ML_API_KEY", key)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["serve"])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: OPM_ML_API_KEY is ")
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        # Help and commands that do not read the settings still work.
        assert runner.invoke(app, ["serve", "--help"]).exit_code == 0
        assert runner.invoke(app, ["data", "schema"]).exit_code == 0
    finally:
        get_settings.cache_clear()


def test_evm_prints_textbook_values():
    # BAC 100k, PV 50k, EV 40k, AC 45k: SPI = 0.8, CPI = 40/45, EAC = BAC/CPI = 112,500.
    result = runner.invoke(app, ["evm", "--bac", "100000", "--pv", "50000", "--ev", "40000",
                                 "--ac", "45000", "--start", "2024-01-01", "--duration", "100",
                                 "--status-date", "2024-02-20"])
    assert result.exit_code == 0, result.output
    assert "112,500" in result.output and "0.8889" in result.output


def test_published_contract_table_matches_the_code():
    readme = (Path(__file__).resolve().parents[1] / "data" / "README.md").read_text()
    start = readme.index("<!-- contract table: opm-ml data schema -->\n")
    end = readme.index("<!-- end contract table -->")
    published = readme[start:end].split("\n", 1)[1]
    assert published == schema_markdown()
