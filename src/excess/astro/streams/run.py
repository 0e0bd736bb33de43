"""A stream search as a run directory: settings, results, selected stars, plots and ``report.html``.

Layout (every file written atomically)::

    RUN_DIR/config.json       resolved settings, input file, patch centre
    RUN_DIR/provenance.json   versions, input hash, seed, runtime
    RUN_DIR/search.json       windows, Hough lines, protoclusters (StreamSearchResult.to_dict)
    RUN_DIR/selected.csv      every window's top stars (window, rank, source_id, score, on_line)
    RUN_DIR/evaluation.json   purity/completeness against truth (``excess streams evaluate``; mocks only)
    RUN_DIR/plots/*.png       scan; sky / proper-motion / colour-magnitude of the selected stars
    RUN_DIR/report.html
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..._util import atomic_path, atomic_write_json, package_versions, to_jsonable
from ...errors import InputError
from .io import read_gaia, read_metadata
from .search import StreamSearchConfig, StreamSearchResult, prepare_patch, search_patch

__all__ = ["run_stream_search", "write_patch_run", "evaluate_run", "write_stream_report", "patch_center_of"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def patch_center_of(path: str | Path, center=None) -> tuple[float, float]:
    """The patch centre: given, else the ``center`` a mock stored in its metadata (or its ``.json`` sidecar)."""
    if center is not None:
        return tuple(map(float, center))
    path = Path(path)
    meta = read_metadata(path)
    sidecar = path.parent / (path.name + ".json")  # what `excess streams mock` writes next to CSV/FITS files
    if "center" not in meta and sidecar.exists():
        meta = json.loads(sidecar.read_text())
    if "center" not in meta:
        raise InputError(f"{path}: no patch centre in the file's metadata; pass --center RA DEC")
    return tuple(map(float, meta["center"]))


@dataclass(frozen=True)
class StreamRun:
    run_dir: str
    report: str
    n_candidates: int
    n_protoclusters: int
    best_significance: float | None
    runtime_s: float

    def summary(self) -> str:
        best = "none" if self.best_significance is None else f"{self.best_significance:.1f}"
        return (f"{self.n_protoclusters} protocluster(s) from {self.n_candidates} window line(s) above threshold; "
                f"best line significance {best}. Report: {self.report}")


def run_stream_search(path: str | Path, output: str | Path, config: StreamSearchConfig | None = None, *,
                      center=None) -> StreamRun:
    """Read a Gaia/mock file, search its patch, write the run directory."""
    cfg = config or StreamSearchConfig()
    path, run_dir = Path(path), Path(output)
    stars = read_gaia(path)
    center = patch_center_of(path, center)
    sel, flow = prepare_patch(stars, center, cfg.cuts)
    result = search_patch(sel, center, cfg, patch=path.stem, prepared=True)
    return write_patch_run(result, sel, flow, path, run_dir)


def write_patch_run(result: StreamSearchResult, sel: pd.DataFrame, flow: dict, path: str | Path,
                    run_dir: str | Path, *, input_sha256: str | None = None) -> StreamRun:
    """Write one patch's run directory (``sel``: its stars after the cuts, with patch coordinates)."""
    path, run_dir, cfg, center = Path(path), Path(run_dir), result.config, result.center
    d = result.to_dict()
    d["cut_flow"] = flow
    (run_dir / "plots").mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", to_jsonable({"input": str(path.resolve()), "center": list(center),
                                                          "search": cfg.to_dict()}))
    atomic_write_json(run_dir / "provenance.json", to_jsonable({
        "input_sha256": input_sha256 or _sha256(path), "seed": cfg.seed, "runtime_s": result.runtime_s,
        "versions": package_versions(("numpy", "scipy", "pandas", "scikit-learn", "torch", "zuko", "astropy",
                                      "gala", "pygaia"))}))
    atomic_write_json(run_dir / "search.json", to_jsonable(d))
    with atomic_path(run_dir / "selected.csv", suffix=".csv") as tmp:
        result.selected().to_csv(tmp, index=False)
    captions = _plots(result, sel, run_dir / "plots")
    atomic_write_json(run_dir / "plots" / "captions.json", captions)
    report = write_stream_report(run_dir)
    best = result.best_window
    return StreamRun(str(run_dir), str(report), d["n_candidates"], len(result.protoclusters),
                     None if best is None else best.line.significance, result.runtime_s)


