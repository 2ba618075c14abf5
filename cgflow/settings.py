"""Where cgflow keeps its files: the cgflow home and its sub-folders.

The home is ``$CGFLOW_HOME`` if set, else ``$HOME/.cgflow``. It holds the embedded
database's data (``db/``), run directories (``runs/``) and exported tables.
"""

from __future__ import annotations

import os
from pathlib import Path


def cgflow_home() -> Path:
    """The cgflow home folder (created if missing)."""
    env = os.environ.get("CGFLOW_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        home = Path(os.environ.get("HOME", "~")).expanduser() / ".cgflow"
    home.mkdir(parents=True, exist_ok=True)
    return home


def runs_root() -> Path:
    """Default root of run directories: ``$CGFLOW_WORK_ROOT`` or ``<home>/runs``."""
    env = os.environ.get("CGFLOW_WORK_ROOT")
    root = Path(env).expanduser() if env else cgflow_home() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root
