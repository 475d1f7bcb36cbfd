"""Safe XML reading shared by the MSPDI and P6 XML readers (no DTDs, no entity expansion).

`defusedxml` refuses entity declarations and external references, so a crafted upload can
neither expand into gigabytes nor read local files. Namespaces are dropped from tag names:
both formats use one default namespace (or none), so `Task` is unambiguous.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from opm_ml.schedule.model import ScheduleError


def read_xml(path: Path | str, data: bytes | None = None) -> Element:
    """The root element of an XML file (or of `data`, named `path`), namespaces stripped;
    errors name the file and line."""
    path = Path(path)
    if data is None:
        data = read_bytes(path)
    try:
        root = fromstring(data)
    except ParseError as err:
        line, column = err.position
        # An error on the last line means the data stopped mid-element: a cut-off upload.
        if line >= data.rstrip().count(b"\n") + 1:
            problem = "truncated: the XML ends before its elements close"
        else:
            problem = f"not well-formed XML ({str(err).split(':')[0]})"
        raise ScheduleError(f"{path.name}: the file is {problem} (line {line}, "
                            f"column {column})") from None
    except DefusedXmlException as err:
        raise ScheduleError(f"{path.name}: refused unsafe XML ({type(err).__name__}: "
                            "DTDs and entities are not allowed)") from None
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def read_bytes(path: Path) -> bytes:
    """The file's bytes; an unreadable file is a `ScheduleError` naming it."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise ScheduleError(f"{path.name}: cannot read the file ({err.strerror})") from None


def text(element: Element | None, tag: str, default: str = "") -> str:
    """Stripped text of the child `tag`, or `default` when absent or empty."""
    if element is None:
        return default
    child = element.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return default
    return child.text.strip()


def number(element: Element, tag: str, where: str, default: float | None = 0.0):
    value = text(element, tag)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ScheduleError(f"{where}: {tag} {value!r} is not a number") from None


def timestamp(element: Element, tag: str, where: str) -> datetime | None:
    """An ISO date-time child (`2018-10-18T08:00:00`), None when absent."""
    value = text(element, tag)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ScheduleError(f"{where}: {tag} {value!r} is not a date "
                            "(YYYY-MM-DDTHH:MM:SS)") from None


def clock_minutes(value: str, where: str) -> int:
    """'08:00:00' -> 480."""
    try:
        parts = [int(p) for p in value.split(":")]
        return parts[0] * 60 + parts[1]
    except (ValueError, IndexError):
        raise ScheduleError(f"{where}: time {value!r} is not HH:MM[:SS]") from None
