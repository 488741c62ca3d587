"""One way to define a SQL step as a Dagster asset: `sql/<layer>/<name>.sql` -> `<layer>.<name>`.

Partitioned steps write the run's range of days through `write_tables` (one transaction) and
run their data-quality checks on exactly those days. A check is a query that counts offending
rows; zero passes. Blocking checks stop bad data from flowing on.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from crowd_platform.methodology import Methodology
from crowd_platform.partitions import daily_partitions
from crowd_platform.warehouse import (
    DayRange,
    TableWrite,
    Warehouse,
    bind,
    load_sql,
    sql_version,
    table_metadata,
    uses_spatial,
    write_tables,
)


@dataclass(frozen=True)
class SqlCheck:
    """A data-quality rule: `violations` counts offending rows (may use $first_day/$last_day)."""

    name: str
    description: str
    violations: str
    blocking: bool = True


def run_checks(con, asset_key: dg.AssetKey, checks: Sequence[SqlCheck], params: dict) -> list[dg.AssetCheckResult]:
    results = []
    for check in checks:
        row = con.execute(check.violations, bind(check.violations, params)).fetchone()
        violations = int(row[0]) if row and row[0] is not None else 0
        results.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=check.name,
                passed=violations == 0,
                severity=dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN,
                metadata={"violations": dg.MetadataValue.int(violations)},
            )
        )
    return results


def check_specs(asset_key: dg.AssetKey, checks: Sequence[SqlCheck]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(check.name, asset=asset_key, description=check.description, blocking=check.blocking)
        for check in checks
    ]


def sql_asset(
    layer: str,
    name: str,
    description: str,
    deps: Sequence[dg.AssetDep | dg.AssetKey],
    checks: Sequence[SqlCheck] = (),
    partitioned: bool = True,
) -> dg.AssetsDefinition:
    """An asset that materialises `<layer>.<name>` from `sql/<layer>/<name>.sql`."""
    key = dg.AssetKey([layer, name])
    table = f"{layer}.{name}"

    @dg.asset(
        key=key,
        description=description,
        group_name=layer,
        deps=list(deps),
        partitions_def=daily_partitions if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        check_specs=check_specs(key, checks),
        pool="duckdb",
        # The hash of the SQL file: editing it marks this asset and its downstream stale in the UI.
        code_version=sql_version(f"{layer}/{name}"),
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: Warehouse, methodology: Methodology):
        days = DayRange.from_context(context) if partitioned else None
        query = load_sql(f"{layer}/{name}")
        with warehouse.connect(spatial=uses_spatial(query)) as con:
            # Consecutive small days per transaction, a large day alone (DayRange.batches): memory
            # stays bounded however long the backfill, and each day's rows are the same as a run of
            # that day alone.
            for batch in days.batches(con) if days else [None]:
                write_tables(con, [TableWrite(table, query, methodology.sql_params())], batch)
            yield dg.MaterializeResult(asset_key=key, metadata=table_metadata(con, table, days))
            params = {**methodology.sql_params(), **(days.params() if days else {})}
            yield from run_checks(con, key, checks, params)

    _asset.__name__ = f"{layer}_{name}"
    return _asset
