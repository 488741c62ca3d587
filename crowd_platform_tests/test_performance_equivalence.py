"""The speed-ups of docs/performance.md compute what the plain definitions compute.

- pseudonyms: HMAC-SHA256 from prepared pad states (Python) and in DuckDB SQL equal `hmac.new`,
  for every key length;
- the ingest's local date by comparison with local midnights equals DuckDB's cast, on the days
  the clocks change too;
- core.stays, found in one window pass, equals the stay rules applied step by step in Python
  (smoothing, breaks, midpoint bounds) on random event sequences with ping-pong, gaps and ties.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random

import duckdb
import pytest

from crowd_platform.defs.staging.ingest import _local_date_expression
from crowd_platform.methodology import Methodology
from crowd_platform.pseudonym import DEVICE_KEY_HEX_CHARS, DEVICE_KEY_SQL, device_key_sql_params, pseudonymise
from crowd_platform.warehouse import bind, load_sql


@pytest.mark.parametrize("key_length", [16, 63, 64, 65, 200])
def test_pseudonyms_are_hmac_sha256(key_length: int) -> None:
    generator = random.Random(key_length)
    key = bytes(generator.randrange(256) for _ in range(key_length))
    identities = [
        "",
        "240011234567890",
        "31041012345678",
        "ä-not-an-imsi",
        *(str(generator.random()) for _ in range(50)),
    ]
    expected = [hmac.new(key, i.encode(), hashlib.sha256).hexdigest()[:DEVICE_KEY_HEX_CHARS] for i in identities]
    assert pseudonymise(key, identities) == expected
    in_sql = duckdb.connect().execute(
        f"SELECT {DEVICE_KEY_SQL} FROM unnest(CAST($identities AS VARCHAR[])) WITH ORDINALITY AS t(imsi, n) ORDER BY n",
        {**device_key_sql_params(key), "identities": identities},
    )
    assert [row[0] for row in in_sql.fetchall()] == expected


@pytest.mark.parametrize(
    "delivery", [dt.date(2022, 6, 2), dt.date(2022, 3, 27), dt.date(2022, 3, 28), dt.date(2022, 10, 31)]
)
def test_local_date_by_midnights_equals_the_cast(delivery: dt.date) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Europe/Stockholm'")
    expression = _local_date_expression(con, delivery)
    assert expression.startswith("CASE")  # the fast path, not the fallback
    # Every 7 minutes and 13 seconds over five days around the delivery, plus exact midnights.
    mismatches = con.execute(
        f"""
        WITH times AS (
            SELECT unnest(range(CAST($start AS TIMESTAMPTZ), CAST($end AS TIMESTAMPTZ), INTERVAL 433 SECOND))
                AS event_time
            UNION ALL SELECT CAST($start AS TIMESTAMPTZ) + INTERVAL (d) DAY FROM range(5) AS r(d)
            UNION ALL SELECT CAST(NULL AS TIMESTAMPTZ)
        )
        SELECT count(*) FROM times WHERE ({expression}) IS DISTINCT FROM CAST(event_time AS DATE)
        """,
        {"start": delivery - dt.timedelta(days=3), "end": delivery + dt.timedelta(days=3)},
    ).fetchone()
    assert mismatches == (0,)


def _stays_step_by_step(events: list[tuple[str, int, str]], day_start: int, day_end: int, m: Methodology) -> list:
    """The stay rules of sql/core/stays.sql, one step after another, for one target day."""
    pingpong, gap = m.pingpong_max_min * 60 * 1e6, m.stay_max_gap_min * 60 * 1e6
    stays = []
    for device in sorted({d for d, _, _ in events}):
        rows = sorted((t, c) for d, t, c in events if d == device)
        places = []
        for i, (_, cell) in enumerate(rows):
            before = rows[i - 1] if i > 0 else None
            after = rows[i + 1] if i + 1 < len(rows) else None
            flip = before and after and before[1] == after[1] and cell != before[1] and after[0] - before[0] <= pingpong
            places.append(before[1] if flip else cell)
        runs: list[list] = []  # [place, first_us, last_us, n]
        for i, ((t, _), place) in enumerate(zip(rows, places, strict=True)):
            if i == 0 or places[i - 1] != place or t - rows[i - 1][0] > gap:
                runs.append([place, t, t, 0])
            runs[-1][2] = t
            runs[-1][3] += 1
        for i, (place, first, last, n) in enumerate(runs):
            start, end = first, last
            if i > 0 and first - runs[i - 1][2] <= gap:
                start = (runs[i - 1][2] + first) // 2
            if i + 1 < len(runs) and runs[i + 1][1] - last <= gap:
                end = (last + runs[i + 1][1]) // 2
            if day_start <= start < day_end:
                stays.append((device, start, end, (end - start) / 1e6, place, n))
    return sorted(stays)


@pytest.mark.parametrize(
    "methodology",
    # the defaults, and longer limits: how much of the day before a stay needs grows with them
    [
        Methodology(),
        Methodology(stay_max_gap_min=150, pingpong_max_min=20),
        Methodology(stay_max_gap_min=10, pingpong_max_min=30),
    ],
    ids=["defaults", "longer_limits", "pingpong_over_gap"],
)
def test_stays_in_one_window_pass_equal_the_rules_step_by_step(methodology: Methodology) -> None:
    generator = random.Random(7)
    day = dt.date(2022, 6, 2)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Europe/Stockholm'")
    window_start, day_start, day_end, window_end = (
        con.execute(f"SELECT epoch_us(CAST(DATE '{day + dt.timedelta(days=offset)}' AS TIMESTAMPTZ))").fetchone()[0]  # type: ignore[index]
        for offset in (-1, 0, 1, 2)
    )
    steps_s = [0, 20, 90, 240, 500, 900, 3000, 4300, 5000]  # ties, ping-pong windows, gaps around the limit
    events = []
    for device_number in range(120):
        # a quarter start just before the day, where the day before's last minutes decide the first stay,
        # and a quarter just before its end, where the day after counts only for devices seen on both sides
        t = day_start - 86_400_000_000 + generator.randrange(3 * 86_400) * 1_000_000
        if 60 <= device_number < 90:
            t = day_start - generator.randrange(3 * 3_600) * 1_000_000
        elif device_number >= 90:
            t = day_end - generator.randrange(3 * 3_600) * 1_000_000
        for _ in range(generator.randrange(1, 40)):
            t += generator.choice(steps_s) * 1_000_000
            events.append((f"device-{device_number:02d}", t, generator.choice("AAABBC")))
    # Same time, other cell: core.event_flags removes those before the stays; leave one of each.
    # Same time, same cell (another event type) stays: a few such ties.
    events = list({(d, t): (d, t, c) for d, t, c in events}.values())
    events += generator.sample(events, 40)
    # A flip to B late in the day whose return to A comes after midnight: past the gap limit of B but
    # within the ping-pong limit of the A before it (smoothed only when that limit is the longer one).
    minute = 60_000_000
    events += [("device-flip", day_end - 20 * minute, "A"), ("device-flip", day_end - 12 * minute, "B")]
    events += [("device-flip", day_end + 2 * minute, "A")]
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE SCHEMA core")
    con.execute(
        "CREATE TABLE staging.events (event_date DATE, device_key VARCHAR, event_time TIMESTAMPTZ, cell_id VARCHAR)"
    )
    con.executemany(
        "INSERT INTO staging.events SELECT CAST(make_timestamptz(?) AS DATE), ?, make_timestamptz(?), ?",
        [[t, d, t, c] for d, t, c in events],
    )
    con.execute("CREATE TABLE core.event_flags (device_key VARCHAR, event_time TIMESTAMPTZ, cell_id VARCHAR)")
    query = load_sql("core/stays")
    params = {**methodology.sql_params(), "first_day": day, "last_day": day}
    found = con.execute(
        f"SELECT device_key, epoch_us(stay_start), epoch_us(stay_end), duration_s, place, n_events FROM ({query}) "
        "ORDER BY ALL",
        bind(query, params),
    ).fetchall()
    in_window = [(d, t, c) for d, t, c in events if window_start <= t < window_end]  # local days D - 1 .. D + 1
    expected = _stays_step_by_step(in_window, day_start, day_end, methodology)
    assert len(expected) > 100
    assert found == expected
