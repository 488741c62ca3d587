"""Reliability: crashes, late data, re-runs, reference versions and the DuckDB lock (docs/reliability.md).

The crash tests kill a real `materialize` process with SIGKILL at a chosen point of its writes
(the test-only hook CROWD_TEST_CRASH_AFTER in `warehouse.write_tables`), then re-run and compare
every table with a clean run's.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from crowd_platform.runner import materialize
from crowd_platform_tests.conftest import FIRST_DAY, LAST_DAY, BuiltWorld
from crowd_platform_tests.landing import CELL_A, HOME_HELSINGBORG
from crowd_platform_tests.test_reruns_and_faults import snapshot

LATE_FOLDER_DAY = LAST_DAY  # the late file lands in this day's folder, with events of the day before
MATERIALIZE = textwrap.dedent(
    """
    import datetime as dt, sys
    from crowd_platform.runner import materialize
    materialize(dt.date.fromisoformat(sys.argv[1]), dt.date.fromisoformat(sys.argv[2]), quiet=True,
                progress=lambda _: None)
    """
)


def quiet(first: dt.date, last: dt.date) -> None:
    materialize(first, last, quiet=True, progress=lambda _: None)


def assert_same(actual: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame], what: str) -> None:
    assert actual.keys() == expected.keys(), what
    differing = [table for table, frame in expected.items() if not frame.equals(actual[table])]
    assert not differing, f"{what}: {differing} differ"


def crash_materialize(first: dt.date, last: dt.date, crash_point: str) -> None:
    """`materialize` in another process, killed with SIGKILL at `crash_point` (see write_tables)."""
    env = {**os.environ, "CROWD_TEST_CRASH_AFTER": crash_point}
    done = subprocess.run(
        [sys.executable, "-c", MATERIALIZE, first.isoformat(), last.isoformat()],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, f"the run was not killed at {crash_point}: {done.stderr[-2000:]}"




# --- 1. crashes -------------------------------------------------------------------------------


def test_a_crash_mid_partition_leaves_the_previous_state_and_a_rerun_equals_a_clean_run(
    private_world: BuiltWorld,
) -> None:
    """Killed after core.stays deleted and re-inserted day D but before the COMMIT."""
    clean = snapshot(private_world.warehouse)
    day = FIRST_DAY + dt.timedelta(days=3)
    crash_materialize(day, day, "core.stays")
    # The killed transaction had deleted the day's stays: none of that is visible after the crash.
    assert_same(snapshot(private_world.warehouse), clean, "after the crash")
    quiet(day, day)
    assert_same(snapshot(private_world.warehouse), clean, "after the re-run")


# --- 2. late data -----------------------------------------------------------------------------


def write_late_file(landing: Path) -> Path:
    """12 people in zone A on the evening before LATE_FOLDER_DAY, delivered late into its folder."""
    day = LATE_FOLDER_DAY - dt.timedelta(days=1)
    lines = ["event_time,imsi,cell_id,event_type,tac"]
    for person in range(12):
        imsi = f"24001{7_000_000 + person:010d}"
        start = dt.datetime.combine(day, dt.time(19, 0)) + dt.timedelta(minutes=3 * person)
        for step in range(12):
            when = start + dt.timedelta(minutes=6 * step)
            lines.append(f"{when.isoformat()}+02:00,{imsi},{CELL_A},data,35391800")
        lines.append(f"{(start + dt.timedelta(hours=2)).isoformat()}+02:00,{imsi},{HOME_HELSINGBORG},data,35391800")
    path = landing / "events" / f"date={LATE_FOLDER_DAY.isoformat()}" / "late-001.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def late_world(world: BuiltWorld, tmp_path_factory: pytest.TempPathFactory) -> BuiltWorld:
    """The shared world's landing plus a late file, materialised with all data from the start."""
    root = tmp_path_factory.mktemp("late_world")
    landing = root / "landing"
    shutil.copytree(world.landing, landing)
    write_late_file(landing)
    warehouse = root / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CROWD_LANDING_DIR", str(landing))
        patch.setenv("CROWD_WAREHOUSE", str(warehouse))
        quiet(FIRST_DAY, LAST_DAY)
    return BuiltWorld(landing, warehouse, world.truth)


@pytest.fixture
def landing_before_late_file(world: BuiltWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the world's landing (file times kept) that the late file will land in."""
    landing = tmp_path / "landing"
    shutil.copytree(world.landing, landing)
    monkeypatch.setenv("CROWD_LANDING_DIR", str(landing))
    return landing


def run_job(instance: dg.DagsterInstance, job_name: str, tags: dict[str, str]) -> None:
    from crowd_platform.definitions import defs

    run_config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, tags=tags, run_config=run_config)
    assert result.success


def day_range(first: dt.date, last: dt.date) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}


