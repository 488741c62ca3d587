"""The report's tables: the page's data tables as display rows, the KPI table for the terminal, and Markdown
for Dagster metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from crowd_platform.report import breakdowns, queries
from crowd_platform.report.queries import suppression_reason
from crowd_platform.report.svg import DASH, fmt_int, fmt_signed, with_minus
from crowd_platform.warehouse import markdown_table

HEADLINE_COLUMNS = ["event_id", "metric", "zone", "value", "low", "high", "seed", "suppressed", "event_date"]
TOP_N = 15

METRIC_LABELS = {
    "visits": "Visits",
    "unique_visitors": "Unique visitors",
    "countries": "Countries represented",
    "municipalities": "Swedish municipalities",
    "international_share": "International share",
    "median_dwell_min": "Median dwell time",
    "peak_day": "Peak day",
    "uplift": "Uplift over the baseline weeks",
    "visits_per_visitor": "Visits per visitor",
    "days_attended_mean": "Days attended per visitor",
    "first_time_visitors": "First-time visitors",
    "returning_visitors": "Returning visitors",
    "days_attended": "Visitors by days attended",
    "zone_overlap": "Visitors of both zones",
}
DECIMAL_METRICS = {"visits_per_visitor", "days_attended_mean"}


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer():  # counts (countries, municipalities) come as DOUBLE from the KPI table
            return f"{value:,.0f}"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


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


# --- the headline table for people: our figure, its interval, the press release's ------------------


def _number(metric: str, value: float | None) -> str:
    if value is None:
        return ""
    if metric == "international_share":
        return f"{value * 100:.1f} %"
    if metric == "median_dwell_min":
        return f"{value:,.0f} min"
    if metric in DECIMAL_METRICS:
        return f"{value:,.2f}"
    if metric == "uplift":
        return fmt_signed(value)
    return f"{value:,.0f}"


def headline_display(rows: list[dict[str, Any]], event_id: str) -> list[dict[str, str]]:
    """One display row per KPI of the event: figure, zone, ours, 95 % interval, press release, comparison.

    For the seed event the press release's venues without a KPI row are listed too ("no visits measured").
    """
    out = []
    zones_seen = set()
    for row in rows:
        if row["event_id"] != event_id:
            continue
        metric, seed = row["metric"], row["seed"]
        zones_seen.add(row["zone"])
        if row["suppressed"]:
            ours, interval = "suppressed", suppression_reason(row.get("suppression_rule")) or "suppressed"
        else:
            ours = _number(metric, row["value"])
            interval = (
                f"{_number(metric, row['low'])} {DASH} {_number(metric, row['high'])}" if row["low"] is not None else ""
            )
            if metric == "peak_day" and row["event_date"] is not None:
                ours = f"{ours} on {row['event_date']:%a %-d %b}"
        press = _number(metric, seed) if seed is not None else ""
        if seed is not None and metric == "countries":
            press = f"more than {press}"
        elif seed is not None and metric == "visits" and not row["zone_id"]:
            press = f"about {press}"
        out.append(
            {
                "figure": METRIC_LABELS.get(metric, metric),
                "zone": row["zone"] or "",
                "ours": ours,
                "interval": interval,
                "press": press,
                "difference": _difference(row, seed),
                "inside": _inside(row, seed),
            }
        )
    if event_id == queries.SEED_EVENT_ID:  # the press release's venues without a KPI, after the visits rows
        at = sum(1 for row in rows if row["event_id"] == event_id and row["metric"] == "visits")
        for name, seed in queries.SEED_VISITS_BY_ZONE_NAME.items():
            if name not in zones_seen:
                at += 1
                out.insert(
                    at - 1,
                    {
                        "figure": METRIC_LABELS["visits"],
                        "zone": name,
                        "ours": "no visits measured",
                        "interval": "",
                        "press": f"{seed:,}",
                        "difference": "",
                        "inside": "",
                    },
                )
    return out


def _difference(row: dict[str, Any], seed: float | None) -> str:
    """Our figure relative to the press release's, in per cent."""
    if not seed or row["suppressed"] or row["value"] is None:
        return ""
    return with_minus(f"{(row['value'] / seed - 1) * 100:+.0f} %")


def _inside(row: dict[str, Any], seed: float | None) -> str:
    """Whether the press release's figure lies in our 95 % interval."""
    if seed is None or row["suppressed"] or row["low"] is None or row["high"] is None:
        return ""
    return "yes" if row["low"] <= seed <= row["high"] else "no"


# --- the page's data tables: text cells under their headings ----------------------------------------


