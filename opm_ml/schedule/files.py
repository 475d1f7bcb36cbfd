"""One entry point for schedule files: detect the format from the content, read or write it.

P6 XER starts with `ERMHDR`; MS Project XML has root `<Project>`; P6 XML root
`<APIBusinessObjects>`. Anything else is refused with a one-line `ScheduleError`.
"""

from __future__ import annotations

import re
from pathlib import Path

from opm_ml.schedule.cpm import CPMResult
from opm_ml.schedule.model import Schedule, ScheduleError

_SNIFF_BYTES = 4096


def detect_format(path: Path | str, data: bytes | None = None) -> str:
    """"xer", "mspdi" or "pmxml" from the first bytes of the file (or of `data`)."""
    path = Path(path)
    if data is None:
        try:
            with path.open("rb") as handle:
                head = handle.read(_SNIFF_BYTES)
        except OSError as err:
            raise ScheduleError(f"{path.name}: cannot read the file ({err.strerror})") from None
    else:
        head = data[:_SNIFF_BYTES]
    if not head.strip():
        raise ScheduleError(f"{path.name}: the file is empty")
    if head.lstrip(b"\xef\xbb\xbf").startswith(b"ERMHDR"):
        return "xer"
    text = head.decode("utf-8", errors="replace")
    if "<APIBusinessObjects" in text:
        return "pmxml"
    if "<Project" in text:
        return "mspdi"
    raise ScheduleError(f"{path.name}: not a schedule file this tool reads (P6 XER, P6 XML or "
                        "MS Project XML)")


def read_schedule(path: Path | str, data: bytes | None = None) -> Schedule:
    """Read a P6 XER, P6 XML or MS Project XML file into a `Schedule`; given `data` (an
    upload's bytes), read those instead, `path` only naming the file in messages."""
    from opm_ml.schedule.mspdi import read_mspdi
    from opm_ml.schedule.pmxml import read_pmxml
    from opm_ml.schedule.xer import read_xer

    readers = {"xer": read_xer, "mspdi": read_mspdi, "pmxml": read_pmxml}
    return readers[detect_format(path, data)](path, data)


def count_activities(data: bytes, name: str = "upload") -> int:
    """How many activity records a schedule file holds, counted in its raw bytes before any
    parsing (so a limit can refuse a huge network cheaply): XER `%R` rows of table TASK,
    MSPDI `<Task>` elements (summary tasks included), P6 XML `<Activity>` elements. An upper
    bound of the activities `read_schedule` returns."""
    kind = detect_format(name, data)
    if kind == "xer":
        marker = b"%T\tTASK"
        start = data.find(marker)
        while start >= 0 and data[start + len(marker):start + len(marker) + 1] not in (
                b"\r", b"\n", b"\t", b""):
            start = data.find(marker, start + 1)  # TASKPRED, TASKRSRC... are other tables
        if start < 0:
            return 0
        end = data.find(b"\n%T\t", start + 1)
        return data.count(b"\n%R\t", start, len(data) if end < 0 else end)
    tag = b"Task" if kind == "mspdi" else b"Activity"
    return sum(1 for _ in re.finditer(rb"<(?:[A-Za-z_][\w.-]*:)?" + tag + rb"[\s/>]", data))


def write_schedule(schedule: Schedule, path: Path | str, cpm: CPMResult | None = None) -> Path:
    """Write as XER (`.xer`) or MSPDI (`.xml`), chosen by the file suffix."""
    from opm_ml.schedule.mspdi_writer import write_mspdi
    from opm_ml.schedule.xer_writer import write_xer

    suffix = Path(path).suffix.lower()
    if suffix == ".xer":
        return write_xer(schedule, path, cpm)
    if suffix == ".xml":
        return write_mspdi(schedule, path)
    raise ScheduleError(f"{Path(path).name}: write .xer (P6) or .xml (MS Project), "
                        f"not {suffix or 'no suffix'}")
