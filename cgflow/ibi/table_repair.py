"""Repairs of a tabulated pair potential after LAMMPS failed with it.

Pure functions on arrays in cgflow's internal units (r in nm, U in kJ/mol,
F = -dU/dr in kJ/(mol nm)) on a uniform grid, as read and written by
:func:`cgflow.engines.lammps.read_table` and :func:`cgflow.engines.lammps.write_table`.
They are used by the LAMMPS error handlers (:mod:`cgflow.jobs.lammps.handlers`) and know
nothing of files or of Custodian.

The repulsive core
------------------
Every repair that needs values at short range uses the same steep, monotonic
continuation of the table below an *anchor* point ``r_a``:

.. math::

    U(r) = U_a + \\frac{F^* r_a}{n}\\left[\\left(\\frac{r_a}{r}\\right)^n - 1\\right],
    \\qquad F(r) = -\\frac{dU}{dr} = F^* \\left(\\frac{r_a}{r}\\right)^{n+1}

with ``n =`` :data:`CORE_EXPONENT` (an r^-12 wall). U is continuous at ``r_a``; F is
continuous when ``F*`` equals the table's force at the anchor, and jumps there when the
core is made harder (``F*`` larger), which LAMMPS reports as one force value
"inconsistent with -dE/dr" (harmless).

The anchor is found walking inwards from the outer end of the table (energies relative
to the last point of the table, the cut-off):

* the first point whose energy reaches ``anchor_energy`` (a wall that the beads
  essentially never climb: the default 20 kJ/mol is about 8 kT at 298 K, Boltzmann
  weight ~3e-4), or else
* the first local maximum of at least ``barrier_energy`` (default 5 kJ/mol, 2 kT): a
  barrier followed by a softer or attractive region inside it, the signature of a core
  that is too soft (beads cross it and collapse onto each other).

A core is *sound* when the anchor was found by the first rule and U keeps rising (does
not decrease) from the anchor to the inner end of the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cgflow.errors import InvalidInputError

#: Exponent n of the power-law core continuation.
CORE_EXPONENT = 12
#: Default anchor energy above the cut-off value, kJ/mol (about 8 kT at 298 K).
ANCHOR_ENERGY_KJ_MOL = 20.0
#: Default smallest barrier recognised as the top of a too-soft core, kJ/mol.
BARRIER_ENERGY_KJ_MOL = 5.0
#: Smallest force F* of a core continuation, kJ/(mol nm): 20 kJ/mol over 0.04 nm.
MIN_CORE_FORCE_KJ_MOL_NM = 500.0


@dataclass(frozen=True)
class CoreDiagnosis:
    """Where the repulsive core of a table is anchored and whether it is sound.

    Attributes
    ----------
    anchor_index
        Index of the anchor point in the table.
    r_anchor_nm, u_anchor_kj_mol
        Position and energy (relative to the last point of the table) of the anchor.
    sound
        True when the core reaches the anchor energy and rises monotonically inside it.
    reason
        One line for people.
    """

    anchor_index: int
    r_anchor_nm: float
    u_anchor_kj_mol: float
    sound: bool
    reason: str


def _check_table(r: np.ndarray, u: np.ndarray, f: np.ndarray) -> None:
    if r.ndim != 1 or r.size < 3 or u.shape != r.shape or f.shape != r.shape:
        raise InvalidInputError(f"table: r, U and F must be 1-D arrays of the same length "
                                f">= 3, got shapes {r.shape}, {u.shape}, {f.shape}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(u)) and np.all(np.isfinite(f))):
        raise InvalidInputError("table: r, U and F must be finite")
    if r[0] <= 0.0 or np.any(np.diff(r) <= 0.0):
        raise InvalidInputError(f"table: r must be increasing and start above 0 nm, "
                                f"got r[0] = {r[0]!r}")


def _spacing(r: np.ndarray) -> float:
    return float((r[-1] - r[0]) / (r.size - 1))


def diagnose_core(
    r_nm: np.ndarray, u_kj_mol: np.ndarray, *,
    anchor_energy: float = ANCHOR_ENERGY_KJ_MOL, barrier_energy: float = BARRIER_ENERGY_KJ_MOL,
) -> CoreDiagnosis | None:
    """Find the anchor of the repulsive core (see the module docstring).

    Returns
    -------
    CoreDiagnosis or None
        None when the table has no repulsive core at all (no point reaches
        ``barrier_energy`` above the cut-off value).
    """
    r = np.asarray(r_nm, dtype=float)
    e = np.asarray(u_kj_mol, dtype=float) - float(u_kj_mol[-1])
    n = r.size
    for i in range(n - 1, -1, -1):
        if e[i] >= anchor_energy:
            inner = e[: i + 1]
            monotone = bool(np.all(np.diff(inner) <= 1e-12 * max(1.0, abs(inner).max())))
            reason = (f"core reaches {e[i]:.3g} kJ/mol at r = {r[i]:.4g} nm"
                      + ("" if monotone else " but is not monotonic inside it"))
            return CoreDiagnosis(i, float(r[i]), float(e[i]), monotone, reason)
        if e[i] >= barrier_energy and i > 0 and e[i - 1] <= e[i]:
            return CoreDiagnosis(
                i, float(r[i]), float(e[i]), False,
                f"core too soft: a barrier of only {e[i]:.3g} kJ/mol at r = {r[i]:.4g} nm "
                "with a softer region inside it",
            )
    return None


def core_continuation(
    r_nm: np.ndarray, r_anchor_nm: float, u_anchor_kj_mol: float, force_kj_mol_nm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """U and F of the power-law core at ``r_nm`` (all below the anchor).

    Returns
    -------
    u_kj_mol, f_kj_mol_nm : numpy.ndarray
    """
    r = np.asarray(r_nm, dtype=float)
    ratio = r_anchor_nm / r
    n = CORE_EXPONENT
    u = u_anchor_kj_mol + force_kj_mol_nm * r_anchor_nm / n * (ratio**n - 1.0)
    f = force_kj_mol_nm * ratio ** (n + 1)
    return u, f


@dataclass(frozen=True)
class CoreRepair:
    """What :func:`stiffen_core` did."""

    r_anchor_nm: float
    force_kj_mol_nm: float
    n_points_replaced: int
    diagnosis: str


def stiffen_core(
    r_nm: np.ndarray, u_kj_mol: np.ndarray, f_kj_mol_nm: np.ndarray, *, factor: float = 2.0,
    anchor_energy: float = ANCHOR_ENERGY_KJ_MOL, barrier_energy: float = BARRIER_ENERGY_KJ_MOL,
    min_force: float = MIN_CORE_FORCE_KJ_MOL_NM,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, CoreRepair]:
    """Replace the table below its core anchor by a harder power-law wall.

    The wall's force at the anchor is ``F* = factor * max(F_a, secant, min_force)``:
    ``F_a`` is the table's force at the anchor and ``secant`` the mean slope between the
    anchor and the well minimum outside it, so a flat (too soft) core still gets a wall
    as steep as the core it should have had. U stays continuous at the anchor and
    F = -dU/dr holds exactly inside it.

    This is an approximation meant to recover a run, not a physical model: inside the
    anchor the beads are (by construction) almost never found in a sound liquid, and in
    IBI the next update corrects whatever the harder wall changed outside that range.

    Parameters
    ----------
    r_nm, u_kj_mol, f_kj_mol_nm
        The table (uniform grid, nm, kJ/mol, kJ/(mol nm)).
    factor
        How much harder than the table (>= 1).
    anchor_energy, barrier_energy
        See :func:`diagnose_core` (kJ/mol).
    min_force
        Floor of the wall's force at the anchor, kJ/(mol nm).

    Returns
    -------
    r_nm, u_kj_mol, f_kj_mol_nm, CoreRepair
        The new table (same grid) and what was done.

    Raises
    ------
    InvalidInputError
        On a malformed table, ``factor < 1``, or a table without a repulsive core.
    """
    r = np.asarray(r_nm, dtype=float)
    u = np.array(u_kj_mol, dtype=float)
    f = np.array(f_kj_mol_nm, dtype=float)
    _check_table(r, u, f)
    if not (math.isfinite(factor) and factor >= 1.0):
        raise InvalidInputError(f"field 'factor': must be a finite number >= 1, got {factor!r}")
    diag = diagnose_core(r, u, anchor_energy=anchor_energy, barrier_energy=barrier_energy)
    if diag is None:
        raise InvalidInputError(
            f"table has no repulsive core: no point rises {barrier_energy:g} kJ/mol above "
            f"the cut-off value between {r[0]:.4g} and {r[-1]:.4g} nm"
        )
    a = diag.anchor_index
    if a == 0:
        return r, u, f, CoreRepair(float(r[0]), float(f[0]), 0, diag.reason)
    m = a + int(np.argmin(u[a:]))
    secant = (u[a] - u[m]) / (r[m] - r[a]) if m > a else 0.0
    force = factor * max(float(f[a]), float(secant), min_force)
    u[:a], f[:a] = core_continuation(r[:a], float(r[a]), float(u[a]), force)
    return r, u, f, CoreRepair(float(r[a]), force, a, diag.reason)


def extend_inward(
    r_nm: np.ndarray, u_kj_mol: np.ndarray, f_kj_mol_nm: np.ndarray, r_min_nm: float, *,
    min_force: float = MIN_CORE_FORCE_KJ_MOL_NM,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extend a table down to ``r_min_nm`` with the power-law core anchored at its first point.

    The grid spacing is kept, so the new first point is at or just below ``r_min_nm``
    (and above 0). The wall's force at the old first point is
    ``max(F(r_0), min_force)``: continuous with the table when its edge is repulsive
    enough.

    Returns
    -------
    r_nm, u_kj_mol, f_kj_mol_nm : numpy.ndarray
        The extended table (unchanged when ``r_min_nm >= r_0``).
    """
    r = np.asarray(r_nm, dtype=float)
    u = np.asarray(u_kj_mol, dtype=float)
    f = np.asarray(f_kj_mol_nm, dtype=float)
    _check_table(r, u, f)
    if not (math.isfinite(r_min_nm) and r_min_nm > 0.0):
        raise InvalidInputError(f"field 'r_min_nm': must be > 0 nm, got {r_min_nm!r}")
    if r_min_nm >= r[0]:
        return r, u, f
    dr = _spacing(r)
    k = math.ceil((r[0] - r_min_nm) / dr - 1e-9)
    while k > 0 and r[0] - k * dr <= 0.0:
        k -= 1
    if k == 0:
        return r, u, f
    r_new = r[0] - dr * np.arange(k, 0, -1)
    u_new, f_new = core_continuation(r_new, float(r[0]), float(u[0]), max(float(f[0]), min_force))
    return (np.concatenate([r_new, r]), np.concatenate([u_new, u]), np.concatenate([f_new, f]))


