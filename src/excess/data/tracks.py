"""A transparent, fast track-level detector model in the style of the ATLAS inner detector + EM calorimeter.

One function, :func:`simulate_tracks`, turns arrays of true charged particles (pT, eta, phi, PDG id,
production vertex) into reconstructed-track observables, vectorised with numpy and seeded by one
``numpy.random.Generator``. It is shared by the tagging wings (low-pT electrons; jets and semi-visible
jets reuse the tracking part). Every parameter lives in :class:`TrackDetector` with its source; values
marked *approximate* are read off published figures or chosen as round numbers and are not tuned to any
tagger result.

Parameters and sources
----------------------
Magnetic field
    Solenoid 2 T (ATLAS, JINST 3 S08003). A track of transverse momentum pT [GeV] has a radius of
    curvature ``R = pT / (0.3 B)`` metres and reaches at most the transverse radius ``2 R`` (it curls).
Tracking efficiency (Delphes ATLAS card, ``ChargedHadronTrackingEfficiency`` / ``ElectronTrackingEfficiency``)
    electrons: 0.1 < pT <= 1 GeV 0.73 (|eta| <= 1.5), 0.50 (1.5-2.5); pT > 1 GeV 0.95 / 0.83;
    hadrons and muons: 0.70 / 0.60 below 1 GeV, 0.95 / 0.85 above; 0 for |eta| > 2.5 or pT <= 0.1 GeV.
    A track also needs >= 7 silicon hits (ATLAS "Loose" track selection, ATL-PHYS-PUB-2015-051), which
    removes conversion electrons produced beyond the second SCT layer and tracks that curl too early.
Impact-parameter and momentum resolution (JINST 3 S08003, Table 10.2)
    ``sigma_X(pT) = sigma_inf * sqrt(1 + (p_X / pT)**2)`` (:func:`resolution`):
    d0: 10 um, p_X 14 GeV at |eta| ~ 0.25 and 12 um, 20 GeV at |eta| ~ 1.6 (linear in |eta| between);
    z0 sin(theta): 91 um, 2.3 GeV; q/pT: 0.34 TeV^-1, 44 GeV.
Silicon layers (JINST 3 S08003; IBL: ATLAS-TDR-019)
    IBL 33.25 mm; pixel 50.5, 88.5, 122.5 mm; SCT 299, 371, 443, 514 mm (two hits per SCT layer); the
    endcap disks are treated as the same number of layers (approximation). A layer gives a hit if it lies
    outside the production radius and within the radial reach ``2 R``; hit efficiency 0.99 (approximate).
Material and bremsstrahlung
    Inner-detector material along the path, in radiation lengths, ~0.5 X0 at eta = 0 rising to ~2.2 X0 at
    |eta| ~ 1.5-2 (JINST 3 S08003, Fig. 4.x; the table :attr:`TrackDetector.material_x0` is approximate);
    half of it is in the silicon volume (approximation). Electrons lose energy by Bethe-Heitler
    bremsstrahlung: the surviving fraction after ``t`` X0 is ``z = exp(-u)``, ``u ~ Gamma(t / ln 2, 1)``
    (Bethe & Heitler 1934; the form used by the ATLAS GSF, ATLAS-CONF-2012-047). Without brem recovery the
    track fit measures the mean curvature along the silicon track, so the fitted momentum is
    ``p_fit = 2 p z / (1 + z)`` (biased low), and the first/last-measurement momentum difference gives
    ``dpoverp`` (ATLAS ``deltaPoverP``). Photons convert with probability ``1 - exp(-7 t / 9)``
    (:func:`conversion_probability`, PDG review "Passage of particles through matter").
TRT (JINST 3 S08003)
    Coverage |eta| < 2.0; barrel radii 563-1066 mm, endcap wheels at radii 644-1004 mm; ~33 straws crossed
    (approximate nominal count vs |eta| in :attr:`TrackDetector.trt_nominal_hits`), straw efficiency 0.94
    (approximate). The number of straws crossed shrinks with the fraction of the TRT's radial extent that a
    curling track reaches. High-threshold probability per hit (athena
    ``TRT_ElectronPidToolRun2_HTcalculation``): ``p_HT = p0 + p1 / (1 + exp(-(log10 gamma - p2) / p3))``
    with barrel (0.0744, 0.1551, 3.2011, 0.2236), endcap A (0.0702, 0.1654, 3.3043, 0.2093) and endcap B
    (0.0736, 0.1827, 3.1540, 0.1683); the regions are |eta| < 0.8, 0.8-1.5 and 1.5-2.0 (approximate
    geometry). ``trt_pid`` is the ATLAS-style eProbabilityHT ``L_e / (L_e + L_pi)`` from the hit pattern.
EM calorimeter (JINST 3 S08003)
    Acceptance |eta| < 2.47 including the barrel-endcap transition 1.37 < |eta| < 1.52 (the "crack", a hole
    before the fourth pass, see below); presampler |eta| < 1.8; front face
    at 1.4 m (barrel) or z = 3.7 m (endcap). Layers in X0 behind the dead material: strips 4.4, middle 16,
    back 2 (barrel values used everywhere; approximate); dead material before the presampler ~2-4 X0
    (approximate table). Resolution 10 %/sqrt(E) (+) 0.7 %; electronic noise per layer around the track
    (approximate round numbers). Electron and photon showers follow the Longo-Sestili gamma profile
    ``dE/dt ~ (bt)^(a-1) e^(-bt)`` with ``b = 0.5``, ``t_max = ln(E/E_c) - 0.5``, ``E_c = 7.4 MeV`` (lead),
    with fluctuating ``t_max`` (GFLASH-style, NIM A290 (1990) 469). Brem photons are collected only if the
    electron has not bent away from them by more than the half-width of a 3x7 cluster in phi.
    Hadrons (pi, K, p) interact in the ~2 lambda of the EM calorimeter with probability ``1 - exp(-L/lambda)``
    (the 2 lambda is approximate), else they leave a MIP signal (~10 MeV per X0 at EM scale, approximate);
    an interacting hadron deposits a Beta-distributed fraction of its kinetic energy (EM-scale response of a
    non-compensating calorimeter; qualitatively as the E/p measurements of EPJC 77 (2017) 26).
    Shower shapes R_eta, R_phi, w_eta2, f1, f3, R_had and the track-cluster matching deta1 and dphi2 (the
    latter derived from the bending difference between the fitted and the true momentum).
Curling
    (With the default extrapolated calorimeter acceptance of the second pass, the calorimeter condition
    below applies to the particle's own energy, the helix of the fitted track decides whether calorimeter
    variables exist.) A track reaches the TRT if ``2 R`` exceeds its inner radius (pT > ~0.17 GeV; crossing it
    fully needs
    pT > 0.32 GeV) and the calorimeter if ``2 R`` exceeds the transverse radius of the calorimeter front
    along its direction (1.4 m in the barrel: pT > 0.42 GeV).

Second pass (fields added to :class:`TrackDetector`; all approximate unless a source is named; none was
tuned to a tagger result)
    *Calorimeter information follows the extrapolated track* (``calo_acceptance="extrapolated"``, default):
    calorimeter variables are computed around the impact point of the fitted track's helix, so they exist
    whenever that helix enters the precision acceptance (:func:`_helix_in_calo`: barrel front radius, or the
    endcap face at z = 3.7 m with the helix's transverse radius ``2 R |sin(dphi/2)|`` giving the impact
    eta, followed for at most half a turn, ``max_turn_rad``), even if the electron itself radiated most of
    its energy and curled away: then only the collected brem photons (and noise, pile-up, overlapping
    particles) are in the window. ``"physical"`` keeps the first model (the particle itself must arrive).
    *Pile-up* (``pileup_mu``; 0 by default, the Run-2 average is 33.7, ATLAS luminosity public results):
    per calorimeter layer of the 3x7 window a pile-up noise of ``calo_pileup_noise_gev`` at mu = 30 and
    |eta| = 0, growing with |eta| (``calo_pileup_scale``) and as ``sqrt(mu / 30)``, skewed (Gamma of shape
    1.5, mean subtracted) as in-time pile-up deposits are positive. The sizes are chosen so that electronic
    (+) pile-up noise of a barrel 3x7 cluster is ~0.3 GeV, the order of the noise term of the ATLAS
    electron energy resolution (JINST 14 (2019) P03017, Run 2) and rising forward; the noise enters E/p,
    the layer fractions and the lateral shapes (R_eta, R_phi, w_eta2 through the core/wide sums).
    *TRT occupancy*: ``occ = trt_occupancy_per_mu * mu`` (~25 % at mu = 34; approximate: the Run-1 TRT
    performance paper, JINST 12 (2017) P05002, studies the TRT up to occupancies of tens of per cent, and
    Run 2 ran at higher pile-up than Run 1; the slope is not a fitted value); an occupied straw adds a
    high-threshold hit
    with probability ``trt_ht_occupancy`` (0.25), ``p_HT -> 1 - (1 - p_HT)(1 - occ * 0.25)``, which raises
    the pion HT fraction more in relative terms than the electron one (the rising HT probability with
    occupancy of the ATLAS TRT PID studies); ``trt_pid`` uses the occupancy-corrected probabilities as
    the athena tool does.
    *Hadronic interactions in the inner detector*: probability ``1 - exp(-0.2 t_X0)`` (X0/lambda_I of
    silicon, 9.37 / 46.52 cm, PDG); an interaction at a uniform position along the material leaves a kink
    (the leading charged secondary keeps ``x ~ U(0.2, 1)`` of the momentum, lowering the last-measurement
    momentum, hence ``dpoverp``, if it happens in the silicon, and the TRT sees the secondary) and the
    hadron showers from the calorimeter front.
    *pi0 content of hadron showers*: the EM fraction of an interacting hadron's shower has Groom's mean
    ``1 - (E/E0)^(k-1)`` with E0 = 1 GeV, k = 0.82 (NIM A 572 (2007) 633; floored at 0.05), Beta
    fluctuations (concentration 2) and a charge-exchange-like component (probability 0.05, f_em ~ U(0.8, 1)).
    The EM part showers with the electron profile from the interaction point and is laterally compact; the
    rest deposits ``h/e = 0.5`` of its energy (EM scale, Beta fluctuations) with the exponential profile.
    Early, pi0-rich showers therefore look electron-like (E/p ~ 1, small R_had, narrow shapes).
    *Lateral fluctuations of EM showers* (electrons and the EM part of hadron showers): the core fractions
    behind R_eta and R_phi fluctuate with a width ``lateral_sigma_ref = 0.012`` at 40 GeV (the spread of
    R_eta of Z -> ee electrons in ATLAS shower-shape distributions, approximate) scaling as ``1/sqrt(E)``
    (the number of shower particles), capped at 0.15; the first model used a fixed 0.01 at all energies,
    far too narrow for 1 GeV showers.
    *Multiple scattering in the track-cluster match*: deta1 and dphi2 get the Highland angle
    ``13.6 MeV / p sqrt(t) (1 + 0.038 ln t)`` (PDG) over the material before the calorimeter, divided by
    sqrt(3), in quadrature with the previous resolutions.

Third pass (fields after ``lateral_e_ref_gev``; each can be switched off, see the field comments; sources
or the word *assumption* for each; none was tuned to a tagger result or to the study's category fractions)
    *Calorimeter cluster requirement* (``calo_cluster_et_min_gev = 0.4``): calorimeter variables exist only
    if a cluster is reconstructed around the extrapolated track, here: the EM-scale transverse energy of the
    window (all layers, with noise and pile-up) exceeds 0.4 GeV, the threshold on the EM transverse energy
    of the topo-clusters that ATLAS considers for electron reconstruction in Run 2 (JINST 14 (2019) P12006,
    Sec. 4.1, quoted from memory; the sliding-window-sum stands in for the topo-cluster). A minimum-ionising
    pion (~0.23 GeV in the ~23 X0 of the EM calorimeter) and a 0.5-0.7 GeV electron that lost energy in the
    material and the dead material mostly fail it: they move to the ``*_nocalo`` categories, and the
    hadrons left in the calorimeter categories are the showering (more electron-like) ones.
    *TRT extension*: a track with TRT straws on its path gets no TRT extension with probability
    ``trt_ext_ineff_base + trt_ext_ineff_slope * f_lost`` = ``0.05 + 0.6 f_lost``, ``f_lost`` the fraction
    of momentum lost in the silicon (Bethe-Heitler for electrons, the kink of a hadronic interaction in the
    silicon): the pion-hypothesis pattern recognition fails to follow a track whose curvature changed
    (the motivation of the ATLAS brem recovery, ATLAS-CONF-2012-047); the numbers are an *assumption*
    (round, not fitted: a 5 % floor for pattern-recognition losses in dense events, and a slope that loses
    the extension for most tracks that lost more than ~3/4 of their momentum).
    *Hadron-shower latent* (``shower_latent_rho = 0.7``): the interaction depth, the EM (pi0) fraction, the
    visible fraction of the non-EM part and the lateral core fractions (R_eta, R_phi) of an interacting
    hadron are drawn through a Gaussian copula with correlation 0.7 to one latent per track, so that a
    pi0-rich shower is at once early, electromagnetic, fully visible and compact, as physically one shower
    (the value 0.7 is an *assumption*; marginals unchanged; Beta quantiles from cached tables).
    *Bremsstrahlung / track-quality latent* (``brem_latent_rho = 0.5``, ``brem_fit_log_sigma = 0.4``): the
    rank of the momentum lost in the silicon (or of a hadron's kink; a free normal variable otherwise),
    mixed with noise at correlation 0.5, scales the measurement errors of ``dpoverp`` and of the
    track-cluster match (deta1, dphi2) by a log-normal factor of spread 0.4 (mean 1): a radiating or kinked
    track is badly fitted everywhere at once (*assumption*, both numbers).
    *Student-t shape tails* (``shape_tail_dof = 4``): the fluctuations of the lateral core fractions, of
    w_eta2 and of the track-cluster match, and the dpoverp measurement errors are unit-variance Student-t
    with 4 degrees of freedom instead of Gaussian (same width, non-Gaussian tails as seen in ATLAS
    shower-shape and matching distributions; the dof is an *assumption*).
    *Photon conversions at the material layers* (:func:`conversion_radius`): at the beam pipe (24 mm), IBL,
    pixel and SCT layers with weights ~ their material (round numbers, *assumption*; the concentration of
    conversion and hadronic-interaction vertices at the layers is what the ATLAS material maps show,
    JINST 12 (2017) P12009), smeared by 3 mm; before: uniform in radius.
    *Overlapping hadrons* (``e_overlap_had_gev`` input, stored by :mod:`excess.data.electrons` as
    ``e_overlap_had``: energy of the event's other hadrons whose calorimeter impact falls into the 3x7
    window): a ``Beta(2, 3)`` share (mean 0.4; the EM calorimeter is ~2 lambda deep, *assumption*) is
    deposited in the EM layers with an exponential profile from an Exp(1)-lambda depth, the rest at
    ``h/e`` behind it (R_had); it raises E/p and R_had and widens the shapes like the photon overlap.
    The draws of the third pass come after the tracking outputs, so reconstruction, hits, fitted momentum,
    charge and impact parameters are bit-identical to the second pass for a given seed (checked; the 0.001
    smear of the output eta, drawn last, differs): b-tagging and semi-visible jets, which use only
    those, are unchanged.

Fourth pass (one field; not tuned to a tagger result; checked against the study's category fractions only
after it was made)
    *The crack has calorimeter cells* (``crack_has_calo = True``; ``False`` restores the hole of the earlier
    passes): the barrel EM calorimeter covers |eta| < 1.475 and the endcap 1.375 < |eta| < 3.2 (JINST 3
    S08003, Table 1.3), so the transition region 1.37 < |eta| < 1.52 is read out: clusters and their
    variables exist there, as ATLAS reconstructs electrons in it (physics analyses exclude it for the
    degraded energy measurement, not because the cells are missing). The larger material in front of the
    calorimeter in the transition is what :attr:`TrackDetector.dead_x0` (3.5-4 X0 there) already carries; the
    degraded resolution of the transition is not modelled. Only the calorimeter flags and variables change;
    tracking outputs are bit-identical (no random draw depends on it).

Fifth pass (one field; sourced, not tuned; it was made to close the known excess of ``notrt_nocalo``
electrons, whose cause the fourth-pass diagnostics showed: electrons that radiated most of their momentum
in the silicon, curled before the TRT and still counted as reconstructed tracks)
    *Tracking pT threshold* (``track_pt_min_gev = 0.4``; 0 restores the fourth pass): a track is
    reconstructed only if its *fitted* transverse momentum exceeds 400 MeV, the pT requirement of the ATLAS
    default (inside-out) Run-2 track reconstruction (EPJC 77 (2017) 673, the track-candidate requirements;
    quoted from memory). With the fit of the mean curvature (``p_fit = 2 p z / (1 + z)``), an electron of
    true pT 0.5-5 GeV that keeps z < ~0.1-0.2 of its momentum through the silicon fits below it and is lost,
    as it is in ATLAS, where no low-pT GSF refit recovers tracks that the standard tracking did not make.
    No random draw depends on it: apart from ``reco``, every output is bit-identical to the fourth pass;
    hadrons of true pT > 0.5 GeV are practically unaffected (their fitted pT is unbiased), the svj tracks
    (reconstructed pT > 1 GeV) are unchanged, b-tagging loses the jet tracks below 0.4 GeV.

Categories (the low-pT electron study): every track lands in exactly one of :data:`CATEGORIES`:
``trt_calo`` (TRT hits and calorimeter), ``notrt_calo``, ``trt_nocalo``, ``notrt_nocalo``. The features of
an absent sub-detector are NaN in the output.

Example
-------
>>> import numpy as np
>>> from excess.data.tracks import simulate_tracks
>>> n = 1000
>>> t = simulate_tracks(np.full(n, 2.0), np.zeros(n), np.zeros(n), np.full(n, 11), random_state=1)
>>> bool((t["category"] == "trt_calo").mean() > 0.75)  # central 2 GeV electrons see TRT and calorimeter
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._util import check_random_state
from ..errors import InputError

__all__ = [
    "TrackDetector",
    "CATEGORIES",
    "TRACK_FEATURES",
    "TRT_FEATURES",
    "CALO_FEATURES",
    "category_features",
    "simulate_tracks",
    "toy_track_table",
    "convert_photons",
    "resolution",
    "p_ht",
    "bethe_heitler_fraction",
    "conversion_probability",
    "conversion_radius",
    "tracking_efficiency",
    "radial_reach_mm",
    "MASSES",
]

CATEGORIES = ("trt_calo", "notrt_calo", "trt_nocalo", "notrt_nocalo")
TRACK_FEATURES = ("pt", "eta", "d0", "d0_sig", "z0sintheta", "n_ibl", "n_pix", "n_sct", "dpoverp")
TRT_FEATURES = ("n_trt", "f_ht", "trt_pid")
CALO_FEATURES = ("e_over_p", "f0", "f1", "f3", "rhad", "reta", "rphi", "weta2", "deta1", "dphi2")

#: masses in GeV by |PDG id| (unknown charged particles are treated as pions)
MASSES = {11: 0.000511, 13: 0.10566, 211: 0.13957, 321: 0.49368, 2212: 0.93827}
_PI_MASS = MASSES[211]


def category_features(category: str) -> tuple[str, ...]:
    """The features a track of ``category`` carries (track always; TRT and calorimeter if present)."""
    if category not in CATEGORIES:
        raise InputError(f"unknown track category {category!r}; known: {', '.join(CATEGORIES)}")
    trt = category.startswith("trt")
    calo = category.endswith("_calo")
    return TRACK_FEATURES + (TRT_FEATURES if trt else ()) + (CALO_FEATURES if calo else ())


@dataclass(frozen=True)
class TrackDetector:
    """Parameters of the track-level detector model (sources in the module docstring)."""

    b_field_t: float = 2.0
    eta_max: float = 2.5
    # tracking efficiency: (|eta| <= 1.5, 1.5 < |eta| <= 2.5) for pT in (0.1, 1] and > 1 GeV
    eff_electron_low: tuple[float, float] = (0.73, 0.50)
    eff_electron_high: tuple[float, float] = (0.95, 0.83)
    eff_hadron_low: tuple[float, float] = (0.70, 0.60)
    eff_hadron_high: tuple[float, float] = (0.95, 0.85)
    min_si_hits: int = 7
    # resolutions: sigma_inf [mm or 1/GeV], p_X [GeV]; d0 interpolated in |eta| between the two points
    d0_eta_points: tuple[float, float] = (0.25, 1.6)
    d0_sigma_inf_mm: tuple[float, float] = (0.010, 0.012)
    d0_p_x: tuple[float, float] = (14.0, 20.0)
    z0_sigma_inf_mm: float = 0.091
    z0_p_x: float = 2.3
    qpt_sigma_inf: float = 0.34e-3
    qpt_p_x: float = 44.0
    # silicon layers [mm]
    ibl_radius_mm: float = 33.25
    pixel_radii_mm: tuple[float, ...] = (50.5, 88.5, 122.5)
    sct_radii_mm: tuple[float, ...] = (299.0, 371.0, 443.0, 514.0)
    si_hit_efficiency: float = 0.99
    # material: total inner-detector X0 along the path vs |eta| (approximate), and the silicon share
    material_eta: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
    material_x0: tuple[float, ...] = (0.5, 0.6, 1.0, 2.2, 2.2, 1.6)
    silicon_material_share: float = 0.5
    # TRT
    trt_eta_max: float = 2.0
    trt_barrel_radii_mm: tuple[float, float] = (563.0, 1066.0)
    trt_endcap_radii_mm: tuple[float, float] = (644.0, 1004.0)
    trt_barrel_eta_max: float = 0.8
    trt_endcap_a_eta_max: float = 1.5
    trt_nominal_eta: tuple[float, ...] = (0.0, 0.6, 0.8, 1.0, 1.7, 1.9, 2.0)
    trt_nominal_hits: tuple[float, ...] = (33.0, 33.0, 24.0, 30.0, 32.0, 20.0, 8.0)
    trt_straw_efficiency: float = 0.94
    trt_min_hits: int = 1
    ht_barrel: tuple[float, float, float, float] = (0.0744, 0.1551, 3.2011, 0.2236)
    ht_endcap_a: tuple[float, float, float, float] = (0.0702, 0.1654, 3.3043, 0.2093)
    ht_endcap_b: tuple[float, float, float, float] = (0.0736, 0.1827, 3.1540, 0.1683)
    # EM calorimeter
    calo_eta_max: float = 2.47
    crack: tuple[float, float] = (1.37, 1.52)
    presampler_eta_max: float = 1.8
    calo_barrel_radius_mm: float = 1400.0
    calo_endcap_z_mm: float = 3700.0
    dead_eta: tuple[float, ...] = (0.0, 0.8, 1.3, 1.5, 2.0, 2.5)
    dead_x0: tuple[float, ...] = (2.0, 2.5, 4.0, 3.5, 2.5, 2.5)
    layer_x0: tuple[float, float, float] = (4.4, 16.0, 2.0)  # strips, middle, back
    presampler_x0: float = 0.3  # effective sampled depth of the presampler behind the dead material
    stochastic: float = 0.10
    constant: float = 0.007
    noise_gev: tuple[float, float, float, float] = (0.03, 0.04, 0.06, 0.03)  # PS, strips, middle, back
    critical_energy_gev: float = 0.0074
    profile_b: float = 0.5
    tmax_log_sigma: float = 0.2
    cluster_half_width_phi: float = 3.5 * 0.0245
    brem_radius_si_m: float = 0.25
    brem_radius_rest_m: float = 0.8
    em_lambda: float = 2.0
    x0_per_lambda: float = 11.0
    mip_gev_per_x0: float = 0.010
    had_noise_gev: float = 0.05
    # ---- second pass (sources in the module docstring, "Second pass"); all additive ----
    # pile-up: mean interactions per bunch crossing (0 = none; Run-2 average 33.7)
    pileup_mu: float = 0.0
    pileup_mu_ref: float = 30.0
    # pile-up noise per layer (PS, strips, middle, back) of the 3x7 window at mu_ref, |eta| = 0 [GeV]
    calo_pileup_noise_gev: tuple[float, float, float, float] = (0.08, 0.08, 0.25, 0.04)
    calo_pileup_eta: tuple[float, ...] = (0.0, 1.4, 2.0, 2.5)
    calo_pileup_scale: tuple[float, ...] = (1.0, 1.2, 1.8, 2.5)
    calo_pileup_shape: float = 1.5  # Gamma shape of the in-time pile-up energy (mean-subtracted): skewed
    # TRT occupancy = trt_occupancy_per_mu * mu; an occupied straw gives an extra HT hit with this probability
    trt_occupancy_per_mu: float = 0.0075
    trt_ht_occupancy: float = 0.25
    # calorimeter information exists where the fitted track's helix extrapolation enters the acceptance
    # ("extrapolated"), or only where the particle itself arrives ("physical": the first model)
    calo_acceptance: str = "extrapolated"
    max_turn_rad: float = 3.141592653589793  # an extrapolation is followed for at most this azimuthal turn
    # hadronic interactions in the inner-detector material: t_lambda = id_lambda_per_x0 * t_X0
    id_lambda_per_x0: float = 0.2
    # EM (pi0) fraction of hadron showers: Groom's mean 1 - (E/E0)^(k-1), Beta fluctuations, charge exchange
    fem_e0_gev: float = 1.0
    fem_k: float = 0.82
    fem_concentration: float = 2.0
    fem_min: float = 0.05
    charge_exchange_prob: float = 0.05
    h_over_e: float = 0.5
    # lateral fluctuations of EM showers: width of the core fractions at lateral_e_ref_gev, scaling 1/sqrt(E)
    lateral_sigma_ref: float = 0.012
    lateral_e_ref_gev: float = 40.0
    # ---- third pass (sources in the module docstring, "Third pass"); the defaults switch it on, the value
    # in brackets switches an effect off ----
    # hadron-shower latent shared by the calorimeter variables of an interacting hadron (0)
    shower_latent_rho: float = 0.7
    # bremsstrahlung / track-quality latent shared by dpoverp, the track-cluster match and the TRT (0)
    brem_latent_rho: float = 0.5
    brem_fit_log_sigma: float = 0.4  # log-normal spread of the fit resolutions driven by that latent (0)
    # Student-t degrees of freedom of the shower-shape and match fluctuations (None: Gaussian)
    shape_tail_dof: float | None = 4.0
    # probability that a track with TRT straws gets no TRT extension: base + slope x fraction of the momentum
    # lost in the silicon (bremsstrahlung for electrons, the kink of a hadronic interaction) (0, 0)
    trt_ext_ineff_base: float = 0.05
    trt_ext_ineff_slope: float = 0.6
    # photon conversions at the material layers: radii [mm] and relative material (None: uniform in radius)
    conversion_layers_mm: tuple[float, ...] | None = (24.0, 33.25, 50.5, 88.5, 122.5, 299.0, 371.0, 443.0, 514.0)
    conversion_layer_weights: tuple[float, ...] = (0.12, 0.10, 0.10, 0.10, 0.14, 0.11, 0.11, 0.11, 0.11)
    conversion_layer_smear_mm: float = 3.0
    # overlapping hadrons in the cluster window (e_overlap_had): EM-calorimeter share ~ Beta(a, b) of their
    # energy, the rest (times h/e) reaches the hadronic calorimeter behind (ov_had_em_beta = None: ignored)
    ov_had_em_beta: tuple[float, float] | None = (2.0, 3.0)
    # a calorimeter cluster must be reconstructed: EM-scale E_T of the window above this [GeV] (0: any)
    calo_cluster_et_min_gev: float = 0.4
    # ---- fourth pass (module docstring, "Fourth pass") ----
    # the barrel-endcap transition (crack) has calorimeter cells: cluster variables exist there (False: a hole)
    crack_has_calo: bool = True
    # ---- fifth pass (module docstring, "Fifth pass") ----
    # a track is reconstructed only if its fitted pT exceeds this [GeV] (ATLAS default tracking; 0: no cut)
    track_pt_min_gev: float = 0.4
    extra: dict = field(default_factory=dict)  # free-form provenance notes

    def to_dict(self) -> dict:
        import dataclasses

        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------------
# the formulas (each lives here once)


def resolution(pt, sigma_inf, p_x):
    """``sigma_inf * sqrt(1 + (p_x / pT)**2)``: the track-parameter resolution of JINST 3 S08003 Table 10.2."""
    pt = np.asarray(pt, dtype=float)
    return np.asarray(sigma_inf) * np.sqrt(1.0 + (np.asarray(p_x) / pt) ** 2)


def radial_reach_mm(pt, b_field_t: float = 2.0):
    """Largest transverse radius [mm] a track from the beam line reaches: ``2 R = 2 pT / (0.3 B)``."""
    return 2.0 * np.asarray(pt, dtype=float) / (0.3 * b_field_t) * 1000.0


def p_ht(gamma, params):
    """TRT high-threshold probability per hit vs the Lorentz factor (athena Run-2 parameterisation)."""
    p0, p1, p2, p3 = (np.asarray(x, dtype=float) for x in params)  # four scalars or four arrays
    lg = np.log10(np.maximum(np.asarray(gamma, dtype=float), 1.0))
    return p0 + p1 / (1.0 + np.exp(-(lg - p2) / p3))


def bethe_heitler_fraction(t_x0, rng: np.random.Generator):
    """Surviving energy fraction ``z = exp(-u)``, ``u ~ Gamma(t / ln 2, 1)`` after ``t`` radiation lengths."""
    t = np.asarray(t_x0, dtype=float)
    shape = np.maximum(t / np.log(2.0), 1e-12)
    u = rng.gamma(shape)
    return np.where(t > 0, np.exp(-u), 1.0)


def conversion_probability(t_x0):
    """Probability that a (high-energy) photon converts in ``t`` radiation lengths: ``1 - exp(-7 t / 9)``."""
    return 1.0 - np.exp(-7.0 / 9.0 * np.asarray(t_x0, dtype=float))


def _is_electron(pid):
    return np.abs(pid) == 11


def tracking_efficiency(pid, pt, eta, det: TrackDetector = TrackDetector()):
    """Per-particle reconstruction efficiency by type, pT and |eta| (before the silicon-hit requirement)."""
    pid, pt, a = np.asarray(pid), np.asarray(pt, dtype=float), np.abs(np.asarray(eta, dtype=float))
    central = a <= 1.5
    e = _is_electron(pid)
    low = np.where(e, np.where(central, det.eff_electron_low[0], det.eff_electron_low[1]),
                   np.where(central, det.eff_hadron_low[0], det.eff_hadron_low[1]))
    high = np.where(e, np.where(central, det.eff_electron_high[0], det.eff_electron_high[1]),
                    np.where(central, det.eff_hadron_high[0], det.eff_hadron_high[1]))
    eff = np.where(pt > 1.0, high, low)
    return np.where((pt > 0.1) & (a <= det.eta_max), eff, 0.0)


def material_x0(eta, det: TrackDetector = TrackDetector()):
    """Inner-detector material along the path [X0] (the approximate table of :class:`TrackDetector`)."""
    return np.interp(np.abs(np.asarray(eta, dtype=float)), det.material_eta, det.material_x0)


def _masses(pid):
    a = np.abs(np.asarray(pid))
    m = np.full(a.shape, _PI_MASS)
    for k, v in MASSES.items():
        m[a == k] = v
    return m


def _gamma_cdf(t, a, b):
    from scipy.special import gammainc

    return gammainc(a, np.maximum(b * t, 0.0))


def _em_layer_fractions(e, t_dead, det: TrackDetector, rng=None):
    """Fractions of an EM shower's energy in (dead, presampler, strips, middle, back, leak) (longitudinal)."""
    e = np.maximum(np.asarray(e, dtype=float), 2 * det.critical_energy_gev)
    tmax = np.maximum(np.log(e / det.critical_energy_gev) - 0.5, 0.5)
    if rng is not None:
        tmax = tmax * np.exp(det.tmax_log_sigma * rng.standard_normal(tmax.shape))
    b = det.profile_b
    a = 1.0 + b * tmax
    s1, s2, s3 = det.layer_x0
    bounds = [t_dead, t_dead + det.presampler_x0, t_dead + det.presampler_x0 + s1,
              t_dead + det.presampler_x0 + s1 + s2, t_dead + det.presampler_x0 + s1 + s2 + s3]
    cdf = [np.zeros_like(e)] + [_gamma_cdf(x, a, b) for x in bounds] + [np.ones_like(e)]
    return np.stack([cdf[i + 1] - cdf[i] for i in range(6)], axis=0)


