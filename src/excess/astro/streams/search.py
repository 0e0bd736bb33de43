"""The resonant search on the sky: sliding proper-motion windows, anomaly scores, Hough lines, protoclusters.

For each signal region (SR) — a window in one coordinate, by default ``mu_lam`` — with sidebands (SB) on both
sides, an anomaly method from :mod:`excess.anomaly` (CWoLa, CATHODE, ...) scores every SR star out of fold through
:func:`excess.anomaly.cross_val_scores` on the GaiaCWoLa features (phi, lam, mu_phi, BP-RP, G). As in Via
Machinae 2.0, the ``top_n`` stars of each window go to a Hough transform (:mod:`.hough`), with the expected
background of a line taken from the sky distribution of a broader selection (by default the window's top
``10 x top_n`` stars: the classifier's smooth sky preferences, e.g. for the side of the patch where the solar
reflex motion makes background stars SR-like, are then part of ``B``, while a thin stream is diluted); a window whose best
line reaches ``threshold`` gives a line candidate, and candidates that share stars (across windows, and across
patches through ``source_id``) merge into protoclusters (:func:`merge_protoclusters`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..._util import check_random_state, get_logger, progress, spawn_seeds
from ...errors import ConfigError, InputError
from .coords import add_patch_coordinates
from .cuts import StreamCuts, apply_cuts
from .hough import HoughLine, best_line, distance_to_line

__all__ = ["FEATURES", "StreamSearchConfig", "WindowResult", "Protocluster", "StreamSearchResult",
           "sliding_windows", "search_patch", "merge_protoclusters", "prepare_patch"]

log = get_logger(__name__)

#: The classifier settings used when ``method_params`` is None and the method takes ``classifier_params``.
STREAM_CLASSIFIER: dict = {"classifier_params": {"n_members": 1, "max_iter": 100}}

#: GaiaCWoLa's classifier inputs (the resonant feature mu_lam is the fifth coordinate, used for the windows).
FEATURES: tuple[str, ...] = ("phi", "lam", "mu_phi", "bp_rp", "phot_g_mean_mag")


@dataclass(frozen=True)
class StreamSearchConfig:
    """Settings of a stream search in one patch (defaults: Via Machinae 2.0 / GaiaCWoLa choices)."""

    method: str = "cwola"
    # None: for classifier-based methods (cwola, cathode, ...) one small gradient-boosted classifier per fold,
    # STREAM_CLASSIFIER (a patch has ~10^4-10^5 stars per window and 2 CPU cores); else the method's defaults
    method_params: dict | None = None
    fast: bool = False  # the anomaly method's tiny FAST_PARAMS (tests, smoke runs)
    resonant: str = "mu_lam"
    features: tuple[str, ...] = FEATURES
    sr_width: float = 6.0  # mas/yr (VM2.0)
    step: float = 1.0  # mas/yr (VM2.0)
    sb_width: float = 3.0  # mas/yr on each side of the SR
    scan_range: tuple[float, float] | None = None  # SR centres from..to; None: 5th..95th percentile
    windows: tuple[tuple[float, float], ...] | None = None  # explicit SRs (overrides the scan)
    n_folds: int = 5
    top_n: int = 100
    line_width: float = 1.0  # deg
    segment: float = 2.0  # deg: a line with more than max_clump of its stars in one such piece is a clump
    max_clump: float = 0.5
    hough_bins: int = 100
    threshold: float = 6.0  # line significance for a candidate
    # the sky distribution B is taken from: "top" = the window's top (reference_factor x top_n) stars, which
    # carry the classifier's smooth preferences (e.g. for one side of the patch, from the solar reflex motion)
    # without a thin line standing out; "sr" = all SR stars
    reference: str = "top"
    reference_factor: int = 10
    min_shared: float = 0.2  # protoclusters merge when they share this fraction of the smaller one's stars
    max_dtheta: float = 10.0  # ... or come from overlapping windows with lines this close (deg)
    max_drho: float = 1.5
    cuts: StreamCuts = field(default_factory=StreamCuts)
    seed: int = 0

    def __post_init__(self):
        if self.sr_width <= 0 or self.step <= 0 or self.sb_width <= 0:
            raise ConfigError(f"search: sr_width, step, sb_width must be > 0; got {self.sr_width}, {self.step}, "
                              f"{self.sb_width}")
        if self.top_n < 5 or self.n_folds < 2:
            raise ConfigError(f"search: need top_n >= 5 and n_folds >= 2; got {self.top_n}, {self.n_folds}")
        if self.resonant in self.features:
            raise ConfigError(f"search: the resonant feature {self.resonant!r} cannot also be a classifier feature")
        if self.reference not in ("top", "sr") or self.reference_factor < 2:
            raise ConfigError(f"search: reference must be 'top' or 'sr' and reference_factor >= 2; got "
                              f"{self.reference!r}, {self.reference_factor}")
        if not 0 < self.min_shared <= 1:
            raise ConfigError(f"search: min_shared must be in (0, 1], got {self.min_shared}")
        if isinstance(self.cuts, dict):
            object.__setattr__(self, "cuts", StreamCuts(**self.cuts))
        object.__setattr__(self, "features", tuple(self.features))
        if self.windows is not None:
            object.__setattr__(self, "windows", tuple((float(a), float(b)) for a, b in self.windows))
            if any(not a < b for a, b in self.windows):
                raise ConfigError(f"search: every window needs lo < hi, got {self.windows}")

    def resolved_method_params(self) -> dict:
        """``method_params``, or :data:`STREAM_CLASSIFIER` for classifier-based methods when None (not with fast)."""
        if self.method_params is not None:
            return dict(self.method_params)
        if self.fast:
            return {}
        from ...anomaly import get_method_class

        if "classifier_params" not in get_method_class(self.method)._get_param_names():
            return {}
        return {k: dict(v) for k, v in STREAM_CLASSIFIER.items()}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cuts"] = self.cuts.to_dict()
        d["method_params"] = self.resolved_method_params()
        return d


@dataclass(frozen=True)
class WindowResult:
    """One SR window: its counts, the top stars and the best Hough line."""

    index: int
    sr: tuple[float, float]
    sb: tuple[float, float]
    n_sr: int
    n_sb: int
    status: str  # "ok" or why it was skipped
    line: HoughLine | None = None
    top_ids: tuple[int, ...] = ()
    top_scores: tuple[float, ...] = ()
    line_ids: tuple[int, ...] = ()  # top stars within the line's band
    runtime_s: float = 0.0

    @property
    def is_candidate(self) -> bool:
        return bool(self.line_ids)

    def to_dict(self) -> dict:
        return {"index": self.index, "sr": list(self.sr), "sb": list(self.sb), "n_sr": self.n_sr, "n_sb": self.n_sb,
                "status": self.status, "line": None if self.line is None else self.line.to_dict(),
                "candidate": self.is_candidate, "n_line_stars": len(self.line_ids), "runtime_s": self.runtime_s}


@dataclass(frozen=True)
class Protocluster:
    """Line candidates merged across windows (and patches): a stream candidate."""

    id: int
    members: tuple[int, ...]  # source_id
    windows: tuple[tuple[str, int], ...]  # (patch, window index)
    significance: float  # the largest line significance among its windows
    best: tuple[str, int]

    def to_dict(self) -> dict:
        return {"id": self.id, "n_members": len(self.members), "windows": [list(w) for w in self.windows],
                "significance": self.significance, "best": list(self.best)}


@dataclass(frozen=True)
class StreamSearchResult:
    """A patch's search: windows, protoclusters and the per-window top stars."""

    config: StreamSearchConfig
    center: tuple[float, float]
    patch: str
    n_stars: int
    cut_flow: dict
    windows: tuple[WindowResult, ...]
    protoclusters: tuple[Protocluster, ...]
    runtime_s: float

    @property
    def best_window(self) -> WindowResult | None:
        ok = [w for w in self.windows if w.line is not None]
        return max(ok, key=lambda w: w.line.significance) if ok else None

    def selected(self) -> pd.DataFrame:
        """Long table of (window, rank, source_id, score, on_line) of every window's top stars."""
        rows = []
        for w in self.windows:
            line = set(w.line_ids)
            for r, (i, s) in enumerate(zip(w.top_ids, w.top_scores)):
                rows.append((w.index, r, i, s, i in line))
        return pd.DataFrame(rows, columns=["window", "rank", "source_id", "score", "on_line"])

    def to_dict(self) -> dict:
        best = self.best_window
        return {"patch": self.patch, "center": list(self.center), "n_stars": self.n_stars, "cut_flow": self.cut_flow,
                "config": self.config.to_dict(), "runtime_s": self.runtime_s,
                "windows": [w.to_dict() for w in self.windows],
                "protoclusters": [p.to_dict() for p in self.protoclusters],
                "best_window": None if best is None else best.to_dict(),
                "n_candidates": sum(w.is_candidate for w in self.windows)}