@dataclass(frozen=True)
class DataTable:
    """Display rows (text cells by key) and their columns (key, heading); the first `text_columns` are text."""

    rows: list[dict[str, str]]
    columns: list[tuple[str, str]]
    text_columns: int = 1


def headline_table(rows: list[dict[str, Any]], event_id: str) -> DataTable:
    columns = [("figure", "Figure"), ("zone", "Zone"), ("ours", "Our estimate"), ("interval", "95 % interval")]
    if event_id == queries.SEED_EVENT_ID:
        columns += [("press", "Press release"), ("difference", "Ours vs press"), ("inside", "Press in our interval?")]
    return DataTable(headline_display(rows, event_id), columns, text_columns=2)


def daily_table(rows: list[dict[str, Any]], zone_names: dict[str, str]) -> DataTable:
    """marts.zone_daily's rows of the main zones: one line per day and zone, baseline weeks included."""
    display = [
        {
            "date": f"{r['event_date']:%a %Y-%m-%d}",
            "zone": zone_names.get(r["zone_id"], r["zone_id"]),
            "period": "event" if r["in_event"] else "baseline",
            "visitors": "suppressed" if r["suppressed"] else fmt_int(r["visitors_est"]),
            "interval": ""
            if r["suppressed"]
            else f"{fmt_int(r['visitors_est_low'])} {DASH} {fmt_int(r['visitors_est_high'])}",
            "dwell": "" if r["median_dwell_min"] is None else f"{r['median_dwell_min']:.0f} min",
        }
        for r in rows
    ]
    columns = [
        ("date", "Date"),
        ("zone", "Zone"),
        ("period", "Period"),
        ("visitors", "Visitors"),
        ("interval", "95 % interval"),
        ("dwell", "Median dwell"),
    ]
    return DataTable(display, columns, text_columns=3)


def uplift_table(rows: list[dict[str, Any]]) -> DataTable:
    display = [
        {
            "zone": r["zone"],
            "visits": breakdowns.value_text(r["visits"]),
            "visits_interval": breakdowns.interval_text(r["visits"]),
            "normal": "" if r["normal"] is None else fmt_int(r["normal"]),
            "uplift": breakdowns.value_text(r["uplift"], "{:+,.0f}"),
            "interval": breakdowns.interval_text(r["uplift"]),
            "share": "" if r["share"] is None else f"{r['share'] * 100:.0f} %".replace("-0 %", "0 %"),
        }
        for r in rows
    ]
    columns = [
        ("zone", "Zone"),
        ("visits", "Visits during the event"),
        ("visits_interval", "95 % interval"),
        ("normal", "Normal level (visits \u2212 uplift)"),
        ("uplift", "Uplift"),
        ("interval", "95 % interval"),
        ("share", "Uplift / visits"),
    ]
    return DataTable(display, columns)


def overlap_table(matrix: breakdowns.OverlapMatrix) -> DataTable:
    """Each zone's unique visitors, then each pair of zones once, with intervals."""
    display = []
    for zone, name in zip(matrix.zones, matrix.names, strict=True):
        own = matrix.unique.get(zone)
        if own is not None:
            display.append(
                {
                    "zone": name,
                    "other": "(unique visitors)",
                    "value": breakdowns.value_text(own),
                    "interval": breakdowns.interval_text(own),
                }
            )
    names = dict(zip(matrix.zones, matrix.names, strict=True))
    for (zone, other), kpi in sorted(matrix.pairs.items()):
        if zone < other:
            display.append(
                {
                    "zone": names.get(zone, zone),
                    "other": names.get(other, other),
                    "value": breakdowns.value_text(kpi),
                    "interval": breakdowns.interval_text(kpi),
                }
            )
    columns = [("zone", "Zone"), ("other", "Also visited"), ("value", "Visitors"), ("interval", "95 % interval")]
    return DataTable(display, columns, text_columns=2)


def top_municipalities_table(published: list[dict[str, Any]]) -> DataTable:
    """The TOP_N municipalities with most published visitor-days (rows largest first)."""
    display = [
        {"rank": str(i + 1), "name": f"{r['name']} ({r['municipality_code']})", "visitors": fmt_int(r["visitors_est"])}
        for i, r in enumerate(published[:TOP_N])
    ]
    return DataTable(display, [("rank", "#"), ("name", "Municipality"), ("visitors", "Visitor-days")], text_columns=2)


# --- Markdown for Dagster metadata ----------------------------------------------------------------


def _interval(value: float | None, low: float | None, high: float | None, suppressed: bool) -> str:
    if suppressed or value is None:
        return "suppressed"
    if low is None or high is None:
        return f"{value:,.0f}"
    return f"{value:,.0f} ({low:,.0f}{DASH}{high:,.0f})"


