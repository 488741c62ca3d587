"""The event report page: one self-contained HTML file (inline CSS and SVG, no scripts, nothing fetched)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from crowd_platform.methodology import METHODOLOGY_VERSION, Methodology
from crowd_platform.report import breakdowns, queries, svg
from crowd_platform.report.svg import DASH, esc, fmt_int
from crowd_platform.report.tables import headline_display

STYLE = """
:root{--ink:#1f2933;--muted:#616e7c;--rule:#d9dee4;--accent:#0072B2;--paper:#fff;--band:#f5f7fa}
*{box-sizing:border-box}
body{margin:0;background:var(--band);color:var(--ink);
 font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:74rem;margin:0 auto;padding:1.5rem clamp(.75rem,3vw,2rem) 3rem}
header.page{background:var(--ink);color:#fff;padding:1.6rem clamp(.75rem,3vw,2rem)}
header.page>div{max-width:74rem;margin:0 auto}
header.page h1{margin:0 0 .3rem;font-size:clamp(1.5rem,3.5vw,2.1rem);font-weight:650}
header.page p{margin:.2rem 0;color:#d5dbe1}
h2{font-size:1.55rem;margin:2.2rem 0 .2rem}
h3{font-size:1.2rem;margin:0 0 .4rem}
section{background:var(--paper);border:1px solid var(--rule);border-radius:10px;padding:1.2rem 1.4rem;margin:1rem 0}
.how{color:var(--muted);max-width:60rem;margin:.2rem 0 .8rem}
.meta{color:var(--muted);font-size:.8rem;border-top:1px solid var(--rule);margin-top:.9rem;padding-top:.5rem}
.event-meta{color:var(--muted);margin:0 0 .5rem}
nav.toc{font-size:.92rem}nav.toc a{color:var(--accent);margin-right:1rem;white-space:nowrap}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.92rem;font-variant-numeric:tabular-nums;min-width:100%}
th,td{padding:.38rem .65rem;border-bottom:1px solid var(--rule);text-align:right;vertical-align:top;
 white-space:nowrap}
td.text{white-space:normal}
th{background:#eef2f6;font-weight:600;white-space:normal}
td:first-child{white-space:nowrap}
th:first-child,td:first-child,th.text,td.text{text-align:left}
td.sup{color:var(--muted);font-style:italic}
tbody tr:hover{background:#f7f9fb}
figure{margin:0}
figcaption{color:var(--muted);font-size:.88rem;margin-top:.4rem}
svg.chart{width:100%;height:auto;display:block;font-family:inherit}
svg .chart-title{font-size:17px;font-weight:650;fill:var(--ink)}
svg .chart-subtitle{font-size:13px;fill:var(--muted)}
svg .tick,svg .legend,svg .value{font-size:12px;fill:var(--ink)}
svg .axis-label,svg .note,svg .span-label{font-size:12.5px;fill:var(--muted)}
svg .legend-title{font-size:13px;font-weight:600;fill:var(--ink)}
.top-table{max-width:36rem}h4{margin:1.2rem 0 .3rem}
details{margin-top:.6rem}summary{cursor:pointer;color:var(--accent)}
.empty{color:var(--muted);font-style:italic}
@media (max-width:600px){section{padding:.9rem .8rem}}
@media print{body{background:#fff}section{break-inside:avoid;border:none}}
"""

SOURCE_NOTE = {
    "headline": "marts.event_kpis",
    "daily": "marts.zone_daily",
    "hourly": "marts.zone_hourly",
    "countries": "marts.origin_country_daily",
    "municipalities": "marts.home_municipality_daily, reference.municipalities",
    "dwell": "core.zone_visits (restricted; only binned counts are published)",
    "uplift": "marts.event_kpis (uplift, visits)",
    "overlap": "marts.event_kpis (unique_visitors, zone_overlap)",
    "attendance": "marts.event_kpis (days_attended, days_attended_mean, visits_per_visitor)",
    "returning": "marts.event_kpis (first_time_visitors, returning_visitors)",
}


def _table(rows: list[dict[str, str]], columns: list[tuple[str, str]], text_columns: int = 1) -> str:
    head = "".join(
        f'<th class="{"text" if i < text_columns else ""}">{esc(label)}</th>' for i, (_, label) in enumerate(columns)
    )
    body = []
    for row in rows:
        cells = []
        for i, (key, _) in enumerate(columns):
            value = row.get(key, "")
            classes = ["text"] if i < text_columns else []
            if value == "suppressed":
                classes.append("sup")
            cells.append(f'<td class="{" ".join(classes)}">{esc(value)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


TOP_COUNTRIES = 25
RETURNING_TITLE = "First-time and returning visitors"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _duration(minutes: int) -> str:
    return f"{minutes // 60} h" if minutes % 60 == 0 and minutes else f"{minutes} min"


class Page:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.zone_names = queries.zone_names(con)
        self.headline = queries.headline_rows(con)

    def section(self, anchor: str, title: str, how: str, body: str, source: str) -> str:
        return (
            f'<section id="{esc(anchor)}"><h3>{esc(title)}</h3><p class="how"><strong>How to read:</strong> {how}</p>'
            f'{body}<p class="meta">Methodology {esc(METHODOLOGY_VERSION)} · generated {self.generated} · '
            f"source: {esc(SOURCE_NOTE[source])}</p></section>"
        )

    def colours(self, event: queries.Event) -> dict[str, str]:
        return {zone: svg.PALETTE[i % len(svg.PALETTE)] for i, zone in enumerate(event.main_zones)}

    # --- sections ---------------------------------------------------------------------------

    def headline_section(self, event: queries.Event) -> str:
        rows = headline_display(self.headline, event.event_id)
        columns = [("figure", "Figure"), ("zone", "Zone"), ("ours", "Our estimate"), ("interval", "95 % interval")]
        if event.event_id == queries.SEED_EVENT_ID:
            columns += [
                ("press", "Press release"),
                ("difference", "Ours vs press"),
                ("inside", "Press in our interval?"),
            ]
        body = _table(rows, columns, text_columns=2) if rows else '<p class="empty">No KPIs for this event.</p>'
        how = (
            f"Each figure covers the event's {event.days} days. <em>Visits</em> count each person once per zone and "
            "day (the press release's definition), so a person coming back on three days counts three times; "
            "<em>unique visitors</em> count each person once. Estimates are extrapolated from the operator's "
            "subscribers to the whole population; the 95 % interval shows the uncertainty of that extrapolation. "
            "A figure resting on fewer than k = " + str(queries.K) + " devices is shown as <em>suppressed</em>."
        )
        if event.event_id == queries.SEED_EVENT_ID:
            how += " The press release's preliminary figures are shown beside ours."
        return self.section(f"{event.event_id}-headline", "Headline figures", how, body, "headline")

    def daily_section(self, event: queries.Event) -> str:
        rows = queries.daily_visitors(self.con, event)
        colours = self.colours(event)
        series = []
        for zone in event.main_zones:
            name = self.zone_names.get(zone, zone)
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
        first, last = event.baseline_start, event.end
        if rows:
            first = max(first, min(r["event_date"] for r in rows))
        ticks, step = [], 7 if (last - first).days > 21 else 1 if (last - first).days <= 10 else 2
        day = first + dt.timedelta(days=(7 - first.weekday()) % 7) if step == 7 else first  # Mondays
        while day <= last:
            ticks.append((day.toordinal(), f"{day:%-d %b}"))
            day += dt.timedelta(days=step)
        spans = []
        if first < event.start:
            spans.append(svg.Span(first.toordinal() - 0.5, event.start.toordinal() - 0.5, "baseline weeks", "#e9ecef"))
        spans.append(svg.Span(event.start.toordinal() - 0.5, last.toordinal() + 0.5, "event", "#fbf6e9"))
        chart = svg.line_chart(
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
        table_rows = [
            {
                "date": f"{r['event_date']:%a %Y-%m-%d}",
                "zone": self.zone_names.get(r["zone_id"], r["zone_id"]),
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
        stretches = "The light yellow stretch is the event. "
        if first < event.start:
            stretches = (
                f"The grey stretch is the baseline before the event (up to {queries.BASELINE_DAYS // 7} weeks of "
                "normal life, for comparison), the light yellow stretch the event itself. "
            )
        body = (
            f"<figure>{chart}<figcaption>Lines: estimated visitors per day; band: 95 % interval. {stretches}"
            "Hollow dots on the axis mark suppressed days.</figcaption>"
            f"</figure><details><summary>Data table</summary>{_table(table_rows, columns, 3)}</details>"
        )
        how = (
            "Compare the event stretch with the baseline weeks to see how many more people each zone drew. "
            "Where a band is wide, the day's figure is uncertain; overlapping bands do not differ clearly."
        )
        return self.section(f"{event.event_id}-daily", "Daily visitors per main zone", how, body, "daily")

    def hourly_section(self, event: queries.Event) -> str:
        day = queries.peak_day(self.con, event)
        how = (
            "People present in each zone at some moment of each hour of the busiest day (the day with most "
            "visitors in the main zones). A person staying three hours counts in three hours. No interval is "
            "published for hourly presence."
        )
        if day is None:
            body = '<p class="empty">The peak day is suppressed or unknown; no hourly chart.</p>'
            return self.section(f"{event.event_id}-hourly", "Hourly presence on the peak day", how, body, "hourly")
        rows = queries.hourly_presence(self.con, event, day)
        colours = self.colours(event)
        series = []
        for zone in event.main_zones:
            name = self.zone_names.get(zone, zone)
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
        chart = svg.line_chart(
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
        body = (
            f"<figure>{chart}<figcaption>One point per hour (local time); hollow dots: suppressed hours."
            "</figcaption></figure>"
        )
        return self.section(f"{event.event_id}-hourly", "Hourly presence on the peak day", how, body, "hourly")

    def countries_section(self, event: queries.Event) -> str:
        rows = queries.origin_countries(self.con, event)
        how = (
            "Where visitors' SIM cards come from (the home network's country), summed over the event's days and "
            "main zones: a person counts once per zone and day (visitor-days). Only publishable groups "
            f"(at least k = {queries.K} devices in a zone on a day) enter the sums; countries whose every group "
            "was too small are left out, so small countries are under-counted. No interval is published here."
        )
        if not rows:
            body = '<p class="empty">No country had a publishable group.</p>'
        else:
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
            chart = svg.bar_chart(
                f"Origin countries, {event.name}",
                bars,
                "visitor-days over the event (extrapolated)",
                subtitle=_plural(len(rows), "country", "countries")
                + " with publishable groups"
                + (f"; largest {TOP_COUNTRIES} shown" if len(rows) > TOP_COUNTRIES else ""),
            )
            body = (
                f"<figure>{chart}<figcaption>Bars: extrapolated visitor-days of the published groups "
                "(no interval is published for this table).</figcaption></figure>"
            )
        return self.section(f"{event.event_id}-countries", "Origin countries", how, body, "countries")

    def municipalities_section(self, event: queries.Event) -> str:
        rows = queries.home_municipalities(self.con, event)
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
        published = [r for r in rows if r["status"] == "published"]
        how = (
            "Where Swedish visitors live (the municipality where their phone spends most nights), summed over the "
            "event's days and main zones as visitor-days. Darker means more visitors; grey municipalities sent "
            f"visitors but never k = {queries.K} devices to one zone on one day, so their figure is suppressed; "
            "white ones sent none that were observed. The host municipality's residents are included (thick "
            "outline). Hover over a municipality for its name and figure."
        )
        chart = svg.choropleth(
            f"Home municipalities of visitors, {event.name}",
            regions,
            "visitor-days (extrapolated)",
            subtitle=_plural(len(published), "municipality", "municipalities") + " with publishable groups",
        )
        top = [
            {
                "rank": str(i + 1),
                "name": f"{r['name']} ({r['municipality_code']})",
                "visitors": fmt_int(r["visitors_est"]),
            }
            for i, r in enumerate(published[:15])
        ]
        table = (
            _table(top, [("rank", "#"), ("name", "Municipality"), ("visitors", "Visitor-days")], 2)
            if top
            else ('<p class="empty">No municipality had a publishable group.</p>')
        )
        body = (
            f"<figure>{chart}<figcaption>Colour classes on a logarithmic scale; equirectangular projection. "
            "No interval is published for this table.</figcaption></figure>"
            f'<h4>Top municipalities</h4><div class="top-table">{table}</div>'
        )
        return self.section(f"{event.event_id}-municipalities", "Home municipalities", how, body, "municipalities")

    def dwell_section(self, event: queries.Event) -> str:
        bins = queries.dwell_bins(self.con, event)
        how = (
            "How long visits in the main zones lasted, in 20-minute bins up to six hours and more. Only visits "
            "(presence of at least the visit threshold) count; the counts are visits seen in the operator's own "
            f"subscribers (not extrapolated). A bin with fewer than k = {queries.K} devices is suppressed, and "
            "so is the next smallest one when needed so that no suppressed bin can be recovered from a total."
        )
        kpi = next(
            (
                r
                for r in self.headline
                if r["event_id"] == event.event_id
                and r["metric"] == "median_dwell_min"
                and not r["suppressed"]
                and r["value"] is not None
            ),
            None,
        )
        subtitle = "Visit episodes in the main zones during the event, operator sample"
        if kpi:
            subtitle += f"; median dwell {kpi['value']:.0f} min"
        bars = [
            svg.Bar(
                b["label"],
                b["visits"],
                tooltip=f"{b['label']}{'' if b['to_min'] is None else ' min'}: {fmt_int(b['visits'])} visits",
            )
            for b in bins
        ]
        chart = svg.histogram(
            f"Dwell time of visits, {event.name}",
            bars,
            "dwell time (last bin: 6 hours and more)",
            "visits (operator sample)",
            subtitle,
            x_ticks=[(i, _duration(b["from_min"])) for i, b in enumerate(bins) if b["from_min"] % 60 == 0 or i == 0],
        )
        body = (
            f"<figure>{chart}<figcaption>Bars: number of visits per bin (exact counts in the operator's sample, "
            "no interval); hatched: suppressed.</figcaption></figure>"
        )
        return self.section(f"{event.event_id}-dwell", "Dwell time of visits", how, body, "dwell")

    def uplift_section(self, event: queries.Event) -> str:
        rows = breakdowns.uplift_rows(self.con, event)
        how = (
            "How many visits the event brought beyond a normal day in the same zones. The normal level of each "
            "event day is the mean of the same weekday in the baseline weeks before the event (up to four weeks "
            "that the warehouse holds); the uplift adds, over the event's days, the visits (one per person, zone "
            "and day) minus that level. Its 95 % interval includes the sampling error of both periods and the "
            "baseline's day-to-day variation. A negative uplift means fewer visits than on normal days."
        )
        if not rows:
            body = (
                '<p class="empty">No uplift: the warehouse does not hold baseline days for every weekday of the '
                "event (materialise the weeks before it).</p>"
            )
            return self.section(f"{event.event_id}-uplift", "Uplift over the baseline weeks", how, body, "uplift")
        bars = []
        for r in rows:
            up = r["uplift"]
            text = f"{r['zone']}: {breakdowns.value_text(up, '{:+,.0f}')}"
            if not up["suppressed"]:
                text += f" (95 %: {breakdowns.interval_text(up)})"
            bars.append(svg.Bar(r["zone"], up["value"], up["low"], up["high"], tooltip=text))
        chart = svg.bar_chart(
            f"Uplift over the baseline weeks, {event.name}",
            bars,
            "visits beyond a normal day, summed over the event (extrapolated)",
            subtitle="Bars: uplift; whiskers: 95 % interval (sampling and the baseline's day-to-day variation)",
            fmt=lambda v: "" if v is None else f"{v:+,.0f}".replace("-", "\u2212"),
        )
        table_rows = [
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
        body = (
            f"<figure>{chart}<figcaption>Uplift per main zone and over all main zones, with 95 % intervals. "
            "Venues are not shown: they opened with the event, so all their visits are new.</figcaption></figure>"
            f"{_table(table_rows, columns)}"
        )
        return self.section(f"{event.event_id}-uplift", "Uplift over the baseline weeks", how, body, "uplift")

    def overlap_section(self, event: queries.Event) -> str:
        matrix = breakdowns.overlap_matrix(self.con, event)
        how = (
            "How many visitors of one zone (row) also visited another (column) on some day of the event: each "
            "person counts once per pair, however often they came. The grey diagonal holds each zone's unique "
            "visitors; a cell's colour is its share of the row's unique visitors. A venue lies inside its area, so "
            "most of its visitors are in the area's column too. Hover over a cell for its 95 % interval; the "
            "table below lists them all."
        )
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
        chart = svg.matrix_chart(
            f"Visitors of one zone who also visited another, {event.name}",
            matrix.names,
            cells,
            subtitle="Persons over the whole event, extrapolated; row = the zone, column = the other zone",
            shade_label="share of the row zone's unique visitors",
            diagonal_label="the zone's unique visitors",
        )
        table_rows = []
        for zone, name in zip(matrix.zones, matrix.names, strict=True):
            own = matrix.unique.get(zone)
            if own is not None:
                table_rows.append(
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
                table_rows.append(
                    {
                        "zone": names.get(zone, zone),
                        "other": names.get(other, other),
                        "value": breakdowns.value_text(kpi),
                        "interval": breakdowns.interval_text(kpi),
                    }
                )
        columns = [("zone", "Zone"), ("other", "Also visited"), ("value", "Visitors"), ("interval", "95 % interval")]
        body = (
            f"<figure>{chart}<figcaption>Numbers: visitors (extrapolated, rounded for the chart); empty cells: nobody "
            "in both zones; hatched: suppressed.</figcaption></figure>"
            f"<details><summary>Data table with intervals</summary>{_table(table_rows, columns, 2)}</details>"
        )
        return self.section(f"{event.event_id}-overlap", "Zone overlap", how, body, "overlap")

    def attendance_section(self, event: queries.Event) -> str:
        data = breakdowns.attendance(self.con, event)
        how = (
            "On how many of the event's days each visitor came to the main zones (a day counts when the person "
            "made a visit there), and how many visits (one per zone and day) a visitor made on average. Each "
            "visitor is counted once. The categories add up to the unique visitors."
        )
        bars = []
        for label, row in data["buckets"]:
            if row is None:
                bars.append(svg.Bar(label, 0, tooltip=f"{label}: nobody"))
                continue
            tip = f"{label}: {breakdowns.value_text(row)}"
            if not row["suppressed"]:
                tip += f" visitors (95 %: {breakdowns.interval_text(row)})"
            bars.append(svg.Bar(label, row["value"], row["low"], row["high"], tooltip=tip))
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
        chart = svg.bar_chart(
            f"Visitors by days attended, {event.name}",
            bars,
            "unique visitors (extrapolated)",
            subtitle=subtitle,
        )
        body = f"<figure>{chart}<figcaption>Bars: visitors; whiskers: 95 % interval.</figcaption></figure>"
        title = "Days attended and visits per visitor"
        return self.section(f"{event.event_id}-attendance", title, how, body, "attendance")

    def returning_section(self, event: queries.Event) -> str:
        data = breakdowns.visitor_history(self.con, event)
        how = (
            "A visitor is <em>returning</em> when the phone made a visit to one of the event's main zones in the "
            "baseline weeks before the event (up to four weeks that the warehouse holds), and <em>first-time</em> "
            "otherwise. Regulars of the area (residents, commuters) are mostly returning; people who came for the "
            "event, first-time. Needs at least one week of baseline days."
        )
        if data["first_time"] is None and data["returning"] is None:
            body = '<p class="empty">No split: the warehouse holds less than a week before the event.</p>'
            return self.section(f"{event.event_id}-returning", RETURNING_TITLE, how, body, "returning")
        bars = []
        for label, row in [("first-time", data["first_time"]), ("returning", data["returning"])]:
            if row is None:
                bars.append(svg.Bar(label, 0, tooltip=f"{label}: nobody"))
                continue
            tip = f"{label}: {breakdowns.value_text(row)}"
            if not row["suppressed"]:
                tip += f" (95 %: {breakdowns.interval_text(row)})"
            bars.append(svg.Bar(label, row["value"], row["low"], row["high"], tooltip=tip))
        share = data["returning_share"]
        chart = svg.bar_chart(
            f"First-time and returning visitors, {event.name}",
            bars,
            "unique visitors (extrapolated)",
            subtitle="" if share is None else f"{share * 100:.0f} % of the visitors had been in the main zones before",
            colour=svg.PALETTE[2],
        )
        body = f"<figure>{chart}<figcaption>Bars: visitors; whiskers: 95 % interval.</figcaption></figure>"
        return self.section(f"{event.event_id}-returning", RETURNING_TITLE, how, body, "returning")

    # --- the page ---------------------------------------------------------------------------

    def event_article(self, event: queries.Event) -> str:
        zones = ", ".join(self.zone_names.get(z, z) for z in event.main_zones)
        toc = " ".join(
            f'<a href="#{event.event_id}-{a}">{t}</a>'
            for a, t in [
                ("headline", "Headline"),
                ("daily", "Daily visitors"),
                ("uplift", "Uplift"),
                ("overlap", "Zone overlap"),
                ("attendance", "Days attended"),
                ("returning", "Returning"),
                ("hourly", "Peak day"),
                ("countries", "Countries"),
                ("municipalities", "Municipalities"),
                ("dwell", "Dwell time"),
            ]
        )
        sections = [
            self.headline_section(event),
            self.daily_section(event),
            self.uplift_section(event),
            self.overlap_section(event),
            self.attendance_section(event),
            self.returning_section(event),
            self.hourly_section(event),
            self.countries_section(event),
            self.municipalities_section(event),
            self.dwell_section(event),
        ]
        return (
            f'<article id="{esc(event.event_id)}"><h2>{esc(event.name)}</h2><p class="event-meta">'
            f"{event.start:%-d %B %Y} {DASH} {event.end:%-d %B %Y} ({event.days} days) · main zones: {esc(zones)}</p>"
            f'<nav class="toc">{toc}</nav>{"".join(sections)}</article>'
        )

    def render(self) -> str:
        events = queries.events(self.con)
        articles = "".join(self.event_article(e) for e in events) or '<p class="empty">No events configured.</p>'
        visit_min = f"{Methodology().visit_min_min:.0f}"
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Event report</title><style>{STYLE}</style></head>
<body>
<header class="page"><div><h1>Event report: crowds at {esc(", ".join(e.name for e in events) or "no event")}</h1>
<p>Aggregate, privacy-safe statistics from mobile-network data · methodology {esc(METHODOLOGY_VERSION)} ·
generated {self.generated}</p></div></header>
<main>
<section><h3>How to read this report</h3><p class="how">All figures are estimates for the whole population,
extrapolated from one operator's subscribers; where an interval is given it is a 95 % interval (the true figure
lies in it with 95 % probability, counting the sampling error of the extrapolation). A <em>visit</em> is a stay
of at least {visit_min} minutes in a zone; a person counts once per zone and day. Figures resting on fewer
than k = {queries.K} distinct devices are <em>suppressed</em>: shown as such, never as zero, and left out of
sums. Sums over days (visitor-days) count a person once per day and zone.</p>
<p class="meta">Methodology {esc(METHODOLOGY_VERSION)} · generated {self.generated}</p></section>
{articles}
</main></body></html>
"""


def render_html(con: duckdb.DuckDBPyConnection) -> str:
    return Page(con).render()


def write_report(con: duckdb.DuckDBPyConnection, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "event_report.html"
    path.write_text(render_html(con), encoding="utf-8")
    return path
