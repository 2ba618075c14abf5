"""A smooth, physical, low-dimensional representation of CG pair potentials.

A potential ``U(r)`` (kJ/mol on the grid ``r`` in nm) is represented by a few
coefficients ``z``. The chain, fitted on the training potentials, is:

1. **Compression** ``y = u0 * asinh(U / u0)`` (``u0`` = 10 kJ/mol by default). It is the
   identity to within 1 % for ``|U| < 2.5 kJ/mol`` (the well and the tail) and
   logarithmic in the repulsive wall, where IBI potentials reach tens to hundreds of
   kJ/mol. Errors in the wall are therefore relative, errors in the well absolute.
2. **Smoothing** onto cubic B-splines in ``r`` (uniform knots every ``knot_spacing_nm``):
   every represented curve is C2, and IBI sampling noise is filtered out.
3. **Difference from the reference** ``y_ref``, the mean of the smoothed training curves,
   and **weighted PCA** of that difference: ``y = y_ref + V z``. The grid weights
   ``w = 1 / (1 + (max(U_ref, 0) / wall_weight_scale_kj_mol)^2)`` (``U_ref`` the expanded
   reference) are 1 in the well and the tail and fall off in the unsampled wall, so the
   wall, whose values vary by orders of magnitude between sets, does not dominate. The
   columns of ``V`` are orthonormal in the weighted inner product, so squared errors in
   ``z`` are weighted squared errors on the grid (a model trained on ``z`` minimises them).
   The number of components is the smallest whose weighted RMS truncation error is below
   ``tolerance_kj_mol``, capped by ``max_components`` and ``n - 1``.

Decoding adds the physical guarantees:

* **Cut-off**: ``U = S(r) * u0 * sinh(y / u0)`` with the C2 switch ``S`` equal to 1 below
  ``r_c - switch_width_nm`` and falling to 0 at the cut-off ``r_c`` (the last grid point)
  with zero first and second derivative, so U and F are exactly 0 at ``r_c``.
* **Repulsive core**: on the grid points left of ``r_core`` (the first point where any
  training potential is <= 0) each step ``U[k] - U[k+1]`` is at least
  ``floor[k] = max(core_floor_fraction * median over training sets of that step,
  min_core_force * dr)``. The wall is thus strictly monotonic and at least a fixed fraction
  as steep as the typical training wall; the correction accumulates inward (a discrete
  force floor integrated from ``r_core``).
* **Forces** are ``F = -dU/dr`` of the C2 cubic spline through U on the grid, with
  ``dU/dr = 0`` imposed at ``r_c``; integrating F reproduces U exactly under that spline.

Approximations: the switch is applied at decoding only, so a training potential that is
not already ~0 over the last ``switch_width_nm`` is reproduced as ``S * U`` there; and the
representation can only express potentials in the span of the training curves' principal
components. A parametric physics form (Lennard-Jones, Mie) is not used as the reference:
with a centred PCA it would not change what can be represented, and a single such form
fits IBI walls poorly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.interpolate import BSpline, CubicSpline

from cgflow.errors import InvalidInputError


def smooth_switch(r_nm: np.ndarray, r_on_nm: float, r_cut_nm: float) -> np.ndarray:
    """C2 switching function: 1 for r <= r_on, 0 for r >= r_cut, quintic in between.

    ``S(x) = 1 - 10 x^3 + 15 x^4 - 6 x^5`` with ``x = (r - r_on) / (r_cut - r_on)``; its
    first and second derivatives vanish at both ends.
    """
    r = np.asarray(r_nm, dtype=float)
    if r_cut_nm <= r_on_nm:
        return np.where(r < r_cut_nm, 1.0, 0.0)
    x = np.clip((r - r_on_nm) / (r_cut_nm - r_on_nm), 0.0, 1.0)
    return 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x**2)


def forces_from_potential(r_nm: np.ndarray, U: np.ndarray, *, zero_slope_at_cutoff: bool = True
                          ) -> np.ndarray:
    """Pair force ``F = -dU/dr`` in kJ/(mol nm) on the grid, from a C2 cubic spline of U.

    Parameters
    ----------
    r_nm
        (G,) grid in nm.
    U
        (G,) or (n, G) potentials in kJ/mol.
    zero_slope_at_cutoff
        Impose ``dU/dr = 0`` at the last grid point (true for decoded potentials, whose
        switch has zero slope there); otherwise a not-a-knot end condition.
    """
    r = np.asarray(r_nm, dtype=float)
    u = np.asarray(U, dtype=float)
    bc = ("not-a-knot", (1, np.zeros(u.shape[:-1]))) if zero_slope_at_cutoff else "not-a-knot"
    spline = CubicSpline(r, u, axis=-1, bc_type=bc)
    return -spline(r, 1)


def _bspline_design(r: np.ndarray, knot_spacing: float) -> np.ndarray:
    """(G, M) cubic B-spline design matrix on uniform knots spanning [r0, rc]."""
    k = 3
    n_int = max(int(np.ceil((r[-1] - r[0]) / knot_spacing)), 1)
    inner = np.linspace(r[0], r[-1], n_int + 1)
    t = np.concatenate([[r[0]] * k, inner, [r[-1]] * k])
    return BSpline.design_matrix(r, t, k).toarray()


def _smoothing_basis(r: np.ndarray, knot_spacing: float) -> np.ndarray:
    """(G, M) orthonormal basis of the cubic spline space on the grid (projector Q Q^T)."""
    Q, s, _ = np.linalg.svd(_bspline_design(r, knot_spacing), full_matrices=False)
    return Q[:, s > 1e-10 * s[0]]


class PotentialRepresentation:
    """Encode potentials as PCA coefficients of smoothed, compressed differences from the
    training reference, and decode coefficients into smooth physical potentials.

    See the module docstring for the chain and the guarantees.

    Parameters
    ----------
    u0_kj_mol
        Scale of the asinh compression, kJ/mol.
    knot_spacing_nm
        Spacing of the cubic B-spline knots used for smoothing, nm.
    tolerance_kj_mol
        Target RMS truncation error of the PCA (compressed units, = kJ/mol outside the
        wall).
    max_components
        Upper bound on the number of PCA components.
    switch_width_nm
        Width of the cut-off switch, nm.
    wall_weight_scale_kj_mol
        Height of the reference wall (kJ/mol) at which the PCA weight is 1/2.
    core_floor_fraction
        Minimum steepness of the decoded wall as a fraction of the median training wall.
    min_core_force_kj_mol_nm
        Absolute lower bound of the wall force, kJ/(mol nm), so that the wall is strictly
        monotonic even where the training walls are flat.
    """

    def __init__(
        self, *, u0_kj_mol: float = 10.0, knot_spacing_nm: float = 0.02,
        tolerance_kj_mol: float = 0.002, max_components: int = 16,
        switch_width_nm: float = 0.1, wall_weight_scale_kj_mol: float = 10.0,
        core_floor_fraction: float = 0.1,
        min_core_force_kj_mol_nm: float = 1.0,
    ) -> None:
        for name, value in (("u0_kj_mol", u0_kj_mol), ("knot_spacing_nm", knot_spacing_nm),
                            ("tolerance_kj_mol", tolerance_kj_mol),
                            ("wall_weight_scale_kj_mol", wall_weight_scale_kj_mol)):
            if not (np.isfinite(value) and value > 0):
                raise InvalidInputError(f"field '{name}': must be > 0, got {value!r}")
        if int(max_components) < 1:
            raise InvalidInputError(f"field 'max_components': must be >= 1, got {max_components!r}")
        if not (np.isfinite(switch_width_nm) and switch_width_nm >= 0):
            raise InvalidInputError(
                f"field 'switch_width_nm': must be >= 0, got {switch_width_nm!r}"
            )
        if not 0.0 <= core_floor_fraction <= 1.0:
            raise InvalidInputError(
                f"field 'core_floor_fraction': must be in [0, 1], got {core_floor_fraction!r}"
            )
        self.u0_kj_mol = float(u0_kj_mol)
        self.knot_spacing_nm = float(knot_spacing_nm)
        self.tolerance_kj_mol = float(tolerance_kj_mol)
        self.max_components = int(max_components)
        self.switch_width_nm = float(switch_width_nm)
        self.wall_weight_scale_kj_mol = float(wall_weight_scale_kj_mol)
        self.core_floor_fraction = float(core_floor_fraction)
        self.min_core_force_kj_mol_nm = float(min_core_force_kj_mol_nm)
        self.r_nm: np.ndarray | None = None

    # --- the compression -----------------------------------------------------------------

    def compress(self, U: np.ndarray) -> np.ndarray:
        """``u0 * asinh(U / u0)``."""
        return self.u0_kj_mol * np.arcsinh(np.asarray(U, dtype=float) / self.u0_kj_mol)

    def expand(self, y: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`compress`."""
        return self.u0_kj_mol * np.sinh(np.asarray(y, dtype=float) / self.u0_kj_mol)

    # --- fitting ------------------------------------------------------------------------------

    def fit(self, r_nm: np.ndarray, U: np.ndarray) -> PotentialRepresentation:
        """Fit smoothing basis, reference, PCA and core floor on training potentials.

        Parameters
        ----------
        r_nm
            (G,) grid in nm; its last point is the cut-off.
        U
            (n, G) training potentials in kJ/mol, n >= 2.
        """
        r = np.asarray(r_nm, dtype=float).reshape(-1)
        U = np.asarray(U, dtype=float)
        if U.ndim != 2 or U.shape[1] != r.size:
            raise InvalidInputError(
                f"potentials: expected shape (n, {r.size}) on the grid, got {U.shape}"
            )
        if U.shape[0] < 2:
            raise InvalidInputError(f"potentials: need at least 2 to fit a basis, got {U.shape[0]}")
        if not np.all(np.isfinite(U)):
            raise InvalidInputError("potentials: non-finite values")
        self.r_nm = r
        Q = _smoothing_basis(r, self.knot_spacing_nm)
        self.smoother_ = Q
        Ys = (self.compress(U) @ Q) @ Q.T
        self.reference_ = Ys.mean(axis=0)
        ref_u = self.expand(self.reference_)
        self.weights_ = 1.0 / (1.0 + (np.maximum(ref_u, 0.0) / self.wall_weight_scale_kj_mol) ** 2)
        sqw = np.sqrt(self.weights_)
        _, sv, vt = np.linalg.svd((Ys - self.reference_) * sqw, full_matrices=False)
        n, g = U.shape
        var = sv**2 / n  # weighted variance along each component, summed over the grid
        # weighted RMS truncation error over the grid after keeping k components
        tail = np.sqrt(np.maximum(np.cumsum(var[::-1])[::-1], 0.0) / g)
        tail = np.append(tail, 0.0)[1:]  # tail[k-1] = error when keeping k components
        rank = int(np.sum(sv > 1e-12 * max(sv[0], 1e-300)))
        k_max = max(1, min(self.max_components, n - 1, rank))
        k = next((i + 1 for i in range(k_max) if tail[i] <= self.tolerance_kj_mol), k_max)
        # components: orthonormal in the weighted inner product <a, b> = sum_k w_k a_k b_k
        self.components_ = (vt[:k] / sqw).T.copy()  # (G, K)
        self.component_variance_ = var[:k].copy()
        self.truncation_rms_ = float(tail[k - 1])
        self.switch_ = smooth_switch(r, r[-1] - self.switch_width_nm, r[-1])
        self._fit_core(r, U)
        return self

    def _fit_core(self, r: np.ndarray, U: np.ndarray) -> None:
        attractive = U <= 0.0
        first = np.where(attractive.any(axis=1), attractive.argmax(axis=1), U.argmin(axis=1))
        self.core_end_index_ = int(first.min())
        c = self.core_end_index_
        if c == 0:
            self.core_floor_ = np.zeros(0)
            return
        steps = U[:, :c] - U[:, 1 : c + 1]  # (n, c): U[k] - U[k+1], > 0 on a repulsive wall
        dr = np.diff(r)[:c]
        floor = self.core_floor_fraction * np.median(steps, axis=0)
        self.core_floor_ = np.maximum(floor, self.min_core_force_kj_mol_nm * dr)

    # --- encode / decode -----------------------------------------------------------------------

    @property
    def n_components(self) -> int:
        """Number of coefficients K."""
        self._check_fitted()
        return int(self.components_.shape[1])

    @property
    def r_core_nm(self) -> float:
        """Outer end of the region where the wall guarantee applies, nm."""
        self._check_fitted()
        return float(self.r_nm[self.core_end_index_])

    def _check_fitted(self) -> None:
        if self.r_nm is None:
            raise InvalidInputError("potential representation: not fitted (call fit first)")

    def _as_2d(self, U: np.ndarray) -> tuple[np.ndarray, bool]:
        U = np.asarray(U, dtype=float)
        single = U.ndim == 1
        U2 = U[None, :] if single else U
        if U2.ndim != 2 or U2.shape[1] != self.r_nm.size:
            raise InvalidInputError(
                f"potentials: expected shape (n, {self.r_nm.size}) on the grid, got {U.shape}"
            )
        return U2, single

    def encode(self, U: np.ndarray) -> np.ndarray:
        """Coefficients (n, K) (or (K,) for one potential) of potentials (n, G) in kJ/mol."""
        self._check_fitted()
        U2, single = self._as_2d(U)
        smoothed = (self.compress(U2) @ self.smoother_) @ self.smoother_.T
        z = ((smoothed - self.reference_) * self.weights_) @ self.components_
        return z[0] if single else z

    def decode(self, coeffs: np.ndarray, *, guarantees: bool = True) -> np.ndarray:
        """Potentials (n, G) in kJ/mol from coefficients (n, K) (or (G,) from (K,)).

        With ``guarantees`` (default) the cut-off switch and the wall floor are applied;
        without, the plain expansion ``u0 * sinh((y_ref + V z) / u0)`` is returned.
        """
        self._check_fitted()
        z = np.asarray(coeffs, dtype=float)
        single = z.ndim == 1
        z2 = z[None, :] if single else z
        if z2.ndim != 2 or z2.shape[1] != self.n_components:
            raise InvalidInputError(
                f"coefficients: expected shape (n, {self.n_components}), got {z.shape}"
            )
        y = self.reference_ + z2 @ self.components_.T
        # keep |U| <= 1e7 kJ/mol so that absurd coefficients cannot overflow to inf
        y_max = float(self.compress(1.0e7))
        U = self.expand(np.clip(y, -y_max, y_max))
        if guarantees:
            U = self.apply_guarantees(U)
        return U[0] if single else U

    def apply_guarantees(self, U: np.ndarray) -> np.ndarray:
        """Apply the cut-off switch and the monotonic-wall floor to potentials (n, G)."""
        self._check_fitted()
        U = np.asarray(U, dtype=float) * self.switch_
        c = self.core_end_index_
        if c > 0:
            steps = np.maximum(U[:, :c] - U[:, 1 : c + 1], self.core_floor_)
            # U[k] = U[c] + sum_{m=k}^{c-1} steps[m]
            U = U.copy()
            U[:, :c] = U[:, [c]] + np.cumsum(steps[:, ::-1], axis=1)[:, ::-1]
        return U

    def reconstruct(self, U: np.ndarray) -> np.ndarray:
        """``decode(encode(U))``: the potentials as this representation sees them."""
        return self.decode(self.encode(U))

    def forces(self, U: np.ndarray) -> np.ndarray:
        """``F = -dU/dr`` in kJ/(mol nm) of decoded potentials (see
        :func:`forces_from_potential`)."""
        self._check_fitted()
        return forces_from_potential(self.r_nm, U, zero_slope_at_cutoff=True)

    # --- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly state (floats as Python floats, arrays as lists)."""
        self._check_fitted()
        return {
            "kind": "asinh-bspline-pca",
            "settings": {
                "u0_kj_mol": self.u0_kj_mol, "knot_spacing_nm": self.knot_spacing_nm,
                "tolerance_kj_mol": self.tolerance_kj_mol, "max_components": self.max_components,
                "switch_width_nm": self.switch_width_nm,
                "wall_weight_scale_kj_mol": self.wall_weight_scale_kj_mol,
                "core_floor_fraction": self.core_floor_fraction,
                "min_core_force_kj_mol_nm": self.min_core_force_kj_mol_nm,
            },
            "r_nm": self.r_nm.tolist(),
            "reference": self.reference_.tolist(),
            "weights": self.weights_.tolist(),
            "components": self.components_.tolist(),
            "component_variance": self.component_variance_.tolist(),
            "truncation_rms": self.truncation_rms_,
            "core_end_index": self.core_end_index_,
            "core_floor": self.core_floor_.tolist(),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PotentialRepresentation:
        """Inverse of :meth:`to_dict`."""
        if state.get("kind") != "asinh-bspline-pca":
            raise InvalidInputError(
                f"potential representation: unknown kind {state.get('kind')!r}"
            )
        rep = cls(**state["settings"])
        rep.r_nm = np.asarray(state["r_nm"], dtype=float)
        rep.reference_ = np.asarray(state["reference"], dtype=float)
        rep.weights_ = np.asarray(state["weights"], dtype=float)
        rep.smoother_ = _smoothing_basis(rep.r_nm, rep.knot_spacing_nm)
        rep.components_ = np.asarray(state["components"], dtype=float).reshape(rep.r_nm.size, -1)
        rep.component_variance_ = np.asarray(state["component_variance"], dtype=float)
        rep.truncation_rms_ = float(state["truncation_rms"])
        rep.core_end_index_ = int(state["core_end_index"])
        rep.core_floor_ = np.asarray(state["core_floor"], dtype=float)
        rep.switch_ = smooth_switch(rep.r_nm, rep.r_nm[-1] - rep.switch_width_nm, rep.r_nm[-1])
        return rep
