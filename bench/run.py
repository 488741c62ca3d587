"""Benchmark of the daily chain (staging, core, marts) on one simulated day, with reference points.

    python bench/run.py --events-per-day 1000000 --repeats 3 [--out bench/results/1m.json]

What it does (docs/performance.md has the figures and how to read them):

1. Simulates one expo day of the synthetic world (`crowd_platform.simulate.simulate_world`, start =
   end = the day) at the scale that gives about N raw events. The landed rows of the chain are the
   day's delivery folder plus the next folder (the day's late arrivals). Cached under the work folder.
2. Builds the reference layer once into a template warehouse (not timed: it is not daily work) and,
   per repeat, runs Dagster's `daily_job` for the day in a fresh copy of it, in a child process:
   wall time of the job, each step's duration from its STEP_SUCCESS event, peak resident memory of the
   child (os.wait4). The day is alone, so homes are unknown (no trailing nights): home detection and
   the classes built on it do less work than on day 29 of a real window.
3. Reference points in the same run, each in its own child process, on the same landing files:
   (a) plain pandas doing the same stays-and-visits logic (no pseudonyms, no rejects accounting, no
   marts), (b) trackintel `generate_staypoints` and scikit-mobility `stops` on cell positions, on a
   sample of devices (extrapolated per event), (c) DuckDB reading the files and counting by cell,
   (d) DuckDB copying the landed rows into a database file and running one window over each device's
   events in time order (the least any chain that keeps its tables in DuckDB must do), (e) the least
   that gives staged events as the contract has them (pseudonymised, on known cells, de-duplicated)
   and one ordered pass over them.
4. Prints medians over the repeats and writes them as JSON (and Markdown beside it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DAY = dt.date(2022, 6, 1)  # a Wednesday of the expo; its folders are Parquet
EVENTS_PER_SCALE_PILOT = 0.005  # the pilot scale used to find the scale for N events
CHAIN_JOB = "daily_job"


# ---------------------------------------------------------------------------- the world


def simulate(work: Path, events_per_day: int, day: dt.date, seed: int) -> dict:
    """Landing files of one day with about `events_per_day` landed rows (cached by parameters)."""
    from crowd_platform.simulate import WorldConfig, simulate_world

    marker = work / "world.json"
    wanted = {"events_per_day": events_per_day, "day": day.isoformat(), "seed": seed}
    if marker.exists():
        cached = json.loads(marker.read_text())
        if cached.get("wanted") == wanted:
            return cached["summary"]
    shutil.rmtree(work / "landing", ignore_errors=True)
    shutil.rmtree(work / "truth", ignore_errors=True)
    config = WorldConfig(truncated_file=False)
    pilot_dir = work / "pilot"
    pilot = simulate_world(
        pilot_dir / "landing", pilot_dir / "truth", scale=EVENTS_PER_SCALE_PILOT, seed=seed, start=day, end=day,
        config=config, progress=False,
    )  # fmt: skip
    shutil.rmtree(pilot_dir)
    scale = EVENTS_PER_SCALE_PILOT * events_per_day / pilot["events_total"]
    summary = simulate_world(
        work / "landing", work / "truth", scale=scale, seed=seed, start=day, end=day, config=config, progress=False
    )
    marker.write_text(json.dumps({"wanted": wanted, "summary": summary}, indent=1))
    return summary


def landed_files(landing: Path, day: dt.date) -> list[Path]:
    """The files the chain reads for `day`: its delivery folder and the next one (late arrivals)."""
    files: list[Path] = []
    for folder_day in (day, day + dt.timedelta(days=1)):
        folder = landing / "events" / f"date={folder_day.isoformat()}"
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.name.endswith((".parquet", ".csv", ".csv.gz")))
    return files


# ---------------------------------------------------------------------------- child processes


def chain_env(work: Path, warehouse: Path, day: dt.date, key: str, tree: Path = ROOT) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DAGSTER_HOME", None)  # an ephemeral instance: no run storage on disk to slow the run down
    env.update(
        # The code of `tree` (this checkout, or --baseline-tree), not whatever the venv installed.
        PYTHONPATH=str(tree),
        CROWD_LANDING_DIR=str(work / "landing"),
        CROWD_WAREHOUSE=str(warehouse),
        CROWD_PSEUDONYM_KEY=key,
        CROWD_PARTITION_START=(day - dt.timedelta(days=1)).isoformat(),
        CROWD_PARTITION_END=(day + dt.timedelta(days=1)).isoformat(),
        CROWD_DATA_DIR=str(work / "data"),
    )
    return env


def run_child(args: list[str], env: dict[str, str] | None = None) -> tuple[dict, float]:
    """Run `python bench/run.py <args>` and return (its JSON result, its peak RSS in MB)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate()
    # The peak RSS is reported by the child itself (its VmHWM): RUSAGE_CHILDREN would give the
    # maximum over every child so far, not this one's.
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({process.returncode}):\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return result, result.pop("peak_rss_mb")


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM of its own address space. (getrusage's ru_maxrss
    is no good here: Linux carries the parent's high-water mark across fork and exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_reference(day: str, template: str) -> dict:
    """Build the reference layer into the template warehouse and export the zone cells for pandas."""
    from crowd_platform.runner import _run

    _run("reference_job", {}, None, quiet=True)
    import duckdb

    con = duckdb.connect(template)
    con.execute(
        "COPY (SELECT w.cell_id, w.zone_id, w.valid_from, w.valid_to FROM reference.cell_zone_weights AS w "
        "WHERE w.weight >= 0.5 OR w.site_in_zone) TO '" + str(Path(template).with_name("zone_cells.parquet")) + "'"
    )
    con.close()
    return {}


def child_chain(day: str) -> dict:
    """One run of the daily job for `day`: wall time and each step's duration."""
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from crowd_platform.definitions import defs

    job = defs.resolve_job_def(CHAIN_JOB)
    tags = {ASSET_PARTITION_RANGE_START_TAG: day, ASSET_PARTITION_RANGE_END_TAG: day}
    run_config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = job.execute_in_process(instance=instance, tags=tags, run_config=run_config, raise_on_error=True)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started

    steps = {
        event.step_key: event.event_specific_data.duration_ms / 1000  # type: ignore[union-attr]
        for event in result.all_events
        if event.event_type_value == "STEP_SUCCESS"
    }
    return {"wall_s": wall, "cpu_s": cpu, "steps": steps}


def child_count_rows(warehouse: str, day: str) -> dict:
    """Row counts of the chain's tables for the day (for the pandas parity check)."""
    import duckdb

    con = duckdb.connect(warehouse, read_only=True)
    counts = {}
    for table in ("staging.events", "core.stays", "core.zone_visits", "marts.zone_daily"):
        row = con.execute(f"SELECT count(*) FROM {table} WHERE event_date = ?", [dt.date.fromisoformat(day)])
        counts[table] = row.fetchone()[0]  # type: ignore[index]
    counts["visitors_by_zone"] = dict(
        con.execute(
            "SELECT zone_id, count(DISTINCT device_key) FROM core.zone_visits WHERE event_date = ? AND is_visit "
            "GROUP BY zone_id ORDER BY zone_id",
            [dt.date.fromisoformat(day)],
        ).fetchall()
    )
    con.close()
    return counts


def _landed_rows_sql(work: str, day: str, columns: str) -> str:
    """A query over the day's landed files (Parquet and CSV) selecting `columns`."""
    files = landed_files(Path(work) / "landing", dt.date.fromisoformat(day))
    parquet = [str(p) for p in files if p.name.endswith(".parquet")]
    csv = [str(p) for p in files if not p.name.endswith(".parquet")]
    parts = []
    if parquet:
        parts.append(f"SELECT {columns} FROM read_parquet({parquet!r})")
    if csv:
        parts.append(f"SELECT {columns} FROM read_csv({csv!r}, all_varchar = true)")
    return " UNION ALL ".join(parts)


def child_floor(work: str, day: str) -> dict:
    """The floor: DuckDB reads the same landed files and counts events per cell, nothing else."""
    import duckdb

    con = duckdb.connect()
    started = time.perf_counter()
    union = _landed_rows_sql(work, day, "cell_id")
    cells = con.execute(f"SELECT count(*) FROM (SELECT cell_id, count(*) FROM ({union}) GROUP BY 1)")
    n_cells = cells.fetchone()[0]  # type: ignore[index]
    return {"wall_s": time.perf_counter() - started, "cells": n_cells}


@contextmanager
def _scratch_database(work: str, name: str) -> Iterator:
    """A fresh DuckDB database file in the work folder, with the chain's memory limit; removed after."""
    import duckdb

    from crowd_platform.settings import duckdb_memory_limit

    path = Path(work) / f"{name}.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path), config={"memory_limit": duckdb_memory_limit(), "preserve_insertion_order": "false"})
    try:
        yield con
    finally:
        con.close()
        path.unlink(missing_ok=True)


def _count_cell_changes(con, device: str) -> int:
    """One window over each device's events in time order (the table `events`): its cell changes."""
    row = con.execute(
        "SELECT count(*) FILTER (WHERE changed) FROM (SELECT cell_id IS DISTINCT FROM "
        f"lag(cell_id) OVER (PARTITION BY {device} ORDER BY event_time, cell_id) AS changed FROM events)"
    ).fetchone()
    return int(row[0])


def child_floor_chain(work: str, day: str) -> dict:
    """The floor of any chain that keeps its tables in DuckDB, as this one must: the landed rows copied
    into a table of a database file (no checks, pseudonyms, duplicates or rejects), then one window over
    each device's events in time order, counting its cell changes (the least that stays, flags and
    devices each need: the chain runs three such windows). Same memory limit and cores as the chain."""
    with _scratch_database(work, "floor_chain") as con:
        started = time.perf_counter()
        con.execute(
            f"CREATE TABLE events AS {_landed_rows_sql(work, day, 'event_time, imsi, cell_id, event_type, tac')}"
        )
        copied = time.perf_counter()
        changes = _count_cell_changes(con, "imsi")
        ended = time.perf_counter()
    return {"wall_s": ended - started, "copy_s": copied - started, "window_s": ended - copied, "cell_changes": changes}


def child_minimal_chain(work: str, day: str) -> dict:
    """The least that gives staged events as the contract has them, and one ordered pass over them: the
    day's distinct IMSIs pseudonymised (the chain's HMAC in SQL), the rows joined to their pseudonym, kept
    on known cells and de-duplicated in one statement into a table of a database file, then the window of
    (d) over the device keys. No rejects accounting, local dates, flags, homes or marts. Same memory
    limit and cores as the chain."""
    from crowd_platform.pseudonym import DEVICE_KEY_SQL, device_key_sql_params

    with _scratch_database(work, "minimal_chain") as con:
        con.execute(f"ATTACH '{Path(work) / 'template.duckdb'}' AS template (READ_ONLY)")
        con.execute("CREATE TABLE cells AS SELECT DISTINCT cell_id FROM template.reference.cells")
        rows = _landed_rows_sql(work, day, "event_time, imsi, cell_id, event_type, tac")
        started = time.perf_counter()
        con.execute(
            f"CREATE TABLE pseudonyms AS SELECT imsi, {DEVICE_KEY_SQL} AS device_key "
            f"FROM (SELECT DISTINCT imsi FROM ({rows}))",
            device_key_sql_params(secrets.token_bytes(32)),
        )
        pseudonymised = time.perf_counter()
        con.execute(
            "CREATE TABLE events AS SELECT DISTINCT landed.event_time, pseudonyms.device_key, landed.cell_id, "
            f"landed.event_type, landed.tac FROM ({rows}) AS landed JOIN pseudonyms USING (imsi) "
            "SEMI JOIN cells USING (cell_id)"
        )
        staged = time.perf_counter()
        changes = _count_cell_changes(con, "device_key")
        ended = time.perf_counter()
    return {
        "wall_s": ended - started,
        "pseudonyms_s": pseudonymised - started,
        "stage_s": staged - pseudonymised,
        "window_s": ended - staged,
        "cell_changes": changes,
    }


def _read_events_pandas(work: Path, day: dt.date):
    import pandas as pd

    frames = []
    for path in landed_files(work / "landing", day):
        if path.name.endswith(".parquet"):
            frame = pd.read_parquet(path, columns=["event_time", "imsi", "cell_id", "event_type"])
        else:
            frame = pd.read_csv(path, dtype=str, usecols=["event_time", "imsi", "cell_id", "event_type"])
            frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, errors="coerce", format="ISO8601")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def child_pandas(work: str, day: str) -> dict:
    """Plain pandas, the same stays-and-visits logic as sql/core/stays.sql and zone_visits.sql:
    clean (drop rows without time, IMSI or known cell, and exact duplicates), keep the local day,
    sort by device and time, A-B-A smoothing with shift, stays by gap and place change, midpoint
    boundaries, zone episodes of touching stays, passer-by and visit thresholds, visitors per zone."""
    import numpy as np
    import pandas as pd

    from crowd_platform.methodology import Methodology

    m = Methodology()
    work_dir, the_day = Path(work), dt.date.fromisoformat(day)
    started = time.perf_counter()
    events = _read_events_pandas(work_dir, the_day)
    cells = pd.read_csv(work_dir / "landing" / "reference" / "cells.csv", usecols=["cell_id"], dtype=str)
    events = events.dropna(subset=["event_time", "imsi", "cell_id"])
    events = events[events["imsi"].str.fullmatch(r"[0-9]{14,15}") & events["cell_id"].isin(cells["cell_id"])]
    events = events.drop_duplicates()
    local = events["event_time"].dt.tz_convert("Europe/Stockholm")
    events = events[local.dt.date == the_day]
    events = events.sort_values(["imsi", "event_time", "cell_id"], ignore_index=True)
    events["t_us"] = events["event_time"].dt.as_unit("us").astype("int64")
    by_device = events.groupby("imsi", sort=False)
    previous_cell, next_cell = by_device["cell_id"].shift(1), by_device["cell_id"].shift(-1)
    previous_t, next_t = by_device["t_us"].shift(1), by_device["t_us"].shift(-1)
    flip = (
        (previous_cell == next_cell)
        & (events["cell_id"] != previous_cell)
        & ((next_t - previous_t) <= m.pingpong_max_min * 60e6)
    )
    events["place"] = np.where(flip, previous_cell, events["cell_id"])
    previous_place = events.groupby("imsi", sort=False)["place"].shift(1)
    starts = (previous_place != events["place"]) | ((events["t_us"] - previous_t) > m.stay_max_gap_min * 60e6)
    events["stay"] = starts.cumsum()
    stays = events.groupby("stay", sort=False).agg(
        imsi=("imsi", "first"), place=("place", "first"), first_us=("t_us", "min"), last_us=("t_us", "max"),
        n_events=("t_us", "size"),
    )  # fmt: skip
    gap = m.stay_max_gap_min * 60e6
    by_stay_device = stays.groupby("imsi", sort=False)
    previous_last, next_first = by_stay_device["last_us"].shift(1), by_stay_device["first_us"].shift(-1)
    stays["start_us"] = np.where(
        stays["first_us"] - previous_last <= gap, (previous_last + stays["first_us"]) // 2, stays["first_us"]
    )
    stays["end_us"] = np.where(
        next_first - stays["last_us"] <= gap, (stays["last_us"] + next_first) // 2, stays["last_us"]
    )
    zone_cells = pd.read_parquet(work_dir / "zone_cells.parquet")
    zone_cells = zone_cells[
        (zone_cells["valid_from"] <= the_day) & (zone_cells["valid_to"].isna() | (zone_cells["valid_to"] >= the_day))
    ]
    in_zone = stays.merge(zone_cells[["cell_id", "zone_id"]], left_on="place", right_on="cell_id")
    in_zone = in_zone.sort_values(["imsi", "zone_id", "start_us", "end_us"], ignore_index=True)
    reach = in_zone.groupby(["imsi", "zone_id"], sort=False)["end_us"].cummax()
    previous_reach = reach.groupby([in_zone["imsi"], in_zone["zone_id"]], sort=False).shift(1)
    in_zone["episode"] = (previous_reach.isna() | (in_zone["start_us"] > previous_reach)).cumsum()
    episodes = in_zone.groupby("episode", sort=False).agg(
        imsi=("imsi", "first"), zone_id=("zone_id", "first"), start_us=("start_us", "min"), end_us=("end_us", "max")
    )
    dwell_s = (episodes["end_us"] - episodes["start_us"]) / 1e6
    episodes = episodes[dwell_s >= m.passerby_min_min * 60]
    visits = episodes[(episodes["end_us"] - episodes["start_us"]) / 1e6 >= m.visit_min_min * 60]
    visitors = visits.groupby("zone_id")["imsi"].nunique().sort_index()
    return {
        "wall_s": time.perf_counter() - started,
        "events_kept": len(events),
        "stays": len(stays),
        "episodes": len(episodes),
        "visitors_by_zone": {str(k): int(v) for k, v in visitors.items()},
    }


