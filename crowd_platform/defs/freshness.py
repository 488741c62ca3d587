"""Freshness of the daily marts: in a live deployment they are due by 09:00 local time each day.

The daily schedule builds yesterday at 06:00; three hours leave room for the run and a retry. Dagster
shows a mart that missed it as failing its freshness (and can alert on it); the instance setting
`freshness: enabled` (deploy/dagster.yaml) turns the evaluation on. Dagster evaluates a policy per asset,
not per partition, so it is given only where the partition window reaches yesterday: a closed window (a
past event, the demo's 2022) is never re-materialised every day and has nothing to keep fresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import dagster as dg

from crowd_platform import settings

MARTS_DUE_CRON = "0 9 * * *"


def marts_freshness_policy(today: dt.date | None = None) -> dg.FreshnessPolicy | None:
    """Materialised within the 24 hours before 09:00 local time, each day; none for a closed window."""
    today = today or dt.datetime.now(ZoneInfo(settings.LOCAL_TIMEZONE)).date()
    _, last_day = settings.partition_window()
    if last_day < today - dt.timedelta(days=1):
        return None
    return dg.FreshnessPolicy.cron(
        deadline_cron=MARTS_DUE_CRON, lower_bound_delta=dt.timedelta(hours=24), timezone=settings.LOCAL_TIMEZONE
    )


def with_freshness(assets: Sequence[dg.AssetsDefinition], policy: dg.FreshnessPolicy | None) -> list:
    """`assets` with `policy` on each of their assets (none: unchanged)."""
    if policy is None:
        return list(assets)
    return list(dg.map_asset_specs(lambda spec: dg.apply_freshness_policy(spec, policy), assets))
