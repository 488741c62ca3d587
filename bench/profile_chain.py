"""Where the daily chain's time goes, on a world that `bench/run.py` simulated.

    python bench/profile_chain.py --work data/bench/1000000 [--out bench/results/profile_1m.md]

Runs the chain's steps outside Dagster, one by one, on a fresh copy of the benchmark's template
warehouse: the staging ingest broken into its parts (schema check, reading each file, pseudonyms,
the classification SQL, the three writes, the checks) under cProfile, then every core and marts SQL
step with DuckDB's JSON profiling, and prints the slowest operators of each step.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench


def core_and_marts_steps() -> list[str]:
    """The daily SQL steps of core and marts in dependency order, from the code location's asset graph."""
    from crowd_platform import settings
    from crowd_platform.definitions import defs

    graph = defs.resolve_asset_graph()
    daily = [key for key in graph.toposorted_asset_keys if graph.get(key).partitions_def is not None]
    names = ["/".join(key.path) for key in daily if key.path[0] in ("core", "marts")]
    return [name for name in names if (settings.SQL_DIR / f"{name}.sql").exists()]


def operators(node: dict, found: Counter, cardinality: Counter) -> None:
    """Sum each operator's own time (not its children's) over the plan tree."""
    name = node.get("operator_name") or node.get("operator_type") or node.get("name")
    if name and "operator_timing" in node:
        extra = node.get("extra_info") or {}
        detail = ""
        if isinstance(extra, dict):
            for field in ("Function", "Aggregates", "Groups", "Join Type", "Conditions", "Table", "Partition By"):
                if field in extra:
                    detail = f"{field}: {str(extra[field])[:70]}"
                    break
        label = f"{name.strip()} {detail}".strip()
        found[label] += float(node["operator_timing"])
        cardinality[label] += int(node.get("operator_cardinality") or 0)
    for child in node.get("children", []):
        operators(child, found, cardinality)


