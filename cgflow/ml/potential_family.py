"""A seeded family of smooth, simulation-ready CG pair potentials around known IBI results.

The synthetic structure-potential data (:mod:`cgflow.stages.synthetic`) needs potentials
that span the ones IBI has produced, with state points (number density) that go with
them. The family is defined from a set of IBI potentials ``U_i`` and their mass
densities ``rho_i`` (the committed reference dataset: 53 sets of 2,3,4-trimethylpentane,
190-1310 kg/m^3):

1. The potentials are encoded with :class:`cgflow.ml.representation.PotentialRepresentation`
   (asinh compression, cubic B-spline smoothing, weighted PCA; ``K`` coefficients ``z``,
   variance ``var_k`` per component).
2. A sample picks one anchor set ``i`` at random and draws

       z = z_i + coefficient_scale * sqrt(var_k) * N(0, 1)           (per component k)
       rho = rho_i * exp(density_log_sigma * N(0, 1))

   so potentials and densities stay close to the pairs that occur in practice, while the
   PCA subspace around each of them is explored.
3. A smooth perturbation outside the PCA span is added to the compressed curve: ``n``
   Gaussian bumps (``n`` uniform in 0..``max_bumps``), amplitudes N(0,
   ``bump_amplitude_kj_mol``), widths uniform in ``bump_width_nm``, centres uniform
   between the end of the repulsive core and the start of the cutoff switch.
4. The result is decoded with the representation's guarantees (a C2 switch to zero energy
   and force at the cutoff, a monotonic repulsive wall at least as steep as a fraction of
   the training walls); forces are the spline derivative of the energies
   (:meth:`cgflow.ibi.potential.TabulatedPotential.from_energy`).

Units: r in nm, U in kJ/mol, densities in kg/m^3. Temperature and bead mass are those of
the anchors (all 298.15 K and 114.23 g/mol in the reference dataset); the family does not
vary them. *Approximation:* a potential of the family is "IBI-like" only as far as the
anchors' PCA span and the bumps reach; the Gaussian coefficient noise can leave the
convex hull of the anchors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgflow.errors import InvalidInputError
from cgflow.ml.representation import PotentialRepresentation


@dataclass(frozen=True)
class FamilySettings:
    """Ranges of the potential family (see the module docstring).

    Attributes
    ----------
    coefficient_scale
        Standard deviation of the PCA-coefficient noise in units of each component's
        standard deviation over the anchors.
    density_log_sigma
        Standard deviation of ln(rho / rho_anchor).
    max_bumps
        Largest number of Gaussian bumps added to a potential.
    bump_amplitude_kj_mol
        Standard deviation of a bump's amplitude, kJ/mol.
    bump_width_nm
        Range (low, high) of a bump's standard deviation in r, nm.
    """

    coefficient_scale: float = 0.5
    density_log_sigma: float = 0.1
    max_bumps: int = 2
    bump_amplitude_kj_mol: float = 0.2
    bump_width_nm: tuple[float, float] = (0.03, 0.1)

    def __post_init__(self) -> None:
        for name in ("coefficient_scale", "density_log_sigma", "bump_amplitude_kj_mol"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise InvalidInputError(f"potential family: field {name!r}: value {v!r}: "
                                        "must be a finite number >= 0")
        if self.max_bumps < 0:
            raise InvalidInputError(f"potential family: field 'max_bumps': value "
                                    f"{self.max_bumps!r}: must be >= 0")
        lo, hi = self.bump_width_nm
        if not 0 < lo <= hi:
            raise InvalidInputError(f"potential family: field 'bump_width_nm': value "
                                    f"{self.bump_width_nm!r}: need 0 < low <= high")


@dataclass(frozen=True)
class FamilySample:
    """One potential of the family and its state point.

    Attributes
    ----------
    r_nm, u_kj_mol
        The potential on the anchors' grid (nm, kJ/mol).
    density_kg_m3
        Mass density of the CG liquid, kg/m^3.
    anchor
        Index of the anchor set it was drawn around.
    """

    r_nm: np.ndarray
    u_kj_mol: np.ndarray
    density_kg_m3: float
    anchor: int


class PotentialFamily:
    """The family of potentials around anchor IBI potentials (module docstring).

    Parameters
    ----------
    r_nm
        (G,) grid of the anchors, nm; its last point is the cutoff.
    U
        (n, G) anchor potentials, kJ/mol.
    density_kg_m3
        (n,) anchor mass densities, kg/m^3.
    settings
        Ranges of the family.
    representation
        An unfitted :class:`PotentialRepresentation` to fit on the anchors (default
        settings if None).
    """

    def __init__(self, r_nm: np.ndarray, U: np.ndarray, density_kg_m3: np.ndarray, *,
                 settings: FamilySettings | None = None,
                 representation: PotentialRepresentation | None = None) -> None:
        U = np.asarray(U, float)
        rho = np.asarray(density_kg_m3, float)
        if U.ndim != 2 or rho.shape != (U.shape[0],):
            raise InvalidInputError(f"potential family: field 'density_kg_m3': shape "
                                    f"{rho.shape} does not match {U.shape[0]} potentials")
        if not np.all(np.isfinite(rho) & (rho > 0)):
            raise InvalidInputError("potential family: field 'density_kg_m3': values must be "
                                    "finite and > 0")
        self.settings = settings or FamilySettings()
        self.representation = (representation or PotentialRepresentation()).fit(r_nm, U)
        self.r_nm = self.representation.r_nm
        self.anchor_coefficients = self.representation.encode(U)
        self.anchor_density_kg_m3 = rho
        self._sd = np.sqrt(self.representation.component_variance_)
        rep = self.representation
        self._bump_lo = rep.r_core_nm
        self._bump_hi = float(self.r_nm[-1] - rep.switch_width_nm)

    def sample(self, n: int, seed: int) -> list[FamilySample]:
        """``n`` potentials with their densities, reproducible from ``seed``."""
        if n < 0:
            raise InvalidInputError(f"potential family: field 'n': value {n!r}: must be >= 0")
        rng = np.random.default_rng(seed)
        s = self.settings
        rep = self.representation
        out = []
        for _ in range(n):
            i = int(rng.integers(self.anchor_coefficients.shape[0]))
            z = self.anchor_coefficients[i] + s.coefficient_scale * self._sd * \
                rng.standard_normal(self._sd.size)
            y = rep.reference_ + rep.components_ @ z
            for _ in range(int(rng.integers(s.max_bumps + 1))):
                centre = rng.uniform(self._bump_lo, self._bump_hi)
                width = rng.uniform(*s.bump_width_nm)
                y = y + s.bump_amplitude_kj_mol * rng.standard_normal() * \
                    np.exp(-0.5 * ((self.r_nm - centre) / width) ** 2)
            u = rep.apply_guarantees(rep.expand(y)[None, :])[0]
            rho = float(self.anchor_density_kg_m3[i] *
                        np.exp(s.density_log_sigma * rng.standard_normal()))
            out.append(FamilySample(self.r_nm.copy(), u, rho, i))
        return out
