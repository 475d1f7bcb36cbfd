"""The dashboard's JSON endpoints and the HTML report, against the session's small registry.

Expectations are computed independently: in-flight projects and latest snapshots with pandas,
forecasts through POST /v1/projects/assess, EVM indices as EV/PV and EV/AC.
"""

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from test_intake_scoring import api_candidates

from opm_ml.contract import INTAKE_COLUMNS
from serving.app import create_app
from serving.dashboard import data, report
from serving.model_store import ModelStore


@pytest.fixture(scope="module")
def dashboard(small_registry):
    settings, history = small_registry
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    app = create_app(settings, store)
    app.state.dashboard_dir = settings.data_dir
    return TestClient(app), store, history


def inflight_frame(history) -> pd.DataFrame:
    """Unfinished projects with their latest snapshot, computed here without serving code."""
    projects = history.projects[history.projects["actual_finish_date"].isna()]
    snaps = history.snapshots.sort_values("status_date").drop_duplicates("project_id", keep="last")
    return projects[["project_id", *INTAKE_COLUMNS]].merge(snaps, on="project_id")


def assess_body(row: dict) -> dict:
    body = {c: row[c] for c in ("project_id", *INTAKE_COLUMNS)}
    body["start_date"] = pd.Timestamp(body["start_date"]).date().isoformat()
    body["status"] = {"status_date": pd.Timestamp(row["status_date"]).date().isoformat(),
                      **{c: row[c] for c in ("pv", "ev", "ac", "percent_complete")}}
    return json.loads(pd.Series(body).to_json())  # numpy scalars -> JSON


def test_portfolio_lists_every_inflight_project_with_assess_numbers(dashboard):
    client, _, history = dashboard
    expected = inflight_frame(history)
    got = client.get("/v1/dashboard/portfolio")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["count"] == len(expected) > 20
    rows = pd.DataFrame(body["projects"]).set_index("project_id").loc[expected["project_id"]]
    np.testing.assert_allclose(rows["spi"], expected["ev"] / expected["pv"], rtol=1e-9)
    np.testing.assert_allclose(rows["cpi"], expected["ev"] / expected["ac"], rtol=1e-9)
    sample = expected.head(5).to_dict("records")
    assessed = client.post("/v1/projects/assess", json=[assess_body(r) for r in sample]).json()
    for item in assessed["items"]:
        row = rows.loc[item["project_id"]]
        delay, overrun = item["forecasts"]["delay"], item["forecasts"]["overrun"]
        assert row["probability_late"] == pytest.approx(delay["probability_late"])
        assert row["overrun_pct_p50"] == pytest.approx(overrun["overrun_pct"]["p50"])
        bac = expected.set_index("project_id").loc[item["project_id"], "budget_at_completion"]
        assert row["overrun_cost_p50"] == pytest.approx(overrun["prediction"] - bac)


def test_rag_colours_follow_the_documented_thresholds(dashboard):
    client, _, _ = dashboard
    body = client.get("/v1/dashboard/portfolio").json()
    t = body["thresholds"]
    for p in body["projects"]:
        prob = p["probability_late"]
        want = ("red" if prob >= t["probability_late"]["red"] else
                "amber" if prob >= t["probability_late"]["amber"] else "green")
        assert p["rag_probability_late"] == want
        if p["cpi"] is not None:
            cpi = p["cpi"]
            assert p["rag_cpi"] == ("red" if cpi <= t["cpi"]["red"] else
                                    "amber" if cpi <= t["cpi"]["amber"] else "green")
        order = ["green", "amber", "red"]
        colours = [p[k] for k in ("rag_probability_late", "rag_overrun_pct_p50", "rag_spi",
                                  "rag_cpi") if p[k] != "grey"]
        assert p["rag"] == max(colours, key=order.index)


def test_project_view_has_the_snapshots_and_the_assessment(dashboard):
    client, _, history = dashboard
    row = inflight_frame(history).iloc[0].to_dict()
    pid = row["project_id"]
    got = client.get(f"/v1/dashboard/projects/{pid}").json()
    snaps = history.snapshots[history.snapshots["project_id"] == pid].sort_values("status_date")
    assert [s["date"] for s in got["s_curve"]] == snaps["status_date"].dt.strftime(
        "%Y-%m-%d").tolist()
    np.testing.assert_allclose([s["ac"] for s in got["s_curve"]], snaps["ac"])
    direct = client.post("/v1/projects/assess?top_k=10", json=assess_body(row)).json()
    for task in ("delay", "overrun", "resource-demand"):
        assert got["assessment"]["forecasts"][task]["interval"] == pytest.approx(
            direct["forecasts"][task]["interval"])
    assert got["assessment"]["opm_metrics"] == direct["opm_metrics"]
    planned = pd.Timestamp(row["start_date"]) + pd.Timedelta(days=row["planned_duration_days"])
    assert got["baseline"]["planned_finish_date"] == planned.date().isoformat()
    assert client.get("/v1/dashboard/projects/NOPE").status_code == 404


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_uploaded_table_gives_the_same_portfolio(dashboard, fmt):
    client, _, history = dashboard
    frame = inflight_frame(history).head(12)
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False) if fmt == "csv" else frame.to_parquet(buffer)
    got = client.post(f"/v1/dashboard/portfolio?filename=p.{fmt}", content=buffer.getvalue())
    assert got.status_code == 200, got.text
    full = {p["project_id"]: p for p in client.get("/v1/dashboard/portfolio").json()["projects"]}
    for p in got.json()["projects"]:
        assert p == pytest.approx(full[p["project_id"]])


