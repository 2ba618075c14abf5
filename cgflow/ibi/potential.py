"""Tabulated pair potentials: grids, smooth forces, the repulsive core, the tail, the PMF.

Units: r in nm, U in kJ/mol, F = -dU/dr in kJ/(mol nm).

A potential lives on a uniform grid ``r_k = r_min + k dr`` from the inner table limit
``r_min`` to the cutoff ``r_cut`` (:func:`potential_grid`). Forces are the negative
derivative of the cubic spline through the energies (:func:`spline_forces`), so energies
and forces written to a table are consistent to the accuracy of the spline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.signal import savgol_filter

from cgflow import units
from cgflow.errors import InvalidInputError
from cgflow.ibi.integral_equation import S_MIN, hnc_potential_correction

#: Exponent of the repulsive core continuation U ~ r^-n.
CORE_EXPONENT = 12


@dataclass(frozen=True)
class TabulatedPotential:
    """A pair potential on a uniform grid.

    Attributes
    ----------
    r_nm
        Grid, nm, uniform and increasing.
    u_kj_mol
        Energy, kJ/mol.
    f_kj_mol_nm
        Force -dU/dr, kJ/(mol nm).
    """

    r_nm: np.ndarray
    u_kj_mol: np.ndarray
    f_kj_mol_nm: np.ndarray

    @classmethod
    def from_energy(cls, r_nm: np.ndarray, u_kj_mol: np.ndarray) -> TabulatedPotential:
        """Build from energies; forces from the spline derivative (:func:`spline_forces`)."""
        r = np.asarray(r_nm, dtype=float)
        u = np.asarray(u_kj_mol, dtype=float)
        return cls(r, u, spline_forces(r, u))

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready dict of lists (nm, kJ/mol, kJ/(mol nm))."""
        return {"r_nm": self.r_nm.tolist(), "u_kj_mol": self.u_kj_mol.tolist(),
                "f_kj_mol_nm": self.f_kj_mol_nm.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> TabulatedPotential:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["r_nm"], float), np.asarray(d["u_kj_mol"], float),
                   np.asarray(d["f_kj_mol_nm"], float))

    def tabulate(self, spacing_nm: float = 0.001) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Resample onto a finer uniform grid for an engine table.

        The energy is the cubic spline through the grid values and the force its negative
        derivative, on ``r_min .. r_cut`` with about ``spacing_nm`` between points.

        Returns
        -------
        r_nm, u_kj_mol, f_kj_mol_nm : numpy.ndarray
        """
        return tabulate(self.r_nm, self.u_kj_mol, spacing_nm=spacing_nm)


def potential_grid(r_min_nm: float, r_cut_nm: float, dr_nm: float) -> np.ndarray:
    """Uniform grid from ``r_min_nm`` to ``r_cut_nm`` (both included) with step ``dr_nm``.

    ``r_cut - r_min`` must be a whole number of steps (to 1e-6 relative).
    """
    if not (0 < r_min_nm < r_cut_nm) or not dr_nm > 0:
        raise InvalidInputError(f"potential grid: need 0 < r_min ({r_min_nm!r}) < r_cut "
                                f"({r_cut_nm!r}) and dr > 0 ({dr_nm!r}), all nm")
    n = (r_cut_nm - r_min_nm) / dr_nm
    if abs(n - round(n)) > 1e-6 * max(1.0, n):
        raise InvalidInputError(f"potential grid: r_cut - r_min = {r_cut_nm - r_min_nm!r} nm "
                                f"is not a multiple of dr = {dr_nm!r} nm")
    return r_min_nm + dr_nm * np.arange(round(n) + 1)


def spline_forces(r_nm: np.ndarray, u_kj_mol: np.ndarray) -> np.ndarray:
    """F = -dU/dr from the not-a-knot cubic spline through (r, U), kJ/(mol nm)."""
    return -CubicSpline(r_nm, u_kj_mol)(r_nm, 1)


def tabulate(
    r_nm: np.ndarray, u_kj_mol: np.ndarray, *, spacing_nm: float = 0.001,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energies and forces on a fine uniform grid from the cubic spline through (r, U).

    The fine grid spans ``r[0] .. r[-1]`` with ``ceil((r[-1]-r[0])/spacing_nm)`` intervals.
    F = -dU/dr is the analytic derivative of the same spline, so the table's energies
    and forces are consistent (a central finite difference of U matches F to O(h^2)).
    """
    r = np.asarray(r_nm, float)
    spline = CubicSpline(r, np.asarray(u_kj_mol, float))
    n = int(np.ceil((r[-1] - r[0]) / spacing_nm - 1e-9))
    fine = np.linspace(r[0], r[-1], n + 1)
    return fine, spline(fine), -spline(fine, 1)


def switching_function(r_nm: np.ndarray, r_cut_nm: float, width_nm: float) -> np.ndarray:
    """Smooth step from 1 to 0 over ``[r_cut - width, r_cut]``.

    S(x) = 1 - 10 x^3 + 15 x^4 - 6 x^5 with x = (r - r_cut + width)/width clipped to
    [0, 1]: S and its first two derivatives are continuous, S(r_cut) = 0 and
    S'(r_cut) = 0, so a potential multiplied by S has zero energy and force at the cutoff.
    """
    if width_nm <= 0:
        return np.where(np.asarray(r_nm) < r_cut_nm, 1.0, 0.0)
    x = np.clip((np.asarray(r_nm, float) - (r_cut_nm - width_nm)) / width_nm, 0.0, 1.0)
    return 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x**2)


