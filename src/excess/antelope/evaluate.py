"""Model independence, measured: AUC and SIC of the PFN, ANTELOPE and a high-level autoencoder over a signal grid.

:func:`evaluate_models` trains, for each seed, on the same split of the sample:

* the supervised PFN on QCD vs ONE signal point (``train_point``);
* ANTELOPE: the VAE on the frozen PFN's latent of the QCD training events (scores ``total``, ``kl``,
  ``reconstruction``);
* the baseline: :class:`excess.nn.autoencoders.Autoencoder` on the high-level jet variables
  (:data:`~excess.antelope.data.HIGH_LEVEL`) of the QCD training events (score: reconstruction error);

and scores the held-out QCD events against every signal point (the training point's held-out half, all events of
the others). Per model and point: ROC AUC, maximal SIC (trusted range, :mod:`excess.stats.roc`) and the signal
fraction above the background's 95th percentile (the paper's third metric), as mean and standard deviation over
the seeds (training seeds; the data split is fixed by ``split_seed``). Training times are CPU seconds of this
process (``time.process_time``) and wall seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np

from .._util import get_logger
from ..errors import InputError
from .data import HIGH_LEVEL, SVJData, parse_point, point_label, point_mask, signal_points, split_indices

__all__ = ["MODELS", "evaluate_models", "EvaluationResult", "auc_table"]

log = get_logger(__name__)

MODELS = ("pfn", "antelope", "antelope_kl", "antelope_rec", "hl_ae")
MODEL_LABELS = {"pfn": "PFN (supervised)", "antelope": "ANTELOPE (total)", "antelope_kl": "ANTELOPE (KL)",
                "antelope_rec": "ANTELOPE (reco)", "hl_ae": "high-level AE"}


def _metrics(y, s) -> dict:
    from ..stats.roc import max_sic, roc_auc

    thr = np.quantile(s[y == 0], 0.95)
    return {"auc": roc_auc(y, s), "max_sic": max_sic(y, s), "eff_above_bkg95": float(np.mean(s[y == 1] > thr))}


@dataclass
class EvaluationResult:
    """Per model and signal point: metrics per seed and their mean / std; plus the first seed's scores."""

    points: list[tuple]
    train_point: tuple
    per_seed: dict = field(default_factory=dict)  # model -> point label -> metric -> [values]
    timing: dict = field(default_factory=dict)  # model -> {"cpu_s": [...], "wall_s": [...]}
    scores: dict = field(default_factory=dict)  # first seed: model -> {"bkg": arr, point label: arr}
    counts: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        out = {}
        for model, pts in self.per_seed.items():
            out[model] = {}
            for pl, mets in pts.items():
                out[model][pl] = {f"{k}_{stat}": float(f(v)) for k, v in mets.items()
                                  for stat, f in (("mean", np.mean), ("std", np.std))}
        return out

    def to_dict(self) -> dict:
        return {"points": [list(p) for p in self.points], "train_point": list(self.train_point),
                "summary": self.summary(), "per_seed": self.per_seed,
                "timing": {m: {k: [float(x) for x in v] for k, v in t.items()} for m, t in self.timing.items()},
                "counts": self.counts, "settings": self.settings}


def auc_table(result: EvaluationResult | dict, metric: str = "auc") -> str:
    """A plain-text table: one row per signal point, one column per model, ``mean ± std`` over seeds."""
    d = result.to_dict() if isinstance(result, EvaluationResult) else result
    summ = d["summary"]
    models = [m for m in MODELS if m in summ]
    pts = list(next(iter(summ.values())).keys()) if summ else []
    train = point_label(tuple(d["train_point"]) + (() if len(d["train_point"]) == 3 else (float("nan"),)))
    w = max([len(p) for p in pts] + [12]) + 2
    lines = [f"{'signal point':<{w}}" + "".join(f"{MODEL_LABELS[m]:>20}" for m in models)]
    for p in pts:
        cells = "".join(f"{summ[m][p][f'{metric}_mean']:>12.3f} ± {summ[m][p][f'{metric}_std']:.3f}" for m in models)
        lines.append(f"{p + (' *' if p.startswith(train) else ''):<{w}}" + cells)
    lines.append(f"(* the PFN's training point; {metric}: mean ± std over {len(d['settings'].get('seeds', []))} seeds)")
    return "\n".join(lines)


