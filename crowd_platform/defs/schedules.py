"""Jobs and the daily schedule."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from crowd_platform import settings
from crowd_platform.partitions import daily_partitions

# Everything partitioned by day, from landing to marts.
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups("staging", "core", "marts"),
    description="Ingest one or more days and build their core facts and marts.",
)

# Core and marts only: re-derives a day once its next day's events exist.
refresh_job = dg.define_asset_job(
    "refresh_job",
    selection=dg.AssetSelection.groups("core", "marts"),
    description="Rebuild the core facts and marts of days whose neighbouring days changed.",
)

# The unpartitioned layers: reference data and the event KPIs and report.
reference_job = dg.define_asset_job(
    "reference_job", selection=dg.AssetSelection.groups("reference"), description="Reload the reference data."
)
event_job = dg.define_asset_job(
    "event_job", selection=dg.AssetSelection.groups("event"), description="Recompute event KPIs and the report."
)


@dg.schedule(
    cron_schedule="0 6 * * *",
    execution_timezone=settings.LOCAL_TIMEZONE,
    job=daily_job,
    description="At 06:00 local time (the night's late deliveries are in): ingest and build yesterday; then "
    "rebuild the day before it, whose stays and visits across midnight can now be completed.",
)
def daily_schedule(context: dg.ScheduleEvaluationContext):
    local_now = context.scheduled_execution_time.astimezone(ZoneInfo(settings.LOCAL_TIMEZONE))
    yesterday = local_now.date() - dt.timedelta(days=1)
    keys = set(daily_partitions.get_partition_keys())
    if yesterday.isoformat() in keys:
        yield dg.RunRequest(run_key=f"daily-{yesterday}", partition_key=yesterday.isoformat())
    before = yesterday - dt.timedelta(days=1)
    if before.isoformat() in keys:
        yield dg.RunRequest(run_key=f"refresh-{before}", partition_key=before.isoformat(), job_name=refresh_job.name)
