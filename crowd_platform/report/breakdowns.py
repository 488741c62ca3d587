"""The event's breakdown KPIs from marts.event_kpis, shaped for the report: uplift per main zone, the zone-overlap
matrix, days attended and first-time vs returning visitors. Plain rows (dicts), shared by the HTML page and the
Markdown metadata; every figure carries its interval and, when withheld, the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from crowd_platform.report import queries
from crowd_platform.report.queries import suppression_reason
from crowd_platform.report.svg import DASH, with_minus

DAYS_ATTENDED_LABELS = {"1": "1 day", "2": "2 days", "3-5": f"3{DASH}5 days", "6+": "6 days or more"}
ALL_MAIN_ZONES = "all main zones"


def interval_text(row: dict[str, Any] | None, fmt: str = "{:,.0f}") -> str:
    """`low - high` (en dash), the reason when withheld, empty when there is no interval."""
    if row is None:
        return ""
    if row["suppressed"]:
        return suppression_reason(row["suppression_rule"])
    if row["low"] is None or row["high"] is None:
        return ""
    return with_minus(f"{fmt.format(row['low'])} {DASH} {fmt.format(row['high'])}")


def value_text(row: dict[str, Any] | None, fmt: str = "{:,.0f}") -> str:
    if row is None:
        return ""
    if row["suppressed"] or row["value"] is None:
        return "suppressed"
    return with_minus(fmt.format(row["value"]))


def _by_zone(rows: list[dict[str, Any]], metric: str) -> dict[str | None, dict[str, Any]]:
    return {r["zone_id"]: r for r in rows if r["metric"] == metric and r["category"] is None}


def uplift_rows(con: duckdb.DuckDBPyConnection, event: queries.Event) -> list[dict[str, Any]]:
    """Per main zone and for all of them: the event's visits, the normal level (visits - uplift), the uplift."""
    rows = queries.event_kpis(con, event, ["uplift", "visits"])
    uplift, visits = _by_zone(rows, "uplift"), _by_zone(rows, "visits")
    out = []
    for zone in [*event.main_zones, None]:
        row = uplift.get(zone)
        if row is None:
            continue
        seen = visits.get(zone)
        both = row["value"] is not None and seen is not None and seen["value"] is not None
        out.append(
            {
                "zone_id": zone,
                "zone": row["zone_name"] or ALL_MAIN_ZONES,
                "uplift": row,
                "visits": seen,
                "normal": seen["value"] - row["value"] if both else None,
                "share": row["value"] / seen["value"] if both and seen["value"] else None,
            }
        )
    return out


@dataclass
class OverlapMatrix:
    zones: list[str]  # zone ids, main zones each followed by their venues
    names: list[str]
    unique: dict[str, dict[str, Any]] = field(default_factory=dict)  # zone -> unique_visitors row
    pairs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # both orders -> zone_overlap row


def overlap_matrix(con: duckdb.DuckDBPyConnection, event: queries.Event) -> OverlapMatrix:
    rows = queries.event_kpis(con, event, ["unique_visitors", "zone_overlap"])
    names = queries.zone_names(con)
    zones = queries.event_zone_order(con, event)
    matrix = OverlapMatrix(zones, [names.get(z, z) for z in zones])
    for row in rows:
        if row["metric"] == "unique_visitors" and row["zone_id"] is not None:
            matrix.unique[row["zone_id"]] = row
        elif row["metric"] == "zone_overlap":
            matrix.pairs[(row["zone_id"], row["other_zone_id"])] = row
            matrix.pairs[(row["other_zone_id"], row["zone_id"])] = row
    return matrix


def attendance(con: duckdb.DuckDBPyConnection, event: queries.Event) -> dict[str, Any]:
    """Visitors by days attended (in category order), the mean days attended and visits per visitor."""
    rows = queries.event_kpis(con, event, ["days_attended", "days_attended_mean", "visits_per_visitor"])
    buckets = {r["category"]: r for r in rows if r["metric"] == "days_attended"}
    return {
        "buckets": [(label, buckets.get(category)) for category, label in DAYS_ATTENDED_LABELS.items()],
        "mean_days": next((r for r in rows if r["metric"] == "days_attended_mean"), None),
        "visits_per_visitor": next((r for r in rows if r["metric"] == "visits_per_visitor"), None),
    }


def visitor_history(con: duckdb.DuckDBPyConnection, event: queries.Event) -> dict[str, Any]:
    """First-time and returning visitors, and the returning share when both are published."""
    rows = queries.event_kpis(con, event, ["first_time_visitors", "returning_visitors"])
    first = next((r for r in rows if r["metric"] == "first_time_visitors"), None)
    returning = next((r for r in rows if r["metric"] == "returning_visitors"), None)
    share = None
    if first and returning and first["value"] is not None and returning["value"] is not None:
        share = returning["value"] / (first["value"] + returning["value"])
    return {"first_time": first, "returning": returning, "returning_share": share}
