"""Adapters for the PROMISE/CoEST effort sets (ARFF) and the Use Case Points CSV.

Person-months are converted at `HOURS_PER_PERSON_MONTH` (152 h, COCOMO). Columns derived from the
target (productivity, log effort, phase efforts that sum to it) are dropped, never used as features.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opm_ml.real_data._io import european_number, read_arff, read_csv
from opm_ml.real_data.dataset import (
    HOURS_PER_PERSON_MONTH,
    RealDataset,
    categorical,
    finish,
    positive_ratio,
)

# COCOMO rating words as ordinal numbers, so 15 drivers cost 15 columns instead of ~75 dummies.
COCOMO_RATINGS = {"vl": 1, "l": 2, "n": 3, "h": 4, "vh": 5, "xh": 6}
COCOMO_DRIVERS = ("rely", "data", "cplx", "time", "stor", "virt", "turn", "acap", "aexp", "pcap",
                  "vexp", "lexp", "modp", "tool", "sced")


def _effort_target(values: pd.Series, factor: float = 1.0) -> pd.Series:
    return (values * factor).rename("actual_effort_hours")


def albrecht(root: Path) -> RealDataset:
    """Albrecht & Gaffney 1983: 24 IBM projects; effort in thousands of hours -> hours."""
    raw = read_arff(root / "albrecht.arff")
    X = pd.DataFrame({
        "inputs": raw["Input"], "outputs": raw["Output"], "inquiries": raw["Inquiry"],
        "files": raw["File"], "fp_adjustment": raw["FPAdj"], "size_raw_fp": raw["RawFPcounts"],
        "size_adjusted_fp": raw["AdjFP"],
    })
    return finish("albrecht", "effort", X, _effort_target(raw["Effort"], 1000.0),
                  "albrecht.arff", "Effort x 1000 (file unit: thousand work-hours).")


def cocomo81(root: Path) -> RealDataset:
    """Boehm 1981 COCOMO-81: 63 projects, 15 numeric effort multipliers and KLOC."""
    raw = read_arff(root / "cocomo811.arff")
    X = raw[list(COCOMO_DRIVERS)].copy()
    X["size_kloc"] = raw["loc"]
    return finish("cocomo81", "effort", X,
                  _effort_target(raw["actual"], HOURS_PER_PERSON_MONTH), "cocomo811.arff",
                  "actual person-months x 152 h/PM; drivers are COCOMO multipliers.")


def desharnais(root: Path) -> RealDataset:
    """Desharnais 1989: 81 Canadian projects, effort in person-hours."""
    raw = read_arff(root / "desharnais.arff")
    X = pd.DataFrame({
        "team_experience_years": raw["TeamExp"],
        "pm_experience_years": raw["ManagerExp"],
        "year_end": raw["YearEnd"],
        "actual_duration_months": raw["Length"],
        "transactions": raw["Transactions"],
        "entities": raw["Entities"],
        "size_raw_fp": raw["PointsNonAjust"],
        "size_adjusted_fp": raw["PointsAdjust"],
        "fp_adjustment": raw["Envergure"],
        "language": categorical(raw["Language"]),
    })
    return finish("desharnais", "effort", X, _effort_target(raw["Effort"]), "desharnais.arff",
                  "All 81 rows kept; 5 missing experience values stay NaN.",
                  ex_post=("year_end", "actual_duration_months"))


def finnish(root: Path) -> RealDataset:
    """Finnish set (38 projects): `prod` (hours per FP) and `lneff` leak the target: dropped."""
    raw = read_arff(root / "finnish.arff").rename(columns=str.strip)
    X = pd.DataFrame({
        "hardware": categorical(raw["hw"]),
        "application_type": categorical(raw["at"]),
        "size_fp": raw["FP"],
        "co": categorical(raw["co"]),
    })
    return finish("finnish", "effort", X, _effort_target(raw["dev.eff.hrs."]), "finnish.arff",
                  "Dropped prod (= hours/FP) and lneff (= log effort): both leak the target.")


def kemerer(root: Path) -> RealDataset:
    """Kemerer 1987: 15 projects, effort in person-months."""
    raw = read_arff(root / "kemerer.arff")
    X = pd.DataFrame({
        "language": categorical(raw["Language"]),
        "hardware": categorical(raw["Hardware"]),
        "actual_duration_months": raw["Duration"],
        "size_kloc": raw["KSLOC"],
        "size_adjusted_fp": raw["AdjFP"],
        "size_raw_fp": raw["RAWFP"],
    })
    return finish("kemerer", "effort", X, _effort_target(raw["EffortMM"], HOURS_PER_PERSON_MONTH),
                  "kemerer.arff", "EffortMM x 152 h/PM.", ex_post=("actual_duration_months",))


def miyazaki94(root: Path) -> RealDataset:
    """Miyazaki et al. 1994: 48 Japanese projects, effort in person-months."""
    raw = read_arff(root / "miyazaki94.arff")
    X = raw[["SCRN", "FORM", "FILE", "ESCRN", "EFORM", "EFILE"]].rename(columns=str.lower)
    X.insert(0, "size_kloc", raw["KLOC"])
    return finish("miyazaki94", "effort", X, _effort_target(raw["MM"], HOURS_PER_PERSON_MONTH),
                  "miyazaki94.arff", "MM x 152 h/PM; project ID dropped.")


def nasa93(root: Path) -> RealDataset:
    """NASA93 (PROMISE): 93 projects, COCOMO drivers as ordinal 1..6, effort in person-months.

    `projectname` names the programme a record came from: an identifier, not a feature.
    """
    raw = read_arff(root / "nasa93.arff")
    X = pd.DataFrame({
        "application": categorical(raw["cat2"]),
        "forg": categorical(raw["forg"]),
        "center": categorical(raw["center"]),
        "year": raw["year"],
        "mode": categorical(raw["mode"]),
    })
    for driver in COCOMO_DRIVERS:
        X[driver] = raw[driver].map(COCOMO_RATINGS).astype(float)
        unknown = raw[driver].notna() & X[driver].isna()
        if unknown.any():
            raise ValueError(f"nasa93: driver {driver!r} has unknown rating "
                             f"{raw[driver][unknown].iloc[0]!r}")
    X["size_kloc"] = raw["equivphyskloc"]
    return finish("nasa93", "effort", X,
                  _effort_target(raw["act_effort"], HOURS_PER_PERSON_MONTH), "nasa93.arff",
                  "act_effort x 152 h/PM; ratings vl..xh -> 1..6; projectname (an identifier) "
                  "dropped.")


def _isbsg_features(raw: pd.DataFrame, size_name: str) -> pd.DataFrame:
    """Curated ISBSG-style columns: ~90 mostly-empty columns would swamp 40 rows."""
    return pd.DataFrame({
        size_name: raw["FS"],
        "year": raw["Year"],
        "industry": categorical(raw["IS"]),
        "development_type": categorical(raw["DT"]),
        "platform": categorical(raw["DP"]),
        "language_type": categorical(raw["LT"]),
        "resource_level": raw["Resource_Level"],
        "planned_team_size": raw["MTS"],
        "actual_duration_months": raw["PET"],
    })


def cosmic(root: Path) -> RealDataset:
    """ISBSG COSMIC-FP subset (42 projects); target N_effort (normalised work effort, hours)."""
    raw = read_arff(root / "cosmic.arff")
    X = _isbsg_features(raw, "size_cosmic_fp")
    return finish("cosmic", "effort", X, _effort_target(raw["N_effort"]), "cosmic.arff",
                  "Curated 9 of 86 columns; MTS (max team size, recorded) -> planned_team_size; "
                  "phase efforts, PDR/SDR and defects dropped (derived from the outcome).",
                  ex_post=("actual_duration_months",))


def isbsg10(root: Path) -> RealDataset:
    """ISBSG release-10 subset (37 projects); target N_effort (hours)."""
    raw = read_arff(root / "isbsg10.arff")
    X = _isbsg_features(raw, "size_fp")
    X["count_approach"] = categorical(raw["CA"])
    X["planned_effort_hours"] = raw["E_Estimate"]
    return finish("isbsg10", "effort", X, _effort_target(raw["N_effort"]), "isbsg10.arff",
                  "Curated 11 of 94 columns; E_Estimate -> planned_effort_hours; MTS -> "
                  "planned_team_size.", ex_post=("actual_duration_months",))


def _kitchenham(root: Path) -> pd.DataFrame:
    """Kitchenham et al. 2002 (145 projects) with its dates turned into day counts."""
    raw = read_arff(root / "kitchenham.arff")
    start = pd.to_datetime(raw["Actual.start.date"], format="%Y-%m-%d")
    planned_end = pd.to_datetime(raw["Estimated.completion.date"], format="%Y-%m-%d")
    planned_days = (planned_end - start).dt.days.astype(float)
    return pd.DataFrame({
        "client_code": categorical(raw["Client.code"]),
        "project_type_code": categorical(raw["Project.type"]),
        "start_year": start.dt.year.astype(float),
        "size_adjusted_fp": raw["Adjusted.function.points"],
        "planned_effort_hours": raw["First.estimate"],
        "estimate_method": categorical(raw["First.estimate.method"]),
        # One project's estimated completion precedes its start: a data error, left missing.
        "planned_duration_days": planned_days.where(planned_days > 0),
        "actual_duration_days": raw["Actual.duration"],
        "actual_effort_hours": raw["Actual.effort"],
    })


def kitchenham_effort(root: Path) -> RealDataset:
    """Kitchenham effort: actual hours from size, first estimate and planned duration."""
    k = _kitchenham(root)
    X = k.drop(columns=["actual_effort_hours"])
    return finish("kitchenham", "effort", X, k["actual_effort_hours"], "kitchenham.arff",
                  "First.estimate -> planned_effort_hours; Estimated.completion.date - "
                  "Actual.start.date -> planned_duration_days.",
                  ex_post=("actual_duration_days",))


def kitchenham_delay(root: Path) -> RealDataset:
    """Kitchenham delay: actual / planned duration, planned = estimated completion - start."""
    k = _kitchenham(root)
    ratio = positive_ratio(k["actual_duration_days"], k["planned_duration_days"])
    keep = ratio.notna()
    X = k.loc[keep].drop(columns=["actual_duration_days", "actual_effort_hours"])
    return finish("kitchenham_delay", "delay", X, ratio[keep].rename("duration_ratio"),
                  "kitchenham.arff",
                  f"{int((~keep).sum())} of {len(k)} rows dropped: no estimated completion date "
                  "or one before the start date.", reference_column="project_type_code")


def kitchenham_overrun(root: Path) -> RealDataset:
    """Kitchenham effort overrun: actual effort / first estimate."""
    k = _kitchenham(root)
    ratio = positive_ratio(k["actual_effort_hours"], k["planned_effort_hours"])
    keep = ratio.notna()
    X = k.loc[keep].drop(columns=["actual_duration_days", "actual_effort_hours"])
    return finish("kitchenham_overrun", "overrun", X, ratio[keep].rename("effort_ratio"),
                  "kitchenham.arff",
                  f"target = Actual.effort / First.estimate; {int((~keep).sum())} rows dropped.",
                  reference_column="project_type_code")


def ucp(root: Path) -> RealDataset:
    """Silhavy et al. 2017 Use Case Points (71 projects): `;`-separated, decimal commas."""
    raw = read_csv(root / "UCP_Dataset.csv", sep=";", dtype="str")
    numeric = ["Simple Actors", "Average Actors", "Complex Actors", "UAW", "Simple UC",
               "Average UC", "Complex UC", "UUCW", "TCF", "ECF"]
    X = pd.DataFrame({
        c.lower().replace(" ", "_"): european_number(raw[c], c, thousands=False) for c in numeric
    })
    # Renamed so they do not collide with contract columns that have fixed categories.
    for source, name in (("Sector", "industry"), ("Language", "language"),
                         ("Methodology", "development_method"),
                         ("ApplicationType", "application_type"), ("DataDonator", "data_donor")):
        X[name] = categorical(raw[source])
    effort = european_number(raw["Real_Effort_Person_Hours"], "Real_Effort_Person_Hours",
                             thousands=False)
    return finish("ucp", "effort", X, _effort_target(effort), "UCP_Dataset.csv",
                  "Real_P20 (= effort / 20) dropped: it leaks the target.")