def _sample_positions(work: Path, day: dt.date, sample_events: int, seed: int):
    """Events of a random sample of devices joined to their cell's position, about `sample_events` rows."""
    import pandas as pd

    events = _read_events_pandas(work, day).dropna(subset=["event_time", "imsi", "cell_id"])
    cells = pd.read_csv(work / "landing" / "reference" / "cells.csv", usecols=["cell_id", "latitude", "longitude"])
    cells = cells.drop_duplicates("cell_id")
    events = events.merge(cells, on="cell_id")
    devices = events["imsi"].drop_duplicates().sample(frac=1.0, random_state=seed)
    fraction = min(1.0, sample_events / max(len(events), 1))
    chosen = devices.iloc[: max(1, round(len(devices) * fraction))]
    sample = events[events["imsi"].isin(set(chosen))].sort_values(["imsi", "event_time"], ignore_index=True)
    return sample, len(chosen)


def child_trackintel(work: str, day: str, sample_events: int, seed: int) -> dict:
    import geopandas as gpd
    import trackintel as ti

    sample, devices = _sample_positions(Path(work), dt.date.fromisoformat(day), sample_events, seed)
    started = time.perf_counter()
    gdf = gpd.GeoDataFrame(
        {"user_id": sample["imsi"], "tracked_at": sample["event_time"]},
        geometry=gpd.points_from_xy(sample["longitude"], sample["latitude"]),
        crs="EPSG:4326",
    )
    positionfixes = ti.io.read_positionfixes_gpd(gdf, tracked_at="tracked_at", user_id="user_id")
    _, staypoints = positionfixes.generate_staypoints(
        method="sliding", dist_threshold=300, time_threshold=5.0, gap_threshold=70.0, include_last=True
    )
    return {
        "wall_s": time.perf_counter() - started, "events": len(sample), "devices": devices,
        "staypoints": len(staypoints),
    }  # fmt: skip


