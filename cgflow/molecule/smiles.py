"""Alkanes from SMILES: parsing and checks with RDKit, atom order and OPLS-AA typing.

:func:`molecule_from_smiles` parses a SMILES with RDKit, refuses what the OPLS-AA alkane
typer does not cover, orders the carbons and builds the all-atom molecule with
:func:`cgflow.molecule.structure.alkane_molecule` (types by hydrogen count, every bond,
angle, proper dihedral and 1-4 pair).

**Supported:** one connected, neutral, saturated hydrocarbon with at least two carbons,
acyclic or with rings of five or more carbons (cyclopentane, cyclohexane, decalin, ...).
Hydrogens are implicit (or explicit; they are removed and added back); stereo marks are
ignored (OPLS-AA gives stereoisomers the same parameters).

**Refused** (:class:`~cgflow.errors.InvalidInputError` naming the atom by its 0-based
index in the SMILES, its symbol, and the SMILES): a SMILES RDKit cannot parse; any atom
other than carbon and hydrogen; aromatic atoms; double, triple or aromatic bonds; formal
charges; radicals; several molecules (``.``); methane (no carbon-carbon bond, OPLS-AA
``opls_138``); rings of three or four carbons (OPLS-AA has its own types for cyclopropane
and cyclobutane strain, which the 19 parameters do not describe).

**Atom order** (so that names and indices follow the chemistry, not how the SMILES was
written): carbon 1 starts the longest carbon chain (a longest simple path of the carbon
graph) and the chain follows; then, for each chain carbon in turn, its branches depth
first. Ties are broken by RDKit's canonical atom ranks, so every SMILES of the same
molecule gives the same order. Hydrogens follow, grouped by carbon (see
:func:`~cgflow.molecule.structure.atoms_from_skeleton`). For 2,3,4-trimethylpentane this
is the order of the hand-written molecule of earlier versions (C1..C5 the chain, C6..C8
the methyls on C2, C3, C4; tested).
"""

from __future__ import annotations

from functools import lru_cache

from cgflow.errors import InvalidInputError
from cgflow.molecule.structure import Molecule, alkane_molecule

#: Largest carbon count accepted (the longest-chain search is exhaustive).
MAX_CARBONS = 40
#: Residue name of a molecule that names none.
DEFAULT_RESIDUE = "MOL"


def _rdkit():
    try:
        from rdkit import Chem, RDLogger
    except ImportError as exc:  # pragma: no cover - a dependency of cgflow
        raise InvalidInputError(f"molecules from SMILES need RDKit ({exc})") from None
    RDLogger.DisableLog("rdApp.*")
    return Chem


def _refuse(smiles: str, what: str) -> InvalidInputError:
    return InvalidInputError(f"field 'smiles': value {smiles!r}: {what}")


def parse_alkane(smiles: str):
    """The RDKit molecule (hydrogens implicit) of a supported alkane SMILES.

    Raises
    ------
    InvalidInputError
        See the module docstring; the message names the atom (index and symbol) and the
        SMILES.
    """
    if not isinstance(smiles, str) or not smiles.strip():
        raise InvalidInputError(f"field 'smiles': must be a non-empty SMILES string, got "
                                f"{smiles!r}")
    chem = _rdkit()
    mol = chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise _refuse(smiles, "RDKit cannot parse it as SMILES")
    for atom in mol.GetAtoms():
        where = f"atom {atom.GetIdx()} ({atom.GetSymbol()})"
        if atom.GetSymbol() not in ("C", "H"):
            raise _refuse(smiles, f"{where} is not carbon or hydrogen; the OPLS-AA typer "
                                  "supports alkanes only")
        if atom.GetIsAromatic():
            raise _refuse(smiles, f"{where} is aromatic; the OPLS-AA typer supports "
                                  "saturated alkanes only")
        if atom.GetFormalCharge():
            raise _refuse(smiles, f"{where} has the charge {atom.GetFormalCharge():+d}; "
                                  "only neutral molecules are supported")
        if atom.GetNumRadicalElectrons():
            raise _refuse(smiles, f"{where} is a radical ({atom.GetNumRadicalElectrons()} "
                                  "unpaired electrons); only saturated alkanes are supported")
    for bond in mol.GetBonds():
        if bond.GetBondType() != chem.BondType.SINGLE:
            a = bond.GetBeginAtom()
            raise _refuse(smiles, f"atom {a.GetIdx()} ({a.GetSymbol()}) has a "
                                  f"{str(bond.GetBondType()).lower()} bond to atom "
                                  f"{bond.GetEndAtomIdx()}; only single bonds (alkanes) "
                                  "are supported")
    mol = chem.RemoveHs(mol)
    if len(chem.GetMolFrags(mol)) > 1:
        raise _refuse(smiles, "holds several molecules ('.'); give one molecule")
    n_c = mol.GetNumAtoms()
    if n_c < 2:
        raise _refuse(smiles, "atom 0 (C) has no carbon neighbour: methane (OPLS-AA "
                              "opls_138) is not supported")
    if n_c > MAX_CARBONS:
        raise _refuse(smiles, f"{n_c} carbons; at most {MAX_CARBONS} are supported")
    for ring in mol.GetRingInfo().AtomRings():
        if len(ring) < 5:
            raise _refuse(smiles, f"atom {min(ring)} (C) is in a ring of {len(ring)} carbons;"
                                  " rings of five or more carbons are supported")
    return mol


