"""`crowd-platform`: the command line for people who are not in the Dagster UI, and for scripts."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from crowd_platform import settings


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date of the form YYYY-MM-DD") from exc


def cmd_simulate(args: argparse.Namespace) -> int:
    from crowd_platform.simulate import simulate_world

    landing = Path(args.landing) if args.landing else settings.landing_dir()
    truth = Path(args.truth) if args.truth else settings.truth_dir()
    summary = simulate_world(
        landing, truth, scale=args.scale, seed=args.seed, start=args.start, end=args.end, progress=not args.quiet
    )
    print(f"landing files in {landing}, ground truth in {truth}")
    for key, value in summary.items():
        if not isinstance(value, dict | list):
            print(f"  {key}: {value}")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    settings.ensure_dagster_home()
    from crowd_platform.runner import MaterializeError, materialize

    window_start, window_end = settings.partition_window()
    first = args.date_from or window_start
    last = args.date_to or window_end
    if first < window_start or last > window_end or last < first:
        print(
            f"error: {first} .. {last} is not inside the partition window {window_start} .. {window_end} "
            "(CROWD_PARTITION_START / CROWD_PARTITION_END)",
            file=sys.stderr,
        )
        return 2
    try:
        materialize(first, last, quiet=args.quiet)
    except MaterializeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from crowd_platform import report
    from crowd_platform.warehouse import Warehouse

    path = settings.warehouse_path()
    if not path.exists():
        print(f"error: no warehouse at {path}; run `crowd-platform materialize` first", file=sys.stderr)
        return 1
    with Warehouse(database=str(path)).connect(read_only=True) as con:
        print(report.kpi_text_table(report.headline_rows(con)))
        written = report.write_report(con, Path(args.out) if args.out else settings.report_dir())
    print(f"\nreport written to {written}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import math

    from crowd_platform.evaluate import evaluate
    from crowd_platform.pseudonym import load_key

    warehouse = Path(args.warehouse) if args.warehouse else settings.warehouse_path()
    truth = Path(args.truth) if args.truth else settings.truth_dir()
    try:
        result = evaluate(warehouse, truth, load_key())
    except (ValueError, FileNotFoundError) as error:  # an unbuilt warehouse or a missing truth file
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, value in result.summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) and not math.isnan(value) else value
        print(f"{name:42} {shown}")
    print()
    for row in result.tables["bars"].iter_rows(named=True):
        print(f"{row['result']:5} {row['bar']} ({row['figure']} {row['threshold']})")
    written = result.write(Path(args.out) if args.out else settings.report_dir() / "evaluation")
    print(f"\nevaluation written to {written}")
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from crowd_platform.evaluate.sensitivity import VARIANTS, sensitivity
    from crowd_platform.pseudonym import load_key
    from crowd_platform.warehouse import markdown_table

    settings.ensure_dagster_home()
    warehouse = settings.warehouse_path()
    first, last = settings.partition_window()
    first, last = args.date_from or first, args.date_to or last
    variants = {name: VARIANTS[name] for name in args.variant} if args.variant else VARIANTS
    workdir = settings.report_dir() / "work"
    table = sensitivity(warehouse, settings.truth_dir(), load_key(), first, last, workdir, variants)
    text = markdown_table(table.to_dicts(), table.columns)
    print(text)
    out = settings.report_dir() / "sensitivity.md"
    out.write_text(f"# Sensitivity ({first} .. {last})\n\n{text}\n")
    print(f"\nwritten to {out}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    import os
    import shutil

    home = settings.ensure_dagster_home()
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    print(f"Dagster UI on http://{args.host}:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops it")
    workspace = str(settings.PROJECT_ROOT / "workspace.yaml")
    command = [dagster, "dev", "-w", workspace, "-h", args.host, "-p", str(args.port)]
    os.execv(dagster, command)  # the UI and its daemon replace this process
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowd-platform",
        description="Privacy-safe crowd statistics from mobile-network events. Paths come from "
        "CROWD_LANDING_DIR, CROWD_WAREHOUSE and CROWD_PARTITION_START/END (see the README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser(
        "simulate",
        help="write the synthetic H22 world into the landing folder",
        description="Write the synthetic H22 world (network events, cells, zones, events.toml, population, "
        "roaming shares) into the landing folder, and its ground truth into a separate folder.",
    )
    simulate.add_argument("--scale", type=float, default=0.02, help="share of the real population (default 0.02)")
    simulate.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives identical files")
    simulate.add_argument("--landing", help="landing folder (default: $CROWD_LANDING_DIR or data/landing)")
    simulate.add_argument("--truth", help="ground-truth folder (default: $CROWD_TRUTH_DIR or data/truth)")
    simulate.add_argument("--start", type=_date, help="first day to simulate (default 2022-05-02)")
    simulate.add_argument("--end", type=_date, help="last day to simulate (default 2022-07-03)")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(handler=cmd_simulate)

    materialize = commands.add_parser(
        "materialize",
        help="run every asset for a range of days, then the event KPIs and report",
        description="Materialise the reference data, every daily asset (staging, core, marts) for the days "
        "--from .. --to (inclusive; default: the whole partition window) in one in-process run, then the "
        "event KPIs and report. Runs are recorded in $DAGSTER_HOME, so the Dagster UI shows them.",
    )
    materialize.add_argument("--from", dest="date_from", type=_date, help="first day, YYYY-MM-DD")
    materialize.add_argument("--to", dest="date_to", type=_date, help="last day, YYYY-MM-DD (inclusive)")
    materialize.add_argument("--quiet", action="store_true", help="print only errors")
    materialize.set_defaults(handler=cmd_materialize)

    report = commands.add_parser(
        "report",
        help="print the KPI table and write the HTML event report",
        description="Print the event KPIs (with the press release's figures beside them) and write the "
        "self-contained HTML report.",
    )
    report.add_argument("--out", help="folder for event_report.html (default: $CROWD_REPORT_DIR or data/reports)")
    report.set_defaults(handler=cmd_report)

    evaluate = commands.add_parser(
        "evaluate",
        help="compare the published tables with the synthetic world's ground truth",
        description="Compare what the pipeline published (zone-day visitors, event KPIs, homes, visitor classes) "
        "with the simulator's truth and the accuracy bars of DESIGN section 7; print the summary and write "
        "evaluation.md and one CSV per table. Uses the same pseudonym key as the pipeline.",
    )
    evaluate.add_argument("--warehouse", help="DuckDB file (default: $CROWD_WAREHOUSE)")
    evaluate.add_argument("--truth", help="ground-truth folder (default: $CROWD_TRUTH_DIR or data/truth)")
    evaluate.add_argument("--out", help="output folder (default: data/reports/evaluation)")
    evaluate.set_defaults(handler=cmd_evaluate)

    sensitivity = commands.add_parser(
        "sensitivity",
        help="headline KPIs and accuracy under alternative methodology parameters",
        description="Rebuild core, marts and the event layer from the staged events in a copy of the warehouse "
        "once per variant (visit threshold, stay gap, home window, zone weight, visit bridge) and evaluate each "
        "against the synthetic world's truth. Writes data/reports/sensitivity.md.",
    )
    sensitivity.add_argument("--from", dest="date_from", type=_date, help="first day to rebuild")
    sensitivity.add_argument("--to", dest="date_to", type=_date, help="last day to rebuild")
    sensitivity.add_argument("--variant", action="append", help="only this variant (repeatable)")
    sensitivity.set_defaults(handler=cmd_sensitivity)

    ui = commands.add_parser(
        "ui",
        help="open the Dagster UI (webserver and daemon) on this code location",
        description="Start `dagster dev` on workspace.yaml with DAGSTER_HOME set up (default data/dagster_home, "
        "with the single-writer DuckDB pool), so schedules, sensors and backfills run.",
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
