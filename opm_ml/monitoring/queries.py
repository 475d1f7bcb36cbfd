"""Reads of the prediction log and the outcomes, as DataFrames for the monitoring report.

Times are UTC. `since` bounds every read by the time a forecast was logged, so a report over
a month reads a month, however long the log has grown.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from sqlalchemy import Engine, func, select

from opm_ml import database
from opm_ml.database.tables import prediction_log as log
from opm_ml.database.tables import prediction_log_forecast as fc
from opm_ml.database.tables import project_outcomes as out

FORECAST_COLUMNS = [log.c.logged_at, log.c.source, log.c.project_id, log.c.stage,
                    log.c.status_date, log.c.progress, log.c.project_type, fc.c.family,
                    fc.c.model_name, fc.c.model_version, fc.c.planned, fc.c.p10, fc.c.p50,
                    fc.c.p90, fc.c.probability_late, fc.c.late_threshold]


LOGGED_AT = "_logged_at"  # the column of `logged_features` frames that is not a feature


def logged_features(engine: Engine, since: datetime) -> dict[str, pd.DataFrame]:
    """Stage -> one row per logged forecast since `since`: the feature values the models saw
    (and, as `LOGGED_AT`, when)."""
    query = select(log.c.stage, log.c.logged_at, log.c.features).where(log.c.logged_at >= since)
    with database.engine.translate_errors(engine), engine.connect() as conn:
        rows = conn.execute(query).all()
    by_stage: dict[str, list[dict]] = {}
    for stage, logged_at, features in rows:
        by_stage.setdefault(stage, []).append({**features, LOGGED_AT: logged_at})
    return {stage: pd.DataFrame.from_records(items).assign(
        **{LOGGED_AT: lambda f: pd.to_datetime(f[LOGGED_AT], utc=True)})
        for stage, items in by_stage.items()}


def logged_forecasts(engine: Engine, since: datetime) -> pd.DataFrame:
    """Every family's logged forecast since `since` (one row per forecast and family)."""
    query = (select(*FORECAST_COLUMNS).join(fc, fc.c.prediction_id == log.c.id)
             .where(log.c.logged_at >= since))
    return _frame(engine, query)


def judged_forecasts(engine: Engine, since: datetime) -> pd.DataFrame:
    """Logged forecasts since `since` whose project has finished, with the actual value.

    An in-flight forecast dated after the project's finish is no forecast and is left out.
    """
    query = (select(*FORECAST_COLUMNS, out.c.actual, out.c.finished_on)
             .join(fc, fc.c.prediction_id == log.c.id)
             .join(out, (out.c.project_id == log.c.project_id) & (out.c.family == fc.c.family))
             .where(log.c.logged_at >= since)
             .where((log.c.status_date.is_(None)) | (log.c.status_date <= out.c.finished_on)))
    return _frame(engine, query)


def outcomes_since(engine: Engine, after: datetime | None) -> int:
    """Finished projects whose outcome arrived after `after` (all of them without it)."""
    query = select(func.count(func.distinct(out.c.project_id)))
    if after is not None:
        query = query.where(out.c.ingested_at > after)
    with database.engine.translate_errors(engine), engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def _frame(engine: Engine, query) -> pd.DataFrame:
    with database.engine.translate_errors(engine), engine.connect() as conn:
        result = conn.execute(query)
        frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    if len(frame):
        frame["logged_at"] = pd.to_datetime(frame["logged_at"], utc=True)
    return frame


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (naive ones are taken to be UTC already)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else \
        moment.astimezone(timezone.utc)
