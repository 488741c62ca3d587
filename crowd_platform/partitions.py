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


def day_window(start_offset: int, end_offset: int) -> dg.TimeWindowPartitionMapping:
    """Day D reads the upstream days D + start_offset .. D + end_offset (those that exist)."""
    return dg.TimeWindowPartitionMapping(
        start_offset=start_offset, end_offset=end_offset, allow_nonexistent_upstream_partitions=True
    )


# A device's day is only whole with the day before (a stay that began yesterday evening) and the
# day after (a stay that runs past midnight).
NEIGHBOURING_DAYS = day_window(-1, 1)
# A night begins on the day's evening and ends the next morning.
SAME_AND_NEXT_DAY = day_window(0, 1)
# Presence per hour includes visits that began the evening before.
PREVIOUS_AND_SAME_DAY = day_window(-1, 0)


def trailing_days(days: int) -> dg.TimeWindowPartitionMapping:
    """The `days` days up to and including a partition."""
    return day_window(-(days - 1), 0)


def trailing_nights(nights: int) -> dg.TimeWindowPartitionMapping:
    """The `nights` days before a partition, not the partition itself and never the future."""
    return day_window(-nights, -1)
