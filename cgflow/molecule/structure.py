"""The 2,3,4-trimethylpentane molecule: atoms, OPLS-AA types and the bonded terms.

Carbon skeleton (C1..C5 the pentane chain, C6..C8 the methyl branches)::

          C6  C7  C8
          |   |   |
    C1 - C2 - C3 - C4 - C5

CH3 carbons (C1, C5, C6, C7, C8) are OPLS-AA type ``opls_135``, CH carbons (C2, C3, C4)
``opls_137``, every hydrogen ``opls_140``. Charges and masses are those of GROMACS'
``oplsaa.ff/ffnonbonded.itp``; each CH3 and CH group is neutral.

Bonds come from the bond graph; angles, proper dihedrals and 1-4 pairs are generated
from it (the molecule is acyclic, so every 1-4 pair belongs to exactly one dihedral).
Each term carries a *kind* that names the :class:`cgflow.params.ParameterSet` fields it
uses (``ctct``/``cthc`` bonds, ``ctctct``/``ctcthc``/``hcthc`` angles,
``ctctctct``/``ctctcthc``/``hcctcthc`` dihedrals).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import combinations

#: Residue / moleculetype name used in coordinate and topology files.
RESIDUE_NAME = "TMP"

#: OPLS-AA atom types: name -> (bonded type, charge e, mass g/mol), as in ffnonbonded.itp.
OPLS_TYPES: dict[str, tuple[str, float, float]] = {
    "opls_135": ("CT", -0.180, 12.01100),  # alkane CH3 carbon
    "opls_137": ("CT", -0.060, 12.01100),  # alkane CH carbon
    "opls_140": ("HC", 0.060, 1.00800),  # alkane hydrogen
}

# carbon skeleton: 1-based carbon numbers
_CC_BONDS = ((1, 2), (2, 3), (3, 4), (4, 5), (2, 6), (3, 7), (4, 8))


@dataclass(frozen=True)
class Atom:
    """One atom of the molecule.

    Attributes
    ----------
    name
        Atom name (``C1``..``C8``, ``H11``.. with the carbon number as first digit).
    opls_type
        OPLS-AA atom type (``opls_135``, ``opls_137``, ``opls_140``).
    bonded_type
        Bonded type of oplsaa.ff (``CT`` or ``HC``).
    charge
        Partial charge in e.
    mass
        Mass in g/mol.
    charge_group
        1-based carbon group (the carbon and its hydrogens).
    """

    name: str
    opls_type: str
    bonded_type: str
    charge: float
    mass: float
    charge_group: int

    @property
    def element(self) -> str:
        """Chemical element symbol (``C`` or ``H``)."""
        return self.name[0]


@dataclass(frozen=True)
class Bond:
    """A bond between atoms ``i`` and ``j`` (0-based) of parameter kind ``ctct``/``cthc``."""

    i: int
    j: int
    kind: str


@dataclass(frozen=True)
class Angle:
    """An angle ``i-j-k`` (0-based, ``j`` the centre) of kind ``ctctct``/``ctcthc``/``hcthc``."""

    i: int
    j: int
    k: int
    kind: str


@dataclass(frozen=True)
class Dihedral:
    """A proper dihedral ``i-j-k-l`` (0-based) of kind ``ctctctct``/``ctctcthc``/``hcctcthc``."""

    i: int
    j: int
    k: int
    l: int  # noqa: E741 - the conventional name of the fourth dihedral atom
    kind: str


@dataclass(frozen=True)
class Molecule:
    """Atoms and generated bonded terms of one molecule (all indices 0-based)."""

    name: str
    atoms: tuple[Atom, ...]
    bonds: tuple[Bond, ...]
    angles: tuple[Angle, ...]
    dihedrals: tuple[Dihedral, ...]
    pairs: tuple[tuple[int, int], ...]

    @property
    def n_atoms(self) -> int:
        """Number of atoms (26)."""
        return len(self.atoms)

    def neighbours(self) -> list[list[int]]:
        """Adjacency list of the bond graph, neighbours in ascending index order."""
        adj: list[list[int]] = [[] for _ in self.atoms]
        for b in self.bonds:
            adj[b.i].append(b.j)
            adj[b.j].append(b.i)
        return [sorted(a) for a in adj]

    def masses(self) -> list[float]:
        """Atom masses in g/mol, atom order."""
        return [a.mass for a in self.atoms]

    def total_charge(self) -> float:
        """Net charge in e."""
        return sum(a.charge for a in self.atoms)

    def graph_distances(self) -> list[list[int]]:
        """Number of bonds on the shortest path between every pair of atoms."""
        adj = self.neighbours()
        n = self.n_atoms
        out = [[-1] * n for _ in range(n)]
        for s in range(n):
            out[s][s] = 0
            frontier = [s]
            while frontier:
                nxt = []
                for a in frontier:
                    for b in adj[a]:
                        if out[s][b] < 0:
                            out[s][b] = out[s][a] + 1
                            nxt.append(b)
                frontier = nxt
        return out


def bond_kind(t1: str, t2: str) -> str:
    """Parameter kind of a bond between bonded types ``t1`` and ``t2``."""
    key = tuple(sorted((t1, t2)))
    if key == ("CT", "CT"):
        return "ctct"
    if key == ("CT", "HC"):
        return "cthc"
    raise ValueError(f"no bond parameters for bonded types {t1}-{t2}")


def angle_kind(t1: str, t2: str, t3: str) -> str:
    """Parameter kind of an angle ``t1-t2-t3`` (``t2`` the centre)."""
    if t2 != "CT":
        raise ValueError(f"no angle parameters for bonded types {t1}-{t2}-{t3}")
    n_h = [t1, t3].count("HC")
    return ("ctctct", "ctcthc", "hcthc")[n_h]


def dihedral_kind(t1: str, t2: str, t3: str, t4: str) -> str:
    """Parameter kind of a proper dihedral ``t1-t2-t3-t4`` (either orientation)."""
    if (t2, t3) != ("CT", "CT"):
        raise ValueError(f"no dihedral parameters for bonded types {t1}-{t2}-{t3}-{t4}")
    n_h = [t1, t4].count("HC")
    return ("ctctctct", "ctctcthc", "hcctcthc")[n_h]


def _atoms() -> tuple[Atom, ...]:
    degree = {c: 0 for c in range(1, 9)}
    for a, b in _CC_BONDS:
        degree[a] += 1
        degree[b] += 1
    atoms: list[Atom] = []
    for c in range(1, 9):
        opls = "opls_135" if degree[c] == 1 else "opls_137"
        bt, q, m = OPLS_TYPES[opls]
        atoms.append(Atom(f"C{c}", opls, bt, q, m, c))
    for c in range(1, 9):
        n_h = 4 - degree[c]
        bt, q, m = OPLS_TYPES["opls_140"]
        for h in range(1, n_h + 1):
            name = f"H{c}{h}" if n_h > 1 else f"H{c}"
            atoms.append(Atom(name, "opls_140", bt, q, m, c))
    return tuple(atoms)


@cache
def trimethylpentane() -> Molecule:
    """The 2,3,4-trimethylpentane molecule (C8H18, 26 atoms) with its bonded terms.

    Atom order: carbons C1..C8 (indices 0..7), then the hydrogens grouped by carbon.
    """
    atoms = _atoms()
    index = {a.name: i for i, a in enumerate(atoms)}
    bond_pairs = [(a - 1, b - 1) for a, b in _CC_BONDS]
    for i, a in enumerate(atoms):
        if a.element == "H":
            bond_pairs.append((index[f"C{a.charge_group}"], i))
    bond_pairs.sort()
    types = [a.bonded_type for a in atoms]
    bonds = tuple(Bond(i, j, bond_kind(types[i], types[j])) for i, j in bond_pairs)

    adj: list[list[int]] = [[] for _ in atoms]
    for b in bonds:
        adj[b.i].append(b.j)
        adj[b.j].append(b.i)
    adj = [sorted(x) for x in adj]

    angles = []
    for j in range(len(atoms)):
        for i, k in combinations(adj[j], 2):
            angles.append(Angle(i, j, k, angle_kind(types[i], types[j], types[k])))

    dihedrals = []
    for b in bonds:
        j, k = b.i, b.j
        for i in adj[j]:
            if i == k:
                continue
            for m in adj[k]:
                if m in (j, i):
                    continue
                dihedrals.append(
                    Dihedral(i, j, k, m, dihedral_kind(types[i], types[j], types[k], types[m]))
                )
    pairs = tuple(sorted({(min(d.i, d.l), max(d.i, d.l)) for d in dihedrals}))
    return Molecule(
        name=RESIDUE_NAME,
        atoms=atoms,
        bonds=bonds,
        angles=tuple(angles),
        dihedrals=tuple(dihedrals),
        pairs=pairs,
    )


def molar_mass_g_mol() -> float:
    """Molar mass of 2,3,4-trimethylpentane from the OPLS-AA atom masses (114.232 g/mol)."""
    return sum(trimethylpentane().masses())
