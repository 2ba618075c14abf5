"""Analysis of all-atom and CG trajectories: beads, RDF, MSD and diffusion, energies.

Everything here works on files and arrays in GROMACS units (nm, ps, kJ/mol, g/mol).
"""

from cgflow.analysis.beads import (
    BeadTrajectory,
    beads_from_gromacs,
    beads_from_lammps,
    load_beads_npz,
    save_beads_npz,
    wrap_into_box,
)
from cgflow.analysis.diffusion import (
    DEFAULT_VISCOSITY_PA_S,
    MSD,
    YEH_HUMMER_XI,
    DiffusionResult,
    diffusion_coefficient,
    mean_squared_displacement,
    unwrap_positions,
    yeh_hummer_correction,
)
from cgflow.analysis.energies import EnergyAverage, block_average, energy_averages
from cgflow.analysis.lammps_files import (
    DumpFrame,
    LammpsDataAtoms,
    iter_lammps_text_dump,
    read_lammps_data_atoms,
)
from cgflow.analysis.rdf import RDF, radial_distribution

__all__ = [
    "DEFAULT_VISCOSITY_PA_S",
    "MSD",
    "RDF",
    "YEH_HUMMER_XI",
    "BeadTrajectory",
    "DiffusionResult",
    "DumpFrame",
    "EnergyAverage",
    "LammpsDataAtoms",
    "beads_from_gromacs",
    "beads_from_lammps",
    "block_average",
    "diffusion_coefficient",
    "energy_averages",
    "iter_lammps_text_dump",
    "load_beads_npz",
    "mean_squared_displacement",
    "radial_distribution",
    "read_lammps_data_atoms",
    "save_beads_npz",
    "unwrap_positions",
    "wrap_into_box",
    "yeh_hummer_correction",
]
