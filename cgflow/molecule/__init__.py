"""The 2,3,4-trimethylpentane all-atom model: structure, coordinates and topology."""

from cgflow.molecule.geometry import build_coordinates
from cgflow.molecule.structure import (
    RESIDUE_NAME,
    Angle,
    Atom,
    Bond,
    Dihedral,
    Molecule,
    molar_mass_g_mol,
    trimethylpentane,
)
from cgflow.molecule.topology import topology_text, write_gro, write_topology

__all__ = [
    "RESIDUE_NAME",
    "Angle",
    "Atom",
    "Bond",
    "Dihedral",
    "Molecule",
    "build_coordinates",
    "molar_mass_g_mol",
    "topology_text",
    "trimethylpentane",
    "write_gro",
    "write_topology",
]
