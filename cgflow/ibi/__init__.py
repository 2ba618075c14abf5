"""Iterative Boltzmann Inversion of the single-bead CG liquid, on arrays and run folders.

Pure functions on arrays (nm, kJ/mol, ps, bar): :mod:`~cgflow.ibi.potential` (grid,
PMF, core, tail, forces), :mod:`~cgflow.ibi.update` (RDF update, pressure correction,
adaptive factor), :mod:`~cgflow.ibi.integral_equation` (HNC), :mod:`~cgflow.ibi.metrics`
(convergence metrics), :mod:`~cgflow.ibi.monitor` (the decisions after each iteration:
converged, continue, correct, give up), :mod:`~cgflow.ibi.table_repair` (repairs of a
table LAMMPS could not run). Run folders: :mod:`~cgflow.ibi.iteration` (prepare / finish
one iteration), :mod:`~cgflow.ibi.production` (CG production, D_CG, alpha),
:mod:`~cgflow.ibi.export` (LAMMPS, GROMACS and VOTCA tables). Nothing here knows of
Custodian, workflows or databases; the loop that runs iterations under Custodian is
:func:`cgflow.stages.cg.run_ibi_step`.
"""

from cgflow.ibi.export import write_lammps_table, write_votca_table, write_xvg_table
from cgflow.ibi.iteration import (
    PreparedRun,
    finish_iteration,
    initial_ibi_potential,
    prepare_iteration,
)
from cgflow.ibi.metrics import pressure_deviation, rdf_deviation
from cgflow.ibi.potential import TabulatedPotential, initial_potential
from cgflow.ibi.production import (
    ProductionResult,
    acceleration_factor,
    finish_production,
    prepare_production,
)
from cgflow.ibi.settings import IBISettings, IBITarget, IterationResult
from cgflow.ibi.update import adapt_factor, ibi_update, pressure_correction

__all__ = [
    "IBISettings", "IBITarget", "IterationResult", "PreparedRun", "ProductionResult",
    "TabulatedPotential", "acceleration_factor", "adapt_factor", "finish_iteration",
    "finish_production", "ibi_update", "initial_ibi_potential", "initial_potential",
    "prepare_iteration", "prepare_production", "pressure_correction", "pressure_deviation",
    "rdf_deviation", "write_lammps_table", "write_votca_table", "write_xvg_table",
]
