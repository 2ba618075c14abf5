"""Export of CG pair potentials to LAMMPS, GROMACS and VOTCA table formats.

Inputs are in cgflow units: r in nm, U in kJ/mol, F = -dU/dr in kJ/(mol nm).

* :func:`write_lammps_table`: LAMMPS ``pair_style table`` (``units real``: Angstrom,
  kcal/mol); the same writer the CG runs use.
* :func:`write_xvg_table`: a GROMACS user table for non-bonded interactions
  (``table_<A>_<B>.xvg``), 7 columns ``r f -f' g -g' h -h'`` in nm and kJ/mol. The CG
  potential is put in the repulsion columns ``h = U``, ``-h' = F`` and the Coulomb
  (``f``) and dispersion (``g``) columns are zero, so the pair must be given
  ``C6 = 0``, ``C12 = 1`` in the topology. GROMACS tables start at r = 0 with a
  uniform spacing (0.002 nm is GROMACS' default); :func:`gromacs_table_arrays` makes
  such arrays from a potential. GROMACS 2020 and later cannot run tabulated
  non-bonded interactions (the group scheme was removed); the file serves older
  versions and tools that read the format.
* :func:`write_votca_table`: VOTCA's potential format (``.pot``), 3 columns ``r U flag``
  in nm and kJ/mol, flag ``i`` (a point inside the table's valid range).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from cgflow.engines.lammps import write_table as write_lammps_table
from cgflow.errors import InvalidInputError
from cgflow.ibi.potential import TabulatedPotential

__all__ = ["write_lammps_table", "write_xvg_table", "write_votca_table",
           "gromacs_table_arrays", "read_xvg_table"]


def _arrays(r_nm, u, f=None):
    r = np.asarray(r_nm, float)
    u = np.asarray(u, float)
    if r.ndim != 1 or u.shape != r.shape or (f is not None and np.shape(f) != r.shape):
        raise InvalidInputError(f"table export: r, U (and F) must be 1-D of equal length, got "
                                f"{r.shape}, {u.shape}" + (f", {np.shape(f)}" if f is not None
                                                          else ""))
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(u))) or np.any(np.diff(r) <= 0):
        raise InvalidInputError("table export: r must increase and r, U be finite")
    return r, u, (None if f is None else np.asarray(f, float))


def write_xvg_table(path: str | os.PathLike, r_nm: np.ndarray, u_kj_mol: np.ndarray,
                    f_kj_mol_nm: np.ndarray) -> Path:
    """Write a GROMACS non-bonded user table with the potential in the h columns.

    Columns: r (nm), f = 0, -f' = 0, g = 0, -g' = 0, h = U (kJ/mol), -h' = F (kJ/(mol nm));
    use ``C6 = 0``, ``C12 = 1`` for the pair (see the module docstring).

    Returns
    -------
    Path
        The file written.
    """
    r, u, f = _arrays(r_nm, u_kj_mol, f_kj_mol_nm)
    if not np.all(np.isfinite(f)):
        raise InvalidInputError("table export: F must be finite")
    header = ("# cgflow CG pair potential as a GROMACS user table: r [nm], f, -f', g, -g' "
              "(all 0), h = U [kJ/mol], -h' = F [kJ/(mol nm)]; use C6 = 0, C12 = 1")
    rows = "\n".join(f"{a:.6f} 0 0 0 0 {b:.10e} {c:.10e}" for a, b, c in zip(r, u, f,
                                                                              strict=True))
    path = Path(path)
    path.write_text(header + "\n" + rows + "\n")
    return path


def read_xvg_table(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read back r (nm), U = h and F = -h' from a table of :func:`write_xvg_table`."""
    a = np.loadtxt(path, comments=("#", "@"))
    return a[:, 0], a[:, 5], a[:, 6]


def gromacs_table_arrays(
    potential: TabulatedPotential, *, spacing_nm: float = 0.002, r_max_nm: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays for a GROMACS table: r from 0 with ``spacing_nm`` up to ``r_max_nm``.

    Inside the potential's range, U and F come from the cubic spline through the grid
    (:meth:`TabulatedPotential.tabulate`). Below its first point r0, U continues linearly
    with the force at r0 (U(r) = U(r0) + F(r0) (r0 - r), F = F(r0)), consistent and
    finite; beyond the cutoff U = F = 0 up to ``r_max_nm`` (default: the cutoff + 1 nm,
    the table extension GROMACS expects).
    """
    r0, rc = float(potential.r_nm[0]), float(potential.r_nm[-1])
    r_max = rc + 1.0 if r_max_nm is None else r_max_nm
    n = int(round(r_max / spacing_nm))
    r = spacing_nm * np.arange(n + 1)
    spline = CubicSpline(potential.r_nm, potential.u_kj_mol)
    inside = (r >= r0) & (r <= rc)
    u = np.zeros_like(r)
    f = np.zeros_like(r)
    u[inside] = spline(r[inside])
    f[inside] = -spline(r[inside], 1)
    below = r < r0
    f0 = float(-spline(r0, 1))
    u[below] = float(spline(r0)) + f0 * (r0 - r[below])
    f[below] = f0
    return r, u, f


def write_votca_table(path: str | os.PathLike, r_nm: np.ndarray, u_kj_mol: np.ndarray) -> Path:
    """Write a potential in VOTCA's table format: ``r U i`` per line (nm, kJ/mol).

    Returns
    -------
    Path
        The file written.
    """
    r, u, _ = _arrays(r_nm, u_kj_mol)
    lines = ["# cgflow CG pair potential, VOTCA format: r [nm] U [kJ/mol] flag"]
    lines += [f"{a:.6f} {b:.10e} i" for a, b in zip(r, u, strict=True)]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path
