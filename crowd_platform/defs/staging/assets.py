"""Staging: validated, de-duplicated, pseudonymised events, the rejects and the row accounting."""

import hashlib
from pathlib import Path

import dagster as dg

from crowd_platform import settings
from crowd_platform.defs.sql_asset import SqlCheck, check_specs, run_checks
from crowd_platform.defs.staging import ingest, manifest
from crowd_platform.methodology import Methodology
from crowd_platform.partitions import daily_partitions
from crowd_platform.pseudonym import PseudonymKeyError, key_fingerprint, load_key
from crowd_platform.warehouse import (
    DayRange,
    TableWrite,
    Warehouse,
    load_sql,
    sql_version,
    table_metadata,
    write_tables,
)

EVENTS = dg.AssetKey(["staging", "events"])
REJECTED_EVENTS = dg.AssetKey(["staging", "rejected_events"])
LOAD_AUDIT = dg.AssetKey(["staging", "load_audit"])
STAGING_TABLES = {
    EVENTS: "staging.events",
    REJECTED_EVENTS: "staging.rejected_events",
    LOAD_AUDIT: "staging.load_audit",
}
# The staging SQL and the reader: editing either marks staging and everything downstream stale.
STAGING_CODE_VERSION = hashlib.sha256(
    (
        sql_version(
            "staging/landed_events",
            "staging/landed_duplicates",
            *(t.replace(".", "/") for t in STAGING_TABLES.values()),
        )
        + Path(ingest.__file__).read_text()
    ).encode()
).hexdigest()[:16]
# Metadata of staging/events: the fingerprint of each delivery folder the run read (late data sensor).
LANDING_FINGERPRINTS = "landing_fingerprints"


ACCOUNTED = SqlCheck(
    "landed_rows_accounted",
    "Every landed row of the run's days is staged, rejected or a duplicate: per file and partition "
    "landed = staged + rejected + duplicates, and the audit's landed total equals the rows read.",
    """
    SELECT count(*) + any_value(abs((SELECT count(*) FROM landed_events)
                                    - (SELECT coalesce(sum(landed_rows), 0) FROM staging.load_audit
                                       WHERE event_date BETWEEN $first_day AND $last_day)))
    FROM staging.load_audit
    WHERE event_date BETWEEN $first_day AND $last_day AND status = 'loaded'
      AND landed_rows <> staged_rows + rejected_rows + duplicate_rows
    """,
)
ALL_FILES_READ = SqlCheck(
    "all_files_readable",
    "Every delivered file could be read (an unreadable one is listed in load_audit, to re-deliver).",
    "SELECT count(*) FROM staging.load_audit WHERE event_date BETWEEN $first_day AND $last_day "
    "AND status = 'unreadable'",
    blocking=False,
)
NO_RAW_IMSI = SqlCheck(
    "no_raw_imsi",
    "No IMSI-like run of 14 or more digits in any text field of the staged or rejected rows.",
    """
    SELECT
        (SELECT count(*) FROM staging.rejected_events
         WHERE event_date BETWEEN $first_day AND $last_day
           AND regexp_matches(concat_ws('|', event_time, cell_id, event_type, tac), '[0-9]{14,}'))
      + (SELECT count(*) FROM staging.events
         WHERE event_date BETWEEN $first_day AND $last_day
           AND regexp_matches(concat_ws('|', cell_id, event_type, tac), '[0-9]{14,}'))
    """,
)


def merge_check_results(so_far: list[dg.AssetCheckResult], day: list[dg.AssetCheckResult]) -> list[dg.AssetCheckResult]:
    """A check passes over a range of days when it passes on each; violations add up."""
    if not so_far:
        return day
    merged = []
    for before, now in zip(so_far, day, strict=True):
        violations = before.metadata["violations"].value + now.metadata["violations"].value  # type: ignore[operator]
        merged.append(
            dg.AssetCheckResult(
                asset_key=now.asset_key,
                check_name=now.check_name,
                passed=before.passed and now.passed,
                severity=now.severity,
                metadata={"violations": dg.MetadataValue.int(int(violations))},
            )
        )
    return merged


