"""Every methodology parameter in one place, with its default (DESIGN section 5).

`Methodology` is a Dagster resource, so a user overrides any value for a run from the launchpad
(`resources: methodology: config: ...`) without touching code; the CLI and tests build it with
keyword arguments. `docs/methodology.md` explains each value.
"""

from __future__ import annotations

import dagster as dg

METHODOLOGY_VERSION = "0.4"  # 0.2: intervals carry the attribution error; 0.3: inseparable zones, means, overlaps;
# 0.4: visits bridged through cells reaching into the zone, dwell per visitor-day


class Methodology(dg.ConfigurableResource):
    """Thresholds and defaults of cleaning, stays, visits, homes, extrapolation and disclosure."""

    # Ingest
    late_arrival_days: int = 1  # a delivery folder may hold events of this many earlier days
    # Machine SIMs without a machine TAC: one spot all day, active in most hours, regular timing
    machine_max_span_m: float = 1000.0
    machine_min_active_hours: int = 20
    machine_max_gap_cv: float = 0.1
    # Semantic cleaning: a teleport is this far from both neighbouring events, this fast
    jump_min_km: float = 10.0
    jump_min_speed_mps: float = 55.0  # about 200 km/h: faster than any train in the region
    # Stays
    stay_max_gap_min: float = 70.0  # idle devices update about every 54 min; longer gaps end a stay
    pingpong_max_min: float = 10.0  # an A-B-A flip shorter than this is noise, B is relabelled A
    # Zone attribution and visits
    zone_min_weight: float = 0.5  # a cell counts in a zone when this share of its coverage is in it
    small_cell_max_range_m: float = 200.0  # ... or when it is a small cell standing inside the zone
    visit_min_min: float = 20.0  # Telia's threshold for an "activity" (a visit)
    passerby_min_min: float = 5.0  # shorter presence is not reported at all
    # Time at cells that only reach into a zone, between two stretches at its counting cells, that does
    # not end a visit: as long as a silence may be (stay_max_gap_min). 0 = any such time ends it.
    visit_bridge_max_min: float = 70.0
    # Homes
    home_window_nights: int = 28
    home_min_nights: int = 7
    night_start_hour: int = 22
    night_end_hour: int = 6
    # Extrapolation
    default_roaming_share: float = 0.3  # for countries missing from roaming_shares.csv
    share_window_days: int = 28  # subscribers of a municipality: homed devices seen in this window
    default_national_share: float = 0.4  # only until the first homes are detected (first week)
    roaming_share_rel_se: float = 0.10  # delivered roaming shares are taken as +-10 % (1 s.e.)
    confidence_z: float = 1.96  # 95 % intervals
    # Zone attribution error (log scale, 1 s.d.), measured in a validation world other than the one
    # evaluated (docs/methodology.md, bench/attribution_error.py): intervals of zone counts are widened by
    # exp(+-z * sd) so that they say how far attribution can be off, not only sampling. 0 = sampling only.
    attribution_log_sd_area: float = 0.46
    attribution_log_sd_venue: float = 0.55
    # ... and of the event's means over persons (days attended, visits per visitor): the people that
    # attribution adds or misses attend on more or fewer days than the others, so it does not cancel.
    attribution_log_sd_mean: float = 0.25
    # Disclosure control
    min_group_devices: int = 10  # k: a published group needs at least this many distinct devices

    def sql_params(self) -> dict[str, float | int]:
        """The parameters as named SQL parameters ($visit_min_s, ...), in seconds where timed."""
        return {
            "late_arrival_days": self.late_arrival_days,
            "machine_max_span_m": self.machine_max_span_m,
            "machine_min_active_hours": self.machine_min_active_hours,
            "machine_max_gap_cv": self.machine_max_gap_cv,
            "jump_min_km": self.jump_min_km,
            "jump_min_speed_mps": self.jump_min_speed_mps,
            "stay_max_gap_s": self.stay_max_gap_min * 60,
            "pingpong_max_s": self.pingpong_max_min * 60,
            "zone_min_weight": self.zone_min_weight,
            "small_cell_max_range_m": self.small_cell_max_range_m,
            "visit_min_s": self.visit_min_min * 60,
            "passerby_min_s": self.passerby_min_min * 60,
            "visit_bridge_max_s": self.visit_bridge_max_min * 60,
            "home_window_nights": self.home_window_nights,
            "home_min_nights": self.home_min_nights,
            "night_start_hour": self.night_start_hour,
            "night_end_hour": self.night_end_hour,
            "default_roaming_share": self.default_roaming_share,
            "share_window_days": self.share_window_days,
            "default_national_share": self.default_national_share,
            "roaming_share_rel_se": self.roaming_share_rel_se,
            "z": self.confidence_z,
            "attribution_log_sd_area": self.attribution_log_sd_area,
            "attribution_log_sd_venue": self.attribution_log_sd_venue,
            "attribution_log_sd_mean": self.attribution_log_sd_mean,
            "k": self.min_group_devices,
        }
