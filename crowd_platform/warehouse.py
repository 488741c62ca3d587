"""The DuckDB warehouse: one resource, one way to load SQL, one way to write, one way to describe.

Every asset writes through `write_tables`: for each table, delete the partitions of the run's
day range and insert the new rows, all in a single transaction. A crash therefore leaves the
previous state, and a re-run gives the same rows. Unpartitioned tables are replaced whole, in
the same transaction discipline.

DuckDB allows one writer process per file. `Warehouse.connect` waits for a lock held by another
process (retrying with backoff up to `lock_timeout_s`) instead of failing at once, and
`snapshot_for_reading` gives readers a private copy so that they never hold the lock for long.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from crowd_platform import settings

SCHEMAS = ("staging", "reference", "core", "marts", "event", "ops")
PARTITION_COLUMN = "event_date"
PREVIEW_ROWS = 10
# A SQL step writes consecutive days in one transaction up to this many staged events (DayRange.batches):
# a 2 M-event day peaks near 1.5 GB, under the default DuckDB memory limit of 2 GB.
EVENTS_PER_TRANSACTION = 2_000_000
LOCK_ERROR = "Could not set lock on file"
# Test-only fault injection (docs/reliability.md): inert unless the variable is set.
CRASH_HOOK_VARIABLE = "CROWD_TEST_CRASH_AFTER"
# Stages of a DuckDB checkpoint at which the hook can stop it (see _crash_in_checkpoint_for_tests).
CHECKPOINT_CRASH_STAGES = ("before_header", "after_free_list_write", "before_truncate")


class WarehouseLockedError(RuntimeError):
    """Another process held the DuckDB file's lock for longer than the lock timeout."""


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and LOCK_ERROR in str(exc)


def connect_waiting(
    path: Path, read_only: bool, config: Mapping[str, Any], timeout_s: float
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, retried with backoff while another process holds the file's lock.

    DuckDB refuses a second process at once ("Could not set lock on file"): a writer excludes
    everybody, readers exclude writers. Waiting turns two overlapping runs into one after the
    other. After `timeout_s` the last DuckDB error is raised as a WarehouseLockedError, which
    names the file and (as DuckDB reports it) the process holding the lock.
    """
    deadline = time.monotonic() + timeout_s
    delay, announced = 0.05, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=dict(config))
        except duckdb.IOException as exc:
            remaining = deadline - time.monotonic()
            if not _is_lock_error(exc):
                raise
            if remaining <= 0:
                raise WarehouseLockedError(
                    f"{path}: still locked by another process after waiting {timeout_s:g} s "
                    f"(Warehouse.lock_timeout_s): {str(exc).splitlines()[0]}"
                ) from exc
            if not announced:
                dg.get_dagster_logger().info(f"{path} is locked by another process; waiting up to {timeout_s:g} s")
                announced = True
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)


def spatial_extension_path() -> Path:
    """The spatial extension from its PyPI wheel: the network is never asked for extensions."""
    import duckdb_extension_spatial

    package_dir = Path(duckdb_extension_spatial.__file__).parent
    return package_dir / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"


def load_sql(name: str) -> str:
    """The SQL of one step, `sql/<layer>/<asset>.sql`, e.g. `load_sql("core/stays")`."""
    path = settings.SQL_DIR / f"{name}.sql"
    return path.read_text()


def sql_version(*names: str) -> str:
    """A code version for assets built by these SQL files: a hash of their text (Dagster marks
    the asset and everything downstream stale when it changes)."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + load_sql(name).encode() + b"\0")
    return digest.hexdigest()[:16]


def bind(query: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The named parameters a query uses ($name): DuckDB refuses unused ones."""
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", query))
    return {name: value for name, value in params.items() if name in used}


class Warehouse(dg.ConfigurableResource):
    """The DuckDB database file that holds every layer (one schema per layer)."""

    database: str
    threads: int | None = None
    memory_limit: str | None = None
    lock_timeout_s: float = 600.0

    @contextmanager
    def connect(self, read_only: bool = False, spatial: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with the local time zone; `spatial=False` skips loading the spatial extension
        (half a second per connection) for steps that use no ST_ function."""
        path = Path(self.database)
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "allow_unsigned_extensions": "false",
            # Results are ordered explicitly where order matters; letting DuckDB stream saves memory.
            "preserve_insertion_order": "false",
        }
        if self.threads:
            config["threads"] = self.threads
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        con = connect_waiting(path, read_only, config, self.lock_timeout_s)
        try:
            con.execute("SET enable_progress_bar = false")  # our own progress lines say what runs
            if spatial:
                con.execute(f"LOAD '{spatial_extension_path()}'")
            # Local dates are partition keys: the session time zone makes ::DATE casts local.
            con.execute(f"SET TimeZone = '{settings.LOCAL_TIMEZONE}'")
            if not read_only:
                for schema in SCHEMAS:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            yield con
        finally:
            con.close()


@dataclass(frozen=True)
class DayRange:
    """The inclusive range of daily partitions a run writes."""

    first: dt.date
    last: dt.date

    @classmethod
    def from_context(cls, context: dg.AssetExecutionContext) -> DayRange:
        keys = context.partition_key_range
        return cls(dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end))

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def single_days(self) -> list[DayRange]:
        return [DayRange(day, day) for day in self.days()]

    def batches(self, con: duckdb.DuckDBPyConnection, max_events: int = EVENTS_PER_TRANSACTION) -> list[DayRange]:
        """Runs of consecutive days holding up to `max_events` staged events together (a day more
        than that stands alone): small days share a transaction, so a backfill of a quiet window does
        not pay each step's fixed cost once per day, and memory stays bounded. The SQL steps compute
        every day from a fixed window of days around it, so the rows do not depend on the batching
        (crowd_platform_tests/test_reliability.py: single days equal the backfill)."""
        if not _table_exists(con, "staging.events"):
            return self.single_days()
        counts = dict(
            con.execute(
                "SELECT event_date, count(*) FROM staging.events WHERE event_date BETWEEN $first_day AND $last_day "
                "GROUP BY event_date",
                self.params(),
            ).fetchall()
        )
        batches: list[DayRange] = []
        start, events = None, 0
        for day in self.days():
            day_events = counts.get(day, 0)
            if start is not None and events + day_events > max_events:
                batches.append(DayRange(start, day - dt.timedelta(days=1)))
                start, events = None, 0
            if start is None:
                start = day
            events += day_events
        if start is not None:
            batches.append(DayRange(start, self.last))
        return batches

    def params(self) -> dict[str, dt.date]:
        return {"first_day": self.first, "last_day": self.last}


