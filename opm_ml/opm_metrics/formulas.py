"""The EVM/ES formulas and, next to each, the conditions under which it is undefined.

Works on aligned numpy arrays (one element per snapshot), so one project and a million
snapshots go through exactly the same lines.
"""

from __future__ import annotations

import numpy as np

METRIC_COLUMNS: tuple[str, ...] = (
    "sv", "cv", "spi", "cpi", "eac_cpi", "eac_plan_rate", "eac_cpi_spi", "etc", "vac",
    "tcpi_bac", "tcpi_eac", "es_days", "at_days", "sv_t_days", "spi_t", "ieac_t_days",
    "forecast_finish_date",
)
DAY = 86_400  # seconds; dates travel as datetime64[s]
_LAST_SECOND = int(np.datetime64("9999-12-31T00:00:00", "s").astype(np.int64))
_OVERFLOW = "not a finite number (numeric overflow)"


def metrics(bac, pv, ev, ac, start, at, duration, es) -> tuple[dict, dict, dict]:
    """All metrics for aligned arrays; `start` is datetime64[s], `at`/`duration`/`es` in days.

    Returns (values, reason_index, reason_texts): per metric, the value array, an int8 array
    that is 0 where the value is defined and 1 + i where `reason_texts[metric][i]` explains
    why not (the first condition that holds wins), and the list of reason texts.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        spi = ev / pv
        cpi = ev / ac
        eac_cpi = bac / cpi
        etc = eac_cpi - ac
        spi_t = es / at
        values = {
            "sv": ev - pv,
            "cv": ev - ac,
            "spi": spi,
            "cpi": cpi,
            "eac_cpi": eac_cpi,
            "eac_plan_rate": ac + (bac - ev),
            "eac_cpi_spi": ac + (bac - ev) / (cpi * spi),
            "etc": etc,
            "vac": bac - eac_cpi,
            "tcpi_bac": (bac - ev) / (bac - ac),
            "tcpi_eac": (bac - ev) / etc,
            "es_days": es,
            "at_days": at,
            "sv_t_days": es - at,
            "spi_t": spi_t,
            "ieac_t_days": duration / spi_t,
        }
    no_cpi = [(ac == 0, "cpi is undefined (ac is 0)"), (ev == 0, "cpi is 0 (ev is 0)")]
    before = [(at < 0, "status date is before the start date")]
    no_spi_t = before + [(at == 0, "actual time is 0 (status date is the start date)")]
    conditions = {
        "sv": [], "cv": [], "eac_plan_rate": [],
        "spi": [(pv == 0, "pv is 0 (nothing planned yet)")],
        "cpi": [(ac == 0, "ac is 0 (no cost booked yet)")],
        "eac_cpi": no_cpi, "etc": no_cpi, "vac": no_cpi,
        "eac_cpi_spi": no_cpi[:1] + [(pv == 0, "spi is undefined (pv is 0)"),
                                     (ev == 0, "cpi * spi is 0 (ev is 0)")],
        "tcpi_bac": [(ac == bac, "bac - ac is 0 (budget used up)"),
                     (ac > bac, "ac exceeds bac (bac can no longer be met)")],
        "tcpi_eac": no_cpi + [(ev >= bac, "eac_cpi - ac is 0 (no work remaining)")],
        "es_days": before, "at_days": before, "sv_t_days": before,
        "spi_t": no_spi_t,
        "ieac_t_days": no_spi_t + [(es == 0, "spi_t is 0 (earned schedule is 0)")],
    }
    # Last line of defence: extreme but valid inputs (say ac = 1e-300) must not leak inf.
    for name, value in values.items():
        conditions[name] = conditions[name] + [(~np.isfinite(value), _OVERFLOW)]

    reasons = {name: _reason_index(conds) for name, conds in conditions.items()}
    texts = {name: [text for _, text in conds] for name, conds in conditions.items()}

    # Forecast finish = start + IEAC(t), rounded to whole days, while the calendar holds it.
    ieac_reason = reasons["ieac_t_days"]
    shift = np.where(ieac_reason == 0, np.rint(values["ieac_t_days"]), 0.0) * DAY
    finish = start.astype(np.int64) + shift
    beyond = finish > _LAST_SECOND
    texts["forecast_finish_date"] = [*texts["ieac_t_days"], "forecast finish is after 9999"]
    reasons["forecast_finish_date"] = np.where(
        ieac_reason > 0, ieac_reason, np.where(beyond, len(texts["forecast_finish_date"]), 0)
    ).astype(np.int8)
    values["forecast_finish_date"] = (
        np.where(beyond, 0, finish).astype(np.int64).astype("datetime64[s]")
    )
    return values, reasons, texts


def _reason_index(conditions: list) -> np.ndarray:
    """Per row, 1 + index of the first condition that holds; 0 when none does."""
    idx = np.zeros(len(conditions[-1][0]), dtype=np.int8)
    for j in range(len(conditions) - 1, -1, -1):  # reversed, so the first condition wins
        idx[conditions[j][0]] = j + 1
    return idx
