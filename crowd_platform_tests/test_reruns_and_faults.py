"""Re-runs are idempotent; bad input and a wrong key fail loudly and leave the warehouse as it was."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
from pathlib import Path

import duckdb
import polars as pl
import pytest

from crowd_platform.runner import MaterializeError, materialize
from crowd_platform_tests.conftest import FIRST_DAY, BuiltWorld, build_world

SKIPPED_TABLES = {"event.event_report", "ops.pseudonym_key"}  # hold the time they were written


def snapshot(warehouse: Path) -> dict[str, pl.DataFrame]:
    """Every table's rows, sorted, so that two warehouses can be compared exactly."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('information_schema', 'pg_catalog')"
        ).fetchall()
        result = {}
        for (table,) in tables:
            if table in SKIPPED_TABLES:
                continue
            columns = [
                name for name, dtype in con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema || '.' || table_name = ?", [table]).fetchall()
                if dtype != "GEOMETRY" and not dtype.startswith("GEOMETRY")
            ]  # fmt: skip
            quoted = ", ".join(f'"{c}"' for c in columns)
            result[table] = con.execute(f"SELECT {quoted} FROM {table} ORDER BY ALL").pl()
        return result


def test_rematerialising_a_partition_gives_identical_rows(private_world: BuiltWorld) -> None:
    before = snapshot(private_world.warehouse)
    day = FIRST_DAY + dt.timedelta(days=4)
    materialize(day, day, quiet=True, progress=lambda _: None)
    materialize(day, day, quiet=True, progress=lambda _: None)
    after = snapshot(private_world.warehouse)
    assert before.keys() == after.keys()
    for table, frame in before.items():
        assert frame.equals(after[table]), f"{table} changed on re-run"


def test_rebuilding_core_and_marts_from_staged_events_changes_nothing(private_world: BuiltWorld) -> None:
    """The sensitivity analysis rebuilds without staging: with the same parameters, the same rows."""
    before = snapshot(private_world.warehouse)
    materialize(FIRST_DAY, FIRST_DAY + dt.timedelta(days=2), quiet=True, progress=lambda _: None, staging=False)
    after = snapshot(private_world.warehouse)
    for table, frame in before.items():
        assert frame.equals(after[table]), f"{table} changed"


def test_a_file_with_missing_columns_fails_naming_the_file_and_changes_nothing(
    private_world: BuiltWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(private_world.landing, landing)
    bad = landing / "events" / "date=2022-06-02" / "extra-001.csv"
    bad.write_text("when,imsi,cell_id\n2022-06-02T10:00:00+02:00,240010000000001,240-01-1-1\n")
    monkeypatch.setenv("CROWD_LANDING_DIR", str(landing))
    before = snapshot(private_world.warehouse)
    with pytest.raises(MaterializeError) as failure:
        materialize(dt.date(2022, 6, 2), dt.date(2022, 6, 2), quiet=True, progress=lambda _: None)
    message = str(failure.value)
    assert "events/date=2022-06-02/extra-001.csv" in message
    assert "event_time" in message and "event_type" in message  # the missing columns are named
    assert snapshot(private_world.warehouse).keys() == before.keys()
    for table, frame in snapshot(private_world.warehouse).items():
        assert frame.equals(before[table]), f"{table} changed by a failed run"


def test_an_unreadable_file_is_listed_and_the_rest_of_the_day_loads(
    private_world: BuiltWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(private_world.landing, landing)
    source = landing / "events" / "date=2022-06-04" / "part-000.parquet"
    truncated = source.with_name("part-001.parquet")
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    monkeypatch.setenv("CROWD_LANDING_DIR", str(landing))
    materialize(dt.date(2022, 6, 4), dt.date(2022, 6, 4), quiet=True, progress=lambda _: None)
    with duckdb.connect(str(private_world.warehouse), read_only=True) as con:
        audit = con.execute(
            "SELECT source_file, status, error, staged_rows FROM staging.load_audit WHERE event_date = '2022-06-04'"
        ).pl()
    listed = audit.filter(pl.col("status") == "unreadable")
    assert listed["source_file"].to_list() == ["events/date=2022-06-04/part-001.parquet"]
    assert listed["error"][0]
    assert audit.filter(pl.col("status") == "loaded")["staged_rows"].sum() > 0


def test_a_changed_pseudonym_key_fails_before_writing(
    private_world: BuiltWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(private_world.warehouse)
    monkeypatch.setenv("CROWD_PSEUDONYM_KEY", "another-key-another-key-another-key")
    with pytest.raises(MaterializeError, match="pseudonym key differs"):
        materialize(FIRST_DAY, FIRST_DAY, quiet=True, progress=lambda _: None)
    for table, frame in snapshot(private_world.warehouse).items():
        assert frame.equals(before[table]), table


def test_without_a_key_one_is_generated_once_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crowd_platform.pseudonym import PseudonymKeyError, load_key

    key_file = tmp_path / "config" / "pseudonym.key"
    monkeypatch.delenv("CROWD_PSEUDONYM_KEY")
    monkeypatch.setenv("CROWD_PSEUDONYM_KEY_FILE", str(key_file))
    first = load_key()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_key() == first and len(first) >= 32
    os.chmod(key_file, 0o644)
    with pytest.raises(PseudonymKeyError, match="readable by others"):
        load_key()


def test_a_world_without_dirt_rejects_nothing(tmp_path: Path) -> None:
    clean = build_world(tmp_path, n_residents=12, n_malmo=0, n_danes=0, n_machines=0, dirt=False)
    with duckdb.connect(str(clean.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM staging.rejected_events").fetchone() == (0,)
        assert con.execute("SELECT sum(duplicate_rows) FROM staging.load_audit").fetchone() == (0,)
