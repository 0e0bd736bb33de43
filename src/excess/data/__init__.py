"""Event tables: generation (Pythia 8 + FastJet), features, file I/O and official-format loaders."""

from .schema import LABEL, RESONANT_FEATURE, STANDARD_FEATURES

__all__ = ["LABEL", "RESONANT_FEATURE", "STANDARD_FEATURES"]
