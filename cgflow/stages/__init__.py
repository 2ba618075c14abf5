"""The stages of one parameter set and of a campaign, as plain functions.

:mod:`~cgflow.stages.aa` (build, equilibrate, produce, analyse in GROMACS),
:mod:`~cgflow.stages.cg` (the IBI loop and CG production in LAMMPS),
:mod:`~cgflow.stages.train` (the models of a campaign), :mod:`~cgflow.stages.validate`
(closed loop on unseen sets), :mod:`~cgflow.stages.dataset` (a campaign as files),
:mod:`~cgflow.stages.predict` (predicted tables as files). The Firetasks, the command
line and the benchmarks all call these; they know nothing of FireWorks, and those that
read or store results take a :class:`cgflow.db.store.Store`.
"""
