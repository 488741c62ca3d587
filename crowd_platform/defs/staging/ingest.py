"""Reading the landing folder: every delivered file of the run's days into one raw table.

Files are read one by one so that an error names its file. Three outcomes (docs/reliability.md):

- a file whose columns break the contract, or a day without a delivery, fails the run before
  anything is written (the operator must fix the feed);
- a file that cannot be read at all (empty, truncated, corrupt, not what its extension says) is
  listed as unreadable in `staging.load_audit` and flagged by an asset check, so one broken
  delivery does not hold back a day of good data;
- a CSV line that cannot be parsed (too many or too few fields, bytes that are not UTF-8) is
  landed as a rejected row with the reason, so the good rows of its file still load.

CSV files are read with the contract's dialect (comma, double quote, header line), never sniffed.
The raw IMSI lives only in temporary tables of this connection, and no error message carries one.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from crowd_platform.pseudonym import key_fingerprint, pseudonymise
from crowd_platform.warehouse import DayRange, bind, load_sql

REQUIRED_COLUMNS = ("event_time", "imsi", "cell_id", "event_type")
OPTIONAL_COLUMNS = ("tac",)
EVENT_FILE_SUFFIXES = (".parquet", ".csv", ".csv.gz")

# MCCs whose networks use three-digit MNCs (ITU E.212; North America, India and a few others).
THREE_DIGIT_MNC_MCCS = (
    "302", "310", "311", "312", "313", "314", "315", "316", "334", "338", "342", "344", "346",
    "348", "352", "354", "356", "358", "360", "365", "376", "405", "708", "722", "732",
)  # fmt: skip


# What DuckDB's CSV reader reports for a line it cannot parse -> the reason of the rejected row.
CSV_LINE_ERRORS = {
    "MISSING COLUMNS": "malformed CSV line: too few fields",
    "TOO MANY COLUMNS": "malformed CSV line: too many fields",
    "INVALID ENCODING": "malformed CSV line: not UTF-8",
    "UNQUOTED VALUE": "malformed CSV line: stray quote",
    "LINE SIZE OVER MAXIMUM": "malformed CSV line: line too long",
}
IMSI_LIKE = re.compile(r"[0-9]{14,}")


class LandingError(ValueError):
    """A landed file breaks the contract; the message names the file and the problem."""


class UnreadableFile(Exception):
    """A landed file cannot be read at all (listed in load_audit, not fatal)."""


def scrub(message: str) -> str:
    """An error message without any IMSI-like run of digits (DuckDB quotes the offending line)."""
    return IMSI_LIKE.sub("[digits removed]", message)


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


def folder_fingerprint(folder: Path) -> str:
    """What a delivery folder holds: a hash of its event files' names, sizes and modification times.
    A new, removed, rewritten or touched file changes it ("missing" when there is no folder)."""
    files = event_files(folder)
    if not folder.is_dir():
        return "missing"
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def landing_fingerprints(landing_dir: Path, days: DayRange, late_arrival_days: int) -> dict[str, str]:
    """The fingerprint of every delivery folder a run of `days` reads, by folder date."""
    folders = DayRange(days.first, days.last + dt.timedelta(days=late_arrival_days))
    return {day.isoformat(): folder_fingerprint(delivery_folder(landing_dir, day)) for day in folders.days()}


def _create_landed_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE landed (
            delivery_date DATE, source_file VARCHAR, source_row BIGINT,
            event_time_raw VARCHAR, event_time TIMESTAMPTZ, local_date DATE,
            imsi VARCHAR, cell_id VARCHAR, event_type VARCHAR, tac VARCHAR, parse_error VARCHAR
        )
        """
    )
    con.execute("CREATE OR REPLACE TEMP TABLE unreadable_files (event_date DATE, source_file VARCHAR, error VARCHAR)")
    # Every file read, with its row count: a file without data rows is still listed in load_audit.
    con.execute("CREATE OR REPLACE TEMP TABLE landed_files (delivery_date DATE, source_file VARCHAR, rows BIGINT)")
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
        found = ", ".join(columns) or "no columns"
        hint = ""
        if len(columns) == 1 and (delimiter := next((d for d in ";\t|" if d in found), None)):
            hint = f" (the header looks delimited by {delimiter!r}; the contract's CSV delimiter is a comma)"
        raise LandingError(scrub(f"{relative}: missing required column(s) {', '.join(missing)}; found {found}{hint}"))
    if columns["event_time"] not in ("TIMESTAMP WITH TIME ZONE", "VARCHAR"):
        raise LandingError(
            f"{relative}: column event_time has type {columns['event_time']}; the contract needs a "
            "UTC-adjusted timestamp (Parquet) or ISO 8601 text with an offset"
        )
    # file_row_number is the Parquet reader's own row number, not a column of the file.
    extra = [c for c in columns if c not in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "file_row_number")]
    if extra:
        scan.extra_columns[relative] = extra


