"""Test settings: a small partition window, a test pseudonym key, everything under a temp folder.

The partition window is read when the definitions are imported, so it is set here, first.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

FIRST_DAY = dt.date(2022, 6, 1)
LAST_DAY = dt.date(2022, 6, 10)
TEST_KEY = "test-pseudonym-key-not-a-secret-0123456789"

_TEST_ROOT = Path(tempfile.mkdtemp(prefix="crowd_platform_tests_"))
os.environ.update(
    {
        "CROWD_PARTITION_START": FIRST_DAY.isoformat(),
        "CROWD_PARTITION_END": (LAST_DAY + dt.timedelta(days=1)).isoformat(),
        "CROWD_PSEUDONYM_KEY": TEST_KEY,
        "CROWD_DATA_DIR": str(_TEST_ROOT / "data"),
        "CROWD_REPORT_DIR": str(_TEST_ROOT / "reports"),
    }
)
os.environ.pop("DAGSTER_HOME", None)  # tests use an ephemeral Dagster instance


@dataclass
class BuiltWorld:
    landing: Path
    warehouse: Path
    truth: object


def build_world(root: Path, **landing_options) -> BuiltWorld:
    """Write a small landing folder under `root` and materialise FIRST_DAY..LAST_DAY from it."""
    from crowd_platform.runner import materialize
    from crowd_platform_tests.landing import write_landing

    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    truth = write_landing(landing, FIRST_DAY, LAST_DAY, **landing_options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CROWD_LANDING_DIR", str(landing))
        patch.setenv("CROWD_WAREHOUSE", str(warehouse))
        materialize(FIRST_DAY, LAST_DAY, quiet=True, progress=lambda _: None)
    return BuiltWorld(landing, warehouse, truth)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> BuiltWorld:
    """The small world, materialised once for all tests that only read it."""
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def use_world(world: BuiltWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[BuiltWorld]:
    """Point the environment at the shared world (for tests that run more steps on it)."""
    monkeypatch.setenv("CROWD_LANDING_DIR", str(world.landing))
    monkeypatch.setenv("CROWD_WAREHOUSE", str(world.warehouse))
    yield world


@pytest.fixture
def private_world(world: BuiltWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BuiltWorld:
    """A copy of the shared world's warehouse (a clean run of all days) that a test may change."""
    import shutil

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(world.warehouse, warehouse)
    monkeypatch.setenv("CROWD_LANDING_DIR", str(world.landing))
    monkeypatch.setenv("CROWD_WAREHOUSE", str(warehouse))
    return BuiltWorld(world.landing, warehouse, world.truth)


def ingest_connection(cell_id: str, threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB as the staging step sees it: local time zone and a reference.cells table
    with one cell valid throughout (for tests that run the ingest SQL without the whole pipeline)."""
    connection = duckdb.connect(config={"preserve_insertion_order": "false", "threads": threads})
    connection.execute("SET TimeZone = 'Europe/Stockholm'")
    connection.execute("CREATE SCHEMA reference")
    connection.execute(
        "CREATE TABLE reference.cells AS SELECT ? AS cell_id, DATE '2022-01-01' AS valid_from, "
        "CAST(NULL AS DATE) AS valid_to",
        [cell_id],
    )
    return connection


def build_zone_attribution(con: duckdb.DuckDBPyConnection, methodology: object = None) -> None:
    """(Re)build reference.zone_attribution from the connection's reference tables by the pipeline's own SQL.
    `methodology`: a crowd_platform.methodology.Methodology (default: the defaults)."""
    from crowd_platform.methodology import Methodology
    from crowd_platform.warehouse import TableWrite, load_sql, write_tables

    params = (methodology or Methodology()).sql_params()
    write_tables(con, [TableWrite("reference.zone_attribution", load_sql("reference/zone_attribution"), params)], None)


def write_zone_attribution(
    con: duckdb.DuckDBPyConnection, methodology: object = None, inseparable: Iterable[str] = ()
) -> None:
    """reference.zone_attribution for a hand-made reference.zones: each zone gets a cell covering mostly it,
    except the `inseparable` ones, which have only a small cell standing in them."""
    inseparable = set(inseparable)
    zones = [zone for (zone,) in con.execute("SELECT zone_id FROM reference.zones").fetchall()]
    con.execute("CREATE TABLE reference.cell_zone_weights (cell_id VARCHAR, zone_id VARCHAR, weight DOUBLE, "
                "site_in_zone BOOLEAN)")  # fmt: skip
    con.executemany(
        "INSERT INTO reference.cell_zone_weights VALUES ('cell_' || ?, ?, ?, ?)",
        [(z, z, 0.1, True) if z in inseparable else (z, z, 0.9, False) for z in zones],
    )
    build_zone_attribution(con, methodology)


def write_visitor_days(con: duckdb.DuckDBPyConnection) -> None:
    """core.visitor_days from a hand-made core.zone_visits, by the pipeline's own SQL (all its days)."""
    from crowd_platform.warehouse import DayRange, TableWrite, load_sql, write_tables

    first, last = con.execute("SELECT min(event_date), max(event_date) FROM core.zone_visits").fetchone()
    write_tables(con, [TableWrite("core.visitor_days", load_sql("core/visitor_days"))], DayRange(first, last))
