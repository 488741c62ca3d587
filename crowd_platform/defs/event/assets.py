"""Event: whole-event KPIs and the report for people to read."""

import dagster as dg

from crowd_platform import report, settings
from crowd_platform.defs.sql_asset import SqlCheck, sql_asset
from crowd_platform.methodology import METHODOLOGY_VERSION
from crowd_platform.warehouse import TableWrite, Warehouse, write_tables

EVENT_KPIS = dg.AssetKey(["event", "event_kpis"])

event_kpis = sql_asset(
    "event",
    "event_kpis",
    "One row per KPI of each event: visits per main zone, venue and in total (distinct persons per "
    "zone per day, summed over the event's days), unique visitors, countries, municipalities, "
    "international share, median dwell and peak day, with 95 % intervals; suppressed under k.",
    deps=[
        dg.AssetKey(["core", "zone_visits"]),
        dg.AssetKey(["core", "device_weights"]),
        dg.AssetKey(["marts", "zone_daily"]),
        dg.AssetKey(["reference", "events"]),
        dg.AssetKey(["reference", "zones"]),
    ],
    checks=[
        SqlCheck(
            "kpis_present",
            "Every event in events.toml has its total visits and unique visitors.",
            "SELECT count(*) FROM reference.events AS e WHERE NOT EXISTS (SELECT 1 FROM event.event_kpis AS k "
            "WHERE k.event_id = e.event_id AND k.metric = 'unique_visitors')",
            blocking=False,
        )
    ],
    partitioned=False,
)


@dg.asset(
    key=["event", "event_report"],
    deps=[
        EVENT_KPIS,
        dg.AssetKey(["marts", "zone_daily"]),
        dg.AssetKey(["marts", "zone_hourly"]),
        dg.AssetKey(["marts", "origin_country_daily"]),
        dg.AssetKey(["marts", "home_municipality_daily"]),
        dg.AssetKey(["core", "zone_visits"]),
        dg.AssetKey(["reference", "municipalities"]),
    ],
    group_name="event",
    description="The event report: a self-contained HTML file (path in metadata; inline SVG charts, opens "
    "offline) with, per event, the headline KPIs with 95 % intervals beside the press release's figures, "
    "daily visitors per main zone against the baseline weeks, hourly presence on the peak day, origin "
    "countries, a map of home municipalities and the dwell-time distribution (binned, suppressed under k). "
    "The main tables are repeated as Markdown in the metadata.",
    pool="duckdb",
)
def event_report(warehouse: Warehouse) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        path = report.write_report(con, settings.report_dir())
        sections = report.report_markdown_sections(con)
        write_tables(
            con,
            [
                TableWrite(
                    "event.event_report",
                    "SELECT $path AS report_path, now() AS generated_at, $version AS methodology_version",
                    {"path": str(path), "version": METHODOLOGY_VERSION},
                )
            ],
            days=None,
        )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            **{name: dg.MetadataValue.md(text) for name, text in sections.items()},
        }
    )


event_assets = [event_kpis, event_report]