def _estimate_row(label: str, row: dict[str, Any], fmt: str = "{:,.0f}") -> dict[str, str]:
    return {
        "visitors": label,
        "estimate": breakdowns.value_text(row, fmt),
        "95 % interval": breakdowns.interval_text(row, fmt),
    }


def report_markdown_sections(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The report's main tables as Markdown, one entry per section (for Dagster metadata)."""
    events = queries.events(con)
    rows = queries.headline_rows(con)
    names = queries.zone_names(con)
    multi = len(events) > 1
    sections: dict[str, list[str]] = {
        "headline": [],
        "daily visitors per zone": [],
        "top countries": [],
        "top municipalities": [],
        "uplift": [],
        "days attended": [],
        "zone overlap": [],
    }
    for event in events:
        title = [f"**{event.name}** ({event.start} to {event.end})", ""] if multi else []
        display = headline_display(rows, event.event_id)
        columns = ["figure", "zone", "ours", "interval", "press", "difference", "inside"]
        sections["headline"] += [*title, markdown_table(display, columns), ""]

        by_day: dict[Any, dict[str, str]] = {}
        for daily in queries.daily_visitors(con, event):
            if not daily["in_event"]:
                continue
            day = by_day.setdefault(daily["event_date"], {"date": str(daily["event_date"])})
            day[names.get(daily["zone_id"], daily["zone_id"])] = _interval(
                daily["visitors_est"], daily["visitors_est_low"], daily["visitors_est_high"], daily["suppressed"]
            )
        zone_columns = [names.get(z, z) for z in event.main_zones]
        table_rows = [{c: day.get(c, "") for c in ["date", *zone_columns]} for day in by_day.values()]
        sections["daily visitors per zone"] += [
            *title,
            "Visitors per day, estimate (95 % interval):",
            "",
            markdown_table(table_rows, ["date", *zone_columns]),
            "",
        ]

        countries = queries.origin_countries(con, event)[:TOP_N]
        country_rows = [
            {"country": f"{c['name']} ({c['country_iso2']})", "visitor-days": f"{c['visitors_est']:,.0f}"}
            for c in countries
        ]
        sections["top countries"] += [*title, markdown_table(country_rows, ["country", "visitor-days"]), ""]

        municipalities = [m for m in queries.home_municipalities(con, event) if m["status"] == "published"][:TOP_N]
        municipality_rows = [
            {"municipality": f"{m['name']} ({m['municipality_code']})", "visitor-days": f"{m['visitors_est']:,.0f}"}
            for m in municipalities
        ]
        sections["top municipalities"] += [
            *title,
            markdown_table(municipality_rows, ["municipality", "visitor-days"]),
            "",
        ]
        uplift_rows = [
            {
                "zone": r["zone"],
                "visits": breakdowns.value_text(r["visits"]),
                "uplift": breakdowns.value_text(r["uplift"], "{:+,.0f}"),
                "95 % interval": breakdowns.interval_text(r["uplift"]),
            }
            for r in breakdowns.uplift_rows(con, event)
        ]
        sections["uplift"] += [
            *title,
            markdown_table(uplift_rows, ["zone", "visits", "uplift", "95 % interval"])
            if uplift_rows
            else "No uplift: the warehouse lacks baseline days for some weekday of the event.",
            "",
        ]
        attendance = breakdowns.attendance(con, event)
        history = breakdowns.visitor_history(con, event)
        counts = [*attendance["buckets"], ("first-time", history["first_time"]), ("returning", history["returning"])]
        means = [
            ("mean days attended", attendance["mean_days"]),
            ("visits per visitor", attendance["visits_per_visitor"]),
        ]
        attendance_rows = [_estimate_row(label, row) for label, row in counts if row is not None]
        attendance_rows += [_estimate_row(label, row, "{:.2f}") for label, row in means if row is not None]
        sections["days attended"] += [
            *title,
            markdown_table(attendance_rows, ["visitors", "estimate", "95 % interval"]),
            "",
        ]
        matrix = breakdowns.overlap_matrix(con, event)
        overlap_rows = [
            {
                "zone": names.get(zone, zone),
                "also visited": names.get(other, other),
                "visitors": breakdowns.value_text(kpi),
                "95 % interval": breakdowns.interval_text(kpi),
            }
            for (zone, other), kpi in sorted(matrix.pairs.items())
            if zone < other
        ]
        sections["zone overlap"] += [
            *title,
            markdown_table(overlap_rows, ["zone", "also visited", "visitors", "95 % interval"]),
            "",
        ]
    return {name: "\n".join(lines).strip() for name, lines in sections.items()}
