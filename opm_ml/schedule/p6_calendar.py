"""P6's calendar blob (`CALENDAR.clndr_data`): a parenthesised tree, read and written.

    (0||CalendarData()((0||DaysOfWeek()((0||1()())(0||2()((0||0(s|08:00|f|12:00)())...)))
                       (0||Exceptions()((0||0(d|43650)())...))))

Day nodes 1..7 are Sunday..Saturday; each child is a working interval (`s|HH:MM|f|HH:MM`, in
either order; a finish of 00:00 means midnight at the end of the day). Exceptions are dated
by spreadsheet serial day (`d|43650`); no children means a non-working day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from opm_ml.schedule.calendars import excel_serial_date, to_excel_serial
from opm_ml.schedule.model import Calendar, Interval, ScheduleError

_P6_DAY_TO_WEEKDAY = {1: 6, 2: 0, 3: 1, 4: 2, 5: 3, 6: 4, 7: 5}  # P6 1=Sunday; ours 0=Monday


@dataclass
class _Node:
    name: str
    params: list[str]
    children: list[_Node] = field(default_factory=list)

    def child(self, name: str) -> _Node | None:
        return next((c for c in self.children if c.name == name), None)


class _Parser:
    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def expect(self, char: str) -> None:
        if self.pos >= len(self.text) or self.text[self.pos] != char:
            found = self.text[self.pos:self.pos + 10] or "the end of the data"
            raise ValueError(f"expected {char!r} at character {self.pos}, found {found!r}")
        self.pos += 1

    def until(self, char: str) -> str:
        end = self.text.find(char, self.pos)
        if end < 0:
            raise ValueError(f"unterminated element at character {self.pos}")
        out, self.pos = self.text[self.pos:end], end
        return out

    def node(self) -> _Node:
        self.expect("(")
        self.until("|")
        self.expect("|")
        self.expect("|")
        name = self.until("(")
        self.expect("(")
        params = self.until(")")
        self.expect(")")
        self.expect("(")
        children = []
        while self.pos < len(self.text) and self.text[self.pos] == "(":
            children.append(self.node())
        self.expect(")")
        self.expect(")")
        return _Node(name.strip(), [p.strip() for p in params.split("|")] if params else [],
                     children)


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _interval(node: _Node) -> Interval:
    values = dict(zip(node.params[::2], node.params[1::2]))
    start, finish = _minutes(values["s"]), _minutes(values["f"])
    if finish <= start:  # "f|00:00" closes the day at midnight
        finish += 1440
    return (start, finish)


def parse_calendar_data(cal_id: str, name: str, data: str, hours_per_day: float,
                        base: Calendar | None = None) -> Calendar:
    """A `Calendar` from a clndr_data blob (days missing from it come from `base`)."""
    try:
        # P6 20+ indents the tree; 0x7F is P6's line break inside text fields.
        root = _Parser(re.sub(r"[\s\x7f]", "", data)).node()
        week = [list(base.week[d]) if base else [] for d in range(7)]
        days = root.child("DaysOfWeek")
        if days is not None:
            for day in days.children:
                week[_P6_DAY_TO_WEEKDAY[int(day.name)]] = sorted(
                    _interval(iv) for iv in day.children)
        exceptions = dict(base.exceptions) if base else {}
        found = root.child("Exceptions")
        for exc in found.children if found else []:
            values = dict(zip(exc.params[::2], exc.params[1::2]))
            exceptions[excel_serial_date(int(float(values["d"])))] = tuple(
                sorted(_interval(iv) for iv in exc.children))
    except (ValueError, KeyError, IndexError) as err:
        raise ScheduleError(f"calendar {cal_id} {name!r}: clndr_data is truncated or malformed "
                            f"({err})") from None
    return Calendar(cal_id, name, tuple(tuple(d) for d in week), exceptions, hours_per_day)


def format_calendar_data(calendar: Calendar) -> str:
    """The clndr_data blob P6 would write for `calendar`."""
    def intervals(ivs) -> str:
        return "".join(f"(0||{k}(s|{s // 60:02d}:{s % 60:02d}|f|{e % 1440 // 60:02d}:"
                       f"{e % 60:02d})())" for k, (s, e) in enumerate(ivs))

    reverse = {v: k for k, v in _P6_DAY_TO_WEEKDAY.items()}
    days = "".join(f"(0||{reverse[d]}()({intervals(calendar.week[d])}))"
                   for d in sorted(range(7), key=lambda d: reverse[d]))
    exceptions = "".join(f"(0||{k}(d|{to_excel_serial(day)})({intervals(ivs)}))"
                         for k, (day, ivs) in enumerate(sorted(calendar.exceptions.items())))
    return (f"(0||CalendarData()((0||DaysOfWeek()({days}))"
            f"(0||Exceptions()({exceptions}))))")
