"""Iterative Boltzmann Inversion of the single-bead CG liquid, on arrays and run folders.

Pure functions on arrays (nm, kJ/mol, ps, bar): :mod:`~cgflow.ibi.potential` (grid,
PMF, core, tail, forces), :mod:`~cgflow.ibi.update` (RDF update, pressure correction,
adaptive factor), :mod:`~cgflow.ibi.metrics` (convergence metrics). Runs:
:mod:`~cgflow.ibi.iteration` (prepare / finish one iteration, a loop),
:mod:`~cgflow.ibi.production` (CG production, D_CG, alpha), :mod:`~cgflow.ibi.export`
(LAMMPS, GROMACS and VOTCA tables). Nothing here knows of workflows or databases.
"""

from cgflow.ibi.export import write_lammps_table, write_votca_table, write_xvg_table
from cgflow.ibi.iteration import (
    PreparedRun,
    best_iteration,
    finish_iteration,
    initial_ibi_potential,
    prepare_iteration,
    run_ibi,
    run_ibi_iteration,
)
from cgflow.ibi.metrics import pressure_deviation, rdf_deviation
from cgflow.ibi.potential import TabulatedPotential, initial_potential
from cgflow.ibi.production import (
    ProductionResult,
    acceleration_factor,
    finish_production,
    prepare_production,
    run_production,
)
from cgflow.ibi.settings import IBISettings, IBITarget, IterationResult
from cgflow.ibi.update import adapt_factor, ibi_update, pressure_correction

__all__ = [
    "IBISettings", "IBITarget", "IterationResult", "PreparedRun", "ProductionResult",
    "TabulatedPotential", "acceleration_factor", "adapt_factor", "best_iteration",
    "finish_iteration", "finish_production", "ibi_update", "initial_ibi_potential",
    "initial_potential", "prepare_iteration", "prepare_production", "pressure_correction",
    "pressure_deviation", "rdf_deviation", "run_ibi", "run_ibi_iteration", "run_production",
    "write_lammps_table", "write_votca_table", "write_xvg_table",
]
