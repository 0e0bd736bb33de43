"""Supervised identification: low-pT electrons (per-category taggers, evaluation, SHAP, impact)."""

from .electrons import MODELS, ElectronTagger, check_tracks

__all__ = ["ElectronTagger", "MODELS", "check_tracks"]
