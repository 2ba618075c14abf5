"""Engine processes that do not outlive the process that supervises them.

When the supervisor (Custodian inside ``rlaunch``) is killed, ``kill -9`` included, an
engine it started would run on as an orphan, and a rerun of the same Firework would find
the run directory busy. Engines are therefore started through util-linux ``setpriv
--pdeathsig TERM`` (util-linux 2.33 or newer): the kernel sends them SIGTERM when their
parent dies. mdrun answers SIGTERM by writing a checkpoint and stopping, so the rerun
continues from it; LAMMPS stops and the rerun continues from its last restart file.
``setpriv`` execs the engine, so the process id Custodian records is the engine's own.

The signal follows the parent *thread* that started the engine (Linux semantics):
Custodian starts engines from the thread that runs the job, which lives as long as the
job. Without a working ``setpriv --pdeathsig`` (not Linux, no util-linux, or one older
than 2.33, checked once by running it) commands run unchanged.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence


@functools.cache
def _setpriv() -> str | None:
    """The ``setpriv`` executable if it supports ``--pdeathsig``, else None."""
    exe = shutil.which("setpriv")
    if exe is None:
        return None
    try:
        ok = subprocess.run([exe, "--pdeathsig", "TERM", "--", "true"],  # noqa: S603
                            capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return exe if ok else None


def tied_to_parent(cmd: Sequence[str]) -> list[str]:
    """``cmd`` run so that it receives SIGTERM when the process starting it dies."""
    exe = _setpriv()
    if exe is None:
        return list(cmd)
    return [exe, "--pdeathsig", "TERM", "--", *cmd]
