"""cgflow: coarse-grained potentials learned from all-atom force-field parameters.

The science core (parameters, molecule, engines, analysis, IBI, ML) knows nothing of
FireWorks or MongoDB; :mod:`cgflow.jobs` wraps the engines in Custodian,
:mod:`cgflow.db` owns persistence and :mod:`cgflow.firetasks` / :mod:`cgflow.workflows`
are thin orchestration glue.
"""

__version__ = "0.1.0"