def child_skmob(work: str, day: str, sample_events: int, seed: int) -> dict:
    import shapely.ops

    # scikit-mobility 1.2.2 imports shapely.ops.cascaded_union, which shapely 2 removed (geopandas
    # and trackintel need shapely 2): unary_union is its documented replacement.
    if not hasattr(shapely.ops, "cascaded_union"):
        shapely.ops.cascaded_union = shapely.ops.unary_union
    from skmob import TrajDataFrame
    from skmob.preprocessing import detection

    sample, devices = _sample_positions(Path(work), dt.date.fromisoformat(day), sample_events, seed)
    started = time.perf_counter()
    frame = sample.rename(columns={"imsi": "uid", "latitude": "lat", "longitude": "lng", "event_time": "datetime"})
    frame["datetime"] = frame["datetime"].dt.tz_convert("UTC").dt.tz_localize(None)
    trajectories = TrajDataFrame(frame[["uid", "datetime", "lat", "lng"]], user_id="uid")
    stops = detection.stops(
        trajectories, stop_radius_factor=1.0, minutes_for_a_stop=5.0, spatial_radius_km=0.3, leaving_time=True,
        no_data_for_minutes=70,
    )  # fmt: skip
    return {"wall_s": time.perf_counter() - started, "events": len(sample), "devices": devices, "stops": len(stops)}


