"""Fixed scales, the versioned scorecard and its reference, and weight-stability intervals."""

import shutil

import numpy as np
import pandas as pd
import pytest

from opm_ml.intake import scales
from opm_ml.intake.scorecard import CRITERIA, DEFAULT_CONFIG, load_config, moscow, strategic_fit
from opm_ml.intake.sensitivity import weight_intervals
from opm_ml.validation import load_history
from opm_ml.settings import PROJECT_ROOT

REFERENCE = DEFAULT_CONFIG.parent / "intake_reference.csv"


def test_curve_is_linear_between_points_and_flat_beyond():
    curve = scales.curve_scale([[0, 0], [0.5, 0.8], [1, 1]], "c")
    np.testing.assert_allclose(curve([-3, 0, 0.25, 0.5, 0.75, 1, 7, np.inf]),
                               [0, 0, 0.4, 0.8, 0.9, 1, 1, 1])
    for bad, message in [([[0, 0]], "at least two points"), ([[1, 0], [0, 1]], "increasing x"),
                         ([[0, 0], [1, 1.5]], "u must be in 0..1"), ("x", "list of")]:
        with pytest.raises(ValueError, match=message):
            scales.curve_scale(bad, "scales.risk.curve")


def test_percentile_counts_ties_half_and_turns_round_when_lower_wins():
    reference = pd.DataFrame({"effort_hours": [10, 20, 20, 30, None]})
    higher = scales.percentile_scale(reference, "effort_hours", "higher", "s")
    lower = scales.percentile_scale(reference, "effort_hours", "lower", "s")
    # 20: one of four below and two equal -> (1 + 2/2) / 4 = 0.5; the empty row is not counted.
    np.testing.assert_allclose(higher([5, 10, 20, 25, 40]), [0, 0.125, 0.5, 0.75, 1])
    np.testing.assert_allclose(lower([5, 10, 20, 25, 40]), [1, 0.875, 0.5, 0.25, 0])
    with pytest.raises(ValueError, match="no column 'hours'"):
        scales.percentile_scale(reference, "hours", "lower", "s")
    with pytest.raises(ValueError, match="needs the scorecard's \\[reference\\]"):
        scales.percentile_scale(None, "effort_hours", "lower", "s")


def test_measures_use_only_each_candidates_own_figures():
    m = scales.measures(risk_adjusted_npv=[50, -10, 5, 0], expected_cost_pv=[100, 100, 0, 0],
                        fit=[0.5, 0.2, 0.9, 0.1], probability_late=[0.2, 0.5, 0, 1],
                        overrun_pct_p90=[30, 250, -5, 100], effort_hours=[10, 20, 30, 40])
    np.testing.assert_allclose(m["financial_value"], [0.5, -0.1, np.inf, 0])  # no cost, value: best
    np.testing.assert_allclose(m["risk"], [1 - (0.2 + 0.3) / 2, 0.25, 1, 0])
    one = scales.measures([50], [100], [0.5], [0.2], [30], [10])
    pd.testing.assert_frame_equal(one, m.iloc[:1])


def test_strategic_fit_falls_back_per_row_not_per_batch():
    objectives = {"a": 0.75, "b": 0.25}
    alignment = pd.DataFrame({"alignment_a": [8, np.nan], "alignment_b": [4, np.nan]})
    np.testing.assert_allclose(strategic_fit(alignment, np.array([1, 6]), objectives),
                               [(0.75 * 8 + 0.25 * 4) / 10, 0.6])


def test_shipped_reference_is_what_the_documented_command_builds(tmp_path):
    """`opm-ml intake reference data/sample` reproduces the pinned file byte for byte."""
    digest = scales.write_reference(scales.build_reference(load_history(
        PROJECT_ROOT / "data" / "sample")), tmp_path / "ref.csv")
    config = load_config()
    assert digest == scales.file_digest(REFERENCE) == config.reference_digest
    assert config.version == "2026.2" and config.digest.startswith("sha256:")
    assert len(config.scales["resource_load"].reference) == len(pd.read_csv(REFERENCE))