def _check_readable(path: Path) -> None:
    """What DuckDB does not notice: an empty file, a gzip stream that ends early."""
    if path.stat().st_size == 0:
        raise UnreadableFile("empty file (0 bytes)")
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as stream:
                while stream.read(1 << 22):
                    pass
        except (EOFError, OSError, zlib.error) as exc:  # DuckDB would read the rows before the cut
            raise UnreadableFile(f"broken gzip stream (truncated or corrupt): {exc}") from None


# Time text must carry an offset: an ISO 8601 time without one is ambiguous; it is not guessed, it is rejected.
TEXT_TIME = (
    "CASE WHEN regexp_matches(trim(event_time), '([+-][0-9]{2}(:?[0-9]{2})?|Z)$') "
    "THEN TRY_CAST(trim(event_time) AS TIMESTAMPTZ) END"
)


def _read_file(con: duckdb.DuckDBPyConnection, path: Path, relative: str, delivery: dt.date, scan: LandingScan) -> None:
    _check_readable(path)
    reader = _reader(path)
    is_csv = not path.name.endswith(".parquet")
    if is_csv:
        for table in ("csv_rejects", "csv_reject_scans"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    columns = _file_columns(con, reader)
    _check_columns(relative, columns, scan)
    if columns["event_time"] == "TIMESTAMP WITH TIME ZONE":  # Parquet, UTC-adjusted
        # No text copy of every time (a third of the read): rejected_events.sql renders the few it needs.
        event_time, raw_time = "event_time", "CAST(NULL AS VARCHAR)"
    else:  # text (CSV, or a Parquet string column)
        event_time, raw_time = TEXT_TIME, "event_time"
    # Parquet has the file's row number; a CSV's comes from the scan order (preserve_insertion_order).
    row_number = "row_number() OVER ()" if is_csv else "file_row_number + 1"
    tac = "CAST(tac AS VARCHAR)" if "tac" in columns else "CAST(NULL AS VARCHAR)"
    if is_csv:
        con.execute("SET preserve_insertion_order = true")
    con.execute(
        f"""
        INSERT INTO landed
        SELECT delivery_date, source_file, source_row, event_time_raw, event_time,
               {_local_date_expression(con, delivery)} AS local_date,
               imsi, cell_id, event_type, tac, NULL AS parse_error
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
    if is_csv:
        con.execute("SET preserve_insertion_order = false")  # the connection default (warehouse.py)
    if is_csv:
        _land_csv_rejects(con, relative, delivery)
    count = con.execute("SELECT count(*) FROM landed WHERE source_file = ?", [relative]).fetchone()
    con.execute("INSERT INTO landed_files VALUES (?, ?, ?)", [delivery, relative, count[0] if count else 0])


def _local_date_expression(con: duckdb.DuckDBPyConnection, delivery: dt.date) -> str:
    """`CAST(event_time AS DATE)` in the session time zone, as integer comparisons with the local
    midnights around the delivery day: the time-zone conversion of every row was most of the read
    (docs/performance.md). Times outside those days (dirt) fall back to the cast itself."""
    days = [delivery + dt.timedelta(days=offset) for offset in range(-2, 3)]
    found = con.execute(
        "SELECT day, epoch_us(CAST(day AS TIMESTAMPTZ)) AS midnight_us FROM unnest(CAST(? AS DATE[])) AS t(day) "
        "WHERE CAST(make_timestamptz(midnight_us) AS DATE) = day "  # a true local midnight (a zone may skip one)
        "AND CAST(make_timestamptz(midnight_us - 1) AS DATE) = day - 1 ORDER BY day",
        [days],
    ).fetchall()
    midnights = [int(midnight_us) for _, midnight_us in found]
    if len(midnights) != len(days):
        return "CAST(event_time AS DATE)"
    branches = " ".join(
        f"WHEN epoch_us(event_time) >= {start} AND epoch_us(event_time) < {end} THEN DATE '{day.isoformat()}'"
        for day, start, end in zip(days, midnights, midnights[1:], strict=False)
    )
    return f"CASE {branches} ELSE CAST(event_time AS DATE) END"


def _land_csv_rejects(con: duckdb.DuckDBPyConnection, relative: str, delivery: dt.date) -> None:
    """Lines the CSV reader could not parse become rejected rows (no fields: the raw line may hold an IMSI)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE bad_lines AS "
        "SELECT line - 1 AS data_row, min(error_type) AS error_type, row_number() OVER (ORDER BY line) AS nth "
        "FROM csv_rejects GROUP BY line"  # `line` counts the header line
    )
    if con.execute("SELECT count(*) FROM bad_lines").fetchone() == (0,):
        return
    # The k-th parsed row is data row k + (number of bad lines before it).
    con.execute(
        "UPDATE landed SET source_row = source_row "
        "+ (SELECT count(*) FROM bad_lines WHERE bad_lines.data_row - bad_lines.nth < landed.source_row) "
        "WHERE source_file = ?",
        [relative],
    )
    reasons = " ".join(f"WHEN {_sql_string(k)} THEN {_sql_string(v)}" for k, v in CSV_LINE_ERRORS.items())
    con.execute(
        "INSERT INTO landed (delivery_date, source_file, source_row, parse_error) "
        f"SELECT ?, ?, data_row, CASE error_type {reasons} ELSE 'malformed CSV line: ' || lower(error_type) END "
        "FROM bad_lines",
        [delivery, relative],
    )


def _reader(path: Path) -> str:
    quoted = _sql_string(str(path))
    if path.name.endswith(".parquet"):
        # Not hive_partitioning: the folder name date=... would add a column `date` to every file.
        return f"read_parquet({quoted}, file_row_number = true, hive_partitioning = false)"
    # The contract's dialect, not sniffed: a mis-detected delimiter would silently misread a file.
    return (
        f"read_csv({quoted}, all_varchar = true, header = true, delim = ',', quote = '\"', escape = '\"', "
        "skip = 0, comment = '', hive_partitioning = false, store_rejects = true, rejects_table = 'csv_rejects', "
        "rejects_scan = 'csv_reject_scans')"
    )


def delivered_files(landing_dir: Path, days: DayRange, late_arrival_days: int) -> list[tuple[dt.date, Path]]:
    """(delivery day, file) of every file that may hold events of `days`."""
    last_folder = days.last + dt.timedelta(days=late_arrival_days)
    return [
        (delivery, path)
        for delivery in DayRange(days.first, last_folder).days()
        for path in event_files(delivery_folder(landing_dir, delivery))
    ]


def check_schemas(con: duckdb.DuckDBPyConnection, landing_dir: Path, days: DayRange, late_arrival_days: int) -> None:
    """Fail before anything is written if a day has no delivery or a readable file breaks the contract."""
    for day in days.days():
        folder = delivery_folder(landing_dir, day)
        relative_folder = folder.relative_to(landing_dir).as_posix()
        if not folder.is_dir():
            raise LandingError(f"{relative_folder}: no delivery folder for {day} (nothing has landed for the day)")
        if not event_files(folder):
            raise LandingError(
                f"{relative_folder}: the delivery folder of {day} holds no event files "
                f"({', '.join('*' + s for s in EVENT_FILE_SUFFIXES)})"
            )
    for _, path in delivered_files(landing_dir, days, late_arrival_days):
        if path.stat().st_size == 0:
            continue  # listed as unreadable by read_landing
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
        except (duckdb.Error, UnreadableFile) as exc:
            message = scrub(str(exc).splitlines()[0][:300])
            if delivery <= days.last:  # listed once, on its own delivery day
                scan.unreadable.append((delivery, relative, message))
            con.execute("INSERT INTO unreadable_files VALUES (?, ?, ?)", [delivery, relative, message])
            continue
        if delivery <= days.last:
            scan.files_read.append(relative)


def register_pseudonyms(con: duckdb.DuckDBPyConnection, key: bytes) -> int:
    """Pseudonymise each distinct identity once (not each row) into the temp table `pseudonyms`.

    The keys computed are remembered in the temp table `pseudonym_cache` for the connection's
    life (one run): in a backfill most SIMs recur every day and are hashed once, not once a day.
    The cache holds raw IMSIs like `landed`, only in this connection, and goes with it."""
    fingerprint = key_fingerprint(key)
    con.execute(
        "CREATE TEMP TABLE IF NOT EXISTS pseudonym_cache (imsi VARCHAR, device_key VARCHAR, key_fingerprint VARCHAR)"
    )
    con.execute("DELETE FROM pseudonym_cache WHERE key_fingerprint <> ?", [fingerprint])  # another key's: useless
    con.execute(
        "CREATE OR REPLACE TEMP TABLE day_identities AS SELECT DISTINCT imsi FROM landed WHERE imsi IS NOT NULL"
    )
    unseen = (
        con.execute("SELECT imsi FROM day_identities ANTI JOIN pseudonym_cache USING (imsi)").pl()["imsi"].to_list()
    )
    if unseen:
        mapping = pl.DataFrame(
            {"imsi": unseen, "device_key": pseudonymise(key, unseen)},
            schema={"imsi": pl.String, "device_key": pl.String},
        )
        con.register("pseudonym_mapping", mapping)
        con.execute("INSERT INTO pseudonym_cache SELECT imsi, device_key, ? FROM pseudonym_mapping", [fingerprint])
        con.unregister("pseudonym_mapping")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE pseudonyms AS "
        "SELECT imsi, device_key FROM pseudonym_cache SEMI JOIN day_identities USING (imsi)"
    )
    identities = con.execute("SELECT count(*) FROM day_identities").fetchone()
    con.execute("DROP TABLE day_identities")
    return int(identities[0]) if identities else 0


