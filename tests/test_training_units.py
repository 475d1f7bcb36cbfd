"""Fast unit tests of training pieces: conformal offsets, role profiles, spec parsing."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from opm_ml.contract import ROLES, USAGE_HOUR_COLUMNS
from opm_ml.forecasting import FAMILIES
from opm_ml.forecasting.estimators import conformal_offsets
from opm_ml.forecasting.role_profile import RoleProfile
from training.datasets import time_split
from training.evaluation import expected_calibration_error, pinball
from training.specs import SPEC_DIR, load_spec, parse_spec

SPEC_FILES = {name: f.spec_file for name, f in FAMILIES.items()}


def test_conformal_offsets_restore_coverage_of_too_narrow_quantiles():
    rng = np.random.default_rng(0)
    levels = (0.1, 0.5, 0.9)

    def sample(n):
        x = rng.uniform(0, 10, n)
        y = x + rng.normal(0, 1, n)
        raw = np.column_stack([x - 0.3, x + 0.4, x + 0.3])  # too narrow and a biased median
        return y, raw

    y_cal, raw_cal = sample(4000)
    offsets = conformal_offsets(raw_cal, y_cal, levels)
    y_new, raw_new = sample(20000)
    q = raw_new + offsets
    assert np.mean(y_new <= q[:, 0]) == pytest.approx(0.1, abs=0.01)
    assert np.mean(y_new <= q[:, 1]) == pytest.approx(0.5, abs=0.015)
    assert np.mean(y_new <= q[:, 2]) == pytest.approx(0.9, abs=0.01)
    assert np.mean((y_new >= q[:, 0]) & (y_new <= q[:, 2])) == pytest.approx(0.8, abs=0.015)
    # Gaussian noise: the calibrated P10/P90 sit near -/+1.2816 around x.
    np.testing.assert_allclose(offsets, [-1.2816 + 0.3, -0.4, 1.2816 - 0.3], atol=0.08)


def test_pinball_and_ece_match_hand_computed_values():
    actual = np.exp(np.array([0.0, 1.0]))
    q = np.exp(np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]))
    # diffs: -0.5 and +0.5; losses 0.9*0.5/0.5*0.5/0.1*0.5 for -0.5 and 0.1/0.5/0.9 * 0.5 for +0.5
    expected = np.mean([0.45, 0.25, 0.05, 0.05, 0.25, 0.45])
    assert pinball(actual, q) == pytest.approx(expected)
    y = np.array([0, 1, 1, 1])
    p = np.array([0.05, 0.95, 0.55, 0.55])  # bins: 0 -> gap .05, 9 -> .05, 5 -> |1.1-2| = .9
    assert expected_calibration_error(y, p) == pytest.approx((0.05 + 0.05 + 0.9) / 4)


def _usage(project_ids, months: int, hours_by_month: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for pid in project_ids:
        for m in range(months):
            rows.append({"project_id": pid, "month_index": m,
                         **{f"hours_{r}": float(hours_by_month.get(r, np.zeros(months))[m])
                            for r in ROLES}})
    return pd.DataFrame(rows, columns=["project_id", "month_index", *USAGE_HOUR_COLUMNS])


def test_role_profile_learns_the_phase_shape_and_spreads_hours_exactly():
    front = np.array([10.0] * 5 + [0.0] * 5)  # management works the first half only
    flat = np.full(10, 3.0)
    usage = _usage(["a", "b"], 10, {"management": front, "build": flat})
    projects = pd.DataFrame({"project_id": ["a", "b"], "project_type": ["rnd", "rnd"]})
    profile = RoleProfile(bins=10).fit(usage, projects, ROLES, "project_type")
    shape = profile.shapes_["rnd"]
    np.testing.assert_allclose(shape[ROLES.index("management")], [0.2] * 5 + [0] * 5)
    np.testing.assert_allclose(shape[ROLES.index("build")], np.full(10, 0.1))
    # A role never booked gets a flat shape; a type never seen gets the all-types shape.
    np.testing.assert_allclose(shape[ROLES.index("testing")], np.full(10, 0.1))
    np.testing.assert_allclose(profile.monthly_fractions("construction", 10), shape)
    # Five planned months: management's hours land in the first 2.5 months.
    fractions = profile.monthly_fractions("rnd", 5)
    np.testing.assert_allclose(fractions[ROLES.index("management")], [0.4, 0.4, 0.2, 0, 0])
    role_hours = np.arange(1, len(ROLES) + 1, dtype=float)[None, :] * 100
    (out,) = profile.monthly_hours(["rnd"], [5 * 365.25 / 12 - 3], role_hours)
    assert out["months"] == 5
    for r, role in enumerate(ROLES):
        assert sum(out["hours"][role]) == pytest.approx(role_hours[0, r])


def test_time_split_orders_by_start_date_and_needs_enough_projects():
    frame = pd.DataFrame({"project_id": [f"p{i}" for i in range(10)],
                          "start_date": pd.date_range("2020-01-01", periods=10)[::-1]})
    ids = time_split(frame, (0.6, 0.2, 0.2))
    assert list(ids["test"]) == ["p1", "p0"]  # the newest two
    assert len(ids["train"]) == 6 and "p9" in ids["train"]
    with pytest.raises(ValueError, match="too few"):
        time_split(frame.head(2), (0.6, 0.2, 0.2))


def test_time_split_trains_on_undated_projects_and_says_so():
    # Ids that sort as text before the dated ones ("a...") and after ("z..."): neither order
    # may put an undated project in the held-out slices.
    frame = pd.DataFrame({"project_id": [f"p{i}" for i in range(8)] + ["a0", "z9"],
                          "start_date": [*pd.date_range("2020-01-01", periods=8), pd.NaT,
                                         pd.NaT]})
    notes: list[str] = []
    ids = time_split(frame, (0.6, 0.2, 0.2), notes=notes)
    assert {"a0", "z9"} <= set(ids["train"]) and list(ids["test"]) == ["p6", "p7"]
    assert notes == ["2 project(s) without a start date are put in the training slice (a "
                     "held-out project must be newer than training)"]
    notes.clear()
    undated = frame.assign(start_date=pd.NaT)
    ids = time_split(undated, (0.6, 0.2, 0.2), notes=notes)
    assert list(ids["test"]) == ["a0", "z9"]  # the last rows of the file, not the last ids
    assert list(ids["train"]) == [f"p{i}" for i in range(6)]
    assert notes and "no start dates: the split follows the export's row order" in notes[0]


def test_time_split_by_group_keeps_each_group_in_one_slice():
    # Five projects of three tasks each, started a month apart; task starts interleave.
    frame = pd.DataFrame({
        "project_id": [f"t{i}" for i in range(15)],
        "code": [f"P{i // 3}" for i in range(15)],
        "start_date": [pd.Timestamp("2020-01-01") + pd.DateOffset(months=i // 3, days=40 * (i % 3))
                       for i in range(15)]})
    notes: list[str] = []
    ids = time_split(frame, (0.6, 0.2, 0.2), group="code", notes=notes)
    slices = {s: set(frame.set_index("project_id").loc[list(v), "code"]) for s, v in ids.items()}
    assert slices == {"train": {"P0", "P1", "P2"}, "calibration": {"P3"}, "test": {"P4"}}
    assert notes == ["split by code: 3/1/1 groups to train, calibrate and test; no group is in "
                     "two slices"]


@pytest.mark.parametrize("family", list(SPEC_FILES))
def test_shipped_specs_load(family):
    spec = load_spec(family)
    assert spec.family == family and spec.quantiles == (0.1, 0.5, 0.9)
    assert spec.params_for("inflight")["num_leaves"] <= spec.params_for("intake")["num_leaves"]
    assert spec.inflight_anchor in ("ieac_t_ratio", "eac_cpi_ratio")


def _raw(family="delay") -> dict:
    with (SPEC_DIR / SPEC_FILES[family]).open("rb") as fh:
        return tomllib.load(fh)


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["promotion"].update(margin=1.5), r"promotion.margin is a relative"),
    (lambda r: r["promotion"].update(colour="red"), r"promotion.colour is not a spec field"),
    (lambda r: r["objective"].update(quantiles=[0.9, 0.5, 0.1]), r"objective.quantiles needs"),
    (lambda r: r["target"].update(name="log_cost_ratio"), r"the delay family predicts"),
    (lambda r: r["split"].update(test=0.5), r"split train, calibration and test must"),
    (lambda r: r["features"].update(exclude=["warp_speed"]), r"unknown feature\(s\)"),
    (lambda r: r["objective"].update(inflight_anchor="complexity"), r"must be a status feature"),
    (lambda r: r["target"].pop("late_threshold"), r"target.late_threshold is missing"),
])
def test_bad_specs_are_errors_naming_the_field(edit, message):
    raw = _raw()
    edit(raw)
    with pytest.raises(ValueError, match=message):
        parse_spec(raw, source="delay.toml")


def test_a_regressor_pickled_before_the_starts_predicts_as_it_did():
    """Champions registered by an older opm-ml (anchor or plan start, no `start_`) still load
    and give the same forecasts and SHAP values."""
    import pickle

    from opm_ml.forecasting.estimators import ConformalQuantileRegressor
    from opm_ml.forecasting.starts import frame_matrix

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"size": rng.uniform(1, 100, 300), "ratio": rng.uniform(0.8, 1.5, 300)})
    y = np.log(X["ratio"]) + rng.normal(0, 0.1, 300)
    params = {"n_estimators": 20, "verbose": -1, "min_child_samples": 10}
    for anchor in ("ratio", None):
        fitted = ConformalQuantileRegressor(params=params, anchor=anchor).fit(X, y)
        matrix = frame_matrix(X)
        expected = fitted.predict_arrays(matrix)
        old = dict(fitted.__dict__)  # what the older class pickled: no starts, no choices
        for name in ("start_", "flat_", "trees_", "base", "reference", "calendar"):
            old.pop(name, None)
        old["anchor_mean_"] = fitted.start_.mean if anchor else 0.0
        restored = ConformalQuantileRegressor.__new__(ConformalQuantileRegressor)
        restored.__setstate__(pickle.loads(pickle.dumps(old)))
        got = restored.predict_arrays(matrix)
        np.testing.assert_allclose(got["log_quantiles"], expected["log_quantiles"])
        np.testing.assert_allclose(got["shap"], expected["shap"])
        assert restored.get_params()["calendar"] == ()  # sklearn parameters complete


def test_the_log_linear_start_leaves_the_calendar_out_and_extrapolates_within_bounds():
    from opm_ml.forecasting.starts import LogLinearStart, frame_matrix

    rng = np.random.default_rng(2)
    size = rng.uniform(10, 1000, 400)
    year = rng.integers(2010, 2020, 400).astype(float)
    X = pd.DataFrame({"size": size, "start_year": year})
    y = 0.3 * np.log(size) - 0.05 * (year - 2010) + rng.normal(0, 0.05, 400)
    start = LogLinearStart(exclude=("start_year",)).fit(X, y)
    assert [X.columns[j] for j, _, _ in start.terms_] == ["size"]
    far = pd.DataFrame({"size": [1e9], "start_year": [2040.0]})
    edge = pd.DataFrame({"size": [size.max()], "start_year": [2040.0]})
    bound = np.log(size.max()) + (np.log(size.max()) - np.log(size.min())) / 2
    # A size a million times the largest seen is read as the widened bound, not extrapolated.
    grown = start.start(frame_matrix(far))[0] - start.start(frame_matrix(edge))[0]
    assert grown == pytest.approx(start.coef_[0] / start.scales_[0]
                                  * (bound - np.log(size.max())))


def _worse_by(base, mean, spread, rng):
    """`base` plus noise whose sample mean is exactly `mean`."""
    noise = rng.normal(0, spread, len(base))
    return base + noise - noise.mean() + mean


def _check(name, model_errors, baseline_errors, gate=True):
    from training.evaluation import Check

    m, b = np.asarray(model_errors, float), np.asarray(baseline_errors, float)
    return Check(name, "mae", float(m.mean()), float(b.mean()), m, b, gate=gate)


def test_the_strict_gate_wants_a_win_on_every_check_progress_points_included():
    from training.evaluation import _gated

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 10, 40)
    slightly_worse = _worse_by(base, 0.2, 3.0, rng)  # worse on average, within noise
    checks = _gated([_check("intake vs refclass", slightly_worse, base),
                     _check("in flight vs eac_cpi", base - 1, base),
                     _check("in flight 50% vs eac_cpi", slightly_worse, base, gate=False)],
                    "strict")
    assert [(c.gate, c.passed) for c in checks] == [(True, False), (False, True),
                                                    (True, False)]


def test_the_noise_gate_calls_a_loss_within_noise_a_tie_and_a_clear_loss_a_loss():
    from training.evaluation import _gated

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 10, 40)
    tie, loss = _worse_by(base, 0.2, 3.0, rng), _worse_by(base, 3.0, 0.5, rng)
    checks = _gated([_check("intake vs refclass", tie, base),
                     _check("intake vs loglinear", loss, base),
                     _check("in flight 50% vs eac_cpi", loss, base, gate=False)], "noise")
    assert [(c.beats, c.passed, c.gate) for c in checks] == [
        (False, True, True), (False, False, True), (False, False, False)]
