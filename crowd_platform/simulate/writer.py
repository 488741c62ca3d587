"""Landing files exactly per DESIGN section 3: events per delivery day and the reference folder."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from crowd_platform.defs.staging.manifest import write_manifest

from .config import WorldConfig
from .dirt import MALFORMED_IMSIS, UNKNOWN_CELLS, Batch
from .geography import HOST_CODE, Geography, cells_reference
from .population import COUNTRIES, TACS
from .signalling import EVENT_TYPES
from .zones import AREA_IDS, zones_geojson

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_time", pa.timestamp("us", tz="UTC")),
        pa.field("imsi", pa.string()),
        pa.field("cell_id", pa.string()),
        pa.field("event_type", pa.string()),
        pa.field("tac", pa.string()),
    ]
)


def write_reference(landing: Path, geo: Geography, cfg: WorldConfig, scale: float) -> None:
    ref = landing / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    cells = cells_reference(geo).with_columns(
        pl.col("valid_from").dt.strftime("%Y-%m-%d"), pl.col("valid_to").dt.strftime("%Y-%m-%d")
    )
    cells.write_csv(ref / "cells.csv", null_value="")
    (ref / "zones.geojson").write_text(
        json.dumps(zones_geojson(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    zones = ", ".join(f'"{z}"' for z in AREA_IDS)
    (ref / "events.toml").write_text(
        "# Events to report (DESIGN section 3). Dates are inclusive, local time.\n\n"
        "[[events]]\n"
        'id = "h22"\n'
        'name = "H22 City Expo"\n'
        f"start = {cfg.expo_start.isoformat()}\n"
        f"end = {cfg.expo_end.isoformat()}\n"
        f"main_zones = [{zones}]\n"
        f'host_municipality = "{HOST_CODE}"\n',
        encoding="utf-8",
    )
    # The synthetic country has `scale` times the real residents: its population register too, or
    # every extrapolation would be off by 1 / scale.
    geo.munis.select(
        pl.col("code").alias("municipality_code"),
        (pl.col("population") * scale).round().cast(pl.Int64).alias("population"),
    ).write_csv(ref / "population.csv")
    with open(ref / "roaming_shares.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["country_iso2", "share"])
        for iso, _mcc, _mnc, _w, share in COUNTRIES:
            w.writerow([iso, f"{share:.2f}"])


class EventWriter:
    """Turns integer batches into Arrow tables and writes a delivery folder."""

    def __init__(self, landing: Path, geo: Geography, imsi: pa.Array, cfg: WorldConfig) -> None:
        self.root = landing / "events"
        self.cfg = cfg
        self.imsi = pa.concat_arrays([imsi, pa.array(list(MALFORMED_IMSIS), pa.string())])
        self.cells = pa.array(geo.cells["cell_id"].to_list() + list(UNKNOWN_CELLS), pa.string())
        self.etypes = pa.array(list(EVENT_TYPES), pa.string())
        self.tacs = pa.array([*list(TACS), None], pa.string())
        self.files: list[str] = []

    def table(self, b: Batch) -> pa.Table:
        tac = np.where(b.tac >= 0, b.tac, len(TACS))
        return pa.table(
            {
                "event_time": pa.array(b.us, pa.timestamp("us", tz="UTC"), mask=~b.has_time),
                "imsi": self.imsi.take(pa.array(b.imsi)),
                "cell_id": self.cells.take(pa.array(b.cell)),
                "event_type": self.etypes.take(pa.array(b.etype.astype(np.int32))),
                "tac": self.tacs.take(pa.array(tac.astype(np.int32))),
            },
            schema=EVENT_SCHEMA,
        )

    def write_day(self, delivery: dt.date, b: Batch, truncate: bool) -> list[Path]:
        """Write one delivery folder; returns the written paths (sorted by time per file)."""
        folder = self.root / f"date={delivery.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        # events in arrival order; rows without time at the end
        order = np.lexsort((b.imsi, np.where(b.has_time, b.us, np.iinfo(np.int64).max)))
        b = b.take(order)
        n = len(b)
        n_parts = max(1, -(-n // self.cfg.part_rows))
        bounds = np.linspace(0, n, n_parts + 1).astype(np.int64)
        doy = delivery.timetuple().tm_yday
        paths = []
        for p in range(n_parts):
            part = b.take(np.arange(bounds[p], bounds[p + 1]))
            tbl = self.table(part)
            if p == 0 and doy % self.cfg.csv_gz_every_n_days == 0:
                path = folder / f"part-{p:05d}.csv.gz"
                self._write_csv(tbl, path, gz=True)
            elif p == 0 and doy % self.cfg.csv_plain_every_n_days == 0:
                path = folder / f"part-{p:05d}.csv"
                self._write_csv(tbl, path, gz=False)
            else:
                path = folder / f"part-{p:05d}.parquet"
                pq.write_table(tbl, path, compression="zstd", row_group_size=1_000_000)
                if truncate and p == 0:
                    # a transfer that broke off: keep the first 60 % of the bytes
                    data = path.read_bytes()
                    path.write_bytes(data[: int(len(data) * 0.6)])
            paths.append(path)
        # The producer's list of the delivery (name, size, SHA-256), checked at ingest. Written from
        # the bytes on disk, so the truncated file above stands for a file cut short before it was
        # delivered (the reader finds it unreadable), not for damage in transfer (the manifest's case).
        write_manifest(folder, paths)
        return paths

    def _write_csv(self, tbl: pa.Table, path: Path, gz: bool) -> None:
        df = pl.from_arrow(tbl)
        assert isinstance(df, pl.DataFrame)
        df = df.with_columns(
            pl.col("event_time").dt.convert_time_zone(self.cfg.timezone).dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
        )
        buf = io.BytesIO()
        df.write_csv(buf, null_value="")
        data = buf.getvalue()
        if gz:
            # mtime=0 and no file name: identical bytes on every run
            with (
                open(path, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=5) as f,
            ):
                f.write(data)
        else:
            path.write_bytes(data)
