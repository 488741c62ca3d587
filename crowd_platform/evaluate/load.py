"""Read what the evaluator needs: the published tables of a warehouse and the simulator's truth.

The warehouse is opened read-only and only the days it holds in `marts.zone_daily` are read from
the daily tables, so a partial run is evaluated on exactly what it published. Per-device tables are
reduced in SQL (one row per device) so that a large warehouse does not have to fit in memory row by row.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from crowd_platform.pseudonym import pseudonymise

EVENT_WIDE = ""  # zone_id of an event-wide KPI: NULL in the warehouse, "" in the truth; normalised to ""
# The key of a KPI beyond event and metric; absent parts are NULL in the warehouse and normalised to "".
KPI_KEY_PARTS = ("zone_id", "other_zone_id", "category")


@dataclass(frozen=True)
class Published:
    """The pipeline's output, restricted to the days of `marts.zone_daily`."""

    days: list[dt.date]
    zone_daily: pl.DataFrame  # event_date, zone_id, visitors, visitors_est, _low, _high, suppressed
    # event_id, metric, zone_id ("" = event-wide), other_zone_id, category ("" = none), value, low, high,
    # suppressed, event_date
    event_kpis: pl.DataFrame
    device_homes: pl.DataFrame  # device_key, event_date (latest in the window), home_municipality
    device_classes: pl.DataFrame  # device_key, visitor_class (most frequent over its visits), visits


@dataclass(frozen=True)
class Truth:
    """The simulator's ground truth (docs/simulator.md), persons keyed by device key."""

    zone_daily: pl.DataFrame
    event_kpis: pl.DataFrame
    persons: pl.DataFrame  # subscribers only, with device_key
    manifest: dict[str, Any]


def _frame(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> pl.DataFrame:
    return con.execute(query, params or []).pl()


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchone()
    return bool(found and found[0])


def load_published(warehouse: Path) -> Published:
    # None of the tables read here has a GEOMETRY column, so the spatial extension is not needed.
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        needed = [("marts", "zone_daily"), ("core", "device_homes"), ("core", "visitor_days")]
        absent = [f"{schema}.{table}" for schema, table in needed if not _has_table(con, schema, table)]
        # marts.event_kpis (DESIGN section 4); a warehouse built before the move has event.event_kpis.
        kpi_table = next(
            (f"{s}.event_kpis" for s in ("marts", "event") if _has_table(con, s, "event_kpis")), "marts.event_kpis"
        )
        if not _has_table(con, *kpi_table.split(".")):
            absent.append("marts.event_kpis")
        if absent:
            raise ValueError(f"warehouse {warehouse} lacks {', '.join(absent)}: materialise the pipeline first")
        zone_daily = _frame(
            con,
            """
            SELECT event_date, zone_id, visitors, visitors_est, visitors_est_low, visitors_est_high, suppressed
            FROM marts.zone_daily ORDER BY event_date, zone_id
            """,
        )
        days = sorted(set(zone_daily["event_date"].to_list()))
        first, last = (days[0], days[-1]) if days else (dt.date(1, 1, 1), dt.date(1, 1, 1))
        columns = {row[0] for row in con.execute(f"DESCRIBE {kpi_table}").fetchall()}
        key = ", ".join(
            f"coalesce({part}, '{EVENT_WIDE}') AS {part}" if part in columns else f"'{EVENT_WIDE}' AS {part}"
            for part in KPI_KEY_PARTS
        )
        event_kpis = _frame(
            con,
            f"""
            SELECT event_id, metric, {key},
                   CAST(value AS DOUBLE) AS value, CAST(low AS DOUBLE) AS low, CAST(high AS DOUBLE) AS high,
                   suppressed, CAST(event_date AS DATE) AS event_date
            FROM {kpi_table} ORDER BY ALL
            """,
        )
        # The latest day of each device in the window: the home with the longest history of nights.
        device_homes = _frame(
            con,
            """
            SELECT device_key, event_date, nullif(home_municipality, '') AS home_municipality
            FROM core.device_homes
            WHERE event_date BETWEEN ? AND ?
            QUALIFY row_number() OVER (PARTITION BY device_key ORDER BY event_date DESC) = 1
            ORDER BY device_key
            """,
            [first, last],
        )
        # One class per device: the class of most of its visits (ties: the alphabetically first class).
        device_classes = _frame(
            con,
            """
            WITH per_class AS (
                SELECT device_key, coalesce(visitor_class, 'unknown') AS visitor_class, sum(visits) AS visits
                FROM core.visitor_days
                WHERE event_date BETWEEN ? AND ?
                GROUP BY ALL
            )
            SELECT device_key, visitor_class, sum(visits) OVER (PARTITION BY device_key) AS visits
            FROM per_class
            QUALIFY row_number() OVER (PARTITION BY device_key ORDER BY visits DESC, visitor_class) = 1
            ORDER BY device_key
            """,
            [first, last],
        )
    finally:
        con.close()
    return Published(days, zone_daily, event_kpis, device_homes, device_classes)


def load_truth(truth_dir: Path, key: bytes) -> Truth:
    zone_daily = pl.read_parquet(truth_dir / "zone_daily.parquet")
    event_kpis = pl.read_parquet(truth_dir / "event_kpis.parquet")
    # Truth folders written before the KPIs had other_zone_id and category lack those columns.
    event_kpis = event_kpis.with_columns(
        (pl.col(part) if part in event_kpis.columns else pl.lit(None, pl.String)).fill_null(EVENT_WIDE).alias(part)
        for part in KPI_KEY_PARTS
    )
    # Only subscribers (and roamers) produce events, so only they can have a device key.
    persons = pl.read_parquet(
        truth_dir / "persons.parquet",
        columns=[
            "person_id",
            "imsi",
            "is_subscriber",
            "person_class",
            "visitor_class",
            "home_municipality",
            "origin_country",
        ],
    ).filter(pl.col("is_subscriber"))
    persons = persons.with_columns(
        pl.Series("device_key", pseudonymise(key, persons["imsi"].to_list()), dtype=pl.String)
    ).drop("imsi")
    manifest_path = truth_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    return Truth(zone_daily, event_kpis, persons, manifest)
