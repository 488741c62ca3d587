"""The evaluator on a tiny hand-made warehouse and truth folder whose errors are known in advance."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import duckdb
import polars as pl
import pytest

from crowd_platform.evaluate import EvaluationResult, evaluate, sensitivity
from crowd_platform.pseudonym import pseudonymise
from crowd_platform_tests.conftest import write_visitor_days

KEY = b"evaluate-test-key-0123456789"
D1, D2, D3 = dt.date(2022, 6, 1), dt.date(2022, 6, 2), dt.date(2022, 6, 3)  # the warehouse holds D1 and D2
CITY, OCEAN, HAVO = "city_slottshagen", "oceanhamnen", "havoteket"

# person: imsi, is_subscriber, person_class, visitor_class, home_municipality, origin_country
PERSONS = {
    "resident": ("240010000000001", True, "resident", "resident", "1283", "SE"),
    "visitor": ("240010000000002", True, "domestic_visitor", "domestic_visitor", "1280", "SE"),
    "background": ("240010000000003", True, "background", "domestic_visitor", "0180", "SE"),
    "dane": ("238010000000004", True, "international_visitor", "international_visitor", None, "DK"),
    "meter": ("240010000000005", True, "machine", None, "1283", "SE"),
    "other_operator": ("240070000000006", False, "domestic_visitor", "domestic_visitor", "1281", "SE"),
    "unseen": ("240010000000007", True, "commuter", "domestic_visitor", "1282", "SE"),
}
DEVICE = {name: key for name, key in zip(PERSONS, pseudonymise(KEY, [p[0] for p in PERSONS.values()]), strict=True)}
STRANGER = "f" * 32  # a device the truth does not know


def _write_truth(folder: Path) -> None:
    folder.mkdir()
    # event_date, zone_id, visitors, visitors_subscribers, oracle_rel_error
    zone_rows = [
        (D1, CITY, 100, 40, 0.05),
        (D1, OCEAN, 2500, 1000, -0.02),
        (D1, HAVO, 5, 2, 0.3),
        (D2, CITY, 500, 200, 0.01),
        (D2, OCEAN, 600, 240, 0.03),
        (D2, HAVO, 0, 0, math.nan),
        (D3, CITY, 999, 999, 0.5),  # not in the warehouse: ignored
    ]
    zone_daily = pl.DataFrame(
        [(d, z, d >= dt.date(2022, 5, 30), v, s, 0, 0, 0, v * (1 + e), e, 60.0, 0.0) for d, z, v, s, e in zone_rows],
        schema=[
            "event_date",
            "zone_id",
            "is_expo_day",
            "visitors",
            "visitors_subscribers",
            "visitors_resident",
            "visitors_domestic",
            "visitors_international",
            "visitors_oracle",
            "oracle_rel_error",
            "median_dwell_min",
            "target",
        ],
        orient="row",
    )
    zone_daily.write_parquet(folder / "zone_daily.parquet")
    pl.DataFrame(
        [
            ("h22", "visits", CITY, 1000.0, 400.0, None),
            ("h22", "visits", "", 2500.0, 900.0, None),
            ("h22", "unique_visitors", "", 700.0, 280.0, None),
            ("h22", "international_share", "", 0.1, 0.1, None),
            ("h22", "countries", "", 30.0, 20.0, None),
            ("h22", "countries_k10", "", 15.0, 4.0, None),
            ("h22", "peak_day_visits", "", 1000.0, None, "2022-06-02"),
        ],
        schema=["event_id", "metric", "zone_id", "value", "value_subscribers", "note"],
        orient="row",
    ).with_columns(other_zone_id=pl.lit(""), category=pl.lit("")).vstack(
        pl.DataFrame(
            [  # KPIs keyed by a second zone or a category
                ("h22", "zone_overlap", CITY, OCEAN, "", 400.0, 160.0, None),
                ("h22", "days_attended", "", "", "1", 500.0, 200.0, None),
                ("h22", "days_attended", "", "", "2", 120.0, 48.0, None),
                ("h22", "uplift", "", "", "", 900.0, 360.0, None),
            ],
            schema=["event_id", "metric", "zone_id", "other_zone_id", "category", "value", "value_subscribers", "note"],
            orient="row",
        ).select("event_id", "metric", "zone_id", "value", "value_subscribers", "note", "other_zone_id", "category")
    ).write_parquet(folder / "event_kpis.parquet")
    pl.DataFrame(
        [(i, *p[:5], p[5], "35000000") for i, p in enumerate(PERSONS.values())],
        schema=[
            "person_id",
            "imsi",
            "is_subscriber",
            "person_class",
            "visitor_class",
            "home_municipality",
            "origin_country",
            "tac",
        ],
        orient="row",
    ).write_parquet(folder / "persons.parquet")
    (folder / "manifest.json").write_text(json.dumps({"summary": {"scale": 0.01, "seed": 7}}))


def _write_warehouse(path: Path, legacy_kpi_table: bool = False) -> None:
    """The warehouse; `legacy_kpi_table`: the KPIs in event.event_kpis without the newer columns (a warehouse
    built before the table moved to marts)."""
    con = duckdb.connect(str(path))
    for schema in ("marts", "event", "core"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute(
        """
        CREATE TABLE marts.zone_daily (event_date DATE, zone_id VARCHAR, visits BIGINT, visitors BIGINT,
            visitors_est DOUBLE, visitors_est_low DOUBLE, visitors_est_high DOUBLE, suppressed BOOLEAN)
        """
    )
    con.executemany(
        "INSERT INTO marts.zone_daily VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (D1, CITY, 50, 41, 110, 95, 125, False),  # +10 %, covered; raw +2.5 %
            (D1, OCEAN, 1000, 900, 2000, 1900, 2100, False),  # -20 %, missed; raw -10 %
            (D1, HAVO, None, None, None, None, None, True),  # suppressed
            (D2, CITY, 250, 200, 475, 450, 550, False),  # -5 %, covered; raw 0
            # D2 oceanhamnen: no row although 600 true visitors (missing); D2 havoteket: nobody
        ],
    )
    table = "event.event_kpis" if legacy_kpi_table else "marts.event_kpis"
    con.execute(
        f"""
        CREATE TABLE {table} (event_id VARCHAR, metric VARCHAR, zone_id VARCHAR, value DOUBLE,
            low DOUBLE, high DOUBLE, suppressed BOOLEAN, event_date DATE)
        """
    )
    if not legacy_kpi_table:
        con.execute(f"ALTER TABLE {table} ADD COLUMN other_zone_id VARCHAR")
        con.execute(f"ALTER TABLE {table} ADD COLUMN category VARCHAR")
        con.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            [
                ("h22", "zone_overlap", CITY, 200, 180, 220, False, OCEAN, None),  # -50 %, missed; not a headline
                ("h22", "days_attended", None, 520, 480, 560, False, None, "1"),  # +4 %, covered
                ("h22", "days_attended", None, 118, 100, 130, False, None, "2"),  # covered
                ("h22", "uplift", None, 1000, 700, 1300, False, None, None),  # +11 %, covered
            ],
        )
    con.executemany(
        f"INSERT INTO {table} (event_id, metric, zone_id, value, low, high, suppressed, event_date) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("h22", "visits", CITY, 1030, 1000, 1100, False, None),  # +3 %, covered
            ("h22", "visits", None, 2000, 1900, 2100, False, None),  # -20 %, missed
            ("h22", "unique_visitors", None, None, None, None, True, None),  # suppressed
            ("h22", "countries", None, 5, None, None, False, None),  # vs 4 subscriber countries >= k: +25 %
            ("h22", "peak_day", None, 800, 700, 900, False, D1),  # -20 %, wrong day
        ],
    )
    con.execute(
        "CREATE TABLE core.device_homes (event_date DATE, device_key VARCHAR, home_municipality VARCHAR, "
        "nights_observed INTEGER, nights_at_home INTEGER)"
    )
    con.executemany(
        "INSERT INTO core.device_homes VALUES (?, ?, ?, 10, 8)",
        [
            (D1, DEVICE["resident"], None),
            (D2, DEVICE["resident"], "1283"),  # latest: right
            (D1, DEVICE["visitor"], "1280"),
            (D2, DEVICE["visitor"], "1283"),  # latest: wrong (a hotel night made a resident)
            (D2, DEVICE["background"], ""),  # unknown
            (D3, DEVICE["background"], "0180"),  # outside the window: ignored
            (D2, DEVICE["meter"], "1283"),  # a machine: not evaluated
        ],
    )
    con.execute(
        "CREATE TABLE core.zone_visits (event_date DATE, device_key VARCHAR, zone_id VARCHAR, is_visit BOOLEAN, "
        "visitor_class VARCHAR, dwell_s DOUBLE, origin_country VARCHAR, home_municipality VARCHAR)"
    )
    con.executemany(
        "INSERT INTO core.zone_visits (event_date, device_key, zone_id, is_visit, visitor_class) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (D1, DEVICE["resident"], CITY, True, "resident"),
            (D2, DEVICE["resident"], CITY, True, "resident"),
            (D2, DEVICE["resident"], OCEAN, True, "domestic_visitor"),
            *[(D3, DEVICE["resident"], CITY, True, "domestic_visitor")] * 5,  # outside the window
            (D1, DEVICE["visitor"], CITY, True, "resident"),
            (D2, DEVICE["visitor"], CITY, True, "domestic_visitor"),  # tie: the alphabetically first class
            (D1, DEVICE["dane"], OCEAN, True, "unknown"),
            (D1, DEVICE["dane"], CITY, False, "international_visitor"),  # passers-by do not count
            (D2, DEVICE["dane"], CITY, False, "international_visitor"),
            (D2, DEVICE["background"], CITY, False, "domestic_visitor"),
            (D1, STRANGER, CITY, True, "domestic_visitor"),
        ],
    )
    write_visitor_days(con)
    con.close()


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> EvaluationResult:
    root = tmp_path_factory.mktemp("evaluate")
    _write_truth(root / "truth")
    _write_warehouse(root / "warehouse.duckdb")
    return evaluate(root / "warehouse.duckdb", root / "truth", KEY)


def _rows(frame: pl.DataFrame, key: str) -> dict[object, dict[str, object]]:
    return {row[key]: row for row in frame.iter_rows(named=True)}


def test_zone_days(result: EvaluationResult) -> None:
    zd = result.tables["zone_days"]
    assert zd.height == 6  # the truth's third day is not in the warehouse
    by_key = {(r["event_date"], r["zone_id"]): r for r in zd.iter_rows(named=True)}
    assert {k: r["status"] for k, r in by_key.items()} == {
        (D1, CITY): "compared",
        (D1, OCEAN): "compared",
        (D1, HAVO): "suppressed",
        (D2, CITY): "compared",
        (D2, OCEAN): "missing",
        (D2, HAVO): "no_visitors",
    }
    city1, ocean1, city2 = by_key[(D1, CITY)], by_key[(D1, OCEAN)], by_key[(D2, CITY)]
    assert city1["rel_error_est"] == pytest.approx(0.10)
    assert city1["interval_covers"] is True and city1["within_10pct"] is True
    assert city1["rel_error_raw"] == pytest.approx(0.025)
    assert city1["oracle_rel_error"] == pytest.approx(0.05)
    assert ocean1["rel_error_est"] == pytest.approx(-0.20)
    assert ocean1["interval_covers"] is False and ocean1["within_10pct"] is False
    assert ocean1["rel_error_raw"] == pytest.approx(-0.10)
    assert city2["rel_error_est"] == pytest.approx(-0.05) and city2["rel_error_raw"] == pytest.approx(0.0)
    suppressed = by_key[(D1, HAVO)]
    assert suppressed["rel_error_est"] is None and suppressed["interval_covers"] is None


def test_kpis(result: EvaluationResult) -> None:
    kp = {(r["metric"], r["zone_id"]): r for r in result.tables["kpis"].iter_rows(named=True)}
    assert kp[("visits", CITY)]["rel_error"] == pytest.approx(0.03)
    assert kp[("visits", CITY)]["interval_covers"] is True
    assert kp[("visits", "")]["rel_error"] == pytest.approx(-0.20)  # NULL zone_id matches the truth's ""
    assert kp[("visits", "")]["interval_covers"] is False
    assert kp[("unique_visitors", "")]["status"] == "suppressed"
    assert kp[("unique_visitors", "")]["rel_error"] is None
    countries = kp[("countries", "")]
    assert (countries["truth_metric"], countries["true_value"]) == ("countries_k10", 4.0)
    assert countries["rel_error"] == pytest.approx(0.25)
    peak = kp[("peak_day", "")]
    assert peak["rel_error"] == pytest.approx(-0.20)
    assert peak["note"] == "published 2022-06-01, true 2022-06-02"
    unpublished = result.tables["kpis"].filter(pl.col("metric").is_null())
    assert sorted(unpublished["truth_metric"]) == ["countries", "international_share"]
    assert set(unpublished["status"]) == {"not_published"}
    assert result.summary["kpis_compared"] == 8 and result.summary["kpis_suppressed"] == 1
    # The 3 % bar holds against DESIGN's headline KPIs: the overlap's -50 % does not count there.
    assert result.summary["kpi_max_abs_rel_error"] == pytest.approx(0.25)


def test_kpis_keyed_by_a_second_zone_or_a_category_and_their_coverage(result: EvaluationResult) -> None:
    kp = {
        (r["metric"], r["zone_id"], r["other_zone_id"], r["category"]): r
        for r in result.tables["kpis"].iter_rows(named=True)
    }
    overlap = kp[("zone_overlap", CITY, OCEAN, "")]
    assert overlap["rel_error"] == pytest.approx(-0.5) and overlap["interval_covers"] is False
    assert overlap["headline"] is False
    assert kp[("days_attended", "", "", "1")]["true_value"] == 500.0
    assert kp[("days_attended", "", "", "2")]["interval_covers"] is True
    assert kp[("uplift", "", "", "")]["rel_error"] == pytest.approx(1000 / 900 - 1)
    assert kp[("visits", CITY, "", "")]["headline"] is True
    # Intervals: visits CITY, days_attended 1 and 2, uplift cover; visits total, overlap, peak_day miss.
    covering = result.tables["kpis"].filter(pl.col("interval_covers").is_not_null())
    assert result.summary["kpis_with_interval"] == covering.height == 7
    assert result.summary["kpi_interval_coverage"] == pytest.approx(4 / 7)


def test_a_warehouse_with_the_kpis_in_the_old_place_still_evaluates(tmp_path: Path) -> None:
    _write_truth(tmp_path / "truth")
    _write_warehouse(tmp_path / "warehouse.duckdb", legacy_kpi_table=True)
    legacy = evaluate(tmp_path / "warehouse.duckdb", tmp_path / "truth", KEY)
    kp = {(r["metric"], r["zone_id"]): r for r in legacy.tables["kpis"].iter_rows(named=True)}
    assert kp[("visits", CITY)]["rel_error"] == pytest.approx(0.03)
    assert legacy.summary["kpis_compared"] == 4


def test_homes(result: EvaluationResult) -> None:
    homes = _rows(result.tables["homes"], "device_key")
    assert {k: r["outcome"] for k, r in homes.items()} == {
        DEVICE["resident"]: "right",
        DEVICE["visitor"]: "wrong",
        DEVICE["background"]: "unknown",
    }
    assert homes[DEVICE["visitor"]]["event_date"] == D2
    assert homes[DEVICE["background"]]["is_zone_visitor"] is False  # passers-by only
    s = result.summary
    assert (s["homes_evaluated"], s["homes_detected"]) == (3, 2)
    assert s["home_accuracy"] == pytest.approx(0.5)
    assert s["home_accuracy_all"] == pytest.approx(1 / 3)
    assert s["home_accuracy_zone_visitors"] == pytest.approx(0.5)


def test_visitor_classes(result: EvaluationResult) -> None:
    matrix = _rows(result.tables["visitor_classes"], "true_class")
    assert matrix["resident"]["resident"] == 1 and matrix["resident"]["total"] == 1
    assert matrix["domestic_visitor"]["domestic_visitor"] == 1  # the tie went to domestic_visitor
    assert matrix["international_visitor"]["unknown"] == 1
    assert matrix["international_visitor"]["share_right"] == 0.0
    assert matrix["not_in_truth"]["domestic_visitor"] == 1
    assert result.summary["visitor_class_devices"] == 4
    assert result.summary["visitor_class_accuracy"] == pytest.approx(0.5)


def test_summary_and_bars(result: EvaluationResult) -> None:
    s = result.summary
    assert (s["days"], s["zone_days_compared"], s["suppressed_zone_days"], s["missing_zone_days"]) == (2, 3, 1, 1)
    assert s["median_abs_rel_error_est"] == pytest.approx(0.10)
    assert (s["zone_days_ge_2000"], s["share_within_10pct_ge_2000"]) == (1, 0.0)
    assert (s["zone_days_ge_500"], s["share_within_10pct_ge_500"]) == (2, 0.5)
    assert s["median_oracle_error"] == pytest.approx(0.02)
    assert s["ratio_to_oracle"] == pytest.approx(5.0)
    assert s["interval_coverage"] == pytest.approx(2 / 3)
    assert s["median_abs_rel_error_raw_vs_subscribers"] == pytest.approx(0.025)
    assert s["kpi_window_complete"] == "no (2 of 35)"
    verdicts = dict(result.tables["bars"].select("figure", "result").iter_rows())
    assert verdicts == {
        "median_abs_rel_error_est": "fail",
        "share_within_10pct_ge_2000": "fail",
        "ratio_to_oracle": "fail",
        "interval_coverage": "fail",
        "median_abs_rel_error_raw_vs_subscribers": "pass",
        "kpi_max_abs_rel_error": "fail",
        "home_accuracy_zone_visitors": "fail",
    }


def test_write(result: EvaluationResult, tmp_path: Path) -> None:
    path = result.write(tmp_path / "out")
    assert path == tmp_path / "out" / "evaluation.md"
    text = path.read_text()
    assert text.index("## Summary") < text.index("## bars") < text.index("## zone_days")
    assert "| median_abs_rel_error_est | 0.1 |" in text
    assert "scale 0.01" in text
    for name in ("bars", "zones", "zone_days", "kpis", "home_outcomes", "homes", "visitor_classes"):
        assert pl.read_csv(tmp_path / "out" / f"{name}.csv").height == result.tables[name].height


def test_zones(result: EvaluationResult) -> None:
    zones = _rows(result.tables["zones"], "zone_id")
    assert (zones[OCEAN]["compared"], zones[OCEAN]["missing"]) == (1, 1)
    assert zones[CITY]["median_abs_rel_error_est"] == pytest.approx(0.075)  # 10 % and 5 %
    assert zones[CITY]["interval_coverage"] == 1.0
    assert zones[HAVO]["suppressed"] == 1 and zones[HAVO]["median_abs_rel_error_est"] is None


def test_unbuilt_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    _write_truth(tmp_path / "truth")
    with pytest.raises(ValueError, match=r"lacks marts\.zone_daily"):
        evaluate(tmp_path / "empty.duckdb", tmp_path / "truth", KEY)


def test_the_sensitivity_table_shows_the_median_dwell_with_the_counts() -> None:
    kpis = pl.DataFrame(
        {
            "metric": ["visits", "median_dwell_min", "visits", "countries"],
            "zone_id": ["", "", "a_venue", ""],
            "value": [10.0, 102.66, 3.0, 18.0],
        }
    )
    assert sensitivity._headline(kpis, "value") == {"visits total": 10.0, "median_dwell_min": 102.7}
