"""The dashboard's views as one self-contained HTML file (`opm-ml report`, see `cli.py`).

The page is the dashboard's own HTML and JS with the vendored Vega scripts inlined and the
JSON of every view embedded (`window.OPM_DATA`), so it opens offline, without the API.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from opm_ml.contract import History
from opm_ml.model_set import ModelSet
from serving.dashboard import data
from serving.dashboard.tables import read_table

STATIC = Path(data.__file__).parent / "static"
_VENDOR = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
_END_TAG = re.compile(r"</(script)", re.IGNORECASE)
# JSON string escapes for what an inline script must not contain: "<" ("<!--<script>" makes
# the parser skip the real "</script>"), ">" and "&" (HTML-significant), U+2028/9 (line
# ends in older JavaScript). Inside a JSON string each escape means the same character.
_SCRIPT_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                "\u2028": "\\u2028", "\u2029": "\\u2029"})
_STATUS = ["status_date", "pv", "ev", "ac", "percent_complete"]


def history_from_table(frame: pd.DataFrame, model_set: ModelSet) -> History:
    """A flat project table (one status snapshot per row at most) as a one-snapshot history."""
    inputs, _ = data.project_inputs(frame, model_set)  # every row valid, or each one named
    columns = {name: values for name, values in inputs.columns.items()}
    table = pd.DataFrame(columns).assign(project_id=[str(i) for i in inputs.ids])
    manifest = model_set.manifest
    projects = table[["project_id", *manifest.intake_columns]].copy()
    projects["start_date"] = pd.to_datetime(projects["start_date"])
    projects["actual_finish_date"] = pd.NaT
    status = [c for c in _STATUS if c in table.columns]
    snaps = table.loc[inputs.inflight, ["project_id", *status]].copy()
    snaps["status_date"] = pd.to_datetime(snaps["status_date"])
    return History(projects=projects, snapshots=snaps.reset_index(drop=True),
                   resource_usage=pd.DataFrame())


def report_data(model_set: ModelSet, history: History, candidates: Path = data.CANDIDATES,
                constraints: Path = data.CONSTRAINTS) -> dict:
    """Every view's JSON: portfolio, one project view per portfolio project, intake."""
    inputs = data.history_inputs(history, model_set)
    return {
        "portfolio": data.portfolio(model_set, inputs),
        "projects": {pid: data.project(model_set, history, pid) for pid in inputs.ids},
        "intake": data.intake(model_set, candidates, constraints),
    }


def script_json(payload: object) -> str:
    """`payload` as JSON safe to embed in an inline <script>, whatever its strings hold.

    Project ids and names come from users; the page must show them, never run or end on them.
    """
    return json.dumps(payload, allow_nan=False).translate(_SCRIPT_UNSAFE)


def render_html(payload: dict) -> str:
    """The dashboard page with its CSS, scripts and `payload` inlined."""
    def script(text: str, module: bool = False) -> str:
        # "</script" in the vendored JS would end the inline script early; "<\/script" means
        # the same in JS. The data goes through `script_json`, which leaves no "<" at all.
        kind = ' type="module"' if module else ""
        return f"<script{kind}>" + _END_TAG.sub(r"<\\/\1", text) + "</script>"

    page = (STATIC / "index.html").read_text()
    vendor = "\n".join(script((STATIC / "vendor" / name).read_text()) for name in _VENDOR)
    vendor += "\n" + script((STATIC / "monitoring.js").read_text())  # a classic script
    head = (f"<style>{(STATIC / 'dashboard.css').read_text()}</style>\n"
            + script("window.OPM_DATA = " + script_json(payload) + ";")
            + "\n" + vendor)
    own = script((STATIC / "dashboard.js").read_text(), module=True)
    page = "\n".join(line for line in page.splitlines() if "/dashboard/static/" not in line)
    page = page.replace("<title>opm-ml dashboard</title>", "<title>opm-ml report</title>")
    # Split the template first: the inlined libraries contain "</head>" and "</body>" too.
    top, rest = page.split("</head>")
    middle, bottom = rest.rsplit("</body>", 1)
    return f"{top}{head}\n</head>{middle}{own}\n</body>{bottom}"


def read_projects(path: Path, model_set: ModelSet) -> History:
    """A history folder (projects + snapshots), or a CSV/Parquet project table."""
    if path.is_dir():
        return data.default_history(path)
    return history_from_table(read_table(path.read_bytes(), path.name), model_set)
