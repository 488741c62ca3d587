"""The event report: every section and chart present, self-contained, rendered by a real browser.

The browser checks need Debian's `chromium` on PATH (CI installs it); without it they fail, not skip.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from crowd_platform import report
from crowd_platform.report import breakdowns, charts, html, queries, svg, tables
from crowd_platform.warehouse import Warehouse
from crowd_platform_tests.conftest import BuiltWorld, write_visitor_days

SECTIONS = ["headline", "daily", "uplift", "overlap", "attendance", "returning", "hourly", "countries",
            "municipalities", "dwell"]  # fmt: skip
# The test world has no baseline weeks: the uplift and returning sections say so instead of a chart.
CHART_TITLES = [
    "Visitors per day in each main zone",
    "Visitors of one zone who also visited another",
    "Visitors by days attended",
    "People present per hour on the peak day",
    "Origin countries",
    "Home municipalities of visitors",
    "Dwell time of visits",
]


@pytest.fixture(scope="module")
def rendered(world: BuiltWorld, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("report")
    with Warehouse(database=str(world.warehouse)).connect(read_only=True) as con:
        path = report.write_report(con, folder)
        sections = report.report_markdown_sections(con)
    return path, sections


def test_report_has_every_section_and_a_chart_each(rendered: tuple[Path, dict[str, str]]) -> None:
    page = rendered[0].read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'id="test_expo-{section}"' in page, section
    for title in CHART_TITLES:
        assert title in page, title
    assert page.count("<svg") == len(CHART_TITLES)
    assert page.count("How to read") >= len(SECTIONS)
    assert page.count(f"Methodology {report.html.METHODOLOGY_VERSION}") >= len(SECTIONS)
    assert "95 % interval" in page


def test_table_of_contents_links_every_section_in_page_order(rendered: tuple[Path, dict[str, str]]) -> None:
    page = rendered[0].read_text(encoding="utf-8")
    links = re.findall(r'<a href="#(test_expo-[a-z]+)">', page)
    anchors = re.findall(r'<section id="(test_expo-[a-z]+)">', page)
    assert links == anchors == [f"test_expo-{section}" for section in SECTIONS]


def test_report_is_self_contained(rendered: tuple[Path, dict[str, str]]) -> None:
    page = rendered[0].read_text(encoding="utf-8").lower()
    for forbidden in ('src="http', "src='http", 'href="http', "href='http", "<script", "@import", "url(http", "//cdn"):
        assert forbidden not in page, forbidden
    assert not re.search(r"<link[^>]+stylesheet", page)


def test_markdown_sections_for_dagster(rendered: tuple[Path, dict[str, str]]) -> None:
    sections = rendered[1]
    assert list(sections) == ["headline", "daily visitors per zone", "top countries", "top municipalities", "uplift",
                              "days attended", "zone overlap"]  # fmt: skip
    assert "| figure |" in sections["headline"] and "Unique visitors" in sections["headline"]
    assert "Days attended per visitor" in sections["headline"]
    assert "| date | Area A | Area B |" in sections["daily visitors per zone"]
    assert "2022-06-01" in sections["daily visitors per zone"]
    assert sections["uplift"].startswith("No uplift")  # no baseline weeks in the test world
    assert "| visitors | estimate | 95 % interval |" in sections["days attended"]
    assert "| Area A | Venue V |" in sections["zone overlap"]
    for name, text in sections.items():
        assert text.startswith("|") or text.startswith("Visitors per day") or name == "uplift"


def test_headline_keeps_breakdowns_out(rendered: tuple[Path, dict[str, str]]) -> None:
    headline = rendered[1]["headline"]
    assert "Visitors of both zones" not in headline and "Visitors by days attended" not in headline
    assert headline.count("| Unique visitors |") == 1  # event-wide only; per zone in the overlap section


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: `apt-get install -y chromium` (Debian) is needed for the report tests")
    return binary


def _chromium_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_chromium_renders_the_charts(rendered: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    result = _chromium_run(tmp_path, "--dump-dom", rendered[0].resolve().as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert dom.count("<svg") == len(CHART_TITLES)
    assert "Visitors per day in each main zone" in dom
    assert "Zone overlap" in dom and "Days attended and visits per visitor" in dom
    assert "Headline figures" in dom
    assert dom.count("<path") > 10  # the map's municipalities

    shot = tmp_path / "shot.png"
    result = _chromium_run(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", rendered[0].resolve().as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000  # a blank page compresses to a few kB


# --- pieces --------------------------------------------------------------------------------------------


def _visits_table(rows: list[tuple[str, float]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    con.execute(
        "CREATE TABLE core.zone_visits (event_date DATE, device_key VARCHAR, zone_id VARCHAR, dwell_s DOUBLE, "
        "is_visit BOOLEAN, visitor_class VARCHAR, origin_country VARCHAR, home_municipality VARCHAR)"
    )
    con.executemany(
        "INSERT INTO core.zone_visits VALUES ('2022-06-01', ?, 'a', ?, true, 'resident', 'SE', '1283')", rows
    )
    write_visitor_days(con)
    return con


def test_dwell_bins_suppress_small_bins_and_protect_them_against_differencing() -> None:
    rows = [(f"d{i}", 30 * 60) for i in range(40)]  # 20-40 min: 40 devices
    rows += [(f"e{i}", 50 * 60) for i in range(12)]  # 40-60 min: 12 devices
    rows += [(f"f{i}", 90 * 60) for i in range(3)]  # 80-100 min: 3 devices -> suppressed
    rows += [(f"g{i}", 7 * 3600) for i in range(15)]  # 6 h+: 15 devices
    event = queries.Event("e", "E", dt.date(2022, 6, 1), dt.date(2022, 6, 1), ("a",), None)
    with _visits_table(rows) as con:
        bins = {b["label"]: b for b in queries.dwell_bins(con, event, k=10)}
    assert bins["20\u201340"]["visits"] == 40
    assert bins["80\u2013100"]["suppressed"]
    # One suppressed bin could be recovered from the total: the smallest published one goes too.
    assert bins["40\u201360"]["suppressed"] and bins["40\u201360"]["visits"] is None
    assert bins["6 h+"]["visits"] == 15
    assert bins["60\u201380"]["visits"] == 0 and not bins["60\u201380"]["suppressed"]  # empty, not a group
    assert next(iter(bins)) == "20\u201340"


def test_dwell_bins_count_a_person_once_a_day_with_all_their_time_in_the_zone() -> None:
    rows = [(f"d{i}", 30 * 60) for i in range(12)] * 2  # two visits of 30 min each, the same day
    event = queries.Event("e", "E", dt.date(2022, 6, 1), dt.date(2022, 6, 1), ("a",), None)
    with _visits_table(rows) as con:
        bins = {b["label"]: b for b in queries.dwell_bins(con, event, k=10)}
    assert bins["60\u201380"]["visits"] == 12
    assert bins["20\u201340"]["visits"] == 0


def test_map_classes_and_ticks() -> None:
    assert svg.class_breaks([2_836, 670_617]) == [1_000, 10_000, 100_000, 1_000_000]
    assert svg.class_breaks([15, 80]) == [10, 20, 50, 100]
    assert svg.class_breaks([]) == []
    assert svg.nice_ticks(0, 37_930) == [0, 10_000, 20_000, 30_000, 40_000]
    assert svg.fmt_compact(1_250_000) == "1.25M"
    assert svg.fmt_signed(-1_234.4) == "\u22121,234" and svg.fmt_signed(56) == "+56" and svg.fmt_signed(None) == ""


def test_estimate_bar_tells_nobody_from_suppressed() -> None:
    nobody = charts.estimate_bar("1 day", None)
    assert nobody.value == 0 and nobody.tooltip == "1 day: nobody"
    withheld = {"value": None, "low": None, "high": None, "suppressed": True, "suppression_rule": "primary_k"}
    assert charts.estimate_bar("2 days", withheld).value is None
    assert charts.estimate_bar("2 days", withheld).tooltip == "2 days: suppressed"
    shown = {"value": -1_200.0, "low": -2_000.0, "high": -400.0, "suppressed": False, "suppression_rule": None}
    bar = charts.estimate_bar("Area A", shown, value_fmt="{:+,.0f}", unit=" visits")
    assert (bar.value, bar.low, bar.high) == (-1_200.0, -2_000.0, -400.0)
    assert bar.tooltip == "Area A: \u22121,200 visits (95 %: \u22122,000 \u2013 \u2212400)"


# --- the breakdown sections on a hand-made warehouse with baseline weeks -------------------------------


@pytest.fixture(scope="module")
def baseline_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[html.Page, queries.Event]:
    """marts.event_kpis of a hand-made world with two baseline weeks (test_event_kpis), for the page's sections."""
    from crowd_platform_tests import test_event_kpis as world

    folder = tmp_path_factory.mktemp("baseline_report")
    visits = world.baseline_world(world.people("r", 14), world.people("x", 25), [12] * 14)
    visits += world.visits_of(world.people("x", 12), world.EVENT_DAYS[:1], "area_b")  # in both zones
    world.compute_kpis(folder, visits, held_days=world.BASELINE + world.EVENT_DAYS)
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    event = queries.events(con)[0]
    return html.Page(con), event


