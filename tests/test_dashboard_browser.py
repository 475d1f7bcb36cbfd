"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against the real app.

uvicorn serves `create_app` on a free loopback port with the session's small registry and a
generated history of about 500 in-flight projects. Numbers shown in the page are compared with
the API's JSON; screenshots go to tests/artifacts/. The offline report is opened with hostile
project ids that must show as text. Render timings are measured by benchmarks/dashboard.py, not
here. Skipped without /usr/bin/chromium or playwright (scripts/install_os_packages.sh installs
the browser).
"""

import dataclasses
import json
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from opm_ml.synthetic import generate_history, write_history
from serving.app import create_app
from serving.model_store import ModelStore

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
# Ids that end or comment out an inline script, run script, or are HTML/JS line-end specials.
HOSTILE_IDS = ["<!--<script>", "</script><script>window.pwned = 1</script>",
               "<script>window.pwned = 2</script>", "a&amp;b \u2028\u2029 <b>bold</b>",
               "<img src=x onerror=\"window.pwned = 3\">"]

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"{CHROMIUM} missing: run scripts/install_os_packages.sh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(small_registry, tmp_path_factory):
    """Base URL of the real app under uvicorn, with ~500 in-flight projects to show."""
    import uvicorn

    settings, _ = small_registry
    history_dir = tmp_path_factory.mktemp("dashboard_history")
    write_history(generate_history(5000, seed=21), history_dir)
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    app = create_app(settings, store)
    app.state.dashboard_dir = history_dir
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    get_json(base, "/v1/dashboard/portfolio")  # reads the history once, before any timing
    yield base
    server.should_exit = True
    thread.join(10)


def get_json(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=30) as resp:
        return json.load(resp)


@pytest.fixture(scope="module")
def browser_page(server, tmp_path_factory):
    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium_profile")), executable_path=CHROMIUM,
            headless=True, args=ARGS, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, errors
        context.close()


def open_view(page, url: str, view: str) -> None:
    page.goto(url)
    page.wait_for_selector(f'body[data-ready="{view}"]', timeout=20_000)
    assert not page.query_selector("#app .error"), page.inner_text("#app")


def column(page, key: str) -> list[str]:
    return page.eval_on_selector_all(f'#portfolio-table td[data-col="{key}"]',
                                     "cells => cells.map(c => c.textContent)")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_portfolio_renders_500_projects_and_sorts_by_risk(server, browser_page):
    page, errors = browser_page
    api = get_json(server, "/v1/dashboard/portfolio")
    assert api["count"] >= 450
    open_view(page, f"{server}/dashboard", "portfolio")
    assert page.locator("#portfolio-table tbody tr").count() == api["count"]
    # Default order: probability of a late finish, highest first, as the API's numbers say.
    by_risk = sorted(api["projects"], key=lambda p: -p["probability_late"])
    shown = [float(v.rstrip(" %")) for v in column(page, "probability_late")]
    assert shown == [round(p["probability_late"] * 100) for p in by_risk]
    page.click('#portfolio-table th[data-key="overrun_pct_p50"]')
    ids = column(page, "project_id")
    expected = sorted(api["projects"], key=lambda p: -p["overrun_pct_p50"])
    assert ids[:20] == [p["project_id"] for p in expected[:20]]
    page.click('#portfolio-table th[data-key="overrun_pct_p50"]')  # again: ascending
    assert column(page, "project_id")[0] == expected[-1]["project_id"]
    first = page.locator("#portfolio-table tbody tr").first
    rag = expected[-1]["rag"]
    assert f"rag-{rag}" in first.locator('td[data-col="rag"]').get_attribute("class")
    points = page.evaluate("OPM_VIEWS['risk-matrix'].data('projects').length")
    assert points == api["count"]
    assert page.locator("#risk-matrix svg").count() == 1
    screenshot(page, "portfolio")
    assert not errors


def test_project_view_shows_the_api_numbers(server, browser_page):
    page, errors = browser_page
    portfolio = get_json(server, "/v1/dashboard/portfolio")
    riskiest = max(portfolio["projects"], key=lambda p: p["overrun_pct_p50"])["project_id"]
    open_view(page, f"{server}/dashboard", "portfolio")
    page.click('#portfolio-table th[data-key="overrun_pct_p50"]')
    page.click(f'#portfolio-table a[href="#project/{riskiest}"]')
    page.wait_for_selector('body[data-ready="project"]', timeout=20_000)
    api = get_json(server, f"/v1/dashboard/projects/{riskiest}")
    forecasts = api["assessment"]["forecasts"]
    assert riskiest in page.inner_text("#project-title")
    p50 = forecasts["delay"]["interval"]["p50"]
    assert page.inner_text('[data-testid="duration-p50"]') == f"{p50:,.0f}"
    assert page.inner_text('[data-testid="finish-p90"]') == forecasts["delay"]["finish_date"]["p90"]
    assert page.inner_text('[data-testid="cost-p50"]') == \
        f"{forecasts['overrun']['interval']['p50']:,.0f}"
    # Waterfall: the last bar ends at the model's prediction in its output space.
    for task in ("delay", "overrun"):
        steps = page.evaluate(f"OPM_VIEWS['waterfall-{task}'].data('steps')")
        assert steps[-1]["end"] == pytest.approx(forecasts[task]["explanation"]["prediction"])
        assert steps[0]["end"] == pytest.approx(forecasts[task]["explanation"]["base_value"])
        assert page.locator(f"#waterfall-{task} svg").count() == 1
    curves = page.evaluate("OPM_VIEWS['s-curve'].data('curves')")
    assert len(curves) == 3 * len(api["s_curve"])
    last = api["s_curve"][-1]
    assert {c["series"]: c["value"] for c in curves[-3:]} == {"PV": last["pv"], "EV": last["ev"],
                                                              "AC": last["ac"]}
    spi = api["assessment"]["opm_metrics"]["metrics"]["spi"]
    assert page.inner_text('#metrics-table td[data-metric="spi"]') == f"{spi:,.3f}"
    screenshot(page, "project")
    assert not errors


def closest_boundary(sensitivity: dict) -> str:
    """The criterion whose weight is nearest a class change, as the page words it."""
    margins = {k: min(s["weight"] - s["low"] if s["below"] else float("inf"),
                      s["high"] - s["weight"] if s["above"] else float("inf"))
               for k, s in sensitivity.items()}
    k = min(margins, key=margins.get)
    if margins[k] == float("inf"):
        return "any weights"
    s = sensitivity[k]
    return f"{k} {s['low']:.2f}–{s['high']:.2f}"


def test_intake_view_ranks_candidates_and_draws_load_and_frontier(server, browser_page):
    page, errors = browser_page
    api = get_json(server, "/v1/dashboard/intake")
    open_view(page, f"{server}/dashboard#intake", "intake")
    assert page.locator("#intake-table tbody tr").count() == len(api["candidates"])
    scores = page.eval_on_selector_all('#intake-table td[data-testid="score"]',
                                       "cells => cells.map(c => c.textContent)")
    # One decimal shown; JS and Python may round a trailing 5 differently.
    assert [float(v) for v in scores] == pytest.approx([c["score"] for c in api["candidates"]],
                                                       abs=0.051)
    # "Class holds": the weight range of the criterion closest to changing the class.
    fragile = page.eval_on_selector_all('#intake-table td[data-testid="fragile"]',
                                        "cells => cells.map(c => c.textContent)")
    assert fragile == [closest_boundary(c["sensitivity"]) for c in api["candidates"]]
    assert api["scorecard"]["scorecard_version"] in page.locator(
        '[data-testid="scorecard"]').inner_text()
    cells = page.evaluate("OPM_VIEWS['resource-heatmap'].data('source_0').length")
    assert cells == len(api["portfolio"]["resource_load"])
    for chart in ("resource-heatmap", "frontier", "score-breakdown"):
        assert page.locator(f"#{chart} svg").count() == 1
    screenshot(page, "intake")
    assert not errors


def hostile_history(history):
    """`history` with its first in-flight projects renamed to HOSTILE_IDS (a copy)."""
    from serving.dashboard import data

    inflight = data.latest_inflight(history)["project_id"].head(len(HOSTILE_IDS))
    rename = dict(zip(inflight, HOSTILE_IDS, strict=True))

    def renamed(table):
        return table.assign(project_id=table["project_id"].replace(rename))

    return dataclasses.replace(history, projects=renamed(history.projects),
                               snapshots=renamed(history.snapshots),
                               resource_usage=renamed(history.resource_usage))


def test_report_file_renders_offline_with_hostile_ids(server, browser_page, small_registry,
                                                      tmp_path):
    """The self-contained report opens from file:// and shows the same portfolio; project ids
    that would end, comment out or inject a script are shown as text and never run."""
    from serving.dashboard import report

    page, errors = browser_page
    settings, history = small_registry
    store = ModelStore(settings)
    assert store.reload(wait=True)
    payload = report.report_data(store.require(), hostile_history(history))
    out = tmp_path / "report.html"
    out.write_text(report.render_html(payload))
    open_view(page, out.as_uri(), "portfolio")
    assert page.locator("#portfolio-table tbody tr").count() == payload["portfolio"]["count"]
    assert set(HOSTILE_IDS) <= set(column(page, "project_id"))
    for pid in HOSTILE_IDS:  # each project view opens and titles the id as text
        page.evaluate("id => { location.hash = 'project/' + encodeURIComponent(id); }", pid)
        page.wait_for_function(
            "id => document.body.dataset.ready === 'project'"
            " && document.querySelector('#project-title')?.textContent.includes(id)",
            arg=pid, timeout=20_000)
        assert page.locator("#waterfall-delay svg").count() == 1
    assert page.evaluate("window.pwned") is None
    assert not page.query_selector("#app b, #app img"), "an id was parsed as HTML"
    assert not errors


def test_schedule_view_draws_the_s_curve_tornado_and_critical_path(server, browser_page,
                                                                    tmp_path):
    """An uploaded XER through the page: the numbers shown are the API's for the same file."""
    from opm_ml.schedule.files import write_schedule
    from opm_ml.synthetic.schedules import generate_schedule

    page, errors = browser_page
    schedule, _ = generate_schedule(40, seed=3)
    plan = write_schedule(schedule, tmp_path / "plan.xer")
    request = urllib.request.Request(
        f"{server}/v1/schedules/risk?filename=plan.xer&iterations=1000",
        data=plan.read_bytes(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as resp:
        api = json.load(resp)
    open_view(page, f"{server}/dashboard#schedule", "schedule")
    page.fill("#schedule-iterations", "1000")
    page.set_input_files("#schedule-upload", str(plan))
    page.wait_for_selector('body[data-ready="schedule-result"]', timeout=60_000)
    for key in ("deterministic", "p50", "p80"):
        shown = page.inner_text(f'[data-testid="finish-{key}"]')
        assert shown == api["finish"][key].replace("T", " ")
    assert api["uncertainty"]["description"] in page.inner_text('[data-testid="uncertainty"]')
    assert page.evaluate("OPM_VIEWS['schedule-s-curve'].data('s_curve').length") == 101
    assert page.evaluate("OPM_VIEWS['schedule-tornado'].data('tornado').length") == \
        len(api["tornado"])
    assert page.locator("#critical-path-table tbody tr").count() == len(api["critical_path"])
    for chart in ("schedule-s-curve", "schedule-tornado", "schedule-gantt"):
        assert page.locator(f"#{chart} svg").count() == 1
    screenshot(page, "schedule")
    # A file that cannot be used: the API's 422 message, in the page, as text.
    cut = tmp_path / "cut.xer"
    cut.write_bytes(plan.read_bytes()[:2000])
    page.set_input_files("#schedule-upload", str(cut))
    page.wait_for_selector('body[data-ready="schedule-error"]', timeout=30_000)
    assert "cut.xer: the file is truncated" in page.inner_text("#schedule-status")
    assert not errors
