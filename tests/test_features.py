"""The single feature function: values, routing, stable categories and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opm_ml.contract import INTAKE_COLUMNS, PROJECT_TYPES
from opm_ml.features import (
    build_features,
    contract_manifest,
    feature_arrays,
    feature_matrix,
    has_status,
    status_metrics,
)
from opm_ml.forecasting.inputs import ProjectInputs, model_columns
from opm_ml.synthetic import generate_history
from training.estimators import model_features

MANIFEST = contract_manifest()
FEATURE_SETS = MANIFEST.stages
STATUS_FEATURES = FEATURE_SETS["inflight"][len(FEATURE_SETS["intake"]):]
CATEGORY_CODES = MANIFEST.codes


@pytest.fixture(scope="module")
def projects() -> pd.DataFrame:
    return generate_history(60, seed=3).projects


def _with_status(projects: pd.DataFrame) -> pd.DataFrame:
    """Half-way status: PV 50 % of BAC, EV 40 %, AC 50 %, status at 60 % of planned duration."""
    bac = projects["budget_at_completion"]
    days = np.round(projects["planned_duration_days"] * 0.6).astype(int)
    return projects.assign(
        pv=bac * 0.5, ev=bac * 0.4, ac=bac * 0.5, percent_complete=45.0,
        status_date=projects["start_date"] + pd.to_timedelta(days, unit="D"),
    )


def test_intake_features_are_computed_from_the_contract_columns(projects):
    X = build_features(projects, "intake")
    assert list(X.columns) == list(FEATURE_SETS["intake"])
    assert len(X) == len(projects)
    effort = projects["planned_effort_hours"].to_numpy()
    days = projects["planned_duration_days"].to_numpy()
    team = projects["planned_team_size"].to_numpy()
    np.testing.assert_allclose(X["hours_per_day"], effort / days)
    np.testing.assert_allclose(X["team_utilisation"], effort / (team * days * 40 / 7))
    np.testing.assert_allclose(X["log_budget"], np.log(projects["budget_at_completion"]))
    np.testing.assert_allclose(X["risk_exposure"],
                               projects["num_identified_risks"] * projects["mean_risk_severity"])
    assert (X["start_month"] == projects["start_date"].dt.month).all()


def test_status_features_match_the_evm_definitions(projects):
    rows = _with_status(projects)
    X = build_features(rows, "inflight")
    assert list(X.columns) == list(FEATURE_SETS["inflight"])
    np.testing.assert_allclose(X["spi"], 0.4 / 0.5)
    np.testing.assert_allclose(X["cpi"], 0.4 / 0.5)
    np.testing.assert_allclose(X["eac_cpi_ratio"], 1 / 0.8)  # EAC = BAC / CPI, over BAC
    np.testing.assert_allclose(X["ev_fraction"], 0.4)
    np.testing.assert_allclose(X["progress_gap"], 0.45 - 0.4)
    elapsed = (rows["status_date"] - rows["start_date"]).dt.days / rows["planned_duration_days"]
    np.testing.assert_allclose(X["elapsed_fraction"], elapsed)
    # Earned schedule is behind the calendar when EV lags PV: SPI(t) < 1 and IEAC(t) > plan.
    assert (X["spi_t"] < 1).all() and (X["ieac_t_ratio"] > 1).all()
    np.testing.assert_allclose(X["ieac_t_ratio"], 1 / X["spi_t"])


def test_category_codes_do_not_depend_on_the_batch(projects):
    one_type = projects[projects["project_type"] == projects["project_type"].iloc[0]]
    codes_all = build_features(projects, "intake")["project_type"].cat.categories
    codes_one = build_features(one_type, "intake")["project_type"].cat.categories
    assert list(codes_all) == list(codes_one) == list(PROJECT_TYPES)


def test_unknown_category_is_an_error_naming_the_column(projects):
    bad = projects.assign(region=projects["region"].where(projects.index > 0, "atlantis"))
    with pytest.raises(ValueError, match=r"region has unknown value\(s\) \['atlantis'\]"):
        build_features(bad, "intake")


def test_missing_intake_column_is_an_error(projects):
    with pytest.raises(ValueError, match="missing intake column.*complexity"):
        build_features(projects.drop(columns=["complexity"]), "intake")


def test_routing_by_status_and_partial_status_is_an_error(projects):
    rows = _with_status(projects)
    mixed = pd.concat([projects.head(3), rows.head(2)], ignore_index=True)
    assert has_status(mixed).tolist() == [False, False, False, True, True]
    assert not has_status(projects).any()
    partial = rows.head(3).assign(ac=[1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="partial status snapshot.*row 1, missing ac"):
        has_status(partial)
    with pytest.raises(ValueError, match="in-flight features need"):
        build_features(mixed, "inflight")


def test_model_features_exclude_spec_features_and_reject_unknown_names(projects):
    X = build_features(_with_status(projects), "inflight")[
        model_features(MANIFEST, "inflight", exclude=("start_month", "tcpi_bac"))]
    assert "start_month" not in X.columns and "tcpi_bac" not in X.columns
    assert len(X.columns) == len(FEATURE_SETS["inflight"]) - 2
    assert set(STATUS_FEATURES) - {"tcpi_bac"} <= set(X.columns)
    assert "spi" not in model_features(MANIFEST, "intake", exclude=("spi",))
    with pytest.raises(ValueError, match="cannot exclude unknown feature"):
        model_features(MANIFEST, "intake", exclude=("warp_speed",))


def test_model_input_gives_the_same_features(projects):
    rows = _with_status(projects)
    served = model_columns(rows)
    assert list(served.columns) == [*INTAKE_COLUMNS, "status_date", "pv", "ev", "ac",
                                    "percent_complete"]
    # ISO text in, same features out: serving and training cannot drift apart.
    text = served.assign(start_date=served["start_date"].dt.strftime("%Y-%m-%d"),
                         status_date=served["status_date"].dt.strftime("%Y-%m-%d"))
    pd.testing.assert_frame_equal(build_features(text, "inflight"),
                                  build_features(rows.reset_index(drop=True), "inflight"))
    inputs = ProjectInputs.from_frame(text, MANIFEST)
    frame = build_features(rows.reset_index(drop=True), "inflight")
    np.testing.assert_array_equal(feature_matrix(inputs.features("inflight"), frame.columns),
                                  feature_matrix(frame, frame.columns))


def _columns(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Rows as the column arrays serving hands to the core (category labels, datetime64[D])."""
    numbers = [c for c in INTAKE_COLUMNS if c not in CATEGORY_CODES and c != "start_date"]
    columns = {c: rows[c].to_numpy(float) for c in (*numbers, "pv", "ev", "ac", "percent_complete")}
    columns.update({c: rows[c].to_numpy(dtype=object) for c in CATEGORY_CODES})
    columns.update({c: rows[c].to_numpy().astype("datetime64[D]")
                    for c in ("start_date", "status_date")})
    return columns


