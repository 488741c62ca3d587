"""Reading the landing folder: every delivered file of the run's days into one raw table.

Files are read one by one so that an error names its file. A file whose columns break the
contract fails the run (the operator must fix the feed); a file that cannot be read at all
(truncated, corrupt, not what its extension says) is listed as unreadable in
`staging.load_audit` and flagged by an asset check, so one broken delivery does not hold back a
day of good data. The raw IMSI lives only in temporary tables of this connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from crowd_platform.pseudonym import pseudonymise
from crowd_platform.warehouse import DayRange

REQUIRED_COLUMNS = ("event_time", "imsi", "cell_id", "event_type")
OPTIONAL_COLUMNS = ("tac",)
EVENT_FILE_SUFFIXES = (".parquet", ".csv", ".csv.gz")

# MCCs whose networks use three-digit MNCs (ITU E.212; North America, India and a few others).
THREE_DIGIT_MNC_MCCS = (
    "302", "310", "311", "312", "313", "314", "315", "316", "334", "338", "342", "344", "346",
    "348", "352", "354", "356", "358", "360", "365", "376", "405", "708", "722", "732",
)  # fmt: skip


class LandingError(ValueError):
    """A landed file breaks the contract; the message names the file and the problem."""


@dataclass
class LandingScan:
    """What was read for a run: file counts and the files that could not be read."""

    files_read: list[str] = field(default_factory=list)
    unreadable: list[tuple[dt.date, str, str]] = field(default_factory=list)
    extra_columns: dict[str, list[str]] = field(default_factory=dict)


def delivery_folder(landing_dir: Path, day: dt.date) -> Path:
    return landing_dir / "events" / f"date={day.isoformat()}"


def event_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(EVENT_FILE_SUFFIXES))


def _create_landed_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE landed (
            delivery_date DATE, source_file VARCHAR, source_row BIGINT,
            event_time_raw VARCHAR, event_time TIMESTAMPTZ, local_date DATE,
            imsi VARCHAR, cell_id VARCHAR, event_type VARCHAR, tac VARCHAR
        )
        """
    )
    con.execute("CREATE OR REPLACE TEMP TABLE unreadable_files (event_date DATE, source_file VARCHAR, error VARCHAR)")
    con.execute("CREATE OR REPLACE TEMP TABLE three_digit_mnc_mccs (mcc VARCHAR)")
    con.executemany("INSERT INTO three_digit_mnc_mccs VALUES (?)", [[m] for m in THREE_DIGIT_MNC_MCCS])


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _file_columns(con: duckdb.DuckDBPyConnection, reader: str) -> dict[str, str]:
    described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    return {str(name): str(dtype) for name, dtype, *_ in described}


def _check_columns(relative: str, columns: dict[str, str], scan: LandingScan) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise LandingError(
            f"{relative}: missing required column(s) {', '.join(missing)}; found {', '.join(columns) or 'no columns'}"
        )
    extra = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if extra:
        scan.extra_columns[relative] = extra


