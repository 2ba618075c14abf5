"""Engine processes that do not outlive the process that supervises them.

When the supervisor (Custodian inside ``rlaunch``) is killed, ``kill -9`` included, an
engine it started would run on as an orphan, and a rerun of the same Firework would find
the run directory busy. Engines are therefore started through util-linux ``setpriv
--pdeathsig TERM``: the kernel sends them SIGTERM when their parent dies. mdrun answers
SIGTERM by writing a checkpoint and stopping, so the rerun continues from it; LAMMPS stops
and the rerun continues from its last restart file. ``setpriv`` execs the engine, so the
process id Custodian records is the engine's own.

Without ``setpriv`` (not Linux, or no util-linux) commands run unchanged.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence


def tied_to_parent(cmd: Sequence[str]) -> list[str]:
    """``cmd`` run so that it receives SIGTERM when the process starting it dies."""
    exe = shutil.which("setpriv")
    if exe is None:
        return list(cmd)
    return [exe, "--pdeathsig", "TERM", "--", *cmd]