def test_the_core_on_column_arrays_gives_the_frame_features(projects):
    rows = _with_status(projects).assign(percent_complete=[np.nan, *[45.0] * 59])
    for stage in FEATURE_SETS:
        frame = build_features(rows, stage)
        arrays = feature_arrays(_columns(rows), stage)
        assert list(arrays) == list(FEATURE_SETS[stage])
        np.testing.assert_array_equal(feature_matrix(arrays, frame.columns),
                                      feature_matrix(frame, frame.columns))
    codes = feature_matrix(build_features(rows, "intake"), ["region"])[:, 0]
    assert [CATEGORY_CODES["region"][r] for r in rows["region"]] == codes.tolist()


def test_one_snapshot_gets_the_metrics_of_the_batch_path(projects):
    columns = _columns(_with_status(projects).assign(ac=[0.0, *[1e5] * 59]))
    batch = status_metrics(columns)
    for i in (0, 1):
        one = status_metrics({name: values[i:i + 1] for name, values in columns.items()})
        for name, values in one.values.items():
            np.testing.assert_array_equal(values, batch.values[name][i:i + 1], err_msg=name)
        assert one.forecast_finish[0] == batch.forecast_finish[i]
        assert one.reasons() == batch.reasons()[i:i + 1]
    assert np.isnan(batch.values["cpi"][0]) and "ac is 0" in batch.reasons()[0]["cpi"]



def test_absurd_early_indices_are_bounded_not_passed_on():
    from opm_ml.features import INDEX_RATIO_BOUNDS, build_features
    from opm_ml.synthetic import generate_history

    history = generate_history(50, seed=3)
    row = history.projects[history.projects["actual_finish_date"].notna()].iloc[[0]].copy()
    start, days = row["start_date"].iloc[0], int(row["planned_duration_days"].iloc[0])
    bac = float(row["budget_at_completion"].iloc[0])
    # EV of one currency unit after half the plan: EAC = BAC / CPI is ~10^6 x BAC.
    row = row.assign(status_date=start + pd.Timedelta(days=days // 2), pv=bac / 2, ev=1.0,
                     ac=bac / 3, percent_complete=0.0)
    features = build_features(row, "inflight")
    for name in ("eac_cpi_ratio", "eac_cpi_spi_ratio", "ieac_t_ratio"):
        assert features[name].iloc[0] == INDEX_RATIO_BOUNDS[1]
