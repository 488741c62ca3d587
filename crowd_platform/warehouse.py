"""The DuckDB warehouse: one resource, one way to load SQL, one way to write, one way to describe.

Every asset writes through `write_tables`: for each table, delete the partitions of the run's
day range and insert the new rows, all in a single transaction. A crash therefore leaves the
previous state, and a re-run gives the same rows. Unpartitioned tables are replaced whole, in
the same transaction discipline.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from crowd_platform import settings

SCHEMAS = ("staging", "reference", "core", "marts", "event", "ops")
PARTITION_COLUMN = "event_date"
PREVIEW_ROWS = 10


def spatial_extension_path() -> Path:
    """The spatial extension from its PyPI wheel: the network is never asked for extensions."""
    import duckdb_extension_spatial

    package_dir = Path(duckdb_extension_spatial.__file__).parent
    return package_dir / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"


def load_sql(name: str) -> str:
    """The SQL of one step, `sql/<layer>/<asset>.sql`, e.g. `load_sql("core/stays")`."""
    path = settings.SQL_DIR / f"{name}.sql"
    return path.read_text()


def bind(query: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The named parameters a query uses ($name): DuckDB refuses unused ones."""
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", query))
    return {name: value for name, value in params.items() if name in used}


class Warehouse(dg.ConfigurableResource):
    """The DuckDB database file that holds every layer (one schema per layer)."""

    database: str
    threads: int | None = None
    memory_limit: str | None = None

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
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
        con = duckdb.connect(str(path), read_only=read_only, config=config)
        try:
            con.execute("SET enable_progress_bar = false")  # our own progress lines say what runs
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
                continue
            if not _table_exists(con, write.table):
                con.execute(f"CREATE TABLE {write.table} AS {write.query}", params)
            else:
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
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


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
