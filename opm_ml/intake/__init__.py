"""Project intake: business-case finance, risk-adjusted value, scorecard and portfolio selection.

`scoring.score_candidates` ranks candidate projects (finance + model forecasts + weighted
scorecard + MoSCoW); `selection.select_portfolio` picks the subset maximising risk-adjusted value
under budget and role capacity with an exact integer program (`portfolio.solve`).
"""
