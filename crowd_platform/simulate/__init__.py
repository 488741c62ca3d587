"""Synthetic H22 world: landing files for the pipeline plus the ground truth.

Public API::

    from crowd_platform.simulate import simulate_world, WorldConfig
    summary = simulate_world(landing_dir, truth_dir, scale=0.01, seed=42)

See docs/simulator.md.
"""

from .config import SEED_VISITS, WorldConfig
from .world import simulate_world

__all__ = ["SEED_VISITS", "WorldConfig", "simulate_world"]
