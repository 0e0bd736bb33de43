"""The event table: column names and units shared by generation, loaders and searches.

An event table is a :class:`pandas.DataFrame`, one row per event, energies in **GeV**, with
metadata in ``df.attrs["excess"]`` (a JSON-serialisable dict). Columns:

Standard features (CATHODE convention)
    ``mjj``         dijet invariant mass of the two leading (pT) jets — the resonant feature
    ``mj1``         mass of the *lighter* of the two jets
    ``mj2``         mass of the heavier jet
    ``delta_mj``    ``mj2 - mj1``
    ``tau21_j1``    tau2/tau1 of the lighter jet
    ``tau21_j2``    tau2/tau1 of the heavier jet
Raw per-jet quantities, jets ordered by pT (``jet1`` leading, ``jet2`` subleading)
    ``jet{1,2}_{pt,eta,phi,m}``, ``jet{1,2}_tau{1,2,3}`` (beta = 1, R0 = 1), ``n_jets``
Optional extended N-subjettiness
    ``jet{1,2}_tau{N}_b{beta}`` for N in 1..9 and beta in {0.5, 1, 2} (``b05``, ``b1``, ``b2``)
Truth
    ``label``       1 signal, 0 background, -1 unknown (black boxes); int8
"""

from __future__ import annotations

RESONANT_FEATURE = "mjj"
STANDARD_FEATURES: tuple[str, ...] = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
LABEL = "label"
JET_QUANTITIES: tuple[str, ...] = ("pt", "eta", "phi", "m", "tau1", "tau2", "tau3")
RAW_COLUMNS: tuple[str, ...] = tuple(f"jet{j}_{q}" for j in (1, 2) for q in JET_QUANTITIES) + ("n_jets",)
DERIVED_COLUMNS: tuple[str, ...] = ("mjj", "mj1", "mj2", "delta_mj", "tau21_j1", "tau21_j2")
MASS_COLUMNS: tuple[str, ...] = ("mjj", "mj1", "mj2", "delta_mj")
"""The derived columns in GeV (what a unit scaling of an input multiplies)."""
EXTENDED_BETAS: tuple[float, ...] = (0.5, 1.0, 2.0)
MAX_N_SUBJETTINESS = 9

UNITS = {"mjj": "GeV", "mj1": "GeV", "mj2": "GeV", "delta_mj": "GeV"}
UNITS.update({f"jet{j}_{q}": "GeV" for j in (1, 2) for q in ("pt", "m")})


def beta_tag(beta: float) -> str:
    """Column tag of an angular exponent: 0.5 -> ``b05``, 1 -> ``b1``, 2 -> ``b2``."""
    return "b" + (f"{beta:g}".replace(".", ""))


def extended_columns(max_n: int = MAX_N_SUBJETTINESS, betas=EXTENDED_BETAS) -> tuple[str, ...]:
    return tuple(f"jet{j}_tau{n}_{beta_tag(b)}" for j in (1, 2) for b in betas for n in range(1, max_n + 1))
