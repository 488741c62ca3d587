"""The page's charts: rows read by `queries` and `breakdowns` turned into the inline SVG charts of `svg`.

One function per chart of the event report (`html` places them, with their captions and tables). This is
where the charts' titles, tooltips, ticks and colours are chosen; `svg` only knows how to draw.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from crowd_platform.report import breakdowns, queries, svg
from crowd_platform.report.svg import DASH, fmt_int

TOP_COUNTRIES = 25


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _duration(minutes: int) -> str:
    return f"{minutes // 60} h" if minutes % 60 == 0 and minutes else f"{minutes} min"


def zone_colours(event: queries.Event) -> dict[str, str]:
    """One colour per main zone, the same in every chart of the event."""
    return {zone: svg.PALETTE[i % len(svg.PALETTE)] for i, zone in enumerate(event.main_zones)}


def estimate_bar(label: str, row: dict[str, Any] | None, value_fmt: str = "{:,.0f}", unit: str = "") -> svg.Bar:
    """A bar for one KPI row with its 95 % whisker; the tooltip gives the figure (`unit` after it) and interval.

    No row at all means nobody in that category (a zero bar), unlike a suppressed row (no bar, "suppressed").
    """
    if row is None:
        return svg.Bar(label, 0, tooltip=f"{label}: nobody")
    tooltip = f"{label}: {breakdowns.value_text(row, value_fmt)}"
    if not row["suppressed"]:
        tooltip += f"{unit} (95 %: {breakdowns.interval_text(row)})"
    return svg.Bar(label, row["value"], row["low"], row["high"], tooltip=tooltip)


# --- time series ---------------------------------------------------------------------------------------------


def daily_first_day(event: queries.Event, rows: list[dict[str, Any]]) -> dt.date:
    """The daily chart's first day: the start of the baseline weeks, or the first day the warehouse holds."""
    if not rows:
        return event.baseline_start
    return max(event.baseline_start, min(r["event_date"] for r in rows))


def daily_visitors(event: queries.Event, rows: list[dict[str, Any]], zone_names: dict[str, str]) -> str:
    """Visitors per day and main zone with their 95 % bands; the baseline weeks and the event shaded."""
    colours = zone_colours(event)
    series = []
    for zone in event.main_zones:
        name = zone_names.get(zone, zone)
        points = []
        for r in (r for r in rows if r["zone_id"] == zone):
            when = f"{name}, {r['event_date']:%a %d %b}"
            label = (
                f"{when}: suppressed"
                if r["suppressed"]
                else f"{when}: {fmt_int(r['visitors_est'])} "
                f"(95 %: {fmt_int(r['visitors_est_low'])}{DASH}{fmt_int(r['visitors_est_high'])})"
            )
            points.append(
                svg.Point(
                    r["event_date"].toordinal(),
                    r["visitors_est"],
                    r["visitors_est_low"],
                    r["visitors_est_high"],
                    bool(r["suppressed"]),
                    label,
                )
            )
        series.append(svg.Series(name, points, colours[zone]))
    first, last = daily_first_day(event, rows), event.end
    ticks, step = [], 7 if (last - first).days > 21 else 1 if (last - first).days <= 10 else 2
    day = first + dt.timedelta(days=(7 - first.weekday()) % 7) if step == 7 else first  # Mondays
    while day <= last:
        ticks.append((day.toordinal(), f"{day:%-d %b}"))
        day += dt.timedelta(days=step)
    spans = []
    if first < event.start:
        spans.append(svg.Span(first.toordinal() - 0.5, event.start.toordinal() - 0.5, "baseline weeks", "#e9ecef"))
    spans.append(svg.Span(event.start.toordinal() - 0.5, last.toordinal() + 0.5, "event", "#fbf6e9"))
    return svg.line_chart(
        svg.LineChart(
            title=f"Visitors per day in each main zone, {event.name}",
            subtitle="Distinct persons per zone and day, extrapolated; shaded band: 95 % interval",
            series=series,
            x_ticks=ticks,
            x_label="date" + (" (ticks on Mondays)" if step == 7 else ""),
            y_label="visitors per day",
            spans=spans,
            x_range=(first.toordinal() - 0.5, last.toordinal() + 0.5),
        )
    )


