"""Forward and backward CPM passes over many duration scenarios at once (numpy).

Every date is held in working minutes of the activity's own calendar, as arrays of shape
(activities, scenarios): the deterministic CPM is one scenario, a Monte Carlo chunk thousands.
The loop runs once per activity in topological order (computed once, in `network`); each step
is a handful of array operations over all scenarios. Links whose predecessor, successor and
lag calendars are the same add the lag directly; the others convert through instants with the
calendars' `Timeline`s (a lag counts working time on its lag calendar).

Progress follows P6's retained logic: finished activities keep their actual dates; started
ones keep their actual start and resume no earlier than the data date, after their unfinished
finish-side predecessors (FS, FF, SF); start-to-start links into a started activity are spent.
With progress override (`Schedule.retained_logic = False`) a started activity ignores its
predecessors. Constraints: start/finish on or after raise the early dates, on or before cap
the late dates, "on" does both, mandatory start/finish fix them whatever the logic.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from opm_ml.schedule.calendars import to_minutes
from opm_ml.schedule.network import COMPLETE, IN_PROGRESS, NOT_STARTED, Network

FS, SS, FF, SF = 0, 1, 2, 3
_START_SOURCE = (False, True, False, True)  # link type -> predecessor side is its start
_START_TARGET = (True, True, False, False)  # link type -> successor side is its start


class PassPlan:
    """Per-activity link groups and constraint bounds, built once per network."""

    def __init__(self, net: Network):
        self.net = net
        n = net.n
        started = net.status != NOT_STARTED
        retained = net.schedule.retained_logic
        s_status, p_status = net.status[net.succ], net.status[net.pred]
        forward = ((s_status == NOT_STARTED)
                   | ((s_status == IN_PROGRESS) & retained & (net.type != SS)))
        backward = forward & (p_status != COMPLETE) & ~(
            (p_status == IN_PROGRESS) & np.isin(net.type, (SS, SF)))
        fast = (net.cal[net.pred] == net.cal[net.succ]) & (
            (net.lag == 0) | (net.lag_cal == net.cal[net.pred]))
        self.forward_active, self.backward_active, self.fast = forward, backward, fast
        self.in_fast = [[None] * 4 for _ in range(n)]
        self.in_slow: list[list[int]] = [[] for _ in range(n)]
        self.out_fast = [[None] * 4 for _ in range(n)]
        self.out_slow: list[list[int]] = [[] for _ in range(n)]
        for t in range(4):
            for mask, holder, own, other in ((forward, self.in_fast, net.succ, net.pred),
                                             (backward, self.out_fast, net.pred, net.succ)):
                sel = np.flatnonzero(mask & fast & (net.type == t))
                for i in np.unique(own[sel]):
                    links = sel[own[sel] == i]
                    holder[i][t] = (other[links], net.lag[links][:, None])
        for link in np.flatnonzero(forward & ~fast):
            self.in_slow[net.succ[link]].append(int(link))
        for link in np.flatnonzero(backward & ~fast):
            self.out_slow[net.pred[link]].append(int(link))
        self.single_calendar = len(np.unique(net.cal)) == 1
        self._bounds(net, started)

    def _bounds(self, net: Network, started: np.ndarray) -> None:
        """Data date, actual dates and constraint dates in each activity's working minutes."""
        n = net.n
        own = [net.timelines[c] for c in net.cal]
        self.data_date = np.array([tl.work_at(net.data_date) for tl in own])
        self.actual_start = np.array([tl.work_at(t) if s else np.nan
                                      for tl, t, s in zip(own, net.actual_start, started)])
        if not net.schedule.resume_at_data_date:
            done = np.array([a.duration_hours * 60.0 for a in net.activities]) - net.remaining
            resume = np.where(net.status == IN_PROGRESS, self.actual_start + np.maximum(done, 0),
                              -np.inf)
            self.data_date = np.maximum(self.data_date, resume)
        self.actual_finish = np.array([tl.work_at(t) if st == COMPLETE else np.nan
                                       for tl, t, st in zip(own, net.actual_finish, net.status)])
        bounds = {k: np.full(n, np.nan) for k in ("start_floor", "finish_floor", "start_cap",
                                                   "finish_cap", "start_fix", "finish_fix")}
        roles = {"SNET": ("start_floor",), "FNET": ("finish_floor",), "SNLT": ("start_cap",),
                 "FNLT": ("finish_cap",), "SO": ("start_floor", "start_cap"),
                 "FO": ("finish_floor", "finish_cap"), "MSO": ("start_fix",),
                 "MFO": ("finish_fix",), "ALAP": ()}
        for i, a in enumerate(net.activities):
            for kind, when in ((a.constraint, a.constraint_date),
                               (a.constraint2, a.constraint2_date)):
                if kind is None or when is None:
                    continue
                w = float(own[i].work_at(to_minutes(when)))
                for key in roles[kind]:
                    old = bounds[key][i]
                    pick = min if key.endswith("cap") else max
                    bounds[key][i] = w if np.isnan(old) else pick(old, w)
        self.__dict__.update(bounds)

    # -- link conversions between calendars (slow path) ------------------------------------
    def _shift(self, value, source_cal: int, source_is_start: bool, lag: float, lag_cal: int,
               target_cal: int) -> np.ndarray:
        """A date in `source_cal` minutes, moved by `lag` working minutes of `lag_cal`, as
        `target_cal` minutes (a later date is reached at a finish, an earlier at a start)."""
        timelines = self.net.timelines
        source = timelines[source_cal]
        instant = source.start_at(value) if source_is_start else source.finish_at(value)
        if lag != 0:
            tl = timelines[lag_cal]
            w = tl.work_at(instant) + lag
            instant = tl.finish_at(w) if lag > 0 else tl.start_at(w)
        return timelines[target_cal].work_at(instant)

    def forward_link(self, link: int, value: np.ndarray) -> np.ndarray:
        """Bound a link puts on its successor (start or finish), in the successor's minutes."""
        net = self.net
        return self._shift(value, net.cal[net.pred[link]], _START_SOURCE[net.type[link]],
                           net.lag[link], net.lag_cal[link], net.cal[net.succ[link]])

    def backward_link(self, link: int, value: np.ndarray) -> np.ndarray:
        """Bound a link puts on its predecessor (start or finish), in its own minutes."""
        net = self.net
        return self._shift(value, net.cal[net.succ[link]], _START_TARGET[net.type[link]],
                           -net.lag[link], net.lag_cal[link], net.cal[net.pred[link]])

    # -- the passes -------------------------------------------------------------------------
    def forward(self, duration: np.ndarray):
        """Early dates for remaining durations `duration` (n, k): (start, resume, finish).

        `start` is the actual start of started activities, `resume` when their remaining
        work begins (the early start of not-started ones), `finish` the early finish.
        """
        net = self.net
        n, k = duration.shape
        start = np.empty((n, k))
        resume = np.empty((n, k))
        finish = np.empty((n, k))
        for i in range(n):
            status = net.status[i]
            if status == COMPLETE:
                start[i] = self.actual_start[i]
                resume[i] = finish[i] = self.actual_finish[i]
                continue
            d = duration[i]
            on_start = [np.full(k, self.data_date[i])]
            on_finish = []
            groups = self.in_fast[i]
            for t, holder, side in ((FS, on_start, finish), (SS, on_start, start),
                                    (FF, on_finish, finish), (SF, on_finish, start)):
                if groups[t] is not None:
                    preds, lags = groups[t]
                    holder.append((side[preds] + lags).max(axis=0))
            for link in self.in_slow[i]:
                t = net.type[link]
                value = (start if _START_SOURCE[t] else finish)[net.pred[link]]
                (on_start if _START_TARGET[t] else on_finish).append(
                    self.forward_link(link, value))
            es = reduce(np.maximum, on_start)
            if on_finish:
                es = np.maximum(es, reduce(np.maximum, on_finish) - d)
            es = self._constrain_early(i, es, d)
            resume[i] = es
            finish[i] = es + d
            start[i] = self.actual_start[i] if status == IN_PROGRESS else es
        return start, resume, finish

    def _constrain_early(self, i: int, es: np.ndarray, d: np.ndarray) -> np.ndarray:
        if not np.isnan(self.start_floor[i]):
            es = np.maximum(es, self.start_floor[i])
        if not np.isnan(self.finish_floor[i]):
            es = np.maximum(es, self.finish_floor[i] - d)
        if not np.isnan(self.start_fix[i]):
            es = np.full_like(es, self.start_fix[i])
        if not np.isnan(self.finish_fix[i]):
            es = self.finish_fix[i] - d
        return es

    def project_finish(self, finish: np.ndarray) -> np.ndarray:
        """Instant(s) the project finishes: the latest early finish over all activities."""
        net = self.net
        if self.single_calendar:
            return net.timelines[net.cal[0]].finish_at(finish.max(axis=0))
        out = None
        for c in np.unique(net.cal):
            rows = finish[net.cal == c].max(axis=0)
            instant = net.timelines[c].finish_at(rows)
            out = instant if out is None else np.maximum(out, instant)
        return out

    def backward(self, duration: np.ndarray, finish_instant: np.ndarray):
        """Late dates (late resume = remaining late start, late finish), shape (n, k)."""
        net = self.net
        n, k = duration.shape
        if net.must_finish_by is not None:
            finish_instant = np.full(k, net.must_finish_by)
        late_start = np.full((n, k), np.nan)
        late_finish = np.full((n, k), np.nan)
        per_cal = {c: net.timelines[c].work_at(finish_instant) for c in np.unique(net.cal)}
        for i in range(n - 1, -1, -1):
            if net.status[i] == COMPLETE:
                continue
            d = duration[i]
            on_finish = [per_cal[net.cal[i]]]
            on_start = []
            groups = self.out_fast[i]
            for t, holder, side in ((FS, on_finish, late_start), (SS, on_start, late_start),
                                    (FF, on_finish, late_finish), (SF, on_start, late_finish)):
                if groups[t] is not None:
                    succs, lags = groups[t]
                    holder.append((side[succs] - lags).min(axis=0))
            for link in self.out_slow[i]:
                t = net.type[link]
                value = (late_start if _START_TARGET[t] else late_finish)[net.succ[link]]
                (on_start if _START_SOURCE[t] else on_finish).append(
                    self.backward_link(link, value))
            lf = reduce(np.minimum, on_finish)
            if on_start:
                lf = np.minimum(lf, reduce(np.minimum, on_start) + d)
            lf = self._constrain_late(i, lf, d)
            late_finish[i] = lf
            late_start[i] = lf - d
        return late_start, late_finish

    def _constrain_late(self, i: int, lf: np.ndarray, d: np.ndarray) -> np.ndarray:
        if not np.isnan(self.finish_cap[i]):
            lf = np.minimum(lf, self.finish_cap[i])
        if not np.isnan(self.start_cap[i]):
            lf = np.minimum(lf, self.start_cap[i] + d)
        if not np.isnan(self.start_fix[i]):
            lf = self.start_fix[i] + d
        if not np.isnan(self.finish_fix[i]):
            lf = np.full_like(lf, self.finish_fix[i])
        return lf
