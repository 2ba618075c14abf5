"""Alkane molecules: atoms, OPLS-AA types and the bonded terms; 2,3,4-trimethylpentane.

Any alkane is built from its carbon skeleton by :func:`alkane_molecule` (from SMILES by
:func:`cgflow.molecule.smiles.molecule_from_smiles`): carbons are OPLS-AA types by their
hydrogen count (``opls_135`` CH3, ``opls_136`` CH2, ``opls_137`` CH, ``opls_139`` C),
every hydrogen ``opls_140``; all carbons have the bonded type ``CT``, all hydrogens
``HC``, so the 19 parameters of :class:`cgflow.params.ParameterSet` cover every bonded
term (a kind the molecule lacks, such as CT-CT-CT-CT in neopentane, is simply absent).

The default molecule, 2,3,4-trimethylpentane, has the carbon skeleton (C1..C5 the
pentane chain, C6..C8 the methyl branches)::

          C6  C7  C8
          |   |   |
    C1 - C2 - C3 - C4 - C5

CH3 carbons (C1, C5, C6, C7, C8) are OPLS-AA type ``opls_135``, CH carbons (C2, C3, C4)
``opls_137``, every hydrogen ``opls_140``. Charges and masses are those of GROMACS'
``oplsaa.ff/ffnonbonded.itp``; each CH3 and CH group is neutral.

Bonds come from the bond graph; angles, proper dihedrals and 1-4 pairs are generated
from it (1-4 pairs: dihedral ends three bonds apart on the shortest path).
Each term carries a *kind* that names the :class:`cgflow.params.ParameterSet` fields it
uses (``ctct``/``cthc`` bonds, ``ctctct``/``ctcthc``/``hcthc`` angles,
``ctctctct``/``ctctcthc``/``hcctcthc`` dihedrals).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import combinations

from pydantic import BaseModel, ConfigDict

#: Residue / moleculetype name used in coordinate and topology files.
RESIDUE_NAME = "TMP"

#: Name of the default molecule (the original study's liquid).
DEFAULT_LABEL = "2,3,4-trimethylpentane"

#: OPLS-AA atom types of alkanes: name -> (bonded type, charge e, mass g/mol), as in
#: GROMACS' ``oplsaa.ff/ffnonbonded.itp`` (checked against the installed file in the tests).
OPLS_TYPES: dict[str, tuple[str, float, float]] = {
    "opls_135": ("CT", -0.180, 12.01100),  # alkane CH3 carbon
    "opls_136": ("CT", -0.120, 12.01100),  # alkane CH2 carbon
    "opls_137": ("CT", -0.060, 12.01100),  # alkane CH carbon
    "opls_139": ("CT", 0.000, 12.01100),  # alkane C (no hydrogen)
    "opls_140": ("HC", 0.060, 1.00800),  # alkane hydrogen
}

#: OPLS-AA type of an alkane carbon by its number of hydrogens.
CARBON_TYPE_BY_HYDROGENS: dict[int, str] = {3: "opls_135", 2: "opls_136", 1: "opls_137",
                                            0: "opls_139"}

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


class Molecule(BaseModel):
    """Atoms and generated bonded terms of one molecule (all indices 0-based).

    Attributes
    ----------
    name
        Residue / moleculetype name in coordinate and topology files (at most 5
        characters: ``TMP`` for 2,3,4-trimethylpentane).
    atoms, bonds, angles, dihedrals, pairs
        The atoms and every bonded term with its parameter kind; ``pairs`` are the 1-4
        pairs (atoms three bonds apart on the shortest path).
    label
        Human name (``2,3,4-trimethylpentane``).
    smiles
        Canonical SMILES of the heavy-atom graph (RDKit), ``""`` if unknown.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    atoms: tuple[Atom, ...]
    bonds: tuple[Bond, ...]
    angles: tuple[Angle, ...]
    dihedrals: tuple[Dihedral, ...]
    pairs: tuple[tuple[int, int], ...]
    label: str = DEFAULT_LABEL
    smiles: str = ""

    @property
    def n_atoms(self) -> int:
        """Number of atoms (26 for 2,3,4-trimethylpentane)."""
        return len(self.atoms)

    @property
    def n_carbons(self) -> int:
        """Number of carbon atoms."""
        return sum(a.element == "C" for a in self.atoms)

    def molar_mass_g_mol(self) -> float:
        """Molar mass from the OPLS-AA atom masses, g/mol."""
        return sum(self.masses())

    def is_cyclic(self) -> bool:
        """Whether the bond graph has a ring (more bonds than a tree has)."""
        return len(self.bonds) >= self.n_atoms

    def term_counts(self) -> dict[str, int]:
        """Number of bonds, angles and dihedrals of each parameter kind and of atoms of
        each OPLS-AA type (kinds the molecule lacks are absent)."""
        out: dict[str, int] = {}
        for prefix, terms in (("bond", self.bonds), ("angle", self.angles),
                              ("dih", self.dihedrals)):
            for t in terms:
                out[f"{prefix}_{t.kind}"] = out.get(f"{prefix}_{t.kind}", 0) + 1
        for a in self.atoms:
            out[a.opls_type] = out.get(a.opls_type, 0) + 1
        return out

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
    return atoms_from_skeleton([degree[c] for c in range(1, 9)])


