"""Jet tagging: quark/gluon jets with jet images + CNN, particle-flow and energy-flow networks, and a tree baseline;
b-tagging with track impact parameters (RNNIP, deep sets, an IP3D-like likelihood).

* :mod:`.preprocessing` -- centring, PFN features, jet images, jet observables
* :mod:`.models` -- :class:`PFNTagger`, :class:`EFNTagger`, :class:`JetImageCNN`, :class:`ObservableHGB`
* :mod:`.evaluate` -- ROC/AUC/rejection over seeds, plots, run directory and report
* :mod:`.btag` -- :class:`RNNIPTagger`, :class:`DeepSetBTagger`, :class:`IPLikelihoodTagger`, ``D_b``
* :mod:`.btag_evaluate` -- light and c rejection at 70/77/85 % b efficiency over seeds and in pT bins

The data come from :mod:`excess.data.qg` (generation in the EnergyFlow recipe, or the public ``.npz`` files) and
:mod:`excess.data.btag` (Pythia ttbar + QCD with truth flavour and impact-parameter tracks).
"""

from .btag import DeepSetBTagger, IPLikelihoodTagger, RNNIPTagger, b_discriminant, make_btagger
from .btag_evaluate import evaluate_btaggers, rejection_table
from .evaluate import evaluate_taggers, rejection_at
from .models import EFNTagger, JetImageCNN, ObservableHGB, PFNTagger, make_tagger

__all__ = ["PFNTagger", "EFNTagger", "JetImageCNN", "ObservableHGB", "make_tagger", "evaluate_taggers",
           "rejection_at", "RNNIPTagger", "DeepSetBTagger", "IPLikelihoodTagger", "b_discriminant", "make_btagger",
           "evaluate_btaggers", "rejection_table"]