def _exp_layer_fractions(start_x0, scale_x0, t_dead, det: TrackDetector):
    """Fractions of an exponential deposit starting at ``start_x0`` (in calorimeter X0) per layer."""
    s1, s2, s3 = det.layer_x0
    bounds = np.array([0.0, det.presampler_x0, det.presampler_x0 + s1, det.presampler_x0 + s1 + s2,
                       det.presampler_x0 + s1 + s2 + s3])

    def cdf(x):
        return np.where(x > start_x0, 1.0 - np.exp(-(x - start_x0) / scale_x0), 0.0)

    c = [cdf(x) for x in bounds] + [np.ones_like(start_x0)]
    return np.stack([c[i + 1] - c[i] for i in range(5)], axis=0)  # PS, S1, S2, S3, leak


@functools.lru_cache(maxsize=32)
def _beta_quantile_table(a: float, b: float, n_grid: int = 2049):
    from scipy.special import betaincinv

    u = np.linspace(0.0, 1.0, n_grid)
    return u, betaincinv(a, b, u)


def _beta_quantile(a, b, u):
    """Quantile of Beta(a, b) at probabilities ``u`` (arrays), from cached tables (a Gaussian copula needs it).

    ``a`` and ``b`` are rounded to 1/32 in their logarithm (3 %; a table for each distinct pair is computed
    once, the quantile interpolated linearly in ``u`` on 2049 points), far below the model's precision.
    """
    def q(x):
        x = np.maximum(np.broadcast_to(np.asarray(x, dtype=float), np.shape(u)), 1e-3)
        return np.exp(np.round(np.log(x) * 32.0) / 32.0)

    a, b = q(a), q(b)
    out = np.empty(np.shape(u))
    pairs, inv = np.unique(np.stack([a.ravel(), b.ravel()], axis=1), axis=0, return_inverse=True)
    inv = inv.ravel()
    uf = np.asarray(u, dtype=float).ravel()
    of = out.ravel()
    for k, (ak, bk) in enumerate(pairs):
        m = inv == k
        grid, q = _beta_quantile_table(float(ak), float(bk))
        of[m] = np.interp(uf[m], grid, q)
    return of.reshape(np.shape(u))


