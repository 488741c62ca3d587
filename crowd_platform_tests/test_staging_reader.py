"""A run over several days reads each delivery folder once and classifies small days together,
with exactly the rows of single-day runs (crowd_platform/defs/staging/ingest.py, LandingReader).

Without Dagster: a hand-made landing folder of five deliveries (Parquet and CSV, late rows in the
next folder, an exact duplicate delivered late, a malformed CSV line, a header-only file, an
unreadable file, a folder after the run's last day), classified day by day with a reader of its
own each (the reference: what a run of that day alone does) and then as one run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

from crowd_platform.defs.staging import ingest
from crowd_platform.methodology import Methodology
from crowd_platform.pseudonym import pseudonymise
from crowd_platform.warehouse import DayRange, bind, load_sql
from crowd_platform_tests.conftest import ingest_connection

KEY = b"reader-test-key-not-a-secret-0123"
CELL = "240-01-1-1"
RUN = DayRange(dt.date(2022, 6, 1), dt.date(2022, 6, 4))
LATE_DAYS = 1
STOCKHOLM_SUMMER = dt.timezone(dt.timedelta(hours=2))
TABLES = ("events", "rejected_events", "load_audit")


def event(day: dt.date, minute: int, imsi: str, event_type: str = "data") -> dict[str, str]:
    at = dt.datetime.combine(day, dt.time(0), STOCKHOLM_SUMMER) + dt.timedelta(minutes=minute)
    return {"event_time": at.isoformat(), "imsi": imsi, "cell_id": CELL, "event_type": event_type, "tac": "35391800"}


def imsi(number: int) -> str:
    return f"24001{number:010d}"


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reader_landing")
    for offset in range(6):  # folders 05-31 (before the run) .. 06-05 (after it)
        day = RUN.first + dt.timedelta(days=offset - 1)
        folder = ingest.delivery_folder(root, day)
        folder.mkdir(parents=True)
        own = [event(day, 60 + 7 * n, imsi(n % 9 + offset)) for n in range(40)]
        late = [event(day - dt.timedelta(days=1), 1380 + n, imsi(n + 100)) for n in range(5)]
        rows = own + late
        if day == dt.date(2022, 6, 2):
            rows.append(late[0])  # the same late event delivered twice: a duplicate
            rows.append(event(day, 600, "not-an-imsi"))  # rejected
        frame = pl.DataFrame(rows)
        if day == dt.date(2022, 6, 3):  # a CSV delivery with a malformed line and a header-only file
            text = frame.write_csv()
            lines = text.splitlines()
            lines.insert(4, "2022-06-03T10:00:00+02:00,too,many,fields,here,and,more")
            (folder / "part-00000.csv").write_text("\n".join(lines) + "\n")
            (folder / "part-00001.csv").write_text(",".join(frame.columns) + "\n")
        else:
            frame.write_parquet(folder / "part-00000.parquet")
        if day == dt.date(2022, 6, 4):
            (folder / "part-00001.parquet").write_bytes(b"PAR1 this is not parquet")
    return root


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with ingest_connection(CELL, threads=2) as connection:
        yield connection


def staging_tables(con: duckdb.DuckDBPyConnection, params: dict) -> dict[str, pl.DataFrame]:
    tables = {}
    for table in TABLES:
        query = load_sql(f"staging/{table}")
        tables[table] = con.execute(query, bind(query, params)).pl()
    con.execute("DROP TABLE landed_events")
    return tables


def sorted_rows(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frame = pl.concat(frames)
    return frame.sort(frame.columns, nulls_last=True)


def count_reads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    reads: Counter = Counter()
    read_file = ingest._read_file

    def counted(con, path, *args, **kwargs):
        reads[f"{path.parent.name}/{path.name}"] += 1
        return read_file(con, path, *args, **kwargs)

    monkeypatch.setattr(ingest, "_read_file", counted)
    return reads


def test_one_run_reads_each_folder_once_and_equals_single_day_runs(con, landing, monkeypatch) -> None:
    methodology = Methodology()
    reference: dict[str, list[pl.DataFrame]] = {table: [] for table in TABLES}
    single_scans = []
    for day in RUN.single_days():
        scan = ingest.LandingScan()
        params = {**methodology.sql_params(), **day.params()}
        ingest.classify_day(con, landing, day, KEY, params, scan)
        single_scans.append(scan)
        for table, frame in staging_tables(con, params).items():
            reference[table].append(frame)
    assert sorted_rows(reference["load_audit"])["duplicate_rows"].sum() == 1
    assert "malformed CSV line: too many fields" in sorted_rows(reference["rejected_events"])["reason"].to_list()

    for max_rows in (1, 100, 10_000):  # every day alone, batches of two days, the whole run at once
        reads = count_reads(monkeypatch)
        ingest.drop_pseudonym_cache(con)  # every identity hashed again
        scan = ingest.LandingScan()
        reader = ingest.LandingReader(con, landing, RUN, LATE_DAYS, scan)
        candidate: dict[str, list[pl.DataFrame]] = {table: [] for table in TABLES}
        batches = []
        for batch in reader.batches(max_rows):
            batches.append(batch)
            params = {**methodology.sql_params(), **batch.params()}
            ingest.classify_day(con, landing, batch, KEY, params, scan, reader)
            for table, frame in staging_tables(con, params).items():
                candidate[table].append(frame)
        reader.close()
        assert [day for batch in batches for day in batch.days()] == RUN.days()
        assert len(batches) == {1: 4, 100: 2, 10_000: 1}[max_rows]
        for table in TABLES:
            assert sorted_rows(candidate[table]).equals(sorted_rows(reference[table])), (table, max_rows)
        # Each folder of the run and the one after it is read once, and nothing before the run.
        assert set(reads.values()) == {1}
        assert {name.split("/")[0] for name in reads} == {
            f"date={RUN.first + dt.timedelta(days=n)}" for n in range(len(RUN.days()) + LATE_DAYS)
        }
        assert sorted(scan.files_read) == sorted(f for s in single_scans for f in s.files_read)
        assert scan.unreadable == [u for s in single_scans for u in s.unreadable] != []
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'landed_2%'").fetchone() == (0,)


def test_a_folder_after_the_run_is_read_for_its_late_rows_only(con, landing) -> None:
    last = DayRange(dt.date(2022, 6, 4), dt.date(2022, 6, 4))
    reader = ingest.LandingReader(con, landing, last, LATE_DAYS, ingest.LandingScan())
    reader.use(last)
    # 06-05 holds 40 rows of its own day and 5 late rows of 06-04: only those 5 are kept.
    assert reader.rows_by_folder[dt.date(2022, 6, 5)] == 5
    assert reader.rows_by_folder[dt.date(2022, 6, 4)] == 45
    landed = con.execute("SELECT count(*), count(DISTINCT imsi) FROM landed").fetchone()
    assert landed == (40 + 5, 9 + 5)  # the day's own rows (not the late rows of 06-03) and its late rows
    reader.close()
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'landed'").fetchone() == (0,)


def test_pseudonyms_are_the_keys_of_each_identity_and_cached_for_the_run(con) -> None:
    identities = [imsi(n) for n in range(23)] + ["", " 240010000000001", "ö"]
    con.execute("CREATE OR REPLACE TEMP TABLE landed AS SELECT unnest(?) AS imsi", [identities + identities[:5]])
    assert ingest.register_pseudonyms(con, KEY) == len(identities)
    keys = dict(con.execute("SELECT imsi, device_key FROM pseudonyms").fetchall())
    assert keys == dict(zip(identities, pseudonymise(KEY, identities), strict=True))
    # The next day: its new identities are hashed, the known ones come from the cache, once each.
    later = identities[20:] + [imsi(n) for n in range(100, 104)]
    con.execute("CREATE OR REPLACE TEMP TABLE landed AS SELECT unnest(?) AS imsi", [later])
    assert ingest.register_pseudonyms(con, KEY) == len(later)
    keys = dict(con.execute("SELECT imsi, device_key FROM pseudonyms").fetchall())
    assert keys == dict(zip(later, pseudonymise(KEY, later), strict=True))
    cached = con.execute("SELECT count(*), count(DISTINCT imsi) FROM pseudonym_cache").fetchone()
    assert cached == (len(identities) + 4, len(identities) + 4)
    ingest.drop_raw_tables_keep_classified(con)
    ingest.drop_pseudonym_cache(con)