def sliding_windows(values: np.ndarray, cfg: StreamSearchConfig) -> list[tuple[float, float]]:
    """The SR windows: explicit ``cfg.windows`` or ``sr_width``-wide windows stepped by ``step`` over the range."""
    if cfg.windows is not None:
        return list(cfg.windows)
    if cfg.scan_range is not None:
        lo, hi = map(float, cfg.scan_range)
    else:
        lo, hi = (float(v) for v in np.percentile(values, [5, 95]))
    if not hi > lo:
        raise ConfigError(f"search: empty scan range ({lo}, {hi})")
    centres = np.arange(lo, hi + 1e-9, cfg.step)
    return [(float(c - cfg.sr_width / 2), float(c + cfg.sr_width / 2)) for c in centres]


def prepare_patch(stars: pd.DataFrame, center, cuts: StreamCuts | None = None) -> tuple[pd.DataFrame, dict]:
    """Patch coordinates and the published cuts; a ``source_id`` column is made if missing."""
    if "source_id" not in stars:
        stars = stars.assign(source_id=np.arange(1, len(stars) + 1, dtype=np.int64))
    return apply_cuts(add_patch_coordinates(stars, center), cuts)


def _score_window(stars, sr, sb_width, cfg, seed):
    from ...anomaly import cross_val_scores, make_method

    m = stars[cfg.resonant].to_numpy()
    win = (m >= sr[0] - sb_width) & (m <= sr[1] + sb_width)
    sub = stars.loc[win]
    X = sub[list(cfg.features)].to_numpy(np.float64)
    mm = sub[cfg.resonant].to_numpy(np.float64)
    method = make_method(cfg.method, fast=cfg.fast, **cfg.resolved_method_params())
    scores = cross_val_scores(method, X, mm, sr=sr, n_folds=cfg.n_folds, random_state=seed)
    is_sr = (mm >= sr[0]) & (mm <= sr[1])
    return sub.loc[is_sr], np.asarray(scores)[is_sr], int(is_sr.sum()), int((~is_sr).sum())


