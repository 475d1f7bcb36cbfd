"""The planner dashboard: view data (`data`), the page in `static/`, offline HTML reports
(`report`, command in `cli`). The default inputs are the repository's sample and examples."""

from opm_ml.settings import PROJECT_ROOT

SAMPLE_DIR = PROJECT_ROOT / "data" / "sample"
CANDIDATES = PROJECT_ROOT / "data" / "examples" / "candidates.csv"
CONSTRAINTS = PROJECT_ROOT / "data" / "examples" / "portfolio_constraints.toml"
