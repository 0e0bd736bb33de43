"""``report.html`` of a run directory: scan table, fits, significances, SIC curves and settings.

Built only from what the run saved (``metrics.json``, ``config.yaml``, ``provenance.json``,
``plots/*.png``), so ``excess report RUN_DIR`` regenerates it at any time. Self-contained HTML with
relative image links; no JavaScript, no network.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from .._util import atomic_path

__all__ = ["write_report", "CSS", "fmt", "page_head", "figure_gallery", "pre_section", "write_page"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0.1em} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.92em} th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f2f2f2} td.l,th.l{text-align:left} tr.best td{background:#fff4c2;font-weight:600}
.flag{color:#a00} .ok{color:#070} figure{display:inline-block;margin:0.6em;vertical-align:top}
figure img{max-width:560px;border:1px solid #ddd} figcaption{font-size:0.85em;color:#444;max-width:560px}
.box{background:#f7f9fc;border-left:4px solid #3b6fb6;padding:0.6em 1em;margin:1em 0}
pre{background:#f6f6f6;padding:0.8em;overflow-x:auto;font-size:0.85em}
"""


def fmt(x, nd=2):
    if x is None:
        return "–"
    if isinstance(x, str):
        return html.escape(x)
    try:
        if math.isnan(x):
            return "–"
    except TypeError:
        return html.escape(str(x))
    return f"{x:.{nd}f}"


def _fmt_p(x):
    if x is None:
        return "–"
    try:
        return f"{x:.3g}"
    except (TypeError, ValueError):
        return html.escape(str(x))


_FIRST = ("significance_scan.png", "jet_masses_best.png", "sic.png")



def page_head(title: str, heading: str, subtitle_html: str = "") -> list[str]:
    """The opening parts of a report page (house CSS); ``subtitle_html`` is inserted as given (escape it)."""
    return [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
            f"<style>{CSS}</style></head><body>",
            f"<h1>{html.escape(heading)}</h1>" + (f"<p class='sub'>{subtitle_html}</p>" if subtitle_html else "")]


def figure_gallery(plots, captions: dict | None = None) -> str:
    """A "Plots" section: each PNG of ``plots`` (under the run's ``plots/``) with its caption."""
    if not plots:
        return ""
    captions = captions or {}
    figs = []
    for p in plots:
        cap = captions.get(p.name, p.stem.replace("_", " "))
        name = html.escape(p.name)
        figs.append(f"<figure><a href='plots/{name}'><img src='plots/{name}' alt='{html.escape(cap)}'></a>"
                    f"<figcaption>{html.escape(cap)}</figcaption></figure>")
    return "<h2>Plots</h2>" + "".join(figs)


def pre_section(title: str, content) -> str:
    """A titled preformatted block: text as given, anything else as indented JSON; empty content gives ""."""
    if not content:
        return ""
    text = content if isinstance(content, str) else json.dumps(content, indent=2)
    return f"<h2>{html.escape(title)}</h2><pre>" + html.escape(text) + "</pre>"


def write_page(run_dir, parts: list[str]) -> Path:
    """Close the page and write ``run_dir/report.html`` atomically; returns its path."""
    out = Path(run_dir) / "report.html"
    with atomic_path(out, suffix=".html") as tmp:
        tmp.write_text("\n".join([*parts, "</body></html>"]), encoding="utf-8")
    return out

def _order_plots(plots: list[Path], best_window: str | None) -> list[Path]:
    """Headline plots first, then the most significant window's fits, then the other windows in mjj order."""
    def key(p: Path):
        if p.name in _FIRST:
            return (0, _FIRST.index(p.name), p.name)
        if best_window and p.name.startswith("fits_w" + best_window.split()[-1].replace("-", "_")):
            return (1, 0, p.name)
        return (2, 0, p.name)

    return sorted(plots, key=key)


