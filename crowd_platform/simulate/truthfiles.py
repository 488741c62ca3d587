"""Writes the ground truth (never read by the pipeline) and the world manifest.

Files under ``truth_dir`` (all Parquet unless noted; see docs/simulator.md for the columns):
``manifest.json``, ``persons.parquet``, ``presence/date=*/part-0.parquet``,
``visits/date=*/part-0.parquet``, ``zone_daily.parquet``, ``origin_country_daily.parquet``,
``home_municipality_daily.parquet``, ``market_shares_municipality.parquet``,
``market_shares_country.parquet``, ``event_kpis.parquet``, ``dirt.parquet``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa

from .config import WorldConfig
from .geography import HOST_CODE, Geography
from .population import COUNTRIES, COUNTRY_ISO2, MACHINE, Population, persons_frame
from .schedules import DayInfo, Plan
from .zones import AREA_IDS, AREAS, ZONE_IDS

VISITOR_CLASS = ("resident", "domestic_visitor", "international_visitor")
BASELINE_DAYS = 28  # the baseline weeks before the expo, as the pipeline's KPIs use them (docs/publication.md)
DAYS_ATTENDED = (("1", 1, 1), ("2", 2, 2), ("3-5", 3, 5), ("6+", 6, 10_000))  # category, fewest, most days
KPI_COLUMNS = ("event_id", "metric", "zone_id", "other_zone_id", "category", "value", "value_subscribers", "note")


class TruthWriter:
    def __init__(self, root: Path, cfg: WorldConfig, geo: Geography, pop: Population, scale: float):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.cfg, self.geo, self.pop, self.scale = cfg, geo, pop, scale
        codes = geo.munis["code"].to_list()
        self.codes = np.array(codes, dtype=object)
        host = codes.index(HOST_CODE)
        self.vclass = np.where(pop.country > 0, 2, np.where(pop.muni == host, 0, 1)).astype(np.int8)
        human = pop.cls != MACHINE
        # true market shares: operator's subscribers / simulated persons
        se = human & (pop.country == 0)
        n_m = np.bincount(pop.muni[se], minlength=len(codes))
        s_m = np.bincount(pop.muni[se], weights=pop.subscriber[se], minlength=len(codes))
        self.muni_persons, self.muni_subs = n_m, s_m
        self.share_muni = np.where(n_m > 0, s_m / np.maximum(n_m, 1), np.nan)
        intl = human & (pop.country > 0)
        n_c = np.bincount(pop.country[intl], minlength=len(COUNTRY_ISO2))
        s_c = np.bincount(pop.country[intl], weights=pop.subscriber[intl], minlength=len(COUNTRY_ISO2))
        self.country_persons, self.country_subs = n_c, s_c
        self.share_country = np.where(n_c > 0, s_c / np.maximum(n_c, 1), np.nan)
        # per-person weight of the oracle: 1 / true share of the person's group
        share = np.where(pop.country > 0, self.share_country[pop.country], self.share_muni[np.maximum(pop.muni, 0)])
        self.oracle_w = np.where(pop.subscriber & (share > 0), 1.0 / np.where(share > 0, share, 1), 0.0)
        self.zone_daily: list[pl.DataFrame] = []
        self.country_daily: list[pl.DataFrame] = []
        self.muni_daily: list[pl.DataFrame] = []
        self.dirt: list[dict] = []
        self.event_visitor = np.zeros(pop.n, bool)
        self.event_visitor_sub = np.zeros(pop.n, bool)
        self.event_dwell: list[np.ndarray] = []
        # Per person over the expo: the zones visited, the days in the main areas; and the baseline weeks.
        self.event_zones = np.zeros((pop.n, len(ZONE_IDS)), bool)
        self.event_area_days = np.zeros(pop.n, np.int16)
        self.baseline_area_visitor = np.zeros(pop.n, bool)

    def _attrs(self, person: np.ndarray) -> dict[str, np.ndarray]:
        pop = self.pop
        muni = pop.muni[person]
        home = np.where((pop.country[person] == 0) & (muni >= 0), self.codes[np.maximum(muni, 0)], None)
        return {
            "is_subscriber": pop.subscriber[person],
            "visitor_class": np.array(VISITOR_CLASS, dtype=object)[self.vclass[person]],
            "origin_country": np.array(COUNTRY_ISO2, dtype=object)[pop.country[person]],
            "home_municipality": home,
        }

    def add_day(
        self, day: DayInfo, plan: Plan, intervals: pl.DataFrame, visits: pl.DataFrame, target: np.ndarray
    ) -> np.ndarray:
        d = day.date
        base_us = int(dt.datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(self.cfg.timezone)).timestamp()) * 1_000_000
        zone_names = pl.Series(list(ZONE_IDS))

        def ts(col: str) -> pl.Expr:
            return pl.from_epoch(pl.col(col).cast(pl.Int64) * 1_000_000 + base_us, "us").dt.replace_time_zone("UTC")

        pres = intervals.select(
            pl.lit(d).alias("event_date"),
            pl.col("person").alias("person_id"),
            pl.col("zone").map_batches(lambda s: zone_names.gather(s.cast(pl.UInt32))).alias("zone_id"),
            ts("start_s").alias("start"),
            ts("end_s").alias("end"),
            (pl.col("end_s") - pl.col("start_s")).alias("duration_s"),
        )
        _write(pres, self.root / "presence" / f"date={d.isoformat()}" / "part-0.parquet")
        person = visits["person"].to_numpy()
        zone = visits["zone"].to_numpy().astype(np.int64)
        a = self._attrs(person)
        v = visits.select(
            pl.lit(d).alias("event_date"),
            pl.col("person").alias("person_id"),
            pl.col("zone").map_batches(lambda s: zone_names.gather(s.cast(pl.UInt32))).alias("zone_id"),
            ts("start_s").alias("visit_start"),
            ts("end_s").alias("visit_end"),
            pl.col("dwell_s"),
        ).with_columns(
            pl.Series("imsi", self.pop.imsi.take(pa.array(person)), dtype=pl.String),
            pl.Series("is_subscriber", a["is_subscriber"]),
            pl.Series("visitor_class", a["visitor_class"], dtype=pl.String),
            pl.Series("origin_country", a["origin_country"], dtype=pl.String),
            pl.Series("home_municipality", a["home_municipality"], dtype=pl.String),
        )
        _write(v, self.root / "visits" / f"date={d.isoformat()}" / "part-0.parquet")

        nz = len(ZONE_IDS)
        sub = a["is_subscriber"]
        cnt = np.bincount(zone, minlength=nz)
        cnt_sub = np.bincount(zone, weights=sub, minlength=nz).astype(np.int64)
        oracle = np.bincount(zone, weights=self.oracle_w[person], minlength=nz)
        by_class = [np.bincount(zone[self.vclass[person] == c], minlength=nz) for c in range(3)]
        dwell = visits["dwell_s"].to_numpy()
        med = [float(np.median(dwell[zone == z]) / 60) if (zone == z).any() else None for z in range(nz)]
        self.zone_daily.append(
            pl.DataFrame(
                {
                    "event_date": [d] * nz,
                    "zone_id": list(ZONE_IDS),
                    "is_expo_day": [day.is_expo] * nz,
                    "visitors": cnt,
                    "visitors_subscribers": cnt_sub,
                    "visitors_resident": by_class[0],
                    "visitors_domestic": by_class[1],
                    "visitors_international": by_class[2],
                    "visitors_oracle": oracle,
                    "oracle_rel_error": np.where(cnt > 0, oracle / np.maximum(cnt, 1) - 1.0, np.nan),
                    "median_dwell_min": med,
                    "target": np.round(target, 1),
                },
                schema_overrides={"median_dwell_min": pl.Float64},
            )
        )
        grp = v.select("zone_id", "origin_country", "home_municipality", "is_subscriber")
        self.country_daily.append(
            grp.group_by("zone_id", "origin_country")
            .agg(pl.len().alias("visitors"), pl.col("is_subscriber").sum().alias("visitors_subscribers"))
            .rename({"origin_country": "country_iso2"})
            .with_columns(pl.lit(d).alias("event_date"))
        )
        self.muni_daily.append(
            grp.filter(pl.col("home_municipality").is_not_null())
            .group_by("zone_id", "home_municipality")
            .agg(pl.len().alias("visitors"), pl.col("is_subscriber").sum().alias("visitors_subscribers"))
            .rename({"home_municipality": "municipality_code"})
            .with_columns(pl.lit(d).alias("event_date"))
        )
        in_area = zone < len(AREAS)
        if day.is_expo:
            self.event_visitor[person] = True
            self.event_visitor_sub[person[sub]] = True
            self.event_dwell.append(dwell[in_area])
            self.event_zones[person, zone] = True
            self.event_area_days[np.unique(person[in_area])] += 1
        elif self.cfg.expo_start - dt.timedelta(days=BASELINE_DAYS) <= d < self.cfg.expo_start:
            self.baseline_area_visitor[person[in_area]] = True
        return cnt

    def add_dirt(self, d: dt.date, counts: dict[str, int], clean_rows: int) -> None:
        self.dirt.append({"event_date": d, "clean_rows": clean_rows, **counts})

    def finish(self, summary: dict, config: dict, version: str) -> None:
        pop, root = self.pop, self.root
        _write(persons_frame(pop, self.geo), root / "persons.parquet")
        munis = self.geo.munis
        _write(
            pl.DataFrame(
                {
                    "municipality_code": munis["code"],
                    "name": munis["name"],
                    "population_reference": munis["population"],
                    "persons": self.muni_persons,
                    "subscribers": self.muni_subs.astype(np.int64),
                    "share": self.share_muni,
                    "share_drawn": pop.share_by_muni,
                }
            ),
            root / "market_shares_municipality.parquet",
        )
        cfg_share = {c[0]: c[4] for c in COUNTRIES}
        _write(
            pl.DataFrame(
                {
                    "country_iso2": list(COUNTRY_ISO2[1:]),
                    "persons": self.country_persons[1:],
                    "subscribers": self.country_subs[1:].astype(np.int64),
                    "share": self.share_country[1:],
                    "share_configured": [cfg_share[c] for c in COUNTRY_ISO2[1:]],
                }
            ),
            root / "market_shares_country.parquet",
        )
        zd = pl.concat(self.zone_daily) if self.zone_daily else pl.DataFrame()
        _write(zd, root / "zone_daily.parquet")
        cd = (
            pl.concat(self.country_daily)
            .select("event_date", "zone_id", "country_iso2", "visitors", "visitors_subscribers")
            .sort("event_date", "zone_id", "country_iso2")
        )
        _write(cd, root / "origin_country_daily.parquet")
        md = (
            pl.concat(self.muni_daily)
            .select(
                "event_date",
                "zone_id",
                "municipality_code",
                "visitors",
                "visitors_subscribers",
            )
            .sort("event_date", "zone_id", "municipality_code")
        )
        _write(md, root / "home_municipality_daily.parquet")
        kpis = self._kpis(zd, cd, md)
        _write(kpis, root / "event_kpis.parquet")
        dirt = pl.DataFrame(self.dirt) if self.dirt else pl.DataFrame()
        _write(dirt, root / "dirt.parquet")
        manifest = {
            "simulator_version": version,
            "summary": summary,
            "config": config,
            "dirt_totals": {k: int(dirt[k].sum()) for k in dirt.columns if k != "event_date"} if self.dirt else {},
            "kpis": {
                "/".join(part for part in (r["metric"], r["zone_id"], r["other_zone_id"], r["category"]) if part): r[
                    "value"
                ]
                for r in kpis.iter_rows(named=True)
            },
        }
        (root / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str) + "\n", encoding="utf-8")

    def _kpis(self, zd: pl.DataFrame, cd: pl.DataFrame, md: pl.DataFrame) -> pl.DataFrame:
        rows: list[tuple[str, str, float | None, float | None]] = []
        if zd.height == 0:
            return pl.DataFrame(schema={c: pl.Float64 if c.startswith("value") else pl.String for c in KPI_COLUMNS})
        e = zd.filter(pl.col("is_expo_day"))
        per_zone = e.group_by("zone_id").agg(pl.col("visitors").sum(), pl.col("visitors_subscribers").sum())
        pz = {r["zone_id"]: r for r in per_zone.iter_rows(named=True)}
        for z in ZONE_IDS:
            r = pz.get(z, {"visitors": 0, "visitors_subscribers": 0})
            rows.append(("visits", z, float(r["visitors"]), float(r["visitors_subscribers"])))
        tot = sum(pz.get(z, {"visitors": 0})["visitors"] for z in AREA_IDS)
        tot_s = sum(pz.get(z, {"visitors_subscribers": 0})["visitors_subscribers"] for z in AREA_IDS)
        rows.append(("visits", "", float(tot), float(tot_s)))
        ev = self.event_visitor
        rows.append(("unique_visitors", "", float(ev.sum()), float(self.event_visitor_sub.sum())))
        pop = self.pop
        intl = ev & (pop.country > 0)
        rows.append(
            (
                "international_share",
                "",
                float(intl.sum() / max(ev.sum(), 1)),
                float((self.event_visitor_sub & (pop.country > 0)).sum() / max(self.event_visitor_sub.sum(), 1)),
            )
        )
        # distinct persons per country over the event (any zone)
        c_all = np.bincount(pop.country[ev], minlength=len(COUNTRY_ISO2))
        c_sub = np.bincount(pop.country[self.event_visitor_sub], minlength=len(COUNTRY_ISO2))
        rows.append(("countries", "", float((c_all > 0).sum()), float((c_sub > 0).sum())))
        rows.append(("countries_foreign", "", float((c_all[1:] > 0).sum()), float((c_sub[1:] > 0).sum())))
        rows.append(("countries_k10", "", float((c_all >= 10).sum()), float((c_sub >= 10).sum())))
        dom = ev & (pop.country == 0) & (pop.cls != MACHINE)
        dom_s = self.event_visitor_sub & (pop.country == 0) & (pop.cls != MACHINE)
        m_all = np.bincount(pop.muni[dom], minlength=len(self.codes))
        m_sub = np.bincount(pop.muni[dom_s], minlength=len(self.codes))
        rows.append(("municipalities", "", float((m_all > 0).sum()), float((m_sub > 0).sum())))
        rows.append(("municipalities_k10", "", float((m_all >= 10).sum()), float((m_sub >= 10).sum())))
        dw = np.concatenate(self.event_dwell) if self.event_dwell else np.zeros(0)
        rows.append(("median_dwell_min", "", float(np.median(dw) / 60) if len(dw) else None, None))
        areas = (
            e.filter(pl.col("zone_id").is_in(list(AREA_IDS)))
            .group_by("event_date")
            .agg(pl.col("visitors").sum())
            .sort("visitors", "event_date", descending=[True, False])
        )
        peak = areas["event_date"][0] if areas.height else None
        rows.append(("peak_day_visits", "", float(areas["visitors"][0]) if areas.height else None, None))
        out = pl.DataFrame(rows, schema=["metric", "zone_id", "value", "value_subscribers"], orient="row")
        out = out.with_columns(
            pl.lit("h22").alias("event_id"), pl.lit("").alias("other_zone_id"), pl.lit("").alias("category")
        )
        # the peak day's date is kept in ``note`` (value = its total visits over the main areas)
        note = peak.isoformat() if peak is not None else None
        out = out.with_columns(
            pl.when(pl.col("metric") == "peak_day_visits")
            .then(pl.lit(note))
            .otherwise(None)
            .cast(pl.String)
            .alias("note")
        )
        return pl.concat([out.select(KPI_COLUMNS), self._person_kpis(), self._uplift(zd)])

    def _person_kpis(self) -> pl.DataFrame:
        """Unique visitors per zone, the zone-overlap matrix, days attended and visits per visitor, first-time
        vs returning: truth of the KPIs of docs/publication.md (computed from the truth only; no draws)."""
        pop, zones = self.pop, self.event_zones
        sub = pop.subscriber.astype(bool)
        rows: list[tuple[str, str, str, str, float, float]] = []
        for z, zone_id in enumerate(ZONE_IDS):
            visitors = zones[:, z]
            rows.append(("unique_visitors", zone_id, "", "", float(visitors.sum()), float((visitors & sub).sum())))
            for o in range(len(ZONE_IDS)):
                other = ZONE_IDS[o]
                if zone_id < other:  # each pair once, in the pipeline's order
                    both = visitors & zones[:, o]
                    rows.append(("zone_overlap", zone_id, other, "", float(both.sum()), float((both & sub).sum())))
        days = self.event_area_days
        attendees = days > 0
        for category, fewest, most in DAYS_ATTENDED:
            group = (days >= fewest) & (days <= most)
            rows.append(("days_attended", "", "", category, float(group.sum()), float((group & sub).sum())))
        n_all, n_sub = max(int(attendees.sum()), 1), max(int((attendees & sub).sum()), 1)
        rows.append(
            (
                "days_attended_mean",
                "",
                "",
                "",
                float(days[attendees].sum() / n_all),
                float(days[attendees & sub].sum() / n_sub),
            )
        )
        returning = attendees & self.baseline_area_visitor
        first_time = attendees & ~self.baseline_area_visitor
        rows.append(("returning_visitors", "", "", "", float(returning.sum()), float((returning & sub).sum())))
        rows.append(("first_time_visitors", "", "", "", float(first_time.sum()), float((first_time & sub).sum())))
        out = pl.DataFrame(
            rows, schema=["metric", "zone_id", "other_zone_id", "category", "value", "value_subscribers"], orient="row"
        )
        return out.with_columns(pl.lit("h22").alias("event_id"), pl.lit(None, pl.String).alias("note")).select(
            KPI_COLUMNS
        )

    def _uplift(self, zd: pl.DataFrame) -> pl.DataFrame:
        """Uplift of each main area (and in total): visitors on the expo days minus, for each expo day, the
        mean of the same weekday in the baseline weeks; and visits per visitor over the main areas."""
        start = self.cfg.expo_start
        areas = zd.filter(pl.col("zone_id").is_in(list(AREA_IDS))).with_columns(
            pl.col("event_date").dt.weekday().alias("weekday")
        )
        baseline = areas.filter(
            pl.col("event_date").is_between(start - dt.timedelta(days=BASELINE_DAYS), start - dt.timedelta(days=1))
        )
        expo = areas.filter(pl.col("is_expo_day"))
        rows: list[tuple[str, str, float | None, float | None]] = []
        if baseline.height and expo.height:
            normal = baseline.group_by("zone_id", "weekday").agg(
                pl.col("visitors").mean().alias("normal"), pl.col("visitors_subscribers").mean().alias("normal_s")
            )
            joined = expo.join(normal, on=["zone_id", "weekday"], how="left")
            if joined["normal"].null_count() == 0:  # every expo weekday has baseline days
                per_zone = joined.group_by("zone_id").agg(
                    (pl.col("visitors") - pl.col("normal")).sum().alias("uplift"),
                    (pl.col("visitors_subscribers") - pl.col("normal_s")).sum().alias("uplift_s"),
                )
                for r in per_zone.sort("zone_id").iter_rows(named=True):
                    rows.append(("uplift", r["zone_id"], float(r["uplift"]), float(r["uplift_s"])))
                rows.append(("uplift", "", float(per_zone["uplift"].sum()), float(per_zone["uplift_s"].sum())))
        attendees = self.event_area_days > 0
        sub = self.pop.subscriber.astype(bool)
        rows.append(
            (
                "visits_per_visitor",
                "",
                float(expo["visitors"].sum() / max(int(attendees.sum()), 1)),
                float(expo["visitors_subscribers"].sum() / max(int((attendees & sub).sum()), 1)),
            )
        )
        out = pl.DataFrame(rows, schema=["metric", "zone_id", "value", "value_subscribers"], orient="row")
        return out.with_columns(
            pl.lit("h22").alias("event_id"),
            pl.lit("").alias("other_zone_id"),
            pl.lit("").alias("category"),
            pl.lit(None, pl.String).alias("note"),
        ).select(KPI_COLUMNS)


def _write(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path, compression="zstd")


__all__ = ["AREAS", "TruthWriter"]
