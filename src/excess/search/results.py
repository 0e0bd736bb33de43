"""Result objects of a search: frozen dataclasses with ``to_dict()`` / ``from_dict()``.

Hierarchy::

    ScanResult
      windows: tuple[WindowResult]          one per SR/SB window
        tests: tuple[CutResult]             one per score-threshold efficiency
          fit: DijetFit                     sideband fit (histogram, expectation, goodness of fit)
          background: EfficiencyBackground  or: inclusive fit x efficiency fit (background_model="efficiency")
          signal_fit: SignalFit             and: the S+B fit over the window (background_model="signal_fit")
                      or DijetSignalFit     the dijet S+B fit over the window (background_model="dijet_signal";
                                            then fit is its background component)
          choice: FunctionChoice            f3 vs f4 test
          significance: LocalSignificance   local Z, p (asymptotic), signed Z
          characterisation: Characterisation  resonance mass, mX / mY peaks
        baseline: CutResult                 the same without a cut (efficiency 1)
      global_significance: GlobalSignificance

Every result carries a ``status`` (``"ok"``, ``"no_result"``, ``"fit_failed"``) and a ``reason``:
a window or cut without a trustworthy significance says so, it never reports a number.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util import atomic_write_json
from ..errors import InputError
from ..stats.efficiency import EfficiencyBackground, SignalFit
from ..stats.fit import DijetFit, DijetSignalFit, FunctionChoice
from ..stats.sideband import STATUS_OK, SidebandTest
from ..stats.significance import GlobalSignificance, LocalSignificance
from ..stats.windows import Window

__all__ = ["Characterisation", "CutResult", "WindowResult", "ScanResult", "STATUS_OK"]


def _f(v):
    return float("nan") if v is None else (float(v) if not isinstance(v, str) else float(v))


@dataclass(frozen=True)
class Characterisation:
    """What the excess looks like (background-subtracted), for one cut of one window.

    ``m_res``: excess-weighted mean mjj of the SR bins (``n - mu`` where positive), ``m_res_rms``
    its spread; ``m_x`` / ``m_y``: peak of the sideband-subtracted mass of the heavier (``mj2``) /
    lighter (``mj1``) jet of the selected SR events (SB selected events scaled to the fitted SR
    background are subtracted); ``jet_mass_hists`` keeps the histograms for plots.
    """

    n_excess: float
    m_res: float | None
    m_res_rms: float | None
    m_x: float | None
    m_y: float | None
    jet_mass_hists: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Characterisation:
        return cls(**d)


@dataclass(frozen=True)
class CutResult:
    """One selection (score threshold at a fixed background efficiency) in one window."""

    efficiency: float
    status: str
    reason: str = ""
    thresholds: tuple = ()
    n_selected_sr: int = 0
    n_selected_sb: int = 0
    fit: DijetFit | None = None
    choice: FunctionChoice | None = None
    significance: LocalSignificance | None = None
    characterisation: Characterisation | None = None
    z_toys: float | None = None
    p_toys: float | None = None
    n_toys: int = 0
    z_null: float | None = None
    p_null: float | None = None
    n_null: int = 0
    null_z: tuple = ()
    warnings: tuple = ()
    background: EfficiencyBackground | None = None
    signal_fit: SignalFit | DijetSignalFit | None = None

    @classmethod
    def from_test(cls, efficiency: float, thresholds, test: SidebandTest,
                  characterisation: Characterisation | None = None) -> CutResult:
        """The cut at ``efficiency`` (per-fold ``thresholds``) from the background test of its selection."""
        return cls(efficiency=float(efficiency), status=test.status, reason=test.reason,
                   thresholds=tuple(np.asarray(thresholds, float).tolist()), n_selected_sr=test.n_sr,
                   n_selected_sb=test.n_sb, fit=test.fit, choice=test.choice, significance=test.significance,
                   characterisation=characterisation, warnings=test.warnings, background=test.background,
                   signal_fit=test.signal_fit)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def z(self) -> float:
        """Local asymptotic Z, NaN when there is no result."""
        return self.significance.z if (self.ok and self.significance is not None) else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in ("fit", "choice", "significance", "characterisation", "background", "signal_fit"):
            d[k] = None if d[k] is None else d[k].to_dict()
        d["z"] = self.z
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CutResult:
        d = {k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}}
        conv = {"fit": DijetFit, "choice": FunctionChoice, "significance": LocalSignificance,
                "characterisation": Characterisation, "background": EfficiencyBackground, "signal_fit": SignalFit}
        if (d.get("signal_fit") or {}).get("kind") == "dijet_signal":
            conv["signal_fit"] = DijetSignalFit
        for k, c in conv.items():
            if d.get(k) is not None:
                d[k] = c.from_dict(d[k])
        # the JSON of to_jsonable writes an infinite threshold (the cut at efficiency 1.0) as "-inf"/"inf" and NaN as null
        d["thresholds"] = tuple(float("nan") if v is None else float(v) for v in d.get("thresholds", ()))
        d["warnings"] = tuple(d.get("warnings", ()))
        d["null_z"] = tuple(float("nan") if v is None else v for v in d.get("null_z", ()))
        return cls(**d)


@dataclass(frozen=True)
class WindowResult:
    """All results of one window: the anomaly scores' selections and their fits."""

    window: Window
    status: str
    reason: str = ""
    n_events: int = 0
    n_sr: int = 0
    n_sb: int = 0
    seed: int | None = None
    n_folds: int = 0
    tests: tuple = ()
    baseline: CutResult | None = None
    max_sic: float | None = None
    sic: dict | None = None
    signal_fraction: float | None = None
    signal_fraction_err: float | None = None
    runtime_s: float = 0.0
    fingerprint: str = ""
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    """Out-of-fold score of every event of the scanned table (NaN outside the window); in memory only."""

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def best(self) -> CutResult | None:
        """The cut with the largest local Z (None if no cut has a result)."""
        ok = [t for t in self.tests if t.ok]
        return max(ok, key=lambda t: t.z) if ok else None

    @property
    def z_max(self) -> float:
        b = self.best
        return b.z if b is not None else float("nan")

    def test(self, efficiency: float) -> CutResult:
        for t in self.tests:
            if abs(t.efficiency - efficiency) < 1e-12:
                return t
        raise KeyError(f"no cut at efficiency {efficiency} in {self.window.label}")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "scores"}
        d["window"] = self.window.to_dict()
        d["tests"] = [t.to_dict() for t in self.tests]
        d["baseline"] = None if self.baseline is None else self.baseline.to_dict()
        d["z_max"] = self.z_max
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowResult:
        d = {k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}}
        d["window"] = Window.from_dict(d["window"])
        d["tests"] = tuple(CutResult.from_dict(t) for t in d.get("tests", ()))
        if d.get("baseline") is not None:
            d["baseline"] = CutResult.from_dict(d["baseline"])
        return cls(**d)