def hourly_presence(event: queries.Event, day: dt.date, rows: list[dict[str, Any]], zone_names: dict[str, str]) -> str:
    """People present per hour of one day and main zone (no interval is published for hours)."""
    colours = zone_colours(event)
    series = []
    for zone in event.main_zones:
        name = zone_names.get(zone, zone)
        by_hour = {r["hour"]: r for r in rows if r["zone_id"] == zone}
        points = []
        for hour in range(24):
            r = by_hour.get(hour)
            text = f"{name}, {hour:02d}:00{DASH}{hour + 1:02d}:00"
            if r is None:
                points.append(svg.Point(hour, None, label=f"{text}: no data"))
            elif r["suppressed"]:
                points.append(svg.Point(hour, None, suppressed=True, label=f"{text}: suppressed"))
            else:
                points.append(svg.Point(hour, r["present_est"], label=f"{text}: {fmt_int(r['present_est'])}"))
        series.append(svg.Series(name, points, colours[zone]))
    return svg.line_chart(
        svg.LineChart(
            title=f"People present per hour on the peak day, {day:%A %d %B %Y}",
            subtitle="Distinct persons present at some moment of the hour, extrapolated (no interval published)",
            series=series,
            x_ticks=[(h, f"{h:02d}") for h in range(0, 24, 2)],
            x_label="hour of day (local time)",
            y_label="people present",
            x_range=(-0.5, 23.5),
        )
    )


# --- where visitors come from and how long they stay ------------------------------------------------------------


def origin_countries(event: queries.Event, rows: list[dict[str, Any]]) -> str:
    """The TOP_COUNTRIES countries with most published visitor-days (rows largest first, not empty)."""
    total = sum(r["visitors_est"] for r in rows)
    bars = [
        svg.Bar(
            f"{r['name']} ({r['country_iso2']})",
            r["visitors_est"],
            tooltip=f"{r['name']}: {fmt_int(r['visitors_est'])} visitor-days "
            f"({r['visitors_est'] / total * 100:.1f} % of published)",
        )
        for r in rows[:TOP_COUNTRIES]
    ]
    return svg.bar_chart(
        f"Origin countries, {event.name}",
        bars,
        "visitor-days over the event (extrapolated)",
        subtitle=_plural(len(rows), "country", "countries")
        + " with publishable groups"
        + (f"; largest {TOP_COUNTRIES} shown" if len(rows) > TOP_COUNTRIES else ""),
    )


def home_municipalities(event: queries.Event, rows: list[dict[str, Any]]) -> str:
    """The map of every municipality's published visitor-days; the host municipality outlined."""
    regions = [
        svg.Region(
            r["municipality_code"],
            r["name"],
            svg.geojson_polygons(json.loads(r["geojson"])),
            r["visitors_est"],
            r["status"],
            r["municipality_code"] == event.host_municipality,
        )
        for r in rows
        if r["geojson"]
    ]
    published = sum(1 for r in rows if r["status"] == "published")
    return svg.choropleth(
        f"Home municipalities of visitors, {event.name}",
        regions,
        "visitor-days (extrapolated)",
        subtitle=_plural(published, "municipality", "municipalities") + " with publishable groups",
    )


def dwell_time(event: queries.Event, bins: list[dict[str, Any]], median_dwell_min: float | None) -> str:
    """Visits per dwell-time bin (exact counts of the operator's sample); suppressed bins hatched."""
    subtitle = "Visits (persons per main zone and day) during the event, operator sample"
    if median_dwell_min is not None:
        subtitle += f"; median dwell {median_dwell_min:.0f} min"
    bars = [
        svg.Bar(
            b["label"],
            b["visits"],
            tooltip=f"{b['label']}{'' if b['to_min'] is None else ' min'}: {fmt_int(b['visits'])} visits",
        )
        for b in bins
    ]
    return svg.histogram(
        f"Dwell time of visits, {event.name}",
        bars,
        "dwell time (last bin: 6 hours and more)",
        "visits (operator sample)",
        subtitle,
        x_ticks=[(i, _duration(b["from_min"])) for i, b in enumerate(bins) if b["from_min"] % 60 == 0 or i == 0],
    )