def classify_day(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, day: DayRange, key: bytes, params: dict, scan: LandingScan
) -> int:
    """Read the files that may hold events of `day` and classify every landed row into the temp
    table `landed_events` (staged, rejected with a reason, or duplicate); the raw tables are dropped.
    Returns the number of distinct SIMs seen. `params`: the methodology's SQL parameters and the day's."""
    read_landing(con, landing_dir, day, int(params["late_arrival_days"]), scan)
    identities = register_pseudonyms(con, key)
    classify = load_sql("staging/landed_events")
    con.execute("CREATE OR REPLACE TEMP TABLE landed_events AS " + classify, bind(classify, params))
    drop_raw_tables_keep_classified(con)
    mark_duplicates(con, params)
    return identities


def mark_duplicates(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    """Set is_duplicate on the rows of `landed_events` that landed_duplicates.sql finds (a few
    thousand a day: an update of those rows, not a rewrite of the table)."""
    duplicates = load_sql("staging/landed_duplicates")
    con.execute("CREATE OR REPLACE TEMP TABLE duplicate_rows AS " + duplicates, bind(duplicates, params))
    con.execute(
        "UPDATE landed_events SET is_duplicate = true FROM duplicate_rows "
        "WHERE duplicate_rows.source_file = landed_events.source_file "
        "AND duplicate_rows.source_row = landed_events.source_row"
    )
    con.execute("DROP TABLE duplicate_rows")


def drop_raw_tables_keep_classified(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the tables that hold raw IMSIs as soon as the classified rows exist."""
    for table in ("landed", "pseudonyms"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def drop_pseudonym_cache(con: duckdb.DuckDBPyConnection) -> None:
    """The end of a run: no raw IMSI is left in the connection."""
    con.execute("DROP TABLE IF EXISTS pseudonym_cache")
