"""AHP weights against a published worked example, recomputed by hand here; and the refusals."""

import itertools
import shutil

import pytest

from opm_ml.intake import ahp
from opm_ml.intake.scorecard import CRITERIA, DEFAULT_CONFIG, load_config
from opm_ml.intake.weighting import WeightsError, resolve

# Saaty, T. L. (2008). Decision making with the analytic hierarchy process. International
# Journal of Services Sciences 1(1), 83-98, Table 2 "Which drink is consumed more in the U.S.?":
# the judgements, the derived scale (principal eigenvector) and its consistency ratio.
DRINKS = ["coffee", "wine", "tea", "beer", "sodas", "milk", "water"]
DRINKS_MATRIX = [
    [1, 9, 5, 2, 1, 1, 1 / 2],
    [1 / 9, 1, 1 / 3, 1 / 9, 1 / 9, 1 / 9, 1 / 9],
    [1 / 5, 3, 1, 1 / 3, 1 / 4, 1 / 3, 1 / 9],
    [1 / 2, 9, 3, 1, 1 / 2, 1, 1 / 3],
    [1, 9, 4, 2, 1, 2, 1 / 2],
    [1, 9, 3, 1, 1 / 2, 1, 1 / 3],
    [2, 9, 9, 3, 2, 3, 1],
]
PUBLISHED_SCALE = [0.177, 0.019, 0.042, 0.116, 0.190, 0.129, 0.327]
PUBLISHED_CR = 0.022


def judgements(names, matrix):
    """The upper triangle as [a, b, a_ab] judgements."""
    return [[names[i], names[j], matrix[i][j]]
            for i, j in itertools.combinations(range(len(names)), 2)]


def by_hand(matrix, steps=200):
    """Power iteration in plain Python: w <- A w / sum(A w); lambda_max = mean of (A w)_i / w_i."""
    n = len(matrix)
    w = [1 / n] * n
    for _ in range(steps):
        v = [sum(matrix[i][j] * w[j] for j in range(n)) for i in range(n)]
        w = [x / sum(v) for x in v]
    aw = [sum(matrix[i][j] * w[j] for j in range(n)) for i in range(n)]
    return sum(aw[i] / w[i] for i in range(n)) / n, w


def test_saaty_drinks_example_weights_and_consistency_ratio():
    lambda_max, w = by_hand(DRINKS_MATRIX)
    ci = (lambda_max - 7) / (7 - 1)
    cr = ci / 1.32  # Saaty's random index for n = 7
    assert [round(x, 3) for x in w] == PUBLISHED_SCALE
    assert round(cr, 3) == PUBLISHED_CR
    got = ahp.priorities(judgements(DRINKS, DRINKS_MATRIX))
    assert list(got.weights) == DRINKS
    assert list(got.weights.values()) == pytest.approx(w, abs=1e-9)
    assert got.lambda_max == pytest.approx(lambda_max, abs=1e-9)
    assert got.consistency_ratio == pytest.approx(cr, abs=1e-9)


def test_consistent_judgements_give_their_exact_ratios():
    # a = 2 b = 4 c: weights 4/7, 2/7, 1/7; lambda_max = n = 3, CR = 0.
    got = ahp.priorities([["a", "b", 2], ["a", "c", 4], ["c", "b", "1/2"]])
    assert got.weights == pytest.approx({"a": 4 / 7, "b": 2 / 7, "c": 1 / 7})
    assert got.lambda_max == pytest.approx(3) and got.consistency_ratio == pytest.approx(0, abs=1e-12)


def test_inconsistent_judgements_are_refused_naming_the_pair():
    # One judgement reversed from the published matrix: wine 9x water instead of 1/9.
    matrix = [row[:] for row in DRINKS_MATRIX]
    matrix[1][6], matrix[6][1] = 9, 1 / 9
    with pytest.raises(ahp.InconsistentJudgements,
                       match=r"consistency ratio 0\.\d+ > 0\.1\).* wine vs water: judged 9"):
        ahp.priorities(judgements(DRINKS, matrix))
    # A cycle (a > b > c > a) cannot be one weighting at all.
    with pytest.raises(ahp.InconsistentJudgements, match=r"consistency ratio 1\.1\d"):
        ahp.priorities([["a", "b", 3], ["b", "c", 3], ["c", "a", 3]])


