"""Signal-region / sideband windows in mjj and the binning used to fit them.

A :class:`Window` is a signal region ``[sr_lo, sr_hi)`` with sidebands ``[sb_lo, sr_lo)`` and
``[sr_hi, sb_hi)`` on each side; the whole ``[sb_lo, sb_hi)`` is the fit range.
:func:`sliding_windows` builds the default scan: signal regions of ``width`` GeV every ``step``
GeV, anchored so that the LHCO R&D signal region 3.3-3.7 TeV is one of them, kept where both
sidebands lie inside the data range. :func:`default_data_range` starts the data range above the
trigger turn-on (where the mjj spectrum peaks) and ends it at a high quantile, so the smoothly
falling dijet functions apply.

Example
-------
>>> from excess.stats.windows import sliding_windows
>>> ws = sliding_windows(data_range=(2600, 5000))
>>> [w.label for w in ws][:2]
['SR 3100-3500', 'SR 3300-3700']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["LHCO_SR", "Window", "sliding_windows", "default_data_range", "validate_windows"]

LHCO_SR = (3300.0, 3700.0)
"""The signal region of the LHC Olympics 2020 R&D data set (GeV)."""


@dataclass(frozen=True)
class Window:
    """One signal region with its sidebands (GeV), and the bin width of its mjj histogram."""

    sr_lo: float
    sr_hi: float
    sb_lo: float
    sb_hi: float
    bin_width: float = 50.0

    def __post_init__(self):
        vals = (self.sr_lo, self.sr_hi, self.sb_lo, self.sb_hi, self.bin_width)
        if not all(np.isfinite(v) for v in vals):
            raise ConfigError(f"window edges must be finite, got {vals}")
        if not (self.sb_lo < self.sr_lo < self.sr_hi < self.sb_hi):
            raise ConfigError(
                f"window needs sb_lo < sr_lo < sr_hi < sb_hi, got {self.sb_lo}, {self.sr_lo}, {self.sr_hi}, {self.sb_hi}"
            )
        if self.bin_width <= 0:
            raise ConfigError(f"bin_width must be > 0, got {self.bin_width}")

    @classmethod
    def around(cls, sr: tuple[float, float], sideband_width: float = 500.0, bin_width: float = 50.0) -> Window:
        """A window with sidebands of ``sideband_width`` GeV on each side of ``sr``."""
        lo, hi = map(float, sr)
        return cls(lo, hi, lo - float(sideband_width), hi + float(sideband_width), float(bin_width))

    @property
    def sr(self) -> tuple[float, float]:
        return (self.sr_lo, self.sr_hi)

    @property
    def fit_range(self) -> tuple[float, float]:
        return (self.sb_lo, self.sb_hi)

    @property
    def centre(self) -> float:
        return 0.5 * (self.sr_lo + self.sr_hi)

    @property
    def label(self) -> str:
        return f"SR {self.sr_lo:.0f}-{self.sr_hi:.0f}"

    @property
    def key(self) -> str:
        """File-name-safe identifier."""
        return f"w{self.sr_lo:.0f}_{self.sr_hi:.0f}_sb{self.sb_lo:.0f}_{self.sb_hi:.0f}_b{self.bin_width:g}"

    def masks(self, mjj) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boolean masks ``(in_window, in_sr, in_sb)`` of events with mass ``mjj``."""
        m = np.asarray(mjj, dtype=float)
        in_win = (m >= self.sb_lo) & (m < self.sb_hi)
        in_sr = (m >= self.sr_lo) & (m < self.sr_hi)
        return in_win, in_sr, in_win & ~in_sr

    def edges(self) -> np.ndarray:
        """Bin edges over the fit range with the SR boundaries on bin edges (bins about ``bin_width``)."""
        parts = []
        for a, b in ((self.sb_lo, self.sr_lo), (self.sr_lo, self.sr_hi), (self.sr_hi, self.sb_hi)):
            n = max(1, int(np.ceil((b - a) / self.bin_width - 1e-9)))
            parts.append(np.linspace(a, b, n + 1)[:-1])
        return np.r_[np.concatenate(parts), self.sb_hi]

    def sideband_bins(self) -> np.ndarray:
        """Boolean per bin of :meth:`edges`: True in the sidebands."""
        e = self.edges()
        c = 0.5 * (e[1:] + e[:-1])
        return (c < self.sr_lo) | (c >= self.sr_hi)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["label"] = self.label
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Window:
        return cls(*(float(d[k]) for k in ("sr_lo", "sr_hi", "sb_lo", "sb_hi")), float(d.get("bin_width", 50.0)))


