"""LAMMPS under Custodian: the job, its handlers and run state."""