def _pileup_sigma(abs_eta, det: TrackDetector):
    """Pile-up noise per calorimeter layer of the cluster window, (4, n) [GeV]: sqrt(mu / mu_ref) scaling."""
    scale = np.interp(abs_eta, det.calo_pileup_eta, det.calo_pileup_scale) * np.sqrt(det.pileup_mu / det.pileup_mu_ref)
    return np.asarray(det.calo_pileup_noise_gev, dtype=float)[:, None] * scale[None, :]


def _helix_in_calo(pt_fit, eta, det: TrackDetector):
    """Whether the helix of the fitted track enters the precision EM calorimeter (the extrapolation).

    Barrel: the helix reaches the front radius before the endcap face. Otherwise it is followed to the
    endcap face ``z = calo_endcap_z_mm`` (for at most ``max_turn_rad`` of azimuthal turn), where its
    transverse radius ``2 R |sin(dphi / 2)|`` gives the impact pseudorapidity, which must lie in the
    acceptance (|eta| < 2.47; the crack only with ``crack_has_calo``). A low-pT central track that curls inside the barrel
    therefore spirals into the endcap (when it turns less than ``max_turn_rad`` on the way).
    """
    a = np.abs(np.asarray(eta, dtype=float))
    big_r = np.maximum(radial_reach_mm(pt_fit, det.b_field_t) / 2.0, 1e-6)  # helix radius [mm]
    rb, ze = det.calo_barrel_radius_mm, det.calo_endcap_z_mm
    sh = np.maximum(np.sinh(a), 1e-9)
    reach_b = 2.0 * big_r > rb
    dphi_b = 2.0 * np.arcsin(np.clip(rb / (2.0 * big_r), 0.0, 1.0))
    z_b = big_r * dphi_b * sh
    barrel = reach_b & (z_b < ze)
    dphi_e = ze / (big_r * sh)
    r_e = 2.0 * big_r * np.abs(np.sin(0.5 * np.minimum(dphi_e, 2 * np.pi)))
    eta_imp = np.where(barrel, a, np.arcsinh(ze / np.maximum(r_e, 1e-6)))
    ok_turn = barrel | (dphi_e <= det.max_turn_rad)
    return ok_turn & _in_calo_acceptance(eta_imp, det)


