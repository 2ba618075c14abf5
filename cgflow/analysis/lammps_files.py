"""Readers of LAMMPS files: the masses in a data file and the frames of a text dump.

Everything here stays in the units of the file (LAMMPS ``units real``: Angstrom, fs
for the time step, g/mol); :mod:`cgflow.analysis.beads` converts to nm and ps.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from cgflow.errors import InvalidInputError

#: Column (0-based) of the atom type in the ``Atoms`` section, per atom style.
TYPE_COLUMN: dict[str, int] = {
    "atomic": 1,
    "charge": 1,
    "bond": 2,
    "angle": 2,
    "molecular": 2,
    "full": 2,
}

_COUNT_RE = re.compile(r"^\s*(\d+)\s+(atoms|atom types)\s*$")


@dataclass
class LammpsDataAtoms:
    """Atoms of a LAMMPS data file, sorted by atom ID.

    Attributes
    ----------
    ids
        Atom IDs, ascending, shape (N,).
    types
        Atom type of each atom, shape (N,).
    masses
        Mass of each atom in g/mol, from the ``Masses`` section, shape (N,).
    atom_style
        The atom style used to read the ``Atoms`` section.
    """

    ids: np.ndarray
    types: np.ndarray
    masses: np.ndarray
    atom_style: str


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _section_body(lines: list[str], start: int, count: int, name: str, path: Path) -> list[str]:
    """The ``count`` non-blank lines after line ``start`` (a section header)."""
    body: list[str] = []
    for line in lines[start + 1 :]:
        text = _strip_comment(line)
        if not text:
            if body:
                # a blank line after the body ends the section early
                break
            continue
        body.append(text)
        if len(body) == count:
            break
    if len(body) != count:
        raise InvalidInputError(
            f"LAMMPS data file {path}: section '{name}' has {len(body)} lines, "
            f"expected {count}"
        )
    return body


def read_lammps_data_atoms(path: Path, *, atom_style: str | None = None) -> LammpsDataAtoms:
    """Read atom IDs, types and per-atom masses from a LAMMPS data file.

    Parameters
    ----------
    path
        The data file (as written by ``write_data`` or by hand).
    atom_style
        Atom style of the ``Atoms`` section (one of :data:`TYPE_COLUMN`). If ``None``,
        the style is taken from the section header comment (``Atoms # full``), which
        ``write_data`` always writes; without a comment, 5 or 8 columns mean ``atomic``
        and 7 or 10 columns mean ``full``, anything else must be given explicitly.

    Returns
    -------
    LammpsDataAtoms
        Atoms sorted by ID, masses in g/mol.

    Raises
    ------
    InvalidInputError
        If the file is missing, lacks the ``Masses`` or ``Atoms`` section, has an
        unsupported atom style, or an atom whose type has no mass.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"field 'data_file': value '{path}': file not found")
    lines = path.read_text().splitlines()

    n_atoms = n_types = None
    masses_at = atoms_at = None
    style_comment = None
    for k, line in enumerate(lines):
        match = _COUNT_RE.match(_strip_comment(line))
        if match:
            if match.group(2) == "atoms":
                n_atoms = int(match.group(1))
            else:
                n_types = int(match.group(1))
            continue
        head = _strip_comment(line)
        if head == "Masses":
            masses_at = k
        elif head == "Atoms":
            atoms_at = k
            if "#" in line:
                style_comment = line.split("#", 1)[1].strip() or None
    for name, value in (("atoms", n_atoms), ("atom types", n_types)):
        if value is None:
            raise InvalidInputError(f"LAMMPS data file {path}: header line 'N {name}' missing")
    for name, value in (("Masses", masses_at), ("Atoms", atoms_at)):
        if value is None:
            raise InvalidInputError(f"LAMMPS data file {path}: section '{name}' missing")

    type_mass: dict[int, float] = {}
    for text in _section_body(lines, masses_at, n_types, "Masses", path):
        fields = text.split()
        type_mass[int(fields[0])] = float(fields[1])

    body = _section_body(lines, atoms_at, n_atoms, "Atoms", path)
    n_cols = len(body[0].split())
    style = atom_style or style_comment
    if style is None:
        if n_cols in (5, 8):
            style = "atomic"
        elif n_cols in (7, 10):
            style = "full"
        else:
            raise InvalidInputError(
                f"LAMMPS data file {path}: 'Atoms' section has {n_cols} columns and no "
                f"style comment; pass atom_style (one of {sorted(TYPE_COLUMN)})"
            )
    if style not in TYPE_COLUMN:
        raise InvalidInputError(
            f"field 'atom_style': value {style!r}: unsupported "
            f"(expected one of {sorted(TYPE_COLUMN)})"
        )
    col = TYPE_COLUMN[style]
    ids = np.empty(n_atoms, dtype=np.int64)
    types = np.empty(n_atoms, dtype=np.int64)
    for k, text in enumerate(body):
        fields = text.split()
        ids[k] = int(fields[0])
        types[k] = int(fields[col])
    if len(np.unique(ids)) != n_atoms:
        raise InvalidInputError(f"LAMMPS data file {path}: atom IDs are not unique")
    missing = sorted(set(types.tolist()) - set(type_mass))
    if missing:
        raise InvalidInputError(
            f"LAMMPS data file {path}: atom type(s) {missing} have no entry in 'Masses'"
        )
    order = np.argsort(ids, kind="stable")
    ids, types = ids[order], types[order]
    masses = np.array([type_mass[t] for t in types.tolist()], dtype=np.float64)
    return LammpsDataAtoms(ids=ids, types=types, masses=masses, atom_style=style)


