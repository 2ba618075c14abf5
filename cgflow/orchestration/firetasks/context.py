"""What every cgflow Firetask needs: the result store, the run directory, its inputs.

Where results go: the Firetask opens the result store from, in order,

1. ``cgflow_db_file`` in the FireWorker's ``env`` (``my_fworker.yaml``), a launchpad-style
   YAML naming the database;
2. the ``CGFLOW_DB_FILE`` environment variable (``cgflow launch`` sets it to the launchpad
   file it runs with);
3. FireWorks' own launchpad file (``LAUNCHPAD_LOC`` of ``FW_config.yaml``).

Credentials therefore come from config files or the environment, never from a Firework
spec. Run directories live under ``cgflow_work_root`` of the FireWorker's ``env`` or
:func:`cgflow.settings.runs_root`, one per parameter set and preset, so that a Firework that
is rerun (a lost run, a rerun after a fix) finds its checkpoints again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgflow.db.store import Store
from cgflow.errors import CgflowError
from cgflow.molecule.registry import MoleculeSpec, resolve_molecule
from cgflow.params import ParameterSet, parameter_set_from_mapping
from cgflow.settings import current as current_settings
from cgflow.settings import runs_root


def db_file_for(fw_spec: dict[str, Any]) -> str:
    """The launchpad-style file that names the result database (see module docstring)."""
    env = fw_spec.get("_fw_env") or {}
    if env.get("cgflow_db_file"):
        return str(env["cgflow_db_file"])
    db_file = current_settings().db_file
    if db_file is not None:
        return str(db_file)
    from fireworks.fw_config import LAUNCHPAD_LOC

    if LAUNCHPAD_LOC:
        return str(LAUNCHPAD_LOC)
    raise CgflowError(
        "cannot tell which database to store results in: set cgflow_db_file in the "
        "FireWorker env (my_fworker.yaml), or CGFLOW_DB_FILE, or LAUNCHPAD_LOC in FW_config.yaml"
    )


def work_root_for(fw_spec: dict[str, Any]) -> Path:
    """Root of run directories for this FireWorker."""
    env = fw_spec.get("_fw_env") or {}
    root = env.get("cgflow_work_root")
    if root:
        p = Path(os.path.expandvars(str(root))).expanduser()
        p.mkdir(parents=True, exist_ok=True)
        return p
    return runs_root()


@dataclass
class TaskContext:
    """Inputs of one parameter set's Firetask, resolved at run time."""

    campaign: str
    param_set: ParameterSet
    preset_name: str
    run_root: Path
    store: Store
    #: the molecule and its state point (the default when the task names none)
    molecule: MoleculeSpec = field(default_factory=lambda: resolve_molecule(None))

    @property
    def param_id(self) -> str:
        """The stable id of the parameter set on its molecule
        (:meth:`cgflow.molecule.registry.MoleculeSpec.set_id`)."""
        return self.molecule.set_id(self.param_set)

    @property
    def aa_dir(self) -> Path:
        """Run directory of the all-atom stage."""
        return self.run_root / self.param_id / self.preset_name / "aa"

    @property
    def cg_dir(self) -> Path:
        """Run directory of the coarse-grained stage."""
        return self.run_root / self.param_id / self.preset_name / "cg"

    @property
    def aa_run_id(self) -> str:
        """Id of the all-atom run document."""
        return f"{self.param_id}:{self.preset_name}"

    def __enter__(self) -> TaskContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    @classmethod
    def from_task(cls, task: dict[str, Any], fw_spec: dict[str, Any]) -> TaskContext:
        """Resolve the context of a Firetask (its parameters) inside a running Firework."""
        ps = parameter_set_from_mapping(task["param_set"], source="Firework spec")
        return cls(
            campaign=task["campaign"],
            param_set=ps,
            preset_name=task["preset"],
            run_root=work_root_for(fw_spec),
            store=Store.from_launchpad_file(db_file_for(fw_spec)),
            molecule=resolve_molecule(task.get("molecule")),
        )
