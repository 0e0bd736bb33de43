"""Fast calorimeter simulation.

Pipeline: ``geometry`` (CaloChallenge binning XML) -> ``io`` (CaloChallenge HDF5) -> ``gflash``
(reference showers) -> ``models`` (conditional flow, VAE, WGAN-GP; ``train`` loop) -> ``evaluate``
(histograms, separation powers, classifier AUC/JSD; ``plots``) and ``timing``.

Importing this package does not import torch.
"""

from __future__ import annotations

from .evaluate import ClassifierResult, EvaluationResult, evaluate_showers, high_level_features, separation_power
from .geometry import BUILTIN_GEOMETRIES, CaloGeometry, Layer, load_geometry
from .gflash import GFlashSimulator, sample_incident_energies
from .io import ShowerData, read_showers, write_showers

__all__ = [
    "CaloGeometry",
    "Layer",
    "load_geometry",
    "BUILTIN_GEOMETRIES",
    "ShowerData",
    "read_showers",
    "write_showers",
    "GFlashSimulator",
    "sample_incident_energies",
    "high_level_features",
    "separation_power",
    "evaluate_showers",
    "EvaluationResult",
    "ClassifierResult",
]
