"""Staging: validated, de-duplicated, pseudonymised events, the rejects and the row accounting."""


from pathlib import Path

import dagster as dg

from crowd_platform import settings
from crowd_platform.defs.staging import ingest
from crowd_platform.methodology import Methodology
from crowd_platform.partitions import daily_partitions
from crowd_platform.pseudonym import PseudonymKeyError, key_fingerprint, load_key
from crowd_platform.warehouse import DayRange, TableWrite, Warehouse, bind, load_sql, table_metadata, write_tables

EVENTS = dg.AssetKey(["staging", "events"])
REJECTED_EVENTS = dg.AssetKey(["staging", "rejected_events"])
LOAD_AUDIT = dg.AssetKey(["staging", "load_audit"])
STAGING_TABLES = {EVENTS: "staging.events", REJECTED_EVENTS: "staging.rejected_events", LOAD_AUDIT: "staging.load_audit"}


def check_key_fingerprint(warehouse_con, key: bytes) -> None:
    """Refuse to write with a key other than the one the warehouse was built with."""
    warehouse_con.execute(
        "CREATE TABLE IF NOT EXISTS ops.pseudonym_key (fingerprint VARCHAR, first_used TIMESTAMPTZ)"
    )
    known = warehouse_con.execute("SELECT fingerprint FROM ops.pseudonym_key").fetchall()
    fingerprint = key_fingerprint(key)
    if not known:
        warehouse_con.execute("INSERT INTO ops.pseudonym_key VALUES (?, now())", [fingerprint])
    elif known[0][0] != fingerprint:
        raise PseudonymKeyError(
            "the pseudonym key differs from the one this warehouse was built with "
            f"(fingerprint {fingerprint}, warehouse has {known[0][0]}); pseudonyms of two keys "
            "must never mix. Restore the original key, or start a new warehouse (CROWD_WAREHOUSE)."
        )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            EVENTS,
            description="Validated network events of the day: local date, keyed-hash device_key, "
            "home MCC/MNC, serving cell and event type; no raw IMSI. Events of a local day arrive in "
            "that day's delivery folder and, late, in the next day's.",
            deps=[dg.AssetKey(["reference", "cells"])],
            group_name="staging",
        ),
        dg.AssetSpec(
            REJECTED_EVENTS,
            description="Every landed row that was not staged, with its source file, 1-based row "
            "and the reason; the IMSI field is pseudonymised.",
            group_name="staging",
        ),
        dg.AssetSpec(
            LOAD_AUDIT,
            description="Row accounting per partition and source file: landed = staged + rejected "
            "+ duplicates; unreadable files are listed with their error.",
            group_name="staging",
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    can_subset=False,
)
def staging_events(context: dg.AssetExecutionContext, warehouse: Warehouse, methodology: Methodology):
    """Read the delivery folders of the run's days (and the day after, for late arrivals)."""
    days = DayRange.from_context(context)
    landing = settings.landing_dir()
    if not (landing / "events").is_dir():
        raise ingest.LandingError(f"{landing / 'events'}: no events folder in the landing directory (CROWD_LANDING_DIR)")
    key = load_key()
    params = {**methodology.sql_params(), **days.params()}
    with warehouse.connect() as con:
        check_key_fingerprint(con, key)
        scan = ingest.read_landing(con, Path(landing), days, methodology.late_arrival_days)
        identities = ingest.register_pseudonyms(con, key)
        classify = load_sql("staging/landed_events")
        con.execute("CREATE OR REPLACE TEMP TABLE landed_events AS " + classify, bind(classify, params))
        ingest.drop_raw_tables_keep_classified(con)
        write_tables(
            con,
            [TableWrite(table, load_sql(table.replace(".", "/"))) for table in STAGING_TABLES.values()],
            days,
        )
        con.execute("DROP TABLE IF EXISTS landed_events")
        for asset_key, table in STAGING_TABLES.items():
            metadata = table_metadata(con, table, days)
            if asset_key == EVENTS:
                metadata["files_read"] = dg.MetadataValue.int(len(scan.files_read))
                metadata["distinct_sims"] = dg.MetadataValue.int(identities)
                metadata["unreadable_files"] = dg.MetadataValue.json(
                    [{"file": f, "error": e} for _, f, e in scan.unreadable]
                )
                metadata["extra_columns_ignored"] = dg.MetadataValue.json(scan.extra_columns)
            yield dg.MaterializeResult(asset_key=asset_key, metadata=metadata)
    for _, relative, error in scan.unreadable:
        context.log.warning(f"unreadable landed file {relative}: {error}")
