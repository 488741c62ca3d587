"""Corrupt-but-readable files and the delivery manifest that catches them (docs/reliability.md).

Bytes flipped inside a Parquet data page usually still decode: DuckDB reads wrong values without
an error. The defence is the delivery manifest (`defs/staging/manifest.py`): size and SHA-256 of
every file, verified before a run writes anything.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from crowd_platform.defs.staging.ingest import event_files
from crowd_platform.defs.staging.manifest import ManifestError, file_digest, verify_folder, write_manifest
from crowd_platform.runner import MaterializeError, materialize
from crowd_platform_tests.conftest import FIRST_DAY, BuiltWorld
from crowd_platform_tests.test_reruns_and_faults import snapshot

PARQUET_DAY = FIRST_DAY + dt.timedelta(days=3)  # the test world delivers this day as Parquet


def read_rows(path: Path) -> pl.DataFrame | None:
    """The file's rows as DuckDB reads them, or None when DuckDB refuses the file."""
    try:
        with duckdb.connect() as con:
            return con.execute(f"SELECT * FROM read_parquet('{path}') ORDER BY ALL").pl()
    except duckdb.Error:
        return None


def flip_a_bit_inside_a_data_page(path: Path, column: str) -> int:
    """Flip one bit in the pages of `column` such that DuckDB still reads the file, but other
    values; returns the byte offset. Tries the bytes from the end of the column chunk backwards
    (page payload, away from the page headers) and keeps the first flip that does so."""
    clean_bytes = path.read_bytes()
    clean_rows = read_rows(path)
    assert clean_rows is not None
    parquet = pq.ParquetFile(path)
    chunk = parquet.metadata.row_group(0).column(parquet.schema_arrow.get_field_index(column))
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    for offset in range(start + chunk.total_compressed_size - 1, start, -1):
        damaged = bytearray(clean_bytes)
        damaged[offset] ^= 0x10
        path.write_bytes(bytes(damaged))
        rows = read_rows(path)
        if rows is not None and rows.height == clean_rows.height and not rows.equals(clean_rows):
            return offset
    raise AssertionError(f"no flip in {column} of {path} decodes to other values")


