"""Jobs and the daily schedule."""

from __future__ import annotations

import dagster as dg

# Everything partitioned by day, from landing to marts.
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups("staging", "core", "marts"),
    description="Ingest one or more days and build their core facts and marts.",
)

# The unpartitioned layers: reference data and the event KPIs and report.
reference_job = dg.define_asset_job(
    "reference_job", selection=dg.AssetSelection.groups("reference"), description="Reload the reference data."
)
event_job = dg.define_asset_job(
    "event_job", selection=dg.AssetSelection.groups("event"), description="Recompute event KPIs and the report."
)

# At 06:00 local time the previous day's deliveries are in (late arrivals land next morning).
daily_schedule = dg.build_schedule_from_partitioned_job(daily_job, hour_of_day=6, minute_of_hour=0)
