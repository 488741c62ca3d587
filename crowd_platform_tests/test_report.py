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
from crowd_platform.report import queries, svg
from crowd_platform.warehouse import Warehouse
from crowd_platform_tests.conftest import BuiltWorld

SECTIONS = ["headline", "daily", "hourly", "countries", "municipalities", "dwell"]
CHART_TITLES = [
    "Visitors per day in each main zone",
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


def test_report_is_self_contained(rendered: tuple[Path, dict[str, str]]) -> None:
    page = rendered[0].read_text(encoding="utf-8").lower()
    for forbidden in ('src="http', "src='http", 'href="http', "href='http", "<script", "@import", "url(http", "//cdn"):
        assert forbidden not in page, forbidden
    assert not re.search(r"<link[^>]+stylesheet", page)


def test_markdown_sections_for_dagster(rendered: tuple[Path, dict[str, str]]) -> None:
    sections = rendered[1]
    assert list(sections) == ["headline", "daily visitors per zone", "top countries", "top municipalities"]
    assert "| figure |" in sections["headline"] and "Unique visitors" in sections["headline"]
    assert "| date | Area A | Area B |" in sections["daily visitors per zone"]
    assert "2022-06-01" in sections["daily visitors per zone"]
    for text in sections.values():
        assert text.startswith("|") or text.startswith("Visitors per day")


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
        "is_visit BOOLEAN)"
    )
    con.executemany("INSERT INTO core.zone_visits VALUES ('2022-06-01', ?, 'a', ?, true)", rows)
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


def test_map_classes_and_ticks() -> None:
    assert svg.class_breaks([2_836, 670_617]) == [1_000, 10_000, 100_000, 1_000_000]
    assert svg.class_breaks([15, 80]) == [10, 20, 50, 100]
    assert svg.class_breaks([]) == []
    assert svg.nice_ticks(0, 37_930) == [0, 10_000, 20_000, 30_000, 40_000]
    assert svg.fmt_compact(1_250_000) == "1.25M"