def _scan_table(metrics: dict) -> str:
    effs = metrics.get("config", {}).get("efficiencies", [])
    best = metrics.get("best") or {}
    rows = []
    head = "".join(f"<th>Z local @ ε={e:g}</th>" for e in effs)
    for w in metrics.get("windows", []):
        win = w.get("window", {})
        label = win.get("label") or f"{win.get('sr_lo')}-{win.get('sr_hi')}"
        cells = []
        for e in effs:
            t = next((t for t in w.get("tests", []) if abs(t.get("efficiency", -1) - e) < 1e-12), None)
            if t is None:
                cells.append("<td>–</td>")
            elif t.get("status") != "ok":
                cells.append(f"<td class='flag' title='{html.escape(t.get('reason', ''))}'>no result</td>")
            else:
                cells.append(f"<td>{fmt(t.get('z'))}</td>")
        status = w.get("status", "")
        cls = " class='best'" if best.get("window") == label else ""
        st = f"<span class='ok'>ok</span>" if status == "ok" else f"<span class='flag' title='{html.escape(w.get('reason', ''))}'>{html.escape(status)}: {html.escape(w.get('reason', ''))}</span>"
        rows.append(f"<tr{cls}><td class='l'>{html.escape(str(label))}</td><td>{w.get('n_sr', 0)}</td><td>{w.get('n_sb', 0)}</td>"
                    + "".join(cells) + f"<td>{fmt(w.get('max_sic'))}</td><td class='l'>{st}</td></tr>")
    return ("<table><tr><th class='l'>SR window (GeV)</th><th>N SR</th><th>N SB</th>" + head
            + "<th>max SIC</th><th class='l'>status</th></tr>" + "".join(rows) + "</table>")


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from the saved results; returns its path."""
    from .._util import read_json
    from ..errors import RunDirectoryError

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunDirectoryError(f"{run_dir}: no such run directory; give the -o folder of an `excess search` run")
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir}: is a file; give the -o folder of an `excess search` run")
    if not (run_dir / "metrics.json").exists():
        raise RunDirectoryError(f"{run_dir}: not a finished run directory (no metrics.json); give the -o folder of an "
                                "`excess search` run, or finish the run with `excess search CONFIG -o "
                                f"{run_dir} --resume`")
    metrics = read_json(run_dir / "metrics.json", "metrics file of the run")
    if not isinstance(metrics, dict):
        raise RunDirectoryError(f"{run_dir / 'metrics.json'}: not a metrics file of excess (a JSON object expected)")
    prov = read_json(run_dir / "provenance.json", "provenance file") if (run_dir / "provenance.json").exists() else {}
    if not isinstance(prov, dict):
        prov = {}
    cfg_text = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").exists() else ""
    plots = sorted((run_dir / "plots").glob("*.png")) if (run_dir / "plots").exists() else []
    captions = metrics.get("plot_captions", {})
    best = metrics.get("best")
    glob = metrics.get("global_significance") or {}
    parts = page_head(f"excess report: {run_dir.name}", "excess search report",
                      f"run <code>{html.escape(str(run_dir))}</code> · "
                      f"method <b>{html.escape(str(metrics.get('method', '?')))}</b> · {metrics.get('n_events', 0):,} "
                      f"events · runtime {fmt(metrics.get('runtime_s'), 0)} s")
    if best:
        parts.append(
            "<div class='box'><b>Most significant:</b> window " + html.escape(str(best.get("window"))) + " GeV at background efficiency "
            + fmt(best.get("efficiency"), 4) + ": local Z = " + fmt(best.get("z_local")) + " (p = " + _fmt_p(best.get("p_local")) + ")"
            + "; global Z " + ("&gt; " if glob.get("z_global_is_limit") else "= ") + fmt(glob.get("z_global"))
            + " (p " + ("&lt; " if glob.get("z_global_is_limit") else "= ") + _fmt_p(glob.get("p_global")) + " from "
            + str(glob.get("n_toys", "")) + " background-only pseudo-experiments of the whole scan"
            + (f"; trials-factor estimate Z = {fmt(glob.get('z_trials'))}" if glob.get("z_trials") is not None else "") + ")."
            + (f" Estimated resonance mass {fmt(best.get('m_res'), 0)} GeV; jet masses m_X ≈ {fmt(best.get('m_x'), 0)} GeV, m_Y ≈ {fmt(best.get('m_y'), 0)} GeV." if best.get("m_res") else "")
            + (f" Fitted signal fraction {fmt(best.get('signal_fraction'), 5)} ± {fmt(best.get('signal_fraction_err'), 5)}." if best.get("signal_fraction") is not None else "")
            + "</div>")
    else:
        parts.append("<div class='box'>No window produced a result: see the status column below.</div>")
    parts.append("<h2>Scan</h2>" + _scan_table(metrics))
    parts.append(figure_gallery(_order_plots(plots, (best or {}).get("window")), captions))
    parts.append("<h2>Settings</h2><pre>" + html.escape(cfg_text) + "</pre>")
    parts.append(pre_section("Provenance", prov))
    return write_page(run_dir, parts)
