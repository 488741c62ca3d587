"""Backfills and the late data sensor under the real Dagster daemon, end to end.

    .venv/bin/python bench/daemon_check.py --work /tmp/dc [--first 2022-06-01 --last 2022-06-10]
        [--concurrent 3] [--timeout 900]

The tests drive the late data sensor by hand and run its backfill in process; this script runs the
real path, as a user of the UI would (docs/reliability.md has the figures):

1. A small world: `crowd_platform_tests.landing.write_landing` for --first .. --last (default
   2022-06-01 .. 2022-06-10: about 8 minutes in all) under WORK/landing, with the partition window
   on the same days; a DAGSTER_HOME under WORK with deploy/dagster.yaml (pool `duckdb`: one step at
   a time across all runs); CROWD_LANDING_DIR, CROWD_WAREHOUSE, CROWD_PARTITION_START/END and a
   throwaway CROWD_PSEUDONYM_KEY pointing into WORK.
2. `dagster dev -w workspace.yaml` (webserver and daemon) on a free port, in its own process group;
   the script waits until the code location is loaded and the sensor and backfill daemons are healthy.
3. Whole window: one backfill of every asset over every partition, launched with the GraphQL mutation
   the UI's "Materialize all" sends (`launchPartitionBackfill`, `allPartitions`).
   Concurrency: then `--concurrent` backfills of the daily assets over consecutive slices of the
   window plus one more backfill of everything, all launched at once, so that many runs are queued
   together and their steps compete for the pool's single slot. Once the first of their runs has
   started, `crowd-platform materialize` of the window's third and fourth days runs from the command
   line twice, one after the other: with the same DAGSTER_HOME (its in-process steps claim the
   same pool slots) and with a DAGSTER_HOME of its own (outside the pool: it meets the daemon's
   runs only at DuckDB's file lock, which it and they wait for).
4. Late data: a late file lands in the delivery folder of 2022-06-06 (events of the evening of
   06-05), the sensor is started through GraphQL (`startSensor`), the daemon's tick requests a
   backfill and the backfill daemon runs it. Checked: (a) staging was requested on exactly the
   affected days 06-05 and 06-06, and the runs materialised exactly the requested partitions of
   every asset; (b) the sensor's tick succeeded, the backfill completed and every run succeeded;
   (c) the sensor's logic then finds nothing left to do; and, with the daemon stopped, (d) the
   warehouse equals a clean in-process run (`crowd_platform.runner.materialize`, ephemeral
   instance) of the same landing into a second warehouse, by bench/compare_warehouses.py's
   comparison.
5. For each phase: backfills, runs, steps (failed), partitions, asset materialisations, lock failures
   ("Could not set lock", `WarehouseLockedError`) and lock waits ("is locked by another process")
   in the runs' event logs, and lock failures anywhere under DAGSTER_HOME (compute logs) or in the
   output of `dagster dev`; wall time from launch to the last run's end.

Prints the figures, writes them to WORK/daemon_check.json and exits 1 when any check fails. The
`dagster dev` process group is always stopped (runs still going are terminated first). WORK is
wiped at the start. It runs the code next to it (PYTHONPATH is set to this checkout).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIRST_DAY = dt.date(2022, 6, 1)
DEFAULT_LAST_DAY = dt.date(2022, 6, 10)
LATE_FOLDER_DAY = dt.date(2022, 6, 6)  # the late file lands here, with events of the day before
THROWAWAY_KEY = "daemon-check-throwaway-key-not-a-secret-0123456789"
LOCATION = "crowd_platform"
REPOSITORY = "__repository__"  # the repository name Dagster gives a Definitions object
SENSOR = "late_data_sensor"
LOCK_FAILURES = ("Could not set lock", "WarehouseLockedError")
LOCK_WAIT = "is locked by another process"
POLL_S = 3.0


# ---------------------------------------------------------------------------- the world


def set_up(work: Path, first: dt.date, last: dt.date) -> dict[str, str]:
    """WORK wiped; the environment of this process and of `dagster dev` pointing into it."""
    shutil.rmtree(work, ignore_errors=True)
    home = work / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    env = {
        "DAGSTER_HOME": str(home),
        "CROWD_LANDING_DIR": str(work / "landing"),
        "CROWD_WAREHOUSE": str(work / "warehouse.duckdb"),
        "CROWD_PARTITION_START": first.isoformat(),
        "CROWD_PARTITION_END": last.isoformat(),
        "CROWD_PSEUDONYM_KEY": THROWAWAY_KEY,
        "CROWD_DATA_DIR": str(work / "data"),
        "CROWD_REPORT_DIR": str(work / "reports"),
        # The run workers the daemon starts import this checkout's code, not an installed copy.
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    return env


# ---------------------------------------------------------------------------- dagster dev


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterDev:
    """`dagster dev` (webserver + daemon) in its own process group, and GraphQL calls to it."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.log_path = work / "dagster_dev.log"
        dagster = Path(sys.executable).parent / "dagster"
        command = [str(dagster), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(self.port)]
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=os.environ.copy(), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
        if answer.get("errors"):
            raise RuntimeError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def wait_until_ready(self, timeout: float) -> float:
        """Location loaded and the sensor and backfill daemons healthy; returns the seconds it took."""
        started = time.monotonic()
        query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                       locationOrLoadError { __typename ... on PythonError { message } } } } }
                     instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"""
        last: Any = None
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited ({self.process.returncode}); see {self.log_path}")
            try:
                data = self.graphql(query, timeout=10)
            except OSError:
                time.sleep(POLL_S)
                continue
            entries = data["workspaceOrError"]["locationEntries"]
            healthy = {d["daemonType"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"] if d["healthy"]}
            last = (entries, sorted(healthy))
            loaded = entries and entries[0]["loadStatus"] == "LOADED"
            if loaded and entries[0]["locationOrLoadError"]["__typename"] != "RepositoryLocation":
                raise RuntimeError(f"code location failed to load: {entries[0]['locationOrLoadError']}")
            if loaded and {"SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR"} <= healthy:
                return time.monotonic() - started
            time.sleep(POLL_S)
        raise TimeoutError(f"dagster dev not ready after {timeout:.0f} s: {last}")

    def launch_backfill(self, asset_paths: list[list[str]], partitions: list[str] | None, title: str) -> str:
        """What the UI's launch dialog sends for an asset backfill."""
        params: dict[str, Any] = {"assetSelection": [{"path": path} for path in asset_paths], "title": title}
        if partitions is None:
            params["allPartitions"] = True
        else:
            params["partitionNames"] = partitions
        data = self.graphql(
            """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
                 __typename ... on LaunchBackfillSuccess { backfillId }
                 ... on Error { message } ... on PythonError { stack } } }""",
            {"params": params},
        )["launchPartitionBackfill"]
        if data["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill {title!r} not launched: {data}")
        return data["backfillId"]

    def sensor_selector(self) -> dict[str, str]:
        return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": SENSOR}

    def start_sensor(self) -> None:
        data = self.graphql(
            """mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
                 __typename ... on Sensor { sensorState { status } } ... on Error { message } } }""",
            {"selector": self.sensor_selector()},
        )["startSensor"]
        if data["__typename"] != "Sensor" or data["sensorState"]["status"] != "RUNNING":
            raise RuntimeError(f"sensor not started: {data}")

    def sensor_ticks(self) -> list[dict[str, Any]]:
        data = self.graphql(
            """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
                 __typename ... on Sensor { sensorState { ticks(limit: 20) {
                   status timestamp runIds skipReason cursor error { message } } } } ... on Error { message } } }""",
            {"selector": self.sensor_selector()},
        )["sensorOrError"]
        if data["__typename"] != "Sensor":
            raise RuntimeError(f"sensor not found: {data}")
        return data["sensorState"]["ticks"]

    def terminate_runs(self, run_ids: list[str]) -> None:
        if run_ids:
            self.graphql("mutation($ids: [String!]!) { terminateRuns(runIds: $ids) { __typename } }", {"ids": run_ids})

    def stop(self) -> None:
        """SIGTERM to `dagster dev` (it stops its webserver, daemon and code servers), then, after
        a grace period, SIGKILL to whatever is left of its process group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the group this script created
        self.process.wait()
        self.log.close()


# ---------------------------------------------------------------------------- figures


@dataclass
class PhaseFigures:
    name: str
    backfills: int = 0
    backfill_statuses: list[str] = field(default_factory=list)
    runs: int = 0
    run_statuses: dict[str, int] = field(default_factory=dict)
    max_runs_in_flight: int = 0
    max_runs_queued_or_running: int = 0
    steps: int = 0
    failed_steps: int = 0
    materialisations: int = 0
    partitions: int = 0
    lock_failures: int = 0
    lock_waits: int = 0
    wall_s: float = 0.0
    materialised: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.name}: {self.backfills} backfill(s) {self.backfill_statuses}, {self.runs} runs {self.run_statuses} "
            f"(at most {self.max_runs_queued_or_running} queued or running, {self.max_runs_in_flight} running), "
            f"{self.steps} steps ({self.failed_steps} failed), "
            f"{self.partitions} partitions, {self.materialisations} asset materialisations, "
            f"lock failures {self.lock_failures}, lock waits {self.lock_waits}, {self.wall_s:.0f} s"
        )


def backfill_runs(instance, backfill_ids: list[str]) -> list:
    import dagster as dg
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    records = []
    for backfill_id in backfill_ids:
        records += instance.get_run_records(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    return records


def wait_for_a_run_to_start(instance, backfill_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(record.start_time for record in backfill_runs(instance, backfill_ids)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no run of the backfills started within {timeout:.0f} s")
        time.sleep(1)


def wait_for_backfills(instance, dagster: DagsterDev, backfill_ids: list[str], timeout: float) -> None:
    """Until every backfill is in a final state and none of its runs is queued or going."""
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

    deadline = time.monotonic() + timeout
    while True:
        backfills = [instance.get_backfill(backfill_id) for backfill_id in backfill_ids]
        records = backfill_runs(instance, backfill_ids)
        unfinished = [r.dagster_run.run_id for r in records if not r.dagster_run.is_finished]
        if all(b.status in BULK_ACTION_TERMINAL_STATUSES for b in backfills) and not unfinished:
            return
        if dagster.process.poll() is not None:
            raise RuntimeError(f"dagster dev exited ({dagster.process.returncode}); see {dagster.log_path}")
        if time.monotonic() > deadline:
            dagster.terminate_runs(unfinished)
            raise TimeoutError(f"backfills not done after {timeout:.0f} s: {[b.status.value for b in backfills]}")
        time.sleep(POLL_S)


def peak_overlap(records: list, since_created: bool) -> int:
    """The most runs at one instant that had started (or, with `since_created`, been queued) and
    not yet ended."""
    edges = []
    for record in records:
        begin = record.create_timestamp.timestamp() if since_created else record.start_time
        if begin is not None:
            edges += [(begin, 1), (record.end_time or float("inf"), -1)]
    running = peak = 0
    for _, step in sorted(edges):
        running += step
        peak = max(peak, running)
    return peak


def phase_figures(
    instance, name: str, backfill_ids: list[str], launched_at: float, records: list | None = None
) -> PhaseFigures:
    """Figures of the backfills' runs (or of the given run records)."""
    from dagster import DagsterEventType

    figures = PhaseFigures(name, backfills=len(backfill_ids))
    figures.backfill_statuses = [instance.get_backfill(b).status.value for b in backfill_ids]
    records = backfill_runs(instance, backfill_ids) if records is None else records
    figures.runs = len(records)
    figures.run_statuses = dict(Counter(r.dagster_run.status.value for r in records))
    figures.max_runs_in_flight = peak_overlap(records, since_created=False)
    figures.max_runs_queued_or_running = peak_overlap(records, since_created=True)
    materialised: dict[str, set[str]] = defaultdict(set)
    for record in records:
        run_id = record.dagster_run.run_id
        for entry in instance.all_logs(run_id):
            text = entry.message or ""
            event = entry.dagster_event
            if event is not None and event.event_type == DagsterEventType.STEP_FAILURE:
                error = event.step_failure_data.error
                text += f" {error.to_string() if error else ''}"
                figures.failures.append(f"{run_id[:8]} {event.step_key}: {text.strip().splitlines()[-1]}")
            if event is not None and event.event_type == DagsterEventType.RUN_FAILURE:
                figures.failures.append(f"{run_id[:8]} run failure: {text.strip()[:300]}")
            figures.lock_failures += sum(text.count(marker) for marker in LOCK_FAILURES)
            figures.lock_waits += text.count(LOCK_WAIT)
            if event is None:
                continue
            figures.steps += event.event_type == DagsterEventType.STEP_SUCCESS
            figures.failed_steps += event.event_type == DagsterEventType.STEP_FAILURE
            if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                figures.materialisations += 1
                materialised[event.asset_key.to_user_string()].add(event.partition or "")
    figures.materialised = {key: sorted(parts) for key, parts in sorted(materialised.items())}
    figures.partitions = len({p for parts in materialised.values() for p in parts if p})
    ends = [r.end_time for r in records if r.end_time is not None]
    figures.wall_s = (max(ends) - launched_at) if ends else 0.0
    return figures