def _child_main(argv: list[str]) -> None:
    mode, *rest = argv
    functions = {
        "reference": child_reference,
        "chain": child_chain,
        "count": child_count_rows,
        "floor": child_floor,
        "floor_chain": child_floor_chain,
        "minimal_chain": child_minimal_chain,
        "pandas": child_pandas,
    }
    if mode in ("trackintel", "skmob"):
        work, day, sample_events, seed = rest
        function = child_trackintel if mode == "trackintel" else child_skmob
        result = function(work, day, int(sample_events), int(seed))
    else:
        result = functions[mode](*rest)
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result, default=str))


# ---------------------------------------------------------------------------- the benchmark


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def benchmark(args: argparse.Namespace) -> dict:
    day = dt.date.fromisoformat(args.day)
    work = Path(args.work or ROOT / "data" / "bench" / f"{args.events_per_day}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"simulating {day} at about {args.events_per_day:,} events into {work} ...", flush=True)
    started = time.perf_counter()
    world = simulate(work, args.events_per_day, day, args.seed)
    landed = int(world["events_total"])
    print(f"  {landed:,} landed rows ({world['events_per_day']}), scale {world['scale']:.4f}, "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    key = secrets.token_hex(16)  # a throwaway pseudonym key for the benchmark's warehouses
    template = work / "template.duckdb"
    template.unlink(missing_ok=True)
    run_child(["reference", day.isoformat(), str(template)], chain_env(work, template, day, key))
    load_before = load_average()

    chain_walls: list[float] = []
    chain_cpu: list[float] = []
    chain_rss: list[float] = []
    steps: dict[str, list[float]] = {}
    # The same chain from another checkout (--baseline-tree), run alternately with this one.
    baseline: dict[str, list] = {"wall_s": [], "cpu_s": [], "peak_rss_mb": []}
    baseline_steps: dict[str, list[float]] = {}
    refs: dict[str, dict[str, list]] = {}
    counts: dict = {}

    def reference_point(name: str, child_args: list[str]) -> None:
        try:
            result, rss = run_child(child_args)
        except RuntimeError as exc:
            refs.setdefault(name, {})["error"] = [str(exc).splitlines()[-1][:300]]
            print(f"  {name}: failed: {str(exc).splitlines()[-1][:200]}", flush=True)
            return
        entry = refs.setdefault(name, {})
        entry.setdefault("peak_rss_mb", []).append(rss)
        for field, value in result.items():
            entry.setdefault(field, []).append(value)
        print(f"  {name}: {result['wall_s']:.2f} s, {rss:,.0f} MB", flush=True)

    warehouse = work / "run.duckdb"
    for repeat in range(1, args.repeats + 1):
        print(f"repeat {repeat}/{args.repeats} (load {load_average()})", flush=True)

        def run_baseline() -> None:
            warehouse.unlink(missing_ok=True)
            shutil.copyfile(template, warehouse)
            env = chain_env(work, warehouse, day, key, args.baseline_tree)
            result, rss = run_child(["chain", day.isoformat()], env)
            baseline["wall_s"].append(result["wall_s"])
            baseline["cpu_s"].append(result["cpu_s"])
            baseline["peak_rss_mb"].append(rss)
            for step, seconds in result["steps"].items():
                baseline_steps.setdefault(step, []).append(seconds)
            print(f"  baseline chain: {result['wall_s']:.2f} s, {rss:,.0f} MB, cpu {result['cpu_s']:.2f} s", flush=True)

        if args.baseline_tree and repeat % 2 == 1:  # alternate who goes first: the load drifts
            run_baseline()
        warehouse.unlink(missing_ok=True)
        shutil.copyfile(template, warehouse)
        result, rss = run_child(["chain", day.isoformat()], chain_env(work, warehouse, day, key))
        chain_walls.append(result["wall_s"])
        chain_cpu.append(result["cpu_s"])
        chain_rss.append(rss)
        for step, seconds in result["steps"].items():
            steps.setdefault(step, []).append(seconds)
        rate = landed / result["wall_s"]
        print(
            f"  chain: {result['wall_s']:.2f} s, {rss:,.0f} MB, {rate:,.0f} events/s, cpu {result['cpu_s']:.2f} s",
            flush=True,
        )
        if repeat == 1:
            counts, _ = run_child(["count", str(warehouse), day.isoformat()])
        if args.baseline_tree and repeat % 2 == 0:
            run_baseline()
        reference_point("duckdb_count_by_cell", ["floor", str(work), day.isoformat()])
        reference_point("duckdb_copy_and_one_window", ["floor_chain", str(work), day.isoformat()])
        reference_point("duckdb_minimal_chain", ["minimal_chain", str(work), day.isoformat()])
        if not args.skip_pandas:
            reference_point("pandas", ["pandas", str(work), day.isoformat()])
        if not args.skip_toolkits and repeat <= args.toolkit_repeats:
            for toolkit in ("trackintel", "skmob"):
                reference_point(toolkit, [toolkit, str(work), day.isoformat(), str(args.sample_events), str(args.seed)])

    chain_s = median(chain_walls)
    report: dict = {
        "day": day.isoformat(),
        "landed_rows": landed,
        "events_per_folder": world["events_per_day"],
        "scale": world["scale"],
        "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": load_average()},
        "chain": {
            "wall_s": chain_s,
            "events_per_s": landed / chain_s,
            "peak_rss_mb": median(chain_rss),
            "wall_s_min": min(chain_walls),
            "events_per_s_best": landed / min(chain_walls),
            "cpu_s": median(chain_cpu),  # all threads of the process: less sensitive to the machine's load
            "events_per_cpu_s": landed / median(chain_cpu),
            "wall_s_all": chain_walls,
            "peak_rss_mb_all": chain_rss,
            "steps_total_s": sum(median(v) for v in steps.values()),
        },
        "steps": {
            step: {"wall_s": median(v), "events_per_s": landed / median(v), "share": median(v) / chain_s}
            for step, v in sorted(steps.items(), key=lambda kv: -median(kv[1]))
        },
        "chain_counts": counts,
        "references": {},
    }
    if baseline["wall_s"]:
        report["baseline"] = {
            "tree": str(args.baseline_tree),
            "wall_s": median(baseline["wall_s"]),
            "events_per_s": landed / median(baseline["wall_s"]),
            "cpu_s": median(baseline["cpu_s"]),
            "peak_rss_mb": median(baseline["peak_rss_mb"]),
            "wall_s_all": baseline["wall_s"],
            "cpu_s_all": baseline["cpu_s"],
            "peak_rss_mb_all": baseline["peak_rss_mb"],
            "speedup_wall": median(baseline["wall_s"]) / chain_s,
            "speedup_cpu": median(baseline["cpu_s"]) / median(chain_cpu),
            # Each repeat's pair ran back to back: the ratio of a pair is less exposed to the load.
            "speedup_wall_paired_median": median(
                [before / now for before, now in zip(baseline["wall_s"], chain_walls, strict=False)]
            ),
            "steps": {step: median(v) for step, v in sorted(baseline_steps.items(), key=lambda kv: -median(kv[1]))},
        }
    report["chain"]["cpu_s_all"] = chain_cpu
    for name, entry in refs.items():
        if "error" in entry:
            report["references"][name] = {"error": entry["error"][0]}
            continue
        wall = median(entry["wall_s"])
        events = median(entry["events"]) if "events" in entry else landed
        per_s = events / wall
        summary = {
            "wall_s": wall,
            "events": events,
            "events_per_s": per_s,
            "peak_rss_mb": median(entry["peak_rss_mb"]),
            "chain_speed_ratio": (landed / chain_s) / per_s,  # > 1: the chain is faster per event
            "extrapolated_full_day_s": landed / per_s,
        }
        for field in ("devices", "events_kept", "stays", "episodes", "staypoints", "stops", "visitors_by_zone"):
            if field in entry:
                summary[field] = entry[field][0]
        for part in ("copy_s", "pseudonyms_s", "stage_s", "window_s"):  # the parts of (d) and (e)
            if part in entry:
                summary[part] = median(entry[part])
        report["references"][name] = summary
    return report


def markdown(report: dict) -> str:
    chain = report["chain"]
    lines = [
        f"# Chain benchmark: {report['day']}, {report['landed_rows']:,} landed rows, median of {report['repeats']}",
        "",
        f"Machine: {report['machine']['cpus']} CPUs, load average before {report['machine']['load_before']}, "
        f"after {report['machine']['load_after']}.",
        "",
        "| step | wall s | events/s | share of chain |",
        "|---|---:|---:|---:|",
    ]
    for step, s in report["steps"].items():
        lines.append(f"| {step} | {s['wall_s']:.2f} | {s['events_per_s']:,.0f} | {s['share']:.0%} |")
    overhead = chain["wall_s"] - chain["steps_total_s"]
    lines.append(f"| (Dagster between steps) | {overhead:.2f} | | {overhead / chain['wall_s']:.0%} |")
    lines.append(
        f"| **chain (daily_job)** | **{chain['wall_s']:.2f}** | **{chain['events_per_s']:,.0f}** | "
        f"peak RSS {chain['peak_rss_mb']:,.0f} MB |"
    )
    lines += [
        "",
        f"Chain: fastest repeat {chain['wall_s_min']:.2f} s ({chain['events_per_s_best']:,.0f} events/s); "
        f"CPU time {chain['cpu_s']:.2f} s over both cores ({chain['events_per_cpu_s']:,.0f} events per CPU-second).",
    ]
    lines += [
        "",
        "| reference point | events | wall s | events/s | peak RSS MB | chain events/s ÷ its events/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["references"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | |")
            continue
        events = f"{r['events']:,.0f}" + (f" ({r['devices']:,} devices)" if "devices" in r else "")
        lines.append(
            f"| {name} | {events} | {r['wall_s']:.2f} | {r['events_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | "
            f"{r['chain_speed_ratio']:.3g} |"
        )
    floor = report["references"].get("duckdb_copy_and_one_window", {})
    if "copy_s" in floor:
        lines += [
            "",
            f"duckdb_copy_and_one_window: copying the landed rows into a table {floor['copy_s']:.2f} s, one window "
            f"over each device's events in time order {floor['window_s']:.2f} s (medians).",
        ]
    minimal = report["references"].get("duckdb_minimal_chain", {})
    if "stage_s" in minimal:
        lines += [
            "",
            f"duckdb_minimal_chain: the day's distinct IMSIs pseudonymised {minimal['pseudonyms_s']:.2f} s, the "
            "rows joined to their pseudonyms, kept on known cells and de-duplicated into a table "
            f"{minimal['stage_s']:.2f} s, one window over each device's events {minimal['window_s']:.2f} s (medians).",
        ]
    if "baseline" in report:
        base = report["baseline"]
        lines += [
            "",
            f"Baseline (`{base['tree']}`, run alternately in the same repeats): chain {base['wall_s']:.2f} s "
            f"({base['events_per_s']:,.0f} events/s), CPU {base['cpu_s']:.2f} s, "
            f"peak RSS {base['peak_rss_mb']:,.0f} MB. Speed-up: wall {base['speedup_wall']:.2f}x "
            f"(median of paired repeats {base['speedup_wall_paired_median']:.2f}x), "
            f"CPU {base['speedup_cpu']:.2f}x.",
            "",
            "| step | baseline s | now s | ratio |",
            "|---|---:|---:|---:|",
        ]
        for step, seconds in base["steps"].items():
            now = report["steps"].get(step, {}).get("wall_s", float("nan"))
            lines.append(f"| {step} | {seconds:.2f} | {now:.2f} | {seconds / now:.2f}x |")
    counts, pandas = report["chain_counts"], report["references"].get("pandas", {})
    if counts and "stays" in pandas:
        lines += [
            "",
            "Parity (the chain vs plain pandas on the same files): "
            f"staged events {counts['staging.events']:,} vs {pandas['events_kept']:,} kept; "
            f"stays {counts['core.stays']:,} vs {pandas['stays']:,}; "
            f"zone episodes {counts['core.zone_visits']:,} vs {pandas['episodes']:,}; "
            f"visitors per zone {counts['visitors_by_zone']} vs {pandas['visitors_by_zone']}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events-per-day", type=int, required=True, help="about this many landed rows for the day")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the chain (and of each reference point)")
    parser.add_argument("--out", type=Path, help="write the JSON here (and Markdown beside it, .md)")
    parser.add_argument("--day", default=DEFAULT_DAY.isoformat(), help="the simulated day (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, help="work folder (default data/bench/<events>)")
    parser.add_argument("--sample-events", type=int, default=20_000, help="events the toolkits get (sampled devices)")
    parser.add_argument("--toolkit-repeats", type=int, default=1, help="runs of each toolkit (they are slow)")
    parser.add_argument("--skip-toolkits", action="store_true", help="no trackintel / scikit-mobility")
    parser.add_argument("--skip-pandas", action="store_true", help="no pandas reference")
    parser.add_argument(
        "--baseline-tree", type=Path, help="another checkout (e.g. before a change): its chain runs in every repeat too"
    )
    args = parser.parse_args(argv)
    report = benchmark(args)
    text = markdown(report)
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
        args.out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
