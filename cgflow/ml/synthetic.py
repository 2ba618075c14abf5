"""Synthetic campaign tables with known structure, for tests and benchmarks of the ML layer.

The generator mimics what a campaign produces, with stated simplifications:

* Parameters are a Latin hypercube in a shipped :class:`~cgflow.params.ParameterSpace`;
  ``z`` below is each parameter scaled to [-1, 1] across the space (0 for fixed ones).
* Potentials: a Lennard-Jones 12-6 well whose ``sigma`` and ``epsilon`` are smooth
  nonlinear functions of four parameters, plus a small second-shell bump, shifted to 0 at
  the cut-off. Where the LJ wall exceeds ``wall_kj_mol`` it is continued linearly
  (constant force, matching value and slope), as IBI codes commonly extrapolate the
  unsampled core. Optional white
  noise (``noise_kj_mol``) outside the core imitates IBI sampling noise.
* RDF: ``g = exp(-U / kT)``, the low-density limit (not a liquid RDF).
* Dynamics: ``D_CG`` depends on the potential only (through ``sigma`` and ``epsilon``),
  ``alpha = exp(0.6 + 0.25 tanh(2 z_a) + 0.15 z_b^2 - 0.1 z_c + noise)`` for three other
  parameters, ``D_AA = D_CG / alpha``; relative standard errors are ``rel_err``.
"""

from __future__ import annotations

import numpy as np

from cgflow import units
from cgflow.ml.dataset import CampaignDataset
from cgflow.params import FIELDS, get_space

#: Parameters that shape the synthetic potential and alpha (indices into FIELDS).
SIGMA_FIELDS = ("bond_ctct_r0", "angle_ctctct_theta0")
EPSILON_FIELDS = ("dih_ctctctct_c1", "angle_ctctct_k")
ALPHA_FIELDS = ("dih_ctctcthc_c3", "angle_ctcthc_theta0", "bond_cthc_k")


def default_grid_nm(r_min: float = 0.30, r_cut: float = 1.50, dr: float = 0.01) -> np.ndarray:
    """A typical CG potential grid: ``r_min`` to ``r_cut`` nm every ``dr`` nm."""
    return np.round(np.arange(r_min, r_cut + 0.5 * dr, dr), 10)


def scaled_parameters(X: np.ndarray, space: str = "narrow") -> np.ndarray:
    """Parameters scaled to [-1, 1] across ``space`` (0 where a bound has zero width)."""
    sp = get_space(space)
    lo, hi = sp.lows(), sp.highs()
    half = 0.5 * (hi - lo)
    return np.where(half > 0, (np.asarray(X) - 0.5 * (hi + lo)) / np.where(half > 0, half, 1.0),
                    0.0)


def sigma_epsilon(X: np.ndarray, space: str = "narrow") -> tuple[np.ndarray, np.ndarray]:
    """LJ sigma (nm) and epsilon (kJ/mol) of the synthetic family for each row of X."""
    z = scaled_parameters(X, space)
    zs = [z[:, FIELDS.index(f)] for f in SIGMA_FIELDS]
    ze = [z[:, FIELDS.index(f)] for f in EPSILON_FIELDS]
    sigma = 0.58 + 0.03 * np.tanh(1.5 * zs[0]) + 0.01 * zs[1]
    epsilon = 2.2 * np.exp(0.2 * np.tanh(1.5 * ze[0]) + 0.1 * ze[1] ** 2 - 0.05 * ze[0] * ze[1])
    return sigma, epsilon


def family_potential(r_nm: np.ndarray, sigma: float, epsilon: float, bump: float = 0.15,
                     wall_kj_mol: float = 15.0) -> np.ndarray:
    """One potential of the synthetic family on ``r_nm`` (kJ/mol); see the module doc."""
    r = np.asarray(r_nm, dtype=float)
    sr6 = (sigma / r) ** 6
    u = 4.0 * epsilon * (sr6**2 - sr6) + bump * np.exp(-(((r - 1.75 * sigma) / 0.08) ** 2))
    # below r_w, where the LJ wall reaches wall_kj_mol, continue with the constant force
    # of the wall at r_w (r_w and the force vary smoothly with sigma and epsilon)
    x = 0.5 * (1.0 + np.sqrt(1.0 + wall_kj_mol / epsilon))  # (sigma / r_w)^6
    r_w = sigma / x ** (1.0 / 6.0)
    du_w = 4.0 * epsilon * (-12.0 * x**2 + 6.0 * x) / r_w
    core = r < r_w
    u[core] = wall_kj_mol + du_w * (r[core] - r_w)
    return u - u[-1]


def synthetic_campaign(
    n: int, *, seed: int = 0, space: str = "narrow", r_grid_nm: np.ndarray | None = None,
    noise_kj_mol: float = 0.02, alpha_noise: float = 0.03, rel_err: float = 0.03,
    temperature_k: float = 298.15, campaign: str = "synthetic",
) -> CampaignDataset:
    """A synthetic :class:`CampaignDataset` of ``n`` sets (see the module docstring).

    Reproducible for a given ``seed``.
    """
    r = default_grid_nm() if r_grid_nm is None else np.asarray(r_grid_nm, dtype=float)
    sets = get_space(space).sample(n, seed=seed)
    X = np.array([ps.to_array() for ps in sets])
    rng = np.random.default_rng(seed + 1_000_003)
    sigma, epsilon = sigma_epsilon(X, space)
    U = np.array([family_potential(r, s, e) for s, e in zip(sigma, epsilon, strict=True)])
    if noise_kj_mol > 0:
        noisy = U < 15.0
        U = U + noisy * rng.normal(0.0, noise_kj_mol, U.shape)
        U = U - U[:, [-1]]
    kt = units.kt_kj_mol(temperature_k)
    g = np.exp(-np.clip(U, -50.0, 50.0) / kt)
    z = scaled_parameters(X, space)
    za, zb, zc = (z[:, FIELDS.index(f)] for f in ALPHA_FIELDS)
    log_alpha = 0.6 + 0.25 * np.tanh(2.0 * za) + 0.15 * zb**2 - 0.1 * zc
    alpha = np.exp(log_alpha + rng.normal(0.0, alpha_noise, n))
    d_cg = 6.0e-3 * np.exp(-(epsilon - 2.2) / 1.0) * (0.58 / sigma) ** 2
    d_aa = d_cg / alpha
    return CampaignDataset(
        param_ids=np.array([ps.id for ps in sets]), X=X, r_nm=r, U=U, g_target=g,
        d_aa=d_aa, d_aa_err=rel_err * d_aa, d_cg=d_cg, d_cg_err=rel_err * d_cg,
        alpha=alpha, alpha_err=alpha * np.sqrt(2.0) * rel_err, campaign=campaign,
    )


def synthetic_alpha_table(
    n: int, *, seed: int = 0, space: str = "narrow", noise: float = 0.03
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, alpha)`` of the synthetic alpha law alone (no potentials), for benchmarks."""
    ds = synthetic_campaign(n, seed=seed, space=space, alpha_noise=noise, noise_kj_mol=0.0)
    return ds.X, ds.alpha