def evaluate_sensor(instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    from crowd_platform.definitions import defs
    from crowd_platform.defs.sensors import late_data_sensor

    context = dg.build_sensor_context(instance=instance, definitions=defs)
    data = late_data_sensor.evaluate_tick(context)
    return list(data.run_requests or [])


def test_the_late_data_sensor_rerun_equals_a_run_with_all_data_from_the_start(
    private_world: BuiltWorld, landing_before_late_file: Path, late_world: BuiltWorld
) -> None:
    landing = landing_before_late_file
    before, expected = snapshot(private_world.warehouse), snapshot(late_world.warehouse)
    changed = {table for table, frame in before.items() if not frame.equals(expected[table])}
    assert {"staging.events", "core.zone_visits", "marts.zone_daily", "event.event_kpis"} <= changed
    with dg.DagsterInstance.ephemeral() as instance:
        # The days around the late file were materialised (and recorded) before it landed.
        first_recorded = LATE_FOLDER_DAY - dt.timedelta(days=2)
        run_job(instance, "daily_job", day_range(first_recorded, LATE_FOLDER_DAY))
        assert evaluate_sensor(instance) == [], "nothing changed: no run"
        assert_same(snapshot(private_world.warehouse), before, "re-running unchanged days")

        write_late_file(landing)
        [request] = evaluate_sensor(instance)
        assert request.job_name == "late_data_job"
        late_days = [LATE_FOLDER_DAY - dt.timedelta(days=1), LATE_FOLDER_DAY]
        assert request.tags["crowd/late_days"] == ",".join(d.isoformat() for d in late_days)
        # From the days whose stays read the changed days, to the last recorded day (the home
        # window would reach 29 days further).
        assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == first_recorded.isoformat()
        assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == LATE_FOLDER_DAY.isoformat()
        assert evaluate_sensor(instance)[0].run_key == request.run_key, "the same request until it has run"

        run_job(instance, "late_data_job", dict(request.tags))
        assert_same(snapshot(private_world.warehouse), expected, "after the late data run")
        assert evaluate_sensor(instance) == [], "up to date: no run"

        # A file rewritten in place (same name, new size) is a change too.
        late = landing / "events" / f"date={LATE_FOLDER_DAY.isoformat()}" / "late-001.csv"
        late.write_text(late.read_text() + late.read_text().splitlines()[1] + "\n")
        assert len(evaluate_sensor(instance)) == 1


def test_a_delivery_still_arriving_for_an_unmaterialised_day_triggers_nothing(
    landing_before_late_file: Path,
) -> None:
    """Day D reads D+1's folder for late arrivals; while D+1 is not materialised its folder is
    still being delivered, and every new file there would otherwise re-run D."""
    from crowd_platform.defs.sensors import affected_days
    from crowd_platform.defs.staging.ingest import landing_fingerprints
    from crowd_platform.warehouse import DayRange

    day = LATE_FOLDER_DAY - dt.timedelta(days=1)
    recorded = {day.isoformat(): landing_fingerprints(landing_before_late_file, DayRange(day, day), 1)}
    window_end = LAST_DAY + dt.timedelta(days=1)
    assert affected_days(recorded, landing_before_late_file, window_end) == []
    write_late_file(landing_before_late_file)  # lands in D+1's folder
    assert affected_days(recorded, landing_before_late_file, window_end) == []
    recorded[LATE_FOLDER_DAY.isoformat()] = {}  # once D+1 is materialised, D's late events count
    assert affected_days(recorded, landing_before_late_file, window_end) == [day]


def test_a_crash_between_two_assets_after_late_data_and_a_rerun_equals_a_clean_run(
    private_world: BuiltWorld, landing_before_late_file: Path, late_world: BuiltWorld
) -> None:
    """Killed after staging committed its last day of the run and before core started: staging
    holds the late data, core and marts do not; the re-run repairs it."""
    old = snapshot(private_world.warehouse)
    write_late_file(landing_before_late_file)
    first = LATE_FOLDER_DAY - dt.timedelta(days=2)
    crash_materialize(first, LATE_FOLDER_DAY, f"staging.load_audit:committed@{LATE_FOLDER_DAY}")
    crashed, expected = snapshot(private_world.warehouse), snapshot(late_world.warehouse)
    for table in crashed:
        if table.startswith("staging."):
            assert crashed[table].equals(expected[table]), f"{table}: the committed staging days"
        elif table.startswith(("core.", "marts.")):
            assert crashed[table].equals(old[table]), f"{table}: untouched before the crash"
    quiet(first, LATE_FOLDER_DAY)
    assert_same(snapshot(private_world.warehouse), expected, "after the re-run")


# --- 3. re-runs -------------------------------------------------------------------------------


def test_single_day_runs_equal_the_backfill_of_the_range(private_world: BuiltWorld) -> None:
    """The world was built by one run over all days; re-running days one at a time changes nothing."""
    backfill = snapshot(private_world.warehouse)
    for offset in (5, 6):
        day = FIRST_DAY + dt.timedelta(days=offset)
        quiet(day, day)
    assert_same(snapshot(private_world.warehouse), backfill, "single days after the backfill")


# --- 4. reference data versions ---------------------------------------------------------------


def reference_versions(instance: dg.DagsterInstance) -> dict[str, str]:
    from crowd_platform.definitions import defs

    versions = {}
    for key in defs.resolve_asset_graph().get_all_asset_keys():
        if key.path[0] != "reference":
            continue
        event = instance.get_latest_materialization_event(key)
        assert event is not None and event.asset_materialization is not None
        versions[key.to_user_string()] = event.asset_materialization.tags["dagster/data_version"]
    return versions


def test_a_changed_reference_file_gets_a_new_data_version_and_an_unchanged_one_keeps_it(
    private_world: BuiltWorld, landing_before_late_file: Path
) -> None:
    from crowd_platform.definitions import defs

    cells = landing_before_late_file / "reference" / "cells.csv"
    assert cells.is_file()
    with dg.DagsterInstance.ephemeral() as instance:
        run_job(instance, "reference_job", {})
        first = reference_versions(instance)
        run_job(instance, "reference_job", {})
        assert reference_versions(instance) == first, "same files, same data versions"
        cells.write_text(cells.read_text().rstrip("\n").replace(",300,LTE,", ",350,LTE,", 1) + "\n")
        run_job(instance, "reference_job", {})
        second = reference_versions(instance)
    changed = {key for key in first if first[key] != second[key]}
    # cells changed; cell_zone_weights, derived from it, gets a new version from its inputs.
    assert changed == {"reference/cells", "reference/cell_zone_weights"}
    graph = defs.resolve_asset_graph()
    for key in ("core/stays", "marts/zone_daily", "reference/cells", "staging/events"):
        assert graph.get(dg.AssetKey.from_user_string(key)).code_version, f"{key} has no code version"


# --- 5. the DuckDB lock -----------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from crowd_platform.warehouse import Warehouse
    path, name, hold, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    sys.stdin.readline()  # imports done: wait for the test's go
    started = time.monotonic()
    with Warehouse(database=path, lock_timeout_s=timeout).connect() as con:
        waited = time.monotonic() - started
        con.execute("CREATE TABLE IF NOT EXISTS ops.lock_test (writer VARCHAR, waited DOUBLE)")
        con.execute("INSERT INTO ops.lock_test VALUES (?, ?)", [name, waited])
        print("held", flush=True)
        time.sleep(hold)
    """
)


class Writer:
    """Another process that opens the warehouse for writing (through Warehouse.connect) on `go()`,
    writes a row, prints "held" and keeps the lock for `hold` seconds."""

    def __init__(self, database: Path, name: str, hold: float, timeout: float = 60) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(database), name, str(hold), str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def wait_until_held(self) -> None:
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "held", self.process.stderr.read()[-2000:]  # type: ignore[union-attr]

    def finish(self) -> None:
        _, stderr = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, stderr[-2000:]


def test_two_writer_processes_wait_for_the_lock_instead_of_failing(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    first, second = Writer(database, "first", hold=2), Writer(database, "second", hold=0)
    first.go()
    first.wait_until_held()
    second.go()  # DuckDB alone would fail at once with "Could not set lock on file"
    first.finish()
    second.finish()
    with duckdb.connect(str(database), read_only=True) as con:
        waited = dict(con.execute("SELECT writer, waited FROM ops.lock_test").fetchall())
    assert waited.keys() == {"first", "second"}
    assert waited["first"] < 1 <= waited["second"], "the second writer waited for the first to let go"


def test_a_lock_held_past_the_timeout_fails_clearly(tmp_path: Path) -> None:
    from crowd_platform.warehouse import Warehouse, WarehouseLockedError

    database = tmp_path / "warehouse.duckdb"
    holder = Writer(database, "holder", hold=30)
    holder.go()
    holder.wait_until_held()
    started = time.monotonic()
    try:
        warehouse = Warehouse(database=str(database), lock_timeout_s=1)
        with pytest.raises(WarehouseLockedError, match="still locked by another process after waiting 1 s"):
            warehouse.connect().__enter__()
        assert 1 <= time.monotonic() - started < 5
    finally:
        holder.process.kill()
        holder.process.communicate()


def test_a_reader_gets_a_snapshot_once_the_writer_lets_go(tmp_path: Path) -> None:
    from crowd_platform.warehouse import snapshot_for_reading

    database = tmp_path / "warehouse.duckdb"
    writer = Writer(database, "writer", hold=1.5)
    writer.go()
    writer.wait_until_held()
    with pytest.raises(duckdb.IOException, match="Could not set lock"):
        duckdb.connect(str(database), read_only=True)  # DuckDB itself: a reader fails at once
    copy = snapshot_for_reading(database, tmp_path / "copy", timeout_s=30)  # waits for the writer
    writer.finish()
    later = Writer(database, "later", hold=0)  # the copy holds no lock: writers go on
    later.go()
    later.finish()
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute("SELECT writer FROM ops.lock_test").fetchall() == [("writer",)]
