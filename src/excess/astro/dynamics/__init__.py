"""Dark matter from stellar kinematics: flows -> Boltzmann -> accelerations -> density.

* :mod:`.boltzmann` — the steady-state collisionless Boltzmann equation solved for accelerations by least
  squares over velocities, autograd derivatives, and the density from their divergence
* :mod:`.potential` — the alternative solver: one smooth potential ``Phi_theta(x)`` per member fitted to the
  Boltzmann residuals of all stars at once (Deep Potential); ``a = -grad Phi``, ``rho = lap Phi / (4 pi G)``
* :mod:`.analytic` — analytic isotropic Hernquist and Plummer spheres (truth with no training)
* :mod:`.model` — :class:`PhaseSpaceFlow`, an ensemble of flows ``f(x, v) = n(x) p(v | x)``
* :mod:`.mocks` — galpy mocks with truth; :mod:`.baryons` — the baryon model to subtract
* :mod:`.gaia` — Gaia DR3 stars with radial velocities to Galactocentric coordinates (astropy)
* :mod:`.run` — the run directory: JSON, profiles and maps against truth, report.html

Units everywhere: kpc, km/s, Msun (:mod:`.units`).
"""
