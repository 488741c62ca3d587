"""The late data sensor: files that land for a day after it was materialised trigger its re-run.

Every materialisation of `staging/events` records, in its metadata, the fingerprint of each
delivery folder the run read (`landing_fingerprints`: names, sizes and modification times of
the event files; see `ingest.folder_fingerprint`) and the late-arrival days it used. The sensor
compares those with the folders now. A day D is affected when its own folder changed, or when the
folder of a later day that it reads for late arrivals (D+1) changed and that day has been
materialised too. Until then D+1's folder is still being delivered; its late events for D are
picked up once D+1 is materialised.
(The folder after the last partition is always compared: no later run would read it.)

For the affected days the sensor requests one asset backfill of exactly the partitions whose
rows can change: staging on the affected days only, and each downstream asset on the days that
read them through its partition mappings (stays and visits: the neighbouring days; homes: the
28 nights after), clipped to the materialised days, then the unpartitioned event layer. Dagster's
backfill daemon runs them in dependency order. The sensor's cursor holds the landing state it
last requested, so a pending backfill is not requested again on the next tick and a new change
gives a new backfill.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

from crowd_platform import settings
from crowd_platform.defs.staging import ingest
from crowd_platform.defs.staging.assets import EVENTS, LANDING_FINGERPRINTS, STAGING_TABLES
from crowd_platform.partitions import daily_partitions

# Everything a late file can change: staging and all that is derived from it.
LATE_DATA_SELECTION = dg.AssetSelection.groups("staging", "core", "marts", "event")
late_data_job = dg.define_asset_job(
    "late_data_job",
    selection=LATE_DATA_SELECTION,
    description="Re-ingest a range of days, rebuild their core facts and marts, then the event KPIs and "
    "report (by hand; late_data_sensor requests a backfill of only the partitions that can change).",
)
LATE_DAYS_TAG = "crowd/late_days"

PAGE = 1000


def downstream_reach(asset_graph: BaseAssetGraph) -> tuple[dict[dg.AssetKey, tuple[int, int]], set[dg.AssetKey]]:
    """Which partitions a change to staging on day U can change downstream, read from the
    partition mappings: ({partitioned asset: (lo, hi)}, unpartitioned assets), where the asset's
    days U+lo .. U+hi can change (staging itself: (0, 0)).

    Downstream day X reading upstream days X+s .. X+e is changed by upstream day U when X lies in
    U-e .. U-s; offsets add up along each path, and an asset takes the hull over its parents.
    """
    reach: dict[dg.AssetKey, tuple[int, int]] = {key: (0, 0) for key in STAGING_TABLES}
    whole: set[dg.AssetKey] = set()
    for key in asset_graph.toposorted_asset_keys:
        if key in reach:
            continue
        node = asset_graph.get(key)
        windows, whole_parent = [], False
        for parent in node.parent_keys:
            if parent in whole:
                whole_parent = True
            if parent not in reach:
                continue
            mapping = asset_graph.get_partition_mapping(key, parent)
            start, end = (
                (mapping.start_offset, mapping.end_offset)
                if isinstance(mapping, dg.TimeWindowPartitionMapping)
                else (0, 0)
            )
            lo, hi = reach[parent]
            windows.append((lo - end, hi - start))
        if node.partitions_def is None and (windows or whole_parent):
            whole.add(key)  # the event layer reads every day
        elif windows:
            reach[key] = (min(lo for lo, _ in windows), max(hi for _, hi in windows))
    return reach, whole


def folders_read(day: str, metadata: Mapping[str, dg.MetadataValue]) -> dict[str, str]:
    """The fingerprints of the folders that hold events of `day` (its own and the late ones), from
    the metadata of a run that may have covered a range of days."""
    value = metadata.get(LANDING_FINGERPRINTS)
    if value is None:  # materialised before fingerprints were recorded: nothing to compare
        return {}
    recorded: dict = value.value  # type: ignore[assignment]
    last = dt.date.fromisoformat(day) + dt.timedelta(days=int(recorded["late_arrival_days"]))
    return {folder: fp for folder, fp in recorded["folders"].items() if day <= folder <= last.isoformat()}


def recorded_fingerprints(instance: dg.DagsterInstance, partition_keys: list[str]) -> dict[str, dict[str, str]]:
    """The folder fingerprints of the latest materialisation of staging/events, by partition."""
    wanted, found = set(partition_keys), {}
    cursor = None
    while wanted - found.keys():
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=EVENTS, asset_partitions=partition_keys), limit=PAGE, cursor=cursor
        )
        for record in result.records:  # newest first
            materialization = record.asset_materialization
            if materialization is None or record.partition_key in found:
                continue
            found[record.partition_key] = folders_read(record.partition_key, materialization.metadata)
        if not result.has_more:
            break
        cursor = result.cursor
    return found


def folder_now(landing_dir: Path, folder: str) -> str:
    return ingest.folder_fingerprint(ingest.delivery_folder(landing_dir, dt.date.fromisoformat(folder)))


def affected_days(recorded: dict[str, dict[str, str]], landing_dir: Path, window_end: dt.date) -> list[dt.date]:
    """The materialised days whose delivery folders (own, or a materialised later one) changed."""
    current: dict[str, str] = {}

    def now(folder: str) -> str:
        if folder not in current:
            current[folder] = folder_now(landing_dir, folder)
        return current[folder]

    affected = []
    for day, folders in sorted(recorded.items()):
        for folder, fingerprint in folders.items():
            settled = folder == day or folder in recorded or dt.date.fromisoformat(folder) > window_end
            if settled and now(folder) != fingerprint:
                affected.append(dt.date.fromisoformat(day))
                break
    return affected


def partitions_to_rerun(
    affected: list[dt.date], reach: Mapping[dg.AssetKey, tuple[int, int]], first: dt.date, last: dt.date
) -> dict[dg.AssetKey, list[str]]:
    """For each partitioned asset, the days in first .. last that the affected staging days reach."""
    wanted: dict[dg.AssetKey, list[str]] = {}
    for key, (lo, hi) in reach.items():
        days = {day + dt.timedelta(days=offset) for day in affected for offset in range(lo, hi + 1)}
        in_window = sorted(day.isoformat() for day in days if first <= day <= last)
        if in_window:
            wanted[key] = in_window
    return wanted


def late_data_backfill_request(
    instance: dg.DagsterInstance, asset_graph: BaseAssetGraph, landing_dir: Path
) -> tuple[dg.RunRequest, str] | None:
    """The backfill that brings the materialised days up to date with their delivery folders, if
    any, and the landing state it answers (a digest of the changed folders' fingerprints)."""
    keys = daily_partitions.get_partition_keys()
    window_start = dt.date.fromisoformat(keys[0])
    window_end = dt.date.fromisoformat(keys[-1])
    recorded = recorded_fingerprints(instance, keys)
    affected = affected_days(recorded, landing_dir, window_end)
    if not affected:
        return None
    materialised = sorted(dt.date.fromisoformat(k) for k in recorded)
    reach, whole = downstream_reach(asset_graph)
    selected = LATE_DATA_SELECTION.resolve(asset_graph)  # a sensor's backfill stays inside its selection
    reach = {key: offsets for key, offsets in reach.items() if key in selected}
    whole &= selected
    wanted = partitions_to_rerun(affected, reach, max(window_start, materialised[0]), materialised[-1])
    folders = sorted({folder for day in affected for folder in recorded[day.isoformat()]})
    state = {folder: folder_now(landing_dir, folder) for folder in folders}
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]
    subset = AssetGraphSubset(
        partitions_subsets_by_asset_key={
            key: daily_partitions.subset_with_partition_keys(days) for key, days in wanted.items()
        },
        non_partitioned_asset_keys=whole,
    )
    tags = {LATE_DAYS_TAG: ",".join(day.isoformat() for day in affected), "crowd/landing_state": digest}
    return dg.RunRequest.for_asset_graph_subset(subset, tags=tags), digest


@dg.sensor(
    asset_selection=LATE_DATA_SELECTION,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Every 5 minutes: compares the delivery folders of materialised days with what their "
    "last staging run read; files that landed or changed since trigger a backfill of staging on the "
    "affected days and of the downstream partitions that read them, then the event layer. Turn it on "
    "under Automation (backfills need the daemon, as sensors do).",
)
def late_data_sensor(context: dg.SensorEvaluationContext):
    assert context.repository_def is not None
    found = late_data_backfill_request(context.instance, context.repository_def.asset_graph, settings.landing_dir())
    if found is None:
        return dg.SkipReason("no file landed or changed in a materialised day's delivery folders")
    request, state = found
    if context.cursor == state:  # requested on an earlier tick; its staging runs have not finished yet
        return dg.SkipReason(f"a backfill for landing state {state} was already requested")
    assert request.asset_graph_subset is not None
    partitions = request.asset_graph_subset.num_partitions_and_non_partitioned_assets
    context.log.info(f"late data for {request.tags[LATE_DAYS_TAG]}: backfill of {partitions} asset partitions")
    return dg.SensorResult(run_requests=[request], cursor=state)
