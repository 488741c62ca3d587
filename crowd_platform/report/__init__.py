"""The event report: the KPI table for people to read, as text (CLI), Markdown (Dagster) and HTML.

`event_report.html` is one self-contained file (inline CSS and SVG charts, no scripts, nothing fetched)
with, per event: the headline KPIs beside the press release's figures, daily visitors per main zone, the
uplift over the baseline weeks, the zone-overlap matrix, days attended, first-time vs returning visitors,
hourly presence on the peak day, origin countries, a map of home municipalities and the dwell-time
distribution (docs/publication.md). Modules: `queries` (what is read), `breakdowns` (the breakdown KPIs as
rows), `svg` (generic chart drawing: axes, bars, lines, matrix, map), `charts` (each chart of the page, from
rows), `tables` (each data table of the page as display rows; the KPI table as text and Markdown) and `html`
(the page: per section its words, chart, caption and table, placed by one helper, `Page.section`).
"""

from crowd_platform.report.html import render_html, write_report
from crowd_platform.report.queries import (
    SEED_COUNTRIES,
    SEED_EVENT_ID,
    SEED_INTERNATIONAL_SHARE,
    SEED_MUNICIPALITIES,
    SEED_TOTAL_VISITS,
    SEED_VISITS_BY_ZONE_NAME,
    headline_rows,
    seed_value,
)
from crowd_platform.report.tables import HEADLINE_COLUMNS, kpi_markdown, kpi_text_table, report_markdown_sections

__all__ = [
    "HEADLINE_COLUMNS",
    "SEED_COUNTRIES",
    "SEED_EVENT_ID",
    "SEED_INTERNATIONAL_SHARE",
    "SEED_MUNICIPALITIES",
    "SEED_TOTAL_VISITS",
    "SEED_VISITS_BY_ZONE_NAME",
    "headline_rows",
    "kpi_markdown",
    "kpi_text_table",
    "render_html",
    "report_markdown_sections",
    "seed_value",
    "write_report",
]
