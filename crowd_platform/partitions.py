"""Daily partitions in local time, and the mappings by which a day reads its neighbours."""

from __future__ import annotations

import datetime as dt
import warnings

import dagster as dg

from crowd_platform import settings

# Partition-mapping options we rely on are marked beta; the warning is noise for users.
warnings.filterwarnings("ignore", category=dg.BetaWarning)


def build_daily_partitions() -> dg.DailyPartitionsDefinition:
    start, end = settings.partition_window()
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(),
        # end_date is exclusive in Dagster; the contract's CROWD_PARTITION_END is inclusive.
        end_date=(end + dt.timedelta(days=1)).isoformat(),
        timezone=settings.LOCAL_TIMEZONE,
    )


daily_partitions = build_daily_partitions()

# A device's day is only whole with the day before (a stay that began yesterday evening) and the
# day after (a stay that runs past midnight).
NEIGHBOURING_DAYS = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=1, allow_nonexistent_upstream_partitions=True
)


def trailing_nights(nights: int) -> dg.TimeWindowPartitionMapping:
    """The `nights` days before a partition, not the partition itself and never the future."""
    return dg.TimeWindowPartitionMapping(
        start_offset=-nights, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )
