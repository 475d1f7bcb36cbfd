"""Answer formats of the forecast routes on the session's real models: JSON, NDJSON, Arrow IPC,
Parquet, compact JSON, and the single-project answer all carry the same numbers (to 1e-9);
what the serializers write validates against the documented response models; a stream is
scored lazily chunk by chunk; large batches run in the lane with a bounded share of threads.
"""

import asyncio
import io
import math

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opm_ml.forecasting import FAMILIES
from opm_ml.forecasting.estimators import prediction_threads
from serving import batches, formats
from serving.schemas.forecasts import (
    AssessmentBatchResult,
    AssessmentResult,
    PredictionBatchResult,
    PredictionResult,
)
from test_serving_models import assert_close, client, request_rows, trained  # noqa: F401

ARROW, PARQUET, NDJSON = formats.ARROW, formats.PARQUET, formats.NDJSON
BY_SLUG = {f.slug: f for f in FAMILIES.values()}


@pytest.fixture(scope="module")
def bodies(small_registry):
    _, history = small_registry
    return request_rows(history, 30, seed=5)


@pytest.fixture(autouse=True)
def small_lane(monkeypatch):
    """Chunks of 7 through the lane from 10 projects on, so 30 projects take 5 chunks."""
    monkeypatch.setattr(batches, "LANE_ROWS", 10)
    monkeypatch.setattr(batches, "CHUNK_ROWS", 7)


