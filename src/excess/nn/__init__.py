"""The one neural-network substrate of excess, shared by every wing.

* :mod:`~excess.nn.device` — ``device="auto"|"cpu"|"cuda[:N]"|"mps"``, resolved in one place
* :mod:`~excess.nn.mlp` — the MLP builder
* :mod:`~excess.nn.training` — the training loop (``train_loop``, and ``fit_torch`` on it: early stopping,
  best-epoch ensembling, progress, history), seeded generators, initialisation, the (stratified) validation
  split, batched evaluation
* :mod:`~excess.nn.estimators` — the mixin of torch estimators that keep their fitted network as a state dict
  (hyper-parameters, lazy rebuild for prediction, persistence)
* :mod:`~excess.nn.flows` — conditional normalizing flows (zuko) with :mod:`~excess.nn.preprocessing`
* :mod:`~excess.nn.classifiers` — torch MLP and gradient-boosted-tree classifiers
* :mod:`~excess.nn.autoencoders` — autoencoder and VAE
* :mod:`~excess.nn.sets` — deep-set networks over particles: PFN and the IRC-safe EFN
* :mod:`~excess.nn.calibration` — monotone probability calibration (Platt, isotonic), prior shift, reliability/ECE
* :mod:`~excess.nn.two_sample` — the calibrated classifier two-sample test (AUC, JSD)
* :mod:`~excess.nn.io` — save/load as ``state_dict`` + JSON

Torch is imported lazily inside functions: importing this package does not import torch.
"""
