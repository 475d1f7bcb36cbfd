"""Real-data adapters, baselines and evaluation: row counts, no leaks, ATLM, SA and the folds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opm_ml.real_data import (
    ATLM,
    CurrentEstimate,
    MedianEstimator,
    NoChange,
    RealDataset,
    ReferenceClassUplift,
    cv_splits,
    default_estimators,
    evaluate,
    load_real_datasets,
    mae_p0,
    standardised_accuracy,
)
from opm_ml.real_data._io import european_number, read_arff

REAL = Path(__file__).resolve().parents[2] / "shared/data/real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} not present")

# Rows per dataset: file row counts from SOURCES.md where the adapter keeps every row.
SOURCE_ROWS = {
    "albrecht": 24, "cocomo81": 63, "cosmic": 42, "desharnais": 81, "finnish": 38,
    "isbsg10": 37, "kemerer": 15, "kitchenham": 145, "miyazaki94": 48, "nasa93": 93, "ucp": 71,
    "huijgens_phd": 492, "huijgens2013": 26, "kitchenham1985": 33, "nasa_ada_fortran": 30,
    "ahonen2015": 117, "little_delay": 121, "kitchenham_overrun": 145, "jorgensen_overrun": 49,
}


@pytest.fixture(scope="module")
def real() -> dict[str, RealDataset]:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} not present")
    loaded = load_real_datasets(REAL, include_ex_post=True)
    assert not [s for s in loaded.skipped if "Error" in s[1]], loaded.skipped
    return {d.name: d for d in loaded}


# ---------------------------------------------------------------- readers


def test_read_arff_handles_quotes_escapes_missing_and_string_dates(tmp_path):
    path = tmp_path / "t.arff"
    path.write_text(
        "% comment\n@relation t\n"
        "@attribute 'ID ' numeric   % inline comment\n"
        "@attribute name string\n@attribute when date \"yyyy-MM-dd\"\n"
        "@attribute kind {a,'b c'}\n@data\n"
        "1,'x, y',2020-01-02,a\n"
        "?,'it\\'s',?,'b c'\n",
        encoding="utf-8-sig",
    )
    frame = read_arff(path)
    assert list(frame.columns) == ["ID", "name", "when", "kind"]
    assert frame["ID"].tolist()[0] == 1.0 and np.isnan(frame["ID"].iloc[1])
    assert frame["name"].tolist() == ["x, y", "it's"]
    assert frame["when"].isna().tolist() == [False, True]
    assert frame["kind"].tolist() == ["a", "b c"]


def test_read_arff_rejects_a_row_with_the_wrong_width(tmp_path):
    path = tmp_path / "bad.arff"
    path.write_text("@relation r\n@attribute a numeric\n@attribute b numeric\n@data\n1,2\n3\n")
    with pytest.raises(ValueError, match="data row 2 has 1 values"):
        read_arff(path)


def test_european_numbers():
    cost = european_number(pd.Series(["110.643", "1.234.567", "329"]), "cost", thousands=True)
    assert cost.tolist() == [110643.0, 1234567.0, 329.0]
    months = european_number(pd.Series(["19,03", "2"]), "months", thousands=False)
    assert months.tolist() == [19.03, 2.0]
    with pytest.raises(ValueError, match="'months'"):
        european_number(pd.Series(["1.5"]), "months", thousands=False)


@needs_real
@pytest.mark.parametrize("name, shape", [
    ("kitchenham.arff", (145, 10)), ("cosmic.arff", (42, 86)), ("isbsg10.arff", (37, 94)),
    ("nasa93-dem.arff", (93, 27)), ("desharnais.arff", (81, 12)),
])
def test_arff_shapes_match_sources_md(name, shape):
    assert read_arff(REAL / name).shape == shape


# ---------------------------------------------------------------- adapters


@needs_real
def test_row_counts_match_sources(real):
    for name, rows in SOURCE_ROWS.items():
        assert real[name].n == rows, name


@needs_real
def test_row_counts_of_filtered_sets(real):
    raw = pd.read_csv(REAL / "eseur_Sip-task-info.csv", encoding="cp1252")
    tasks = raw.drop_duplicates("TaskNumber")
    done = tasks["StatusCode"].isin(["FINISHED", "COMPLETED", "RELEASED"])
    assert real["sip_overrun"].n == int(done.sum())
    assert real["sip_overrun"].groups.nunique() == tasks.loc[done, "ProjectCode"].nunique()

    nyc = pd.read_csv(REAL / "NYC_capital_projects_20190901.csv")
    positive = nyc[nyc["Budget Forecast"] > 0]
    assert real["nyc_overrun"].n == int((positive.groupby("PID").size() >= 2).sum())

    kitchen = read_arff(REAL / "kitchenham.arff")
    planned = (pd.to_datetime(kitchen["Estimated.completion.date"])
               - pd.to_datetime(kitchen["Actual.start.date"])).dt.days
    assert real["kitchenham_delay"].n == int((planned > 0).sum())
    for pct in (25, 50, 75):
        assert 100 <= real[f"little_delay_t{pct}"].n <= 121


@needs_real
def test_targets_positive_finite_and_no_feature_leaks_the_target(real):
    assert set(real) >= set(SOURCE_ROWS) | {"nyc_delay", "sip_overrun", "little_delay_t50"}
    for d in real.values():
        y = d.y.to_numpy()
        assert np.isfinite(y).all() and (y > 0).all(), d.name
        for name, col in d.X.select_dtypes("number").items():
            rank = col.rank().corr(d.y.rank())
            assert not abs(rank) > 0.999, f"{d.name}: {name} is a copy of the target"


@needs_real
def test_unit_conversions(real):
    kemerer = read_arff(REAL / "kemerer.arff")
    assert np.allclose(real["kemerer"].y, kemerer["EffortMM"] * 152)
    assert np.allclose(real["albrecht"].y, read_arff(REAL / "albrecht.arff")["Effort"] * 1000)
    huijgens = pd.read_csv(REAL / "eseur_HuijgensPhD.csv", sep=";", encoding="cp1252")
    assert huijgens["Actual_cost_EUR"].iloc[0] == "110.643"
    assert real["huijgens_phd"].y.iloc[0] == 110643.0
    assert real["huijgens_phd"].target_unit == "EUR"


@needs_real
def test_little_checkpoint_uses_the_current_reestimate(real):
    # Project 1: start 2000-12-01, first estimate 2001-03-01 (90 days), released 2001-08-22.
    # At 50 % (day 45 = 2001-01-15) the latest weekly row (2001-01-12) says 2001-03-31.
    t50 = real["little_delay_t50"]
    assert t50.X["reestimated_ratio"].iloc[0] == pytest.approx(120 / 90)
    assert t50.X["planned_duration_days"].iloc[0] == 90
    assert t50.y.iloc[0] == pytest.approx(264 / 90)


@needs_real
def test_ex_post_features_are_dropped_by_default():
    default = {d.name: d for d in load_real_datasets(REAL, family="effort")}
    assert "actual_duration_months" not in default["desharnais"].X
    assert "planned_effort_hours" in default["kitchenham"].X
    assert all(d.family == "effort" and not d.ex_post for d in default.values())


def test_missing_root_and_unreadable_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="real data folder not found"):
        load_real_datasets(tmp_path / "absent")
    if REAL.is_dir():
        (tmp_path / "albrecht.arff").symlink_to(REAL / "albrecht.arff")
    loaded = load_real_datasets(tmp_path, family="effort")
    reasons = dict(loaded.skipped)
    assert "FileNotFoundError" in reasons["cocomo81"]
    assert "nasa93_dem" in reasons  # deliberately not adapted, still listed
    assert [d.name for d in loaded] == (["albrecht"] if REAL.is_dir() else [])


# ---------------------------------------------------------------- baselines


def test_atlm_recovers_a_log_linear_relation():
    rng = np.random.default_rng(3)
    n = 400
    size = rng.lognormal(5, 1, n)  # skewed -> logged
    team = rng.lognormal(1, 0.8, n)
    kind = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    score = rng.uniform(0, 1, n)  # not skewed -> kept linear
    log_y = (1.0 + 0.9 * np.log(size) - 0.4 * np.log(team) + 0.5 * (kind == "b")
             - 0.3 * (kind == "c") + 0.7 * score + rng.normal(0, 0.05, n))
    X = pd.DataFrame({"size": size, "team": team, "kind": kind, "score": score})
    model = ATLM().fit(X, np.exp(log_y))
    coef = dict(zip(model.design_names_, model.coef_, strict=True))
    assert model.target_transform_ == "log"
    assert model.intercept_ == pytest.approx(1.0, abs=0.05)
    assert coef["log(size)"] == pytest.approx(0.9, abs=0.02)
    assert coef["log(team)"] == pytest.approx(-0.4, abs=0.02)
    assert coef["kind=b"] == pytest.approx(0.5, abs=0.03)
    assert coef["kind=c"] == pytest.approx(-0.3, abs=0.03)
    assert coef["score"] == pytest.approx(0.7, abs=0.03)
    assert np.allclose(model.predict(X), np.exp(log_y), rtol=0.2)


def test_atlm_imputes_missing_values_and_unseen_levels():
    X = pd.DataFrame({"size": [10.0, 20, np.nan, 40, 80, 160, 320, 640],
                      "kind": ["a", "a", "b", None, "a", "b", "a", "b"]})
    y = np.array([5.0, 9, 20, 21, 39, 85, 160, 330])
    model = ATLM().fit(X, y)
    assert "size_missing" in model.design_names_
    new = pd.DataFrame({"size": [np.nan, 50.0], "kind": ["zzz", np.nan]})
    assert np.isfinite(model.predict(new)).all()


def test_reference_class_and_no_change():
    X = pd.DataFrame({"cat": ["a"] * 5 + ["b"] * 5 + ["c"], "now": [2.0] * 11})
    y = np.array([1.0, 1.1, 1.2, 1.3, 1.4, 2.0, 2.2, 2.4, 2.6, 2.8, 9.0])
    overall = ReferenceClassUplift().fit(X, y)
    assert overall.predict(X[:1])[0] == pytest.approx(np.median(y))
    by_cat = ReferenceClassUplift("cat").fit(X, y)  # "c" has 1 row < min_count: overall median
    assert by_cat.predict(X.iloc[[0, 5, 10]]).tolist() == pytest.approx([1.2, 2.4, np.median(y)])
    on_base = ReferenceClassUplift(base_column="now").fit(X, y)
    assert on_base.predict(X[:1])[0] == pytest.approx(2.0 * np.median(y / 2.0))
    assert NoChange().fit(X, y).predict(X).tolist() == [1.0] * 11
    assert CurrentEstimate("now").fit(X, y).predict(X[:2]).tolist() == [2.0, 2.0]


# ---------------------------------------------------------------- accuracy measures


def test_mae_p0_by_hand():
    # Ordered pairs of [1, 2, 4]: |1-2| + |1-4| + |2-4| = 6, twice, over 3 * 2 pairs = 2.
    assert mae_p0([4, 1, 2]) == pytest.approx(2.0)
    values = np.array([3.0, 7, 7, 10, 1])
    brute = np.abs(values[:, None] - values[None, :]).sum() / (5 * 4)
    assert mae_p0(values) == pytest.approx(brute)


def test_sa_is_100_for_a_perfect_predictor_and_about_0_for_random_guessing():
    rng = np.random.default_rng(0)
    y = rng.lognormal(8, 1, 60)
    assert standardised_accuracy(y, y) == pytest.approx(100.0)
    sas = []
    for _ in range(2000):
        other = (np.arange(60) + rng.integers(1, 60, 60)) % 60  # a random other case
        sas.append(standardised_accuracy(y, y[other]))
    assert np.mean(sas) == pytest.approx(0.0, abs=1.0)
    assert standardised_accuracy(y, np.full(60, y.mean())) < 50


# ---------------------------------------------------------------- cross-validation


def test_group_folds_never_split_a_group_and_cover_every_row():
    groups = pd.Series(np.repeat([f"p{i}" for i in range(40)], np.arange(1, 41)))
    repeats = cv_splits(len(groups), groups, n_splits=5, n_repeats=3, seed=1)
    assert len(repeats) == 3
    for folds in repeats:
        tested = np.concatenate([test for _, test in folds])
        assert np.array_equal(np.sort(tested), np.arange(len(groups)))
        for train, test in folds:
            assert not set(groups.iloc[train]) & set(groups.iloc[test])


def test_small_sets_use_leave_one_out_and_few_groups_leave_one_group_out():
    assert [len(f) for f in cv_splits(12)] == [12]
    few = cv_splits(50, np.repeat(["a", "b", "c", "d", "e"], 10))
    assert len(few) == 1 and len(few[0]) == 5
    assert [len(f) for f in cv_splits(100, n_splits=4, n_repeats=3)] == [4, 4, 4]


class _Oracle:
    """Knows the answer: a feature holds the target."""

    def fit(self, X, y):
        return self

    def predict(self, X):
        return X["truth"].to_numpy()


def test_evaluate_reports_each_estimator_and_the_scheme():
    rng = np.random.default_rng(2)
    y = pd.Series(rng.lognormal(3, 1, 50))
    X = pd.DataFrame({"truth": y, "noise": rng.normal(size=50)})
    dataset = RealDataset("toy", "effort", X, y, None, "synthetic", "")
    table = evaluate(dataset, {"oracle": _Oracle, "median": MedianEstimator}, n_repeats=2)
    assert table.loc["oracle", "SA"] == pytest.approx(100.0)
    assert table.loc["oracle", "MAE"] == pytest.approx(0.0)
    assert 0 < table.loc["median", "SA"] < 100
    assert table.loc["median", "scheme"] == "5-fold x2"
    small = dataclasses.replace(dataset, X=X[:20], y=y[:20])
    assert evaluate(small, {"median": MedianEstimator}).loc["median", "scheme"] == "leave-one-out"


@needs_real
def test_baselines_run_on_a_real_delay_set(real):
    dataset = real["little_delay_t75"]
    table = evaluate(dataset, default_estimators(dataset), n_repeats=2)
    assert {"no_change", "reference_class", "current_estimate", "atlm"} <= set(table.index)
    assert table.loc["no_change", "MAE"] == pytest.approx(np.mean(np.abs(dataset.y - 1)))
    assert table["SA"].notna().all()