def post(client, path, body, accept=None, **params):
    headers = {"accept": accept} if accept else {}
    response = client.post(path, json=body, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response


def table(response) -> pd.DataFrame:
    """The flat table of an Arrow or Parquet answer (timestamps in ns: Parquet stores ms)."""
    if response.headers["content-type"].startswith(ARROW):
        frame = pa.ipc.open_stream(response.content).read_all().to_pandas()
    else:
        frame = pq.read_table(io.BytesIO(response.content)).to_pandas()
    dates = frame.select_dtypes("datetime").columns
    return frame.astype({c: "datetime64[ns]" for c in dates})


def same_forecast(item: dict, row: pd.Series, slug: str, prefix: str) -> None:
    """One project's JSON forecast of a family against its row of the flat table."""
    family = BY_SLUG[slug]
    for level, value in item["interval"].items():
        assert math.isclose(value, row[f"{prefix}{family.quantity}_{level}"], rel_tol=1e-9)
    if "probability_late" in item:
        assert math.isclose(item["probability_late"], row[f"{prefix}probability_late"],
                            rel_tol=1e-9)
    explanation = item["explanation"]
    assert math.isclose(explanation["base_value"], row[f"{prefix}shap_base"], rel_tol=1e-9)
    shown = {c["feature"]: c["contribution"] for c in explanation["contributions"]}
    columns = row.filter(like=f"{prefix}shap__").dropna()
    assert set(columns.index) == {f"{prefix}shap__{f}" for f in shown}
    for feature, value in shown.items():
        assert math.isclose(value, row[f"{prefix}shap__{feature}"], rel_tol=1e-9, abs_tol=1e-12)
    other = row.get(f"{prefix}shap_other", 0.0)
    assert math.isclose(explanation["other_features_contribution"], other, abs_tol=1e-9)


@pytest.mark.parametrize("top_k", [None, 3])
def test_assess_answers_the_same_numbers_in_every_format(client, bodies, top_k):
    params = {} if top_k is None else {"top_k": top_k}
    answer = post(client, "/v1/projects/assess", bodies, **params).json()
    lines = post(client, "/v1/projects/assess", bodies, NDJSON, **params).text.splitlines()
    assert [orjson.loads(line) for line in lines] == answer["items"]
    tables = [table(post(client, "/v1/projects/assess", bodies, media, **params))
              for media in (ARROW, PARQUET)]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    frame = tables[0]
    assert frame["project_id"].tolist() == [b["project_id"] for b in bodies]
    for (i, item), body in zip(enumerate(answer["items"]), bodies):
        row = frame.iloc[i]
        for slug, forecast in item["forecasts"].items():
            same_forecast(forecast, row, slug, f"{BY_SLUG[slug].name}__")
        if item["opm_metrics"] is None:
            assert pd.isna(row["evm__spi"])
        else:
            for metric, value in item["opm_metrics"]["metrics"].items():
                if isinstance(value, float):
                    assert math.isclose(value, row[f"evm__{metric}"], rel_tol=1e-9)
        single = post(client, "/v1/projects/assess", body, **params).json()
        assert single.pop("models") == answer["models"]
        assert_close(single, item)


@pytest.mark.parametrize("task", ["delay", "resource-demand"])
def test_predictions_answer_the_same_numbers_in_every_format(client, bodies, task):
    path = f"/v1/predictions/{task}"
    answer = post(client, path, bodies, top_k=4).json()
    lines = post(client, path, bodies, NDJSON, top_k=4).text.splitlines()
    assert [orjson.loads(line) for line in lines] == answer["items"]
    for media in (ARROW, PARQUET):
        frame = table(post(client, path, bodies, media, top_k=4))
        for i, item in enumerate(answer["items"]):
            same_forecast(item, frame.iloc[i], task, "")
    single = post(client, path, bodies[1], top_k=4).json()
    assert single.pop("model") == answer["model"]
    assert_close(single, answer["items"][1])


@pytest.mark.parametrize("compact", [False, True])
def test_answers_validate_against_the_documented_response_models(client, bodies, compact):
    """Every field the serializers write is declared, and every declared field they need is
    there: validating and dumping again gives back exactly what was sent."""
    cases = [("/v1/projects/assess", bodies, AssessmentBatchResult),
             ("/v1/projects/assess", bodies[1], AssessmentResult),
             ("/v1/projects/assess", bodies[0], AssessmentResult),
             ("/v1/predictions/delay", bodies, PredictionBatchResult),
             ("/v1/predictions/resource-demand", bodies[1], PredictionResult)]
    for path, body, model in cases:
        sent = post(client, path, body, top_k=3, compact=str(compact).lower()).json()
        again = model.model_validate(sent).model_dump(mode="json", exclude_unset=True)
        assert again == sent, (path, model.__name__)


def test_compact_answers_lose_nothing_and_are_smaller(client, bodies):
    full = post(client, "/v1/projects/assess", bodies, top_k=3)
    compact = post(client, "/v1/projects/assess", bodies, top_k=3, compact="true")
    assert len(compact.content) < 0.9 * len(full.content)  # the rest is numbers
    families = compact.json()["families"]
    for item, expected in zip(compact.json()["items"], full.json()["items"]):
        assert expand(item, families) == expected


def expand(item: dict, families: dict) -> dict:
    """A compact assessment item with what compact left out put back, in the full order."""
    forecasts = {}
    for slug, forecast in item["forecasts"].items():
        info = families[slug]
        explanation = {"output_space": info["output_space"], **forecast["explanation"]}
        late = {"late_threshold": info["late_threshold"]} if "late_threshold" in info else {}
        head = {"stage": forecast["stage"], "quantity": info["quantity"], "unit": info["unit"],
                "prediction": forecast["interval"]["p50"]}
        rest = {k: v for k, v in forecast.items() if k not in ("stage", "explanation")}
        extras = dict(rest)
        if late:  # the constant sits after probability_late, as the family's outputs list it
            extras = {}
            for key, value in rest.items():
                extras[key] = value
                if key == "probability_late":
                    extras.update(late)
        forecasts[slug] = {**head, **extras, "explanation": explanation}
    out = {"project_id": item["project_id"], "forecasts": forecasts, "opm_metrics": None,
           "evm_comparison": None, "evm_forecast_finish_date": None}
    if "opm_metrics" in item:
        metrics = item["opm_metrics"]
        out["opm_metrics"] = {"project_id": item["project_id"], **metrics}
        out["evm_forecast_finish_date"] = metrics["metrics"]["forecast_finish_date"]
        out["evm_comparison"] = {}
        for quantity, comparison in item["evm_comparison"].items():
            slug = next(s for s, i in families.items() if i["quantity"] == quantity)
            interval = forecasts[slug]["interval"]
            out["evm_comparison"][quantity] = {
                "planned": comparison["planned"], "model_p50": interval["p50"],
                "model_interval": interval, "evm": comparison["evm"]}
    if "warnings" in item:
        out["warnings"] = item["warnings"]
    return out


def test_a_stream_scores_chunk_by_chunk_as_it_is_read(small_registry, bodies):
    """The NDJSON body is lazy: its first lines exist when one chunk of five is scored."""
    from opm_ml.features import contract_manifest
    from opm_ml.forecasting.inputs import ProjectInputs
    from serving.schemas.projects import project_request

    manifest = contract_manifest()
    request = project_request(manifest)
    inputs = ProjectInputs.from_requests([request.model_validate(b) for b in bodies], manifest)
    scored = []

    def score(chunk):
        scored.append(chunk.n)
        return [{"project_id": pid} for pid in chunk.ids]

    async def read(stream) -> None:
        first = await anext(stream)
        assert scored == [7] and first.count(b"\n") == 7
        rest = b"".join([part async for part in stream])
        assert scored == [7, 7, 7, 7, 2] and rest.count(b"\n") == 23

    answer = formats.Answer({}, False, lambda items: items, pd.DataFrame)
    response = answer.respond(NDJSON, batches.BatchLane(2).run(inputs, score))
    asyncio.run(read(response.body_iterator))


def test_batches_leave_a_core_to_waiting_single_requests(small_registry, bodies):
    """A chunk predicts on the lane's share: every core, one fewer while a small request is
    being scored; small requests themselves predict on one thread."""
    from opm_ml.features import contract_manifest
    from opm_ml.forecasting.inputs import ProjectInputs
    from serving.schemas.projects import project_request

    manifest = contract_manifest()
    request = project_request(manifest)
    items = [request.model_validate(b) for b in bodies]
    inputs = ProjectInputs.from_requests(items, manifest)
    lane = batches.BatchLane(4)
    seen = []
    list(lane.run(inputs, lambda chunk: seen.append(prediction_threads(10_000))))
    with lane.small():
        list(lane.run(inputs, lambda chunk: seen.append(prediction_threads(10_000))))
    list(lane.run(inputs.take(np.arange(3)), lambda chunk: seen.append(prediction_threads(3))))
    assert seen == [4] * 5 + [3] * 5 + [1]
    assert lane.interactive == 0


def test_one_project_is_scored_on_the_event_loop_a_list_in_the_pool():
    """`scored` runs a single project's handler on the loop's own thread (no pool hop) and a
    list's on a worker thread, so a large batch never holds the loop; both return its value."""
    import threading

    async def thread_of(body):
        loop_thread = threading.get_ident()
        ran_on = await batches.scored(lambda _body: threading.get_ident(), body)
        return ran_on == loop_thread

    assert asyncio.run(thread_of({"project_id": "P1"})) is True
    assert asyncio.run(thread_of([{"project_id": "P1"}])) is False


@pytest.mark.parametrize("accept, media", [
    (None, "application/json"), ("*/*", "application/json"),
    ("application/x-ndjson", NDJSON), ("text/html;q=0.9, application/vnd.apache.parquet", PARQUET),
    ("application/json;q=0.5, application/vnd.apache.arrow.stream", ARROW),
])
def test_accept_chooses_the_format(accept, media):
    assert formats.negotiate(accept) == media


def test_an_unwritable_accept_is_406(client, bodies):
    response = client.post("/v1/projects/assess", json=bodies[:2],
                           headers={"accept": "text/html"})
    assert response.status_code == 406
    assert "application/vnd.apache.parquet" in response.json()["message"]