def row_accounting(con, days: DayRange) -> dict[str, dg.MetadataValue]:
    """Landed, staged, rejected and duplicate rows of the run's days, for the UI."""
    totals = con.execute(
        "SELECT coalesce(sum(landed_rows), 0), coalesce(sum(staged_rows), 0), coalesce(sum(rejected_rows), 0), "
        "coalesce(sum(duplicate_rows), 0), count(*) FILTER (WHERE status = 'unreadable') "
        "FROM staging.load_audit WHERE event_date BETWEEN $first_day AND $last_day",
        days.params(),
    ).fetchone()
    assert totals is not None
    names = ("landed_rows", "staged_rows", "rejected_rows", "duplicate_rows", "unreadable_files")
    return {name: dg.MetadataValue.int(int(value)) for name, value in zip(names, totals, strict=True)}


def check_key_fingerprint(warehouse_con, key: bytes) -> None:
    """Refuse to write with a key other than the one the warehouse was built with."""
    warehouse_con.execute("CREATE TABLE IF NOT EXISTS ops.pseudonym_key (fingerprint VARCHAR, first_used TIMESTAMPTZ)")
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
            code_version=STAGING_CODE_VERSION,
        ),
        dg.AssetSpec(
            REJECTED_EVENTS,
            description="Every landed row that was not staged, with its source file, 1-based row "
            "and the reason; the IMSI field is pseudonymised.",
            group_name="staging",
            code_version=STAGING_CODE_VERSION,
        ),
        dg.AssetSpec(
            LOAD_AUDIT,
            description="Row accounting per partition and source file: landed = staged + rejected "
            "+ duplicates; unreadable files are listed with their error.",
            group_name="staging",
            code_version=STAGING_CODE_VERSION,
        ),
    ],
    check_specs=check_specs(LOAD_AUDIT, [ACCOUNTED, ALL_FILES_READ]) + check_specs(REJECTED_EVENTS, [NO_RAW_IMSI]),
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
        raise ingest.LandingError(
            f"{landing / 'events'}: no events folder in the landing directory (CROWD_LANDING_DIR)"
        )
    key = load_key()
    scan = ingest.LandingScan()
    # Taken before reading: a file landing during the run shows as a change to the late data sensor.
    fingerprints = ingest.landing_fingerprints(Path(landing), days, methodology.late_arrival_days)
    # Delivery manifests, where the producer writes them: a damaged file fails the run before any write.
    manifest.verify_deliveries(Path(landing), fingerprints.keys())
    identities = 0
    with warehouse.connect(spatial=False) as con:
        check_key_fingerprint(con, key)
        ingest.check_schemas(con, Path(landing), days, methodology.late_arrival_days)
        check_results: list[dg.AssetCheckResult] = []
        staging_writes = [TableWrite(table, load_sql(table.replace(".", "/"))) for table in STAGING_TABLES.values()]
        # Each delivery folder is read once per run (ingest.LandingReader); consecutive small days
        # are classified and written in one transaction (up to STAGING_ROWS_PER_TRANSACTION landed rows,
        # a bigger day alone: bounded memory). The rows equal those of single-day runs.
        reader = ingest.LandingReader(con, Path(landing), days, methodology.late_arrival_days, scan)
        for batch in reader.batches():
            params = {**methodology.sql_params(), **batch.params()}
            identities = max(identities, ingest.classify_day(con, Path(landing), batch, key, params, scan, reader))
            write_tables(con, staging_writes, batch)
            batch_results = run_checks(con, LOAD_AUDIT, [ACCOUNTED, ALL_FILES_READ], params)
            batch_results += run_checks(con, REJECTED_EVENTS, [NO_RAW_IMSI], params)
            con.execute("DROP TABLE IF EXISTS landed_events")
            check_results = merge_check_results(check_results, batch_results)
        reader.close()
        ingest.drop_pseudonym_cache(con)
        for asset_key, table in STAGING_TABLES.items():
            metadata = table_metadata(con, table, days)
            if asset_key == EVENTS:
                metadata["files_read"] = dg.MetadataValue.int(len(scan.files_read))
                metadata["distinct_sims_largest_day"] = dg.MetadataValue.int(identities)
                metadata["unreadable_files"] = dg.MetadataValue.json(
                    [{"file": f, "error": e} for _, f, e in scan.unreadable]
                )
                metadata["extra_columns_ignored"] = dg.MetadataValue.json(scan.extra_columns)
                metadata[LANDING_FINGERPRINTS] = dg.MetadataValue.json(
                    {"late_arrival_days": methodology.late_arrival_days, "folders": fingerprints}
                )
            if asset_key == LOAD_AUDIT:
                metadata.update(row_accounting(con, days))
            yield dg.MaterializeResult(asset_key=asset_key, metadata=metadata)
        yield from check_results
    for _, relative, error in scan.unreadable:
        context.log.warning(f"unreadable landed file {relative}: {error}")
