"""What the event report reads from the warehouse: published marts and KPIs, plus binned dwell times.

Every function takes an open DuckDB connection and returns plain Python rows (dicts), so the chart
and page code never touches SQL. Only `dwell_bins` reads a restricted table (core.visitor_days); it
returns binned counts with the disclosure rule applied, never device-level rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from crowd_platform.methodology import Methodology
from crowd_platform.report.svg import DASH

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
SEED_EVENT_ID = "h22"

BASELINE_DAYS = 28  # the baseline weeks shown before an event's first day
DWELL_BIN_MIN = 20  # width of a dwell-time bin
DWELL_OPEN_BIN_MIN = 360  # visits of 6 h and more share the last bin
K = Methodology().min_group_devices  # the disclosure threshold (distinct devices per published group)

# The headline table: DESIGN's KPIs and the event-wide figures of the other ones, in this order; the
# breakdowns (per-zone unique visitors, the overlap matrix, days attended, uplift per zone) have their own sections.
HEADLINE_METRICS = [
    "visits",
    "unique_visitors",
    "uplift",
    "visits_per_visitor",
    "days_attended_mean",
    "first_time_visitors",
    "returning_visitors",
    "countries",
    "municipalities",
    "international_share",
    "median_dwell_min",
    "peak_day",
]

HEADLINE_QUERY = """
SELECT
    kpis.event_id,
    kpis.metric,
    kpis.zone_id,
    zones.name AS zone_name,
    zones.kind AS zone_kind,
    kpis.value,
    kpis.low,
    kpis.high,
    kpis.suppressed,
    kpis.suppression_rule,
    kpis.event_date
FROM marts.event_kpis AS kpis
LEFT JOIN reference.zones AS zones USING (zone_id)
WHERE kpis.metric IN (SELECT unnest($metrics))
  AND kpis.other_zone_id IS NULL AND kpis.category IS NULL
  AND (kpis.zone_id IS NULL OR kpis.metric = 'visits')
ORDER BY kpis.event_id, list_position($metrics, kpis.metric),
         kpis.zone_id IS NOT NULL, zones.kind, kpis.value DESC NULLS LAST, kpis.zone_id
"""


def suppression_reason(rule: str | None) -> str:
    """Why a figure is withheld, in words (the rule is in marts.event_kpis.suppression_rule)."""
    if rule == "primary_k":
        return "fewer than k devices"
    return "would reveal a withheld figure" if rule else ""


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
    """Every row of marts.event_kpis with its zone's name and the press release's figure (`seed`)."""
    rows = con.execute(HEADLINE_QUERY, {"metrics": HEADLINE_METRICS}).pl().to_dicts()
    for row in rows:
        row["seed"] = seed_value(row["event_id"], row["metric"], row["zone_name"])
        row["zone"] = row.pop("zone_name") or ("(all main zones)" if row["metric"] == "visits" else "")
    return rows


@dataclass(frozen=True)
class Event:
    event_id: str
    name: str
    start: dt.date
    end: dt.date
    main_zones: tuple[str, ...]
    host_municipality: str | None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def baseline_start(self) -> dt.date:
        return self.start - dt.timedelta(days=BASELINE_DAYS)

    @property
    def params(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "zones": list(self.main_zones)}


def events(con: duckdb.DuckDBPyConnection) -> list[Event]:
    rows = con.execute(
        """
        SELECT event_id, any_value(name), min(start_date), max(end_date),
               list(main_zone_id ORDER BY main_zone_id), any_value(host_municipality)
        FROM reference.events GROUP BY event_id ORDER BY event_id
        """
    ).fetchall()
    return [Event(r[0], r[1], r[2], r[3], tuple(r[4]), r[5]) for r in rows]


def zone_names(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT zone_id, name FROM reference.zones").fetchall())


def _dicts(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return con.execute(query, params).pl().to_dicts()


def daily_visitors(con: duckdb.DuckDBPyConnection, event: Event) -> list[dict[str, Any]]:
    """marts.zone_daily of the main zones, from the baseline weeks to the event's last day."""
    return _dicts(
        con,
        """
        SELECT event_date, zone_id, visitors_est, visitors_est_low, visitors_est_high, median_dwell_min, suppressed,
               event_date >= $start AS in_event
        FROM marts.zone_daily
        WHERE zone_id IN (SELECT unnest($zones)) AND event_date BETWEEN $baseline AND $end
        ORDER BY event_date, zone_id
        """,
        {**event.params, "baseline": event.baseline_start},
    )


