"""The code location: every asset, check, job, schedule and resource, assembled in one place."""

from __future__ import annotations

import dagster as dg

from crowd_platform.defs.core.assets import core_assets
from crowd_platform.defs.event.assets import event_assets
from crowd_platform.defs.freshness import marts_freshness_policy, with_freshness
from crowd_platform.defs.marts.assets import marts_assets
from crowd_platform.defs.reference.assets import reference_assets
from crowd_platform.defs.schedules import daily_job, daily_schedule, event_job, reference_job, refresh_job
from crowd_platform.defs.sensors import late_data_job, late_data_sensor
from crowd_platform.defs.staging.assets import staging_events
from crowd_platform.progress import progress_logger
from crowd_platform.resources import build_resources

# In a live deployment the daily marts are due each morning (defs/freshness.py).
DAILY_MARTS = with_freshness(marts_assets, marts_freshness_policy())
ALL_ASSETS = [*reference_assets, staging_events, *core_assets, *DAILY_MARTS, *event_assets]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[daily_job, refresh_job, reference_job, event_job, late_data_job],
    schedules=[daily_schedule],
    sensors=[late_data_sensor],
    resources=build_resources(),
    # DuckDB has a single writer: steps run one after another in the run's own process.
    executor=dg.in_process_executor,
    loggers={"console": dg.colored_console_logger, "progress": progress_logger},
)
