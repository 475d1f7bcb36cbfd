"""Project intake: business-case finance, risk-adjusted value, scorecard and portfolio selection.

`scoring.score_candidates` scores candidate projects on the fixed scales of the versioned
scorecard (`scorecard`, `scales`; weights typed or by AHP, `ahp`) with MoSCoW classes and
weight-stability intervals (`sensitivity`), a dataset profile's percentile scales comparing
with its own past projects (`past_projects`); `pipeline` places them among the open pipeline kept
in the service database; `selection.select_portfolio` picks the subset maximising risk-adjusted
value under budget and role capacity with an exact integer program (`portfolio.solve`).
"""