@dataclass(frozen=True)
class TableWrite:
    """One table's new content: a query whose columns are the table's columns."""

    table: str
    query: str
    params: Mapping[str, Any] = field(default_factory=dict)


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(found and found[0])


def uses_spatial(query: str) -> bool:
    """Whether a query calls a spatial function (and so needs the extension loaded)."""
    return re.search(r"\bST_[A-Za-z]", query) is not None


def _add_new_columns(con: duckdb.DuckDBPyConnection, table: str, query: str, params: Mapping[str, Any]) -> None:
    """Columns a newer version of a step adds are added to the existing table (empty for old days),
    so that a warehouse built before the change can still be written to."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _new_shape AS SELECT * FROM ({query}) LIMIT 0", params)
    schema, name = table.split(".")
    missing = con.execute(
        """
        SELECT new.column_name, new.data_type
        FROM information_schema.columns AS new
        WHERE new.table_name = '_new_shape' AND new.table_schema = 'main' AND new.table_catalog = 'temp'
          AND new.column_name NOT IN (
              SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?)
        ORDER BY new.ordinal_position
        """,
        [schema, name],
    ).fetchall()
    for column, data_type in missing:
        con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {data_type}')
    con.execute("DROP TABLE _new_shape")


def write_tables(con: duckdb.DuckDBPyConnection, writes: Sequence[TableWrite], days: DayRange | None) -> None:
    """Write tables in one transaction: the partitions of `days`, or whole tables if None.

    A partitioned table is created on first write from its query's column types; afterwards the
    days of the range are deleted and re-inserted, so the write is idempotent.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        for write in writes:
            params = dict(write.params)
            if days is not None:
                params.update(days.params())
            params = bind(write.query, params)
            if days is None:
                con.execute(f"CREATE OR REPLACE TABLE {write.table} AS {write.query}", params)
                _crash_here_for_tests(write.table, days)
                continue
            if not _table_exists(con, write.table):
                con.execute(f"CREATE TABLE {write.table} AS {write.query}", params)
            else:
                _add_new_columns(con, write.table, write.query, params)
                con.execute(
                    f"DELETE FROM {write.table} WHERE {PARTITION_COLUMN} BETWEEN $first_day AND $last_day",
                    days.params(),
                )
                con.execute(f"INSERT INTO {write.table} BY NAME {write.query}", params)
            outside = con.execute(
                f"SELECT count(*) FROM {write.table} WHERE {PARTITION_COLUMN} IS NULL",
            ).fetchone()
            if outside and outside[0]:
                raise ValueError(f"{write.table}: {outside[0]} rows have no {PARTITION_COLUMN}")
            _crash_here_for_tests(write.table, days)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    for write in writes:
        _crash_here_for_tests(f"{write.table}:committed", days)
        _crash_in_checkpoint_for_tests(con, write.table, days)


