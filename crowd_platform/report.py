"""The event report: the KPI table for people to read, as text (CLI), Markdown and HTML.

First cut: self-contained HTML with the headline table (the seed's published figures beside
ours), daily visitors per zone and origin countries. The publication issue adds the charts.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

import duckdb

from crowd_platform.methodology import METHODOLOGY_VERSION
from crowd_platform.warehouse import markdown_table

# "H22 in figures" from the press release (seed/000_117312bfeec6f1d4.txt), by zone name.
SEED_VISITS_BY_ZONE_NAME = {
    "City & Slottshagen": 600_000,
    "Oceanhamnen": 300_000,
    "Drottninghög": 125_000,
    "Magasin 405": 120_000,
    "Havoteket": 30_000,
    "Helsingborgsrummet": 14_000,
    "1972-lägenheten": 12_000,
    "The Sounds in Slottshagen": 8_000,
}
SEED_TOTAL_VISITS = 1_000_000
SEED_COUNTRIES = 45
SEED_MUNICIPALITIES = 150
SEED_INTERNATIONAL_SHARE = 0.11

HEADLINE_QUERY = """
SELECT
    kpis.event_id,
    kpis.metric,
    kpis.zone_id,
    zones.name AS zone_name,
    kpis.value,
    kpis.low,
    kpis.high,
    kpis.suppressed,
    kpis.event_date
FROM event.event_kpis AS kpis
LEFT JOIN reference.zones AS zones USING (zone_id)
ORDER BY kpis.event_id,
         CASE kpis.metric WHEN 'visits' THEN 0 WHEN 'unique_visitors' THEN 1 ELSE 2 END,
         kpis.zone_id IS NOT NULL, zones.kind, kpis.value DESC NULLS LAST, kpis.metric
"""


SEED_EVENT_ID = "h22"


def seed_value(event_id: str, metric: str, zone_name: str | None) -> float | None:
    """The press release's figure for a KPI of the H22 event (none for other events)."""
    if event_id != SEED_EVENT_ID:
        return None
    if metric == "visits":
        return SEED_VISITS_BY_ZONE_NAME.get(zone_name) if zone_name else SEED_TOTAL_VISITS
    return {
        "countries": SEED_COUNTRIES,
        "municipalities": SEED_MUNICIPALITIES,
        "international_share": SEED_INTERNATIONAL_SHARE,
    }.get(metric)


def headline_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(HEADLINE_QUERY).pl().to_dicts()
    for row in rows:
        row["seed"] = seed_value(row["event_id"], row["metric"], row["zone_name"])
        row["zone"] = row.pop("zone_name") or ("(all main zones)" if row["metric"] == "visits" else "")
    return rows


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


HEADLINE_COLUMNS = ["event_id", "metric", "zone", "value", "low", "high", "seed", "suppressed", "event_date"]


def kpi_text_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table for the terminal."""
    cells = [[_format(row[c]) for c in HEADLINE_COLUMNS] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(HEADLINE_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(HEADLINE_COLUMNS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.rjust(w) if i >= 3 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    ]
    return "\n".join(lines)


def kpi_markdown(rows: list[dict[str, Any]]) -> str:
    return markdown_table([{c: _format(r[c]) for c in HEADLINE_COLUMNS} for r in rows], HEADLINE_COLUMNS)


def _html_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_format(r[c]))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


DAILY_COLUMNS = [
    "event_date", "zone", "visitors_est", "visitors_est_low", "visitors_est_high", "median_dwell_min", "suppressed",
]  # fmt: skip


def render_html(con: duckdb.DuckDBPyConnection) -> str:
    headline = headline_rows(con)
    daily = (
        con.execute(
            """
        SELECT daily.event_date, zones.name AS zone, daily.visitors_est, daily.visitors_est_low,
               daily.visitors_est_high, daily.median_dwell_min, daily.suppressed
        FROM marts.zone_daily AS daily JOIN reference.zones AS zones USING (zone_id)
        JOIN (SELECT min(start_date) AS s, max(end_date) AS e FROM reference.events) AS event_window
          ON daily.event_date BETWEEN event_window.s AND event_window.e
        ORDER BY daily.event_date, zones.kind, zones.name
        """
        )
        .pl()
        .to_dicts()
    )
    countries = (
        con.execute(
            """
        SELECT country_iso2, sum(visitors_est) AS visitors_est, bool_or(suppressed) AS any_suppressed
        FROM marts.origin_country_daily
        WHERE NOT suppressed
        GROUP BY country_iso2 ORDER BY visitors_est DESC LIMIT 30
        """
        )
        .pl()
        .to_dicts()
    )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    style = (
        "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;"
        "text-align:right}th{background:#f0f3f7}td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Event report</title><style>{style}</style></head>
<body>
<h1>Event report</h1>
<p>Methodology {html.escape(METHODOLOGY_VERSION)}; generated {generated}. Estimates are extrapolated to
the population; low and high bound the 95 % interval. Groups under the disclosure threshold are
suppressed (empty). "seed" is the figure published in the original press release.</p>
<h2>Headline figures</h2>
{_html_table(headline, HEADLINE_COLUMNS)}
<h2>Visitors per zone and day</h2>
{_html_table(daily, DAILY_COLUMNS)}
<h2>Origin countries (sum of daily visitors, published groups)</h2>
{_html_table(countries, ["country_iso2", "visitors_est"])}
</body></html>
"""


def write_report(con: duckdb.DuckDBPyConnection, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "event_report.html"
    path.write_text(render_html(con), encoding="utf-8")
    return path
