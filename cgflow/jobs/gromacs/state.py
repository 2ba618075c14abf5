"""What the GROMACS job and its error handlers read from and write to a run directory.

A stage (``em``, ``nvt``, ``npt``, ``production``) runs in a run directory under the
file stem ``deffnm`` (see :data:`cgflow.engines.gromacs.STAGE_DEFFNM`). Besides GROMACS'
own files (read by :mod:`cgflow.engines.gromacs_output`), a supervised stage keeps:

=============================  ==============================================================
``<deffnm>.gmxjob.json``       :data:`STATE_SUFFIX`: the **run state** (:class:`RunState`)
                               shared by the job and the handlers: the attempt count, the
                               phase (grompp failed, mdrun started, ...), the mdrun process
                               and exit code, and the **plan** of the next attempt
                               (:class:`RunPlan`: start afresh from the stage input, restart
                               from a checkpoint through grompp, or continue with ``mdrun
                               -cpi``).
``<deffnm>.grompp.out``        :data:`GROMPP_OUT_SUFFIX`: output of the last grompp.
``<deffnm>.mdrun.out``         :data:`MDRUN_OUT_SUFFIX`: stdout and stderr of the current
                               mdrun attempt.
``<deffnm>_retry<k>.mdp``      an mdp corrected by a handler (the user's inputs are never
                               changed).
``attempts/<deffnm>-<k>/``     :data:`ATTEMPTS_DIR`: the outputs of attempt ``k``, set aside
                               by a correction (:func:`set_attempt_aside`).
=============================  ==============================================================

Paths in the run state are relative to the run directory unless absolute
(:func:`resolve`).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cgflow.errors import EngineError

# --- file names --------------------------------------------------------------------------

#: Suffix of the run state shared by the job and the handlers.
STATE_SUFFIX = ".gmxjob.json"
#: Suffix of the merged stdout/stderr of the current mdrun attempt.
MDRUN_OUT_SUFFIX = ".mdrun.out"
#: Suffix of the merged stdout/stderr of the last grompp.
GROMPP_OUT_SUFFIX = ".grompp.out"
#: Folder (in the run directory) that receives the outputs of failed attempts.
ATTEMPTS_DIR = "attempts"

#: Output extensions of one mdrun attempt (moved together when an attempt is set aside).
ATTEMPT_OUTPUTS = (".log", ".edr", ".xtc", ".trr", ".gro", ".cpt", ".tpr", MDRUN_OUT_SUFFIX)


def state_path(directory: str | Path, deffnm: str) -> Path:
    """Path of the run state of stage ``deffnm``."""
    return Path(directory) / f"{deffnm}{STATE_SUFFIX}"


def resolve(directory: str | Path, name: str | Path) -> Path:
    """``name`` if absolute, else relative to ``directory``."""
    p = Path(name)
    return p if p.is_absolute() else Path(directory) / p


# --- run state ---------------------------------------------------------------------------


class RunPlan(BaseModel):
    """What the next attempt of a stage does.

    Attributes
    ----------
    mode
        ``fresh``: grompp the stage input (``conf``, with ``checkpoint`` to ``-t`` if set)
        and run mdrun. ``restart``: the same, from a checkpoint of an earlier attempt with
        a corrected mdp (a new segment of the stage). ``continue``: ``mdrun -cpi
        <deffnm>.cpt`` on the existing tpr, appending to the outputs. ``complete``: the
        outputs are already complete, nothing to run.
    mdp
        The mdp passed to grompp (the user's, or a corrected ``<deffnm>_retry<k>.mdp``).
    checkpoint
        Checkpoint for ``grompp -t`` (velocities, box and positions), or None.
    premin_steps
        If > 0, a steepest-descent minimisation of ``conf`` with this many steps runs
        before grompp, and the stage starts from its result.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["fresh", "restart", "continue", "complete"] = "fresh"
    mdp: str
    checkpoint: str | None = None
    premin_steps: int = Field(default=0, ge=0)


class Segment(BaseModel):
    """An earlier attempt of the stage whose outputs are part of the stage's result.

    A restart from a checkpoint at time ``t_end_ps`` keeps the trajectory and energy
    frames of this attempt strictly before ``t_end_ps``; the job joins them with the
    later segments when the stage completes.
    """

    model_config = ConfigDict(extra="forbid")

    prefix: str  # run-directory-relative path without extension, e.g. attempts/nvt-1/nvt
    t_end_ps: float


class RunState(BaseModel):
    """State of one stage in its run directory (``<deffnm>.gmxjob.json``).

    Attributes
    ----------
    stage, deffnm
        Stage name and file stem.
    fingerprint
        Hash of the stage's inputs (mdp, conf, topology, input checkpoint, maxwarn); a
        resumed job only trusts a state with the same fingerprint.
    attempt
        mdrun processes started so far.
    phase
        ``new`` (nothing ran yet), ``grompp_failed``, ``mdrun`` (an mdrun was started;
        ``returncode`` is its exit code once known), ``corrected`` (a handler changed
        the plan; the next attempt has not started), ``complete``.
    pid, returncode
        Process id and exit code of the last mdrun (None while it runs or if unknown).
    plan
        The plan of the current or next attempt.
    grompp_failure
        The grompp error message when ``phase == "grompp_failed"``.
    dt_history_ps
        Time steps used, in order (dynamics only; empty for minimisation).
    emstep_history_nm
        ``emstep`` values used (minimisation only).
    segments
        Earlier attempts whose outputs make the beginning of the stage's result.
    segments_joined
        Their trajectory and energy frames were joined into the stage's files.
    continued_from_steps
        Checkpoint steps of each ``mdrun -cpi`` continuation.
    n_blowup_corrections, n_continuations
        Corrections applied by the handlers
        :class:`~cgflow.jobs.gromacs.handlers.BlowUpHandler` /
        :class:`~cgflow.jobs.gromacs.handlers.CheckpointContinueHandler` (kept here so
        that their limits hold across processes).
    """

    model_config = ConfigDict(extra="forbid")

    stage: str
    deffnm: str
    fingerprint: str = ""
    attempt: int = 0
    phase: Literal["new", "grompp_failed", "mdrun", "corrected", "complete"] = "new"
    pid: int | None = None
    returncode: int | None = None
    plan: RunPlan
    grompp_failure: str | None = None
    dt_history_ps: list[float] = Field(default_factory=list)
    emstep_history_nm: list[float] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    segments_joined: bool = False
    continued_from_steps: list[int] = Field(default_factory=list)
    n_blowup_corrections: int = 0
    n_continuations: int = 0


def load_state(directory: str | Path, deffnm: str) -> RunState | None:
    """The run state of stage ``deffnm`` in ``directory``, or None if there is none.

    Raises
    ------
    EngineError
        If the file exists but cannot be read as a run state.
    """
    path = state_path(directory, deffnm)
    if not path.exists():
        return None
    try:
        return RunState.model_validate_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise EngineError(f"run state {path} cannot be read: {exc}") from None


def save_state(directory: str | Path, state: RunState) -> Path:
    """Write ``state`` atomically (temporary file then rename)."""
    path = state_path(directory, state.deffnm)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state.model_dump_json(indent=2) + "\n")
    os.replace(tmp, path)
    return path