def _scorecard_copy(tmp_path, change=lambda text: text):
    shutil.copy(REFERENCE, tmp_path / "intake_reference.csv")
    path = tmp_path / "scorecard.toml"
    path.write_text(change(DEFAULT_CONFIG.read_text()))
    return path


def test_a_changed_reference_or_scorecard_is_caught(tmp_path):
    path = _scorecard_copy(tmp_path)
    assert load_config(path).digest == load_config().digest  # same bytes, same digest
    with open(tmp_path / "intake_reference.csv", "a") as f:
        f.write("P999999,12.0\n")
    with pytest.raises(ValueError, match="intake_reference.csv has sha256:.*the scorecard pins"):
        load_config(path)
    path = _scorecard_copy(tmp_path, lambda t: t.replace("risk = 0.20", "risk = 0.25"))
    assert load_config(path).digest != load_config().digest


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace('version = "2026.2"', ""), "missing `version`"),
    (lambda t: t.replace("[scales.risk]\ncurve", "[scales.risk]\npercentile = \"x\"\ncurve"),
     "scales.risk needs exactly one of `curve` or `percentile`"),
    (lambda t: t.replace("[scales.risk]", "[scales.riskiness]"), "a table for each of"),
    (lambda t: t.replace('better = "lower"', 'better = "less"'), "better must be"),
    (lambda t: t.replace("[weights]", "[weightz]"), "needs \\[weights\\] or criteria_comparisons"),
    (lambda t: t.replace("risk = 0.20", "risk = -1"), "weights must be non-negative"),
    (lambda t: t.replace("[moscow]", "[moscow\n"), "not valid TOML"),
])
def test_scorecard_errors_name_the_key(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        load_config(_scorecard_copy(tmp_path, change))


def brute_force_class(s, w, k, x, npv, mandatory, config):
    """Class at each weight x of criterion k, the others rescaled proportionally to 1 - x."""
    x = np.atleast_1d(np.asarray(x, float))
    rest = np.delete(w, k) / np.delete(w, k).sum()
    scaled = np.insert(rest[None, :] * (1 - x)[:, None], k, x, axis=1)
    classes = moscow(100 * scaled @ s, np.full(len(x), npv), np.full(len(x), mandatory), config)
    return classes if len(classes) > 1 else classes[0]


def test_weight_intervals_match_a_brute_force_scan():
    config = load_config()
    rng = np.random.default_rng(4)
    scores = pd.DataFrame(rng.uniform(0, 1, (40, 4)), columns=list(CRITERIA))
    npv = np.where(rng.random(40) < 0.15, -1.0, 1.0)
    mandatory = rng.random(40) < 0.1
    w = np.array([config.weights[c] for c in CRITERIA])
    got = weight_intervals(scores, config.weights, npv, mandatory, config)
    grid = np.linspace(0, 1, 2001)
    flips = 0
    for i in range(40):
        s = scores.iloc[i].to_numpy()
        now = brute_force_class(s, w, 0, w[0], npv[i], mandatory[i], config)
        for k, name in enumerate(CRITERIA):
            row = got[name].iloc[i]
            assert row["low"] <= w[k] <= row["high"]
            classes = brute_force_class(s, w, k, grid, npv[i], mandatory[i], config)
            inside = [c for x, c in zip(grid, classes) if row["low"] + 1e-6 < x < row["high"] - 1e-6]
            assert set(inside) <= {now}
            if row["low"] > 0:
                flips += 1
                assert brute_force_class(s, w, k, row["low"] - 1e-6, npv[i], mandatory[i],
                                         config) == row["below"] != now
            else:
                assert row["below"] is None and classes[0] == now
            if row["high"] < 1:
                assert brute_force_class(s, w, k, row["high"] + 1e-6, npv[i], mandatory[i],
                                         config) == row["above"] != now
            else:
                assert row["above"] is None and classes[-1] == now
        if mandatory[i] or npv[i] < 0:  # the score does not decide these classes
            assert all((got[c].iloc[i][["low", "high"]] == [0, 1]).all() for c in CRITERIA)
    assert flips > 15  # the scan exercised real boundaries, not only [0, 1] intervals