def peak_day(con: duckdb.DuckDBPyConnection, event: Event) -> dt.date | None:
    """The KPI `peak_day` of the event (the day with the most visitors in its main zones)."""
    row = con.execute(
        "SELECT event_date FROM marts.event_kpis "
        "WHERE event_id = $id AND metric = 'peak_day' AND event_date IS NOT NULL",
        {"id": event.event_id},
    ).fetchone()
    return row[0] if row else None


def event_kpis(con: duckdb.DuckDBPyConnection, event: Event, metrics: list[str]) -> list[dict[str, Any]]:
    """Rows of marts.event_kpis of the event for these metrics, with zone names (for the breakdown sections)."""
    return _dicts(
        con,
        """
        SELECT kpis.metric, kpis.zone_id, zones.name AS zone_name, zones.kind AS zone_kind, zones.parent_zone_id,
               kpis.other_zone_id, others.name AS other_zone_name, kpis.category, kpis.value, kpis.low, kpis.high,
               kpis.suppressed, kpis.suppression_rule
        FROM marts.event_kpis AS kpis
        LEFT JOIN reference.zones AS zones ON zones.zone_id = kpis.zone_id
        LEFT JOIN reference.zones AS others ON others.zone_id = kpis.other_zone_id
        WHERE kpis.event_id = $id AND kpis.metric IN (SELECT unnest($metrics))
        ORDER BY kpis.metric, kpis.zone_id NULLS FIRST, kpis.other_zone_id NULLS FIRST, kpis.category NULLS FIRST
        """,
        {"id": event.event_id, "metrics": metrics},
    )


def event_zone_order(con: duckdb.DuckDBPyConnection, event: Event) -> list[str]:
    """The event's zones: each main zone followed by the venues inside it."""
    rows = con.execute(
        """
        SELECT zones.zone_id
        FROM reference.zones AS zones
        WHERE zones.zone_id IN (SELECT unnest($zones)) OR zones.parent_zone_id IN (SELECT unnest($zones))
        ORDER BY coalesce(zones.parent_zone_id, zones.zone_id), zones.parent_zone_id IS NOT NULL, zones.zone_id
        """,
        {"zones": list(event.main_zones)},
    ).fetchall()
    return [r[0] for r in rows]


def hourly_presence(con: duckdb.DuckDBPyConnection, event: Event, day: dt.date) -> list[dict[str, Any]]:
    return _dicts(
        con,
        """
        SELECT hour, zone_id, present_est, suppressed FROM marts.zone_hourly
        WHERE zone_id IN (SELECT unnest($zones)) AND event_date = $day
        ORDER BY zone_id, hour
        """,
        {"zones": list(event.main_zones), "day": day},
    )


def origin_countries(con: duckdb.DuckDBPyConnection, event: Event) -> list[dict[str, Any]]:
    """Published visitor-days per origin country over the event and its main zones (largest first)."""
    return _dicts(
        con,
        """
        WITH names AS (
            SELECT country_iso2, min(country_name) AS country_name
            FROM reference.mcc_countries WHERE country_iso2 IS NOT NULL GROUP BY ALL
        )
        SELECT daily.country_iso2, coalesce(names.country_name, daily.country_iso2) AS name,
               sum(daily.visitors_est) AS visitors_est, count(*) AS published_rows
        FROM marts.origin_country_daily AS daily
        LEFT JOIN names USING (country_iso2)
        WHERE NOT daily.suppressed AND daily.zone_id IN (SELECT unnest($zones))
          AND daily.event_date BETWEEN $start AND $end
        GROUP BY ALL
        ORDER BY visitors_est DESC, daily.country_iso2
        """,
        event.params,
    )