def evaluate_models(data: SVJData, *, train_point, seeds: Sequence[int] = (0, 1, 2), train_fraction: float = 0.5,
                    split_seed: int = 0, pfn_params: dict | None = None, vae_params: dict | None = None,
                    ae_params: dict | None = None, device: str = "auto", max_background: int | None = None,
                    max_signal: int | None = None, save_models=None) -> EvaluationResult:
    """Train and score the three models over ``seeds`` (see the module docstring); ``data`` preselected
    (:func:`~excess.antelope.data.preselect`), holding QCD (label 0) and signal events of one or more points.

    ``save_models``: a directory where the first seed's PFN and VAE are saved as ``excess antelope train`` saves
    them (``pfn/``, ``vae/``, ``meta.json``, ``train_events.json``), ready for ``excess antelope search``."""
    from ..nn.autoencoders import Autoencoder
    from .models import Antelope, PFNClassifier, loss_score

    ev = data.events
    labels = ev["label"].to_numpy()
    train_point = parse_point(train_point)
    train_sig = point_mask(ev, train_point)  # unknown point: one clear error listing the known ones
    points = signal_points(ev)
    if not (labels == 0).any():
        raise InputError("no QCD (label 0) events in the samples")
    if not seeds:
        raise InputError("need at least one seed")
    bkg = np.nonzero(labels == 0)[0]
    if max_background is not None:
        bkg = bkg[:max_background]
    b_tr, b_te = (bkg[i] for i in split_indices(bkg.size, train_fraction, split_seed))
    s_idx = np.nonzero(train_sig)[0]
    s_tr, s_te = (s_idx[i] for i in split_indices(s_idx.size, train_fraction, split_seed + 1))
    test_sets = {}
    for p in points:
        idx = np.setdiff1d(np.nonzero(point_mask(ev, p))[0], s_tr)  # the PFN's training events are not scored
        if max_signal is not None:
            idx = idx[:max_signal]
        test_sets[point_label(p)] = idx
    tr_idx = np.r_[b_tr, s_tr]
    y_tr = np.r_[np.zeros(b_tr.size, int), np.ones(s_tr.size, int)]
    hl = ev[list(HIGH_LEVEL)].to_numpy(dtype=np.float64)
    res = EvaluationResult(points=points, train_point=train_point)
    res.counts = {"qcd_train": int(b_tr.size), "qcd_test": int(b_te.size), "signal_train": int(s_tr.size),
                  "signal_test": {k: int(v.size) for k, v in test_sets.items()}}
    res.settings = {"seeds": list(map(int, seeds)), "train_fraction": train_fraction, "split_seed": split_seed,
                    "pfn_params": pfn_params or {}, "vae_params": vae_params or {}, "ae_params": ae_params or {},
                    "device": device}
    for model in MODELS:
        res.per_seed[model] = {k: {"auc": [], "max_sic": [], "eff_above_bkg95": []} for k in test_sets}
    res.timing = {k: {"cpu_s": [], "wall_s": []} for k in ("pfn", "vae", "hl_ae")}
    all_test = np.r_[b_te, *test_sets.values()]
    for i, seed in enumerate(seeds):
        c0, w0 = time.process_time(), time.perf_counter()
        pfn = PFNClassifier(**(pfn_params or {}), random_state=int(seed), device=device).fit(data.tracks[tr_idx], y_tr)
        c1, w1 = time.process_time(), time.perf_counter()
        ant = Antelope(vae_params=vae_params, random_state=int(seed), device=device)
        ant.fit(data.tracks[tr_idx], y_tr, pfn=pfn)
        c2, w2 = time.process_time(), time.perf_counter()
        ae = Autoencoder(**{"hidden": (32, 16), "latent": 4, **(ae_params or {})}, random_state=int(seed),
                         device=device).fit(hl[b_tr])
        c3, w3 = time.process_time(), time.perf_counter()
        if i == 0 and save_models is not None:
            from .._util import atomic_write_json

            ant.save(save_models)
            atomic_write_json(Path(save_models) / "train_events.json", data.keys(tr_idx))
            atomic_write_json(Path(save_models) / "meta.json", {
                "train_point": list(train_point), "files": list(data.files), "seed": int(seed),
                "n_train_qcd": int(b_tr.size), "n_train_signal": int(s_tr.size), "split_seed": split_seed,
                "train_fraction": train_fraction, "params": {"pfn": pfn_params or {}, "vae": vae_params or {}},
                "pfn_history": pfn.history_, "vae_history": ant.vae_.history_, "written_by": "evaluate_models"})
        for k, (ca, cb, wa, wb) in {"pfn": (c0, c1, w0, w1), "vae": (c1, c2, w1, w2), "hl_ae": (c2, c3, w2, w3)}.items():
            res.timing[k]["cpu_s"].append(cb - ca)
            res.timing[k]["wall_s"].append(wb - wa)
        tracks = data.tracks[all_test]
        z = pfn.latent(tracks)
        losses = ant.vae_.losses(z)
        scores_all = {"pfn": pfn.decision_function(tracks), "antelope": loss_score(losses["total"]),
                      "antelope_kl": loss_score(losses["kl"]), "antelope_rec": loss_score(losses["reconstruction"]),
                      "hl_ae": ae.reconstruction_error(hl[all_test])}
        nb = b_te.size
        offsets = np.cumsum([nb, *(v.size for v in test_sets.values())])
        for model, s in scores_all.items():
            sb = s[:nb]
            if i == 0:
                res.scores.setdefault(model, {})["QCD"] = sb
            for k_pt, pl in enumerate(test_sets):
                ss = s[offsets[k_pt]:offsets[k_pt + 1]]
                y = np.r_[np.zeros(nb), np.ones(ss.size)]
                for k, v in _metrics(y, np.r_[sb, ss]).items():
                    res.per_seed[model][pl][k].append(float(v))
                if i == 0:
                    res.scores[model][pl] = ss
        log.info("seed %s: PFN %.0fs, VAE %.0fs, AE %.0fs (CPU)", seed, c1 - c0, c2 - c1, c3 - c2)
    return res
