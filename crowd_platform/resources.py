"""The resources every asset uses: the warehouse and the methodology parameters."""

from __future__ import annotations

import os

import dagster as dg

from crowd_platform import settings
from crowd_platform.methodology import Methodology
from crowd_platform.warehouse import Warehouse


def build_resources() -> dict[str, object]:
    # The path is an EnvVar, resolved when a run starts (and shown as such in the UI); its
    # default is filled in here so that an unset variable means the project's data folder.
    os.environ.setdefault("CROWD_WAREHOUSE", str(settings.warehouse_path()))
    return {
        "warehouse": Warehouse(database=dg.EnvVar("CROWD_WAREHOUSE"), memory_limit=settings.duckdb_memory_limit()),
        "methodology": Methodology(),
    }
