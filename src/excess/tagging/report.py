"""``report.html`` of an electron-tagging run directory (evaluation and/or impact study).

Built only from ``metrics.json``, ``config.json`` and ``plots/*.png`` (so it can be regenerated), with the
style and number formatting of the search report (:mod:`excess.report.html`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..report.html import figure_gallery, fmt, page_head, pre_section, write_page

__all__ = ["write_tagging_report"]


def _eff_table(effs: list[dict]) -> str:
    bins = list(dict.fromkeys((e["pt_lo"], e["pt_hi"]) for e in effs))
    cats = list(dict.fromkeys(e["category"] for e in effs))
    head = "".join(f"<th>{lo:g}-{hi:g} GeV</th>" for lo, hi in bins)
    rows = []
    for c in cats:
        cells = []
        for lo, hi in bins:
            e = next((e for e in effs if e["category"] == c and e["pt_lo"] == lo and e["pt_hi"] == hi), None)
            if e is None or e["efficiency"] is None or e["efficiency"] != e["efficiency"]:
                cells.append(f"<td title='{e['n_electrons'] if e else 0} electrons'>–</td>")
            else:
                cells.append(f"<td title='{e['n_electrons']} electrons, {e['n_others']} others'>"
                             f"{fmt(e['efficiency'])} <small>[{fmt(e['eff_lo'])}, {fmt(e['eff_hi'])}]</small></td>")
        rows.append(f"<tr><td class='l'>{html.escape(c)}</td>" + "".join(cells) + "</tr>")
    return "<table><tr><th class='l'>category</th>" + head + "</tr>" + "".join(rows) + "</table>"


def _impact_table(impact: dict) -> str:
    rows = []
    for p in impact.get("points", []):
        cells = []
        for sel in ("no_tagger", "tagger", "tagger_rate", "threshold_4p5"):
            r = p["selections"].get(sel, {})
            floor = "*" if r.get("b_is_floor") else ""
            cells.append(f"<td>{fmt(r.get('s'), 2)}</td><td>{fmt(r.get('b'), 2)}{floor}</td>"
                         f"<td>{fmt(r.get('z'), 3)}</td>")
        rows.append(f"<tr><td class='l'>{p['m_chi20']:g}/{p['m_chi10']:g}</td>" + "".join(cells) + "</tr>")
    head = "".join(f"<th colspan='3'>{h}</th>" for h in ("no tagger", "tagger on the track",
                                                        "tagger by its tag rates", "4.5 GeV electron"))
    sub = "<th>S</th><th>B</th><th>Z</th>" * 4
    return (f"<table><tr><th class='l' rowspan='2'>m(χ̃⁰₂)/m(χ̃⁰₁) [GeV]</th>{head}</tr><tr>{sub}</tr>"
            + "".join(rows) + "</table>")


def write_tagging_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from the saved results; returns its path."""
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    cfg = (run_dir / "config.json").read_text() if (run_dir / "config.json").exists() else ""
    plots = sorted((run_dir / "plots").glob("*.png")) if (run_dir / "plots").exists() else []
    captions = metrics.get("plot_captions", {})
    parts = page_head(f"excess electron tagging: {run_dir.name}", "excess low-pT electron identification",
                      f"run <code>{html.escape(str(run_dir))}</code> · {metrics.get('n_tracks', 0):,} tracks "
                      f"({metrics.get('n_electrons', 0):,} electrons) · runtime {fmt(metrics.get('runtime_s'), 0)} s")
    fr = metrics.get("category_fractions_electrons")
    if fr:
        parts.append("<div class='box'><b>Electron category fractions:</b> "
                     + ", ".join(f"{html.escape(k)} {100 * v:.1f} %" for k, v in fr.items())
                     + " (study, higgsino electrons: 52.2 / 22.9 / 16.1 / 7.6 %).</div>")
    for name, m in metrics.get("models", {}).items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        roc = m.get("roc", {})
        parts.append("<table><tr><th class='l'>category</th><th>AUC</th><th>electrons</th><th>others</th></tr>"
                     + "".join(f"<tr><td class='l'>{html.escape(g)}</td><td>{fmt(v.get('auc'), 4)}</td>"
                               f"<td>{v.get('n_electrons')}</td><td>{v.get('n_others')}</td></tr>" for g, v in roc.items())
                     + "</table>")
        if m.get("efficiency"):
            parts.append(f"<p>Efficiency at {100 * metrics.get('fake_rate', 0.05):.0f} % fake rate per "
                         f"{html.escape(metrics.get('pt_column', 'pt'))} bin [68 % Clopper-Pearson]:</p>"
                         + _eff_table(m["efficiency"]))
    if metrics.get("impact"):
        imp = metrics["impact"]
        parts.append("<h2>Impact on the mock higgsino signal region</h2>"
                     f"<p>{html.escape(imp.get('description', ''))}</p>" + _impact_table(imp))
    parts.append(figure_gallery(plots, captions))
    parts.append(pre_section("Settings", cfg))
    return write_page(run_dir, parts)
