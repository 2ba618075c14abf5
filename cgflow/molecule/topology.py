"""GROMACS topology (.top) and coordinate (.gro) files of one alkane (default
2,3,4-trimethylpentane).

The topology includes ``oplsaa.ff/forcefield.itp`` for ``[ defaults ]`` (LJ combination
rule 3, generated pairs, fudgeLJ = fudgeQQ = 0.5) and the atom types. With
``bonded="explicit"`` (the default) every bonded line carries the parameter set's values:

* bonds, function 1: ``b0`` (nm), ``kb`` (kJ/mol/nm^2);
* angles, function 1: ``theta0`` (deg), ``k`` (kJ/mol/rad^2);
* proper dihedrals, function 5 (OPLS Fourier): ``C1 C2 C3 C4`` (kJ/mol), ``C4 = 0``;
* 1-4 pairs, function 1, LJ from the atom types scaled by fudgeLJ.

With ``bonded="forcefield"`` the bonded lines carry no values and GROMACS takes them
from ``oplsaa.ff/ffbonded.itp`` (dihedrals as Ryckaert-Bellemans, function 3); this is
only used to check that :data:`cgflow.params.OPLSAA_REFERENCE` reproduces OPLS-AA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from cgflow.errors import InvalidInputError
from cgflow.molecule.structure import Molecule, trimethylpentane
from cgflow.params import ParameterSet

FORCEFIELD_INCLUDE = "oplsaa.ff/forcefield.itp"


def _g(x: float) -> str:
    return f"{x:.10g}"


def moleculetype_lines(
    ps: ParameterSet | None,
    molecule: Molecule | None = None,
    *,
    bonded: Literal["explicit", "forcefield"] = "explicit",
) -> list[str]:
    """The ``[ moleculetype ]`` section and its atoms and bonded terms, as lines.

    Parameters
    ----------
    ps
        Parameter set (GROMACS units); required for ``bonded="explicit"``.
    molecule
        The molecule (default :func:`trimethylpentane`).
    bonded
        ``"explicit"`` (parameter values on every line) or ``"forcefield"``.
    """
    mol = molecule or trimethylpentane()
    if bonded not in ("explicit", "forcefield"):
        raise InvalidInputError(
            f"field 'bonded': unknown value {bonded!r} (expected 'explicit' or 'forcefield')"
        )
    if bonded == "explicit" and ps is None:
        raise InvalidInputError("field 'ps': a parameter set is needed for explicit parameters")
    explicit = bonded == "explicit"
    out = ["[ moleculetype ]", "; name  nrexcl", f"{mol.name}  3", "", "[ atoms ]",
           ";  nr  type      resnr  res   atom  cgnr   charge      mass"]
    for n, a in enumerate(mol.atoms, start=1):
        out.append(f"{n:5d}  {a.opls_type:<9s} 1  {mol.name:<5s} {a.name:<5s} "
                   f"{a.charge_group:4d}  {a.charge:8.3f}  {a.mass:9.5f}")
    out += ["", "[ bonds ]", ";  ai    aj funct  b0 (nm)  kb (kJ/mol/nm^2)"]
    out += [_harmonic_line((b.i, b.j), b.kind, "bond", "r0", ps if explicit else None)
            for b in mol.bonds]
    out += ["", "[ pairs ]", ";  ai    aj funct"]
    for i, j in mol.pairs:
        out.append(f"{i + 1:5d} {j + 1:5d}  1")
    out += ["", "[ angles ]", ";  ai    aj    ak funct  theta0 (deg)  k (kJ/mol/rad^2)"]
    out += [_harmonic_line((a.i, a.j, a.k), a.kind, "angle", "theta0",
                           ps if explicit else None) for a in mol.angles]
    if explicit:
        out += ["", "[ dihedrals ]", ";  ai    aj    ak    al funct  C1 C2 C3 C4 (kJ/mol)"]
    else:
        out += ["", "[ dihedrals ]", ";  ai    aj    ak    al funct"]
    for d in mol.dihedrals:
        if explicit:
            c = [getattr(ps, f"dih_{d.kind}_c{m}") for m in (1, 2, 3)]
            line = (f"{d.i + 1:5d} {d.j + 1:5d} {d.k + 1:5d} {d.l + 1:5d}  5  "
                    + "  ".join(_g(v) for v in c) + "  0")
        else:
            line = f"{d.i + 1:5d} {d.j + 1:5d} {d.k + 1:5d} {d.l + 1:5d}  3"
        out.append(f"{line}  ; {d.kind}")
    return out


def _harmonic_line(atoms: tuple[int, ...], kind: str, term: str, eq: str,
                   ps: ParameterSet | None) -> str:
    """One line of ``[ bonds ]`` or ``[ angles ]`` (function 1, harmonic): the atoms
    (0-based in, 1-based out), and with ``ps`` its equilibrium value ``{term}_{kind}_{eq}``
    and force constant ``{term}_{kind}_k``; the term's kind as a comment."""
    line = " ".join(f"{i + 1:5d}" for i in atoms) + "  1"
    if ps is not None:
        line += (f"  {_g(getattr(ps, f'{term}_{kind}_{eq}'))}"
                 f"  {_g(getattr(ps, f'{term}_{kind}_k'))}")
    return f"{line}  ; {kind}"


