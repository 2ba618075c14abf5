"""cgflow: coarse-grained potentials learned from all-atom force-field parameters.

Layers, from the bottom up (``docs/architecture.md``):

- science core, knowing nothing of FireWorks or MongoDB: :mod:`cgflow.params`,
  :mod:`cgflow.units`, :mod:`cgflow.molecule`, :mod:`cgflow.engines`,
  :mod:`cgflow.analysis`, :mod:`cgflow.ibi`, :mod:`cgflow.ml`;
- execution: :mod:`cgflow.jobs` (Custodian jobs, handlers and validators of the engines);
- stages: :mod:`cgflow.stages` (one parameter set's all-atom and CG stages, training,
  validation; what the Firetasks, the CLI and the benchmarks all call);
- persistence: :mod:`cgflow.db`;
- orchestration: :mod:`cgflow.orchestration` (campaign specs, workflows, Firetasks) and
  the command line, :mod:`cgflow.cli`.
"""

__version__ = "0.1.0"
