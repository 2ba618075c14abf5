"""The GROMACS and LAMMPS engines: input writers, command lines, and every parser of
their output formats (no Custodian, no FireWorks)."""
