"""Property tests of the ingest's row classification on arbitrary field values, without Dagster.

Each example writes one CSV or Parquet delivery of arbitrary strings (plus some valid rows), runs
`ingest.classify_day` on a DuckDB connection with a hand-made `reference.cells`, builds the three
staging tables from their SQL, and checks: nothing crashes, every landed row is accounted for, and
no IMSI of the input appears in any output row.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowd_platform.defs.staging import ingest
from crowd_platform.methodology import Methodology
from crowd_platform.warehouse import DayRange, bind, load_sql
from crowd_platform_tests.conftest import ingest_connection

DAY = dt.date(2022, 6, 2)
KEY = b"property-test-key-not-a-secret-0123"
CELL = "240-01-1-1"
EXAMPLES = 100  # per format; two formats
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
IMSI = re.compile(r"[0-9]{14,15}")

imsis = st.from_regex(r"\A(240|238|310)[0-9]{11,12}\Z")
valid_rows = st.fixed_dictionaries(
    {
        "event_time": st.integers(0, 24 * 3600 - 1).map(
            lambda s: (
                dt.datetime(2022, 6, 2, tzinfo=dt.UTC) - dt.timedelta(hours=2) + dt.timedelta(seconds=s)
            ).isoformat()
        ),
        "imsi": imsis,
        "cell_id": st.just(CELL),
        "event_type": st.sampled_from(["data", "call", "sms", "attach", "weird"]),
        "tac": st.one_of(st.none(), st.just("35391800")),
    }
)
text = st.text(max_size=20)
any_rows = st.fixed_dictionaries(
    {
        "event_time": st.one_of(st.none(), text, st.just("2022-06-02T10:00:00+02:00"), st.just("2022-06-02 10:00")),
        "imsi": st.one_of(st.none(), text, imsis, imsis.map(lambda i: f" {i}")),
        "cell_id": st.one_of(st.none(), text, st.just(CELL), imsis),
        "event_type": st.one_of(st.none(), text, imsis),
        "tac": st.one_of(st.none(), text, imsis, st.just("35391800")),
    }
)
deliveries = st.lists(st.one_of(valid_rows, any_rows), min_size=0, max_size=12)
COLUMNS = ("event_time", "imsi", "cell_id", "event_type", "tac")
# A new file name per example: DuckDB caches file contents by path and modification time, and a
# file rewritten within the same second at the same path could be served from that cache.
FILE_NUMBERS = itertools.count()


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with ingest_connection(CELL, threads=1) as connection:
        yield connection


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property_landing")


def classify(
    con: duckdb.DuckDBPyConnection, landing: Path, rows: list[dict], fmt: str, scan: ingest.LandingScan | None = None
) -> dict[str, pl.DataFrame]:
    """Write `rows` as the day's only file, classify it, and return the three staging tables."""
    shutil.rmtree(landing / "events", ignore_errors=True)
    folder = ingest.delivery_folder(landing, DAY)
    folder.mkdir(parents=True)
    frame = pl.DataFrame(rows, schema={c: pl.String for c in COLUMNS})
    if fmt == "csv":
        frame.write_csv(folder / f"part-{next(FILE_NUMBERS):05d}.csv")
    else:
        frame.write_parquet(folder / f"part-{next(FILE_NUMBERS):05d}.parquet")
    params = {**Methodology().sql_params(), **DayRange(DAY, DAY).params()}
    ingest.classify_day(con, landing, DayRange(DAY, DAY), KEY, params, scan or ingest.LandingScan())
    tables = {}
    for table in ("events", "rejected_events", "load_audit"):
        query = load_sql(f"staging/{table}")
        tables[table] = con.execute(query, bind(query, params)).pl()
    return tables


def check_properties(tables: dict[str, pl.DataFrame], rows: list[dict]) -> None:
    audit = tables["load_audit"]
    assert audit["status"].to_list() == ["loaded"], audit["error"].to_list()
    assert audit["landed_rows"].to_list() == [len(rows)]
    assert (audit["landed_rows"] == audit["staged_rows"] + audit["rejected_rows"] + audit["duplicate_rows"]).all()
    assert audit["staged_rows"].sum() == tables["events"].height
    assert audit["rejected_rows"].sum() == tables["rejected_events"].height
    rejected_rows = tables["rejected_events"]["source_row"].to_list()
    assert len(set(rejected_rows)) == len(rejected_rows) and all(1 <= r <= len(rows) for r in rejected_rows)
    input_imsis = {m for row in rows for value in row.values() if value for m in IMSI.findall(value)}
    for frame in tables.values():
        for column in frame.columns:
            if frame[column].dtype == pl.String:
                for value in frame[column].drop_nulls():
                    assert not any(imsi in value for imsi in input_imsis), f"raw IMSI in {column}"


@PROPERTY_SETTINGS
@given(rows=deliveries)
def test_csv_of_arbitrary_fields_is_fully_accounted_and_carries_no_imsi(con, landing, rows) -> None:
    check_properties(classify(con, landing, rows, "csv"), rows)


@PROPERTY_SETTINGS
@given(rows=deliveries)
def test_parquet_of_arbitrary_fields_is_fully_accounted_and_carries_no_imsi(con, landing, rows) -> None:
    check_properties(classify(con, landing, rows, "parquet"), rows)


def test_a_valid_row_is_staged_and_a_duplicate_counted(con, landing) -> None:
    row = {"event_time": "2022-06-02T10:00:00+02:00", "imsi": "240010000000001", "cell_id": CELL,
           "event_type": "data", "tac": "35391800"}  # fmt: skip
    for fmt in ("csv", "parquet"):
        scan = ingest.LandingScan()
        tables = classify(con, landing, [row, row], fmt, scan)
        assert tables["load_audit"].select("staged_rows", "duplicate_rows").row(0) == (1, 1)
        assert scan.extra_columns == {}  # the folder name date=... is not a column
