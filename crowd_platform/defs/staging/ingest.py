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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crowd_platform.pseudonym import DEVICE_KEY_SQL, device_key_sql_params, key_fingerprint
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
# Landed rows classified and written in one transaction (LandingReader.batches): half the SQL
# steps' EVENTS_PER_TRANSACTION, as staging holds the raw rows and their classification at once.
# Measured on 12 days of 150,000 rows (docs/performance.md): 0.5 M rows a batch gave most of the
# gain of 2 M at 0.68 GB peak instead of 1.6 GB; 1 M, 1.0 GB.
STAGING_ROWS_PER_TRANSACTION = 1_000_000


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


def _create_raw_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """A temp table for raw rows as read from the files (raw IMSIs: this connection only). A row names
    its file by number (`landed_files` has the path): a path on each of 13 M rows took 0.7 GB."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} (
            delivery_date DATE, file_number INTEGER, source_row BIGINT,
            event_time_raw VARCHAR, event_time TIMESTAMPTZ, local_date DATE,
            imsi VARCHAR, cell_id VARCHAR, event_type VARCHAR, tac VARCHAR, parse_error VARCHAR
        )
        """
    )


def _create_run_tables(con: duckdb.DuckDBPyConnection) -> None:
    """What a run accumulates over its folders: the files read and those that could not be."""
    con.execute("CREATE OR REPLACE TEMP TABLE unreadable_files (event_date DATE, source_file VARCHAR, error VARCHAR)")
    # Every file read, with its number and row count (NULL if it could not be read): a file without data
    # rows is still listed in load_audit.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE landed_files "
        "(file_number INTEGER, delivery_date DATE, source_file VARCHAR, rows BIGINT)"
    )
    con.execute("CREATE OR REPLACE TEMP TABLE three_digit_mnc_mccs (mcc VARCHAR)")
    con.executemany("INSERT INTO three_digit_mnc_mccs VALUES (?)", [[m] for m in THREE_DIGIT_MNC_MCCS])


def _create_landed_table(con: duckdb.DuckDBPyConnection) -> None:
    """The table `landed` and the run's tables, for reading files one by one (bench/profile_chain.py)."""
    _create_raw_table(con, "landed")
    _create_run_tables(con)


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


def event_date_expression(late_arrival_days: int) -> str:
    """The partition of a raw row, as sql/staging/landed_events.sql computes it: its local date when
    that is within the late-arrival window of its delivery day, else the delivery day (rows without
    a usable time are accounted to their folder's day)."""
    return (
        f"CASE WHEN local_date BETWEEN delivery_date - {int(late_arrival_days)} AND delivery_date "
        "THEN local_date ELSE delivery_date END"
    )


def _read_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    relative: str,
    delivery: dt.date,
    scan: LandingScan,
    table: str = "landed",
    keep_rows_where: str | None = None,
) -> None:
    """Insert the rows of one file into `table`; `keep_rows_where`: a condition on the raw row's
    columns (local_date, delivery_date, ...) that the kept rows meet, applied after the rows are
    numbered, so source_row stays the row's place in its file."""
    _check_readable(path)
    reader = _reader(path)
    is_csv = not path.name.endswith(".parquet")
    if is_csv:
        for reject_table in ("csv_rejects", "csv_reject_scans"):
            con.execute(f"DROP TABLE IF EXISTS {reject_table}")
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
    # Numbered before reading, so that a number is never reused, even after a failed read.
    found = con.execute("SELECT coalesce(max(file_number), 0) + 1 FROM landed_files").fetchone()
    file_number = int(found[0]) if found else 1
    con.execute("INSERT INTO landed_files VALUES (?, ?, ?, NULL)", [file_number, delivery, relative])
    con.execute(
        f"""
        INSERT INTO {table}
        SELECT * FROM (
            SELECT delivery_date, file_number, source_row, event_time_raw, event_time,
                   {_local_date_expression(con, delivery)} AS local_date,
                   imsi, cell_id, event_type, tac, NULL AS parse_error
            FROM (
                SELECT $delivery AS delivery_date, $file_number AS file_number, {row_number} AS source_row,
                       {raw_time} AS event_time_raw, {event_time} AS event_time,
                       CAST(imsi AS VARCHAR) AS imsi, CAST(cell_id AS VARCHAR) AS cell_id,
                       CAST(event_type AS VARCHAR) AS event_type, {tac} AS tac
                FROM {reader}
            )
        ) AS read_rows
        WHERE {keep_rows_where or "true"}
        """,
        {"delivery": delivery, "file_number": file_number},
    )
    if is_csv:
        con.execute("SET preserve_insertion_order = false")  # the connection default (warehouse.py)
        _land_csv_rejects(con, file_number, delivery, table)
    con.execute(
        f"UPDATE landed_files SET rows = (SELECT count(*) FROM {table} WHERE file_number = $file_number) "
        "WHERE file_number = $file_number",
        {"file_number": file_number},
    )


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


