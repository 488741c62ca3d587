"""Where things live: paths and the partition window, from environment variables.

The names of the variables are part of the data contract (DESIGN section 2). Every default
points inside the project's git-ignored `data/` folder, except the pseudonym key, which lives
outside the repository (see `crowd_platform.pseudonym`).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CROWD_DATA_DIR", PROJECT_ROOT / "data"))
SQL_DIR = PROJECT_ROOT / "sql"
REFERENCE_DATA_DIR = Path(__file__).resolve().parent / "reference_data"

LOCAL_TIMEZONE = "Europe/Stockholm"

# The H22 demo window: four baseline weeks before the expo, then the 35 expo days.
DEMO_WINDOW_START = dt.date(2022, 5, 2)
DEMO_WINDOW_END = dt.date(2022, 7, 3)


DAGSTER_YAML_TEMPLATE = PROJECT_ROOT / "deploy" / "dagster.yaml"


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME (default: data/dagster_home), with the project's instance settings in it."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(DATA_DIR / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        target.write_text(DAGSTER_YAML_TEMPLATE.read_text())
    return home


def landing_dir() -> Path:
    return Path(os.environ.get("CROWD_LANDING_DIR", DATA_DIR / "landing"))


def truth_dir() -> Path:
    """Ground truth of the synthetic world, written beside (not inside) the landing folder."""
    return Path(os.environ.get("CROWD_TRUTH_DIR", DATA_DIR / "truth"))


def warehouse_path() -> Path:
    return Path(os.environ.get("CROWD_WAREHOUSE", DATA_DIR / "warehouse.duckdb"))


def duckdb_memory_limit() -> str:
    """The DuckDB memory limit of the chain's connections: DuckDB takes 80 % of RAM by default; a bound
    makes big days spill to disk instead (docs/performance.md: a 10 M-event day peaked at 9.5 GB without)."""
    return os.environ.get("CROWD_DUCKDB_MEMORY_LIMIT", "2GB")


def report_dir() -> Path:
    return Path(os.environ.get("CROWD_REPORT_DIR", DATA_DIR / "reports"))


def _date_from_env(name: str, default: dt.date) -> dt.date:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a date of the form YYYY-MM-DD") from exc


def partition_window() -> tuple[dt.date, dt.date]:
    """First and last daily partition, both inclusive."""
    start = _date_from_env("CROWD_PARTITION_START", DEMO_WINDOW_START)
    end = _date_from_env("CROWD_PARTITION_END", DEMO_WINDOW_END)
    if end < start:
        raise ValueError(f"CROWD_PARTITION_END ({end}) is before CROWD_PARTITION_START ({start})")
    return start, end
