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
from crowd_platform_tests.landing import write_late_file
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


def crash_materialize(first: dt.date, last: dt.date, crash_point: str) -> str:
    """`materialize` in another process, killed with SIGKILL at `crash_point` (see write_tables);
    returns its stderr."""
    env = {**os.environ, "CROWD_TEST_CRASH_AFTER": crash_point}
    done = subprocess.run(
        [sys.executable, "-c", MATERIALIZE, first.isoformat(), last.isoformat()],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, f"the run was not killed at {crash_point}: {done.stderr[-2000:]}"
    return done.stderr


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


@pytest.fixture(scope="module")
def late_world(world: BuiltWorld, tmp_path_factory: pytest.TempPathFactory) -> BuiltWorld:
    """The shared world's landing plus a late file, materialised with all data from the start."""
    root = tmp_path_factory.mktemp("late_world")
    landing = root / "landing"
    shutil.copytree(world.landing, landing)
    write_late_file(landing, LATE_FOLDER_DAY)
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


class SensorTicks:
    """Evaluates the late data sensor tick after tick, carrying its cursor as the daemon does."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance, self.cursor = instance, None

    def tick(self) -> list[dg.RunRequest]:
        from crowd_platform.definitions import defs
        from crowd_platform.defs.sensors import late_data_sensor

        context = dg.build_sensor_context(instance=self.instance, definitions=defs, cursor=self.cursor)
        data = late_data_sensor.evaluate_tick(context)
        self.cursor = data.cursor if data.cursor is not None else self.cursor
        return list(data.run_requests or [])


def partitions_by_asset(request: dg.RunRequest) -> dict[str, list[str]]:
    subset = request.asset_graph_subset
    assert subset is not None, "the sensor requests a backfill"
    requested = {
        key.to_user_string(): sorted(part.get_partition_keys())
        for key, part in subset.partitions_subsets_by_asset_key.items()
    }
    return {**requested, **{key.to_user_string(): [] for key in subset.non_partitioned_asset_keys}}


def run_backfill_in_order(instance: dg.DagsterInstance, request: dg.RunRequest) -> int:
    """What the backfill daemon does with the request, in process: each asset on its requested
    days, in dependency order (assets with the same days share a run). Returns the runs."""
    from crowd_platform.definitions import defs

    wanted = partitions_by_asset(request)
    graph = defs.resolve_asset_graph()
    runs: list[tuple[list[dg.AssetKey], list[str]]] = []
    for key in graph.toposorted_asset_keys:
        days = wanted.get(key.to_user_string())
        if days is None:
            continue
        if runs and runs[-1][1] == days:
            runs[-1][0].append(key)
        else:
            runs.append(([key], days))
    job = defs.resolve_implicit_global_asset_job_def()
    for keys, days in runs:
        tags = {}
        if days:  # partitioned: one range; the backfill's subsets here are contiguous
            first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
            assert len(days) == (last - first).days + 1, f"{keys}: contiguous days"
            tags = day_range(first, last)
        run_config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        result = job.execute_in_process(instance=instance, asset_selection=keys, tags=tags, run_config=run_config)
        assert result.success
    return len(runs)


def test_the_late_data_sensor_reruns_only_what_it_must_and_equals_a_run_with_all_data_from_the_start(
    private_world: BuiltWorld, landing_before_late_file: Path, late_world: BuiltWorld
) -> None:
    landing = landing_before_late_file
    before, expected = snapshot(private_world.warehouse), snapshot(late_world.warehouse)
    changed = {table for table, frame in before.items() if not frame.equals(expected[table])}
    assert {"staging.events", "core.zone_visits", "marts.zone_daily", "marts.event_kpis"} <= changed
    with dg.DagsterInstance.ephemeral() as instance:
        sensor = SensorTicks(instance)
        # The days around the late file were materialised (and recorded) before it landed.
        first_recorded = LATE_FOLDER_DAY - dt.timedelta(days=3)
        run_job(instance, "daily_job", day_range(first_recorded, LATE_FOLDER_DAY))
        assert sensor.tick() == [], "nothing changed: no run"
        assert_same(snapshot(private_world.warehouse), before, "re-running unchanged days")

        write_late_file(landing, LATE_FOLDER_DAY)
        [request] = sensor.tick()
        late_days = [LATE_FOLDER_DAY - dt.timedelta(days=1), LATE_FOLDER_DAY]
        assert request.tags["crowd/late_days"] == ",".join(d.isoformat() for d in late_days)
        requested = partitions_by_asset(request)

        def days(first: dt.date, last: dt.date) -> list[str]:
            return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]

        # Staging only on the two affected days; stays (which read the neighbouring days) and
        # visits reach further back; everything stops at the last materialised day.
        for table in ("staging/events", "staging/rejected_events", "staging/load_audit"):
            assert requested[table] == days(*late_days), table
        assert requested["core/stays"] == days(LATE_FOLDER_DAY - dt.timedelta(days=3), LATE_FOLDER_DAY)
        assert requested["marts/zone_daily"] == days(first_recorded, LATE_FOLDER_DAY)
        unpartitioned = [table for table, partitions in requested.items() if not partitions]
        assert "event/event_report" in unpartitioned and any(t.endswith("/event_kpis") for t in unpartitioned)
        assert not [
            table
            for table, partitions in requested.items()
            if partitions and partitions[0] < first_recorded.isoformat()
        ]
        assert sensor.tick() == [], "requested once: the next tick waits for the backfill"

        run_backfill_in_order(instance, request)
        assert_same(snapshot(private_world.warehouse), expected, "after the late data backfill")
        assert sensor.tick() == [], "up to date: no run"

        # A file rewritten in place (same name, new size) is a change too.
        late = landing / "events" / f"date={LATE_FOLDER_DAY.isoformat()}" / "late-001.csv"
        late.write_text(late.read_text() + late.read_text().splitlines()[1] + "\n")
        assert len(sensor.tick()) == 1


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
    write_late_file(landing_before_late_file, LATE_FOLDER_DAY)  # lands in D+1's folder
    assert affected_days(recorded, landing_before_late_file, window_end) == []
    recorded[LATE_FOLDER_DAY.isoformat()] = {}  # once D+1 is materialised, D's late events count
    assert affected_days(recorded, landing_before_late_file, window_end) == [day]


def test_a_crash_between_two_assets_after_late_data_and_a_rerun_equals_a_clean_run(
    private_world: BuiltWorld, landing_before_late_file: Path, late_world: BuiltWorld
) -> None:
    """Killed after staging committed its last day of the run and before core started: staging
    holds the late data, core and marts do not; the re-run repairs it."""
    old = snapshot(private_world.warehouse)
    write_late_file(landing_before_late_file, LATE_FOLDER_DAY)
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


@pytest.mark.parametrize("stage", ["before_header", "before_truncate"])
def test_a_crash_inside_duckdbs_checkpoint_replays_the_wal_and_a_rerun_equals_a_clean_run(
    private_world: BuiltWorld, landing_before_late_file: Path, late_world: BuiltWorld, stage: str
) -> None:
    """Killed inside DuckDB's checkpoint (copying the WAL into the database file) after staging
    committed its last day with late data. before_header: the new blocks are written, the header
    still points to the old state, so the next open must replay the whole WAL. before_truncate:
    the header already points to the new state and the WAL is still there, so the next open must
    not apply it twice."""
    old = snapshot(private_world.warehouse)
    write_late_file(landing_before_late_file, LATE_FOLDER_DAY)
    first = LATE_FOLDER_DAY - dt.timedelta(days=2)
    stderr = crash_materialize(first, LATE_FOLDER_DAY, f"staging.load_audit:checkpoint-{stage}@{LATE_FOLDER_DAY}")
    assert "Checkpoint aborted" in stderr, stderr[-2000:]
    wal = private_world.warehouse.with_name(private_world.warehouse.name + ".wal")
    assert wal.is_file() and wal.stat().st_size > 0, "killed before the checkpoint removed the WAL"
    # The warehouse opens; the WAL replay gives every committed day of staging, nothing more.
    crashed, expected = snapshot(private_world.warehouse), snapshot(late_world.warehouse)
    for table in crashed:
        if table.startswith("staging."):
            assert crashed[table].equals(expected[table]), f"{table}: the committed staging days"
        elif table.startswith(("core.", "marts.")):
            assert crashed[table].equals(old[table]), f"{table}: untouched before the crash"
    quiet(first, LATE_FOLDER_DAY)
    assert not wal.exists(), "the re-run checkpointed the WAL"
    assert_same(snapshot(private_world.warehouse), expected, "after the re-run")


def report_written(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT * FROM event.event_report").fetchall()


def each_partition_old_or_new(frame: pl.DataFrame, old: pl.DataFrame, new: pl.DataFrame) -> bool:
    """Whether every day of a table (the whole table if it has no days) is all old or all new."""
    if "event_date" not in frame.columns:
        return frame.equals(old) or frame.equals(new)
    days = pl.concat([frame["event_date"], old["event_date"], new["event_date"]]).unique()
    for day in days:
        rows = frame.filter(pl.col("event_date") == day)
        if not (
            rows.equals(old.filter(pl.col("event_date") == day)) or rows.equals(new.filter(pl.col("event_date") == day))
        ):
            return False
    return True


def test_a_crash_between_two_marts_leaves_each_day_whole_and_a_rerun_equals_a_clean_run(
    private_world: BuiltWorld, landing_before_late_file: Path, late_world: BuiltWorld
) -> None:
    """Killed right after marts.zone_daily committed its last day, with late data: every day of
    every mart is either all old or all new (never a mix within a day), the event layer is old;
    the re-run repairs it."""
    old = snapshot(private_world.warehouse)
    write_late_file(landing_before_late_file, LATE_FOLDER_DAY)
    first = LATE_FOLDER_DAY - dt.timedelta(days=2)
    crash_materialize(first, LATE_FOLDER_DAY, f"marts.zone_daily:committed@{LATE_FOLDER_DAY}")
    crashed, expected = snapshot(private_world.warehouse), snapshot(late_world.warehouse)
    assert crashed["marts.zone_daily"].equals(expected["marts.zone_daily"])
    assert not old["marts.zone_daily"].equals(expected["marts.zone_daily"]), "the late data changes it"
    for table, frame in crashed.items():
        if table.startswith(("staging.", "core.")):
            assert frame.equals(expected[table]), f"{table}: committed before the crash"
        elif table.startswith("marts."):
            assert each_partition_old_or_new(frame, old[table], expected[table]), f"{table}: a day half written"
    kpis = next(table for table in crashed if table.endswith(".event_kpis"))
    assert crashed[kpis].equals(old[kpis]) and not old[kpis].equals(expected[kpis]), "the KPIs not yet rebuilt"
    quiet(first, LATE_FOLDER_DAY)
    assert_same(snapshot(private_world.warehouse), expected, "after the re-run")


def test_a_crash_inside_the_event_layer_keeps_the_previous_report_and_a_rerun_equals_a_clean_run(
    private_world: BuiltWorld, landing_before_late_file: Path, late_world: BuiltWorld
) -> None:
    """Killed while the report's row is written, before its COMMIT (the KPIs were committed)."""
    report_before = report_written(private_world.warehouse)
    write_late_file(landing_before_late_file, LATE_FOLDER_DAY)
    first = LATE_FOLDER_DAY - dt.timedelta(days=2)
    crash_materialize(first, LATE_FOLDER_DAY, "event.event_report")
    expected = snapshot(late_world.warehouse)
    assert_same(snapshot(private_world.warehouse), expected, "every table but the report, after the crash")
    assert report_written(private_world.warehouse) == report_before, "the report's previous row"
    quiet(first, LATE_FOLDER_DAY)
    assert_same(snapshot(private_world.warehouse), expected, "after the re-run")
    assert report_written(private_world.warehouse) != report_before


# --- 3. re-runs -------------------------------------------------------------------------------


def float_bits(frame: pl.DataFrame) -> pl.DataFrame:
    """Floating columns as their IEEE 754 bit patterns: equal frames then mean bit-identical figures."""
    return frame.with_columns(
        pl.Series(name, frame[name].to_numpy(allow_copy=True).astype("float64").view("int64"))
        for name, dtype in frame.schema.items()
        if dtype.is_float()
    )


def test_the_publication_layers_rebuilt_day_by_day_equal_the_backfill_to_the_bit(private_world: BuiltWorld) -> None:
    """Marts and event KPIs, rebuilt one day at a time (core and marts, then the event layer), hold
    exactly the rows and bit-identical floats of the one-run backfill (fsum: no thread-order drift)."""
    published = ("marts.", "event.")
    backfill = {t: float_bits(f) for t, f in snapshot(private_world.warehouse).items() if t.startswith(published)}
    floats = [
        t for t, f in snapshot(private_world.warehouse).items() if t in backfill and any(d.is_float() for d in f.dtypes)
    ]
    assert len(floats) >= 3, "zone_daily, the other marts and the KPIs carry floating estimates"
    for offset in (3, 4, 5):
        day = FIRST_DAY + dt.timedelta(days=offset)
        materialize(day, day, quiet=True, progress=lambda _: None, staging=False)
    rebuilt = {t: float_bits(f) for t, f in snapshot(private_world.warehouse).items() if t.startswith(published)}
    assert_same(rebuilt, backfill, "the publication layers rebuilt day by day")


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
    # cells changed; cell_zone_weights and zone_attribution, derived from it, get new versions from their inputs.
    assert changed == {"reference/cells", "reference/cell_zone_weights", "reference/zone_attribution"}
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
