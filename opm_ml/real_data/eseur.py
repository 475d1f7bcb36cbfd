"""Adapters for the ESEUR (Jones 2020) project sets with effort or cost, and Jørgensen's overruns.

SiP tasks and Little's weekly re-estimates have their own modules (`sip`, `little`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opm_ml.real_data._io import european_number, read_csv
from opm_ml.real_data.dataset import (
    HOURS_PER_PERSON_MONTH,
    RealDataset,
    categorical,
    finish,
    positive_ratio,
)

# Huijgens' delivery approach onto the contract's `methodology` categories.
HUIJGENS_METHODS = {"Plan-driven": "waterfall", "Scrum": "agile"}
# Context flags that describe what happened during the project rather than at intake.
HUIJGENS_EX_POST_FLAGS = ("problems_with_external_supplier", "many_team_changes_unexperienced_team")


def huijgens_phd(root: Path) -> RealDataset:
    """Huijgens PhD (492 projects, 4 organisations): resource demand as actual cost in EUR.

    `Actual_effort_hours` is filled for only 22 of 492 rows, so cost is the target.
    """
    raw = read_csv(root / "eseur_HuijgensPhD.csv", sep=";", encoding="cp1252")
    flags = raw.columns[raw.columns.get_loc("Release_based_working"):]
    X = pd.DataFrame({
        "organization": categorical(raw["Organization"]),
        "year_go_live": raw["Year_technical_go_live"].astype(float),
        "organisation_profile": categorical(raw["Organisation_profile"]),
        "business_domain": categorical(raw["Business_domain"]),
        "methodology": raw["Development_method"].map(HUIJGENS_METHODS).astype("str"),
        "primary_language": categorical(raw["Primary_programming_language"]),
        "development_class": categorical(raw["Development_class"]),
        "size_fp": raw["Functional_size_FP"].astype(float),
        "actual_duration_months": european_number(
            raw["Actual_duration_months"], "Actual_duration_months", thousands=False),
    })
    for flag in flags:
        X[flag.lower()] = raw[flag].astype(float)
    unmapped = raw["Development_method"].notna() & X["methodology"].isna()
    if unmapped.any():
        raise ValueError(f"HuijgensPhD: unknown Development_method "
                         f"{raw['Development_method'][unmapped].iloc[0]!r}")
    cost = european_number(raw["Actual_cost_EUR"], "Actual_cost_EUR", thousands=True)
    return finish("huijgens_phd", "effort", X, cost.rename("actual_cost_eur"),
                  "eseur_HuijgensPhD.csv",
                  "Target = Actual_cost_EUR ('.' thousands separator); effort hours given for only "
                  "22/492 rows. Defects, satisfaction and description dropped (outcomes, text).",
                  target_unit="EUR",
                  ex_post=("year_go_live", "actual_duration_months", *HUIJGENS_EX_POST_FLAGS))


def huijgens2013(root: Path) -> RealDataset:
    """Huijgens & van Solingen 2013: 26 monthly releases of two systems; target cost (EUR)."""
    raw = read_csv(root / "eseur_huijgens2013.csv")
    X = pd.DataFrame({
        "system": categorical(raw["System"]),
        "requirements": raw["Req"].astype(float),
        "size_fp": raw["FP"].astype(float),
        "story_points": raw["SP"].astype(float),
        "actual_duration_months": raw["Duration"].astype(float),
    })
    return finish("huijgens2013", "effort", X, raw["Cost"].astype(float).rename("cost_eur"),
                  "eseur_huijgens2013.csv",
                  "Target = release Cost (EUR); Cost/FP and Cost/SP dropped (derived from target).",
                  target_unit="EUR", ex_post=("actual_duration_months",))


def kitchenham1985(root: Path) -> RealDataset:
    """Kitchenham & Taylor 1985: 33 ICL/BT projects; effort and schedule in (person-)months."""
    raw = read_csv(root / "eseur_kitchenham1985.csv")
    X = pd.DataFrame({
        "company": categorical(raw["Company"]),
        "size_loc": raw["LOC"].astype(float),
        "actual_duration_months": raw["Schedule"].astype(float),
    })
    return finish("kitchenham1985", "effort", X,
                  (raw["Effort"] * HOURS_PER_PERSON_MONTH).rename("actual_effort_hours"),
                  "eseur_kitchenham1985.csv",
                  "Effort person-months x 152 h/PM; Design/Code/Test phase efforts dropped "
                  "(parts of the target).", ex_post=("actual_duration_months",))


def nasa_ada_fortran(root: Path) -> RealDataset:
    """NASA GSFC Ada/Fortran study: 30 projects, effort in hours; size and type features."""
    raw = read_csv(root / "eseur_nasa-ada-fortran.csv")
    begin = pd.to_datetime(raw["begin"], format="%m/%d/%y")
    X = pd.DataFrame({
        "language": categorical(raw["language"]),
        "system_type": categorical(raw["type"]),
        "size_loc": raw["lines"].astype(float),
        "developed_lines": raw["developed_lines"].astype(float),
        "new_lines": raw["new_lines"].astype(float),
        "start_year": begin.dt.year.astype(float),
        "actual_duration_months": raw["duration"].astype(float),
    })
    return finish("nasa_ada_fortran", "effort", X,
                  raw["effort"].astype(float).rename("actual_effort_hours"),
                  "eseur_nasa-ada-fortran.csv",
                  "Curated 7 of 31 columns (n=30); phase efforts and error counts dropped.",
                  ex_post=("actual_duration_months",))


def ahonen2015(root: Path) -> RealDataset:
    """Ahonen et al. 2015: 117 projects; Project_size is total effort in hours."""
    raw = read_csv(root / "eseur_ahonen2015.csv")
    X = pd.DataFrame({
        "contract": categorical(raw["Contract"]),
        "planned_team_size": raw["Team_size"].astype(float),
        "actual_duration_workdays": raw["Duration"].astype(float),
        "management_effort_pct": raw["Management"].astype(float),
    })
    return finish("ahonen2015", "effort", X,
                  raw["Project_size"].astype(float).rename("actual_effort_hours"),
                  "eseur_ahonen2015.csv",
                  "Team_size (recorded) -> planned_team_size; management share is of the actual "
                  "effort, so ex post.",
                  ex_post=("actual_duration_workdays", "management_effort_pct"))


def jorgensen_overrun(root: Path) -> RealDataset:
    """Jørgensen: 49 tasks, actual / estimated effort; the free-text Reasons (ex post) dropped."""
    raw = read_csv(root / "eseur_Regression-models.csv")
    ratio = positive_ratio(raw["Actual effort"], raw["Estimated effort"])
    keep = ratio.notna()
    X = pd.DataFrame({"planned_effort_hours": raw.loc[keep, "Estimated effort"].astype(float)})
    return finish("jorgensen_overrun", "overrun", X, ratio[keep].rename("effort_ratio"),
                  "eseur_Regression-models.csv",
                  f"Estimated effort -> planned_effort_hours; {int((~keep).sum())} rows dropped.")
