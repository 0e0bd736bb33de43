"""Several patches of one star file: the per-patch search, protoclusters merged across patches, one run directory.

Via Machinae and GaiaCWoLa cover the sky with overlapping patches of ~15 degrees and search each one; a stream
longer than a patch (GD-1 spans ~80 degrees) is seen in several, and its candidates are merged through the stars
they share (by ``source_id``) with :func:`~excess.astro.streams.search.merge_protoclusters`.

>>> from excess.astro.streams import read_gaia, search_patches, tile_region, StreamSearchConfig  # doctest: +SKIP
>>> centers = tile_region(ra=(140, 160), dec=(30, 40), spacing=10)                            # doctest: +SKIP
>>> survey = search_patches(read_gaia("sky.parquet"), centers, StreamSearchConfig(), radius=7.5)  # doctest: +SKIP
>>> survey.protoclusters[0].windows       # ((patch, window index), ...) across patches          # doctest: +SKIP

Run directory (``run_stream_survey`` / ``excess streams survey``)::

    RUN_DIR/config.json, provenance.json   settings, centres, radius, input and its hash
    RUN_DIR/survey.json                    per-patch summaries and the merged protoclusters
    RUN_DIR/protoclusters.csv              (protocluster, source_id, ra, dec, patches) of every member
    RUN_DIR/plots/sky.png                  patch discs and protocluster members on the sky
    RUN_DIR/patches/<name>/                a full single-patch run directory per patch (report.html, ...)
    RUN_DIR/report.html
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..._util import atomic_path, atomic_write_json, get_logger, package_versions, to_jsonable
from ...errors import ConfigError, InputError
from .coords import _unit
from .io import read_gaia
from .search import Protocluster, StreamSearchConfig, StreamSearchResult, merge_protoclusters, prepare_patch, \
    search_patch

__all__ = ["tile_region", "SurveyResult", "search_patches", "run_stream_survey", "write_survey_report"]

log = get_logger(__name__)


def tile_region(ra: tuple[float, float], dec: tuple[float, float], spacing: float = 10.0) -> list[tuple[float, float]]:
    """Patch centres covering ``ra`` x ``dec`` (deg): rows of constant dec ``spacing`` apart, and along each row
    centres ``spacing`` apart on the sky (``spacing / cos(dec)`` in RA). With patches of radius ``r``, a spacing
    <= ``r * sqrt(2)`` leaves no gaps; Via Machinae used overlapping patches so that every stream crosses the
    inside of some patch. ``ra = (350, 10)`` wraps through 0."""
    if spacing <= 0:
        raise ConfigError(f"tile_region: spacing must be > 0, got {spacing}")
    (ra0, ra1), (d0, d1) = map(float, ra), map(float, dec)
    if not (-90 <= d0 <= d1 <= 90):
        raise ConfigError(f"tile_region: need -90 <= dec_lo <= dec_hi <= 90, got ({d0}, {d1})")
    width = 360.0 if ra1 - ra0 >= 360.0 else (ra1 - ra0) % 360.0
    decs = np.linspace(d0, d1, int(np.ceil((d1 - d0) / spacing - 1e-9)) + 1) if d1 > d0 else np.array([d0])
    out = []
    for d in decs:
        step = spacing / max(np.cos(np.radians(d)), 1e-3)
        if width >= 360.0:  # a full circle: no centre twice
            n = max(1, int(np.ceil(360.0 / step - 1e-9)))
            ras = ra0 + np.arange(n) * 360.0 / n
        elif width > 0:
            ras = ra0 + np.linspace(0.0, width, int(np.ceil(width / step - 1e-9)) + 1)
        else:
            ras = np.array([ra0])
        out += [(float(np.mod(r, 360.0)), float(d)) for r in ras]
    return out


@dataclass(frozen=True)
class SurveyResult:
    """Per-patch searches of one star table and their protoclusters merged across patches."""

    config: StreamSearchConfig
    radius: float
    names: tuple[str, ...]
    centers: tuple[tuple[float, float], ...]
    patches: dict  # name -> StreamSearchResult, or the reason it was skipped (str)
    protoclusters: tuple[Protocluster, ...]
    runtime_s: float

    def searched(self) -> dict[str, StreamSearchResult]:
        return {k: v for k, v in self.patches.items() if isinstance(v, StreamSearchResult)}

    def summary_rows(self) -> list[dict]:
        rows = []
        for name, c in zip(self.names, self.centers):
            r = self.patches[name]
            if isinstance(r, StreamSearchResult):
                best = r.best_window
                rows.append({"patch": name, "center": list(c), "status": "ok", "n_stars": r.n_stars,
                             "n_windows": len(r.windows), "n_candidates": sum(w.is_candidate for w in r.windows),
                             "n_protoclusters": len(r.protoclusters),
                             "best_significance": None if best is None else best.line.significance,
                             "runtime_s": r.runtime_s})
            else:
                rows.append({"patch": name, "center": list(c), "status": r})
        return rows

    def to_dict(self) -> dict:
        return {"radius": self.radius, "config": self.config.to_dict(), "runtime_s": self.runtime_s,
                "patches": self.summary_rows(),
                "protoclusters": [{**p.to_dict(), "patches": sorted({w[0] for w in p.windows})}
                                  for p in self.protoclusters]}


def _in_disc(u: np.ndarray, center, radius: float) -> np.ndarray:
    c = _unit(np.array(center[0], float), np.array(center[1], float))
    return u @ c > np.cos(np.radians(radius))


def _check_centers(centers, names):
    centers = [tuple(map(float, c)) for c in centers]
    if not centers:
        raise ConfigError("survey: no patch centres")
    for ra, dec in centers:
        if not (np.isfinite(ra) and np.isfinite(dec) and -90 <= dec <= 90):
            raise ConfigError(f"survey: bad patch centre ({ra}, {dec}); need finite RA and -90 <= DEC <= 90")
    names = tuple(names) if names is not None else tuple(f"p{k:02d}" for k in range(len(centers)))
    if len(names) != len(centers) or len(set(names)) != len(names):
        raise ConfigError(f"survey: need one distinct name per centre, got {names}")
    return centers, names


def _prepare_all(stars: pd.DataFrame, centers, names, config: StreamSearchConfig, radius: float):
    """Per patch: the stars in its disc after the cuts (with patch coordinates) and the cut flow."""
    if "source_id" not in stars:  # one numbering for the whole table, so that patches share ids
        stars = stars.assign(source_id=np.arange(1, len(stars) + 1, dtype=np.int64))
    u = _unit(stars["ra"].to_numpy(float), stars["dec"].to_numpy(float))
    cfg = replace(config, cuts=replace(config.cuts, radius=float(radius)))
    out = {}
    for name, c in zip(names, centers):
        disc = stars.loc[_in_disc(u, c, radius + 0.01)]
        out[name] = prepare_patch(disc, c, cfg.cuts)
    return stars, cfg, out


def search_patches(stars: pd.DataFrame, centers, config: StreamSearchConfig | None = None, *, radius: float = 7.5,
                   names=None, _prepared=None) -> SurveyResult:
    """Search every patch (a disc of ``radius`` deg around each (ra, dec) centre) of one star table, then merge
    the line candidates of all patches into protoclusters (shared ``source_id``, counted among the stars each
    candidate has inside the other patch; see :func:`merge_protoclusters`).

    Every patch gets the same ``config`` with the disc cut added (``cuts.radius = radius``); window seeds come from
    ``config.seed`` in every patch. A patch with too few stars after the cuts is skipped, and the reason kept.
    """
    cfg0 = config or StreamSearchConfig()
    if not radius > 0:
        raise ConfigError(f"survey: radius must be > 0, got {radius}")
    centers, names = _check_centers(centers, names)
    t0 = time.perf_counter()
    if _prepared is None:
        _, cfg, prepared = _prepare_all(stars, centers, names, cfg0, radius)
    else:
        cfg, prepared = _prepared
    patches = {}
    for name, c in zip(names, centers):
        sel, flow = prepared[name]
        try:
            res = search_patch(sel, c, cfg, patch=name, prepared=True)
        except InputError as exc:
            if "stars pass the cuts" not in str(exc):
                raise
            log.info("survey: patch %s at (%.2f, %.2f) skipped: %s", name, *c, exc)
            patches[name] = f"skipped: {exc}"
            continue
        patches[name] = replace(res, cut_flow=flow)
    searched = {k: v for k, v in patches.items() if isinstance(v, StreamSearchResult)}
    visible = {k: set(prepared[k][0]["source_id"].tolist()) for k in searched}
    clusters = merge_protoclusters({k: list(v.windows) for k, v in searched.items()}, min_shared=cfg.min_shared,
                                   max_dtheta=cfg.max_dtheta, max_drho=cfg.max_drho, visible=visible)
    return SurveyResult(cfg, float(radius), names, tuple(centers), patches, tuple(clusters),
                        time.perf_counter() - t0)


@dataclass(frozen=True)
class SurveyRun:
    run_dir: str
    report: str
    n_patches: int
    n_searched: int
    n_protoclusters: int
    best_significance: float | None
    runtime_s: float

    def summary(self) -> str:
        best = "none" if self.best_significance is None else f"{self.best_significance:.1f}"
        return (f"{self.n_searched} of {self.n_patches} patch(es) searched; {self.n_protoclusters} protocluster(s) "
                f"merged across patches; best line significance {best}. Report: {self.report}")


def run_stream_survey(path: str | Path, output: str | Path, centers, config: StreamSearchConfig | None = None, *,
                      radius: float = 7.5, names=None) -> SurveyRun:
    """Read a Gaia/mock file, search every patch, write one run directory with a subfolder per patch."""
    from .run import _sha256, write_patch_run

    cfg0 = config or StreamSearchConfig()
    path, run_dir = Path(path), Path(output)
    if not radius > 0:
        raise ConfigError(f"survey: radius must be > 0, got {radius}")
    centers, names = _check_centers(centers, names)
    stars = read_gaia(path)
    stars, cfg, prepared = _prepare_all(stars, centers, names, cfg0, radius)
    survey = search_patches(stars, centers, cfg, radius=radius, names=names, _prepared=(cfg, prepared))
    if not survey.searched():
        raise InputError(f"{path}: no patch has enough stars after the cuts: "
                         + "; ".join(f"{k} {v}" for k, v in survey.patches.items()))
    digest = _sha256(path)
    for name, res in survey.searched().items():
        sel, flow = prepared[name]
        write_patch_run(res, sel, flow, path, run_dir / "patches" / name, input_sha256=digest)
    (run_dir / "plots").mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", to_jsonable({
        "input": str(path.resolve()), "centers": [list(c) for c in centers], "names": list(names),
        "radius": radius, "search": cfg.to_dict()}))
    atomic_write_json(run_dir / "provenance.json", to_jsonable({
        "input_sha256": digest, "seed": cfg.seed, "runtime_s": survey.runtime_s,
        "versions": package_versions(("numpy", "scipy", "pandas", "scikit-learn", "torch", "zuko", "astropy",
                                      "gala", "pygaia"))}))
    atomic_write_json(run_dir / "survey.json", to_jsonable(survey.to_dict()))
    idx = stars.set_index("source_id")
    rows = []
    for p in survey.protoclusters:
        pt = ";".join(sorted({w[0] for w in p.windows}))
        for i in p.members:
            rows.append((p.id, i, float(idx.at[i, "ra"]), float(idx.at[i, "dec"]), pt))
    members = pd.DataFrame(rows, columns=["protocluster", "source_id", "ra", "dec", "patches"])
    with atomic_path(run_dir / "protoclusters.csv", suffix=".csv") as tmp:
        members.to_csv(tmp, index=False)
    captions = {_plot_sky(survey, members, run_dir / "plots" / "sky.png"):
                "Patch discs (grey: skipped) and the members of the protoclusters merged across patches (ra, dec)."}
    atomic_write_json(run_dir / "plots" / "captions.json", captions)
    report = write_survey_report(run_dir)
    best = max((p.significance for p in survey.protoclusters), default=None)
    if best is None:
        sig = [r.best_window.line.significance for r in survey.searched().values() if r.best_window is not None]
        best = max(sig, default=None)
    return SurveyRun(str(run_dir), str(report), len(names), len(survey.searched()), len(survey.protoclusters), best,
                     survey.runtime_s)


def _plot_sky(survey: SurveyResult, members: pd.DataFrame, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .coords import from_patch
    from .plots import _save

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    a = np.linspace(0, 2 * np.pi, 181)
    ref = survey.centers[0][0]
    for name, c in zip(survey.names, survey.centers):
        ra, dec = from_patch(survey.radius * np.cos(a), survey.radius * np.sin(a), center=c)
        ra = (ra - ref + 180.0) % 360.0 + ref - 180.0  # unwrap around the first centre
        ok = isinstance(survey.patches[name], StreamSearchResult)
        ax.plot(ra, dec, color="0.3" if ok else "0.75", lw=0.8, ls="-" if ok else "--")
        ax.text((c[0] - ref + 180.0) % 360.0 + ref - 180.0, c[1], name, ha="center", va="center", fontsize=7,
                color="0.4")
    for k, (pid, g) in enumerate(members.groupby("protocluster")):
        ax.scatter((g.ra - ref + 180.0) % 360.0 + ref - 180.0, g.dec, s=6, label=f"protocluster {pid} ({len(g)})")
        if k >= 9:
            break
    ax.set_xlabel("RA [deg]")
    ax.set_ylabel("Dec [deg]")
    ax.invert_xaxis()
    ax.set_aspect("equal", adjustable="datalim")
    if len(members):
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def write_survey_report(run_dir: str | Path) -> Path:
    """The survey's ``report.html``: patches (linked to their own reports), merged protoclusters, the sky plot."""
    from ...report.html import figure_gallery, fmt, page_head, pre_section, write_page

    run_dir = Path(run_dir)
    d = json.loads((run_dir / "survey.json").read_text())
    conf = json.loads((run_dir / "config.json").read_text())
    prov = json.loads((run_dir / "provenance.json").read_text()) if (run_dir / "provenance.json").exists() else {}
    caps_path = run_dir / "plots" / "captions.json"
    captions = json.loads(caps_path.read_text()) if caps_path.exists() else {}
    e = html.escape
    cfg = d["config"]
    n_ok = sum(p["status"] == "ok" for p in d["patches"])
    parts = page_head(f"excess streams survey: {run_dir.name}", "excess stellar-stream survey",
                      f"input <code>{e(conf['input'])}</code> · {len(d['patches'])} patch(es) of radius "
                      f"{fmt(d['radius'], 1)} deg ({n_ok} searched) · method <b>{e(cfg['method'])}</b> · "
                      f"runtime {fmt(d['runtime_s'], 0)} s")
    pcs = d["protoclusters"]
    if pcs:
        p = pcs[0]
        parts.append(f"<div class='box'><b>{len(pcs)} protocluster(s) after merging across patches.</b> Most "
                     f"significant: {p['n_members']} stars from {len(p['windows'])} window(s) in patch(es) "
                     f"{e(', '.join(p['patches']))}, line significance {fmt(p['significance'], 1)} (threshold "
                     f"{fmt(cfg['threshold'], 1)}).</div>")
    else:
        parts.append(f"<div class='box'>No Hough line reached the threshold {fmt(cfg['threshold'], 1)} in any "
                     "patch: no stream candidate.</div>")
    head = ("<tr><th>patch</th><th>centre (ra, dec)</th><th>stars after cuts</th><th>windows</th><th>candidates</th>"
            "<th>protoclusters</th><th>best significance</th><th>runtime [s]</th><th>status</th></tr>")
    rows = []
    for p in d["patches"]:
        link = (f"<a href='patches/{e(p['patch'])}/report.html'>{e(p['patch'])}</a>" if p["status"] == "ok"
                else e(p["patch"]))
        c = f"({fmt(p['center'][0], 2)}, {fmt(p['center'][1], 2)})"
        if p["status"] == "ok":
            cells = [link, c, f"{p['n_stars']:,}", str(p["n_windows"]), str(p["n_candidates"]),
                     str(p["n_protoclusters"]), fmt(p["best_significance"], 1), fmt(p["runtime_s"], 0), "ok"]
        else:
            cells = [link, c, "", "", "", "", "", "", e(p["status"])]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    parts.append("<h2>Patches</h2><table>" + head + "".join(rows) + "</table>")
    if pcs:
        parts.append("<h2>Protoclusters (merged across windows and patches)</h2><table><tr><th>id</th><th>stars</th>"
                     "<th>patches</th><th>windows (patch, index)</th><th>significance</th><th>best</th></tr>")
        for p in pcs:
            wins = ", ".join(f"{a}:{b}" for a, b in p["windows"])
            parts.append(f"<tr><td>{p['id']}</td><td>{p['n_members']}</td><td>{e(', '.join(p['patches']))}</td>"
                         f"<td class='l'>{e(wins)}</td><td>{fmt(p['significance'], 1)}</td>"
                         f"<td>{e(p['best'][0])}:{p['best'][1]}</td></tr>")
        parts.append("</table><p>Members with their (ra, dec): <code>protoclusters.csv</code>.</p>")
    plots = sorted((run_dir / "plots").glob("*.png"))
    parts += [figure_gallery(plots, captions), pre_section("Settings", conf), pre_section("Provenance", prov)]
    return write_page(run_dir, parts)