def process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` (the run state's mdrun) exists and is not a zombie."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


# --- attempts ----------------------------------------------------------------------------


def attempt_dir(directory: str | Path, deffnm: str, attempt: int) -> Path:
    """The folder ``attempts/<deffnm>-<attempt>/`` of an attempt's outputs (created)."""
    dest = Path(directory) / ATTEMPTS_DIR / f"{deffnm}-{attempt}"
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def set_attempt_aside(directory: str | Path, deffnm: str, attempt: int) -> Path:
    """Move the outputs of attempt ``attempt`` to ``attempts/<deffnm>-<attempt>/``.

    Moves ``<deffnm>.{log,edr,xtc,trr,gro,cpt,tpr,mdrun.out}``, ``<deffnm>_prev.cpt`` and
    the ``step<N>{b,c}.pdb`` snapshots that mdrun writes on LINCS/SETTLE failures, where
    they exist, keeping their names. Returns the folder.
    """
    d = Path(directory)
    dest = attempt_dir(d, deffnm, attempt)
    names = [f"{deffnm}{ext}" for ext in ATTEMPT_OUTPUTS] + [f"{deffnm}_prev.cpt"]
    names += [p.name for p in d.glob("step*.pdb") if re.fullmatch(r"step\d+[bc]\.pdb", p.name)]
    for name in names:
        src = d / name
        if src.exists():
            shutil.move(str(src), str(dest / name))
    return dest
