"""Materialise the lineage in process: reference data, then a range of days, then the event layer.

Used by `crowd-platform materialize` and by the tests. The daily assets run as one run over the
whole range (each asset's backfill policy is a single run), which is also what a backfill from
the UI does. Runs are recorded in the Dagster instance of DAGSTER_HOME when it is set, so the
UI shows them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from crowd_platform.definitions import defs
from crowd_platform.methodology import Methodology

ProgressFn = Callable[[str], None]


class MaterializeError(RuntimeError):
    """A run failed; the message carries the failing step's error."""


def _root_cause(error) -> str:
    """Dagster wraps the asset's exception; the user needs the innermost message."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def _run(job_name: str, tags: dict[str, str], methodology: Methodology | None, quiet: bool) -> None:
    job = defs.resolve_job_def(job_name)
    # Only the step-by-step progress logger prints; Dagster's full log stays in the instance.
    run_config: dict = {"loggers": {"progress": {}} if not quiet else {"console": {"config": {"log_level": "ERROR"}}}}
    if methodology is not None:
        run_config["resources"] = {"methodology": {"config": methodology.model_dump()}}
    with _instance() as instance:
        result = job.execute_in_process(instance=instance, tags=tags, run_config=run_config, raise_on_error=False)
    if not result.success:
        failures = [
            f"{event.step_key}: {_root_cause(event.event_specific_data.error)}"  # type: ignore[union-attr]
            for event in result.all_events
            if event.is_step_failure and event.event_specific_data is not None
        ]
        raise MaterializeError(f"{job_name} failed: " + "; ".join(failures or ["see the run's logs"]))


def materialize(
    first: dt.date,
    last: dt.date,
    methodology: Methodology | None = None,
    progress: ProgressFn = print,
    quiet: bool = False,
    staging: bool = True,
) -> None:
    """Reference data, then every daily asset for [first, last], then the event KPIs and report.

    With `staging=False` only core and marts are rebuilt from the staged events (another
    methodology on the same data: the sensitivity analysis).
    """
    day_range = {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
    steps = [
        ("reference data", "reference_job", {}),
        (f"daily assets {first} .. {last}", "daily_job" if staging else "refresh_job", day_range),
        ("event KPIs and report", "event_job", {}),
    ]
    for number, (label, job_name, tags) in enumerate(steps, start=1):
        started = time.perf_counter()
        progress(f"[{number}/{len(steps)}] {label} ...")
        _run(job_name, tags, methodology, quiet)
        progress(f"[{number}/{len(steps)}] {label}: done in {time.perf_counter() - started:.1f} s")
