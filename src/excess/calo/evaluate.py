"""CaloChallenge-style evaluation of generated showers against reference showers.

* High-level features (as the challenge's ``HighLevelFeatures``): ``E_tot/E_inc``, energy per layer,
  centres of energy and widths per layer (in eta = r cos(alpha) and phi = r sin(alpha) for layers
  binned in angle, and in r for all), sparsity per layer (fraction of empty voxels), and the
  spectrum of voxel energies.
* Separation power per histogram, ``S = 0.5 sum (p - q)^2 / (p + q)`` of unit-normalised histograms
  (0 for identical, 1 for disjoint), on binnings fixed by the reference sample.
* A classifier test on low-level (voxels / E_inc) or high-level (features above) inputs: the substrate's
  calibrated two-sample test (:func:`excess.nn.two_sample.two_sample_test`: an MLP classifier, isotonic
  calibration on a calibration split, ``AUC`` and ``JSD = (ln 2 - BCE)/ln 2`` on a test split).
  AUC 0.5 / JSD 0 means indistinguishable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._util import check_random_state, get_logger
from ..errors import ConfigError, InputError
from .geometry import CaloGeometry

__all__ = [
    "high_level_features",
    "separation_power",
    "histogram_chi2",
    "FeatureHistogram",
    "ClassifierResult",
    "EvaluationResult",
    "feature_histograms",
    "classifier_test",
    "evaluate_showers",
]

log = get_logger(__name__)
_EPS = 1e-16
#: energy offset (MeV) inside log10 of per-layer energies, so that empty layers are finite
LOG_OFFSET_MEV = 1e-3


def high_level_features(showers: np.ndarray, incident_energies: np.ndarray, geometry: CaloGeometry) -> dict[str, np.ndarray]:
    """Per-shower high-level features, keyed ``E_ratio``, ``E_layer_<id>``, ``EC_r_<id>``, ``width_r_<id>``,
    ``EC_eta_<id>``, ``EC_phi_<id>``, ``width_eta_<id>``, ``width_phi_<id>`` (angular layers only),
    ``sparsity_<id>`` (``<id>`` the layer id of the XML)."""
    showers = np.asarray(showers, dtype=np.float64)
    e_inc = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
    geometry.check_showers(showers)
    vt = geometry.voxel_table
    out: dict[str, np.ndarray] = {"E_ratio": showers.sum(1) / e_inc}
    for i, lay in enumerate(geometry.active_layers):
        sl = geometry.layer_slice(i)
        x = showers[:, sl]
        e_l = x.sum(1)
        out[f"E_layer_{lay.id}"] = e_l
        norm = e_l + _EPS
        coords = [("r", vt["r"][sl])]
        if lay.n_alpha > 1:
            coords += [("eta", vt["eta"][sl]), ("phi", vt["phi"][sl])]
        for name, c in coords:
            m1 = x @ c / norm
            m2 = x @ (c * c) / norm
            out[f"EC_{name}_{lay.id}"] = m1
            out[f"width_{name}_{lay.id}"] = np.sqrt(np.clip(m2 - m1**2, 0.0, None))
        out[f"sparsity_{lay.id}"] = 1.0 - (x > 0).mean(1)
    return out


def separation_power(p_counts, q_counts) -> float:
    """``0.5 * sum (p - q)^2 / (p + q)`` of the unit-normalised histograms ``p`` and ``q``."""
    p = np.asarray(p_counts, dtype=float)
    q = np.asarray(q_counts, dtype=float)
    if p.shape != q.shape:
        raise InputError(f"histograms differ in shape: {p.shape} vs {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        raise InputError("separation power needs non-empty histograms")
    p, q = p / p.sum(), q / q.sum()
    s = p + q
    m = s > 0
    return float(0.5 * np.sum((p[m] - q[m]) ** 2 / s[m]))


def histogram_chi2(reference, generated, bins) -> float:
    """Chi2 per bin between two samples histogrammed in ``bins`` (generated scaled to the reference count).

    Values outside ``bins`` are clipped into the edge bins. Used to pick the best epoch on
    the ``E_tot/E_inc`` distribution (the FastCaloGAN criterion).
    """
    bins = np.asarray(bins, dtype=float)
    a, _ = np.histogram(np.clip(reference, bins[0], bins[-1]), bins)
    b, _ = np.histogram(np.clip(generated, bins[0], bins[-1]), bins)
    b = b * (a.sum() / max(b.sum(), 1))
    var = a + b * (a.sum() / max(b.sum(), 1))
    m = var > 0
    return float(np.sum((a[m] - b[m]) ** 2 / var[m]) / max(int(m.sum()), 1))


@dataclass(frozen=True)
class FeatureHistogram:
    """Reference and generated counts of one feature on a common binning."""

    name: str
    edges: np.ndarray
    reference: np.ndarray
    generated: np.ndarray
    separation: float
    log10: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "edges": self.edges, "reference": self.reference, "generated": self.generated,
                "separation_power": self.separation, "log10": self.log10}


def _transform(name: str, values: np.ndarray) -> tuple[np.ndarray, bool]:
    if name.startswith("E_layer") or name == "voxel_energy":
        return np.log10(values + LOG_OFFSET_MEV), True
    return values, False


def _edges_for(ref: np.ndarray, n_bins: int, name: str) -> np.ndarray:
    if name.startswith("sparsity"):
        return np.linspace(0.0, 1.0, n_bins + 1)
    lo, hi = np.quantile(ref, [0.001, 0.999])
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        lo, hi = float(np.min(ref)) - 0.5, float(np.max(ref)) + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def feature_histograms(
    ref_features: dict[str, np.ndarray],
    gen_features: dict[str, np.ndarray],
    *,
    n_bins: int = 40,
) -> list[FeatureHistogram]:
    """Histograms and separation powers for every feature; binning from the reference (0.1-99.9 %
    quantiles), generated values outside it counted in the edge bins."""
    hists = []
    for name, ref in ref_features.items():
        if name not in gen_features:
            continue
        r, is_log = _transform(name, np.asarray(ref, dtype=float))
        g, _ = _transform(name, np.asarray(gen_features[name], dtype=float))
        edges = _edges_for(r, n_bins, name)
        rc, _ = np.histogram(np.clip(r, edges[0], edges[-1]), edges)
        gc, _ = np.histogram(np.clip(g, edges[0], edges[-1]), edges)
        hists.append(FeatureHistogram(name, edges, rc, gc, separation_power(rc, gc), is_log))
    return hists


def _voxel_spectrum(showers: np.ndarray, max_values: int = 2_000_000, rng=None) -> np.ndarray:
    v = showers[showers > 0].astype(np.float64)
    if v.size > max_values:
        v = check_random_state(rng).choice(v, max_values, replace=False)
    return v


# ---- classifier ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassifierResult:
    """Generated-vs-reference classifier on a held-out test split (calibrated probabilities)."""

    inputs: str
    auc: float
    jsd: float
    bce: float
    n_train: int
    n_test: int
    epochs_run: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _classifier_inputs(showers, e_inc, geometry: CaloGeometry, inputs: str) -> np.ndarray:
    e_inc = np.asarray(e_inc, dtype=np.float64).reshape(-1)
    if inputs == "low":
        x = np.log10(np.asarray(showers, dtype=np.float64) / e_inc[:, None] + 1e-7) + 7.0  # empty voxel -> 0
        return np.concatenate([np.log10(e_inc)[:, None], x], axis=1).astype(np.float32)
    if inputs == "high":
        feats = high_level_features(showers, e_inc, geometry)
        cols = [np.log10(e_inc)]
        for name, v in feats.items():
            cols.append(np.log10(v + LOG_OFFSET_MEV) if name.startswith("E_layer") else v)
        return np.stack(cols, axis=1).astype(np.float32)
    raise ConfigError(f"classifier inputs must be 'low' or 'high', got {inputs!r}")


def classifier_test(
    reference: np.ndarray,
    reference_energies: np.ndarray,
    generated: np.ndarray,
    generated_energies: np.ndarray,
    geometry: CaloGeometry,
    *,
    inputs: str = "low",
    hidden: tuple[int, ...] = (256, 256),
    epochs: int = 30,
    patience: int = 5,
    batch_size: int = 256,
    lr: float = 5e-4,
    device="auto",
    random_state: None | int | np.random.Generator = None,
) -> ClassifierResult:
    """Can a classifier tell generated from reference showers? AUC and JSD on a held-out test split.

    :func:`excess.nn.two_sample.two_sample_test` with an :class:`~excess.nn.classifiers.MLPClassifier`
    of ``hidden`` layers (early stopping after ``patience`` epochs on 20 % of its training rows, the average
    of its best epochs): classes balanced by subsampling the larger one; splits 60/20/20
    (train/calibration/test); isotonic calibration; the test split is touched only once, at the end.
    """
    from ..nn.two_sample import two_sample_test

    xr = _classifier_inputs(reference, reference_energies, geometry, inputs)
    xg = _classifier_inputs(generated, generated_energies, geometry, inputs)
    if min(len(xr), len(xg)) < 20:
        raise InputError(f"classifier test needs >= 20 showers per class, got {len(xr)} reference, {len(xg)} generated")
    r = two_sample_test(xr, xg, classifier="mlp", random_state=check_random_state(random_state), device=device,
                        hidden=tuple(hidden), epochs=int(epochs), patience=int(patience), batch_size=int(batch_size), lr=float(lr))
    return ClassifierResult(inputs, r.auc, r.jsd, r.bce, r.n_train, r.n_test, int(r.epochs_run))


# ---- the whole evaluation ---------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationResult:
    """Separation powers per histogram, their mean, and classifier scores."""

    geometry: str
    n_reference: int
    n_generated: int
    separation_powers: dict[str, float]
    mean_separation_power: float
    classifiers: dict[str, ClassifierResult]
    histograms: list[FeatureHistogram] = field(default_factory=list, repr=False)

    def to_dict(self, *, with_histograms: bool = False) -> dict:
        d = {
            "geometry": self.geometry,
            "n_reference": self.n_reference,
            "n_generated": self.n_generated,
            "mean_separation_power": self.mean_separation_power,
            "separation_powers": dict(self.separation_powers),
            "classifiers": {k: v.to_dict() for k, v in self.classifiers.items()},
        }
        if with_histograms:
            d["histograms"] = [h.to_dict() for h in self.histograms]
        return d


def evaluate_showers(
    reference,
    generated,
    geometry: CaloGeometry | None = None,
    *,
    classifiers: tuple[str, ...] = ("low", "high"),
    n_bins: int = 40,
    classifier_kwargs: dict | None = None,
    device="auto",
    random_state: None | int | np.random.Generator = None,
) -> EvaluationResult:
    """Compare ``generated`` with ``reference`` (both :class:`~excess.calo.io.ShowerData`); the classifiers
    run on ``device``."""
    rng = check_random_state(random_state)
    geometry = geometry or reference.geometry or generated.geometry
    if geometry is None:
        raise InputError("evaluation needs a geometry (none given and none found in the files)")
    geometry.check_showers(reference.showers, "reference showers")
    geometry.check_showers(generated.showers, "generated showers")
    fr = high_level_features(reference.showers, reference.incident_energies, geometry)
    fg = high_level_features(generated.showers, generated.incident_energies, geometry)
    fr["voxel_energy"] = _voxel_spectrum(reference.showers, rng=rng)
    fg["voxel_energy"] = _voxel_spectrum(generated.showers, rng=rng)
    hists = feature_histograms(fr, fg, n_bins=n_bins)
    seps = {h.name: h.separation for h in hists}
    clf = {}
    for inputs in classifiers:
        clf[inputs] = classifier_test(
            reference.showers, reference.incident_energies, generated.showers, generated.incident_energies,
            geometry, inputs=inputs, random_state=rng, **{"device": device, **(classifier_kwargs or {})},
        )
        log.info("classifier %s: AUC %.3f JSD %.3f", inputs, clf[inputs].auc, clf[inputs].jsd)
    return EvaluationResult(
        geometry.name, len(reference), len(generated), seps, float(np.mean(list(seps.values()))), clf, hists
    )