def canonical_smiles(smiles: str) -> str:
    """RDKit's canonical SMILES of a supported alkane (no hydrogens, no stereo)."""
    chem = _rdkit()
    return chem.MolToSmiles(parse_alkane(smiles), isomericSmiles=False)


def _longest_chain(adj: list[list[int]], rank: list[int]) -> list[int]:
    """A longest simple path of the graph, the first by canonical ranks among the longest."""
    best: list[int] = []
    best_key: tuple[int, ...] = ()

    def walk(path: list[int], seen: set[int]) -> None:
        nonlocal best, best_key
        extended = False
        for nb in sorted(adj[path[-1]], key=lambda a: rank[a]):
            if nb not in seen:
                extended = True
                seen.add(nb)
                path.append(nb)
                walk(path, seen)
                path.pop()
                seen.discard(nb)
        if not extended:
            key = tuple(rank[a] for a in path)
            if len(path) > len(best) or (len(path) == len(best) and key < best_key):
                best, best_key = list(path), key

    for start in sorted(range(len(adj)), key=lambda a: rank[a]):
        walk([start], {start})
    return best


def carbon_order(adj: list[list[int]], rank: list[int]) -> list[int]:
    """Carbon order of the module docstring: the longest chain, then the branches of each
    chain carbon depth first (neighbours by canonical rank). Returns graph indices."""
    order = _longest_chain(adj, rank)
    placed = set(order)

    def branch(a: int) -> None:
        for nb in sorted(adj[a], key=lambda x: rank[x]):
            if nb not in placed:
                placed.add(nb)
                order.append(nb)
                branch(nb)

    for a in list(order):
        branch(a)
    return order


@lru_cache(maxsize=64)
def molecule_from_smiles(smiles: str, name: str = DEFAULT_RESIDUE,
                         label: str | None = None) -> Molecule:
    """The OPLS-AA all-atom molecule of an alkane SMILES.

    Parameters
    ----------
    smiles
        Any SMILES of a supported alkane (see the module docstring).
    name
        Residue / moleculetype name (1-5 letters or digits).
    label
        Human name (default: the canonical SMILES).

    Raises
    ------
    InvalidInputError
        For a molecule outside what the typer supports (naming the atom and the SMILES)
        or a bad residue name.
    """
    if not (isinstance(name, str) and 1 <= len(name) <= 5 and name.isalnum()):
        raise InvalidInputError(f"field 'residue': must be 1-5 letters or digits, got {name!r}")
    chem = _rdkit()
    mol = parse_alkane(smiles)
    canonical = chem.MolToSmiles(mol, isomericSmiles=False)
    rank = list(chem.CanonicalRankAtoms(mol, breakTies=True))
    adj = [sorted(nb.GetIdx() for nb in a.GetNeighbors()) for a in mol.GetAtoms()]
    order = carbon_order(adj, rank)
    number = {a: n for n, a in enumerate(order, start=1)}
    bonds = sorted((min(number[b.GetBeginAtomIdx()], number[b.GetEndAtomIdx()]),
                    max(number[b.GetBeginAtomIdx()], number[b.GetEndAtomIdx()]))
                   for b in mol.GetBonds())
    return alkane_molecule(bonds, name=name, label=label or canonical, smiles=canonical)
