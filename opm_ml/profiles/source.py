"""The files of an export as read, before any cell is parsed: the main file (joined to the
extra files the profile names, one row per key when asked) and an optional snapshots file.

Each file must hold the columns of the table it feeds: the projects file the plan, outcome
and intake columns, the snapshots file the project id and the status columns (with repeated
status reports, one file holds both). A missing column, an unreadable or header-only file,
a join or deduplicate key that is not a column: each is one ProfileError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from opm_ml.profiles.profile import Profile, ProfileError
from opm_ml.profiles.roles import ALTERNATIVES, ROLES

SOURCE_ROW = "_source_row"
# A UTF-8 byte-order mark, as read by UTF-8 and by a one-byte code page such as cp1252.
BOMS = ("\ufeff", "\u00ef\u00bb\u00bf")


def read_source(profile: Profile, path: str | Path, table: str = "projects",
                notes: list[str] | None = None) -> pd.DataFrame:
    """The rows of one file of the export (text cells for CSV), with their file row numbers.

    `table`: "projects" (the main file: joins and de-duplication apply; with repeated status
    reports it holds the snapshot columns too) or "snapshots" (a file of status reports).
    What reading decides (rows dropped as duplicates) is appended to `notes`.
    """
    path = Path(path)
    frame = read_file(path, profile.read)
    frame[SOURCE_ROW] = np.arange(1, len(frame) + 1)
    if table == "projects":
        for i, join in enumerate(profile.read.get("join", ())):
            frame = _joined(frame, path, join, i, profile)
        frame = _deduplicated(frame, path, profile, notes)
    missing = sorted({c for c in source_columns(profile, table) if c not in frame.columns})
    if missing:
        raise ProfileError(f"{path}: has no column(s) {', '.join(map(repr, missing))} that "
                           f"{profile.source} maps")
    return frame


def source_columns(profile: Profile, table: str) -> set[str]:
    """The file columns a table reads ("projects", "snapshots"): its roles and features."""
    reports = bool(profile.read.get("reports"))
    if table == "projects" and reports:
        return source_columns(profile, "snapshots") | source_columns(profile, "plan") | {
            profile.read["reports"]["date"]}
    snapshot = table == "snapshots"
    columns = {c for r, c in profile.roles.items()
               if (ROLES[ALTERNATIVES.get(r, r)].stage == "snapshot") == snapshot
               or r == "project_id"}
    columns |= {f.column for f in profile.features if (f.stage == "snapshot") == snapshot}
    if not snapshot:
        columns |= set(profile.role_efforts.values())
        if profile.read.get("finished"):
            columns.add(profile.read["finished"]["column"])
    return columns


def read_file(path: Path, read: dict) -> pd.DataFrame:
    """One file as a frame: CSV cells as text, Parquet typed, ARFF typed by its header."""
    fmt = read.get("format") or path.suffix.lower().lstrip(".")
    if not path.is_file():
        raise ProfileError(f"{path}: no such file")
    if fmt not in ("csv", "parquet", "arff"):
        raise ProfileError(f"{path}: read.format must be csv, parquet or arff, got {fmt!r}")
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, sep=read.get("separator", ","), dtype=str,
                                encoding=read.get("encoding", "utf-8"), keep_default_na=True,
                                na_values=read.get("missing", []), skip_blank_lines=True)
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            from opm_ml.real_data._io import read_arff

            frame = read_arff(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ProfileError(f"{path}: cannot read as {fmt}: "
                           f"{str(exc).strip().splitlines()[0]}") from None
    if frame.empty:
        raise ProfileError(f"{path}: has no data rows (only a header): nothing to read")
    return frame.rename(columns=_without_bom)


def _without_bom(name) -> str:
    name = str(name)
    for bom in BOMS:
        name = name.removeprefix(bom)
    return name


def _joined(frame: pd.DataFrame, path: Path, join: dict, i: int,
            profile: Profile) -> pd.DataFrame:
    """`frame` with the columns of a joined file (its first row per key)."""
    extra = read_file(path.parent / join["file"], {**profile.read, **join})
    key = join["on"]
    for table, where in ((frame, path.name), (extra, join["file"])):
        if key not in table.columns:
            raise ProfileError(f"{profile.source}: read.join[{i}].on {key!r} is not a column "
                               f"of {where}")
    return frame.merge(extra.drop_duplicates(key), on=key, how="left", suffixes=("", "_joined"))


def _deduplicated(frame: pd.DataFrame, path: Path, profile: Profile,
                  notes: list[str] | None) -> pd.DataFrame:
    key = profile.read.get("deduplicate")
    if not key:
        return frame
    keys = [key] if isinstance(key, str) else list(key)
    absent = [k for k in keys if k not in frame.columns]
    if absent:
        raise ProfileError(f"{profile.source}: read.deduplicate {absent[0]!r} is not a column "
                           f"of {path.name}")
    kept = frame.drop_duplicates(keys, keep="first")
    if notes is not None:
        notes.append(f"{path.name}: {len(frame) - len(kept):,} of {len(frame):,} rows dropped "
                     f"as repeats of an earlier row's {', '.join(keys)} (read.deduplicate): "
                     f"{len(kept):,} kept")
    return kept