def copy_landing(world: BuiltWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(world.landing, landing)
    monkeypatch.setenv("CROWD_LANDING_DIR", str(landing))
    return landing


def quiet(day: dt.date) -> None:
    materialize(day, day, quiet=True, progress=lambda _: None)


# --- what a flipped page does -----------------------------------------------------------------


def test_a_flipped_page_decodes_to_wrong_values_and_only_page_checksums_or_a_manifest_notice(tmp_path: Path) -> None:
    """DuckDB reads a Parquet file with a flipped bit in a compressed data page without an error;
    pyarrow notices when the producer wrote page checksums; the file's SHA-256 always changes."""
    frame = pl.DataFrame(
        {"event_time": [dt.datetime(2022, 6, 1, 8, 0) + dt.timedelta(seconds=7 * i) for i in range(20_000)]}
    )
    with_crc = tmp_path / "with_crc.parquet"
    pq.write_table(frame.to_arrow(), with_crc, compression="zstd", write_page_checksum=True)
    before = file_digest(with_crc)
    flip_a_bit_inside_a_data_page(with_crc, "event_time")
    assert read_rows(with_crc) is not None, "DuckDB reads the damaged file without an error"
    with pytest.raises(OSError, match="CRC checksum verification failed"):
        pq.ParquetFile(with_crc, page_checksum_verification=True).read()
    size, sha256 = file_digest(with_crc)
    assert size == before[0] and sha256 != before[1]


def test_without_a_manifest_a_flipped_page_loads_wrong_values(
    private_world: BuiltWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gap the manifest closes: the run succeeds, nothing is unreadable, the staged rows differ."""
    landing = copy_landing(private_world, tmp_path, monkeypatch)
    clean = snapshot(private_world.warehouse)
    [target] = event_files(landing / "events" / f"date={PARQUET_DAY}")
    flip_a_bit_inside_a_data_page(target, "event_time")
    quiet(PARQUET_DAY)
    damaged = snapshot(private_world.warehouse)
    assert not damaged["staging.events"].equals(clean["staging.events"])
    with duckdb.connect(str(private_world.warehouse), read_only=True) as con:
        statuses = con.execute("SELECT DISTINCT status FROM staging.load_audit WHERE event_date = ?", [PARQUET_DAY])
        assert statuses.fetchall() == [("loaded",)]


def test_with_a_manifest_a_flipped_page_fails_the_run_naming_the_file_and_changes_nothing(
    private_world: BuiltWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = copy_landing(private_world, tmp_path, monkeypatch)
    for folder in (landing / "events").iterdir():
        write_manifest(folder, event_files(folder))
    (landing / "events" / f"date={PARQUET_DAY}" / "README.txt").write_text("not data: ingest ignores it\n")
    clean = snapshot(private_world.warehouse)
    quiet(PARQUET_DAY)  # intact files: verified, and the same rows as without manifests
    assert all(frame.equals(clean[table]) for table, frame in snapshot(private_world.warehouse).items())

    [target] = event_files(landing / "events" / f"date={PARQUET_DAY}")
    flip_a_bit_inside_a_data_page(target, "event_time")
    with pytest.raises(MaterializeError) as failure:
        quiet(PARQUET_DAY)
    message = str(failure.value)
    assert f"events/date={PARQUET_DAY}/{target.name}: SHA-256" in message and "manifest.json" in message
    after = snapshot(private_world.warehouse)
    assert after.keys() == clean.keys()
    assert [table for table, frame in after.items() if not frame.equals(clean[table])] == []


# --- the manifest's rules ---------------------------------------------------------------------


@pytest.fixture
def delivery(tmp_path: Path) -> Path:
    """A delivery folder with two event files and their manifest."""
    folder = tmp_path / "landing" / "events" / "date=2022-06-01"
    folder.mkdir(parents=True)
    (folder / "part-000.csv").write_text("event_time,imsi,cell_id,event_type\n")
    (folder / "part-001.parquet").write_bytes(b"PAR1 not really, the manifest only hashes bytes")
    write_manifest(folder, event_files(folder))
    return folder


def verify(folder: Path) -> int:
    return verify_folder(folder, folder.parents[1])


def test_an_intact_delivery_verifies_and_a_folder_without_manifest_is_not_checked(delivery: Path) -> None:
    assert verify(delivery) == 2
    (delivery / "manifest.json").unlink()
    (delivery / "part-001.parquet").write_bytes(b"anything")
    assert verify(delivery) == 0


def test_a_late_file_with_its_own_manifest_verifies_and_one_without_fails(delivery: Path) -> None:
    late = delivery / "late-001.csv"
    late.write_text("event_time,imsi,cell_id,event_type\n")
    with pytest.raises(ManifestError, match=r"date=2022-06-01/late-001.csv: not listed in the folder's manifest"):
        verify(delivery)
    write_manifest(delivery, [late], name="manifest-late-001.json")
    assert verify(delivery) == 3


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("shorter", r"part-001.parquet: \d+ bytes, manifest.json lists \d+ \(still arriving, cut short"),
        ("missing", r"part-001.parquet: listed in manifest.json but not delivered"),
        ("invalid", r"manifest.json: not a valid delivery manifest"),
        ("contradicting", r"lists part-001.parquet with another size or checksum than manifest"),
    ],
)
def test_a_delivery_that_breaks_its_manifest_fails_naming_the_file(delivery: Path, damage: str, message: str) -> None:
    target = delivery / "part-001.parquet"
    if damage == "shorter":
        target.write_bytes(target.read_bytes()[:-5])
    elif damage == "missing":
        target.unlink()
    elif damage == "invalid":
        (delivery / "manifest.json").write_text('{"files": "part-001.parquet"}')
    else:
        listed = json.loads((delivery / "manifest.json").read_text())
        listed["files"][1]["sha256"] = "0" * 64
        (delivery / "manifest-2.json").write_text(json.dumps(listed))
    with pytest.raises(ManifestError, match=message):
        verify(delivery)


def test_the_simulator_writes_a_manifest_that_verifies(tmp_path: Path) -> None:
    from crowd_platform.simulate import simulate_world

    landing = tmp_path / "landing"
    day = dt.date(2022, 6, 14)
    simulate_world(landing, tmp_path / "truth", scale=0.002, seed=7, start=day, end=day, progress=False)
    folders = sorted((landing / "events").iterdir())
    assert folders
    for folder in folders:
        assert verify_folder(folder, landing) == len(event_files(folder)) > 0
