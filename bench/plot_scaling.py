"""The scaling plot of docs/performance.md, from the JSON files of `bench/run.py --baseline-tree`.

    python bench/plot_scaling.py bench/results/1m.json bench/results/3m.json bench/results/10m.json \
        --out bench/results/scaling.svg

Two panels against the landed rows of the day: the chain's throughput (events per wall second and
per CPU-second, now and baseline, both measured in the same run) and its peak resident memory, with
DESIGN section 7's bars. Uses matplotlib (already in the environment for the bench extra's
toolkits); nothing else.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

THROUGHPUT_BAR = 1_000_000  # events per second, DESIGN section 7
MEMORY_BAR_MB = 3 * 1024  # a 10-million-event day under 3 GB


def load(paths: list[Path]) -> list[dict]:
    reports = [json.loads(path.read_text()) for path in paths]
    return sorted(reports, key=lambda report: report["landed_rows"])


def plot(reports: list[dict], out: Path, machine: str = "loaded 2-core machine", before: str = "before") -> None:
    rows = [r["landed_rows"] / 1e6 for r in reports]
    now_wall = [r["landed_rows"] / r["chain"]["wall_s"] for r in reports]
    now_cpu = [r["landed_rows"] / r["chain"]["cpu_s"] for r in reports]
    # Runs without --baseline-tree (e.g. the 30 M day) have no "before" point.
    with_base = [r for r in reports if r.get("baseline")]
    base_rows = [r["landed_rows"] / 1e6 for r in with_base]
    base_wall = [r["landed_rows"] / r["baseline"]["wall_s"] for r in with_base]
    base_cpu = [r["landed_rows"] / r["baseline"]["cpu_s"] for r in with_base]
    figure, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    speed.plot(rows, now_wall, "o-", color="#0072B2", label="now: events per wall second")
    speed.plot(rows, now_cpu, "o--", color="#0072B2", alpha=0.6, label="now: events per CPU-second")
    speed.plot(base_rows, base_wall, "s-", color="#E69F00", label=f"{before}: events per wall second")
    speed.plot(base_rows, base_cpu, "s--", color="#E69F00", alpha=0.6, label=f"{before}: events per CPU-second")
    speed.axhline(THROUGHPUT_BAR, color="#D55E00", linewidth=1, linestyle=":")
    speed.text(rows[0], THROUGHPUT_BAR * 1.1, "bar: 1 M events/s", color="#D55E00", fontsize=8)
    speed.set(xscale="log", yscale="log", xlabel="landed rows of the day (millions)", ylabel="events per second")
    speed.set_title(f"Daily chain throughput ({machine})", fontsize=10)
    speed.set_ylim(top=THROUGHPUT_BAR * 1.6)  # the bar and its label inside the panel
    speed.legend(fontsize=7, loc="center right")
    memory.plot(rows, [r["chain"]["peak_rss_mb"] / 1024 for r in reports], "o-", color="#0072B2", label="now")
    memory.plot(
        base_rows, [r["baseline"]["peak_rss_mb"] / 1024 for r in with_base], "s-", color="#E69F00", label=before
    )
    memory.axhline(MEMORY_BAR_MB / 1024, color="#D55E00", linewidth=1, linestyle=":")
    memory.text(rows[0], MEMORY_BAR_MB / 1024 * 1.03, "bar: 3 GB at 10 M events", color="#D55E00", fontsize=8)
    memory.set(xscale="log", xlabel="landed rows of the day (millions)", ylabel="peak resident memory (GB)")
    memory.set_ylim(bottom=0, top=MEMORY_BAR_MB / 1024 * 1.12)
    memory.set_title("Peak memory of the chain's process", fontsize=10)
    memory.legend(fontsize=7, loc="lower right")
    for axis in (speed, memory):
        axis.set_xticks(rows, [f"{value:.3g}" for value in rows])
        axis.grid(alpha=0.3)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, metadata={"Date": None})  # no timestamp: the file changes only with the figures
    print(f"written {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "results", nargs="+", type=Path, help="JSON files of bench/run.py (with a baseline where there was one)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/scaling.svg"))
    parser.add_argument("--machine", default="loaded 2-core machine", help="how the machine was, for the title")
    parser.add_argument("--before", default="before", help="what the baseline tree was, for the legend")
    args = parser.parse_args(argv)
    plot(load(args.results), args.out, args.machine, args.before)


if __name__ == "__main__":
    main()
