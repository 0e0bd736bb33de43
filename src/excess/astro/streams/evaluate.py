"""Purity and completeness of the selected stars against truth labels (mock patches).

Conventions (GaiaCWoLa, arXiv:2305.03761): within a signal region, the ``n`` highest-scored stars are kept;
*purity* is the fraction of them that are stream stars, *completeness* the fraction of the region's stream stars
(after the cuts) that they contain. For a search's protoclusters the reference is every stream star of the patch
that passed the cuts.
"""

from __future__ import annotations

import pandas as pd

from ...errors import InputError
from .search import StreamSearchResult, prepare_patch

__all__ = ["purity_completeness", "evaluate_search"]


def purity_completeness(selected_ids, stream_ids) -> dict:
    """Purity and completeness of ``selected_ids`` against the set ``stream_ids`` (both source ids)."""
    sel, truth = set(map(int, selected_ids)), set(map(int, stream_ids))
    hit = len(sel & truth)
    return {"n_selected": len(sel), "n_stream_selected": hit, "n_stream": len(truth),
            "purity": hit / len(sel) if sel else float("nan"),
            "completeness": hit / len(truth) if truth else float("nan")}


def evaluate_search(result: StreamSearchResult, stars: pd.DataFrame, *, top=(100, 250)) -> dict:
    """Purity/completeness of every window's top stars and of the protoclusters; ``stars`` carry ``is_stream``."""
    if "is_stream" not in stars:
        raise InputError("evaluate: the star table has no 'is_stream' truth column (only mocks have one)")
    sel, _ = prepare_patch(stars, result.center, result.config.cuts)
    res = result.config.resonant
    stream = sel.loc[sel["is_stream"].astype(bool)]
    windows = []
    for w in result.windows:
        if w.line is None:
            continue
        in_sr = stream.loc[(stream[res] >= w.sr[0]) & (stream[res] <= w.sr[1]), "source_id"].to_numpy()
        entry = {"index": w.index, "sr": list(w.sr), "n_stream_sr": int(len(in_sr)), "n_sr": w.n_sr,
                 "line_significance": w.line.significance}
        for n in top:
            if n <= len(w.top_ids):
                entry[f"top{n}"] = purity_completeness(w.top_ids[:n], in_sr)
        if w.line_ids:
            entry["line"] = purity_completeness(w.line_ids, in_sr)
        windows.append(entry)
    all_ids = stream["source_id"].to_numpy()
    clusters = [{"id": p.id, "significance": p.significance, **purity_completeness(p.members, all_ids)}
                for p in result.protoclusters]
    best = result.best_window
    out = {"n_stream_after_cuts": int(len(all_ids)), "n_stars_after_cuts": int(len(sel)), "windows": windows,
           "protoclusters": clusters,
           "best_window": next((w for w in windows if best is not None and w["index"] == best.index), None),
           "note": "truth from a mock patch: a mock is not real data"}
    return out
