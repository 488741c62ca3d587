"""The one writer: partitions replaced in one transaction, new columns of a newer step added."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from crowd_platform.warehouse import DayRange, TableWrite, Warehouse, uses_spatial, write_tables

DAY = DayRange(dt.date(2022, 6, 1), dt.date(2022, 6, 1))


def test_a_column_added_by_a_newer_step_is_added_to_an_existing_table(tmp_path: Path) -> None:
    with Warehouse(database=str(tmp_path / "w.duckdb")).connect(spatial=False) as con:
        old = "SELECT DATE '2022-06-01' AS event_date, 1 AS visits"
        new = "SELECT DATE '2022-06-01' AS event_date, 2 AS visits, 0.5 AS share"
        write_tables(con, [TableWrite("marts.example", old)], DayRange(dt.date(2022, 5, 31), dt.date(2022, 5, 31)))
        write_tables(con, [TableWrite("marts.example", old)], DAY)
        write_tables(con, [TableWrite("marts.example", new)], DAY)
        rows = con.execute("SELECT event_date, visits, share FROM marts.example ORDER BY ALL").fetchall()
    assert rows == [(dt.date(2022, 6, 1), 2, 0.5)]  # the old day of 2022-06-01 was replaced


def test_a_failed_write_leaves_the_partition_as_it_was(tmp_path: Path) -> None:
    with Warehouse(database=str(tmp_path / "w.duckdb")).connect(spatial=False) as con:
        write_tables(con, [TableWrite("marts.example", "SELECT DATE '2022-06-01' AS event_date, 1 AS visits")], DAY)
        broken = "SELECT DATE '2022-06-01' AS event_date, CAST('x' AS INTEGER) AS visits"
        with pytest.raises(duckdb.ConversionException):
            write_tables(con, [TableWrite("marts.example", broken)], DAY)
        assert con.execute("SELECT visits FROM marts.example").fetchall() == [(1,)]


def test_spatial_steps_are_recognised() -> None:
    assert uses_spatial("SELECT ST_Area(geometry) FROM reference.zones")
    assert not uses_spatial("SELECT first_day, last_stay FROM core.stays")