def _land_csv_rejects(con: duckdb.DuckDBPyConnection, file_number: int, delivery: dt.date, table: str) -> None:
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
        f"UPDATE {table} SET source_row = source_row "
        f"+ (SELECT count(*) FROM bad_lines WHERE bad_lines.data_row - bad_lines.nth < {table}.source_row) "
        "WHERE file_number = ?",
        [file_number],
    )
    reasons = " ".join(f"WHEN {_sql_string(k)} THEN {_sql_string(v)}" for k, v in CSV_LINE_ERRORS.items())
    con.execute(
        f"INSERT INTO {table} (delivery_date, file_number, source_row, parse_error) "
        f"SELECT ?, ?, data_row, CASE error_type {reasons} ELSE 'malformed CSV line: ' || lower(error_type) END "
        "FROM bad_lines",
        [delivery, file_number],
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
            continue  # unreadable files are listed, not fatal (see LandingReader)
        _check_columns(path.relative_to(landing_dir).as_posix(), columns, LandingScan())


class LandingReader:
    """The raw rows of a run's delivery folders, each folder read once per run.

    Events of a local day arrive in that day's folder and, late, in the next `late_arrival_days`
    folders. A run over several days (the runner, a Dagster backfill) used to read every folder
    twice: as its own day and as the previous day's late arrivals (docs/performance.md). Here each
    folder is read into its own temp table `landed_<yyyymmdd>` when the first day that needs it
    comes, and dropped once the last day it can hold has been classified; `use(days)` makes the
    view `landed` show exactly the rows whose partition is in `days`. A folder after the run's last
    day is only read for its late rows (its own day's rows belong to another run).

    The folder tables hold raw IMSIs like `landed` always has: in this connection only, until
    their last day is classified or the run ends (`close`)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        landing_dir: Path,
        run: DayRange,
        late_arrival_days: int,
        scan: LandingScan,
    ) -> None:
        self.con, self.landing_dir, self.run, self.scan = con, landing_dir, run, scan
        self.late_arrival_days = int(late_arrival_days)
        self.rows_by_folder: dict[dt.date, int] = {}  # folders read and still held, with their row count
        self.last_folder_read = run.first - dt.timedelta(days=1)
        _create_run_tables(con)

    @staticmethod
    def folder_table(delivery: dt.date) -> str:
        return f"landed_{delivery:%Y%m%d}"

    def read_through(self, last_folder: dt.date) -> None:
        """Read the run's folders up to `last_folder` that are not read yet (never one twice)."""
        last_folder = min(last_folder, self.run.last + dt.timedelta(days=self.late_arrival_days))
        while self.last_folder_read < last_folder:
            self.last_folder_read += dt.timedelta(days=1)
            self._read_folder(self.last_folder_read)

    def _read_folder(self, delivery: dt.date) -> None:
        table = self.folder_table(delivery)
        _create_raw_table(self.con, table)
        keep = None
        if delivery > self.run.last:  # only the late rows of the run's days
            partition = event_date_expression(self.late_arrival_days)
            keep = f"({partition}) BETWEEN {_sql_date(self.run.first)} AND {_sql_date(self.run.last)}"
        for path in event_files(delivery_folder(self.landing_dir, delivery)):
            relative = path.relative_to(self.landing_dir).as_posix()
            try:
                _read_file(self.con, path, relative, delivery, self.scan, table, keep)
            except LandingError:
                raise
            except (duckdb.Error, UnreadableFile) as exc:
                message = scrub(str(exc).splitlines()[0][:300])
                if delivery <= self.run.last:  # listed on its own delivery day, not as a late source
                    self.scan.unreadable.append((delivery, relative, message))
                self.con.execute("INSERT INTO unreadable_files VALUES (?, ?, ?)", [delivery, relative, message])
                continue
            if delivery <= self.run.last:
                self.scan.files_read.append(relative)
        found = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        self.rows_by_folder[delivery] = int(found[0]) if found else 0

    def use(self, days: DayRange) -> None:
        """The view `landed`: the raw rows whose partition is one of `days` (folders read as needed)."""
        self.read_through(days.last + dt.timedelta(days=self.late_arrival_days))
        partition = event_date_expression(self.late_arrival_days)
        branches = [
            f"SELECT * FROM {self.folder_table(delivery)} "
            f"WHERE ({partition}) BETWEEN {_sql_date(days.first)} AND {_sql_date(days.last)}"
            for delivery in sorted(self.rows_by_folder)
            if days.first <= delivery <= days.last + dt.timedelta(days=self.late_arrival_days)
        ]
        self.con.execute("CREATE OR REPLACE TEMP VIEW landed AS " + " UNION ALL ".join(branches))

    def release(self, through: dt.date) -> None:
        """`through` is classified: drop the view and every folder that holds no later day."""
        self.con.execute("DROP VIEW IF EXISTS landed")
        for delivery in [d for d in self.rows_by_folder if d <= through]:
            self.con.execute(f"DROP TABLE IF EXISTS {self.folder_table(delivery)}")
            del self.rows_by_folder[delivery]

    def close(self) -> None:
        self.release(dt.date.max)

    def batches(self, max_rows: int = STAGING_ROWS_PER_TRANSACTION) -> Iterator[DayRange]:
        """The run's days in runs of consecutive days with up to `max_rows` landed rows together
        (a bigger day stands alone), to classify and write in one transaction each: a day's fixed
        cost (the commit, the checks, the statements' planning) is paid per batch, and memory stays
        bounded. The rows cannot depend on the grouping (each row's partition, checks and
        duplicates are the row's own day's). A day's size is its folder's row count, read here."""
        start: dt.date | None = None
        rows = 0
        for day in self.run.days():
            # What the batch so far needs (its late folders), and this day's folder to weigh it.
            self.read_through(max(day, day - dt.timedelta(days=1) + dt.timedelta(days=self.late_arrival_days)))
            day_rows = self.rows_by_folder.get(day, 0)
            if start is not None and rows + day_rows > max_rows:
                yield DayRange(start, day - dt.timedelta(days=1))
                start, rows = None, 0
            if start is None:
                start = day
            rows += day_rows
        if start is not None:
            yield DayRange(start, self.run.last)


def _sql_date(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def register_pseudonyms(con: duckdb.DuckDBPyConnection, key: bytes) -> int:
    """Pseudonymise each distinct identity of `landed` once (not each row) into the temp table `pseudonyms`.

    The keys computed are remembered in the temp table `pseudonym_cache` for the connection's
    life (one run): in a backfill most SIMs recur every day and are hashed once, not once a day.
    The cache holds raw IMSIs like `landed`, only in this connection, and goes with it. The HMAC
    runs in DuckDB (`DEVICE_KEY_SQL`), so the IMSIs never become Python strings: at 30 M events a
    day, 15 M IMSIs and their keys as Python strings were over 2 GB."""
    fingerprint = key_fingerprint(key)
    con.execute(
        "CREATE TEMP TABLE IF NOT EXISTS pseudonym_cache (imsi VARCHAR, device_key VARCHAR, key_fingerprint VARCHAR)"
    )
    con.execute("DELETE FROM pseudonym_cache WHERE key_fingerprint <> ?", [fingerprint])  # another key's: useless
    con.execute(
        "CREATE OR REPLACE TEMP TABLE day_identities AS SELECT DISTINCT imsi FROM landed WHERE imsi IS NOT NULL"
    )
    con.execute(
        f"INSERT INTO pseudonym_cache SELECT imsi, {DEVICE_KEY_SQL}, $fingerprint "
        "FROM day_identities ANTI JOIN pseudonym_cache USING (imsi)",
        {**device_key_sql_params(key), "fingerprint": fingerprint},
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE pseudonyms AS "
        "SELECT imsi, device_key FROM pseudonym_cache SEMI JOIN day_identities USING (imsi)"
    )
    identities_count = con.execute("SELECT count(*) FROM day_identities").fetchone()
    con.execute("DROP TABLE day_identities")
    return int(identities_count[0]) if identities_count else 0


def classify_day(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    days: DayRange,
    key: bytes,
    params: dict,
    scan: LandingScan,
    reader: LandingReader | None = None,
) -> int:
    """Classify every landed row whose partition is one of `days` (a day, or a batch of days of
    `reader`'s run) into the temp table `landed_events` (staged, rejected with a reason, or
    duplicate); the raw rows of `days` are dropped. Without a reader, `days` is a run of its own.
    Returns the largest number of distinct SIMs of one day. `params`: the methodology's SQL
    parameters and the days'."""
    own_reader = reader is None
    if reader is None:
        reader = LandingReader(con, landing_dir, days, int(params["late_arrival_days"]), scan)
    reader.use(days)
    identities = register_pseudonyms(con, key)
    classify = load_sql("staging/landed_events")
    con.execute("CREATE OR REPLACE TEMP TABLE landed_events AS " + classify, bind(classify, params))
    reader.release(days.last)
    drop_raw_tables_keep_classified(con)
    if own_reader:
        reader.close()
    mark_duplicates(con, params)
    if days.first == days.last:
        return identities
    # A batch of small days: the largest day's count, not the batch's.
    largest = con.execute(
        "SELECT coalesce(max(sims), 0) FROM "
        "(SELECT count(DISTINCT device_key) AS sims FROM landed_events GROUP BY event_date)"
    ).fetchone()
    return int(largest[0]) if largest else 0


def mark_duplicates(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    """Set is_duplicate on the rows of `landed_events` that landed_duplicates.sql finds (a few
    thousand a day: an update of those rows, not a rewrite of the table)."""
    duplicates = load_sql("staging/landed_duplicates")
    con.execute("CREATE OR REPLACE TEMP TABLE duplicate_rows AS " + duplicates, bind(duplicates, params))
    con.execute(
        "UPDATE landed_events SET is_duplicate = true FROM duplicate_rows "
        "WHERE duplicate_rows.file_number = landed_events.file_number "
        "AND duplicate_rows.source_row = landed_events.source_row"
    )
    con.execute("DROP TABLE duplicate_rows")


def drop_raw_tables_keep_classified(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the tables that hold raw IMSIs as soon as the classified rows exist (the view
    `landed` of a LandingReader is dropped by its `release`; a table `landed` here)."""
    is_table = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'landed'").fetchone()
    if is_table and is_table[0]:
        con.execute("DROP TABLE landed")
    con.execute("DROP TABLE IF EXISTS pseudonyms")


def drop_pseudonym_cache(con: duckdb.DuckDBPyConnection) -> None:
    """The end of a run: no raw IMSI is left in the connection."""
    con.execute("DROP TABLE IF EXISTS pseudonym_cache")
