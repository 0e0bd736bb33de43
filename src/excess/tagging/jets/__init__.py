"""Jet tagging: quark/gluon jets with jet images + CNN, particle-flow and energy-flow networks, and a tree baseline.

* :mod:`.preprocessing` -- centring, PFN features, jet images, jet observables
* :mod:`.models` -- :class:`PFNTagger`, :class:`EFNTagger`, :class:`JetImageCNN`, :class:`ObservableHGB`
* :mod:`.evaluate` -- ROC/AUC/rejection over seeds, plots, run directory and report

The data come from :mod:`excess.data.qg` (generation in the EnergyFlow recipe, or the public ``.npz`` files).
"""

from .evaluate import evaluate_taggers, rejection_at
from .models import EFNTagger, JetImageCNN, ObservableHGB, PFNTagger, make_tagger

__all__ = ["PFNTagger", "EFNTagger", "JetImageCNN", "ObservableHGB", "make_tagger", "evaluate_taggers",
           "rejection_at"]
