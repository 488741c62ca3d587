"""The code location loads and shows what DESIGN section 2 promises."""

from __future__ import annotations

import dagster as dg

from crowd_platform.definitions import defs

CONTRACT_ASSETS = {
    "staging/events", "staging/rejected_events", "staging/load_audit",
    "reference/cells", "reference/zones", "reference/cell_zone_weights", "reference/mcc_countries",
    "reference/municipalities", "reference/market_shares", "reference/events",
    "core/stays", "core/device_homes", "core/zone_visits",
    "marts/zone_daily", "marts/zone_hourly", "marts/origin_country_daily", "marts/home_municipality_daily",
    "marts/event_kpis", "event/event_report",
}  # fmt: skip
# marts.event_kpis is published (marts schema) but runs with the unpartitioned event layer (event_job).
GROUP_EXCEPTIONS = {"marts/event_kpis": "event"}


def test_definitions_load_with_every_contract_asset() -> None:
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys >= CONTRACT_ASSETS


def test_assets_are_grouped_by_layer_and_described() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name == GROUP_EXCEPTIONS.get(key.to_user_string(), key.path[0]), key
        assert node.description and len(node.description) > 30, key


def test_daily_partitions_are_local_time_and_follow_the_environment() -> None:
    graph = defs.resolve_asset_graph()
    partitions = graph.get(dg.AssetKey(["core", "stays"])).partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions.timezone == "Europe/Stockholm"
    keys = partitions.get_partition_keys()
    assert keys[0] == "2022-06-01" and keys[-1] == "2022-06-11"  # conftest window, end inclusive


def test_every_warehouse_step_is_in_the_single_writer_pool() -> None:
    for assets_def in defs.assets or []:
        assert isinstance(assets_def, dg.AssetsDefinition)
        pools = {assets_def.node_def.pool} if hasattr(assets_def.node_def, "pool") else set()
        assert pools == {"duckdb"}, assets_def.keys


def test_schedule_and_checks_exist() -> None:
    schedule = defs.resolve_schedule_def("daily_schedule")
    assert schedule.job_name == "daily_job"
    graph = defs.resolve_asset_graph()
    check_names = {key.name for key in graph.asset_check_keys}
    assert {"landed_rows_accounted", "no_raw_imsi", "no_group_under_k"} <= check_names


def test_home_detection_reads_only_earlier_nights() -> None:
    homes = next(a for a in defs.assets or [] if dg.AssetKey(["core", "device_homes"]) in a.keys)
    mapping = homes.get_partition_mapping(dg.AssetKey(["core", "device_nights"]))
    assert isinstance(mapping, dg.TimeWindowPartitionMapping)
    assert mapping.start_offset == -28 and mapping.end_offset == -1
    # Machines are recognised over the window's days and the day itself, never a later day.
    machines = homes.get_partition_mapping(dg.AssetKey(["core", "devices"]))
    assert isinstance(machines, dg.TimeWindowPartitionMapping)
    assert machines.start_offset == -28 and machines.end_offset == 0


def test_the_schedule_builds_yesterday_and_refreshes_the_day_before() -> None:
    import datetime as dt

    schedule = defs.resolve_schedule_def("daily_schedule")
    at = dt.datetime(2022, 6, 5, 6, 0, tzinfo=dt.UTC)
    with dg.build_schedule_context(scheduled_execution_time=at, repository_def=defs.get_repository_def()) as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [(r.partition_key, r.job_name) for r in requests] == [("2022-06-04", None), ("2022-06-03", "refresh_job")]


def test_hourly_presence_reads_the_two_days_before_and_feeds_the_ledger_and_the_hourly_mart() -> None:
    graph = defs.resolve_asset_graph()
    presence = dg.AssetKey(["core", "zone_presence_hourly"])
    for upstream in (dg.AssetKey(["core", "zone_visits"]), dg.AssetKey(["core", "device_weights"])):
        mapping = graph.get_partition_mapping(presence, upstream)
        assert isinstance(mapping, dg.TimeWindowPartitionMapping)
        assert (mapping.start_offset, mapping.end_offset) == (-2, 0)
    for reader in (dg.AssetKey(["marts", "suppression_ledger"]), dg.AssetKey(["marts", "zone_hourly"])):
        assert presence in graph.get(reader).parent_keys
        same_day = graph.get_partition_mapping(reader, presence)
        assert isinstance(same_day, dg.TimeWindowPartitionMapping)
        assert (same_day.start_offset, same_day.end_offset) == (0, 0)
    # The hourly mart reads device-level presence only through core, never zone visits directly.
    assert dg.AssetKey(["core", "zone_visits"]) not in graph.get(dg.AssetKey(["marts", "zone_hourly"])).parent_keys


def test_daily_marts_of_a_live_window_are_due_by_nine_and_a_closed_window_has_no_freshness(monkeypatch) -> None:
    import datetime as dt

    from crowd_platform.defs.freshness import marts_freshness_policy, with_freshness
    from crowd_platform.defs.marts.assets import marts_assets

    monkeypatch.setenv("CROWD_PARTITION_START", "2026-01-01")
    monkeypatch.setenv("CROWD_PARTITION_END", "2026-12-31")
    live = marts_freshness_policy(today=dt.date(2026, 6, 1))
    assert isinstance(live, dg.FreshnessPolicy)
    assert marts_freshness_policy(today=dt.date(2027, 1, 1)) is not None  # yesterday is still in the window
    assert marts_freshness_policy(today=dt.date(2027, 1, 2)) is None  # the window has closed
    specs = [spec for asset in with_freshness(marts_assets, live) for spec in asset.specs]
    assert {spec.key.to_user_string() for spec in specs} >= {"marts/zone_daily", "marts/suppression_ledger"}
    assert all(spec.freshness_policy == live for spec in specs)
    # The tests' window (2022) is closed: the code location itself carries no policy.
    graph = defs.resolve_asset_graph()
    assert all(graph.get(key).freshness_policy is None for key in graph.get_all_asset_keys())


def test_the_instance_settings_load_with_freshness_enabled(tmp_path) -> None:
    import shutil

    from crowd_platform import settings

    shutil.copy(settings.DAGSTER_YAML_TEMPLATE, tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_settings("freshness").get("enabled") is True