def first_reliable_index(g: np.ndarray, g_min: float) -> int:
    """Index of the first grid point of the reliable region of an RDF.

    The reliable region starts after the last point, before the first maximum of ``g``,
    where ``g <= g_min``; it extends to the end of the grid.

    Raises
    ------
    InvalidInputError
        If ``g`` never exceeds ``g_min``.
    """
    g = np.asarray(g, float)
    if not np.any(g > g_min):
        raise InvalidInputError(f"RDF: no value above the reliability threshold g_min = "
                                f"{g_min!r} (max g = {np.max(g)!r})")
    peak = int(np.argmax(g))
    low = np.flatnonzero(g[:peak] <= g_min)
    return int(low[-1] + 1) if low.size else 0


def extrapolate_core(
    r_nm: np.ndarray, u_kj_mol: np.ndarray, i0: int, temperature_k: float, *, n_fit: int = 3,
) -> np.ndarray:
    """Replace U below ``r[i0]`` by a steep, monotonic repulsive core.

    The slope at ``r0 = r[i0]`` is the least-squares slope of U over the ``n_fit`` points
    from ``i0``; with the force ``F0 = -slope`` raised to at least ``n kT / r0``
    (n = :data:`CORE_EXPONENT`) the core is

        U(r) = U(r0) + (F0 r0 / n) ((r0 / r)^n - 1),    r < r0,

    which matches U and F at r0 (F only when no raise was needed), is monotonic and
    rises at least by kT ((r0/r)^n - 1).

    Returns
    -------
    numpy.ndarray
        A copy of ``u_kj_mol`` with the core replaced.
    """
    r = np.asarray(r_nm, float)
    u = np.array(u_kj_mol, dtype=float)
    if i0 <= 0:
        return u
    j = min(i0 + n_fit, r.size)
    slope = np.polyfit(r[i0:j], u[i0:j], 1)[0] if j - i0 >= 2 else 0.0
    r0, u0 = r[i0], u[i0]
    n = CORE_EXPONENT
    f0 = max(-slope, n * units.kt_kj_mol(temperature_k) / r0)
    u[:i0] = u0 + f0 * r0 / n * ((r0 / r[:i0]) ** n - 1.0)
    return u


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Savitzky-Golay smoothing (cubic, ``window`` points, odd); ``window < 5``: a copy."""
    v = np.asarray(values, float)
    if window < 5 or v.size < window:
        return v.copy()
    if window % 2 == 0:
        window += 1
    return savgol_filter(v, window, 3, mode="interp")


def resample_rdf(r_from_nm: np.ndarray, g_from: np.ndarray, r_to_nm: np.ndarray) -> np.ndarray:
    """Linear interpolation of an RDF onto another grid.

    Below the first point g is taken as 0 if the first value is (near) zero, else held;
    beyond the last point it is held at the last value.
    """
    r_from = np.asarray(r_from_nm, float)
    g_from = np.asarray(g_from, float)
    left = 0.0 if g_from[0] < 1e-3 else g_from[0]
    return np.interp(r_to_nm, r_from, g_from, left=left, right=g_from[-1])


def initial_potential(
    r_nm: np.ndarray, g_target: np.ndarray, temperature_k: float, *, g_min: float = 0.02,
    switch_width_nm: float = 0.1, smoothing_window: int = 5, method: str = "pmf",
    density_nm3: float | None = None, s_min: float = S_MIN,
) -> TabulatedPotential:
    """Potential of mean force (or HNC potential) of a target RDF, as the first IBI potential.

    Steps, on the grid ``r_nm`` (see :func:`potential_grid`; ``g_target`` already on it):

    1. U = -kT ln g_t where g_t is reliable (from :func:`first_reliable_index` with
       ``g_min``), smoothed with :func:`smooth` (Savitzky-Golay, ``smoothing_window``
       points) to damp the noise of the target. With ``method="hnc"``, plus the HNC
       term kT gamma[g_t] at ``density_nm3``
       (:func:`cgflow.ibi.integral_equation.hnc_potential_correction`).
    2. Below the reliable region, a repulsive r^-12 core (:func:`extrapolate_core`).
    3. Tail: U is shifted so that U(r_cut) = 0 and multiplied by
       :func:`switching_function` over the last ``switch_width_nm``, so energy and force
       vanish smoothly at the cutoff.
    4. Forces from the cubic spline derivative (:func:`spline_forces`).

    Parameters
    ----------
    r_nm
        Uniform grid, nm; its last point is the cutoff.
    g_target
        Target RDF on ``r_nm``.
    temperature_k
        Temperature, K.

    Returns
    -------
    TabulatedPotential
    """
    r = np.asarray(r_nm, float)
    g = np.asarray(g_target, float)
    if g.shape != r.shape:
        raise InvalidInputError(f"initial potential: g_target has shape {g.shape}, the grid "
                                f"{r.shape}")
    kt = units.kt_kj_mol(temperature_k)
    i0 = first_reliable_index(g, g_min)
    u = np.zeros_like(r)
    u[i0:] = -kt * np.log(np.maximum(g[i0:], g_min))
    if method == "hnc":
        if density_nm3 is None:
            raise InvalidInputError("initial potential: method 'hnc' needs the number density "
                                    "(field 'density_nm3')")
        u[i0:] += hnc_potential_correction(r, g, density_nm3, temperature_k, s_min=s_min)[i0:]
    elif method != "pmf":
        raise InvalidInputError(f"initial potential: field 'method': unknown value {method!r} "
                                "(expected 'pmf' or 'hnc')")
    u[i0:] = smooth(u[i0:], smoothing_window)
    u = extrapolate_core(r, u, i0, temperature_k)
    u = (u - u[-1]) * switching_function(r, r[-1], switch_width_nm)
    return TabulatedPotential.from_energy(r, u)