def profile_query(con, sql: str, params: dict, out: Path) -> tuple[float, list[tuple[str, float, int]]]:
    """Run `sql` into a temp table with JSON profiling; (latency s, top operators)."""
    from crowd_platform.warehouse import bind

    con.execute("SET enable_profiling = 'json'")
    con.execute(f"SET profiling_output = '{out}'")
    started = time.perf_counter()
    con.execute("CREATE OR REPLACE TEMP TABLE profiled AS " + sql, bind(sql, params))
    wall = time.perf_counter() - started
    con.execute("SET enable_profiling = 'no_output'")
    con.execute("PRAGMA disable_profiling")
    con.execute("DROP TABLE IF EXISTS profiled")
    tree = json.loads(out.read_text())
    found: Counter = Counter()
    cardinality: Counter = Counter()
    operators(tree, found, cardinality)
    return wall, [(label, seconds, cardinality[label]) for label, seconds in found.most_common(6)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="a work folder of bench/run.py")
    parser.add_argument("--day", default=bench.DEFAULT_DAY.isoformat())
    parser.add_argument("--out", type=Path, help="write the text report here too")
    args = parser.parse_args(argv)
    work, day = args.work.resolve(), dt.date.fromisoformat(args.day)
    warehouse = work / "profile.duckdb"
    warehouse.unlink(missing_ok=True)
    shutil.copyfile(work / "template.duckdb", warehouse)
    os.environ.update(bench.chain_env(work, warehouse, day, secrets.token_hex(16)))
    os.environ.pop("DAGSTER_HOME", None)

    from crowd_platform import settings
    from crowd_platform.defs.marts.ledger import LEDGER_TABLE, write_ledger
    from crowd_platform.defs.sql_asset import run_checks
    from crowd_platform.defs.staging import assets as staging
    from crowd_platform.defs.staging import ingest
    from crowd_platform.methodology import Methodology
    from crowd_platform.pseudonym import load_key
    from crowd_platform.warehouse import DayRange, TableWrite, Warehouse, bind, load_sql, write_tables

    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    landed = 0
    methodology = Methodology()
    days = DayRange(day, day)
    params = {**methodology.sql_params(), **days.params()}
    key = load_key()
    landing = settings.landing_dir()
    timings: list[tuple[str, float]] = []

    def timed(label: str, function, *a):
        started, cpu_started = time.perf_counter(), time.process_time()
        value = function(*a)
        timings.append((label, time.perf_counter() - started, time.process_time() - cpu_started))
        return value

    profile_dir = Path(tempfile.mkdtemp(prefix="crowd_profile_"))
    # The chain's memory limit: a big day's profile without it would hide the spilling.
    with Warehouse(database=str(warehouse), memory_limit=settings.duckdb_memory_limit()).connect() as con:
        profiler = cProfile.Profile()
        profiler.enable()
        scan = ingest.LandingScan()
        timed("check_schemas (DESCRIBE every file)", ingest.check_schemas, con, landing, days, 1)
        ingest._create_landed_table(con)
        for delivery, path in ingest.delivered_files(landing, days, 1):
            relative = path.relative_to(landing).as_posix()
            timed(f"read {relative}", ingest._read_file, con, path, relative, delivery, scan)
        landed = con.execute("SELECT count(*) FROM landed").fetchone()[0]  # type: ignore[index]
        timed("pseudonyms: register_pseudonyms (distinct, HMAC in SQL, table)", ingest.register_pseudonyms, con, key)
        classify = load_sql("staging/landed_events")
        profiler.disable()
        wall, top = profile_query(con, classify, params, profile_dir / "classify.json")
        timings.append(("classify SQL (landed_events), profiled", wall, float("nan")))
        profiler.enable()
        timed(
            "classify SQL (landed_events)",
            lambda: con.execute("CREATE OR REPLACE TEMP TABLE landed_events AS " + classify, bind(classify, params)),
        )
        ingest.drop_raw_tables_keep_classified(con)
        if hasattr(ingest, "mark_duplicates"):  # not in checkouts before the speed-ups (--baseline runs)
            timed("mark duplicates (landed_duplicates)", ingest.mark_duplicates, con, params)
        for table in staging.STAGING_TABLES.values():
            timed(f"write {table}", write_tables, con, [TableWrite(table, load_sql(table.replace(".", "/")))], days)
        checks = [staging.ACCOUNTED, staging.ALL_FILES_READ, staging.NO_RAW_IMSI]
        timed("staging checks", lambda: run_checks(con, staging.LOAD_AUDIT, checks, params))
        profiler.disable()

        say(f"# Profile of {day}: {landed:,} landed rows")
        say()
        say("## Staging, step by step")
        say()
        say("| part | wall s | CPU s |")
        say("|---|---:|---:|")
        for label, seconds, cpu_seconds in timings:
            say(f"| {label} | {seconds:.2f} | {cpu_seconds:.2f} |")
        say()
        say("Slowest operators of the classification SQL (operator's own time, s; rows out):")
        say()
        for label, seconds, rows in top:
            say(f"- {seconds:.2f} s, {rows:,} rows: {label}")
        say()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(18)
        say("cProfile of the staging Python (cumulative, top 18):")
        say()
        say("```")
        say("\n".join(line for line in stream.getvalue().splitlines() if line.strip())[:6000])
        say("```")
        say()
        say("## Core and marts: each step written (timed), then re-run with DuckDB JSON profiling")
        say()
        for name in core_and_marts_steps():
            table = name.replace("/", ".")
            sql = load_sql(name)
            started, cpu_started = time.perf_counter(), time.process_time()
            if table == LEDGER_TABLE:  # the SQL counts the cells; the rules in Python write the ledger
                write_ledger(con, days, methodology.min_group_devices)
            else:
                write_tables(con, [TableWrite(table, sql, methodology.sql_params())], days)
            written, written_cpu = time.perf_counter() - started, time.process_time() - cpu_started
            wall, top = profile_query(con, sql, params, profile_dir / f"{table}.json")
            say(f"### {table}: write {written:.2f} s ({written_cpu:.2f} CPU s), query alone {wall:.2f} s")
            for label, seconds, rows in top[:4]:
                say(f"- {seconds:.2f} s, {rows:,} rows: {label}")
            say()
    shutil.rmtree(profile_dir, ignore_errors=True)
    warehouse.unlink(missing_ok=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
