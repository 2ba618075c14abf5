"""Potential updates of Iterative Boltzmann Inversion: RDF update, pressure correction,
adaptive update factor.

Units: r in nm, U in kJ/mol, pressure in bar, temperature in K, density in kg/m^3 or
1/nm^3 where the name says so.

RDF update (:func:`ibi_update`), on the region where both RDFs are reliable::

    dU(r) = a kT ln(g_n(r) / g_t(r))

The update ``dU`` is smoothed (Savitzky-Golay), multiplied by the switching function
that takes it smoothly to zero at the cutoff, and added to U_n; below the reliable
region the new potential gets the r^-12 core of
:func:`cgflow.ibi.potential.extrapolate_core`. The factor ``a`` adapts between
iterations (:func:`adapt_factor`): it is damped after an iteration that made the RDF
worse and restored after iterations that improve it, so that the loop runs at full
step while it converges and cannot oscillate.

Pressure correction (:func:`pressure_correction`): a ramp A (1 - r/r_c) S(r) whose
amplitude comes from the virial (the first-order pressure change per unit amplitude at
the sampled structure, :func:`ramp_response_bar`) instead of VOTCA's fixed fraction of
kT, aimed at the pressure error plus the drift of the pressure that the RDF update
caused in the previous iteration. It brings the pressure to its target in a few
iterations, together with the RDF.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.integrate import trapezoid

from cgflow import units
from cgflow.errors import InvalidInputError
from cgflow.ibi.integral_equation import S_MIN, hnc_potential_correction
from cgflow.ibi.potential import (
    extrapolate_core,
    first_reliable_index,
    smooth,
    switching_function,
)


def ibi_update(
    r_nm: np.ndarray, u_n: np.ndarray, g_n: np.ndarray, g_target: np.ndarray,
    temperature_k: float, *, factor: float = 1.0, g_min: float = 0.02, smoothing_window: int = 5,
    switch_width_nm: float = 0.1, method: Literal["ibi", "ihnc"] = "ibi",
    density_nm3: float | None = None, s_min: float = S_MIN,
) -> np.ndarray:
    """One RDF update of the potential (see the module docstring for the rule).

    With ``method="ihnc"`` the update is that of the iterative HNC method
    (:mod:`cgflow.ibi.integral_equation`): the IBI term plus kT (gamma[g_t] - gamma[g_n]),
    gamma the indirect correlation of the Ornstein-Zernike relation at ``density_nm3``.

    Parameters
    ----------
    r_nm
        Uniform potential grid, nm; the last point is the cutoff.
    u_n
        Current potential U_n on ``r_nm``, kJ/mol.
    g_n
        RDF sampled with U_n, on ``r_nm``.
    g_target
        Target RDF on ``r_nm``.
    temperature_k
        Temperature, K.
    factor
        Update factor a (damping for a < 1).
    g_min
        Both RDFs must exceed ``g_min`` for a point to be updated
        (:func:`cgflow.ibi.potential.first_reliable_index`).
    smoothing_window
        Savitzky-Golay window (points) applied to the update; < 5 disables smoothing.
    switch_width_nm
        Width over which the update is switched off before the cutoff.
    method
        ``"ibi"`` (Boltzmann inversion of the RDF ratio) or ``"ihnc"`` (iterative HNC).
    density_nm3
        Number density, 1/nm^3 (needed by ``"ihnc"``).

    Returns
    -------
    numpy.ndarray
        U_{n+1} on ``r_nm``, kJ/mol. Where g_n equals g_t the update is exactly zero.
    """
    r = np.asarray(r_nm, float)
    u_n, g_n, g_t = (np.asarray(a, float) for a in (u_n, g_n, g_target))
    if not (u_n.shape == g_n.shape == g_t.shape == r.shape):
        raise InvalidInputError(f"IBI update: shapes differ: r {r.shape}, U {u_n.shape}, "
                                f"g_n {g_n.shape}, g_target {g_t.shape}")
    if not factor > 0:
        raise InvalidInputError(f"IBI update: field 'factor': must be > 0, got {factor!r}")
    kt = units.kt_kj_mol(temperature_k)
    i0 = max(first_reliable_index(g_n, g_min), first_reliable_index(g_t, g_min))
    du = np.zeros_like(r)
    du[i0:] = kt * np.log(np.maximum(g_n[i0:], g_min) / np.maximum(g_t[i0:], g_min))
    if method == "ihnc":
        if density_nm3 is None:
            raise InvalidInputError("IBI update: method 'ihnc' needs the number density "
                                    "(field 'density_nm3')")
        corr = (hnc_potential_correction(r, g_t, density_nm3, temperature_k, s_min=s_min)
                - hnc_potential_correction(r, g_n, density_nm3, temperature_k, s_min=s_min))
        du[i0:] += corr[i0:]
    elif method != "ibi":
        raise InvalidInputError(f"IBI update: field 'method': unknown value {method!r} "
                                "(expected 'ibi' or 'ihnc')")
    du[i0:] = smooth(du[i0:], smoothing_window)
    du *= factor * switching_function(r, r[-1], switch_width_nm)
    u_new = u_n + du
    return extrapolate_core(r, u_new, i0, temperature_k)


# --- pressure ---------------------------------------------------------------------------


def virial_pressure_bar(
    r_nm: np.ndarray, du_dr: np.ndarray, g: np.ndarray, density_nm3: float,
) -> float:
    """Pair (virial) part of the pressure, bar: -(2 pi / 3) rho^2 int r^3 U'(r) g(r) dr.

    ``du_dr`` is dU/dr in kJ/(mol nm) on ``r_nm``; the integral is a trapezoid sum over
    the grid.
    """
    r = np.asarray(r_nm, float)
    w = -2.0 * np.pi / 3.0 * density_nm3**2 * trapezoid(r**3 * du_dr * g, r)
    return float(units.kj_mol_nm3_to_bar(w))


def ramp_shape(r_nm: np.ndarray, switch_width_nm: float = 0.1) -> np.ndarray:
    """Shape of the pressure-correction ramp: (1 - r/r_c) S(r), S the switching function."""
    r = np.asarray(r_nm, float)
    return (1.0 - r / r[-1]) * switching_function(r, r[-1], switch_width_nm)


def ramp_response_bar(
    r_nm: np.ndarray, g: np.ndarray, density_nm3: float, switch_width_nm: float = 0.1,
) -> float:
    """First-order pressure change (bar) per kJ/mol of ramp amplitude at the structure g.

    dP1 = -(2 pi / 3) rho^2 int r^3 g(r) s'(r) dr with s = :func:`ramp_shape` (positive:
    a repulsive ramp raises the pressure).
    """
    r = np.asarray(r_nm, float)
    shape = ramp_shape(r, switch_width_nm)
    return virial_pressure_bar(r, np.gradient(shape, r), np.asarray(g, float), density_nm3)


def pressure_correction(
    r_nm: np.ndarray, p_cg_bar: float, p_target_bar: float, temperature_k: float, *,
    method: Literal["virial", "simple"] = "virial", g: np.ndarray | None = None,
    density_nm3: float | None = None, factor: float = 1.0, drift_bar: float = 0.0,
    max_amplitude_kt: float = 1.0, simple_scale: float = 3e-4, switch_width_nm: float = 0.1,
) -> np.ndarray:
    """Ramp added to the potential to move the CG pressure towards the target.

    dU(r) = A (1 - r/r_c) S(r), S the switching function over the last
    ``switch_width_nm`` (so the correction has no force jump at the cutoff).

    ``method="virial"`` (default): A is chosen so that the first-order change of the
    virial pressure at the current structure cancels a fraction ``factor`` of the
    pressure error, together with the expected drift of the pressure caused by the RDF
    update (``drift_bar``, see below),

        A = factor (P_t - P_cg - drift) / dP1,   dP1 = :func:`ramp_response_bar`,

    with g the RDF sampled with the current potential (as in the method of Wang,
    Junghans and Kremer, with the amplitude taken from the virial rather than a fixed
    fraction of kT). A smooth, long-ranged ramp barely changes the structure of a dense
    liquid, so dP1 is close to the real response. The RDF update that accompanies the
    ramp restores the structure and with it part of the pressure: the caller passes
    that drift as measured in the previous iteration (the pressure change not explained
    by the previous ramp), so that the two updates together aim at the target.

    ``method="simple"``: VOTCA's rule, A = -sign(dP) 0.1 kT min(1, |simple_scale dP|)
    with dP = P_cg - P_t in bar (``drift_bar`` is not used).

    In both, |A| is capped at ``max_amplitude_kt`` kT.

    Returns
    -------
    numpy.ndarray
        dU on ``r_nm``, kJ/mol (add it to the potential).
    """
    r = np.asarray(r_nm, float)
    kt = units.kt_kj_mol(temperature_k)
    dp = p_cg_bar - p_target_bar
    shape = ramp_shape(r, switch_width_nm)
    if method == "simple":
        a = -np.sign(dp) * 0.1 * kt * min(1.0, abs(simple_scale * dp))
    elif method == "virial":
        if g is None or density_nm3 is None:
            raise InvalidInputError("pressure correction 'virial' needs the RDF g and the "
                                    "number density")
        dp1 = ramp_response_bar(r, g, density_nm3, switch_width_nm)
        a = -factor * (dp + drift_bar) / dp1
    else:
        raise InvalidInputError(f"pressure correction: field 'method': unknown value "
                                f"{method!r} (expected 'virial' or 'simple')")
    a = float(np.clip(a, -max_amplitude_kt * kt, max_amplitude_kt * kt))
    return a * shape


def adapt_factor(
    factor: float, deviation: float, previous_deviation: float | None, *,
    grow: float = 1.5, shrink: float = 0.5, tolerance: float = 0.1, minimum: float = 0.1,
    maximum: float = 1.0,
) -> float:
    """Update factor for the next iteration from the trend of the RDF deviation.

    If the deviation rose by more than the fraction ``tolerance`` since the previous
    iteration (more than sampling noise), the factor is multiplied by ``shrink``;
    otherwise by ``grow``. The result is clipped to [``minimum``, ``maximum``].
    """
    worse = previous_deviation is not None and deviation > (1.0 + tolerance) * previous_deviation
    new = factor * (shrink if worse else grow)
    return float(np.clip(new, minimum, maximum))


def anderson_step(
    u_history: list[np.ndarray], f_history: list[np.ndarray], *, mixing: float = 1.0,
    weights: np.ndarray | None = None, regularisation: float = 1e-3,
    max_coefficient: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Anderson-accelerated next potential of a fixed-point iteration U = U + f(U).

    IBI is a fixed-point iteration: each iteration proposes the step f_n (the RDF update
    plus the pressure ramp, :func:`ibi_update` and :func:`pressure_correction`) whose
    zero is the converged potential. Anderson mixing (type II, as in Walker and Ni, SIAM
    J. Numer. Anal. 2011) treats RDF and pressure as one residual and extrapolates from
    the last m steps: with dF_j = f_{j+1} - f_j and dU_j = U_{j+1} - U_j,

        gamma = argmin |f_n - dF gamma|_w^2 + lambda |gamma|^2
        U_{n+1} = U_n + beta f_n - (dU + beta dF) gamma

    a secant (quasi-Newton) step on the whole residual, which reduces to the plain step
    U_n + beta f_n without history.

    Parameters
    ----------
    u_history, f_history
        Potentials U_{n-m}..U_n and their steps f_{n-m}..f_n (same grid, kJ/mol), oldest
        first, from one unbroken chain of iterations.
    mixing
        beta, the weight of the plain step (the update factor).
    weights
        Weights of the least-squares norm on the grid (default 1); e.g. the target RDF,
        so that the reliable, populated region counts.
    regularisation
        lambda, relative to the largest squared column norm of dF (Tikhonov; keeps the
        noisy least-squares problem well posed).
    max_coefficient
        Safeguard: when any |gamma_j| exceeds this, the history is not trusted and the
        plain step is returned.

    Returns
    -------
    u_next, gamma : numpy.ndarray
        The next potential and the mixing coefficients (empty for a plain step).

    Raises
    ------
    InvalidInputError
        On histories of different lengths or shapes, or none at all.
    """
    if not u_history or len(u_history) != len(f_history):
        raise InvalidInputError(f"Anderson step: {len(u_history)} potentials and "
                                f"{len(f_history)} steps (need equal, >= 1)")
    us = [np.asarray(u, float) for u in u_history]
    fs = [np.asarray(f, float) for f in f_history]
    if any(a.shape != us[0].shape for a in us + fs):
        raise InvalidInputError("Anderson step: potentials and steps must share one grid")
    plain = us[-1] + mixing * fs[-1]
    if len(us) == 1:
        return plain, np.zeros(0)
    w = np.ones_like(us[0]) if weights is None else np.sqrt(np.maximum(weights, 0.0))
    d_f = np.stack([fs[j + 1] - fs[j] for j in range(len(fs) - 1)], axis=1)
    d_u = np.stack([us[j + 1] - us[j] for j in range(len(us) - 1)], axis=1)
    a = w[:, None] * d_f
    b = w * fs[-1]
    lam = regularisation * float(np.max(np.sum(a**2, axis=0)) or 1.0)
    gamma = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ b)
    if not np.all(np.isfinite(gamma)) or np.max(np.abs(gamma)) > max_coefficient:
        return plain, np.zeros(0)
    return plain - (d_u + mixing * d_f) @ gamma, gamma
