"""Bad input: every kind of broken delivery ends in one documented outcome (docs/reliability.md).

(A) the file loads, its bad rows are in staging.rejected_events with reason and 1-based row, and
    landed = staged + rejected + duplicates holds in staging.load_audit;
(B) the run fails before writing, with a message that names the file (relative to the landing
    folder) and the problem, and leaves the warehouse as it was;
(C) the file is listed as unreadable in staging.load_audit with its error, and the rest of the
    day loads.

The A and C cases share one landing folder (the small test world plus one bad file per case,
each with its own SIMs) and one materialisation of BAD_DAY; each B case runs alone.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import duckdb
import polars as pl
import pytest

from crowd_platform.runner import MaterializeError, materialize
from crowd_platform_tests.conftest import BuiltWorld
from crowd_platform_tests.landing import CELL_A
from crowd_platform_tests.test_reruns_and_faults import snapshot

BAD_DAY = dt.date(2022, 6, 4)  # its delivery folder holds part-000.parquet
FOLDER = f"events/date={BAD_DAY.isoformat()}"
NEXT_FOLDER = f"events/date={BAD_DAY + dt.timedelta(days=1)}"
HEADER = "event_time,imsi,cell_id,event_type,tac"
IMSI_LIKE = re.compile(r"[0-9]{14,}")


def imsi(case: int, n: int) -> str:
    """A SIM of its own for each case and row: no row of one case duplicates another's."""
    return f"2400177{case:03d}{n:05d}"


def line(case: int, n: int, *, time: str | None = None, cell: str = CELL_A) -> str:
    return f"{time or f'{BAD_DAY}T10:{n:02d}:00+02:00'},{imsi(case, n)},{cell},data,35391800"