def search_patch(stars: pd.DataFrame, center, config: StreamSearchConfig | None = None, *,
                 patch: str = "patch", prepared: bool = False) -> StreamSearchResult:
    """Search one patch of stars (Gaia columns; see :func:`excess.astro.streams.read_gaia`) for streams.

    ``center`` is the patch centre (ra, dec) in deg. With ``prepared=True`` the stars already carry patch
    coordinates and passed the cuts (see :func:`prepare_patch`).
    """
    cfg = config or StreamSearchConfig()
    t0 = time.perf_counter()
    if prepared:
        sel, flow = stars.reset_index(drop=True), {"all": int(len(stars))}
    else:
        sel, flow = prepare_patch(stars, center, cfg.cuts)
    missing = [c for c in (*cfg.features, cfg.resonant) if c not in sel]
    if missing:
        raise InputError(f"search: the star table lacks column(s) {missing}")
    if len(sel) < 2 * cfg.top_n:
        raise InputError(f"search: only {len(sel)} stars pass the cuts; need >= {2 * cfg.top_n}")
    windows = sliding_windows(sel[cfg.resonant].to_numpy(), cfg)
    seeds = spawn_seeds(check_random_state(cfg.seed), len(windows))
    r = np.hypot(sel["phi"].to_numpy(), sel["lam"].to_numpy())
    extent = float(np.ceil(r.max() + cfg.line_width))
    results = []
    for k, sr in enumerate(progress(windows, desc=f"{patch}: windows")):
        tw = time.perf_counter()
        sb = (sr[0] - cfg.sb_width, sr[1] + cfg.sb_width)
        try:
            sr_stars, scores, n_sr, n_sb = _score_window(sel, sr, cfg.sb_width, cfg, seeds[k])
        except InputError as exc:  # too few stars in this window: skip it, say why
            results.append(WindowResult(k, sr, sb, 0, 0, f"skipped: {exc}"))
            continue
        n_top = min(cfg.top_n, n_sr)
        order = np.argsort(-scores, kind="stable")[:n_top]
        top = sr_stars.iloc[order]
        if cfg.reference == "top":
            ref = sr_stars.iloc[np.argsort(-scores, kind="stable")[:cfg.reference_factor * n_top]]
        else:
            ref = sr_stars
        line = best_line(top["phi"].to_numpy(), top["lam"].to_numpy(), ref["phi"].to_numpy(),
                         ref["lam"].to_numpy(), extent=extent, width=cfg.line_width, n_bins=cfg.hough_bins,
                         segment=cfg.segment, max_clump=cfg.max_clump)
        on = distance_to_line(top["phi"].to_numpy(), top["lam"].to_numpy(), line.theta, line.rho) <= cfg.line_width / 2
        ids = top["source_id"].to_numpy()
        line_ids = tuple(int(i) for i in ids[on]) if line.significance >= cfg.threshold else ()
        results.append(WindowResult(k, sr, sb, n_sr, n_sb, "ok", line, tuple(int(i) for i in ids),
                                    tuple(float(s) for s in scores[order]), line_ids, time.perf_counter() - tw))
        log.info("%s window %d [%.1f, %.1f]: %d SR / %d SB stars, best line %.1f sigma (S=%d, B=%.1f)", patch, k,
                 *sr, n_sr, n_sb, line.significance, line.S, line.B)
    clusters = merge_protoclusters({patch: results}, min_shared=cfg.min_shared, max_dtheta=cfg.max_dtheta,
                                   max_drho=cfg.max_drho)
    return StreamSearchResult(cfg, tuple(map(float, center)), patch, int(len(sel)), flow, tuple(results),
                              tuple(clusters), time.perf_counter() - t0)