def home_municipalities(con: duckdb.DuckDBPyConnection, event: Event) -> list[dict[str, Any]]:
    """Every municipality with its GeoJSON outline and its published visitor-days over the event.

    `status` is `published` (at least one publishable group), `suppressed` (visitors, but every group
    under the threshold) or `none` (no visitors at all).
    """
    return _dicts(
        con,
        """
        WITH sums AS (
            SELECT municipality_code,
                   sum(visitors_est) FILTER (WHERE NOT suppressed) AS visitors_est,
                   count(*) FILTER (WHERE NOT suppressed) AS published_rows,
                   count(*) AS rows
            FROM marts.home_municipality_daily
            WHERE zone_id IN (SELECT unnest($zones)) AND event_date BETWEEN $start AND $end
            GROUP BY ALL
        )
        SELECT m.municipality_code, m.name, ST_AsGeoJSON(m.geometry) AS geojson, sums.visitors_est,
               CASE WHEN sums.published_rows > 0 THEN 'published'
                    WHEN sums.rows > 0 THEN 'suppressed' ELSE 'none' END AS status
        FROM reference.municipalities AS m
        LEFT JOIN sums USING (municipality_code)
        ORDER BY sums.visitors_est DESC NULLS LAST, m.municipality_code
        """,
        event.params,
    )


# A visit here is Telia's: a person in a zone on a day, with the time of all their visit episodes
# there that day (as marts.zone_daily's and marts.event_kpis' median_dwell_min).
DWELL_QUERY = """
WITH visits AS (
    SELECT device_key, least(floor(dwell_s / $bin_s), $open_bin) AS bin
    FROM core.visitor_days
    WHERE zone_id IN (SELECT unnest($zones)) AND event_date BETWEEN $start AND $end
)
"""


def dwell_bins(con: duckdb.DuckDBPyConnection, event: Event, k: int = K) -> list[dict[str, Any]]:
    """Visits (persons per main zone and day) during the event by their time in the zone that day, in bins of
    20 minutes up to 6 h and more.

    A bin with fewer than k distinct devices is suppressed. Because the total number of visits can be
    read from marts.zone_daily (its visitors), one suppressed bin could be recovered by subtraction: while the
    suppressed bins hold fewer than k devices together (or are a single bin), the smallest published
    bin is suppressed too.
    """
    params = {**event.params, "bin_s": DWELL_BIN_MIN * 60, "open_bin": DWELL_OPEN_BIN_MIN // DWELL_BIN_MIN}
    counted = {
        int(b): (visits, devices)
        for b, visits, devices in con.execute(
            DWELL_QUERY + "SELECT bin, count(*), count(DISTINCT device_key) FROM visits GROUP BY bin", params
        ).fetchall()
    }
    first = 0 if 0 in counted else 1  # from the visit threshold (20 min by default) unless shorter visits exist
    bins = list(range(first, DWELL_OPEN_BIN_MIN // DWELL_BIN_MIN + 1))
    suppressed = {b for b in bins if 0 < counted.get(b, (0, 0))[1] < k}

    def union_devices(chosen: set[int]) -> int:
        query = DWELL_QUERY + "SELECT count(DISTINCT device_key) FROM visits WHERE bin IN (SELECT unnest($bins))"
        return con.execute(query, {**params, "bins": sorted(chosen)}).fetchone()[0]

    while suppressed:
        published = sorted((counted[b][0], b) for b in bins if b in counted and b not in suppressed)
        if not published or (len(suppressed) > 1 and union_devices(suppressed) >= k):
            break
        suppressed.add(published[0][1])
    rows = []
    for b in bins:
        lo = b * DWELL_BIN_MIN
        is_open = b == bins[-1]
        label = f"{lo // 60} h+" if is_open else f"{lo}{DASH}{lo + DWELL_BIN_MIN}"
        visits = counted.get(b, (0, 0))[0]
        rows.append(
            {
                "bin": b,
                "from_min": lo,
                "to_min": None if is_open else lo + DWELL_BIN_MIN,
                "label": label,
                "visits": None if b in suppressed else visits,
                "suppressed": b in suppressed,
            }
        )
    return rows
