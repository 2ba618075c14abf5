"""The ``cgflow`` command (:mod:`~cgflow.cli.main`): one module per command group,
parsing arguments and printing; the work is done by :mod:`cgflow.stages`,
:mod:`cgflow.orchestration` and :mod:`cgflow.db`."""