def _in_calo_acceptance(abs_eta, det: TrackDetector):
    """|eta| inside the EM calorimeter (< ``calo_eta_max``); the barrel-endcap transition ``crack`` counts
    only with ``crack_has_calo`` (fourth pass; before, the crack was a hole)."""
    inside = abs_eta < det.calo_eta_max
    if det.crack_has_calo:
        return inside
    return inside & ~((abs_eta > det.crack[0]) & (abs_eta < det.crack[1]))


# --------------------------------------------------------------------------------------------------


def convert_photons(pt, eta, phi, det: TrackDetector = TrackDetector(), random_state=None) -> dict:
    """Convert photons in the silicon material; returns the e+ e- tracks as arrays (flat).

    Conversion probability ``1 - exp(-7 t / 9)`` with ``t`` the silicon material along the path; the
    conversion radius is uniform over the silicon volume (material assumed uniform in radius); the energy
    share ``x ~ U(0, 1)`` (approximation of the Bethe-Heitler pair spectrum); both leptons keep the photon's
    direction. Returned keys: ``pt, eta, phi, pid, r_prod_mm, d0_true_mm, photon_index``.
    """
    rng = check_random_state(random_state)
    pt, eta, phi = (np.asarray(x, dtype=float) for x in (pt, eta, phi))
    t_si = det.silicon_material_share * material_x0(eta, det)
    conv = rng.random(pt.size) < conversion_probability(t_si)
    idx = np.nonzero(conv)[0]
    r = conversion_radius(idx.size, det, rng)
    x = rng.random(idx.size)
    pts = np.concatenate([pt[idx] * x, pt[idx] * (1 - x)])
    pid = np.concatenate([np.full(idx.size, 11), np.full(idx.size, -11)])
    charge = -np.sign(pid)
    rr = np.concatenate([r, r])
    big_r = np.maximum(radial_reach_mm(pts, det.b_field_t) / 2.0, 1e-6)
    d0 = charge * (np.sqrt(rr**2 + big_r**2) - big_r)  # helix through the conversion point, tangent to it
    return {"pt": pts, "eta": np.concatenate([eta[idx], eta[idx]]), "phi": np.concatenate([phi[idx], phi[idx]]),
            "pid": pid, "r_prod_mm": rr, "d0_true_mm": d0, "photon_index": np.concatenate([idx, idx])}