@dataclass(frozen=True)
class ScanResult:
    """A full scan: per-window results, the global significance and the resolved settings."""

    windows: tuple
    global_significance: GlobalSignificance | None
    config: dict
    n_events: int
    runtime_s: float

    @property
    def tests(self) -> list[tuple[WindowResult, CutResult]]:
        """All (window, cut) pairs that have a result."""
        return [(w, t) for w in self.windows for t in w.tests if t.ok]

    @property
    def best(self) -> tuple[WindowResult, CutResult] | None:
        """The most significant (window, cut) of the scan."""
        pairs = self.tests
        return max(pairs, key=lambda p: p[1].z) if pairs else None

    def summary(self) -> str:
        lines = [f"{'window':>16} {'status':>10} " + " ".join(f"{'Z@' + format(e, 'g'):>9}" for e in self.config.get("efficiencies", []))]
        for w in self.windows:
            zs = " ".join(f"{t.z:9.2f}" if t.ok else f"{t.status:>9}" for t in w.tests)
            lines.append(f"{w.window.label:>16} {w.status:>10} {zs}")
        g = self.global_significance
        if g is not None:
            b = self.best
            where = f"{b[0].window.label} @ eff {b[1].efficiency:g}" if b else "-"
            lines.append(
                f"max local Z = {g.max_local_z:.2f} ({where}); global Z = {g.z_global:.2f}"
                f"{' (lower bound)' if g.z_global_is_limit else ''} from {g.method} ({g.n_toys} toys, {g.n_tests} tests)"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        b = self.best
        return {
            "windows": [w.to_dict() for w in self.windows],
            "global_significance": None if self.global_significance is None else self.global_significance.to_dict(),
            "config": self.config,
            "n_events": self.n_events,
            "runtime_s": self.runtime_s,
            "best": None if b is None else {"window": b[0].window.label, "efficiency": b[1].efficiency, "z": b[1].z},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScanResult:
        g = d.get("global_significance")
        return cls(
            windows=tuple(WindowResult.from_dict(w) for w in d["windows"]),
            global_significance=None if g is None else GlobalSignificance.from_dict(g),
            config=dict(d.get("config", {})),
            n_events=int(d.get("n_events", 0)),
            runtime_s=float(d.get("runtime_s", 0.0)),
        )

    def save(self, path) -> Path:
        """Write as JSON atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> ScanResult:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"no scan result at {p}")
        return cls.from_dict(_decode(json.loads(p.read_text())))


def _decode(obj):
    """Undo ``to_jsonable``'s encoding of non-finite floats (None -> NaN where a float is expected is
    handled by the dataclasses; ``"inf"`` strings back to floats)."""
    if isinstance(obj, dict):
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if obj == "inf":
        return np.inf
    if obj == "-inf":
        return -np.inf
    return obj
