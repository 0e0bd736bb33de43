"""Supervised identification: low-pT electrons (per-category taggers, evaluation, SHAP, impact) and jets
(:mod:`excess.tagging.jets`: jet images + CNN, PFN/EFN, a tree baseline on jet observables)."""

from .electrons import MODELS, ElectronTagger, check_tracks

__all__ = ["ElectronTagger", "MODELS", "check_tracks"]