def conversion_radius(n: int, det: TrackDetector = TrackDetector(), random_state=None):
    """Radii [mm] of ``n`` photon conversions in the silicon volume.

    With ``det.conversion_layers_mm`` (default) the conversions happen at the material layers (beam pipe, IBL,
    pixel and SCT layers), chosen with ``det.conversion_layer_weights`` (their share of the material, an
    approximation) and Gaussian-smeared by ``det.conversion_layer_smear_mm`` (supports, modules' thickness);
    with ``None`` uniformly in 25 mm - the last SCT layer (the first model).
    """
    rng = check_random_state(random_state)
    if det.conversion_layers_mm is None:
        return rng.uniform(25.0, det.sct_radii_mm[-1], n)
    radii = np.asarray(det.conversion_layers_mm, dtype=float)
    w = np.asarray(det.conversion_layer_weights, dtype=float)
    if radii.shape != w.shape or np.any(w < 0) or w.sum() <= 0:
        raise InputError("conversion_layers_mm and conversion_layer_weights must have the same length and "
                         f"non-negative weights, got {radii.size} radii and {w.size} weights")
    k = rng.choice(radii.size, size=n, p=w / w.sum())
    return np.clip(radii[k] + det.conversion_layer_smear_mm * rng.standard_normal(n), 20.0, det.sct_radii_mm[-1])


def _check_inputs(**arrays):
    n = None
    for k, v in arrays.items():
        if v is None:
            continue
        if v.ndim != 1:
            raise InputError(f"{k} must be 1-d, got shape {v.shape}")
        if n is None:
            n = v.size
        elif v.size != n:
            raise InputError(f"{k} has {v.size} entries, expected {n}")
        if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            raise InputError(f"{k} contains NaN or infinite values")
    return n or 0