def _plots(result: StreamSearchResult, sel: pd.DataFrame, plot_dir: Path) -> dict:
    from .plots import plot_scan, plot_selected

    captions = plot_scan([w.to_dict() for w in result.windows], result.config.threshold, plot_dir)
    best = result.best_window
    if best is None:
        return captions
    res = result.config.resonant
    sr = sel.loc[(sel[res] >= best.sr[0]) & (sel[res] <= best.sr[1])]
    idx = sel.set_index("source_id")
    top = idx.loc[list(best.top_ids)].reset_index()
    captions.update(plot_selected(sr, top, plot_dir, line=best.line.to_dict(), prefix="best_window_",
                                  title=f"window {best.index}: top {len(top)} in SR [{best.sr[0]:.1f}, {best.sr[1]:.1f}]"))
    if result.protoclusters:
        pc = result.protoclusters[0]
        members = idx.loc[list(pc.members)].reset_index()
        captions.update(plot_selected(sel, members, plot_dir, prefix="protocluster0_",
                                      title=f"protocluster 0: {len(members)} stars, {pc.significance:.1f}σ"))
    return captions


def evaluate_run(run_dir: str | Path, truth: str | Path | None = None, *, top=(100, 250)) -> dict:
    """Purity/completeness of a run's selections against a mock's ``is_stream`` labels; updates the report."""
    from .evaluate import evaluate_search
    from .hough import HoughLine
    from .search import Protocluster, WindowResult

    run_dir = Path(run_dir)
    if not (run_dir / "search.json").exists():
        raise InputError(f"{run_dir}: not a stream-search run directory (no search.json)")
    conf = json.loads((run_dir / "config.json").read_text())
    d = json.loads((run_dir / "search.json").read_text())
    sel = pd.read_csv(run_dir / "selected.csv")
    cfg = StreamSearchConfig(**{**conf["search"], "cuts": conf["search"]["cuts"],
                                "windows": conf["search"]["windows"], "scan_range": conf["search"]["scan_range"]})
    windows = []
    for w in d["windows"]:
        line = None
        if w["line"]:
            ln = dict(w["line"])
            line = HoughLine(theta=np.radians(ln.pop("theta_deg")), **ln)
        rows = sel.loc[sel.window == w["index"]].sort_values("rank")
        windows.append(WindowResult(w["index"], tuple(w["sr"]), tuple(w["sb"]), w["n_sr"], w["n_sb"], w["status"],
                                    line, tuple(rows.source_id), tuple(rows.score),
                                    tuple(rows.source_id[rows.on_line.astype(bool)])))
    members = {}
    for w in windows:
        members[w.index] = set(w.line_ids)
    clusters = tuple(Protocluster(p["id"], tuple(sorted(set().union(*(members[i] for _, i in p["windows"])))),
                                  tuple(map(tuple, p["windows"])), p["significance"], tuple(p["best"]))
                     for p in d["protoclusters"])
    result = StreamSearchResult(cfg, tuple(d["center"]), d["patch"], d["n_stars"], d["cut_flow"], tuple(windows),
                                clusters, d["runtime_s"])
    stars = read_gaia(truth if truth is not None else conf["input"])
    ev = evaluate_search(result, stars, top=top)
    atomic_write_json(run_dir / "evaluation.json", to_jsonable(ev))
    write_stream_report(run_dir)
    return ev


def _pc(x):
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.0f} %"