@dataclass
class DumpFrame:
    """One frame of a LAMMPS text dump, atoms sorted by ID, in the file's units.

    Attributes
    ----------
    timestep
        The MD step number of the frame.
    box_lo, box_hi
        Lower and upper box bounds (3,), Angstrom for ``units real``.
    ids
        Atom IDs, ascending, shape (N,).
    positions
        Cartesian positions (N, 3), Angstrom, not wrapped (as written, or rebuilt
        from scaled coordinates).
    """

    timestep: int
    box_lo: np.ndarray
    box_hi: np.ndarray
    ids: np.ndarray
    positions: np.ndarray


#: Coordinate column triples a text dump may hold, in order of preference, and
#: whether they are scaled (fractions of the box).
_COORDINATE_COLUMNS: tuple[tuple[tuple[str, str, str], bool], ...] = (
    (("x", "y", "z"), False),
    (("xu", "yu", "zu"), False),
    (("xs", "ys", "zs"), True),
    (("xsu", "ysu", "zsu"), True),
)


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt")
    return path.open("r")


def _expect(handle: IO[str], prefix: str, path: Path) -> str:
    line = handle.readline()
    if not line.startswith(prefix):
        raise InvalidInputError(
            f"LAMMPS dump {path}: expected a line starting with {prefix!r}, got {line.strip()!r}"
        )
    return line


def iter_lammps_text_dump(path: Path) -> Iterator[DumpFrame]:
    """Yield the frames of a LAMMPS text dump (``dump custom`` / ``dump atom``).

    Reads any column layout that has an ``id`` column and one coordinate triple:
    ``x y z`` (wrapped), ``xu yu zu`` (unwrapped), ``xs ys zs`` or ``xsu ysu zsu``
    (scaled, converted to Cartesian with the frame's box). A ``.gz`` file is read
    through gzip.

    Raises
    ------
    InvalidInputError
        On a missing file, a triclinic box with non-zero tilt, a missing ``id`` or
        coordinate column, or a truncated frame.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"field 'dump_file': value '{path}': file not found")
    n_read = 0
    with _open_text(path) as handle:
        while True:
            line = handle.readline()
            if not line:
                return
            if not line.strip():
                continue
            if not line.startswith("ITEM: TIMESTEP"):
                raise InvalidInputError(
                    f"LAMMPS dump {path}: expected 'ITEM: TIMESTEP', got {line.strip()!r}"
                )
            try:
                timestep = int(handle.readline().split()[0])
                _expect(handle, "ITEM: NUMBER OF ATOMS", path)
                n_atoms = int(handle.readline().split()[0])
                bounds_line = _expect(handle, "ITEM: BOX BOUNDS", path)
                triclinic = "xy" in bounds_line.split()
                lo = np.empty(3)
                hi = np.empty(3)
                for a in range(3):
                    fields = handle.readline().split()
                    lo[a], hi[a] = float(fields[0]), float(fields[1])
                    if triclinic and float(fields[2]) != 0.0:
                        raise InvalidInputError(
                            f"LAMMPS dump {path}: triclinic box (non-zero tilt factor "
                            f"{fields[2]} at timestep {timestep}); only orthorhombic boxes "
                            "are supported"
                        )
                columns = _expect(handle, "ITEM: ATOMS", path).split()[2:]
                if "id" not in columns:
                    raise InvalidInputError(
                        f"LAMMPS dump {path}: no 'id' column (columns: {columns})"
                    )
                layout = next(
                    ((names, sc) for names, sc in _COORDINATE_COLUMNS
                     if all(n in columns for n in names)),
                    None,
                )
                if layout is None:
                    raise InvalidInputError(
                        f"LAMMPS dump {path}: no coordinate columns x/y/z, xu/yu/zu, xs/ys/zs "
                        f"or xsu/ysu/zsu (columns: {columns})"
                    )
                coord_cols = [columns.index(n) for n in layout[0]]
                scaled = layout[1]
                rows = [handle.readline() for _ in range(n_atoms)]
                data = np.loadtxt(rows, ndmin=2, usecols=[columns.index("id"), *coord_cols])
                if data.shape[0] != n_atoms:
                    raise InvalidInputError(
                        f"LAMMPS dump {path}: frame at timestep {timestep} is truncated "
                        f"({data.shape[0]} of {n_atoms} atoms)"
                    )
                ids = data[:, 0].astype(np.int64)
                xyz = data[:, 1:4]
                if scaled:
                    xyz = lo + xyz * (hi - lo)
            except InvalidInputError:
                raise
            except (IndexError, ValueError) as exc:
                raise InvalidInputError(
                    f"LAMMPS dump {path}: frame {n_read} is malformed: {exc}"
                ) from exc
            order = np.argsort(ids, kind="stable")
            n_read += 1
            yield DumpFrame(
                timestep=timestep, box_lo=lo, box_hi=hi, ids=ids[order], positions=xyz[order]
            )
