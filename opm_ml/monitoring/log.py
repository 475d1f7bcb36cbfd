"""The prediction log: every forecast written to the service database off the hot path.

`record` costs a request one timestamp and a queue append. A background thread turns queued
requests into rows and inserts them in batches (waiting up to `linger_seconds` for more to
share a transaction), one transaction each; a record counts as
written only once its transaction has committed, so a restart loses nothing counted as
written. The queue is bounded (in rows): when it is full a request's records are dropped and
counted by reason, with a log line at most every `LOG_EVERY` seconds, never a slower answer.
While the database is down (at start-up or later) the writer keeps what it holds, logs the
outage, retries every `retry_seconds` and writes the backlog once the database is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice

from sqlalchemy import JSON, Table, Text, bindparam, insert

from opm_ml import database
from opm_ml.database.engine import safe_url
from opm_ml.database.tables import prediction_log, prediction_log_forecast
from opm_ml.monitoring.records import Entry, entries_rows
from opm_ml.text import first_line

log = logging.getLogger("opm_ml.monitoring")
LOG_EVERY = 10.0  # seconds between repeated "dropped" lines
HOLD_SECONDS = 30.0  # the longest a `held` block defers a write


@dataclass(frozen=True)
class LogStats:
    """Counters of a prediction log (rows): what /metrics and the reports show."""

    written: int
    dropped: Mapping[str, int]  # reason -> rows: queue_full | shutdown | error
    queued: int
    database_up: bool
    last_error: str | None


class PredictionLog:
    """Bounded queue plus one writer thread for the database at `url` (see module docstring)."""

    def __init__(self, url: str, capacity: int = 20_000, batch_rows: int = 2_000,
                 retry_seconds: float = 5.0, shutdown_seconds: float = 10.0,
                 linger_seconds: float = 0.2):
        self.url, self.capacity, self.batch_rows = url, capacity, batch_rows
        self.retry_seconds, self.shutdown_seconds = retry_seconds, shutdown_seconds
        self.linger_seconds = linger_seconds
        self._items: deque[Entry] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._holds = 0
        self._deadline = float("inf")
        self._written = 0
        self._dropped: Counter[str] = Counter()
        self._up = False
        self._outage: tuple[float, int] | None = None  # (since, dropped rows then)
        self._last_error: str | None = None
        self._last_drop_line = 0.0

    # --- the hot path ---------------------------------------------------------------------------

    def record(self, source: str, inputs, forecasts: Mapping, models: Mapping[str, tuple],
               block: float = 0.0) -> bool:
        """Queue one request's forecasts; False (and counted as dropped) if the queue is full.

        `models`: family -> (registered name, version). `block` > 0 waits up to that many
        seconds for room while the database takes writes (batch scoring, where waiting is
        fine; during an outage it drops at once rather than stall); the API never waits.
        """
        entry = Entry(source, datetime.now(timezone.utc), inputs, forecasts, models)
        with self._cond:
            if self._thread is None and not self._stopping:
                self._start()
            if block > 0:
                room = self._has_room(entry.rows)
                self._cond.wait_for(lambda: room() or self._outage is not None, timeout=block)
            if self._stopping or not self._has_room(entry.rows)():
                reason = "shutdown" if self._stopping else "queue_full"
                self._dropped[reason] += entry.rows
                self._report_drop(reason)
                return False
            self._items.append(entry)
            self._queued += entry.rows
            # Wake the writer only when it has something new to do (it lingers for more):
            # a wake-up per request would cost every request a thread switch.
            if self._queued == entry.rows or self._queued >= self.batch_rows:
                self._cond.notify_all()
        return True

    def _has_room(self, rows: int):
        # A request larger than the whole queue still goes in once the queue is empty.
        return lambda: self._queued == 0 or self._queued + rows <= self.capacity

    # --- control --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer (it connects and migrates at once, so an outage shows at start-up).

        Also after `stop`: until then, records arriving after a stop are dropped as shutdown.
        """
        with self._cond:
            self._stopping, self._deadline = False, float("inf")
            if self._thread is None:
                self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="opm-prediction-log", daemon=True)
        self._thread.start()

    @contextmanager
    def held(self) -> Iterator[None]:
        """No write starts inside the block, unless the queue is half full, the log stops or
        `HOLD_SECONDS` pass: a large batch's LightGBM threads keep both cores (OpenMP waits
        for its slowest thread, so a writer on one of them slows the whole chunk; measured on
        a 10,000-project request over HTTP: 9 %). The writes follow the block."""
        with self._cond:
            self._holds += 1
        try:
            yield
        finally:
            with self._cond:
                self._holds -= 1
                if not self._holds:
                    self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued is written or dropped; whether it emptied in time."""
        with self._cond:
            return self._cond.wait_for(lambda: self._queued == 0, timeout=timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Write what is queued (up to `timeout`, default `shutdown_seconds`), then stop; the
        rest counts as dropped at shutdown, with a log line saying how many."""
        timeout = self.shutdown_seconds if timeout is None else timeout
        with self._cond:
            thread = self._thread
            self._stopping, self._deadline = True, time.monotonic() + timeout
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout + self.retry_seconds + 5)
        with self._cond:
            self._thread = None

    @property
    def stats(self) -> LogStats:
        with self._cond:
            return LogStats(self._written, dict(self._dropped), self._queued, self._up,
                            self._last_error)

    # --- the writer -----------------------------------------------------------------------------

    def _run(self) -> None:
        engine = None
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items or self._stopping, timeout=1.0)
                if not self._items:
                    if self._stopping:
                        return
                    continue
                # Linger a moment so requests arriving one by one share a transaction: its
                # fixed cost (connection check, begin, commit) is most of a small write.
                self._cond.wait_for(lambda: self._stopping or self._queued >= self.batch_rows,
                                    timeout=self.linger_seconds)
                self._cond.wait_for(lambda: self._stopping or not self._holds
                                    or 2 * self._queued >= self.capacity, timeout=HOLD_SECONDS)
                batch, rows = [], 0
                for entry in islice(self._items, 0, None):  # peek: removed once committed
                    if batch and rows + entry.rows > self.batch_rows:
                        break
                    batch.append(entry)
                    rows += entry.rows
            try:
                if engine is None:  # connects and migrates; stays None until that works
                    engine = database.connect(self.url)
                self._write(engine, batch)
            except database.DatabaseUnavailable as exc:
                if self._wait_out_outage(exc):
                    return
                continue
            except Exception:  # a record the tables refuse: drop it, never loop on it
                log.exception("prediction log: %d records cannot be written; dropped", rows)
                self._done(batch, rows, dropped="error")
                continue
            self._done(batch, rows)

    def _write(self, engine, batch: list[Entry]) -> None:
        log_rows, forecast_rows = entries_rows(batch)
        with database.engine.translate_errors(engine), engine.begin() as conn:
            insert_rows(conn, prediction_log, log_rows)
            insert_rows(conn, prediction_log_forecast, forecast_rows)

    def _done(self, batch: list[Entry], rows: int, dropped: str | None = None) -> None:
        with self._cond:
            for _ in batch:
                self._items.popleft()
            self._queued -= rows
            if dropped:
                self._dropped[dropped] += rows
            else:
                self._written += rows
                self._recovered()
            self._cond.notify_all()

    def _recovered(self) -> None:
        """Note a working database (called under the lock); log the end of an outage."""
        self._up, self._last_error = True, None
        if self._outage is not None:
            since, dropped_then = self._outage
            self._outage = None
            log.warning("prediction log: database %s is back after %.0f s; writing the backlog "
                        "(%d records dropped during the outage)", safe_url(self.url),
                        time.monotonic() - since, sum(self._dropped.values()) - dropped_then)

    def _wait_out_outage(self, exc: Exception) -> bool:
        """Log the outage (once), wait to retry; True when stopping and out of time."""
        with self._cond:
            self._up, self._last_error = False, first_line(exc, typed=False)
            if self._outage is None:
                self._outage = (time.monotonic(), sum(self._dropped.values()))
                log.warning("prediction log: database unavailable: %s; %d records waiting "
                            "(room for %d), retrying every %g s", self._last_error,
                            self._queued, self.capacity, self.retry_seconds)
            if self._stopping and time.monotonic() >= self._deadline:
                lost = self._queued
                self._dropped["shutdown"] += lost
                self._items.clear()
                self._queued = 0
                self._cond.notify_all()
                log.error("prediction log: stopping with the database unavailable: %d records "
                          "not written (%s)", lost, self._last_error)
                return True
            wait = min(self.retry_seconds, max(self._deadline - time.monotonic(), 0.0))
            self._cond.wait(wait)  # a stop() wakes it early
            return False

    def _report_drop(self, reason: str) -> None:
        """A log line about dropped records, at most every LOG_EVERY seconds (under the lock)."""
        now = time.monotonic()
        if now - self._last_drop_line < LOG_EVERY:
            return
        self._last_drop_line = now
        state = "database unavailable" if self._outage else "writer behind"
        log.warning("prediction log: %s (%s, queue %d/%d rows): %d records dropped so far",
                    "queue full" if reason == "queue_full" else "stopping", state, self._queued,
                    self.capacity, sum(self._dropped.values()))


def insert_rows(conn, table: Table, rows: list[tuple]) -> None:
    """Insert `rows`: tuples of every column in `table`'s order, JSON columns already as text.

    SQLite: the driver's executemany on the statement SQLAlchemy compiles, the values passed
    through the column types' own bind processors (dates as SQLAlchemy writes them) a column
    at a time: SQLAlchemy's executemany would spend as much again building parameters row by
    row. Elsewhere SQLAlchemy's own, which on PostgreSQL sends multi-row INSERTs (a round trip
    per thousand rows; the driver's executemany makes one per row, and measured slower there).
    """
    if not rows:
        return
    dialect = conn.dialect
    as_text = [c.name for c in table.columns if isinstance(c.type, JSON)]  # not serialized again
    if dialect.name == "sqlite":
        columns = list(zip(*rows))
        for i, column in enumerate(table.columns):
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None and column.name not in as_text:
                columns[i] = list(map(process, columns[i]))
        conn.exec_driver_sql(str(insert(table).compile(dialect=dialect)), list(zip(*columns)))
    else:
        statement = insert(table).values({n: bindparam(n, type_=Text()) for n in as_text})
        conn.execute(statement, [dict(zip(table.columns.keys(), row)) for row in rows])