def csv_text(case: int, rows: int, header: str = HEADER) -> str:
    return "\n".join([header, *(line(case, n) for n in range(1, rows + 1))]) + "\n"


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"\x00\xff\x00\x00" * 4)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def write_ac_cases(landing: Path) -> None:
    """One bad file per A or C case, all in BAD_DAY's folder (the re-delivery also in the next one)."""
    folder, original = landing / FOLDER, landing / FOLDER / "part-000.parquet"
    # (A) extra columns: ignored (listed in the asset's metadata), the rows load.
    (folder / "a-extra-columns.csv").write_text(csv_text(1, 3, HEADER + ",signal_dbm,note").replace(
        "35391800\n", "35391800,-71,ok\n"))  # fmt: skip
    # (A) text that is not a time, and a time without an offset (ambiguous): rejected rows.
    (folder / "a-bad-time.csv").write_text(
        "\n".join(
            [
                HEADER,
                line(2, 1),
                line(2, 2, time="yesterday"),
                line(2, 3, time=f"{BAD_DAY} 10:00:00"),
                line(2, 4, time="1654329600"),
            ]
        )
        + "\n"
    )
    # (A) wrong type in Parquet that can still be read: event_time as text.
    pl.DataFrame(
        {
            "event_time": [f"{BAD_DAY}T10:00:00+02:00", f"{BAD_DAY} 10:00:00"],
            "imsi": [imsi(3, 1), imsi(3, 2)],
            "cell_id": [CELL_A] * 2,
            "event_type": ["data"] * 2,
            "tac": ["35391800"] * 2,
        }
    ).write_parquet(folder / "a-text-time.parquet")
    # (A) a UTF-8 byte-order mark before the header.
    (folder / "a-bom.csv").write_bytes(b"\xef\xbb\xbf" + csv_text(4, 2).encode())
    # (A) a byte that is not UTF-8 inside a field of row 2 (Latin-1 e-acute).
    lines = csv_text(5, 3).encode().split(b"\n")
    lines[2] = lines[2].replace(b",data,", b",d\xe9ta,")
    (folder / "a-not-utf8.csv").write_bytes(b"\n".join(lines))
    # (A) a header and no rows.
    (folder / "a-header-only.csv").write_text(HEADER + "\n")
    # (A) ragged lines: row 2 has too few fields, row 4 too many; row 5 has an unknown cell.
    (folder / "a-ragged.csv").write_text(
        "\n".join(
            [
                HEADER,
                line(6, 1),
                f"{BAD_DAY}T10:02:00+02:00,{imsi(6, 2)},{CELL_A}",
                line(6, 3),
                line(6, 4) + ",surplus",
                line(6, 5, cell="240-01-404-1"),
            ]
        )
        + "\n"
    )
    # (A) the same file delivered twice more: in the same folder and in the next day's.
    shutil.copy(original, folder / "part-001-resent.parquet")
    shutil.copy(original, landing / NEXT_FOLDER / "part-001-resent.parquet")
    # (C) a Parquet file cut in half, and one whose footer (the schema and row groups) is overwritten.
    # Garbage inside a data page is NOT detected: a file without page checksums decodes it silently.
    data = original.read_bytes()
    (folder / "c-truncated.parquet").write_bytes(data[: len(data) // 2])
    (folder / "c-corrupt.parquet").write_bytes(data[:-108] + b"\xff" * 100 + data[-8:])
    # (C) empty files.
    (folder / "c-empty.csv").write_bytes(b"")
    (folder / "c-empty.parquet").write_bytes(b"")
    # (C) files that are not what their extension says.
    (folder / "c-png.csv").write_bytes(tiny_png())
    (folder / "c-csv-named.parquet").write_text(csv_text(7, 3))
    # (C) a gzip cut in the middle: DuckDB alone would load the rows before the cut.
    packed = gzip.compress(csv_text(8, 2000).encode())
    (folder / "c-cut.csv.gz").write_bytes(packed[: len(packed) // 2])


@pytest.fixture(scope="module")
def loaded(world: BuiltWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BAD_DAY materialised from the world's landing plus every A and C case; the warehouse path."""
    root = tmp_path_factory.mktemp("bad_input")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    shutil.copytree(world.landing, landing)
    shutil.copy(world.warehouse, warehouse)
    write_ac_cases(landing)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CROWD_LANDING_DIR", str(landing))
        patch.setenv("CROWD_WAREHOUSE", str(warehouse))
        materialize(BAD_DAY, BAD_DAY, quiet=True, progress=lambda _: None)
    return warehouse


def audit_of(warehouse: Path, name: str, folder: str = FOLDER) -> dict:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT * FROM staging.load_audit WHERE event_date = ? AND source_file = ?", [BAD_DAY, f"{folder}/{name}"]
        ).pl()
    assert rows.height == 1, f"{name}: {rows.height} audit rows"
    return rows.row(0, named=True)


def rejects_of(warehouse: Path, name: str) -> list[tuple[int, str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "SELECT source_row, reason FROM staging.rejected_events WHERE source_file = ? ORDER BY source_row",
            [f"{FOLDER}/{name}"],
        ).fetchall()


def assert_loaded(warehouse: Path, name: str, landed: int, staged: int, rejected: int = 0, duplicates: int = 0):
    audit = audit_of(warehouse, name)
    assert audit["status"] == "loaded" and audit["error"] is None
    assert (audit["landed_rows"], audit["staged_rows"], audit["rejected_rows"], audit["duplicate_rows"]) == (
        landed, staged, rejected, duplicates)  # fmt: skip
    assert audit["landed_rows"] == audit["staged_rows"] + audit["rejected_rows"] + audit["duplicate_rows"]


def assert_unreadable(warehouse: Path, name: str, *words: str) -> None:
    audit = audit_of(warehouse, name)
    assert audit["status"] == "unreadable" and audit["landed_rows"] is None
    for word in words:
        assert word.lower() in audit["error"].lower(), audit["error"]
    assert not IMSI_LIKE.search(audit["error"])


# --- the shared day: (A) and (C) ----------------------------------------------------------------


def test_the_rest_of_the_day_loads_and_every_row_is_accounted(loaded: Path, world: BuiltWorld) -> None:
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        before = con.execute(
            "SELECT staged_rows FROM staging.load_audit WHERE event_date = ? AND source_file = ?",
            [BAD_DAY, f"{FOLDER}/part-000.parquet"],
        ).fetchone()
    assert_loaded(loaded, "part-000.parquet", before[0], before[0])  # type: ignore[index]
    with duckdb.connect(str(loaded), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FROM staging.load_audit WHERE event_date = ? AND status = 'loaded' "
            "AND landed_rows <> staged_rows + rejected_rows + duplicate_rows",
            [BAD_DAY],
        ).fetchone() == (0,)
        texts = con.execute(
            "SELECT concat_ws('|', event_time, cell_id, event_type, tac) FROM staging.rejected_events "
            "UNION ALL SELECT error FROM staging.load_audit WHERE error IS NOT NULL"
        ).fetchall()
    assert not any(IMSI_LIKE.search(text or "") for (text,) in texts)


def test_extra_columns_are_ignored(loaded: Path) -> None:
    assert_loaded(loaded, "a-extra-columns.csv", 3, 3)


def test_text_that_is_not_a_time_is_rejected_row_by_row(loaded: Path) -> None:
    assert_loaded(loaded, "a-bad-time.csv", 4, 1, rejected=3)
    assert rejects_of(loaded, "a-bad-time.csv") == [(2, "unparseable event_time"), (3, "unparseable event_time"),
                                                    (4, "unparseable event_time")]  # fmt: skip


def test_a_parquet_time_as_text_is_read_like_csv_text(loaded: Path) -> None:
    assert_loaded(loaded, "a-text-time.parquet", 2, 1, rejected=1)
    assert rejects_of(loaded, "a-text-time.parquet") == [(2, "unparseable event_time")]


def test_a_byte_order_mark_is_skipped(loaded: Path) -> None:
    assert_loaded(loaded, "a-bom.csv", 2, 2)


def test_a_field_that_is_not_utf8_rejects_its_row_only(loaded: Path) -> None:
    assert_loaded(loaded, "a-not-utf8.csv", 3, 2, rejected=1)
    assert rejects_of(loaded, "a-not-utf8.csv") == [(2, "malformed CSV line: not UTF-8")]


def test_a_header_only_csv_is_listed_with_no_rows(loaded: Path) -> None:
    assert_loaded(loaded, "a-header-only.csv", 0, 0)


def test_ragged_lines_are_rejected_and_later_rows_keep_their_numbers(loaded: Path) -> None:
    assert_loaded(loaded, "a-ragged.csv", 5, 2, rejected=3)
    assert rejects_of(loaded, "a-ragged.csv") == [
        (2, "malformed CSV line: too few fields"),
        (4, "malformed CSV line: too many fields"),
        (5, "unknown cell_id"),
    ]


def test_a_file_delivered_again_counts_all_its_rows_as_duplicates(loaded: Path) -> None:
    original = audit_of(loaded, "part-000.parquet")
    again = audit_of(loaded, "part-001-resent.parquet")
    assert again["landed_rows"] == again["duplicate_rows"] == original["landed_rows"]
    next_day = audit_of(loaded, "part-001-resent.parquet", folder=NEXT_FOLDER)
    assert next_day["duplicate_rows"] == next_day["landed_rows"] > 0  # its rows of BAD_DAY


def test_a_truncated_parquet_is_unreadable(loaded: Path) -> None:
    assert_unreadable(loaded, "c-truncated.parquet")


def test_a_corrupt_parquet_is_unreadable(loaded: Path) -> None:
    assert_unreadable(loaded, "c-corrupt.parquet")


def test_an_empty_file_is_unreadable(loaded: Path) -> None:
    assert_unreadable(loaded, "c-empty.csv", "empty file")
    assert_unreadable(loaded, "c-empty.parquet", "empty file")


def test_a_file_that_is_not_what_its_extension_says_is_unreadable(loaded: Path) -> None:
    assert_unreadable(loaded, "c-png.csv")
    assert_unreadable(loaded, "c-csv-named.parquet")


def test_a_gzip_that_ends_early_is_unreadable_not_half_loaded(loaded: Path) -> None:
    assert_unreadable(loaded, "c-cut.csv.gz", "gzip")


# --- each on its own: (B) ------------------------------------------------------------------------


@pytest.fixture
def failing_run(world: BuiltWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A landing copy to break and a warehouse copy; returns a function that runs BAD_DAY and
    returns the error message after checking that the warehouse did not change."""
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    shutil.copytree(world.landing, landing)
    shutil.copy(world.warehouse, warehouse)
    monkeypatch.setenv("CROWD_LANDING_DIR", str(landing))
    monkeypatch.setenv("CROWD_WAREHOUSE", str(warehouse))

    def run() -> str:
        before = snapshot(warehouse)
        with pytest.raises(MaterializeError) as failure:
            materialize(BAD_DAY, BAD_DAY, quiet=True, progress=lambda _: None)
        after = snapshot(warehouse)
        assert after.keys() == before.keys()
        for table, frame in after.items():
            assert frame.equals(before[table]), f"{table} changed by a failed run"
        message = str(failure.value)
        assert not IMSI_LIKE.search(message), message
        return message

    return landing, run


def test_a_csv_with_missing_columns_fails(failing_run) -> None:
    landing, run = failing_run
    (landing / FOLDER / "b-missing.csv").write_text(f"when,imsi,cell_id\n{BAD_DAY}T10:00:00+02:00,{imsi(9, 1)},x\n")
    message = run()
    assert f"{FOLDER}/b-missing.csv: missing required column(s) event_time, event_type" in message


def test_a_parquet_time_that_is_an_integer_fails(failing_run) -> None:
    landing, run = failing_run
    pl.DataFrame({"event_time": [1654329600], "imsi": [imsi(10, 1)], "cell_id": [CELL_A], "event_type": ["data"]}
                 ).write_parquet(landing / FOLDER / "b-int-time.parquet")  # fmt: skip
    message = run()
    assert f"{FOLDER}/b-int-time.parquet: column event_time has type BIGINT" in message


def test_a_semicolon_csv_fails_naming_the_delimiter(failing_run) -> None:
    landing, run = failing_run
    (landing / FOLDER / "b-semicolon.csv").write_text(csv_text(11, 2).replace(",", ";"))
    message = run()
    assert f"{FOLDER}/b-semicolon.csv: missing required column(s)" in message
    assert "delimited by ';'" in message


def test_a_csv_without_header_fails_without_showing_the_imsi(failing_run) -> None:
    landing, run = failing_run
    (landing / FOLDER / "b-no-header.csv").write_text(csv_text(12, 3).split("\n", 1)[1])
    message = run()  # the first row is taken as the header: its IMSI must not reach the message
    assert f"{FOLDER}/b-no-header.csv: missing required column(s)" in message


def test_an_empty_day_folder_fails(failing_run) -> None:
    landing, run = failing_run
    for path in (landing / FOLDER).iterdir():
        path.unlink()
    assert f"{FOLDER}: the delivery folder of {BAD_DAY} holds no event files" in run()


def test_a_missing_day_folder_fails(failing_run) -> None:
    landing, run = failing_run
    shutil.rmtree(landing / FOLDER)
    assert f"{FOLDER}: no delivery folder for {BAD_DAY}" in run()


# --- no raw IMSI anywhere: tables, the Dagster event log, the run's output ---------------------

RUN_DAY = textwrap.dedent(
    """
    import datetime as dt, sys
    from crowd_platform.runner import materialize
    day = dt.date.fromisoformat(sys.argv[1])
    materialize(day, day)  # not quiet: the progress lines go to stdout
    """
)


def imsis_in(text: str, known: set[str]) -> set[str]:
    """The known IMSIs (14 or 15 digits) inside any run of 14 or more digits of `text`."""
    return {
        run[start : start + length]
        for run in IMSI_LIKE.findall(text)
        for length in (14, 15)
        for start in range(len(run) - length + 1)
        if run[start : start + length] in known
    }


def test_no_raw_imsi_in_any_table_event_log_or_output_of_runs_with_bad_rows(world: BuiltWorld, tmp_path: Path) -> None:
    """Two runs in a Dagster instance of their own: BAD_DAY with every A and C case (succeeds), then
    with a CSV whose header is a data row (fails; its message would quote the IMSI). Every table of
    every schema (each column as text), every file of DAGSTER_HOME (event log, run storage, captured
    step output) and the processes' stdout and stderr are searched for the IMSIs that landed."""
    landing, warehouse, home = tmp_path / "landing", tmp_path / "warehouse.duckdb", tmp_path / "dagster_home"
    shutil.copytree(world.landing, landing)
    shutil.copy(world.warehouse, warehouse)
    home.mkdir()
    write_ac_cases(landing)
    env = {
        **os.environ,
        "CROWD_LANDING_DIR": str(landing),
        "CROWD_WAREHOUSE": str(warehouse),
        "DAGSTER_HOME": str(home),
    }
    outputs = []
    for should_succeed in (True, False):
        if not should_succeed:
            (landing / FOLDER / "b-no-header.csv").write_text(csv_text(12, 3).split("\n", 1)[1])
        done = subprocess.run(
            [sys.executable, "-c", RUN_DAY, BAD_DAY.isoformat()], env=env, capture_output=True, text=True, timeout=300
        )
        assert (done.returncode == 0) is should_succeed, done.stderr[-2000:]
        outputs += [done.stdout, done.stderr]
    assert "b-no-header.csv: missing required column(s)" in outputs[-1], "the failure is in the output"

    known = {person.imsi for person in world.truth.persons}
    known |= {imsi(case, n) for case in range(30) for n in range(1, 2001)}
    landed_text = (landing / FOLDER / "b-no-header.csv").read_text()
    assert imsis_in(landed_text, known), "the search finds the IMSIs where they are"

    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') AND data_type NOT LIKE 'GEOMETRY%'"
        ).fetchall()
        assert {schema for schema, _, _ in columns} >= {"staging", "core", "marts", "reference", "ops"}
        for schema, table, column in columns:
            values = con.execute(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM {schema}.{table}').fetchall()
            found = imsis_in("\n".join(v for (v,) in values if v), known)
            assert not found, f"raw IMSI in {schema}.{table}.{column}"

    stored = [path for path in home.rglob("*") if path.is_file()]
    stored_text = "\n".join(path.read_bytes().decode("latin-1") for path in stored)
    assert "STEP_FAILURE" in stored_text and "staging.rejected_events" in stored_text, "the event log was searched"
    assert not imsis_in(stored_text, known), "raw IMSI in DAGSTER_HOME (event log, run storage or step output)"
    assert not imsis_in("\n".join(outputs), known), "raw IMSI in a run's stdout or stderr"