def test_section_places_chart_caption_and_table_or_says_why_it_is_empty(
    baseline_page: tuple[html.Page, queries.Event],
) -> None:
    page, event = baseline_page
    columns = [("zone", "Zone"), ("visitors", "Visitors")]
    data = tables.DataTable([{"zone": "Area A", "visitors": "suppressed"}], columns)
    table = html._table(data, summary="Data table")
    full = page.section(event, "uplift", "Uplift", "how", chart="<svg>c</svg>", caption="cap", table=table)
    assert full.index("<svg>c</svg>") < full.index("<figcaption>cap</figcaption>") < full.index("<summary>Data table")
    assert '<td class="text">Area A</td><td class="sup">suppressed</td>' in full
    assert f'id="{event.event_id}-uplift"' in full and html.SOURCE_NOTE["uplift"] in full
    empty = page.section(event, "uplift", "Uplift", "how", chart="<svg>c</svg>", table=table, empty="Nothing yet.")
    assert '<p class="empty">Nothing yet.</p>' in empty and "<figure>" not in empty and "<table>" not in empty
    assert "<details>" not in page.section(event, "uplift", "Uplift", "how", table=html._table(data))


def test_uplift_section_shows_each_zone_with_its_interval(baseline_page: tuple[html.Page, queries.Event]) -> None:
    page, event = baseline_page
    section = page.uplift_section(event)
    rows = {r["zone_id"]: r for r in breakdowns.uplift_rows(page.con, event)}
    assert set(rows) == {"area_a", "area_b", None}
    uplift_a = rows["area_a"]["uplift"]
    assert f"+{uplift_a['value']:,.0f}" in section
    assert f"{uplift_a['low']:,.0f} \u2013 {uplift_a['high']:,.0f}" in section
    assert rows["area_a"]["normal"] == rows["area_a"]["visits"]["value"] - uplift_a["value"]
    assert section.count("<svg") == 1 and "Uplift over the baseline weeks, Expo" in section
    assert f"Methodology {html.METHODOLOGY_VERSION}" in section


