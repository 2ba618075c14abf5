"""FireWorks orchestration: campaign specs (:mod:`~cgflow.orchestration.campaign`, the
shipped ones in ``specs/``), the workflow builder (:mod:`~cgflow.orchestration.workflows`),
thin Firetasks (:mod:`~cgflow.orchestration.firetasks`), the names Fireworks carry
(:mod:`~cgflow.orchestration.stage_names`), submitting and launching
(:mod:`~cgflow.orchestration.submit`, :mod:`~cgflow.orchestration.launcher`), campaign
status, SLURM (:mod:`~cgflow.orchestration.cluster`) and FireWorks config files."""