def default_data_range(mjj, *, bin_width: float = 50.0, upper_quantile: float = 0.999) -> tuple[float, float]:
    """Range where the dijet functions apply: from just above the peak of the mjj spectrum
    (the end of the trigger turn-on) to the ``upper_quantile`` of mjj."""
    m = np.asarray(mjj, dtype=float)
    m = m[np.isfinite(m)]
    if m.size < 100:
        raise InputError(f"need at least 100 events to set a data range, got {m.size}")
    hi = float(np.quantile(m, upper_quantile))
    lo0 = float(m.min())
    edges = np.arange(lo0, hi + bin_width, bin_width)
    if edges.size < 3:
        raise InputError("mjj range narrower than two bins")
    counts, _ = np.histogram(m, edges)
    i = int(np.argmax(counts))
    lo = float(edges[min(i + 1, edges.size - 2)])
    return lo, hi


def sliding_windows(
    *,
    data_range: tuple[float, float],
    width: float = 400.0,
    step: float = 200.0,
    sideband_width: float = 500.0,
    anchor: float = 3500.0,
    bin_width: float = 50.0,
    relative: bool = False,
) -> list[Window]:
    """Signal regions of ``width`` every ``step`` GeV with centres on ``anchor + k * step``,
    kept where ``[centre - width/2 - sideband_width, centre + width/2 + sideband_width]`` lies in
    ``data_range``. The default anchor makes the LHCO SR 3300-3700 one of the windows.

    ``relative=True``: mass-scaled windows, ``width``, ``step`` and ``sideband_width`` are fractions of the SR
    centre (the resolution and the width of a signal grow with its mass): centres ``anchor * (1 + step)^k``,
    SR ``centre * (1 -+ width/2)``, sidebands ``sideband_width * centre`` wide; edges rounded to 10 GeV."""
    lo, hi = map(float, data_range)
    if not lo < hi:
        raise ConfigError(f"data_range must be increasing, got {data_range}")
    if width <= 0 or step <= 0 or sideband_width <= 0:
        raise ConfigError("width, step and sideband_width must be > 0")
    if relative:
        return _relative_windows(lo, hi, width, step, sideband_width, anchor, bin_width)
    half = 0.5 * width + sideband_width
    k_lo = int(np.ceil((lo + half - anchor) / step - 1e-9))
    k_hi = int(np.floor((hi - half - anchor) / step + 1e-9))
    if k_hi < k_lo:
        raise ConfigError(
            f"no window of width {width} with {sideband_width} GeV sidebands fits in the data range {lo:.0f}-{hi:.0f} GeV"
        )
    out = []
    for k in range(k_lo, k_hi + 1):
        c = anchor + k * step
        out.append(Window.around((c - 0.5 * width, c + 0.5 * width), sideband_width, bin_width))
    return out


def _relative_windows(lo, hi, width, step, sideband_width, anchor, bin_width) -> list[Window]:
    if not (width < 1.0 and width / 2 + sideband_width < 1.0 and anchor > 0):
        raise ConfigError(f"relative windows need width < 1 and width/2 + sideband_width < 1 (fractions of the SR "
                          f"centre) and anchor > 0, got width {width}, sideband_width {sideband_width}, anchor {anchor}")
    reach_lo, reach_hi = 1.0 - width / 2 - sideband_width, 1.0 + width / 2 + sideband_width
    g = np.log1p(step)
    k_lo = int(np.ceil(np.log(lo / reach_lo / anchor) / g - 1e-9))
    k_hi = int(np.floor(np.log(hi / reach_hi / anchor) / g + 1e-9))
    out = []
    for k in range(k_lo, k_hi + 1):
        c = anchor * np.exp(k * g)
        e = [round(v / 10.0) * 10.0 for v in (c * (1 - width / 2), c * (1 + width / 2), c * reach_lo, c * reach_hi)]
        if e[2] >= lo and e[3] <= hi:
            out.append(Window(*e, bin_width=bin_width))
    if not out:
        raise ConfigError(f"no relative window (SR {width:g} x centre, sidebands {sideband_width:g} x centre) fits in "
                          f"the data range {lo:.0f}-{hi:.0f} GeV")
    return out


def validate_windows(windows, mjj) -> list[Window]:
    """Check windows against the data: a window whose fit range holds no event is a
    configuration error (:class:`ConfigError`); partial coverage is left to the per-window status."""
    m = np.asarray(mjj, dtype=float)
    if m.size == 0:
        raise InputError("no events")
    out = []
    lo, hi = float(np.nanmin(m)), float(np.nanmax(m))
    for w in windows:
        if isinstance(w, dict):
            w = Window.from_dict(w)
        elif not isinstance(w, Window):
            if len(w) == 2:
                w = Window.around(w)
            elif len(w) == 4:
                w = Window(*map(float, w))
            else:
                raise ConfigError(f"a window is a Window, a dict, (sr_lo, sr_hi) or (sr_lo, sr_hi, sb_lo, sb_hi); got {w!r}")
        if w.sb_hi <= lo or w.sb_lo >= hi:
            raise ConfigError(f"window {w.label} ({w.sb_lo:.0f}-{w.sb_hi:.0f} GeV) is outside the data range {lo:.0f}-{hi:.0f} GeV")
        out.append(w)
    if not out:
        raise ConfigError("no windows to scan")
    if len({w.key for w in out}) != len(out):
        raise ConfigError("duplicate windows")
    return out
