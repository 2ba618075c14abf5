"""Execution: Custodian jobs, error handlers and validators around the engines.

:mod:`~cgflow.jobs.gromacs` and :mod:`~cgflow.jobs.lammps` each hold ``job`` (the
Custodian job and its runner), ``handlers``, ``state`` (what a run directory records
between attempts) and, for GROMACS, ``validators``; :mod:`~cgflow.jobs.ibi` is the IBI
monitor as a Custodian handler. A handler reads what a run left behind (through the
engines' parsers) and decides a correction; it does no science itself.
"""