@pytest.mark.parametrize("given, message", [
    ([], "at least two items"),
    ([["a", "b", 3], ["a", "c", 2]], r"missing judgement\(s\) b / c: 3 items need all 3 pairs"),
    ([["a", "b", 3], ["b", "a", 2], ["a", "c", 2], ["b", "c", 1]], "b / a is judged more than once"),
    ([["a", "a", 3]], "a is compared with itself"),
    ([["a", "b", 12], ["a", "c", 2], ["b", "c", 1]], "outside Saaty's scale"),
    ([["a", "b", "1/0"], ["a", "c", 2], ["b", "c", 1]], "not a number or a fraction"),
    ([["a", "b"]], r"each judgement is \[a, b, value\]"),
])
def test_malformed_judgements_say_what_is_wrong(given, message):
    with pytest.raises(ValueError, match=message):
        ahp.priorities(given)


def test_criteria_judgements_must_name_the_criteria():
    pairs = [[a, b, 1] for a, b in itertools.combinations(CRITERIA, 2)]
    got = resolve("weights", None, "criteria_comparisons", pairs, CRITERIA, "criterion")
    assert got.weights == pytest.approx(dict.fromkeys(CRITERIA, 0.25))
    pairs[0][0] = "growth"
    with pytest.raises(WeightsError, match="criteria_comparisons: unknown criterion 'growth'"):
        resolve("weights", None, "criteria_comparisons", pairs, CRITERIA, "criterion")
    with pytest.raises(WeightsError, match="give weights or criteria_comparisons, not both"):
        resolve("weights", dict.fromkeys(CRITERIA, 1), "criteria_comparisons", pairs, CRITERIA,
                "criterion")
    with pytest.raises(WeightsError, match="weights: needs a weight for each criterion .*"
                                           "missing resource_load"):
        resolve("weights", {"financial_value": 1, "strategic_fit": 1, "risk": 1}, "x", None,
                CRITERIA, "criterion")


def _toml_pairs(pairs) -> str:
    return "[" + ", ".join(f'["{a}", "{b}", {v!r}]' for a, b, v in pairs) + "]"


def test_scorecard_file_takes_comparisons_of_criteria_and_objectives(tmp_path):
    criteria = judgements(list(CRITERIA), [[1, 2, 3, 5], [1 / 2, 1, 2, 3], [1 / 3, 1 / 2, 1, 2],
                                           [1 / 5, 1 / 3, 1 / 2, 1]])
    objectives = [["customer_experience", "cost_efficiency", 2],
                  ["customer_experience", "compliance", 3], ["cost_efficiency", "compliance", 2]]
    text = DEFAULT_CONFIG.read_text()
    start, end = text.index("\n[weights]\n"), text.index("# Weights of the organisational")
    text = text[:start + 1] + f"criteria_comparisons = {_toml_pairs(criteria)}\n\n" + text[end:]
    start, end = text.index("\n[objectives]\n"), text.index("# The organisation's past")
    text = text[:start + 1] + f"objective_comparisons = {_toml_pairs(objectives)}\n\n" + text[end:]
    path = tmp_path / "intake_scorecard.toml"
    path.write_text(text)
    shutil.copy(DEFAULT_CONFIG.parent / "intake_reference.csv", tmp_path)
    config = load_config(path)
    assert config.criteria.source == "pairwise comparisons"
    assert config.criteria.weights == pytest.approx(ahp.priorities(criteria).weights)
    assert config.objectives.weights == pytest.approx(ahp.priorities(objectives).weights)
    assert config.objectives.priorities.consistency_ratio < 0.1
    path.write_text(text.replace('["risk", "resource_load", 2]', '["risk", "resource_load", 0.125]'))
    with pytest.raises(ValueError, match="criteria_comparisons: judgements are inconsistent"):
        load_config(path)
