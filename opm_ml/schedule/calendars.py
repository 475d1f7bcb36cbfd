"""Working time as arrays: each calendar becomes sorted working intervals on a minute axis.

Instants are float minutes since 1970-01-01 (naive local time). A `Timeline` maps an instant to
the working minutes done since its origin and back, with `np.searchsorted`, so the CPM and the
Monte Carlo convert whole arrays of dates between calendars in one call each.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np

from opm_ml.schedule.model import Calendar, ScheduleError

_EPOCH = datetime(1970, 1, 1)
HORIZON_YEARS_BEFORE = 5  # before the earliest date a schedule holds
HORIZON_YEARS_AFTER = 100  # after it: room for Monte Carlo tails of long programmes


def to_minutes(value: datetime) -> float:
    """Minutes since 1970-01-01 00:00 of a naive datetime."""
    return (value - _EPOCH) / timedelta(minutes=1)


def from_minutes(minutes: float) -> datetime:
    """The datetime at `minutes` since the epoch, rounded to the minute."""
    return _EPOCH + timedelta(minutes=round(float(minutes)))


def minutes_to_datetimes(minutes: np.ndarray) -> np.ndarray:
    """Vectorised `from_minutes` as numpy datetime64[m]."""
    return np.round(np.asarray(minutes, dtype=float)).astype("int64").astype("datetime64[m]")


class Timeline:
    """One calendar's working intervals from `first_day` for the horizon, as numpy arrays.

    `work_at(t)`: working minutes between the origin and instant t. `start_at(w)`: the instant
    working minute w begins (after a break, the next working start). `finish_at(w)`: the
    instant w working minutes are done (before a break, the end of the last working period).
    """

    def __init__(self, calendar: Calendar, first_day: date,
                 years: int = HORIZON_YEARS_BEFORE + HORIZON_YEARS_AFTER):
        self.calendar = calendar
        day0 = int(np.datetime64(first_day, "D").astype(np.int64))
        days = day0 + np.arange(int(years * 365.25), dtype=np.int64)
        # 1970-01-01 was a Thursday: weekday 0 = Monday.
        weekday = (days + 3) % 7
        exception_days = {int(np.datetime64(d, "D").astype(np.int64)): ivs
                          for d, ivs in calendar.exceptions.items()}
        regular = ~np.isin(days, np.fromiter(exception_days, dtype=np.int64,
                                              count=len(exception_days)))
        starts, ends = [], []
        for wd, intervals in enumerate(calendar.week):
            chosen = days[(weekday == wd) & regular] * 1440
            for s, e in intervals:
                starts.append(chosen + s)
                ends.append(chosen + e)
        for day, intervals in exception_days.items():
            if days[0] <= day <= days[-1]:
                starts.append(np.array([day * 1440 + s for s, _ in intervals], dtype=np.int64))
                ends.append(np.array([day * 1440 + e for _, e in intervals], dtype=np.int64))
        s = np.concatenate(starts)
        e = np.concatenate(ends)
        order = np.argsort(s, kind="stable")
        s, e = s[order], e[order]
        if len(s) == 0:
            raise ScheduleError(f"calendar {calendar.id!r} ({calendar.name}) has no working "
                                "time at all")
        # Merge touching intervals (a 24-hour calendar is then one interval).
        new = np.ones(len(s), dtype=bool)
        new[1:] = s[1:] > e[:-1]
        self.starts = s[new].astype(float)
        self.ends = np.maximum.reduceat(e, np.flatnonzero(new)).astype(float)
        lengths = self.ends - self.starts
        self.cum_end = np.cumsum(lengths)
        self.cum = self.cum_end - lengths
        self.first, self.last = float(days[0] * 1440), float((days[-1] + 1) * 1440)

    def _check(self, index: np.ndarray, what: str) -> None:
        if np.size(index) and (np.min(index) < 0 or np.max(index) >= len(self.starts)):
            raise ScheduleError(
                f"calendar {self.calendar.id!r}: a {what} falls outside its horizon "
                f"{from_minutes(self.first):%Y-%m-%d} to {from_minutes(self.last):%Y-%m-%d}; "
                "check the schedule's dates and durations")

    def work_at(self, t):
        """Working minutes done between the origin and instant(s) t."""
        t = np.asarray(t, dtype=float)
        i = np.searchsorted(self.starts, t, side="right") - 1
        if np.size(t) and (np.min(t) < self.first or np.max(t) > self.last):
            self._check(np.array([-1]), "date")
        i = np.maximum(i, 0)
        return self.cum[i] + np.clip(t - self.starts[i], 0.0, self.ends[i] - self.starts[i])

    def finish_at(self, w):
        """Earliest instant at which `w` working minutes are done."""
        w = np.asarray(w, dtype=float)
        i = np.searchsorted(self.cum_end, w, side="left")
        self._check(i, "finish")
        return self.starts[i] + (w - self.cum[i])

    def start_at(self, w):
        """Instant at which working minute `w` begins (skips the break after a period's end)."""
        w = np.asarray(w, dtype=float)
        i = np.searchsorted(self.cum_end, w, side="right")
        self._check(i, "start")
        return self.starts[i] + (w - self.cum[i])

    def next_start(self, t):
        """The first working instant at or after t."""
        return self.start_at(self.work_at(t))

    def previous_finish(self, t):
        """The last working instant at or before t (end of the period t falls after)."""
        return self.finish_at(self.work_at(t))


def excel_serial_date(serial: int) -> date:
    """P6 calendar exceptions count days from 1899-12-30 (the spreadsheet epoch)."""
    return date(1899, 12, 30) + timedelta(days=int(serial))


def to_excel_serial(day: date) -> int:
    return (day - date(1899, 12, 30)).days
