"""The calibrated two-sample classifier test: can a classifier tell sample ``a`` from sample ``b``?

As the CaloChallenge 2022 evaluates generated showers against reference showers: the two samples are
balanced (the larger one subsampled) and split 60/20/20 into training, calibration and test rows; a
classifier learns ``a`` (label 0) vs ``b`` (label 1); its scores are calibrated by isotonic regression on
the calibration rows; the test rows give the ``AUC`` (of the raw scores) and, from the calibrated
probabilities, the binary cross-entropy ``BCE`` and ``JSD = (ln 2 - BCE) / ln 2`` (an estimate of the
Jensen-Shannon divergence of the two densities in bits). ``AUC`` 0.5 / ``JSD`` 0 means indistinguishable;
``AUC`` 1 / ``JSD`` 1 disjoint. The test rows are touched once, at the end.

The default classifier, :class:`~excess.nn.classifiers.MLPClassifier`, chooses its early stopping and best
epochs on the calibration rows, as the challenge's script chooses its epoch on the rows it calibrates on;
other estimators split their training rows as they do.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .._util import check_random_state
from ..errors import ConfigError, InputError

__all__ = ["TwoSampleResult", "two_sample_test", "jsd_from_bce"]


def jsd_from_bce(bce: float) -> float:
    """``(ln 2 - BCE) / ln 2``: the Jensen-Shannon divergence (bits) a calibrated classifier's BCE implies."""
    return (math.log(2) - float(bce)) / math.log(2)


@dataclass(frozen=True)
class TwoSampleResult:
    """Scores of a two-sample classifier test on its held-out test rows (see the module docstring)."""

    auc: float
    jsd: float
    bce: float
    n_train: int
    n_calibration: int
    n_test: int
    epochs_run: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def _rows(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise InputError(f"two-sample test: sample {name} must be (n, d), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"two-sample test: sample {name} contains NaN or infinite values")
    return x


def two_sample_test(
    a,
    b,
    *,
    classifier="mlp",
    fractions: tuple[float, float] = (0.6, 0.2),
    min_rows: int = 20,
    random_state=None,
    device="auto",
    **params,
) -> TwoSampleResult:
    """Train ``classifier`` to separate ``a`` (n_a, d) from ``b`` (n_b, d); calibrated scores on held-out rows.

    ``classifier``: ``"mlp"`` (:class:`~excess.nn.classifiers.MLPClassifier`, which gets ``device``),
    ``"hgb"`` or an estimator instance (cloned), with ``params`` passed on to it. ``fractions`` are the
    training and calibration shares of each sample; the rest is the test split. Each sample needs at least
    ``min_rows`` rows.
    """
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score

    from .classifiers import MLPClassifier, make_classifier

    a, b = _rows(a, "a"), _rows(b, "b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"two-sample test: the samples have {a.shape[1]} and {b.shape[1]} columns")
    f_train, f_cal = (float(f) for f in fractions)
    if f_train <= 0 or f_cal <= 0 or f_train + f_cal >= 1:
        raise ConfigError(f"two-sample test: fractions (train, calibration) must be > 0 with a sum < 1, got {fractions}")
    n = min(len(a), len(b))
    if n < min_rows:
        raise InputError(f"two-sample test needs >= {min_rows} rows per sample, got {len(a)} and {len(b)}")
    rng = check_random_state(random_state)
    a = a[rng.permutation(len(a))[:n]]
    b = b[rng.permutation(len(b))[:n]]
    n_tr, n_ca = int(f_train * n), int(f_cal * n)
    cuts = (slice(0, n_tr), slice(n_tr, n_tr + n_ca), slice(n_tr + n_ca, n))
    X = [np.concatenate([a[s], b[s]]) for s in cuts]
    y = [np.concatenate([np.zeros(s.stop - s.start, np.int64), np.ones(s.stop - s.start, np.int64)]) for s in cuts]
    if isinstance(classifier, str) and classifier == "mlp":
        params.setdefault("device", device)
    clf = make_classifier(classifier, random_state=rng, **params)
    if isinstance(clf, MLPClassifier):  # as the challenge: the calibration rows also choose the epoch
        clf.fit(X[0], y[0], validation=(X[1], y[1]))
    else:
        clf.fit(X[0], y[0])
    s_cal, s_test = clf.decision_function(X[1]), clf.decision_function(X[2])
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s_cal, y[1])
    p = np.clip(iso.predict(s_test), 1e-7, 1 - 1e-7)
    bce = float(-np.mean(y[2] * np.log(p) + (1 - y[2]) * np.log(1 - p)))
    history = getattr(clf, "history_", None)
    epochs_run = int(history["stopped_epoch"]) + 1 if isinstance(history, dict) and "stopped_epoch" in history else None
    return TwoSampleResult(float(roc_auc_score(y[2], s_test)), jsd_from_bce(bce), bce, len(y[0]), len(y[1]), len(y[2]),
                           epochs_run)
