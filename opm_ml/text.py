"""Small text helpers shared by the command line, serving and batch scoring."""

from __future__ import annotations

import re

# user:password@ in a URI (a tracking URI may carry credentials).
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def first_line(exc: BaseException, typed: bool = True) -> str:
    """The first line of an error (with its type unless `typed=False`), for reasons and logs."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(exc).__name__}: {line}" if typed else line


def mask_credentials(text: str) -> str:
    """`scheme://user:secret@host` -> `scheme://***@host` anywhere in `text`."""
    return _USERINFO.sub(r"\g<scheme>***@", text)