def simulate_tracks(
    pt,
    eta,
    phi,
    pid,
    *,
    charge=None,
    r_prod_mm=None,
    d0_true_mm=None,
    z0_true_mm=None,
    e_overlap_gev=None,
    e_overlap_had_gev=None,
    detector: TrackDetector | None = None,
    random_state=None,
) -> pd.DataFrame:
    """Reconstructed-track observables of true charged particles (one row per input particle).

    Inputs are 1-d arrays: true ``pt`` [GeV], ``eta``, ``phi``, PDG ``pid``; optionally the ``charge``
    (default from the PDG id sign convention: negative ids of leptons are positive), the production radius
    ``r_prod_mm``, the true transverse/longitudinal impact parameters ``d0_true_mm``/``z0_true_mm``, and
    ``e_overlap_gev``, the EM energy of other particles (photons from pi0 decays in a jet, pile-up) inside
    the 3x7 cluster window around the track's calorimeter impact: it showers like a photon, adds to every
    layer and to E/p, and widens the lateral shapes (it lies in the 3x7 core but only 3/7 of it in the
    3x3 of R_phi).

    Output columns: the features :data:`TRACK_FEATURES`, :data:`TRT_FEATURES`, :data:`CALO_FEATURES` (NaN
    where the sub-detector is absent), ``reco`` (the track is reconstructed), ``category`` (one of
    :data:`CATEGORIES`), ``has_trt``, ``has_calo``, ``charge``, and truth ``true_pt``, ``true_eta``,
    ``pid``, ``brem_fraction`` (energy lost before the calorimeter).
    """
    det = detector or TrackDetector()
    rng = check_random_state(random_state)
    pt, eta, phi = (np.asarray(x, dtype=float) for x in (pt, eta, phi))
    pid = np.asarray(pid).astype(np.int64)
    r_prod = None if r_prod_mm is None else np.asarray(r_prod_mm, dtype=float)
    d0_true = None if d0_true_mm is None else np.asarray(d0_true_mm, dtype=float)
    z0_true = None if z0_true_mm is None else np.asarray(z0_true_mm, dtype=float)
    e_ov = None if e_overlap_gev is None else np.asarray(e_overlap_gev, dtype=float)
    e_ovh = None if e_overlap_had_gev is None else np.asarray(e_overlap_had_gev, dtype=float)
    q = None if charge is None else np.asarray(charge, dtype=float)
    n = _check_inputs(pt=pt, eta=eta, phi=phi, pid=pid, charge=q, r_prod_mm=r_prod, d0_true_mm=d0_true,
                      z0_true_mm=z0_true, e_overlap_gev=e_ov, e_overlap_had_gev=e_ovh)
    if e_ov is not None and np.any(e_ov < 0):
        raise InputError("e_overlap_gev must be >= 0")
    if e_ovh is not None and np.any(e_ovh < 0):
        raise InputError("e_overlap_had_gev must be >= 0")
    if n and np.any(pt <= 0):
        raise InputError("pt must be positive")
    if q is None:
        lepton = np.isin(np.abs(pid), (11, 13, 15))
        q = np.where(lepton, -np.sign(pid), np.sign(pid)).astype(float)
    r_prod = np.zeros(n) if r_prod is None else r_prod
    d0_true = np.zeros(n) if d0_true is None else d0_true
    z0_true = np.zeros(n) if z0_true is None else z0_true
    e_ov = np.zeros(n) if e_ov is None else e_ov
    e_ovh = np.zeros(n) if e_ovh is None else e_ovh

    a = np.abs(eta)
    p = pt * np.cosh(eta)
    mass = _masses(pid)
    is_e = _is_electron(pid)
    hadron = ~is_e & (np.abs(pid) != 13)
    reach = radial_reach_mm(pt, det.b_field_t)

    # ---- silicon hits --------------------------------------------------------------------------
    # ---- material: bremsstrahlung of electrons (production radius removes the material inside) ----
    t_tot = material_x0(eta, det)
    frac_after = np.clip((det.sct_radii_mm[-1] - r_prod) / det.sct_radii_mm[-1], 0.0, 1.0)
    t_si = det.silicon_material_share * t_tot * frac_after
    t_rest = (1.0 - det.silicon_material_share) * t_tot
    z_si = np.where(is_e, bethe_heitler_fraction(t_si, rng), 1.0)
    z_rest = np.where(is_e, bethe_heitler_fraction(t_rest, rng), 1.0)
    # an electron that radiates curls earlier: the outer SCT layers see sqrt(z_si) of its pT (half-way
    # through the silicon), the TRT sees z_si and the calorimeter z_si * sqrt(z_rest)
    reach_sct = radial_reach_mm(pt * np.sqrt(z_si), det.b_field_t)
    reach_trt = radial_reach_mm(pt * z_si, det.b_field_t)
    reach_calo = radial_reach_mm(pt * z_si * np.sqrt(z_rest), det.b_field_t)
    # hadronic interaction in the inner-detector material (hadrons only): a kink, the leading charged
    # secondary keeps a fraction x_lead of the momentum; the rest starts the calorimeter shower early
    t_lam = det.id_lambda_per_x0 * t_tot
    id_int = hadron & (rng.random(n) < 1.0 - np.exp(-t_lam))
    u_int = rng.random(n)  # position along the material (fraction)
    in_si = id_int & (u_int < det.silicon_material_share)
    x_lead = np.where(id_int, rng.uniform(0.2, 1.0, n), 1.0)
    reach_trt = np.where(id_int, radial_reach_mm(pt * x_lead, det.b_field_t), reach_trt)

    # ---- silicon hits --------------------------------------------------------------------------
    def layer_hits(radius, rch):
        inside = (radius > r_prod + 1.0) & (rch > radius) & (a <= det.eta_max)
        return inside & (rng.random(n) < det.si_hit_efficiency)

    n_ibl = layer_hits(det.ibl_radius_mm, reach).astype(np.int64)
    n_pix = sum(layer_hits(r, reach).astype(np.int64) for r in det.pixel_radii_mm)
    n_sct = sum(layer_hits(r, reach_sct).astype(np.int64) + layer_hits(r, reach_sct).astype(np.int64)
                for r in det.sct_radii_mm)
    n_si = n_ibl + n_pix + n_sct
    reco = (rng.random(n) < tracking_efficiency(pid, pt, eta, det)) & (n_si >= det.min_si_hits)

    # ---- track fit: momentum (biased by brem), impact parameters --------------------------------
    sig_qpt = resolution(pt, det.qpt_sigma_inf, det.qpt_p_x)  # 1/GeV
    inv_pt_fit_true = 0.5 * (1.0 / pt + 1.0 / (pt * z_si))  # mean curvature along the silicon track
    inv_pt_meas = q * inv_pt_fit_true + sig_qpt * rng.standard_normal(n)
    q_fit = np.where(inv_pt_meas >= 0, 1.0, -1.0)
    pt_fit = 1.0 / np.maximum(np.abs(inv_pt_meas), 1e-6)
    # fifth pass: the track must have a fitted pT above the tracking threshold (no random draw: every other
    # output keeps its value; an electron that radiated most of its momentum in the silicon fits below it)
    reco = reco & (pt_fit > det.track_pt_min_gev)
    rel = sig_qpt * pt  # relative momentum resolution
    p_first = 1.0 + 2.0 * rel * rng.standard_normal(n)
    p_last = z_si * np.where(in_si, x_lead, 1.0) * (1.0 + 2.0 * rel * rng.standard_normal(n))
    dpoverp = 1.0 - p_last / p_first

    d0_sinf = np.interp(a, det.d0_eta_points, det.d0_sigma_inf_mm)
    d0_px = np.interp(a, det.d0_eta_points, det.d0_p_x)
    sig_d0_true = resolution(pt, d0_sinf, d0_px)
    d0 = d0_true + sig_d0_true * rng.standard_normal(n)
    d0_sig = d0 / resolution(pt_fit, d0_sinf, d0_px)  # the estimated error uses the fitted pT
    sin_theta = 1.0 / np.cosh(eta)
    z0s = z0_true * sin_theta + resolution(pt, det.z0_sigma_inf_mm, det.z0_p_x) * rng.standard_normal(n)

    # ---- third pass: latent variables and heavy tails. All its draws come after the tracking outputs above,
    # so reco, hits, fitted momentum, charge and impact parameters keep their values for a given seed (the
    # b-tagging and semi-visible-jet samples, which use only those, are unchanged; the eta smear drawn last
    # is not).
    from scipy.special import gammainc, ndtr, ndtri

    dof = det.shape_tail_dof
    if dof is not None and not dof > 2:
        raise InputError(f"shape_tail_dof must be > 2 (finite variance) or None, got {dof}")

    def tdraw():  # unit-variance Student-t (Gaussian if shape_tail_dof is None)
        if dof is None:
            return rng.standard_normal(n)
        return rng.standard_t(dof, n) * np.sqrt((dof - 2.0) / dof)

    def latent_mix(u, rho):  # a N(0, 1) variable with correlation rho to the latent u
        return rho * u + np.sqrt(1.0 - rho**2) * rng.standard_normal(n)

    # bremsstrahlung / track-quality latent: the rank of the momentum lost in the silicon (electrons: the
    # Bethe-Heitler draw; hadrons: a kink in the silicon), mixed with noise; a badly radiating or kinked track
    # is badly fitted, which widens dpoverp and the track-cluster match together
    shape_si = np.maximum(t_si / np.log(2.0), 1e-12)
    rank = np.where(is_e & (t_si > 0), gammainc(shape_si, -np.log(np.maximum(z_si, 1e-300))),
                    np.where(in_si, (1.0 - x_lead) / 0.8, rng.random(n)))
    u_brem = latent_mix(ndtri(np.clip(rank, 1e-6, 1 - 1e-6)), det.brem_latent_rho)
    m_fit = np.exp(det.brem_fit_log_sigma * u_brem - 0.5 * det.brem_fit_log_sigma**2)  # mean 1
    p_first = 1.0 + 2.0 * rel * m_fit * tdraw()
    p_last = z_si * np.where(in_si, x_lead, 1.0) * (1.0 + 2.0 * rel * m_fit * tdraw())
    dpoverp = 1.0 - p_last / p_first
    # TRT extension: lost more often the more momentum the track lost in the silicon
    lost_si = np.where(is_e, 1.0 - z_si, np.where(in_si, 1.0 - x_lead, 0.0))
    no_ext = rng.random(n) < np.clip(det.trt_ext_ineff_base + det.trt_ext_ineff_slope * lost_si, 0.0, 1.0)
    # hadron-shower latent: a pi0-rich shower is at once early, electromagnetic, compact and fully visible
    u_had = rng.standard_normal(n)

    def shower_u():  # a uniform variable correlated (shower_latent_rho, Gaussian copula) to the shower latent
        return ndtr(latent_mix(u_had, det.shower_latent_rho))

    # ---- TRT -----------------------------------------------------------------------------------
    barrel = a < det.trt_barrel_eta_max
    r_in = np.where(barrel, det.trt_barrel_radii_mm[0], det.trt_endcap_radii_mm[0])
    r_out = np.where(barrel, det.trt_barrel_radii_mm[1], det.trt_endcap_radii_mm[1])
    path_frac = np.clip((np.minimum(reach_trt, r_out) - np.maximum(r_in, r_prod)) / (r_out - r_in), 0.0, 1.0)
    nominal = np.interp(a, det.trt_nominal_eta, det.trt_nominal_hits) * (a < det.trt_eta_max)
    n_cross = rng.poisson(nominal * path_frac)
    n_trt = np.where(no_ext, 0, rng.binomial(n_cross, det.trt_straw_efficiency))
    has_trt = n_trt >= det.trt_min_hits
    region = np.where(barrel, 0, np.where(a < det.trt_endcap_a_eta_max, 1, 2))
    pars = np.array([det.ht_barrel, det.ht_endcap_a, det.ht_endcap_b])[region].T  # (4, n)
    e_at_trt = np.sqrt((p * z_si * x_lead) ** 2 + mass**2)
    occ = min(det.trt_occupancy_per_mu * det.pileup_mu, 0.9)

    def with_occ(ph):  # an HT hit from the track itself or from another particle in an occupied straw
        return 1.0 - (1.0 - ph) * (1.0 - occ * det.trt_ht_occupancy)

    p_ht_true = with_occ(p_ht(e_at_trt / mass, pars))
    n_ht = rng.binomial(n_trt, np.clip(p_ht_true, 0, 1))
    f_ht = np.where(n_trt > 0, n_ht / np.maximum(n_trt, 1), np.nan)
    p_fit = pt_fit * np.cosh(eta)
    pe = with_occ(p_ht(np.sqrt(p_fit**2 + MASSES[11] ** 2) / MASSES[11], pars))  # occupancy-corrected,
    ppi = with_occ(p_ht(np.sqrt(p_fit**2 + _PI_MASS**2) / _PI_MASS, pars))  # as the athena tool does
    llr = n_ht * np.log(pe / ppi) + (n_trt - n_ht) * np.log((1 - pe) / (1 - ppi))
    trt_pid = 1.0 / (1.0 + np.exp(-np.clip(llr, -50, 50)))

    # ---- EM calorimeter ------------------------------------------------------------------------
    r_front = np.minimum(det.calo_barrel_radius_mm, det.calo_endcap_z_mm / np.maximum(np.sinh(a), 1e-9))
    in_calo = _in_calo_acceptance(a, det)
    arrives = in_calo & (reach_calo > r_front)  # the particle itself reaches the calorimeter (straight eta)
    if det.calo_acceptance == "physical":
        has_calo = arrives
    elif det.calo_acceptance == "extrapolated":
        has_calo = _helix_in_calo(pt_fit, eta, det)
        pt_arrive = pt * z_si * np.sqrt(z_rest) * x_lead
        arrives = has_calo & _helix_in_calo(pt_arrive, eta, det)
    else:
        raise InputError(f"calo_acceptance must be 'extrapolated' or 'physical', got {det.calo_acceptance!r}")
    t_dead = np.interp(a, det.dead_eta, det.dead_x0)
    e_true = np.sqrt(p**2 + mass**2)
    kfield = 0.3 * det.b_field_t / 2.0  # GeV rad / m per unit radius
    r_calo_m = r_front / 1000.0
    # electrons: the electron itself plus the brem photons that stay inside the cluster window
    e_el = np.where(arrives, p * z_si * z_rest, 0.0)  # a curled-away electron leaves only its brem photons
    lost_si, lost_rest = p * (1 - z_si), p * z_si * (1 - z_rest)
    dphi_si = kfield * np.maximum(r_calo_m - det.brem_radius_si_m, 0.0) / pt
    dphi_rest = kfield * np.maximum(r_calo_m - det.brem_radius_rest_m, 0.0) / pt
    coll_si = np.clip(det.cluster_half_width_phi / np.maximum(dphi_si, 1e-9), 0, 1)
    coll_rest = np.clip(det.cluster_half_width_phi / np.maximum(dphi_rest, 1e-9), 0, 1)
    e_em = e_el + coll_si * lost_si + coll_rest * lost_rest
    em_frac = _em_layer_fractions(e_em, t_dead, det, rng)  # (6, n)
    # hadrons: interaction depth in lambda; MIP before it, exponential shower after it
    # interaction depth ~ Exp(1) lambda, early for an EM-like shower (copula on the hadron-shower latent)
    depth_l = np.where(id_int, 0.0, -np.log(shower_u()))  # ID interaction: from the front
    interacts = hadron & (depth_l < det.em_lambda) & (arrives | id_int)
    total_x0 = det.presampler_x0 + sum(det.layer_x0)
    depth_x0 = np.minimum(depth_l * det.x0_per_lambda, total_x0)
    bounds = np.array([0.0, det.presampler_x0, det.presampler_x0 + det.layer_x0[0],
                       det.presampler_x0 + det.layer_x0[0] + det.layer_x0[1], total_x0])
    thick = np.diff(bounds)[:, None]  # (4, 1)
    upto = np.clip(depth_x0[None, :] - bounds[:-1, None], 0.0, thick)  # MIP path per layer before interaction
    mip_path = np.where(interacts[None, :], upto, thick * np.ones((1, n)))
    mip = det.mip_gev_per_x0 * mip_path * np.exp(0.3 * rng.standard_normal((4, n)) - 0.045)
    e_kin = np.maximum(e_true - mass, 0.0)
    # EM (pi0) fraction of the shower (Groom's mean, Beta fluctuations, charge exchange ~ all EM)
    fbar = np.clip(1.0 - (np.maximum(e_kin, 1e-3) / det.fem_e0_gev) ** (det.fem_k - 1.0), det.fem_min, 0.9)
    f_em = _beta_quantile(det.fem_concentration * fbar, det.fem_concentration * (1 - fbar),
                          shower_u())
    f_em = np.where(rng.random(n) < det.charge_exchange_prob, rng.uniform(0.8, 1.0, n), f_em)
    e_em_h = f_em * e_kin
    vis_h = (1 - f_em) * e_kin * det.h_over_e * 2.0 * _beta_quantile(2.0, 2.0, shower_u())
    shower = _exp_layer_fractions(depth_x0, det.x0_per_lambda, t_dead, det)  # (5, n)
    em_h_frac = _em_layer_fractions(np.maximum(e_em_h, 0.02), t_dead + depth_x0, det, rng)  # from the vertex
    had_layers = mip + np.where(interacts[None, :], shower[:4] * vis_h[None, :] + em_h_frac[1:5] * e_em_h[None, :], 0.0)
    had_leak = np.where(interacts, shower[4] * vis_h + em_h_frac[5] * e_em_h, 0.0)
    had_mip = ~arrives & ~interacts  # a hadron that curled away leaves nothing
    had_layers = np.where(had_mip[None, :], 0.0, had_layers)
    # share of the middle layer's hadron deposit that is electromagnetic (compact laterally)
    em_share2 = np.where(interacts, em_h_frac[3] * e_em_h / np.maximum(had_layers[2], 1e-6), 0.0)
    em_share2 = np.clip(em_share2, 0.0, 1.0)
    em_layers = em_frac[1:5] * e_em[None, :]
    em_leak = em_frac[5] * e_em
    muon = np.abs(pid) == 13
    layers = np.where(is_e[None, :], em_layers, np.where(muon[None, :], mip * arrives[None, :], had_layers))
    leak = np.where(is_e, em_leak, np.where(muon, 0.0, had_leak))
    # overlapping EM energy of other particles (photon showers, no upstream loss modelled)
    ov_frac = _em_layer_fractions(np.maximum(e_ov, 1e-3), t_dead, det)
    ov_layers = ov_frac[1:5] * e_ov[None, :]
    ov_leak = ov_frac[5] * e_ov
    # overlapping hadrons: a Beta share of their energy in the EM layers (exponential profile from an
    # Exp(1)-lambda interaction depth), the rest at h/e in the hadronic calorimeter behind
    if det.ov_had_em_beta is not None:
        sh = rng.beta(*det.ov_had_em_beta, n)
        start = np.minimum(rng.exponential(1.0, n) * det.x0_per_lambda, total_x0)
        prof = _exp_layer_fractions(start, det.x0_per_lambda, t_dead, det)[:4]
        prof = prof / np.maximum(prof.sum(axis=0), 1e-9)
        ov_layers = ov_layers + prof * (sh * e_ovh)[None, :]
        ov_leak = ov_leak + (1.0 - sh) * e_ovh * det.h_over_e
    r_ov = ov_layers[2] / np.maximum(ov_layers[2] + np.maximum(layers[2], 0.0), 1e-9)
    layers = layers + ov_layers
    leak = leak + ov_leak
    # sampling resolution on the total, then electronic noise per layer
    tot = layers.sum(axis=0)
    smear = 1.0 + np.sqrt(det.stochastic**2 / np.maximum(tot, 1e-3) + det.constant**2) * rng.standard_normal(n)
    layers = layers * np.maximum(smear, 0.0)[None, :]
    layers[0] = np.where(a < det.presampler_eta_max, layers[0], 0.0)
    layers = layers + np.array(det.noise_gev)[:, None] * rng.standard_normal((4, n))
    pu_sigma = _pileup_sigma(a, det)  # (4, n)
    if det.pileup_mu > 0:
        k = det.calo_pileup_shape
        layers = layers + pu_sigma * (rng.gamma(k, 1.0, (4, n)) - k) / np.sqrt(k)
    layers[0] = np.where(a < det.presampler_eta_max, layers[0], 0.0)
    noise2 = np.sqrt(det.noise_gev[2] ** 2 + pu_sigma[2] ** 2)  # total noise of the middle-layer window
    e_had = leak + det.had_noise_gev * rng.standard_normal(n)
    raw = layers.sum(axis=0)
    # a calorimeter cluster must be reconstructed around the track: EM-scale E_T above threshold
    if det.calo_cluster_et_min_gev > 0:
        has_calo = has_calo & (raw / np.cosh(eta) > det.calo_cluster_et_min_gev)
    # calibration: divide by the mean visible fraction of an electron shower of that energy
    mean_frac = _em_layer_fractions(np.maximum(raw, 0.05), t_dead, det)[1:5].sum(axis=0)
    e_cluster = raw / np.maximum(mean_frac, 0.3)
    denom = np.where(np.abs(raw) > 0.02, raw, 0.02)
    f0, f1, f3 = layers[0] / denom, layers[1] / denom, layers[3] / denom
    rhad = e_had / denom
    e_over_p = e_cluster / p_fit
    # lateral shapes: core fraction c of the middle layer in 3x7 (of 7x7)
    e2 = layers[2]
    e_lat = np.maximum(np.where(is_e, e_em, e_em_h), 0.05)  # energy of the EM shower
    sig_lat = np.minimum(det.lateral_sigma_ref * np.sqrt(det.lateral_e_ref_gev / e_lat), 0.15)
    c_el = np.clip(0.94 + sig_lat * tdraw(), 0, 1)
    c_had = _beta_quantile(7.0, 3.0, shower_u())
    c = np.where(is_e, c_el, np.where(interacts, em_share2 * c_el + (1 - em_share2) * c_had, 0.97))
    c_core = c * (1 - r_ov) + r_ov  # overlap energy lies inside the 3x7 window by construction
    core = c_core * np.maximum(e2, 0) + np.sqrt(3 / 7) * noise2 * rng.standard_normal(n)  # 3x7 of the 7x7
    wide = core + (1 - c_core) * np.maximum(e2, 0) + np.sqrt(4 / 7) * noise2 * rng.standard_normal(n)
    reta = np.clip(core / np.where(np.abs(wide) > 0.01, wide, 0.01), -1.0, 2.0)
    # R_phi: brem photons collected in the 7-cell window but outside the central 3 lower it
    # brem photons spread uniformly over [0, dphi] from the electron: those between 1.5 and 3.5 cells
    w3 = det.cluster_half_width_phi * 1.5 / 3.5
    in3_si = np.clip(w3 / np.maximum(dphi_si, 1e-9), 0, 1)
    in3_rest = np.clip(w3 / np.maximum(dphi_rest, 1e-9), 0, 1)
    wing = np.where(is_e, ((coll_si - in3_si) * lost_si + (coll_rest - in3_rest) * lost_rest)
                    / np.maximum(e_em, 1e-6), 0.0)
    c_phi_e = 0.96 + sig_lat * tdraw()
    c_phi_h = em_share2 * c_phi_e + (1 - em_share2) * _beta_quantile(8.0, 2.0, shower_u())
    c_phi = np.where(is_e, c_phi_e - wing, np.where(interacts, c_phi_h, 0.97))
    c_phi = np.clip(c_phi + 0.01 * rng.standard_normal(n), 0, 1) * (1 - r_ov) + 3.0 / 7.0 * r_ov
    rphi = np.clip((c_phi * core + np.sqrt(3 / 7) * noise2 * rng.standard_normal(n))
                   / np.where(np.abs(core) > 0.01, core, 0.01), -1.0, 2.0)
    # energy-weighted width: the shower's own, widened by overlapping energy and by noise (which weighs
    # in as noise2 / e2 of uniformly spread energy, w ~ 0.025 / sqrt(12) per cell... ~0.012 for 3 cells)
    e2p = np.maximum(e2, 0.01)
    w_noise = 0.012 * np.clip(noise2 / e2p, 0.0, 1.0) * np.abs(rng.standard_normal(n))
    weta2 = (0.0065 + 0.012 * (1 - c) * (1 - r_ov) + 0.01 * r_ov + 0.0005 * tdraw()
             + 0.0005 / np.sqrt(e2p) + w_noise)
    s1 = np.maximum(layers[1], 0.01)
    # multiple scattering in the material before the calorimeter (Highland, PDG): theta0 = 13.6 MeV / p sqrt(t)
    t_ms = np.maximum(t_tot + t_dead, 1e-3)
    theta0 = 0.0136 / np.maximum(p, 1e-3) * np.sqrt(t_ms) * (1.0 + 0.038 * np.log(t_ms))
    deta1 = (np.hypot(np.where(is_e, 0.002, 0.006) / np.sqrt(s1 + 0.1), theta0 * np.cosh(eta) / np.sqrt(3.0))
             * m_fit * tdraw())
    # phi match: the cluster sits where the particle hits; the extrapolation uses the fitted pT
    z_eff = np.sqrt(z_si * np.where(is_e, z_rest, 1.0))
    dphi2 = (kfield * r_calo_m * (1.0 / pt_fit - 1.0 / (pt * z_eff)) * 0.5
             + np.hypot(0.004, theta0 / np.sqrt(3.0)) * m_fit * tdraw())

    cat = np.where(has_trt, np.where(has_calo, 0, 2), np.where(has_calo, 1, 3))
    out = {
        "pt": pt_fit, "eta": eta + 0.001 * rng.standard_normal(n), "phi": phi,
        "d0": d0, "d0_sig": d0_sig, "z0sintheta": z0s,
        "n_ibl": n_ibl, "n_pix": n_pix, "n_sct": n_sct, "dpoverp": dpoverp,
        "n_trt": n_trt.astype(np.int64), "f_ht": f_ht, "trt_pid": trt_pid,
        "e_over_p": e_over_p, "f0": f0, "f1": f1, "f3": f3, "rhad": rhad, "reta": reta, "rphi": rphi,
        "weta2": weta2, "deta1": deta1, "dphi2": dphi2,
    }
    # ratios with tiny denominators have absurd tails; clip them to physical ranges
    for k, (lo, hi) in {"e_over_p": (-2, 10), "f0": (-2, 2), "f1": (-2, 2), "f3": (-2, 2), "rhad": (-5, 5),
                        "dphi2": (-1, 1), "dpoverp": (-2, 2), "d0_sig": (-1e3, 1e3)}.items():
        out[k] = np.clip(out[k], lo, hi)
    df = pd.DataFrame(out)
    for col in TRT_FEATURES:
        df[col] = np.where(has_trt, df[col].to_numpy(dtype=float), np.nan)
    for col in CALO_FEATURES:
        df[col] = np.where(has_calo, df[col].to_numpy(dtype=float), np.nan)
    df["charge"] = q_fit.astype(np.int8)
    df["reco"] = reco
    df["has_trt"] = has_trt
    df["has_calo"] = has_calo
    df["category"] = pd.Categorical.from_codes(cat, CATEGORIES)
    df["true_pt"] = pt
    df["true_eta"] = eta
    df["pid"] = pid
    df["brem_fraction"] = np.where(is_e, 1.0 - z_si * z_rest, 0.0)
    return df