def _read_file(con: duckdb.DuckDBPyConnection, path: Path, relative: str, delivery: dt.date, scan: LandingScan) -> None:
    reader = _reader(path)
    if path.name.endswith(".parquet"):
        columns = _file_columns(con, reader)
        _check_columns(relative, columns, scan)
        time_type = columns["event_time"]
        if time_type == "TIMESTAMP WITH TIME ZONE":
            event_time = "event_time"
        elif time_type == "VARCHAR":
            event_time = "TRY_CAST(event_time AS TIMESTAMPTZ)"
        else:
            raise LandingError(
                f"{relative}: column event_time has type {time_type}; the contract needs a "
                "UTC-adjusted timestamp (TIMESTAMP WITH TIME ZONE)"
            )
        row_number = "file_row_number + 1"
        raw_time = "CAST(event_time AS VARCHAR)"
    else:
        columns = _file_columns(con, reader)
        _check_columns(relative, columns, scan)
        row_number = "row_number() OVER ()"  # the scan keeps file order (preserve_insertion_order)
        # An ISO 8601 time without an offset is ambiguous: it is not guessed, it is rejected.
        event_time = (
            "CASE WHEN regexp_matches(trim(event_time), '([+-][0-9]{2}(:?[0-9]{2})?|Z)$') "
            "THEN TRY_CAST(trim(event_time) AS TIMESTAMPTZ) END"
        )
        raw_time = "event_time"
    tac = "CAST(tac AS VARCHAR)" if "tac" in columns else "CAST(NULL AS VARCHAR)"
    # Row numbers of a CSV come from the scan order, which DuckDB keeps only when asked to.
    con.execute("SET preserve_insertion_order = true")
    con.execute(
        f"""
        INSERT INTO landed
        SELECT delivery_date, source_file, source_row, event_time_raw, event_time,
               CAST(event_time AS DATE) AS local_date,  -- the session time zone makes it local
               imsi, cell_id, event_type, tac
        FROM (
            SELECT $delivery AS delivery_date, $relative AS source_file, {row_number} AS source_row,
                   {raw_time} AS event_time_raw, {event_time} AS event_time,
                   CAST(imsi AS VARCHAR) AS imsi, CAST(cell_id AS VARCHAR) AS cell_id,
                   CAST(event_type AS VARCHAR) AS event_type, {tac} AS tac
            FROM {reader}
        )
        """,
        {"delivery": delivery, "relative": relative},
    )
    con.execute("SET preserve_insertion_order = false")  # the connection default (warehouse.py)


def _reader(path: Path) -> str:
    quoted = _sql_string(str(path))
    if path.name.endswith(".parquet"):
        return f"read_parquet({quoted}, file_row_number = true)"
    return f"read_csv({quoted}, all_varchar = true, header = true)"


def delivered_files(landing_dir: Path, days: DayRange, late_arrival_days: int) -> list[tuple[dt.date, Path]]:
    """(delivery day, file) of every file that may hold events of `days`."""
    last_folder = days.last + dt.timedelta(days=late_arrival_days)
    return [
        (delivery, path)
        for delivery in DayRange(days.first, last_folder).days()
        for path in event_files(delivery_folder(landing_dir, delivery))
    ]


def check_schemas(con: duckdb.DuckDBPyConnection, landing_dir: Path, days: DayRange, late_arrival_days: int) -> None:
    """Fail before anything is written if any readable file of the run breaks the contract."""
    for _, path in delivered_files(landing_dir, days, late_arrival_days):
        try:
            columns = _file_columns(con, _reader(path))
        except duckdb.Error:
            continue  # unreadable files are listed, not fatal (see read_landing)
        _check_columns(path.relative_to(landing_dir).as_posix(), columns, LandingScan())


def read_landing(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, days: DayRange, late_arrival_days: int, scan: LandingScan
) -> None:
    """Read every file that may hold events of `days` into the temporary table `landed`."""
    _create_landed_table(con)
    for delivery, path in delivered_files(landing_dir, days, late_arrival_days):
        relative = path.relative_to(landing_dir).as_posix()
        try:
            _read_file(con, path, relative, delivery, scan)
        except LandingError:
            raise
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0][:300]
            if delivery <= days.last:  # listed once, on its own delivery day
                scan.unreadable.append((delivery, relative, message))
            con.execute("INSERT INTO unreadable_files VALUES (?, ?, ?)", [delivery, relative, message])
            continue
        if delivery <= days.last:
            scan.files_read.append(relative)


def register_pseudonyms(con: duckdb.DuckDBPyConnection, key: bytes) -> int:
    """Pseudonymise each distinct identity once (not each row) into the temp table `pseudonyms`."""
    identities = [row[0] for row in con.execute("SELECT DISTINCT imsi FROM landed WHERE imsi IS NOT NULL").fetchall()]
    mapping = pl.DataFrame(
        {"imsi": identities, "device_key": pseudonymise(key, identities)},
        schema={"imsi": pl.String, "device_key": pl.String},
    )
    con.register("pseudonym_mapping", mapping)
    con.execute("CREATE OR REPLACE TEMP TABLE pseudonyms AS SELECT imsi, device_key FROM pseudonym_mapping")
    con.unregister("pseudonym_mapping")
    return len(identities)


def drop_raw_tables_keep_classified(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the tables that hold raw IMSIs as soon as the classified rows exist."""
    for table in ("landed", "pseudonyms"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
