"""The astro wing: searches and measurements with stars.

* :mod:`~excess.astro.dynamics` — dark matter from stellar kinematics: a normalizing-flow model of the
  phase-space density ``f(x, v)``, accelerations from the steady-state collisionless Boltzmann equation,
  mass density from Poisson's equation, a baryon model to subtract, galpy mocks with truth and a Gaia DR3 reader.
* :mod:`~excess.astro.streams` — stellar streams found by the resonant anomaly search in proper motion: Gaia
  readers, patch-centred coordinates, mock patches with a gala GD-1-like stream, Hough-transform line finding.

Nothing here imports torch, galpy or astropy at import time.
"""
