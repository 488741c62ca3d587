"""Event: whole-event KPIs and the report for people to read."""

import dagster as dg

from crowd_platform import report, settings
from crowd_platform.defs.sql_asset import SqlCheck, sql_asset
from crowd_platform.methodology import METHODOLOGY_VERSION
from crowd_platform.warehouse import TableWrite, Warehouse, write_tables

EVENT_KPIS = dg.AssetKey(["marts", "event_kpis"])

# The contract names the table marts.event_kpis (published, under the disclosure rules), while the step
# runs with the event layer: it reads whole events, after every daily partition, so it stays in the
# unpartitioned `event` group (event_job), not in the daily marts jobs.
[event_kpis] = dg.map_asset_specs(
    lambda spec: spec.replace_attributes(group_name="event"),
    [
        sql_asset(
            "marts",
            "event_kpis",
            "One row per KPI of each event (docs/publication.md): visits per main zone, venue and in total "
            "(distinct persons per zone per day, summed over the event's days), unique visitors (overall and per "
            "zone), the zone-overlap matrix, days attended and visits per visitor, first-time vs returning "
            "visitors, the uplift over the baseline weeks, countries, municipalities, international share, median "
            "dwell and peak day, with 95 % intervals. Withheld under k devices and against differencing "
            "(`suppression_rule`).",
            deps=[
                dg.AssetKey(["core", "visitor_days"]),
                dg.AssetKey(["core", "device_weights"]),
                dg.AssetKey(["marts", "zone_daily"]),
                dg.AssetKey(["reference", "events"]),
                dg.AssetKey(["reference", "zones"]),
                dg.AssetKey(["reference", "zone_attribution"]),
            ],
            checks=[
                SqlCheck(
                    "kpis_present",
                    "Every event in events.toml has its total visits and unique visitors.",
                    "SELECT count(*) FROM reference.events AS e WHERE NOT EXISTS (SELECT 1 FROM marts.event_kpis "
                    "AS k WHERE k.event_id = e.event_id AND k.metric = 'unique_visitors' AND k.zone_id IS NULL)",
                    blocking=False,
                ),
                SqlCheck(
                    "published_kpis_rest_on_k_devices",
                    "A withheld KPI has no value and a suppression rule; a published one has both a value and no "
                    "rule (the k threshold itself is applied in the SQL).",
                    "SELECT count(*) FROM marts.event_kpis WHERE (suppressed AND (value IS NOT NULL OR low IS NOT "
                    "NULL OR high IS NOT NULL OR suppression_rule IS NULL)) OR (NOT suppressed AND "
                    "suppression_rule IS NOT NULL)",
                ),
                SqlCheck(
                    "intervals_contain_estimates",
                    "Every published interval contains its estimate.",
                    "SELECT count(*) FROM marts.event_kpis WHERE NOT suppressed AND low IS NOT NULL "
                    "AND NOT (low <= value AND value <= high)",
                ),
            ],
            partitioned=False,
        )
    ],
)


@dg.asset(
    key=["event", "event_report"],
    deps=[
        EVENT_KPIS,
        dg.AssetKey(["marts", "zone_daily"]),
        dg.AssetKey(["marts", "zone_hourly"]),
        dg.AssetKey(["marts", "origin_country_daily"]),
        dg.AssetKey(["marts", "home_municipality_daily"]),
        dg.AssetKey(["core", "visitor_days"]),
        dg.AssetKey(["reference", "municipalities"]),
    ],
    group_name="event",
    description="The event report: a self-contained HTML file (path in metadata; inline SVG charts, opens "
    "offline) with, per event, the headline KPIs with 95 % intervals beside the press release's figures, "
    "daily visitors per main zone against the baseline weeks, the uplift over the baseline weeks, the "
    "zone-overlap matrix, days attended, first-time vs returning visitors, hourly presence on the peak day, origin "
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
