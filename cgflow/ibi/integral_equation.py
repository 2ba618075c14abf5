"""Ornstein-Zernike relation and the hypernetted-chain (HNC) closure for IBI.

Units: r in nm, k in 1/nm, number density in 1/nm^3, U in kJ/mol.

For a one-component liquid of number density rho with total correlation h = g - 1, the
Ornstein-Zernike relation defines the direct correlation function c,

    h(r) = c(r) + rho int c(|r - r'|) h(r') dr'    <=>    c^(k) = h^(k) / (1 + rho h^(k)),

and the indirect correlation gamma = h - c, in Fourier space

    gamma^(k) = rho h^(k)^2 / (1 + rho h^(k)).

The HNC closure g = exp(-U/kT + gamma) inverts to the HNC potential

    U_HNC[g](r) = -kT ln g(r) + kT gamma[g](r),

the potential of mean force plus a smooth many-body correction (gamma is continuous
even where g jumps to zero at the core). It is a much closer estimate of the pair
potential of a dense liquid than the potential of mean force alone.

**IHNC update.** IBI is the fixed-point iteration U_{n+1} = U_n + PMF[g_t] - PMF[g_n].
Replacing the PMF by U_HNC gives the iterative HNC method of Delbary, Hanke and Ivanizki
(Inverse Problems 36, 2020, "a generalized Newton iteration for the inverse Henderson
problem"; also in VOTCA as an integral-equation update),

    U_{n+1} = U_n + a (U_HNC[g_t] - U_HNC[g_n])
            = U_n + a kT [ln(g_n/g_t) + gamma[g_t] - gamma[g_n]],

a quasi-Newton step whose approximate Jacobian (that of the HNC closure) carries the
collective response of the liquid that IBI's local update ignores. It has the same fixed
point as IBI (g_n = g_t gives a zero update, whatever the noise of g_t) and converges in
fewer iterations for dense liquids.

*Approximations:* both RDFs are known only up to the cutoff, so h is taken as zero beyond
it (the same truncation for g_t and g_n, whose difference is what the update uses); the
Fourier transforms are discrete sine transforms on a grid padded with zeros; where the
structure factor S(k) = 1 + rho h^(k) of a noisy or truncated h falls below
``s_min`` (:data:`S_MIN`) it is held there, which bounds the amplification of noise and
truncation errors at small k. With truncated RDFs the HNC inversion alone is a poor
first potential (D = 0.18-0.35 against 0.10 for the PMF on the LJ benchmark), so
``initial_guess="hnc"`` is offered but not the default.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dst

from cgflow import units
from cgflow.errors import InvalidInputError

#: Smallest structure factor used in the Ornstein-Zernike division. A regularisation, not
#: physics: a dense liquid's S(k -> 0) is smaller, but with RDFs truncated at the cutoff
#: the small-k values are unreliable, and on the LJ benchmark (benchmarks/votca_ibi.py)
#: floors of 0.02-0.15 made the first IHNC steps overshoot far more than 0.3.
S_MIN = 0.3
#: The transforms run on a grid padded to at least this multiple of the RDF range.
PAD_FACTOR = 8


def _uniform_from_zero(r_nm: np.ndarray) -> tuple[float, int]:
    """Spacing of ``r_nm`` and the index of its first point on a grid that starts at 0."""
    r = np.asarray(r_nm, float)
    if r.ndim != 1 or r.size < 3:
        raise InvalidInputError(f"OZ transform: field 'r_nm': need a 1-D grid of >= 3 points, "
                                f"got shape {r.shape}")
    dr = float(r[1] - r[0])
    if not dr > 0 or not np.allclose(np.diff(r), dr, rtol=1e-6, atol=1e-9):
        raise InvalidInputError("OZ transform: field 'r_nm': the grid must be uniform and "
                                "increasing")
    i0 = r[0] / dr
    if r[0] < 0 or abs(i0 - round(i0)) > 1e-6:
        raise InvalidInputError(f"OZ transform: field 'r_nm': the first point {r[0]!r} nm is "
                                f"not a non-negative multiple of the spacing {dr!r} nm")
    return dr, round(i0)


def indirect_correlation(
    r_nm: np.ndarray, g: np.ndarray, density_nm3: float, *, s_min: float = S_MIN,
) -> np.ndarray:
    """gamma = h - c of an RDF through the Ornstein-Zernike relation.

    Parameters
    ----------
    r_nm
        Uniform grid whose first point is a multiple of its spacing (e.g. the IBI grid
        from 0.1 nm in steps of 0.01 nm), nm.
    g
        RDF on ``r_nm``; g is taken as 0 below the first point and as 1 beyond the last.
    density_nm3
        Number density, 1/nm^3.
    s_min
        Floor of the structure factor 1 + rho h^(k) in the division.

    Returns
    -------
    numpy.ndarray
        gamma on ``r_nm`` (dimensionless).
    """
    g = np.asarray(g, float)
    r = np.asarray(r_nm, float)
    if g.shape != r.shape:
        raise InvalidInputError(f"OZ transform: field 'g': shape {g.shape} differs from the "
                                f"grid {r.shape}")
    if not (np.isfinite(density_nm3) and density_nm3 > 0):
        raise InvalidInputError(f"OZ transform: field 'density_nm3': must be > 0, got "
                                f"{density_nm3!r}")
    if not s_min > 0:
        raise InvalidInputError(f"OZ transform: field 's_min': must be > 0, got {s_min!r}")
    dr, i0 = _uniform_from_zero(r)
    n_data = i0 + r.size
    n = 1 << int(np.ceil(np.log2(PAD_FACTOR * n_data)))
    # h on r_i = i dr, i = 1 .. n-1 (DST-I grid): -1 in the core, 0 beyond the RDF range.
    h = np.zeros(n - 1)
    h[: i0 - 1 if i0 > 0 else 0] = -1.0
    h[max(i0 - 1, 0): n_data - 1] = g[1 if i0 == 0 else 0:] - 1.0
    ri = dr * np.arange(1, n)
    kj = np.pi / (n * dr) * np.arange(1, n)
    # f^(k_j) = (4 pi dr / k_j) sum_i r_i f(r_i) sin(pi i j / n); dst type 1 gives 2 sum.
    h_k = 4.0 * np.pi * dr / kj * 0.5 * dst(ri * h, type=1)
    s = np.maximum(1.0 + density_nm3 * h_k, s_min)
    gamma_k = density_nm3 * h_k**2 / s
    dk = np.pi / (n * dr)
    gamma = dk / (2.0 * np.pi**2 * ri) * 0.5 * dst(kj * gamma_k, type=1)
    start = max(i0 - 1, 0)
    out = gamma[start: start + r.size]
    if i0 == 0:  # r = 0 is not on the DST grid: hold the first value
        out = np.concatenate([out[:1], out[: r.size - 1]])
    return out


def hnc_potential_correction(
    r_nm: np.ndarray, g: np.ndarray, density_nm3: float, temperature_k: float, *,
    s_min: float = S_MIN,
) -> np.ndarray:
    """kT gamma[g], the term the HNC closure adds to the potential of mean force, kJ/mol."""
    return units.kt_kj_mol(temperature_k) * indirect_correlation(r_nm, g, density_nm3,
                                                                  s_min=s_min)
