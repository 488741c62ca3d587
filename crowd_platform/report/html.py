"""The event report page: one self-contained HTML file (inline CSS and SVG, no scripts, nothing fetched)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from crowd_platform.methodology import METHODOLOGY_VERSION, Methodology
from crowd_platform.report import breakdowns, charts, queries, tables
from crowd_platform.report.svg import DASH, esc

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
    "dwell": "core.visitor_days (restricted; only binned counts are published)",
    "uplift": "marts.event_kpis (uplift, visits)",
    "overlap": "marts.event_kpis (unique_visitors, zone_overlap)",
    "attendance": "marts.event_kpis (days_attended, days_attended_mean, visits_per_visitor)",
    "returning": "marts.event_kpis (first_time_visitors, returning_visitors)",
}


def _empty(text: str) -> str:
    return f'<p class="empty">{text}</p>'


def _table(table: tables.DataTable, summary: str = "") -> str:
    """A data table; with a `summary`, folded away under that line (long tables that repeat a chart's figures)."""
    head = "".join(
        f'<th class="{"text" if i < table.text_columns else ""}">{esc(label)}</th>'
        for i, (_, label) in enumerate(table.columns)
    )
    body = []
    for row in table.rows:
        cells = []
        for i, (key, _) in enumerate(table.columns):
            value = row.get(key, "")
            classes = ["text"] if i < table.text_columns else []
            if value == "suppressed":
                classes.append("sup")
            cells.append(f'<td class="{" ".join(classes)}">{esc(value)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    scroll = f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    return f"<details><summary>{esc(summary)}</summary>{scroll}</details>" if summary else scroll


RETURNING_TITLE = "First-time and returning visitors"
WHISKERS = "Bars: visitors; whiskers: 95 % interval."


class Page:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.zone_names = queries.zone_names(con)
        self.headline = queries.headline_rows(con)

    def meta(self, source: str = "") -> str:
        """The methodology line closing a section; `source` is a key of SOURCE_NOTE."""
        where = f" · source: {esc(SOURCE_NOTE[source])}" if source else ""
        return f'<p class="meta">Methodology {esc(METHODOLOGY_VERSION)} · generated {self.generated}{where}</p>'

    def section(
        self,
        event: queries.Event,
        key: str,
        title: str,
        how: str,
        *,
        chart: str = "",
        caption: str = "",
        table: str = "",
        empty: str = "",
    ) -> str:
        """One section: heading, how to read it, the chart with its caption, the data table, the methodology line.

        `key` names the anchor (`<event>-<key>`) and the source note; `how`, `caption` and `empty` are HTML.
        `empty` says why there is nothing to show, in place of chart and table.
        """
        if empty:
            body = _empty(empty)
        else:
            figure = f"<figure>{chart}<figcaption>{caption}</figcaption></figure>" if chart else ""
            body = figure + table
        return (
            f'<section id="{esc(f"{event.event_id}-{key}")}"><h3>{esc(title)}</h3>'
            f'<p class="how"><strong>How to read:</strong> {how}</p>{body}{self.meta(key)}</section>'
        )

    # --- sections, in page order ----------------------------------------------------------------

    def headline_section(self, event: queries.Event) -> str:
        table = tables.headline_table(self.headline, event.event_id)
        how = (
            f"Each figure covers the event's {event.days} days. <em>Visits</em> count each person once per zone and "
            "day (the press release's definition), so a person coming back on three days counts three times; "
            "<em>unique visitors</em> count each person once. Estimates are extrapolated from the operator's "
            "subscribers to the whole population; the 95 % interval shows the uncertainty of that extrapolation "
            "and of placing phones in zones from the cells they use (measured on a synthetic validation world). "
            "An interval from 0 marks a zone that the network cannot tell from its surroundings (no cell "
            "covers mostly the zone): the people counted there may all have been just outside it. "
            f"A figure resting on fewer than k = {queries.K} devices is shown as <em>suppressed</em>."
        )
        if event.event_id == queries.SEED_EVENT_ID:
            how += " The press release's preliminary figures are shown beside ours."
        return self.section(
            event,
            "headline",
            "Headline figures",
            how,
            table=_table(table),
            empty="" if table.rows else "No KPIs for this event.",
        )

    def daily_section(self, event: queries.Event) -> str:
        rows = queries.daily_visitors(self.con, event)
        stretches = "The light yellow stretch is the event. "
        if charts.daily_first_day(event, rows) < event.start:
            stretches = (
                f"The grey stretch is the baseline before the event (up to {queries.BASELINE_DAYS // 7} weeks of "
                "normal life, for comparison), the light yellow stretch the event itself. "
            )
        how = (
            "Compare the event stretch with the baseline weeks to see how many more people each zone drew. "
            "Where a band is wide, the day's figure is uncertain; overlapping bands do not differ clearly."
        )
        return self.section(
            event,
            "daily",
            "Daily visitors per main zone",
            how,
            chart=charts.daily_visitors(event, rows, self.zone_names),
            caption=f"Lines: estimated visitors per day; band: 95 % interval. {stretches}"
            "Hollow dots on the axis mark suppressed days.",
            table=_table(tables.daily_table(rows, self.zone_names), summary="Data table"),
        )

    def uplift_section(self, event: queries.Event) -> str:
        rows = breakdowns.uplift_rows(self.con, event)
        how = (
            "How many visits the event brought beyond a normal day in the same zones. The normal level of each "
            "event day is the mean of the same weekday in the baseline weeks before the event (up to four weeks "
            "that the warehouse holds); the uplift adds, over the event's days, the visits (one per person, zone "
            "and day) minus that level. Its 95 % interval includes the sampling error of both periods, the "
            "baseline's day-to-day variation and the error of placing phones in zones. A negative uplift means "
            "fewer visits than on normal days."
        )
        if not rows:
            empty = (
                "No uplift: the warehouse does not hold baseline days for every weekday of the event (materialise "
                "the weeks before it)."
            )
            return self.section(event, "uplift", "Uplift over the baseline weeks", how, empty=empty)
        return self.section(
            event,
            "uplift",
            "Uplift over the baseline weeks",
            how,
            chart=charts.uplift(event, rows),
            caption="Uplift per main zone and over all main zones, with 95 % intervals. Venues are not shown: "
            "they opened with the event, so all their visits are new.",
            table=_table(tables.uplift_table(rows)),
        )

    def overlap_section(self, event: queries.Event) -> str:
        matrix = breakdowns.overlap_matrix(self.con, event)
        how = (
            "How many visitors of one zone (row) also visited another (column) on some day of the event: each "
            "person counts once per pair, however often they came. The grey diagonal holds each zone's unique "
            "visitors; a cell's colour is its share of the row's unique visitors. A venue lies inside its area, so "
            "most of its visitors are in the area's column too. Hover over a cell for its 95 % interval; the "
            "table below lists them all."
        )
        return self.section(
            event,
            "overlap",
            "Zone overlap",
            how,
            chart=charts.zone_overlap(event, matrix),
            caption="Numbers: visitors (extrapolated, rounded for the chart); empty cells: nobody in both zones; "
            "hatched: suppressed.",
            table=_table(tables.overlap_table(matrix), summary="Data table with intervals"),
        )

    def attendance_section(self, event: queries.Event) -> str:
        how = (
            "On how many of the event's days each visitor came to the main zones (a day counts when the person "
            "made a visit there), and how many visits (one per zone and day) a visitor made on average. Each "
            "visitor is counted once. The categories add up to the unique visitors."
        )
        chart = charts.days_attended(event, breakdowns.attendance(self.con, event))
        title = "Days attended and visits per visitor"
        return self.section(event, "attendance", title, how, chart=chart, caption=WHISKERS)

    def returning_section(self, event: queries.Event) -> str:
        data = breakdowns.visitor_history(self.con, event)
        how = (
            "A visitor is <em>returning</em> when the phone made a visit to one of the event's main zones in the "
            "baseline weeks before the event (up to four weeks that the warehouse holds), and <em>first-time</em> "
            "otherwise. Regulars of the area (residents, commuters) are mostly returning; people who came for the "
            "event, first-time. Needs at least one week of baseline days."
        )
        if data["first_time"] is None and data["returning"] is None:
            empty = "No split: the warehouse holds less than a week before the event."
            return self.section(event, "returning", RETURNING_TITLE, how, empty=empty)
        chart = charts.visitor_history(event, data)
        return self.section(event, "returning", RETURNING_TITLE, how, chart=chart, caption=WHISKERS)

    def hourly_section(self, event: queries.Event) -> str:
        day = queries.peak_day(self.con, event)
        how = (
            "People present in each zone at some moment of each hour of the busiest day (the day with most "
            "visitors in the main zones). A person staying three hours counts in three hours. No interval is "
            "published for hourly presence."
        )
        title = "Hourly presence on the peak day"
        if day is None:
            empty = "The peak day is suppressed or unknown; no hourly chart."
            return self.section(event, "hourly", title, how, empty=empty)
        chart = charts.hourly_presence(event, day, queries.hourly_presence(self.con, event, day), self.zone_names)
        caption = "One point per hour (local time); hollow dots: suppressed hours."
        return self.section(event, "hourly", title, how, chart=chart, caption=caption)

    def countries_section(self, event: queries.Event) -> str:
        rows = queries.origin_countries(self.con, event)
        how = (
            "Where visitors' SIM cards come from (the home network's country), summed over the event's days and "
            "main zones: a person counts once per zone and day (visitor-days). Only publishable groups "
            f"(at least k = {queries.K} devices in a zone on a day) enter the sums; countries whose every group "
            "was too small are left out, so small countries are under-counted. No interval is published here."
        )
        if not rows:
            empty = "No country had a publishable group."
            return self.section(event, "countries", "Origin countries", how, empty=empty)
        return self.section(
            event,
            "countries",
            "Origin countries",
            how,
            chart=charts.origin_countries(event, rows),
            caption="Bars: extrapolated visitor-days of the published groups "
            "(no interval is published for this table).",
        )

    def municipalities_section(self, event: queries.Event) -> str:
        rows = queries.home_municipalities(self.con, event)
        how = (
            "Where Swedish visitors live (the municipality where their phone spends most nights), summed over the "
            "event's days and main zones as visitor-days. Darker means more visitors; grey municipalities sent "
            f"visitors but never k = {queries.K} devices to one zone on one day, so their figure is suppressed; "
            "white ones sent none that were observed. The host municipality's residents are included (thick "
            "outline). Hover over a municipality for its name and figure."
        )
        top = tables.top_municipalities_table([r for r in rows if r["status"] == "published"])
        top_html = _table(top) if top.rows else _empty("No municipality had a publishable group.")
        return self.section(
            event,
            "municipalities",
            "Home municipalities",
            how,
            chart=charts.home_municipalities(event, rows),
            caption="Colour classes on a logarithmic scale; equirectangular projection. "
            "No interval is published for this table.",
            table=f'<h4>Top municipalities</h4><div class="top-table">{top_html}</div>',
        )

    def dwell_section(self, event: queries.Event) -> str:
        how = (
            "How long visits in the main zones lasted, in 20-minute bins up to six hours and more. A visit is a "
            "person in a main zone on a day, and its dwell their time there that day (presence of at least the "
            "visit threshold, all of it); the counts are visits seen in the operator's own "
            f"subscribers (not extrapolated). A bin with fewer than k = {queries.K} devices is suppressed, and "
            "so is the next smallest one when needed so that no suppressed bin can be recovered from a total."
        )
        median = next(
            (
                r["value"]
                for r in self.headline
                if r["event_id"] == event.event_id
                and r["metric"] == "median_dwell_min"
                and not r["suppressed"]
                and r["value"] is not None
            ),
            None,
        )
        return self.section(
            event,
            "dwell",
            "Dwell time of visits",
            how,
            chart=charts.dwell_time(event, queries.dwell_bins(self.con, event), median),
            caption="Bars: number of visits per bin (exact counts in the operator's sample, no interval); "
            "hatched: suppressed.",
        )

    # --- the page ---------------------------------------------------------------------------

    def event_article(self, event: queries.Event) -> str:
        sections = [  # (anchor key, label in the table of contents, builder), in page order
            ("headline", "Headline", self.headline_section),
            ("daily", "Daily visitors", self.daily_section),
            ("uplift", "Uplift", self.uplift_section),
            ("overlap", "Zone overlap", self.overlap_section),
            ("attendance", "Days attended", self.attendance_section),
            ("returning", "Returning", self.returning_section),
            ("hourly", "Peak day", self.hourly_section),
            ("countries", "Countries", self.countries_section),
            ("municipalities", "Municipalities", self.municipalities_section),
            ("dwell", "Dwell time", self.dwell_section),
        ]
        toc = " ".join(f'<a href="#{event.event_id}-{key}">{label}</a>' for key, label, _ in sections)
        zones = ", ".join(self.zone_names.get(z, z) for z in event.main_zones)
        return (
            f'<article id="{esc(event.event_id)}"><h2>{esc(event.name)}</h2><p class="event-meta">'
            f"{event.start:%-d %B %Y} {DASH} {event.end:%-d %B %Y} ({event.days} days) · main zones: {esc(zones)}</p>"
            f'<nav class="toc">{toc}</nav>{"".join(build(event) for _, _, build in sections)}</article>'
        )

    def render(self) -> str:
        events = queries.events(self.con)
        articles = "".join(self.event_article(e) for e in events) or _empty("No events configured.")
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
lies in it with 95 % probability, counting the sampling error of the extrapolation and the error of placing
phones in zones from the cells they use, as measured on a synthetic validation world). A <em>visit</em> is a stay
of at least {visit_min} minutes in a zone; a person counts once per zone and day. Figures resting on fewer
than k = {queries.K} distinct devices are <em>suppressed</em>: shown as such, never as zero, and left out of
sums. Sums over days (visitor-days) count a person once per day and zone.</p>
{self.meta()}</section>
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