# --- the breakdown KPIs -------------------------------------------------------------------------------------


def uplift(event: queries.Event, rows: list[dict[str, Any]]) -> str:
    """The uplift of each main zone and of all of them (breakdowns.uplift_rows, not empty)."""
    bars = [estimate_bar(r["zone"], r["uplift"], value_fmt="{:+,.0f}") for r in rows]
    return svg.bar_chart(
        f"Uplift over the baseline weeks, {event.name}",
        bars,
        "visits beyond a normal day, summed over the event (extrapolated)",
        subtitle="Bars: uplift; whiskers: 95 % interval (sampling, day-to-day variation, zone attribution)",
        fmt=svg.fmt_signed,
    )


def zone_overlap(event: queries.Event, matrix: breakdowns.OverlapMatrix) -> str:
    """The overlap matrix: unique visitors on the diagonal, shaded by the share of the row zone's visitors."""
    cells: dict[tuple[int, int], svg.MatrixCell] = {}
    for i, row_zone in enumerate(matrix.zones):
        own = matrix.unique.get(row_zone)
        for j, column_zone in enumerate(matrix.zones):
            kpi = own if i == j else matrix.pairs.get((row_zone, column_zone))
            if kpi is None:
                continue
            label = (
                f"{matrix.names[i]}: unique visitors"
                if i == j
                else f"visitors of {matrix.names[i]} who also visited {matrix.names[j]}"
            )
            if kpi["suppressed"]:
                reason = breakdowns.interval_text(kpi)
                cells[(i, j)] = svg.MatrixCell(None, tooltip=f"{label}: suppressed ({reason})", suppressed=True)
                continue
            share = kpi["value"] / own["value"] if own and own["value"] else None
            tooltip = f"{label}: {fmt_int(kpi['value'])} (95 %: {breakdowns.interval_text(kpi)})"
            if share is not None and i != j:
                tooltip += f"; {share * 100:.0f} % of {matrix.names[i]}'s visitors"
            cells[(i, j)] = svg.MatrixCell(kpi["value"], share, svg.fmt_compact(kpi["value"]), tooltip)
    return svg.matrix_chart(
        f"Visitors of one zone who also visited another, {event.name}",
        matrix.names,
        cells,
        subtitle="Persons over the whole event, extrapolated; row = the zone, column = the other zone",
        shade_label="share of the row zone's unique visitors",
        diagonal_label="the zone's unique visitors",
    )


def days_attended(event: queries.Event, data: dict[str, Any]) -> str:
    """Visitors by days attended (breakdowns.attendance); the means in the subtitle."""
    bars = [estimate_bar(label, row, unit=" visitors") for label, row in data["buckets"]]
    mean, per_visitor = data["mean_days"], data["visits_per_visitor"]
    subtitle = ""
    if mean is not None:
        subtitle = (
            f"Mean days attended {breakdowns.value_text(mean, '{:.2f}')} "
            f"(95 %: {breakdowns.interval_text(mean, '{:.2f}')})"
        )
    if per_visitor is not None:
        subtitle += (
            f"; visits per visitor {breakdowns.value_text(per_visitor, '{:.2f}')} "
            f"(95 %: {breakdowns.interval_text(per_visitor, '{:.2f}')})"
        )
    return svg.bar_chart(f"Visitors by days attended, {event.name}", bars, "unique visitors (extrapolated)", subtitle)


def visitor_history(event: queries.Event, data: dict[str, Any]) -> str:
    """First-time and returning visitors (breakdowns.visitor_history); the returning share in the subtitle."""
    bars = [estimate_bar(label, data[key]) for label, key in [("first-time", "first_time"), ("returning", "returning")]]
    share = data["returning_share"]
    return svg.bar_chart(
        f"First-time and returning visitors, {event.name}",
        bars,
        "unique visitors (extrapolated)",
        subtitle="" if share is None else f"{share * 100:.0f} % of the visitors had been in the main zones before",
        colour=svg.PALETTE[2],
    )
