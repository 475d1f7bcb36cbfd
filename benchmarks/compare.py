"""Old against new on the same machine in the same run: another commit's own benchmark code.

`checkout(ref)` puts the commit in a git worktree beside the repository; `old_python(root)` runs
a command with that checkout first on PYTHONPATH (its packages shadow this one's editable
install), in this virtualenv; `train_old(root, folder, projects)` trains its own champion models
there, since a registry written by one version is not loadable by the other. `side_by_side`
lines up the Markdown rows both benchmarks print, by label and order, with the speed ratio.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# (pattern of the leading number, True when bigger is better)
_UNITS = ((re.compile(r"p50 ([\d,.]+) ms"), False), (re.compile(r"([\d,.]+) req/s"), True),
          (re.compile(r"([\d,.]+) rows/s"), True), (re.compile(r"([\d,.]+)x the"), True))


def checkout(ref: str) -> Path:
    """A worktree of `ref` in the system temp folder (reused when it exists already)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True,
                         capture_output=True, text=True).stdout.strip()
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"opm-ml-{sha}"
    if not (folder / "opm_ml").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), sha],
                       check=True, capture_output=True)
    return folder


def old_env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root)}


def old_python(root: Path, args: list[str]) -> str:
    """stdout of `python args...` run from the old checkout's root (as its benchmarks are run:
    from `benchmarks/`, `import serving` would find serving.py instead of the package)."""
    done = subprocess.run([sys.executable, *args], cwd=root, env=old_env(root),
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the old benchmark failed:\n{done.stderr[-4000:]}")
    return done.stdout


def train_old(root: Path, folder: Path, projects: int) -> str:
    """Champion models of the old checkout's default specs in `folder`; returns the URI."""
    script = ("import sys; from pathlib import Path; sys.path.insert(0, 'benchmarks'); "
              "from harness import registry_settings, train_champions, write_history; "
              "s = registry_settings(Path(sys.argv[1])); "
              "train_champions(s, write_history(s, int(sys.argv[2]))); "
              "print(s.mlflow_tracking_uri)")
    folder.mkdir(parents=True, exist_ok=True)
    return old_python(root, ["-c", script, str(folder), str(projects)]).strip().splitlines()[-1]


def parse_markdown(text: str) -> list[tuple[str, str, str]]:
    """(measurement, setting, result) rows of a benchmark's Markdown table."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and line.startswith("|") and not set(cells[0]) <= set("-") \
                and cells[0] != "measurement":
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def speed(result: str) -> tuple[float, bool] | None:
    """The result's leading figure and whether bigger is better, or None."""
    for pattern, bigger in _UNITS:
        found = pattern.search(result)
        if found:
            return float(found.group(1).replace(",", "")), bigger
    return None


def _keyed(rows: list[tuple[str, str, str]]) -> dict:
    """(label, n-th time the label appears) -> (setting, result)."""
    seen: dict[str, int] = {}
    out = {}
    for what, setting, result in rows:
        seen[what] = seen.get(what, 0) + 1
        out[what, seen[what]] = (setting, result)
    return out


def _figures(results: list[str]) -> str:
    """One round's result as it is; several rounds as the range of their leading figures."""
    if len(results) == 1:
        return results[0]
    figures = [speed(r) for r in results]
    if any(f is None for f in figures):
        return " / ".join(results)
    values = sorted(f[0] for f in figures)
    unit = _UNITS_TEXT.get(next(p for p, _ in _UNITS if p.search(results[0])).pattern, "")
    digits = 0 if values[0] >= 100 else 2  # rows/s as counts, milliseconds to 0.01
    return f"{values[0]:,.{digits}f}-{values[-1]:,.{digits}f}{unit} ({len(values)} rounds)"


_UNITS_TEXT = {p.pattern: text for (p, _), text in zip(
    _UNITS, (" ms p50", " req/s", " rows/s", "x"))}


def side_by_side(old: list[list[tuple[str, str, str]]], new: list[list[tuple[str, str, str]]],
                 ref: str) -> str:
    """Rows measured by both (each a list of rounds), matched by label and order of
    appearance, with the ratio of the medians of their leading figures (new/old speed)."""
    olds, news = [_keyed(r) for r in old], [_keyed(r) for r in new]
    lines = [f"| measurement | setting (new, last round) | {ref} | this tree | speed new/old |",
             "|---|---|---|---|---|"]
    for key, (setting, _) in news[-1].items():
        if any(key not in o for o in olds) or any(key not in n for n in news):
            continue
        before, after = [o[key][1] for o in olds], [n[key][1] for n in news]
        ratio = ""
        a, b = [speed(r) for r in before], [speed(r) for r in after]
        if all(a) and all(b):
            old_mid = float(np.median([x[0] for x in a]))
            new_mid = float(np.median([x[0] for x in b]))
            if old_mid and new_mid:
                ratio = f"{(new_mid / old_mid) if a[0][1] else (old_mid / new_mid):.2f}x"
        lines.append(f"| {key[0]} | {setting} | {_figures(before)} | {_figures(after)} | "
                     f"{ratio} |")
    return "\n".join(lines)
