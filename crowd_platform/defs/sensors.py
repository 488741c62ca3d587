"""The late data sensor: files that land for a day after it was materialised trigger its re-run.

Every materialisation of `staging/events` records, in its metadata, the fingerprint of each
delivery folder the run read (`landing_fingerprints`: names, sizes and modification times of
the event files; see `ingest.folder_fingerprint`) and the late-arrival days it used. The sensor
compares those with the folders now. A day D is affected when its own folder changed, or when the
folder of a later day that it reads for late arrivals (D+1) changed and that day has been
materialised too. Until then D+1's folder is still being delivered; its late events for D are
picked up once D+1 is materialised.
(The folder after the last partition is always compared: no later run would read it.)

For the affected days the sensor requests one run of `late_data_job` (staging, core, marts and
the event layer) over the range of days whose rows can change: by the partition mappings a
changed staging day reaches core and marts from a few days before it to the home window after
it (28 nights). The range is clipped to the materialised days; staging is re-run on all of them,
which is idempotent. The run key is a hash of the folders' fingerprints, so a pending request is
not repeated on the next tick and a new change gives a new run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from crowd_platform import settings
from crowd_platform.defs.core.assets import core_assets
from crowd_platform.defs.marts.assets import marts_assets
from crowd_platform.defs.staging import ingest
from crowd_platform.defs.staging.assets import EVENTS, LANDING_FINGERPRINTS, staging_events
from crowd_platform.partitions import daily_partitions

late_data_job = dg.define_asset_job(
    "late_data_job",
    selection=dg.AssetSelection.groups("staging", "core", "marts", "event"),
    description="Re-ingest days whose delivery folders changed after they were materialised, rebuild "
    "their core facts and marts, then the event KPIs and report (requested by late_data_sensor).",
)

PAGE = 1000


def downstream_reach(assets: Iterable[dg.AssetsDefinition], source: dg.AssetKey = EVENTS) -> tuple[int, int]:
    """(lo, hi): a change to `source` on day U can change daily partitions U+lo .. U+hi downstream.

    Read from the partition mappings: downstream day X reading upstream days X+s .. X+e is
    changed by upstream day U when X lies in U-e .. U-s; offsets add up along each path.
    """
    specs = {spec.key: spec for assets_def in assets for spec in assets_def.specs if spec.partitions_def}
    reach: dict[dg.AssetKey, tuple[int, int]] = {source: (0, 0)}
    changed = True
    while changed:  # a longest-path relaxation; the graph is a small DAG
        changed = False
        for key, spec in specs.items():
            for dep in spec.deps:
                if dep.asset_key not in reach or dep.asset_key not in specs:
                    continue
                mapping = dep.partition_mapping
                start, end = (
                    (mapping.start_offset, mapping.end_offset)
                    if isinstance(mapping, dg.TimeWindowPartitionMapping)
                    else (0, 0)
                )
                lo, hi = reach[dep.asset_key]
                new = (lo - end, hi - start)
                if key in reach:
                    new = (min(new[0], reach[key][0]), max(new[1], reach[key][1]))
                if reach.get(key) != new:
                    reach[key], changed = new, True
    return min(lo for lo, _ in reach.values()), max(hi for _, hi in reach.values())


REACH = downstream_reach([staging_events, *core_assets, *marts_assets])


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


def late_data_run_request(instance: dg.DagsterInstance, landing_dir: Path) -> dg.RunRequest | None:
    """The run that brings the materialised days up to date with their delivery folders, if any."""
    keys = daily_partitions.get_partition_keys()
    window_start, window_end = dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1])
    recorded = recorded_fingerprints(instance, keys)
    affected = affected_days(recorded, landing_dir, window_end)
    if not affected:
        return None
    materialised = sorted(dt.date.fromisoformat(k) for k in recorded)
    lo, hi = REACH
    first = max(affected[0] + dt.timedelta(days=lo), window_start, materialised[0])
    last = min(affected[-1] + dt.timedelta(days=hi), materialised[-1])
    folders = sorted({folder for day in affected for folder in recorded[day.isoformat()]})
    state = {folder: folder_now(landing_dir, folder) for folder in folders}
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]
    return dg.RunRequest(
        run_key=f"late-data-{first}-{last}-{digest}",
        job_name=late_data_job.name,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            "crowd/late_days": ",".join(day.isoformat() for day in affected),
        },
    )


@dg.sensor(
    job=late_data_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Every 5 minutes: compares the delivery folders of materialised days with what their "
    "last staging run read; files that landed or changed since trigger a re-run of the affected days "
    "and everything downstream, then the event layer. Turn it on under Automation.",
)
def late_data_sensor(context: dg.SensorEvaluationContext):
    request = late_data_run_request(context.instance, settings.landing_dir())
    if request is None:
        return dg.SkipReason("no file landed or changed in a materialised day's delivery folders")
    context.log.info(f"late data for {request.tags['crowd/late_days']}: re-running {request.run_key}")
    return request