def _crash_here_for_tests(point: str, days: DayRange | None) -> None:
    """Fault injection for the crash tests (docs/reliability.md), inert unless the variable is set.

    CROWD_TEST_CRASH_AFTER=<schema.table> kills the process with SIGKILL (no clean-up of any kind)
    after that table's rows are written and before the COMMIT; `<schema.table>:committed` right
    after the COMMIT of its transaction; a suffix `@YYYY-MM-DD` only in the write that holds that day.
    """
    if _crash_point_wanted(point, days):
        os.kill(os.getpid(), signal.SIGKILL)


def _crash_point_wanted(point: str, days: DayRange | None) -> bool:
    wanted = os.environ.get(CRASH_HOOK_VARIABLE)
    if not wanted:
        return False
    if wanted == point:
        return True
    # `@YYYY-MM-DD`: the write whose days hold that day (a batch of several days, or the day alone).
    return days is not None and any(wanted == f"{point}@{day}" for day in days.days())


def _crash_in_checkpoint_for_tests(con: duckdb.DuckDBPyConnection, table: str, days: DayRange | None) -> None:
    """`<schema.table>:checkpoint-<stage>` (stage: before_header, after_free_list_write,
    before_truncate): after the COMMIT, checkpoint the WAL into the database file (what closing
    the connection, or a WAL past `checkpoint_threshold`, does) and kill the process with SIGKILL
    when DuckDB reaches that stage of the checkpoint (its `debug_checkpoint_abort` setting). The
    file is then exactly as a crash at that point leaves it; the next open replays the WAL."""
    for stage in CHECKPOINT_CRASH_STAGES:
        point = f"{table}:checkpoint-{stage}"
        if not _crash_point_wanted(point, days):
            continue
        con.execute(f"SET debug_checkpoint_abort = '{stage}'")
        try:
            con.execute("CHECKPOINT")
        except duckdb.FatalException as exc:  # DuckDB stops the checkpoint at `stage`
            print(f"{CRASH_HOOK_VARIABLE}={point}: {exc}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"{CRASH_HOOK_VARIABLE}={point}: the checkpoint ran to its end")


def snapshot_for_reading(database: str | Path, target_dir: str | Path | None = None, timeout_s: float = 600.0) -> Path:
    """A private copy of the warehouse to read while runs go on writing (notebooks, ad-hoc SQL).

    Waits until no writer holds the file, takes a shared read lock (so no writer can start
    during the copy), copies the file (and its write-ahead log, if any) and releases the lock
    at once. Open the copy with `duckdb.connect(copy, read_only=True)`; it never blocks a run.
    """
    source = Path(database)
    target = Path(target_dir) if target_dir else Path(tempfile.mkdtemp(prefix="crowd_warehouse_"))
    target.mkdir(parents=True, exist_ok=True)
    copy = target / source.name
    con = connect_waiting(source, True, {}, timeout_s)
    try:
        shutil.copyfile(source, copy)
        wal = source.with_name(source.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    finally:
        con.close()
    return copy


def table_metadata(
    con: duckdb.DuckDBPyConnection, table: str, days: DayRange | None = None
) -> dict[str, dg.MetadataValue]:
    """Row count and a Markdown preview of what a write produced, for the Dagster UI."""
    where, params = "", {}
    if days is not None:
        where = f"WHERE {PARTITION_COLUMN} BETWEEN $first_day AND $last_day"
        params = days.params()
    count_row = con.execute(f"SELECT count(*) FROM {table} {where}", params).fetchone()
    row_count = int(count_row[0]) if count_row else 0
    preview = con.execute(f"FROM {table} {where} LIMIT {PREVIEW_ROWS}", params).pl()
    # Times as text in Polars: a damaged file can hold a time beyond Python's datetime range.
    preview = preview.with_columns(pl.col(pl.Datetime, pl.Date).cast(pl.String))
    return {
        "dagster/row_count": dg.MetadataValue.int(row_count),
        "table": dg.MetadataValue.text(table),
        "preview": dg.MetadataValue.md(markdown_table(preview.to_dicts(), preview.columns)),
    }


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A small Markdown table (no pandas/tabulate dependency)."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:,.2f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join([header, rule, *body])
