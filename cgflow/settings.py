"""cgflow's settings from the environment, in one place, and where it keeps its files.

Every ``CGFLOW_*`` variable is read here (:func:`current`, at call time, so that a test or
a FireWorker's environment takes effect without a restart):

====================  ===========================================================
``CGFLOW_HOME``        the cgflow home (default ``$HOME/.cgflow``): the embedded
                       database's data (``db/``), FireWorks configs, run directories
``CGFLOW_WORK_ROOT``   root of run directories (default ``<home>/runs``)
``CGFLOW_GMX``         the GROMACS command (default ``gmx``)
``CGFLOW_LMP``         the LAMMPS command (default ``lmp``)
``CGFLOW_MPIRUN``      the MPI launcher of LAMMPS runs (default ``mpirun``)
``CGFLOW_DB_FILE``     launchpad-style file naming the result database of a Firetask
``CGFLOW_DB_USERNAME`` database user when a launchpad file has none
``CGFLOW_DB_PASSWORD`` its password (never printed: hidden from ``repr``)
====================  ===========================================================
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cgflow.errors import EngineError

#: Settings field -> environment variable.
ENV_VARS = {
    "home": "CGFLOW_HOME", "work_root": "CGFLOW_WORK_ROOT", "gmx": "CGFLOW_GMX",
    "lmp": "CGFLOW_LMP", "mpirun": "CGFLOW_MPIRUN", "db_file": "CGFLOW_DB_FILE",
    "db_username": "CGFLOW_DB_USERNAME", "db_password": "CGFLOW_DB_PASSWORD",
}


@dataclass(frozen=True)
class Settings:
    """The ``CGFLOW_*`` environment variables (see the module docstring); None or the
    default where a variable is unset or empty."""

    home: Path | None = None
    work_root: Path | None = None
    gmx: str = "gmx"
    lmp: str = "lmp"
    mpirun: str = "mpirun"
    db_file: Path | None = None
    db_username: str | None = field(default=None, repr=False)
    db_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """The settings of ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for name, var in ENV_VARS.items():
            raw = env.get(var)
            if not raw:
                continue
            values[name] = Path(raw).expanduser() if name in ("home", "work_root",
                                                               "db_file") else raw
        return cls(**values)

    def is_set(self, name: str, env: dict[str, str] | None = None) -> bool:
        """True when the variable of field ``name`` is set (not the default)."""
        return bool((os.environ if env is None else env).get(ENV_VARS[name]))


def find_executable(name: str, what: str, install_hint: str) -> str:
    """Path of the executable of settings field ``name`` (``gmx``, ``lmp``, ``mpirun``):
    its ``CGFLOW_*`` variable (a path or a command name) if set, else the default command
    on ``PATH``.

    Raises
    ------
    EngineError
        If it cannot be found; the message names ``what``, where it was looked for and
        ``install_hint``.
    """
    settings = current()
    command = getattr(settings, name)
    found = shutil.which(command)
    if found is None:
        source = (f"${ENV_VARS[name]}={command!r}" if settings.is_set(name)
                  else f"{command!r} on PATH")
        raise EngineError(f"{what} executable not found ({source}). {install_hint}")
    return found


def current() -> Settings:
    """The settings of the process environment now."""
    return Settings.from_env()


def cgflow_home() -> Path:
    """The cgflow home folder (created if missing)."""
    home = current().home
    if home is None:
        home = Path(os.environ.get("HOME", "~")).expanduser() / ".cgflow"
    home.mkdir(parents=True, exist_ok=True)
    return home


def runs_root() -> Path:
    """Default root of run directories: ``$CGFLOW_WORK_ROOT`` or ``<home>/runs``."""
    root = current().work_root or cgflow_home() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root
