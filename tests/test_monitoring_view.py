"""The monitoring report where it shows: /metrics gauges and the dashboard's monitoring view,
from a real report (small models, logged forecasts, ingested outcomes). The view is opened as
the offline report `opm-ml monitor` writes, in Debian's Chromium (skipped without it)."""

import os

import pytest
from fastapi.testclient import TestClient

from opm_ml.monitoring import scenario
from opm_ml.monitoring.outcomes import ingest_outcomes
from opm_ml.synthetic import write_history
from serving.app import create_app
from serving.dashboard.report import render_html
from serving.model_store import ModelStore

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def report(small_registry, tmp_path_factory):
    """A monitoring report over 60 forecast projects that have since finished."""
    settings, _ = small_registry
    folder = tmp_path_factory.mktemp("view")
    settings = settings.model_copy(update={"database_url": f"sqlite:///{folder / 'v.db'}"})
    future = scenario.future(60, seed=4, shifted=True)
    store = ModelStore(settings)
    assert store.reload(wait=True)
    app = create_app(settings, store)
    with TestClient(app) as client:
        bodies = scenario.request_bodies(scenario.forecast_rows(future))
        assert client.post("/v1/projects/assess", json=bodies).status_code == 200
        assert app.state.prediction_log.flush(30)
        write_history(future, folder / "future")
        ingest_outcomes(folder / "future", settings.database_url)
        page = client.get("/dashboard").text
        assert 'href="#monitoring"' in page
        assert client.get("/dashboard/static/monitoring.js").status_code == 200
        served = client.get("/v1/monitoring").json()
        return served, client.get("/metrics").text


def test_metrics_carry_the_reports_figures(report):
    """/metrics shows the latest report's drift and realised error, as GET /v1/monitoring."""
    served, metrics = report
    delay = served["families"]["delay"]
    line = (f'opm_monitoring_realised_mape{{task="delay",version="{delay["model"]["version"]}"}}'
            f' {delay["realised"]["mape"]}')
    assert line in metrics
    drifted = [r for r in served["drift"] if r["judged"]]
    assert drifted and all(
        f'opm_monitoring_feature_psi{{feature="{r["feature"]}",stage="{r["stage"]}"}}' in metrics
        for r in drifted)
    retrain = int(delay["decision"]["retrain"])
    assert f'opm_monitoring_retrain_needed{{task="delay"}} {retrain}.0' in metrics


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason=f"{CHROMIUM} missing: run scripts/install_os_packages.sh")
def test_the_offline_monitoring_report_draws_the_report(report, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    report, _ = report
    html = tmp_path / "monitoring.html"
    html.write_text(render_html({"monitoring": report}))
    judged = [row for row in report["drift"] if row["judged"]]
    features = {row["feature"] for row in judged}
    months = [row for row in report["accuracy"] if row["by"] == "month"]
    assert judged and months
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(html.as_uri())  # no hash: a monitoring-only report opens on its view
        page.wait_for_selector('body[data-ready="monitoring"]', timeout=20_000)
        shown = page.evaluate("OPM_VIEWS['drift-chart'].data('drift').map(d => d.feature)")
        assert set(shown) <= features and len(set(shown)) == min(30, len(features))
        assert page.evaluate("OPM_VIEWS['error-chart'].data('error').length") == len(months)
        assert page.locator(".decision").count() == len(report["families"])
        visible = page.eval_on_selector_all("nav a", "as => as.filter(a => !a.hidden)"
                                                     ".map(a => a.id)")
        assert visible == ["nav-monitoring"]  # no portfolio data in this report: no link
        browser.close()
    assert not errors