def extend_outward(
    r_nm: np.ndarray, u_kj_mol: np.ndarray, f_kj_mol_nm: np.ndarray, r_max_nm: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extend a table up to ``r_max_nm`` with U = 0 and F = 0 (same grid spacing).

    Only meaningful when the table already ends at U = 0, F = 0 (a potential shifted to
    zero at its cut-off); :func:`tail_is_zero` tells.

    Returns
    -------
    r_nm, u_kj_mol, f_kj_mol_nm : numpy.ndarray
        The extended table; its last point is at or just above ``r_max_nm``.
    """
    r = np.asarray(r_nm, dtype=float)
    u = np.asarray(u_kj_mol, dtype=float)
    f = np.asarray(f_kj_mol_nm, dtype=float)
    _check_table(r, u, f)
    if r_max_nm <= r[-1]:
        return r, u, f
    dr = _spacing(r)
    k = math.ceil((r_max_nm - r[-1]) / dr - 1e-9)
    r_new = r[-1] + dr * np.arange(1, k + 1)
    z = np.zeros(k)
    return np.concatenate([r, r_new]), np.concatenate([u, z]), np.concatenate([f, z])


def tail_is_zero(u_kj_mol: np.ndarray, f_kj_mol_nm: np.ndarray, *, u_tol: float = 1e-2,
                 f_tol: float = 0.5) -> bool:
    """True when the table ends at U ~ 0 and F ~ 0.

    The defaults accept |U| <= 0.01 kJ/mol and |F| <= 0.5 kJ/(mol nm) (0.2 kT/nm at
    298 K, the size of the force jump of a Lennard-Jones potential truncated at 2.5
    sigma for the CG bead), so that extending with zeros adds no energy step and a
    negligible force step.
    """
    return abs(float(u_kj_mol[-1])) <= u_tol and abs(float(f_kj_mol_nm[-1])) <= f_tol
