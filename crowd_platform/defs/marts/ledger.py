"""marts.suppression_ledger: which published cells are suppressed, by which rule, protecting what.

The suppression of the daily marts must be decided jointly (a zone-day's total, its countries,
its municipalities and the venues inside it are linked by sums), so it is decided once, here,
before the marts are written; each mart reads its rows' `suppression_rule` from the ledger. The
ledger holds keys and rules only, never a count (that would undo the suppression), so it may be
published to auditors beside the marts.
"""

import hashlib
import inspect
from collections.abc import Iterable

import dagster as dg
import duckdb
import polars as pl

from crowd_platform.defs.marts import disclosure
from crowd_platform.defs.marts.disclosure import CellKey, Suppression
from crowd_platform.defs.sql_asset import SqlCheck, check_specs, run_checks
from crowd_platform.methodology import Methodology
from crowd_platform.partitions import daily_partitions
from crowd_platform.warehouse import (
    DayRange,
    TableWrite,
    Warehouse,
    load_sql,
    sql_version,
    table_metadata,
    write_tables,
)

LEDGER = dg.AssetKey(["marts", "suppression_ledger"])
LEDGER_TABLE = "marts.suppression_ledger"
VISITOR_DAYS = dg.AssetKey(["core", "visitor_days"])
DEVICE_WEIGHTS = dg.AssetKey(["core", "device_weights"])
ZONE_PRESENCE_HOURLY = dg.AssetKey(["core", "zone_presence_hourly"])
ZONES = dg.AssetKey(["reference", "zones"])

LEDGER_SCHEMA = {
    "event_date": pl.Date,
    "mart": pl.String,
    "zone_id": pl.String,
    "hour": pl.Int32,
    "group_key": pl.String,
    "suppression_rule": pl.String,
    "protected_mart": pl.String,
    "protected_zone_id": pl.String,
    "protected_hour": pl.Int32,
    "protected_group_key": pl.String,
}
# The registered frame is read by this query, so that write_tables can write it like any SQL step.
LEDGER_QUERY = f"SELECT {', '.join(LEDGER_SCHEMA)} FROM ledger_rows ORDER BY mart, zone_id, hour, group_key"

LEDGER_CHECKS = [
    SqlCheck(
        "secondary_rows_name_a_protected_cell",
        "Every secondary suppression names the suppressed cell it protects; primary ones name none.",
        f"SELECT count(*) FROM {LEDGER_TABLE} WHERE event_date BETWEEN $first_day AND $last_day "
        "AND ((suppression_rule LIKE 'secondary_%') <> (protected_mart IS NOT NULL AND protected_zone_id IS NOT NULL) "
        "OR suppression_rule NOT IN ('primary_k', 'secondary_venue', 'secondary_country', "
        "'secondary_municipality', 'secondary_country_municipality'))",
    ),
]


def _code_version() -> str:
    """The SQL of the cell counts and the Python of the rules: either changing marks the ledger stale."""
    digest = hashlib.sha256(sql_version("marts/suppression_ledger").encode())
    digest.update(inspect.getsource(disclosure).encode())
    return digest.hexdigest()[:16]


def ledger_rows(day: DayRange, suppressions: Iterable[Suppression]) -> pl.DataFrame:
    rows = []
    for s in sorted(suppressions, key=lambda s: s.cell.order()):
        protects = s.protects or CellKey("", "")
        rows.append(
            {
                "event_date": day.first,
                "mart": s.cell.mart,
                "zone_id": s.cell.zone_id,
                "hour": s.cell.hour,
                "group_key": s.cell.group_key,
                "suppression_rule": s.rule,
                "protected_mart": protects.mart or None,
                "protected_zone_id": protects.zone_id or None,
                "protected_hour": protects.hour,
                "protected_group_key": protects.group_key,
            }
        )
    return pl.DataFrame(rows, schema=LEDGER_SCHEMA)


def decide_day(cells: pl.DataFrame, parent_zone: dict[str, str | None], k: int) -> list[Suppression]:
    """The suppressions of one day from its cells (mart, zone_id, hour, group_key, visitors)."""
    visitors = {
        CellKey(row["mart"], row["zone_id"], row["hour"], row["group_key"]): int(row["visitors"])
        for row in cells.iter_rows(named=True)
    }
    relations = disclosure.build_relations(visitors, parent_zone)
    return list(disclosure.suppress(visitors, relations, k).values())


def write_ledger(con: duckdb.DuckDBPyConnection, days: DayRange, k: int) -> list[str]:
    """Decide and write the ledger of each of `days` (one transaction a day); a line per day saying
    how many of its cells were suppressed."""
    query = load_sql("marts/suppression_ledger")
    parent_zone: dict[str, str | None] = dict(
        con.execute("SELECT zone_id, parent_zone_id FROM reference.zones ORDER BY zone_id").fetchall()
    )
    counted: list[str] = []
    for day in days.single_days():
        cells = con.execute(query, {**day.params()}).pl()
        suppressions = decide_day(cells, parent_zone, k)
        con.register("ledger_rows", ledger_rows(day, suppressions).to_arrow())
        try:
            write_tables(con, [TableWrite(LEDGER_TABLE, LEDGER_QUERY)], day)
        finally:
            con.unregister("ledger_rows")
        counted.append(f"{day.first}: {len(suppressions)} of {cells.height} cells")
    return counted


@dg.asset(
    key=LEDGER,
    description="One row per suppressed cell of the daily marts: the mart, the event date, the cell's keys, "
    "the rule (primary_k: under k devices; secondary_<relation>: hidden so that a suppressed cell cannot be "
    "recovered by subtracting published values) and the cell it protects. Holds no counts; the marts read "
    "their suppression from it (docs/disclosure.md).",
    group_name="marts",
    # Same days only: the presence of a day already holds the visits that began the evening before.
    deps=[VISITOR_DAYS, DEVICE_WEIGHTS, ZONE_PRESENCE_HOURLY, ZONES],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=check_specs(LEDGER, LEDGER_CHECKS),
    pool="duckdb",
    code_version=_code_version(),
)
def suppression_ledger(context: dg.AssetExecutionContext, warehouse: Warehouse, methodology: Methodology):
    days = DayRange.from_context(context)
    params = methodology.sql_params()
    with warehouse.connect(spatial=False) as con:
        counted = write_ledger(con, days, methodology.min_group_devices)
        metadata = table_metadata(con, LEDGER_TABLE, days)
        metadata["suppressed_cells"] = dg.MetadataValue.md("\n".join(f"- {line}" for line in counted))
        yield dg.MaterializeResult(asset_key=LEDGER, metadata=metadata)
        yield from run_checks(con, LEDGER, LEDGER_CHECKS, {**params, **days.params()})
