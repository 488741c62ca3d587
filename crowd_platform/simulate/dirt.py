"""Dirt: the defects of a real probe feed, injected at documented rates and counted.

Applied to one local day's events before they are written. Every kind is counted in the
truth (``dirt.parquet``). Rates are per clean event row (see ``WorldConfig``).

- ``dup_exact``: an identical copy of a row;
- ``dup_other_cell``: a copy at the same second in a neighbouring cell;
- ``teleport``: the row's cell replaced by a cell far away (a ghost reading);
- ``malformed_imsi``: the IMSI replaced by a malformed value (too short/long, letters, empty);
- ``unknown_cell``: the cell id replaced by one that is not in the cell table;
- ``missing_time``: the time is null (Parquet) or empty (CSV);
- ``late``: the row is delivered in the next day's folder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import WorldConfig

MALFORMED_IMSIS = ("24001123456", "2400112345678901234", "24001ABC4567890", "", "24O01O23456789", "-24001234567890")
UNKNOWN_CELLS = (*tuple(f"240-01-{99000 + i}-1" for i in range(20)), "", "240-01-UNKNOWN")


@dataclass
class Batch:
    """Rows ready to write; indices into the writer's string tables."""

    imsi: np.ndarray  # int64 index into the IMSI table (persons, then MALFORMED_IMSIS)
    cell: np.ndarray  # int32 index into the cell table (cells, then UNKNOWN_CELLS)
    etype: np.ndarray  # int8
    us: np.ndarray  # int64 UTC microseconds
    has_time: np.ndarray  # bool
    tac: np.ndarray  # int16 index into TACS, -1 = null

    def take(self, idx: np.ndarray) -> Batch:
        return Batch(self.imsi[idx], self.cell[idx], self.etype[idx], self.us[idx], self.has_time[idx], self.tac[idx])

    @staticmethod
    def concat(parts: list[Batch]) -> Batch:
        return Batch(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("imsi", "cell", "etype", "us", "has_time", "tac")
            )
        )

    def __len__(self) -> int:
        return len(self.us)


def inject(
    b: Batch,
    cfg: WorldConfig,
    n_persons: int,
    n_cells: int,
    neighbours: np.ndarray,
    far_cells: np.ndarray,
    rng: np.random.Generator,
) -> tuple[Batch, Batch, dict[str, int]]:
    """Return (rows for today's folder, late rows for tomorrow's folder, counts)."""
    n = len(b)
    counts: dict[str, int] = {}

    def pick(rate: float) -> np.ndarray:
        k = rng.binomial(n, rate) if n else 0
        return np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, np.int64)

    dup = pick(cfg.dup_exact_rate)
    other = pick(cfg.dup_other_cell_rate)
    tele = pick(cfg.teleport_rate)
    bad_imsi = pick(cfg.malformed_imsi_rate)
    unk = pick(cfg.unknown_cell_rate)
    no_time = pick(cfg.missing_time_rate)
    counts["dup_exact"] = len(dup)
    counts["dup_other_cell"] = len(other)
    extra_dup = b.take(dup)
    extra_other = b.take(other)
    extra_other.cell = neighbours[extra_other.cell, rng.integers(0, neighbours.shape[1], len(other))]
    b = Batch(b.imsi.copy(), b.cell.copy(), b.etype, b.us, b.has_time.copy(), b.tac)
    b.cell[tele] = far_cells[rng.integers(0, len(far_cells), len(tele))]
    b.imsi[bad_imsi] = n_persons + rng.integers(0, len(MALFORMED_IMSIS), len(bad_imsi))
    b.cell[unk] = n_cells + rng.integers(0, len(UNKNOWN_CELLS), len(unk))
    b.has_time[no_time] = False
    counts["teleport"] = len(tele)
    counts["malformed_imsi"] = len(bad_imsi)
    counts["unknown_cell"] = len(unk)
    counts["missing_time"] = len(no_time)
    out = Batch.concat([b, extra_dup, extra_other])
    late = rng.random(len(out)) < cfg.late_delivery_rate
    late &= out.has_time  # a row without time cannot be "late"
    counts["late"] = int(late.sum())
    return out.take(np.flatnonzero(~late)), out.take(np.flatnonzero(late)), counts
