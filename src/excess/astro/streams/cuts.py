"""The published stream-search selection (GaiaCWoLa, arXiv:2305.03761; Via Machinae 2.0).

G < 20.2 (completeness), 0.5 <= BP-RP <= 1.0 (old metal-poor main-sequence turn-off and giant branch,
where streams stand out), total proper motion |mu| > 2 mas/yr (removes distant disk stars and
quasars), RUWE < 1.4 (good single-star astrometry), and the patch's disc of radius ``radius`` deg.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ...errors import ConfigError

__all__ = ["StreamCuts", "apply_cuts"]


@dataclass(frozen=True)
class StreamCuts:
    """Selection of a stream search (defaults: the published cuts)."""

    g_max: float = 20.2
    color_min: float = 0.5
    color_max: float = 1.0
    pm_min: float = 2.0
    ruwe_max: float = 1.4
    radius: float | None = None  # deg from the patch centre (needs phi/lam); None: no disc cut

    def __post_init__(self):
        if not self.color_min < self.color_max:
            raise ConfigError(f"cuts: color_min {self.color_min} must be < color_max {self.color_max}")
        if self.pm_min < 0 or self.ruwe_max <= 0:
            raise ConfigError(f"cuts: pm_min must be >= 0 and ruwe_max > 0, got {self.pm_min}, {self.ruwe_max}")

    def to_dict(self) -> dict:
        return asdict(self)

    def masks(self, stars: pd.DataFrame) -> dict[str, np.ndarray]:
        """One boolean mask per cut, in order (a cut flow)."""
        m = {
            "g": stars["phot_g_mean_mag"].to_numpy() < self.g_max,
            "color": (stars["bp_rp"].to_numpy() >= self.color_min) & (stars["bp_rp"].to_numpy() <= self.color_max),
            "pm": np.hypot(stars["pmra"].to_numpy(), stars["pmdec"].to_numpy()) > self.pm_min,
            "ruwe": stars["ruwe"].to_numpy() < self.ruwe_max,
        }
        if self.radius is not None:
            if "phi" not in stars or "lam" not in stars:
                raise ConfigError("cuts: a radius cut needs patch coordinates (phi, lam); see add_patch_coordinates")
            from .coords import _unit

            cosd = _unit(stars["phi"].to_numpy(), stars["lam"].to_numpy())[:, 0]
            m["radius"] = cosd > np.cos(np.radians(self.radius))
        return m


def apply_cuts(stars: pd.DataFrame, cuts: StreamCuts | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """The stars passing all cuts, and the cut flow (stars left after each cut in turn)."""
    cuts = cuts or StreamCuts()
    keep = np.ones(len(stars), bool)
    flow = {"all": int(len(stars))}
    for name, mask in cuts.masks(stars).items():
        keep &= mask
        flow[name] = int(keep.sum())
    return stars.loc[keep].reset_index(drop=True), flow