def toy_track_table(n: int = 3000, seed: int = 0, *, electron_fraction: float = 0.4) -> pd.DataFrame:
    """A labelled track table without Pythia: ``n`` single electrons and charged pions (both charges), flat in
    pT 0.5-5 GeV, |eta| < 2.5 and phi, through :func:`simulate_tracks`; the reconstructed tracks only, with
    ``category`` (str), ``label`` (1 electron, 0 pion) and ``origin`` ("prompt" / "hadron"). ``seed`` draws the
    particles and ``seed + 1`` the detector response. For smoke runs, tests and calibration checks of the
    taggers; the physics samples come from :func:`excess.data.electrons.generate_tracks`."""
    if not 0 < float(electron_fraction) < 1:
        raise InputError(f"electron_fraction must be in (0, 1), got {electron_fraction}")
    rng = np.random.default_rng(seed)
    pid = np.where(rng.random(n) < electron_fraction, 11, 211) * rng.choice([-1, 1], n)
    t = simulate_tracks(rng.uniform(0.5, 5, n), rng.uniform(-2.5, 2.5, n), rng.uniform(-3, 3, n), pid,
                        random_state=seed + 1)
    t = t[t["reco"]].reset_index(drop=True)
    t["category"] = t["category"].astype(str)
    t["label"] = (np.abs(t["pid"]) == 11).astype(np.int8)
    t["origin"] = np.where(t["label"] == 1, "prompt", "hadron")
    return t