def write_stream_report(run_dir: str | Path) -> Path:
    """``report.html`` from the saved files (the shared style of :mod:`excess.report.html`)."""
    from ...report.html import figure_gallery, fmt, page_head, pre_section, write_page

    run_dir = Path(run_dir)
    d = json.loads((run_dir / "search.json").read_text())
    conf = json.loads((run_dir / "config.json").read_text())
    prov = json.loads((run_dir / "provenance.json").read_text()) if (run_dir / "provenance.json").exists() else {}
    ev = json.loads((run_dir / "evaluation.json").read_text()) if (run_dir / "evaluation.json").exists() else None
    caps_path = run_dir / "plots" / "captions.json"
    captions = json.loads(caps_path.read_text()) if caps_path.exists() else {}
    cfg = d["config"]
    e = html.escape
    parts = page_head(f"excess streams: {run_dir.name}", "excess stellar-stream search",
                      f"input <code>{e(conf['input'])}</code> · patch centre (ra, dec) = "
                      f"({fmt(d['center'][0])}, {fmt(d['center'][1])}) deg · method <b>{e(cfg['method'])}</b> · "
                      f"{d['n_stars']:,} stars after cuts · runtime {fmt(d['runtime_s'], 0)} s")
    pcs = d["protoclusters"]
    if pcs:
        p = pcs[0]
        parts.append(f"<div class='box'><b>{len(pcs)} protocluster(s).</b> Most significant: {p['n_members']} stars "
                     f"from {len(p['windows'])} window(s), line significance {fmt(p['significance'], 1)} "
                     f"(threshold {fmt(cfg['threshold'], 1)}).</div>")
    else:
        parts.append(f"<div class='box'>No Hough line reached the threshold {fmt(cfg['threshold'], 1)}: "
                     "no stream candidate in this patch.</div>")
    parts.append("<h2>Cut flow</h2><table><tr>" + "".join(f"<th>{e(k)}</th>" for k in d["cut_flow"]) + "</tr><tr>"
                 + "".join(f"<td>{v:,}</td>" for v in d["cut_flow"].values()) + "</tr></table>")
    evw = {w["index"]: w for w in (ev or {}).get("windows", [])}
    head = "<tr><th>#</th><th>SR [mas/yr]</th><th>SR stars</th><th>SB stars</th><th>S</th><th>B</th><th>σ_B</th>" \
           "<th>significance</th><th>candidate</th>" + ("<th>stream in SR</th><th>top-100 purity</th>"
                                                        "<th>top-100 compl.</th>" if ev else "") + "</tr>"
    rows = []
    for w in d["windows"]:
        ln = w["line"] or {}
        cls = " class='best'" if d.get("best_window") and d["best_window"]["index"] == w["index"] else ""
        cells = [str(w["index"]), f"{w['sr'][0]:.1f} – {w['sr'][1]:.1f}", f"{w['n_sr']:,}", f"{w['n_sb']:,}",
                 str(ln.get("S", "–")), fmt(ln.get("B"), 1), fmt(ln.get("sigma_B"), 2),
                 fmt(ln.get("significance"), 1), "yes" if w["candidate"] else ("" if w["status"] == "ok" else e(w["status"]))]
        if ev:
            x = evw.get(w["index"], {})
            t = x.get("top100", {})
            cells += [str(x.get("n_stream_sr", "–")), _pc(t.get("purity")), _pc(t.get("completeness"))]
        rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("<h2>Windows</h2><table>" + head + "".join(rows) + "</table>")
    if ev:
        parts.append("<h2>Against truth (mock)</h2><p>A mock is not real data.</p><table><tr><th>selection</th>"
                     "<th>stars</th><th>stream</th><th>purity</th><th>completeness</th></tr>")
        b = ev.get("best_window") or {}
        for key in ("top100", "top250", "line"):
            if key in b:
                x = b[key]
                parts.append(f"<tr><td class='l'>best window {key}</td><td>{x['n_selected']}</td>"
                             f"<td>{x['n_stream_selected']} / {x['n_stream']}</td><td>{_pc(x['purity'])}</td>"
                             f"<td>{_pc(x['completeness'])}</td></tr>")
        for x in ev.get("protoclusters", []):
            parts.append(f"<tr><td class='l'>protocluster {x['id']}</td><td>{x['n_selected']}</td>"
                         f"<td>{x['n_stream_selected']} / {x['n_stream']}</td><td>{_pc(x['purity'])}</td>"
                         f"<td>{_pc(x['completeness'])}</td></tr>")
        parts.append("</table>")
    plots = sorted((run_dir / "plots").glob("*.png"), key=lambda p: (p.name != "scan.png", p.name))
    parts += [figure_gallery(plots, captions), pre_section("Settings", conf), pre_section("Provenance", prov)]
    return write_page(run_dir, parts)