def lock_failures_in_files(*roots: Path) -> dict[str, int]:
    """Lock failures in any file under the roots (compute logs, the SQLite event logs, dagster dev's
    output): a failure a step swallowed or printed would show here even if not in the event log."""
    found: dict[str, int] = {}
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in paths:
            data = path.read_bytes()
            count = sum(data.count(marker.encode()) for marker in LOCK_FAILURES)
            if count:
                found[str(path)] = count
    return found


# ---------------------------------------------------------------------------- the check


def asset_paths(groups: set[str] | None = None, partitioned: bool | None = None) -> list[list[str]]:
    from crowd_platform.definitions import defs

    graph = defs.resolve_asset_graph()
    chosen = []
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if not node.is_materializable:
            continue
        if groups is not None and node.group_name not in groups:
            continue
        if partitioned is not None and (node.partitions_def is not None) != partitioned:
            continue
        chosen.append(list(key.path))
    return chosen


def slices(days: list[str], count: int) -> list[list[str]]:
    size = -(-len(days) // count)
    return [days[i : i + size] for i in range(0, len(days), size)]


def run_check(
    work: Path, first: dt.date, last: dt.date, concurrent: int, timeout: float
) -> tuple[dict[str, Any], list[str]]:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    from crowd_platform_tests.landing import write_landing

    figures: dict[str, Any] = {}
    problems: list[str] = []
    started = time.monotonic()
    write_landing(work / "landing", first, last)
    figures["world_s"] = round(time.monotonic() - started, 1)

    from crowd_platform.definitions import defs
    from crowd_platform.defs.sensors import LATE_DAYS_TAG, late_data_backfill_request
    from crowd_platform.defs.staging.assets import STAGING_TABLES
    from crowd_platform.partitions import daily_partitions

    days = daily_partitions.get_partition_keys()
    every_asset = asset_paths()
    daily_assets = asset_paths(partitioned=True)
    home = Path(os.environ["DAGSTER_HOME"])
    instance = dg.DagsterInstance.get()
    dagster = DagsterDev(work)
    cli: subprocess.Popen | None = None
    try:
        figures["dagster_dev_ready_s"] = round(dagster.wait_until_ready(timeout=300), 1)

        # -- 1. the whole window, as "Materialize all" in the UI
        launched = time.time()
        whole = [dagster.launch_backfill(every_asset, None, "daemon check: whole window")]
        wait_for_backfills(instance, dagster, whole, timeout)
        phases = [phase_figures(instance, "whole window", whole, launched)]

        # -- 2. many runs queued at once
        if concurrent:
            launched = time.time()
            batch = [
                dagster.launch_backfill(daily_assets, part, f"daemon check: daily assets {part[0]}..{part[-1]}")
                for part in slices(days, concurrent)
            ]
            batch.append(dagster.launch_backfill(every_asset, None, "daemon check: whole window again"))
            # Writers from a shell while the UI's runs go: `crowd-platform materialize` with the same
            # DAGSTER_HOME (its steps claim the same pool slots), then with its own (outside the
            # pool: it meets the daemon's steps only at DuckDB's file lock).
            wait_for_a_run_to_start(instance, batch, timeout)
            writers = []
            for label, writer_home in (("same DAGSTER_HOME", home), ("own DAGSTER_HOME", work / "own_dagster_home")):
                writer_launched = time.time()
                log_path = work / f"materialize_{writer_home.name}.log"
                with log_path.open("wb") as log:
                    cli = subprocess.Popen(
                        [sys.executable, "-m", "crowd_platform.cli", "materialize", "--from", days[2], "--to", days[3]],
                        cwd=ROOT,
                        env={**os.environ, "DAGSTER_HOME": str(writer_home)},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                    if cli.wait(timeout=timeout) != 0:
                        problems.append(f"crowd-platform materialize ({label}) failed; see {log_path}")
                writers.append((label, writer_home, writer_launched))
            wait_for_backfills(instance, dagster, batch, timeout)
            phases.append(phase_figures(instance, f"{len(batch)} backfills at once", batch, launched))
            for label, writer_home, writer_launched in writers:
                with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(writer_home))) as writer_instance:
                    created_after = dt.datetime.fromtimestamp(writer_launched, dt.UTC)
                    records = [
                        record
                        for record in writer_instance.get_run_records(
                            filters=dg.RunsFilter(created_after=created_after)
                        )
                        if BACKFILL_ID_TAG not in record.dagster_run.tags
                    ]
                    name = f"crowd-platform materialize, {label}"
                    phases.append(phase_figures(writer_instance, name, [], writer_launched, records))

        graph = defs.resolve_asset_graph()
        landing = work / "landing"
        if late_data_backfill_request(instance, graph, landing) is not None:
            problems.append("before the late file the sensor's logic already finds work to do")

        # -- 3. a late file and the sensor
        before = {b.backfill_id for b in instance.get_backfills()}
        from crowd_platform_tests.landing import write_late_file

        write_late_file(landing, LATE_FOLDER_DAY, first_imsi=8_000_000)
        launched = time.time()
        dagster.start_sensor()
        deadline = time.monotonic() + 300
        late: list[str] = []
        while not late:
            ticks = dagster.sensor_ticks()
            failed = [t for t in ticks if t["status"] == "FAILURE"]
            if failed:
                raise RuntimeError(f"sensor tick failed: {failed[0]['error']}")
            late = [b.backfill_id for b in instance.get_backfills() if b.backfill_id not in before]
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sensor requested no backfill within 300 s; ticks: {ticks}")
            time.sleep(POLL_S)
        figures["sensor_tick_to_backfill_s"] = round(time.time() - launched, 1)
        wait_for_backfills(instance, dagster, late, timeout)
        late_figures = phase_figures(instance, "late data sensor backfill", late, launched)
        phases.append(late_figures)
        ticks = dagster.sensor_ticks()
        figures["sensor_ticks"] = [
            {key: tick[key] for key in ("status", "runIds", "skipReason", "cursor")} for tick in ticks
        ]

        backfill = instance.get_backfill(late[0])
        target = backfill.asset_backfill_data.target_subset if backfill.asset_backfill_data else None
        requested: dict[str, list[str]] = {}
        if target is not None:
            requested = {
                key.to_user_string(): sorted(subset.get_partition_keys())
                for key, subset in target.partitions_subsets_by_asset_key.items()
            }
            requested.update({key.to_user_string(): [] for key in target.non_partitioned_asset_keys})
        figures["late_backfill_tags"] = {k: v for k, v in backfill.tags.items() if k.startswith("crowd/")}
        figures["late_requested"] = requested
        affected = [(LATE_FOLDER_DAY - dt.timedelta(days=1)).isoformat(), LATE_FOLDER_DAY.isoformat()]
        if len(late) != 1:
            problems.append(f"the sensor requested {len(late)} backfills, not 1")
        if backfill.tags.get(LATE_DAYS_TAG) != ",".join(affected):
            problems.append(f"late days {backfill.tags.get(LATE_DAYS_TAG)!r}, expected {affected}")
        for key in STAGING_TABLES:
            name = key.to_user_string()
            if requested.get(name) != affected:
                problems.append(f"{name} requested on {requested.get(name)}, expected {affected}")
        # The daemon ran exactly the requested partitions (an unpartitioned asset: once, as "").
        wanted = {name: parts or [""] for name, parts in requested.items()}
        if late_figures.materialised != wanted:
            problems.append(f"materialised {late_figures.materialised}, requested {wanted}")
        if late_data_backfill_request(instance, graph, landing) is not None:
            problems.append("after the late data backfill the sensor's logic still finds work to do")
    finally:
        if cli is not None and cli.poll() is None:
            cli.terminate()
            cli.wait()
        unfinished = [r.run_id for r in instance.get_runs() if not r.is_finished]
        try:
            dagster.terminate_runs(unfinished)
        except (OSError, RuntimeError) as exc:
            print(f"could not terminate runs {unfinished}: {exc}", file=sys.stderr)
        dagster.stop()
        instance.dispose()

    for phase in phases:
        print(phase.line(), flush=True)
        problems += [f"{phase.name}: {failure}" for failure in phase.failures]
        if phase.failed_steps or phase.lock_failures or set(phase.run_statuses) != {"SUCCESS"}:
            problems.append(f"{phase.name}: runs {phase.run_statuses}, {phase.failed_steps} failed steps")
        if any(status != "COMPLETED_SUCCESS" for status in phase.backfill_statuses):
            problems.append(f"{phase.name}: backfill statuses {phase.backfill_statuses}")
    figures["phases"] = [phase.__dict__ for phase in phases]
    in_files = lock_failures_in_files(work / "dagster_home", dagster.log_path)
    figures["lock_failures_in_files"] = in_files
    if in_files:
        problems.append(f"lock failures in files: {in_files}")

    # -- 4. the same landing, all data from the start, in process into a second warehouse
    started = time.monotonic()
    reference = work / "clean_run.duckdb"
    clean_env = {**os.environ, "CROWD_WAREHOUSE": str(reference)}
    clean_env.pop("DAGSTER_HOME")  # an ephemeral instance
    script = (
        "import datetime as dt; from crowd_platform.runner import materialize; "
        f"materialize(dt.date.fromisoformat('{first}'), dt.date.fromisoformat('{last}'), quiet=True)"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=clean_env, check=True)
    figures["clean_run_s"] = round(time.monotonic() - started, 1)
    from compare_warehouses import DEFAULT_SCHEMAS, compare

    print("clean run (reference) vs the daemon's warehouse (candidate):")
    results = compare(reference, work / "warehouse.duckdb", DEFAULT_SCHEMAS)
    different = [r.table for r in results if not r.equivalent]
    figures["tables_compared"] = len(results)
    figures["tables_different"] = different
    if different:
        problems.append(f"warehouse differs from the clean run in {different}")
    return figures, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (wiped)")
    parser.add_argument("--first", type=dt.date.fromisoformat, default=DEFAULT_FIRST_DAY, help="first day of the world")
    parser.add_argument("--last", type=dt.date.fromisoformat, default=DEFAULT_LAST_DAY, help="last day of the world")
    parser.add_argument(
        "--concurrent", type=int, default=3, help="slices of the window backfilled at once in step 3 (0: skip)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for each phase's backfills")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    if not args.first < LATE_FOLDER_DAY <= args.last:
        parser.error(f"the window must hold {LATE_FOLDER_DAY} and the day before it (the late file's days)")
    set_up(work, args.first, args.last)
    started = time.monotonic()
    figures, problems = run_check(work, args.first, args.last, args.concurrent, args.timeout)
    figures["total_s"] = round(time.monotonic() - started, 1)
    figures["problems"] = problems
    (work / "daemon_check.json").write_text(json.dumps(figures, indent=2, default=str))
    print(json.dumps({k: v for k, v in figures.items() if k != "phases"}, indent=2, default=str))
    print("OK" if not problems else "FAILED:\n  " + "\n  ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
