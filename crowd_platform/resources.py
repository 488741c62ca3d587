"""The resources every asset uses: the warehouse and the methodology parameters."""

from __future__ import annotations

from crowd_platform import settings
from crowd_platform.methodology import Methodology
from crowd_platform.warehouse import Warehouse


def build_resources() -> dict[str, object]:
    return {
        "warehouse": Warehouse(database=str(settings.warehouse_path())),
        "methodology": Methodology(),
    }