def atoms_from_skeleton(carbon_degrees: list[int]) -> tuple[Atom, ...]:
    """The atoms of an alkane whose carbons (in order, numbered from 1) have these numbers
    of carbon neighbours: carbons first (typed by their hydrogen count, ``4 - degree``),
    then the hydrogens grouped by carbon (``H{c}{h}``, or ``H{c}`` for a single one)."""
    atoms: list[Atom] = []
    for c, deg in enumerate(carbon_degrees, start=1):
        opls = CARBON_TYPE_BY_HYDROGENS[4 - deg]
        bt, q, m = OPLS_TYPES[opls]
        atoms.append(Atom(f"C{c}", opls, bt, q, m, c))
    for c, deg in enumerate(carbon_degrees, start=1):
        n_h = 4 - deg
        bt, q, m = OPLS_TYPES["opls_140"]
        for h in range(1, n_h + 1):
            name = f"H{c}{h}" if n_h > 1 else f"H{c}"
            atoms.append(Atom(name, "opls_140", bt, q, m, c))
    return tuple(atoms)


def alkane_molecule(carbon_bonds: list[tuple[int, int]], *, name: str, label: str,
                    smiles: str = "") -> Molecule:
    """The all-atom alkane of a carbon skeleton, with every bonded term enumerated.

    Parameters
    ----------
    carbon_bonds
        Carbon-carbon bonds as 1-based carbon numbers; the carbons are numbered 1..n in
        the order of :func:`atoms_from_skeleton`.
    name, label, smiles
        See :class:`Molecule`.

    Bonds are sorted index pairs; angles ``i-j-k`` for every centre ``j`` and pair of its
    neighbours; proper dihedrals ``i-j-k-l`` around every bond ``j-k`` (``i != l``, so a
    ring of three would give none); 1-4 pairs are the dihedral ends three bonds apart on
    the shortest path (in a five-membered ring, two ends of a dihedral are also two bonds
    apart the other way round: that pair is excluded, not a 1-4 pair).
    """
    if not carbon_bonds:
        raise ValueError("an alkane skeleton needs at least one carbon-carbon bond")
    degree = [0] * max(max(b) for b in carbon_bonds)
    for a, b in carbon_bonds:
        degree[a - 1] += 1
        degree[b - 1] += 1
    atoms = atoms_from_skeleton(degree)
    index = {a.name: i for i, a in enumerate(atoms)}
    bond_pairs = [(min(a, b) - 1, max(a, b) - 1) for a, b in carbon_bonds]
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
    mol = Molecule(name=name, atoms=atoms, bonds=bonds, angles=tuple(angles),
                   dihedrals=tuple(dihedrals), pairs=(), label=label, smiles=smiles)
    dist = mol.graph_distances()
    pairs = tuple(sorted({(min(d.i, d.l), max(d.i, d.l)) for d in dihedrals
                          if dist[d.i][d.l] == 3}))
    return mol.model_copy(update={"pairs": pairs})


#: Canonical SMILES of 2,3,4-trimethylpentane (RDKit).
TRIMETHYLPENTANE_SMILES = "CC(C)C(C)C(C)C"


@cache
def trimethylpentane() -> Molecule:
    """The 2,3,4-trimethylpentane molecule (C8H18, 26 atoms) with its bonded terms.

    Atom order: carbons C1..C8 (indices 0..7: the pentane chain, then the methyls on
    C2, C3, C4), then the hydrogens grouped by carbon. The same molecule as
    :func:`cgflow.molecule.smiles.molecule_from_smiles` builds from its SMILES (tested).
    """
    return alkane_molecule(list(_CC_BONDS), name=RESIDUE_NAME, label=DEFAULT_LABEL,
                           smiles=TRIMETHYLPENTANE_SMILES)


def molar_mass_g_mol() -> float:
    """Molar mass of 2,3,4-trimethylpentane from the OPLS-AA atom masses (114.232 g/mol)."""
    return trimethylpentane().molar_mass_g_mol()
