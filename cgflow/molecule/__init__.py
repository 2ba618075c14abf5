"""All-atom alkane models: from SMILES (OPLS-AA typing from the graph) or by name from the
registry; structure, coordinates and topology. The default is 2,3,4-trimethylpentane."""

from cgflow.molecule.geometry import build_coordinates
from cgflow.molecule.registry import (
    DEFAULT_MOLECULE,
    MoleculeEntry,
    MoleculeSpec,
    find_entry,
    registry,
    registry_names,
    resolve_molecule,
)
from cgflow.molecule.smiles import canonical_smiles, molecule_from_smiles
from cgflow.molecule.structure import (
    RESIDUE_NAME,
    Angle,
    Atom,
    Bond,
    Dihedral,
    Molecule,
    alkane_molecule,
    molar_mass_g_mol,
    trimethylpentane,
)
from cgflow.molecule.topology import topology_text, write_gro, write_topology

__all__ = [
    "DEFAULT_MOLECULE",
    "RESIDUE_NAME",
    "Angle",
    "Atom",
    "Bond",
    "Dihedral",
    "Molecule",
    "MoleculeEntry",
    "MoleculeSpec",
    "alkane_molecule",
    "build_coordinates",
    "canonical_smiles",
    "find_entry",
    "molar_mass_g_mol",
    "molecule_from_smiles",
    "registry",
    "registry_names",
    "resolve_molecule",
    "topology_text",
    "trimethylpentane",
    "write_gro",
    "write_topology",
]
