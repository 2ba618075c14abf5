"""Error measures of the ML layer: potentials (kJ/mol, by region) and scalar regressions.

Regions of a potential are defined once per dataset from a reference potential (the mean
of the potentials being compared), so that every model is scored on the same grid points:

* ``grid``: every grid point;
* ``sampled``: points where the reference is at most ``sampled_max_kj_mol`` (10 kJ/mol,
  about 4 kT at 298 K), i.e. without the unsampled part of the repulsive wall;
* ``well``: the first well, from the reference's first zero crossing ``r0`` to
  ``2 r_min - r0`` where ``r_min`` is the position of its minimum.
"""

from __future__ import annotations

import math

import numpy as np


def potential_regions(r_nm: np.ndarray, reference: np.ndarray, *,
                      sampled_max_kj_mol: float = 10.0) -> dict[str, np.ndarray]:
    """Boolean masks (G,) ``grid``, ``sampled`` and ``well`` (see the module docstring)."""
    r = np.asarray(r_nm, dtype=float)
    ref = np.asarray(reference, dtype=float)
    k_min = int(np.argmin(ref))
    below = np.nonzero(ref[: k_min + 1] <= 0.0)[0]
    k_zero = int(below[0]) if below.size else 0
    r_zero, r_min = r[k_zero], r[k_min]
    well = (r >= r_zero - 1e-12) & (r <= 2.0 * r_min - r_zero + 1e-12)
    return {"grid": np.ones(r.shape, dtype=bool), "sampled": ref <= sampled_max_kj_mol,
            "well": well}


def potential_rmse(r_nm: np.ndarray, U_true: np.ndarray, U_pred: np.ndarray,
                   reference: np.ndarray | None = None) -> dict[str, float]:
    """RMSE in kJ/mol over all potentials and the grid points of each region.

    Parameters
    ----------
    r_nm
        (G,) grid, nm.
    U_true, U_pred
        (n, G) potentials, kJ/mol.
    reference
        (G,) potential defining the regions; default the mean of ``U_true``.

    Returns
    -------
    dict
        ``rmse_grid``, ``rmse_sampled``, ``rmse_well`` (kJ/mol) and ``n`` (potentials).
    """
    t = np.atleast_2d(np.asarray(U_true, dtype=float))
    p = np.atleast_2d(np.asarray(U_pred, dtype=float))
    ref = t.mean(axis=0) if reference is None else np.asarray(reference, dtype=float)
    masks = potential_regions(r_nm, ref)
    err2 = (p - t) ** 2
    out = {f"rmse_{name}": float(np.sqrt(err2[:, m].mean())) if m.any() else math.nan
           for name, m in masks.items()}
    out["n"] = int(t.shape[0])
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray,
                       y_std: np.ndarray | None = None) -> dict[str, float]:
    """RMSE, MAE, R^2 and, with ``y_std``, Gaussian NLL and 1-sigma coverage.

    ``nll`` is the mean negative log-likelihood of ``y_true`` under ``N(y_pred, y_std^2)``
    (std floored at 1e-9); ``coverage_1sigma`` is the fraction with
    ``|y_true - y_pred| <= y_std`` (0.683 for a calibrated Gaussian).
    """
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    res = y - p
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    out = {
        "rmse": float(np.sqrt(np.mean(res**2))),
        "mae": float(np.mean(np.abs(res))),
        "r2": 1.0 - float(np.sum(res**2)) / ss_tot if ss_tot > 0 else math.nan,
        "n": int(y.size),
    }
    if y_std is not None:
        s = np.maximum(np.asarray(y_std, dtype=float).ravel(), 1e-9)
        out["nll"] = float(np.mean(0.5 * np.log(2.0 * np.pi * s**2) + 0.5 * (res / s) ** 2))
        out["coverage_1sigma"] = float(np.mean(np.abs(res) <= s))
    return out
