"""Are two warehouses the same, row by row? The proof that a speed-up changed no result.

    python bench/compare_warehouses.py REFERENCE.duckdb CANDIDATE.duckdb [--schemas staging core marts event]

Both files are attached read-only to one in-memory DuckDB. For every table of the chosen schemas:
the same columns (names and types), the same number of rows, and zero rows of
`reference EXCEPT ALL candidate` and of `candidate EXCEPT ALL reference` (multisets: a duplicated
row counts). Floating-point columns are compared exactly, so sums that depend on thread order would
show. Columns that record when something ran (`generated_at`, ...) are left out; `--ignore` adds more.
Exits 1 when anything differs, printing a few differing rows of each table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

DEFAULT_SCHEMAS = ("staging", "core", "marts", "event")
# Wall-clock and location of a run, not results.
RUN_COLUMNS = ("generated_at", "report_path")
SHOWN_DIFFERENCES = 3


FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
# Floating-point aggregates (avg, stddev) of DuckDB depend on the order threads combine partial
# results: two runs of the same code can differ in the last bits (seen in core.devices). Rows that
# differ only so are reported as "rounding", not as a difference.
RELATIVE_TOLERANCE = 1e-9


@dataclass
class TableComparison:
    table: str
    reference_rows: int
    candidate_rows: int
    only_in_reference: int
    only_in_candidate: int
    problem: str = ""
    rounding_only: bool = False
    max_relative_difference: float = 0.0

    @property
    def identical(self) -> bool:
        return not self.problem and self.only_in_reference == 0 and self.only_in_candidate == 0

    @property
    def equivalent(self) -> bool:
        """Identical, or different only in the last bits of floating-point columns."""
        return self.identical or (not self.problem and self.rounding_only)


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [catalog, schema, table],
    ).fetchall()
    return {str(name): str(dtype) for name, dtype in rows}


def _tables(con: duckdb.DuckDBPyConnection, catalog: str, schemas: tuple[str, ...]) -> set[str]:
    rows = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        "WHERE database_name = ? AND list_contains(?, schema_name)",
        [catalog, list(schemas)],
    ).fetchall()
    return {str(row[0]) for row in rows}


def compare_table(con: duckdb.DuckDBPyConnection, table: str, ignore: tuple[str, ...], where: str) -> TableComparison:
    schema, name = table.split(".")
    reference_columns = _columns(con, "reference_db", schema, name)
    candidate_columns = _columns(con, "candidate_db", schema, name)
    problem = ""
    if reference_columns != candidate_columns:
        problem = f"columns differ: reference {reference_columns} vs candidate {candidate_columns}"
    shared = [c for c in reference_columns if c in candidate_columns and c not in ignore]
    select = ", ".join(f'"{c}"' for c in shared)
    filter_ = where if where and "event_date" in shared else ""

    def count(sql: str) -> int:
        row = con.execute(sql).fetchone()
        return int(row[0]) if row else 0

    ref, cand = f"reference_db.{table}", f"candidate_db.{table}"

    def rows_only_in(first: str, second: str) -> int:
        return count(
            f"SELECT count(*) FROM (SELECT {select} FROM {first} {filter_} "
            f"EXCEPT ALL SELECT {select} FROM {second} {filter_})"
        )

    result = TableComparison(
        table=table,
        reference_rows=count(f"SELECT count(*) FROM {ref} {filter_}"),
        candidate_rows=count(f"SELECT count(*) FROM {cand} {filter_}"),
        only_in_reference=rows_only_in(ref, cand),
        only_in_candidate=rows_only_in(cand, ref),
        problem=problem,
    )
    floats = [c for c in shared if reference_columns[c] in FLOAT_TYPES]
    if not result.identical and not problem and floats and result.reference_rows == result.candidate_rows:
        result.rounding_only, result.max_relative_difference = _rounding_only(con, table, shared, floats, filter_)
    return result


def _rounding_only(
    con: duckdb.DuckDBPyConnection, table: str, shared: list[str], floats: list[str], filter_: str
) -> tuple[bool, float]:
    """Whether every differing row has a partner on the other side with the same non-float values
    and float values within RELATIVE_TOLERANCE; and the largest relative difference met."""
    exact = [c for c in shared if c not in floats]
    select = ", ".join(f'"{c}"' for c in shared)
    keys = " AND ".join(f'r."{c}" IS NOT DISTINCT FROM c."{c}"' for c in exact) or "true"
    differences = ", ".join(
        f'coalesce(abs(r."{c}" - c."{c}") / greatest(abs(r."{c}"), abs(c."{c}"), 1e-300), '
        f'CASE WHEN r."{c}" IS NOT DISTINCT FROM c."{c}" THEN 0 ELSE 1e308 END)'
        for c in floats
    )
    row = con.execute(
        f"""
        WITH r AS (SELECT {select}, row_number() OVER () AS rid FROM (
                 SELECT {select} FROM reference_db.{table} {filter_}
                 EXCEPT ALL SELECT {select} FROM candidate_db.{table} {filter_})),
             c AS (SELECT {select} FROM (
                 SELECT {select} FROM candidate_db.{table} {filter_}
                 EXCEPT ALL SELECT {select} FROM reference_db.{table} {filter_})),
             paired AS (SELECT r.rid, min(greatest({differences}, 0)) AS difference
                        FROM r JOIN c ON {keys} GROUP BY r.rid)
        SELECT (SELECT count(*) FROM r), count(*), max(difference) FROM paired WHERE difference <= {RELATIVE_TOLERANCE}
        """
    ).fetchone()
    if row is None:
        return False, float("inf")
    unmatched, matched, largest = row
    return unmatched == matched, float(largest or 0.0)


def show_differences(con: duckdb.DuckDBPyConnection, table: str, ignore: tuple[str, ...], where: str) -> list[str]:
    schema, name = table.split(".")
    shared = [c for c in _columns(con, "reference_db", schema, name) if c not in ignore]
    shared = [c for c in shared if c in _columns(con, "candidate_db", schema, name)]
    select = ", ".join(f'"{c}"' for c in shared)
    filter_ = where if where and "event_date" in shared else ""
    lines = []
    sides = (("reference only", "reference_db", "candidate_db"), ("candidate only", "candidate_db", "reference_db"))
    for side, first, second in sides:
        rows = con.execute(
            f"SELECT {select} FROM {first}.{table} {filter_} "
            f"EXCEPT ALL SELECT {select} FROM {second}.{table} {filter_} LIMIT {SHOWN_DIFFERENCES}"
        ).fetchall()
        lines += [f"    {side}: {row}" for row in rows]
    return lines


def compare(
    reference: Path, candidate: Path, schemas: tuple[str, ...], ignore: tuple[str, ...] = RUN_COLUMNS, where: str = ""
) -> list[TableComparison]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Europe/Stockholm'")
    con.execute(f"ATTACH '{reference}' AS reference_db (READ_ONLY)")
    con.execute(f"ATTACH '{candidate}' AS candidate_db (READ_ONLY)")
    reference_tables = _tables(con, "reference_db", schemas)
    candidate_tables = _tables(con, "candidate_db", schemas)
    results = []
    for table in sorted(reference_tables | candidate_tables):
        if table not in reference_tables or table not in candidate_tables:
            side = "reference" if table in reference_tables else "candidate"
            results.append(TableComparison(table, 0, 0, 0, 0, problem=f"only in the {side}"))
            continue
        result = compare_table(con, table, ignore, where)
        results.append(result)
        status = "identical" if result.identical else "DIFFERENT"
        if not result.identical and result.rounding_only:
            status = f"rounding only (floats within {result.max_relative_difference:.1e} relative)"
        print(
            f"{table:34s} {result.reference_rows:>11,} {result.candidate_rows:>11,} "
            f"{result.only_in_reference:>9,} {result.only_in_candidate:>9,}  {status} {result.problem}",
            flush=True,
        )
        if not result.equivalent and not result.problem:
            print("\n".join(show_differences(con, table, ignore, where)))
    con.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--schemas", nargs="+", default=list(DEFAULT_SCHEMAS))
    parser.add_argument("--ignore", nargs="*", default=[], help="more columns to leave out of the comparison")
    parser.add_argument(
        "--where", default="", help="a filter for partitioned tables, e.g. \"WHERE event_date = '2022-06-01'\""
    )
    args = parser.parse_args(argv)
    print(f"{'table':34s} {'ref rows':>11} {'cand rows':>11} {'only ref':>9} {'only cand':>9}")
    results = compare(args.reference, args.candidate, tuple(args.schemas), (*RUN_COLUMNS, *args.ignore), args.where)
    different = [r.table for r in results if not r.equivalent]
    rounding = [r.table for r in results if r.equivalent and not r.identical]
    print(
        f"{len(results) - len(different) - len(rounding)} of {len(results)} tables identical"
        + (f"; equal up to float rounding: {', '.join(rounding)}" if rounding else "")
        + (f"; DIFFERENT: {', '.join(different)}" if different else "")
    )
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
