"""All parameters of the synthetic world in one documented dataclass.

Counts are given for ``scale = 1`` (the real world); the simulator multiplies the number of
people by ``scale``. Times of day are seconds after local midnight (Europe/Stockholm).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

#: The seed's figures: visits (distinct persons per zone per day with >= 20 min presence, summed
#: over the 35 expo days) per zone, at scale 1.
SEED_VISITS: dict[str, int] = {
    "city_slottshagen": 600_000,
    "oceanhamnen": 300_000,
    "drottninghog": 125_000,
    "magasin_405": 120_000,
    "havoteket": 30_000,
    "helsingborgsrummet": 14_000,
    "lagenheten_1972": 12_000,
    "the_sounds": 8_000,
}


@dataclass(frozen=True)
class WorldConfig:
    """Every knob of the synthetic H22 world, with the defaults used for the demo data."""

    # --- calendar ---------------------------------------------------------------------------
    #: first day of the simulated window (four baseline weeks before the expo)
    window_start: dt.date = dt.date(2022, 5, 2)
    #: last day of the simulated window (inclusive)
    window_end: dt.date = dt.date(2022, 7, 3)
    #: the expo, inclusive
    expo_start: dt.date = dt.date(2022, 5, 30)
    expo_end: dt.date = dt.date(2022, 7, 3)
    #: last school day; afterwards students are on summer holiday
    school_end: dt.date = dt.date(2022, 6, 10)
    #: public holidays / days off (national day, midsummer eve, midsummer day)
    holidays: tuple[dt.date, ...] = (
        dt.date(2022, 5, 26),
        dt.date(2022, 6, 6),
        dt.date(2022, 6, 24),
        dt.date(2022, 6, 25),
    )
    timezone: str = "Europe/Stockholm"

    # --- calibration targets ----------------------------------------------------------------
    #: visits per zone over the expo days at scale 1 (the seed's table)
    target_visits: dict[str, int] = field(default_factory=lambda: dict(SEED_VISITS))
    #: in baseline weeks the areas draw this fraction of the expo's average daily visits
    #: (ordinary city life); venues are closed before the expo
    baseline_area_factor: float = 0.45
    #: relative day weights of zone visits during the expo
    weekend_weight: float = 1.30
    holiday_weight: float = 1.15
    midsummer_eve_weight: float = 0.55
    opening_days_weight: float = 1.40  # first three expo days
    summer_holiday_weight: float = 1.10  # after school_end
    #: share of the day's zone-goers who go to City & Slottshagen (sets how many goers a day has)
    goer_city_share: float = 0.80

    # --- people -----------------------------------------------------------------------------
    #: population of Helsingborg (SCB 2021: about 149,000)
    helsingborg_population: int = 149_280
    #: population of Sweden used to scale the GeoNames-derived reference
    sweden_population: int = 10_452_000
    #: simulate every Swede (needed so that market shares can be measured against population)
    background_population: bool = True
    #: commuters into Helsingborg per neighbouring municipality (share of its residents)
    commuter_share: dict[str, float] = field(
        default_factory=lambda: {
            "1284": 0.13,
            "1292": 0.09,
            "1282": 0.07,
            "1277": 0.14,
            "1260": 0.13,
            "1214": 0.06,
            "1276": 0.05,
            "1231": 0.02,
            "1280": 0.01,
            "1281": 0.015,
            "1293": 0.03,
            "1257": 0.03,
        }
    )
    #: employed share of residents and students share
    employed_share: float = 0.52
    student_share: float = 0.16
    #: Helsingborg residents whose job is outside the municipality
    out_commuter_share: float = 0.12
    #: shares of Helsingborg residents living inside each area (the rest elsewhere in the city)
    home_share: dict[str, float] = field(
        default_factory=lambda: {"city_slottshagen": 0.026, "oceanhamnen": 0.005, "drottninghog": 0.014}
    )
    #: shares of workplaces (jobs in Helsingborg) inside each area
    work_share: dict[str, float] = field(
        default_factory=lambda: {"city_slottshagen": 0.07, "oceanhamnen": 0.02, "drottninghog": 0.006}
    )
    #: domestic visitor trips to Helsingborg at scale 1 over the whole window
    domestic_trips_expo: int = 135_000
    domestic_trips_baseline: int = 20_000
    #: gravity model: weight = population * exp(-distance_km / distance_decay_km)
    distance_decay_km: float = 60.0
    #: floor of the gravity weight relative to population (people come from far too)
    gravity_floor: float = 0.001
    #: international visitor persons at scale 1 (expo window) and in the baseline weeks
    international_persons_expo: int = 27_500
    international_persons_baseline: int = 5_000
    #: machine SIMs (meters, alarms, vehicles) in Helsingborg at scale 1
    machines: int = 12_000
    #: share of machine SIMs whose TAC is missing (the pipeline must detect them by behaviour)
    machine_no_tac_share: float = 0.35

    # --- market -----------------------------------------------------------------------------
    #: operator's average share of residents; it varies by municipality with this spread
    market_share_mean: float = 0.40
    market_share_sd: float = 0.05
    operator_mcc: str = "240"
    operator_mnc: str = "01"

    # --- signalling -------------------------------------------------------------------------
    #: periodic location update timer (T3212) in seconds, fired after that much idle time
    periodic_update_s: int = 54 * 60
    #: mean data bursts / calls / sms per active person and day
    data_bursts_per_day: float = 9.0
    events_per_burst: float = 3.0
    calls_per_day: float = 2.0
    sms_per_day: float = 1.5
    #: position sample interval while travelling (handover detection), seconds
    travel_sample_s: int = 90
    #: sparse profile of people far from Helsingborg on days they are not there:
    #: Poisson means of idle events at the home cell during the night (22-06) and the day
    sparse_night_events: float = 1.6
    sparse_day_events: float = 0.7
    #: share of phones switched off at night (no night events that night)
    phone_off_night_share: float = 0.04
    #: softmax temperature of cell choice at a fixed place (higher = more ping-pong)
    cell_choice_temperature: float = 0.8
    #: share of events without a TAC value
    missing_tac_share: float = 0.01

    # --- dirt (rates per event row) -----------------------------------------------------------
    dup_exact_rate: float = 0.004
    dup_other_cell_rate: float = 0.002
    teleport_rate: float = 0.0002
    malformed_imsi_rate: float = 0.0002
    unknown_cell_rate: float = 0.0005
    missing_time_rate: float = 0.0002
    late_delivery_rate: float = 0.015
    #: write one truncated Parquet file (see ``truncated_file_date``); switch off for clean demos
    truncated_file: bool = True
    truncated_file_date: dt.date = dt.date(2022, 6, 15)
    #: delivery days whose first part is written as gzipped CSV / plain CSV (day-of-year modulo)
    csv_gz_every_n_days: int = 7
    csv_plain_every_n_days: int = 29

    # --- output -----------------------------------------------------------------------------
    #: rows per landing file part
    part_rows: int = 3_000_000

    def scaled(self, n: float, scale: float) -> int:
        """Round a scale-1 count to the given scale."""
        return round(n * scale)