def topology_text(
    ps: ParameterSet | None,
    n_molecules: int = 1,
    *,
    bonded: Literal["explicit", "forcefield"] = "explicit",
    title: str | None = None,
    molecule: Molecule | None = None,
) -> str:
    """Full ``.top`` text for ``n_molecules`` molecules (see the module docstring)."""
    if not isinstance(n_molecules, int) or n_molecules < 1:
        raise InvalidInputError(
            f"field 'n_molecules': must be an integer >= 1, got {n_molecules!r}"
        )
    mol = molecule or trimethylpentane()
    if title is None:
        title = f"{mol.label}, OPLS-AA"
        if ps is not None and bonded == "explicit":
            title += f", parameter set {ps.id}"
    head = [
        f"; {title}",
        "; Bonded parameters: "
        + ("explicit values of the parameter set (GROMACS units)." if bonded == "explicit"
           else "oplsaa.ff defaults (ffbonded.itp)."),
        f'#include "{FORCEFIELD_INCLUDE}"',
        "",
    ]
    tail = ["", "[ system ]", title, "", "[ molecules ]", f"{mol.name}  {n_molecules}", ""]
    return "\n".join(head + moleculetype_lines(ps, mol, bonded=bonded) + tail)


def write_topology(
    ps: ParameterSet | None,
    path: str | Path,
    n_molecules: int = 1,
    *,
    bonded: Literal["explicit", "forcefield"] = "explicit",
    molecule: Molecule | None = None,
) -> Path:
    """Write :func:`topology_text` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(topology_text(ps, n_molecules, bonded=bonded, molecule=molecule))
    return path


def write_gro(
    path: str | Path,
    coordinates_nm: np.ndarray,
    box_nm: float | tuple[float, float, float],
    *,
    title: str = "2,3,4-trimethylpentane",
    molecule: Molecule | None = None,
) -> Path:
    """Write coordinates of one or more molecules as a ``.gro`` file (positions in nm).

    Parameters
    ----------
    path
        Output file.
    coordinates_nm
        (n_molecules * n_atoms, 3) positions in nm, molecule after molecule, each in the
        atom order of the molecule.
    box_nm
        Cubic edge or the three edges of a rectangular box, nm.
    """
    mol = molecule or trimethylpentane()
    x = np.asarray(coordinates_nm, dtype=float)
    if x.ndim != 2 or x.shape[1] != 3 or x.shape[0] % mol.n_atoms:
        raise InvalidInputError(
            f"field 'coordinates_nm': expected shape (k*{mol.n_atoms}, 3), got {x.shape}"
        )
    box = (box_nm,) * 3 if np.isscalar(box_nm) else tuple(box_nm)
    lines = [title, f"{x.shape[0]:5d}"]
    for n, pos in enumerate(x):
        res = n // mol.n_atoms + 1
        a = mol.atoms[n % mol.n_atoms]
        lines.append(f"{res % 100000:5d}{mol.name:<5s}{a.name:>5s}{(n + 1) % 100000:5d}"
                     f"{pos[0]:8.3f}{pos[1]:8.3f}{pos[2]:8.3f}")
    lines.append(" ".join(f"{b:10.5f}" for b in box))
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path