def test_a_bad_upload_names_the_row_and_field(dashboard):
    client, _, history = dashboard
    frame = inflight_frame(history).head(3)
    frame.loc[1, "budget_at_completion"] = -5
    got = client.post("/v1/dashboard/portfolio?filename=p.csv",
                      content=frame.to_csv(index=False).encode())
    assert got.status_code == 422
    assert re.search(r"row 2 .*budget_at_completion", got.json()["message"])
    missing = frame.drop(columns=["complexity"]).to_csv(index=False).encode()
    got = client.post("/v1/dashboard/portfolio?filename=p.csv", content=missing)
    assert got.status_code == 422 and "complexity" in got.json()["message"]
    # With allow_rejects the valid rows are scored and the rejected one listed, not dropped.
    kept = client.post("/v1/dashboard/portfolio?filename=p.csv&allow_rejects=true",
                       content=frame.to_csv(index=False).encode())
    assert kept.status_code == 200, kept.text
    body = kept.json()
    assert body["count"] == 2 and body["rejected_rows"] == 1
    assert [(r["row"], r["column"]) for r in body["rejections"]] == [
        (2, "budget_at_completion")]


def test_intake_view_ranks_as_the_intake_endpoint(dashboard):
    client, _, _ = dashboard
    got = client.get("/v1/dashboard/intake").json()
    candidates = pd.read_csv(data.CANDIDATES)
    assert len(got["candidates"]) == len(candidates)
    assert [c["rank"] for c in got["candidates"]] == list(range(1, len(candidates) + 1))
    load = pd.DataFrame(got["portfolio"]["resource_load"])
    np.testing.assert_allclose(load["utilisation"], load["load_hours"] / load["capacity_hours"])
    assert set(got["portfolio"]["selected"]) | set(got["portfolio"]["rejected"]) == set(
        candidates["project_id"])
    # The same scores, classes and scorecard as POST /v1/intake/score for those candidates.
    scored = client.post("/v1/intake/score", json=api_candidates()).json()
    assert got["scorecard"]["scorecard_digest"] == scored["scorecard_digest"]
    own = ("project_id", "moscow", "score", "points", "sensitivity")
    assert [{k: c[k] for k in own} for c in got["candidates"]] == [
        {k: c[k] for k in own} for c in scored["items"]]
    decisions = {d["project_id"]: d["score"] for d in got["portfolio"]["decisions"]}
    assert decisions == {c["project_id"]: c["score"] for c in scored["items"]}


def test_the_page_and_its_vendored_scripts_are_served(dashboard):
    client, _, _ = dashboard
    page = client.get("/dashboard")
    assert page.status_code == 200 and "opm-ml planner dashboard" in page.text
    srcs = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert not [s for s in srcs if s.startswith(("http", "//"))]  # no CDN
    local = [s for s in srcs if s.startswith("/")]
    assert len(local) == 6  # CSS, three Vega scripts, the monitoring view, our module
    for src in local:
        assert client.get(src).status_code == 200, src


def test_report_is_one_self_contained_file(dashboard, tmp_path):
    _, store, history = dashboard
    payload = report.report_data(store.require(), history)
    html = report.render_html(payload)
    assert not re.search(r'<script[^>]*\bsrc=|<link[^>]*href="http', html)
    embedded = json.loads(re.search(r"window\.OPM_DATA = (\{.*?\});</script>", html).group(1))
    assert embedded["portfolio"]["count"] == len(inflight_frame(history))
    assert set(embedded["projects"]) == {p["project_id"]
                                         for p in embedded["portfolio"]["projects"]}
    flat = tmp_path / "projects.csv"
    inflight_frame(history).head(4).to_csv(flat, index=False)
    one_snapshot = report.read_projects(flat, store.require())
    assert report.report_data(store.require(), one_snapshot)["portfolio"]["count"] == 4


def test_report_json_cannot_end_or_comment_out_its_script():
    payload = {"projects": {"</script><!--<script>": {"name": "a&b\u2028c\u2029 -->"}},
               "ids": ["<img src=x onerror=alert(1)>", "plain"], "n": [1, 2.5, None]}
    text = report.script_json(payload)
    assert json.loads(text) == payload  # the same data, every character kept
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert "\\u003c/script\\u003e\\u003c!--" in text
    with pytest.raises(ValueError):  # NaN is not JSON: the page's parser would fail on it
        report.script_json({"x": float("nan")})
    html = report.render_html(payload)
    data_script = html.split("window.OPM_DATA = ", 1)[1].split("</script>", 1)[0]
    assert data_script == text + ";"  # the data ends at its own closing tag


def test_rejected_history_rows_are_logged_not_dropped_silently(tmp_path, caplog):
    import shutil

    from serving.dashboard import SAMPLE_DIR

    for name in ("projects.csv", "snapshots.csv"):
        shutil.copy(SAMPLE_DIR / name, tmp_path / name)
    projects = pd.read_csv(tmp_path / "projects.csv")
    projects.loc[0, "budget_at_completion"] = -1
    projects.to_csv(tmp_path / "projects.csv", index=False)
    with caplog.at_level("WARNING", logger="serving.dashboard.data"):
        history = data.default_history(tmp_path)
    assert len(history.projects) == len(projects) - 1
    assert "row(s) rejected by the contract" in caplog.text
    assert "budget_at_completion" in caplog.text