def _same_line(a, b, max_dtheta, max_drho) -> bool:
    (pa, wa), (pb, wb) = a, b
    if pa != pb or wa.sr[0] >= wb.sr[1] or wb.sr[0] >= wa.sr[1]:
        return False
    dth = abs(np.degrees(wa.line.theta - wb.line.theta)) % 180.0
    if min(dth, 180.0 - dth) > max_dtheta:
        return False
    # the same line seen with theta near 0/180 flips the sign of rho
    rho_b = wb.line.rho if abs(np.degrees(wa.line.theta - wb.line.theta)) <= 90 else -wb.line.rho
    return abs(wa.line.rho - rho_b) <= max_drho


def merge_protoclusters(windows_by_patch: dict[str, list[WindowResult]], *, min_shared: float = 0.2,
                        max_dtheta: float = 10.0, max_drho: float = 1.5,
                        visible: dict[str, set] | None = None) -> list[Protocluster]:
    """Merge line candidates into protoclusters (union-find).

    Two candidates merge when they share at least ``min_shared`` of the smaller one's line stars (by
    ``source_id``: neighbouring windows and overlapping patches alike), or when they come from overlapping SR
    windows of the same patch and their lines agree within ``max_dtheta`` deg and ``max_drho`` deg (a stream's
    proper motion changes along it, so neighbouring windows see neighbouring pieces of it). Sorted by significance.

    ``visible`` (patch -> the ``source_id`` of its stars after the cuts), for candidates of different patches:
    the shared fraction is then taken of the stars each candidate has inside the other patch (only those could be
    shared): a stream crossing two patches that overlap over a third of it shares only ~1/6 of its line stars.
    """
    cands = [(p, w) for p, ws in windows_by_patch.items() for w in ws if w.is_candidate]
    parent = list(range(len(cands)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sets = [set(w.line_ids) for _, w in cands]
    for i in range(len(cands)):
        for j in range(i + 1, len(cands)):
            shared = len(sets[i] & sets[j])
            (pi, _), (pj, _) = cands[i], cands[j]
            if visible is not None and pi != pj:
                base = min(len(sets[i] & visible[pj]), len(sets[j] & visible[pi]))
            else:
                base = min(len(sets[i]), len(sets[j]))
            if (shared and shared >= min_shared * base) or _same_line(
                    cands[i], cands[j], max_dtheta, max_drho):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(cands)):
        groups.setdefault(find(i), []).append(i)
    out = []
    for members in groups.values():
        best = max(members, key=lambda i: cands[i][1].line.significance)
        ids = sorted(set().union(*(sets[i] for i in members)))
        out.append(Protocluster(0, tuple(ids), tuple((cands[i][0], cands[i][1].index) for i in sorted(members)),
                                float(cands[best][1].line.significance), (cands[best][0], cands[best][1].index)))
    out.sort(key=lambda p: -p.significance)
    return [Protocluster(k, p.members, p.windows, p.significance, p.best) for k, p in enumerate(out)]
