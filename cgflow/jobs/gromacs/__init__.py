"""GROMACS under Custodian: the job, its handlers, validators and run state."""