def test_returning_and_attendance_sections(baseline_page: tuple[html.Page, queries.Event]) -> None:
    page, event = baseline_page
    returning = page.returning_section(event)
    history = breakdowns.visitor_history(page.con, event)
    assert history["returning_share"] == pytest.approx(
        history["returning"]["value"] / (history["returning"]["value"] + history["first_time"]["value"])
    )
    assert f"{history['returning_share'] * 100:.0f} % of the visitors" in returning
    assert returning.count("<svg") == 1
    attendance = page.attendance_section(event)
    assert "Mean days attended" in attendance and "visits per visitor" in attendance
    assert "6 days or more" in attendance


def test_overlap_matrix_is_symmetric_with_unique_visitors_on_the_diagonal(
    baseline_page: tuple[html.Page, queries.Event],
) -> None:
    page, event = baseline_page
    matrix = breakdowns.overlap_matrix(page.con, event)
    assert matrix.zones == ["area_a", "area_b"]
    assert matrix.pairs[("area_a", "area_b")] is matrix.pairs[("area_b", "area_a")]
    section = page.overlap_section(event)
    assert "the zone&#x27;s unique visitors" in section and section.count("<svg") == 1
    for zone in matrix.zones:
        assert svg.fmt_compact(matrix.unique[zone]["value"]) in section


def test_bar_chart_draws_negative_values_left_of_zero() -> None:
    chart = svg.bar_chart("t", [svg.Bar("up", 120, 80, 160), svg.Bar("down", -40, -90, 10)], "x")
    assert "-50" in chart or "\u221250" in chart or "-100" in chart  # the axis reaches below zero
    assert chart.count("<rect") == 2
