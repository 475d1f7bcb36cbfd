"""The open intake pipeline: candidates scored and kept, stored in the service's database.

A candidate enters when it is scored with keep (`?keep=true`, `--keep`); keeping an id again
replaces its entry. It leaves when closed (with a reason such as approved or rejected: the row
stays, marked closed). The pipeline view places a scored candidate among the other open
entries — rank and percentile by score — next to its score, never inside it. Entries are
compared under the weights of the call, recomputed from their stored criterion scores, and
only when they were scored with the same scorecard (digest) against the same reference
population (`reference_digest`: the scorecard's reference, a profile's past projects, or None
when none was and the percentile criteria scored neutral; None matches None). Others are
counted, not compared; so are entries kept before the reference was recorded whose reference
migration 0003 could not establish ('unknown', which matches nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, insert, select, update

from opm_ml import database
from opm_ml.database.tables import intake_pipeline
from opm_ml.intake import scorecard
from opm_ml.intake.scoring import ScoredCandidates


@dataclass
class PipelineView:
    """Per scored candidate: rank, size and percentile among the open pipeline; and counts."""

    frame: pd.DataFrame  # project_id, pipeline_rank, pipeline_size, pipeline_percentile
    open: int  # open entries, whatever their scorecard
    not_comparable: int  # open entries of another scorecard or reference population, left out
    kept: list[str]

    def summary(self) -> dict:
        return {"kept": self.kept, "open": self.open, "compared": self.open - self.not_comparable,
                "not_comparable": self.not_comparable}


def rescore(entries: pd.DataFrame, config: scorecard.ScorecardConfig) -> np.ndarray:
    """Scores of stored entries under `config`'s weights, from their weight-free parts."""
    if entries.empty:
        return np.zeros(0)
    scores = pd.DataFrame(list(entries["criterion_scores"]))[list(scorecard.CRITERIA)]
    alignment = pd.DataFrame([a or {} for a in entries["alignment"]],
                             columns=list(config.objectives.weights)).astype(float)
    alignment.columns = [f"alignment_{c}" for c in alignment.columns]
    # Entries scored without alignment keep their strategic_fit (the contract's).
    scores["strategic_fit"] = scorecard.strategic_fit(
        alignment, scores["strategic_fit"].to_numpy(float) * 10, config.objectives.weights,
        config.version)
    return scorecard.points(scores, config.weights)["score"].round(2).to_numpy()


def place(ids: list[str], scores: np.ndarray, open_ids: list[str],
          open_scores: np.ndarray) -> pd.DataFrame:
    """Rank (1 = best) and percentile (share of the others scoring lower, ties half) of each
    candidate among the open entries other than itself."""
    rows = []
    others_of = np.asarray(open_ids, dtype=object)
    for pid, score in zip(ids, scores):
        others = open_scores[others_of != pid]
        n = len(others)
        below, equal = (others < score).sum(), (others == score).sum()
        rows.append({"project_id": pid, "pipeline_rank": int((others > score).sum() + 1),
                     "pipeline_size": n + 1,
                     "pipeline_percentile": round(100 * (below + equal / 2) / n, 1) if n
                     else float("nan")})
    return pd.DataFrame(rows)


class Pipeline:
    """Keep, close, list and compare candidates in the `intake_pipeline` table."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> Pipeline:
        """The pipeline in the database at `url`, migrated at first use."""
        return cls(database.connect(url))

    def keep(self, scored: ScoredCandidates) -> list[str]:
        """Store (or replace) every scored candidate as open; returns their ids."""
        t, c, scores = scored.table, scored.candidates, scored.criterion_scores
        now = datetime.now(UTC)
        alignment = c.alignment.rename(columns=lambda k: k.removeprefix("alignment_"))
        rows = []
        for i, pid in enumerate(c.ids):
            given = alignment.iloc[i].dropna().to_dict() if alignment.shape[1] else {}
            rows.append({
                "project_id": pid, "name": t["name"][i] if "name" in t else None,
                "scorecard_version": scored.config.version,
                "scorecard_digest": scored.config.digest,
                "reference_digest": scored.config.reference_digest,
                "criterion_scores": {k: float(scores[k][i]) for k in scorecard.CRITERIA},
                "alignment": given or None, "score": float(t["score"][i]),
                "moscow": str(t["moscow"][i]), "mandatory": bool(t["mandatory"][i]),
                "risk_adjusted_npv": float(t["risk_adjusted_npv"][i]),
                "kept_at": now, "closed_at": None, "close_reason": None,
            })
        with database.engine.translate_errors(self.engine), self.engine.begin() as conn:
            # Replace, portably (SQLite and PostgreSQL alike): delete then insert, one transaction.
            conn.execute(delete(intake_pipeline).where(
                intake_pipeline.c.project_id.in_(c.ids)))
            conn.execute(insert(intake_pipeline), rows)
        return c.ids

    def close(self, project_id: str, reason: str = "closed") -> dict | None:
        """Close an open entry (it stays on record); None when no open entry has that id."""
        table = intake_pipeline
        with database.engine.translate_errors(self.engine), self.engine.begin() as conn:
            done = conn.execute(update(table).where(
                table.c.project_id == project_id, table.c.closed_at.is_(None)).values(
                closed_at=datetime.now(UTC), close_reason=reason))
            if done.rowcount == 0:
                return None
            row = conn.execute(select(table).where(table.c.project_id == project_id)).one()
        return row._asdict()

    def entries(self, include_closed: bool = False) -> pd.DataFrame:
        """Stored entries (open ones only by default), oldest first."""
        query = select(intake_pipeline).order_by(intake_pipeline.c.kept_at,
                                                 intake_pipeline.c.project_id)
        if not include_closed:
            query = query.where(intake_pipeline.c.closed_at.is_(None))
        with database.engine.translate_errors(self.engine), self.engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(query)]
        return pd.DataFrame(rows, columns=[c.name for c in intake_pipeline.columns])

    def comparable(self, config: scorecard.ScorecardConfig) -> tuple[pd.DataFrame, int]:
        """Open entries scored with `config`'s scorecard against its reference population
        (`config.reference_digest`, None: none), rescored under its weights; and how many open
        entries were left out (another scorecard or reference population)."""
        entries = self.entries()
        reference = entries["reference_digest"]
        same_reference = (reference.isna() if config.reference_digest is None
                          else reference == config.reference_digest)
        same = entries[(entries["scorecard_digest"] == config.digest)
                       & same_reference].reset_index(drop=True)
        same["current_score"] = rescore(same, config)
        return same, len(entries) - len(same)

    def view(self, scored: ScoredCandidates, keep: bool = False) -> PipelineView:
        """Keep the candidates if asked, then place each among the open pipeline."""
        kept = self.keep(scored) if keep else []
        same, not_comparable = self.comparable(scored.config)
        frame = place(scored.candidates.ids, scored.table["score"].to_numpy(float),
                      same["project_id"].tolist(), same["current_score"].to_numpy(float))
        return PipelineView(frame, len(same) + not_comparable, not_comparable, kept)

    def listing(self, config: scorecard.ScorecardConfig) -> tuple[pd.DataFrame, int]:
        """The comparable open entries ranked by their score under `config`'s weights."""
        same, not_comparable = self.comparable(config)
        same = same.sort_values(["current_score", "project_id"], ascending=[False, True])
        same.insert(0, "pipeline_rank", np.arange(1, len(same) + 1))
        return same.reset_index(drop=True), not_comparable
