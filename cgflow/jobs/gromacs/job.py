"""GROMACS under Custodian: the stage job and :func:`run_stage`.

:class:`GromacsJob` runs one stage (``em``, ``nvt``, ``npt``, ``production``) in a run
directory with ``-deffnm`` the stage's file stem (``em``, ``nvt``, ``npt``, ``prod``):
grompp (synchronously) then mdrun (returned to Custodian as the process it polls).
:func:`run_stage` runs the job under Custodian with the handlers of
:mod:`cgflow.jobs.gromacs.handlers` and :class:`~cgflow.jobs.gromacs.validators.
GromacsOutputValidator`, in place (no scratch directory, no gzip, no Custodian
checkpoint tarballs), and returns a :class:`StageReport`. A failure that no handler can
correct raises :class:`~cgflow.errors.EngineError` naming the stage, the handler that
gave up and the GROMACS error text.

Files of a stage ``<deffnm>`` in the run directory, besides GROMACS' own
(``.tpr .log .edr .xtc .gro .cpt _prev.cpt``; see :mod:`cgflow.jobs.gromacs.state`)::

    <deffnm>.gmxjob.json     run state shared with the handlers (attempts, plan, dt)
    <deffnm>.grompp.out      output of the last grompp
    <deffnm>.mdrun.out       stdout and stderr of the current mdrun attempt
    <deffnm>_retry<k>.mdp    mdp corrected by a handler (the user's mdp is never changed)
    <deffnm>_premin.*        minimisation inserted by a handler before the stage
    attempts/<deffnm>-<k>/   outputs of attempt k, set aside by a correction
    custodian.json           Custodian's run log of the last stage run

Units: GROMACS units (ps, nm, kJ/mol); ``maxh`` in hours and ``cpt_minutes`` in minutes
as mdrun takes them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from custodian.custodian import (
    Custodian,
    CustodianError,
    ErrorHandler,
    Job,
    MaxCorrectionsError,
    MaxCorrectionsPerJobError,
    NonRecoverableError,
    ReturnCodeError,
    ValidationError,
    Validator,
)
from pydantic import BaseModel, ConfigDict

from cgflow.engines import gromacs as eng
from cgflow.engines import gromacs_output as gout
from cgflow.errors import EngineError, InvalidInputError, full_disk_note, write_failure
from cgflow.jobs.common import gave_up_reason, run_log_corrections
from cgflow.jobs.gromacs import state as rd
from cgflow.jobs.gromacs.handlers import (
    BlowUpHandler,
    CheckpointContinueHandler,
    GromppErrorHandler,
)
from cgflow.jobs.gromacs.validators import GromacsOutputValidator, stage_problems
from cgflow.jobs.lifetime import tied_to_parent

logger = logging.getLogger(__name__)

#: Outputs of mdrun that a fresh attempt must not find from an earlier run.
_STALE_OUTPUTS = (".log", ".edr", ".xtc", ".trr", ".gro", ".cpt")


def stage_names(stage: str) -> tuple[str, str]:
    """``(stage, deffnm)`` from a stage name or a file stem (``"prod"`` -> production).

    Raises
    ------
    InvalidInputError
        For an unknown name.
    """
    if stage in eng.STAGE_DEFFNM:
        return stage, eng.STAGE_DEFFNM[stage]
    for name, deffnm in eng.STAGE_DEFFNM.items():
        if stage == deffnm:
            return name, deffnm
    raise InvalidInputError(
        f"field 'stage': unknown value {stage!r} (expected one of {list(eng.STAGE_DEFFNM)} "
        f"or their file stems {list(eng.STAGE_DEFFNM.values())})"
    )


def _gmx_env() -> dict[str, str]:
    return {**os.environ, **eng.GMX_ENV}


def _arg(d: Path, path: Path) -> str:
    """``path`` for a gmx command run in ``d``: relative when inside ``d`` (so that
    GROMACS' messages name files as the run directory holds them), else absolute."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(d.resolve()))
    except ValueError:
        return str(path.resolve())


class _MdrunProcess(subprocess.Popen):
    """An mdrun process that reports its exit code (to the run state) once it is known.

    Custodian learns the end of the process through :meth:`poll` or :meth:`wait`; the
    handlers, which run next, read the exit code from the run state.
    """

    def __init__(self, args: list[str], *, on_exit: Callable[[int], None], **kwargs) -> None:
        self._on_exit = on_exit
        self._exit_reported = False
        super().__init__(args, **kwargs)  # noqa: S603

    def _report(self, rc: int | None) -> None:
        if rc is not None and not self._exit_reported:
            self._exit_reported = True
            self._on_exit(rc)

    def poll(self) -> int | None:
        rc = super().poll()
        self._report(rc)
        return rc

    def wait(self, timeout: float | None = None) -> int:
        rc = super().wait(timeout=timeout)
        self._report(rc)
        return rc


class GromacsJob(Job):
    """One GROMACS stage in a run directory, as a Custodian job.

    Parameters
    ----------
    stage
        Stage name (``em``, ``nvt``, ``npt``, ``production``) or file stem (``prod``).
    mdp, conf, top
        The stage's mdp, input configuration (.gro) and topology; absolute, or relative
        to the run directory.
    checkpoint_in
        Checkpoint of the previous stage, passed to ``grompp -t`` (velocities, box).
    threads
        OpenMP threads of mdrun (one thread-MPI rank).
    maxh
        mdrun ``-maxh``: wall-time limit in hours, after which mdrun writes a checkpoint
        and stops (:class:`~cgflow.jobs.gromacs.handlers.CheckpointContinueHandler`
        continues it).
    cpt_minutes
        mdrun ``-cpt``: checkpoint interval in minutes (0: at every neighbour-search
        step, for tests).
    maxwarn
        grompp ``-maxwarn``.
    resume
        When the run directory holds an earlier attempt of this stage with the same
        inputs (fingerprint in the run state): finish nothing if its outputs are already
        complete, else continue from ``<deffnm>.cpt`` with ``mdrun -cpi`` (no grompp),
        else follow the plan it left. Without a run state, an existing ``<deffnm>.cpt``
        and ``<deffnm>.tpr`` are continued as they are. ``False`` always starts afresh
        (earlier outputs move to ``attempts/``).
    """

    def __init__(
        self, stage: str, mdp: str, conf: str, top: str, checkpoint_in: str | None = None,
        threads: int = 1, maxh: float = 24.0, cpt_minutes: float = eng.CPT_MINUTES,
        maxwarn: int = 0, resume: bool = True,
    ) -> None:
        self.stage_name, self.deffnm = stage_names(stage)
        if not isinstance(threads, int) or threads < 1:
            raise InvalidInputError(f"field 'threads': must be an integer >= 1, got {threads!r}")
        if not (isinstance(maxh, int | float) and maxh > 0):
            raise InvalidInputError(f"field 'maxh': must be > 0 hours, got {maxh!r}")
        if not (isinstance(cpt_minutes, int | float) and cpt_minutes >= 0):
            raise InvalidInputError(
                f"field 'cpt_minutes': must be >= 0 minutes, got {cpt_minutes!r}")
        if not isinstance(maxwarn, int) or maxwarn < 0:
            raise InvalidInputError(f"field 'maxwarn': must be an integer >= 0, got {maxwarn!r}")
        self.stage = stage
        self.mdp = str(mdp)
        self.conf = str(conf)
        self.top = str(top)
        self.checkpoint_in = None if checkpoint_in is None else str(checkpoint_in)
        self.threads = threads
        self.maxh = float(maxh)
        self.cpt_minutes = float(cpt_minutes)
        self.maxwarn = maxwarn
        self.resume = resume
        self.process: _MdrunProcess | None = None
        self.command: list[str] | None = None
        self.already_complete = False
        self.n_started = 0

    @property
    def name(self) -> str:
        return f"GromacsJob({self.deffnm})"

    # --- inputs ----------------------------------------------------------------------

    def _inputs(self, d: Path) -> dict[str, Path]:
        files = {"mdp": self.mdp, "conf": self.conf, "top": self.top}
        if self.checkpoint_in is not None:
            files["checkpoint_in"] = self.checkpoint_in
        return {k: rd.resolve(d, v) for k, v in files.items()}

    def fingerprint(self, directory="./") -> str:
        """SHA-256 over the stage, the input files' contents and ``maxwarn``."""
        h = hashlib.sha256(f"{self.stage_name}|{self.deffnm}|{self.maxwarn}".encode())
        for key, path in sorted(self._inputs(Path(directory)).items()):
            h.update(f"|{key}|".encode())
            h.update(path.read_bytes())
        return h.hexdigest()

    def _new_state(self, d: Path, fingerprint: str) -> rd.RunState:
        opts = eng.read_mdp(rd.resolve(d, self.mdp))
        dynamics = eng.mdp_integrator(opts) not in eng.MINIMISERS
        dt = [eng.mdp_float(opts, "dt", 0.001)] if dynamics else []
        checkpoint = None if self.checkpoint_in is None else \
            _arg(d, rd.resolve(d, self.checkpoint_in))
        return rd.RunState(stage=self.stage_name, deffnm=self.deffnm, fingerprint=fingerprint,
                           plan=rd.RunPlan(mode="fresh", mdp=_arg(d, rd.resolve(d, self.mdp)),
                                           checkpoint=checkpoint),
                           dt_history_ps=dt)

    # --- Custodian interface ------------------------------------------------------------

    def setup(self, directory="./") -> None:
        """Check the inputs and write the run state (resuming an earlier attempt if due).

        Raises
        ------
        InvalidInputError
            If an input file is missing (naming the field and path).
        EngineError
            If an mdrun of this stage is still running in the directory.
        """
        d = Path(directory)
        for key, path in self._inputs(d).items():
            if not path.is_file():
                raise InvalidInputError(f"field '{key}': file {path} does not exist")
        fp = self.fingerprint(d)
        state = rd.load_state(d, self.deffnm)
        cpt, tpr = d / f"{self.deffnm}.cpt", d / f"{self.deffnm}.tpr"
        if state is not None and state.phase == "mdrun" and state.returncode is None \
                and rd.process_alive(state.pid) and _is_mdrun_in(state.pid, d):
            raise EngineError(f"stage {self.deffnm} in {d} is already being run by mdrun "
                              f"process {state.pid}")
        self.already_complete = False
        if self.resume and state is not None and state.fingerprint == fp:
            if not stage_problems(d, self.deffnm):
                state.plan = state.plan.model_copy(update={"mode": "complete"})
                state.phase = "complete"
                self.already_complete = True
                logger.info("%s: outputs in %s already complete", self.name, d)
            elif state.plan.mode == "complete":
                state = self._new_state(d, fp)  # was complete, outputs gone since: afresh
            elif state.phase == "mdrun" and cpt.exists() and tpr.exists():
                state.plan = state.plan.model_copy(update={"mode": "continue"})
                state.phase = "corrected"
                logger.info("%s: continuing the interrupted attempt from %s", self.name, cpt)
            elif state.phase in ("mdrun", "grompp_failed", "complete"):
                state.phase = "corrected"
        elif self.resume and state is None and cpt.exists() and tpr.exists():
            state = self._new_state(d, fp)
            state.plan = state.plan.model_copy(update={"mode": "continue"})
            logger.info("%s: no run state, continuing %s", self.name, cpt)
        else:
            state = self._new_state(d, fp)
        rd.save_state(d, state)

    def run(self, directory="./") -> subprocess.Popen | None:
        """grompp (unless continuing) then start mdrun; returns the mdrun process.

        Returns None without starting mdrun when the outputs are already complete, or
        when grompp failed: the run state then says ``grompp_failed`` with the message of
        :func:`~cgflow.engines.gromacs_output.grompp_failure_message`, which
        :class:`~cgflow.jobs.gromacs.handlers.GromppErrorHandler` turns into Custodian's
        non-recoverable error.

        Raises
        ------
        EngineError
            If a minimisation inserted by a correction fails.
        """
        d = Path(directory)
        state = rd.load_state(d, self.deffnm)
        if state is None:
            raise EngineError(f"{self.name}: no run state in {d}; setup() was not run")
        plan = state.plan
        if plan.mode == "complete":
            return None
        self._keep_previous_mdrun_output(d, state)
        if plan.mode == "continue":
            info = gout.checkpoint_info(d / f"{self.deffnm}.cpt")
            state.continued_from_steps.append(info.step)
            cmd = eng.mdrun_command(self.deffnm, threads=self.threads, maxh=self.maxh,
                                    checkpoint_in=f"{self.deffnm}.cpt",
                                    cpt_minutes=self.cpt_minutes)
            if "-append" not in cmd:
                cmd.append("-append")
        else:
            stale = [d / f"{self.deffnm}{ext}" for ext in _STALE_OUTPUTS] + \
                [d / f"{self.deffnm}_prev.cpt"]
            if any(p.exists() for p in stale):
                rd.set_attempt_aside(d, self.deffnm, state.attempt)
            conf = rd.resolve(d, self.conf)
            if plan.premin_steps > 0:
                conf = self._minimise(d, plan)
            tpr = d / f"{self.deffnm}.tpr"
            checkpoint = _arg(d, rd.resolve(d, plan.checkpoint)) if plan.checkpoint else None
            gcmd = eng.grompp_command(_arg(d, rd.resolve(d, plan.mdp)), _arg(d, conf),
                                      _arg(d, rd.resolve(d, self.top)), tpr.name,
                                      checkpoint=checkpoint, maxwarn=self.maxwarn)
            self.command = gcmd
            res = subprocess.run(  # noqa: S603
                gcmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env=_gmx_env(), check=False,
            )
            (d / f"{self.deffnm}{rd.GROMPP_OUT_SUFFIX}").write_text(res.stdout)
            if res.returncode != 0 or not tpr.exists():
                state.phase = "grompp_failed"
                state.grompp_failure = gout.grompp_failure_message(
                    res.stdout, d, rd.resolve(d, self.top), res.returncode)
                rd.save_state(d, state)
                logger.error("%s: %s", self.name, state.grompp_failure)
                return None
            cmd = eng.mdrun_command(self.deffnm, threads=self.threads, maxh=self.maxh,
                                    cpt_minutes=self.cpt_minutes)
        self.command = cmd
        self.n_started += 1
        state.attempt += 1
        state.phase, state.returncode, state.grompp_failure = "mdrun", None, None
        with (d / f"{self.deffnm}{rd.MDRUN_OUT_SUFFIX}").open("w") as out:
            self.process = _MdrunProcess(
                tied_to_parent(cmd), on_exit=lambda rc: self._record_exit(d, rc), cwd=d, stdout=out,
                stderr=subprocess.STDOUT, env=_gmx_env(),
            )
        state.pid = self.process.pid
        rd.save_state(d, state)
        logger.info("%s: attempt %d: %s", self.name, state.attempt, " ".join(cmd))
        return self.process

    def postprocess(self, directory="./") -> None:
        """Join the trajectory and energy files of restarted segments; mark complete."""
        d = Path(directory)
        state = rd.load_state(d, self.deffnm)
        if state is None:
            return
        if state.segments and not state.segments_joined:
            self._join_segments(d, state)
            state.segments_joined = True
        state.phase = "complete"
        rd.save_state(d, state)

    def terminate(self, directory="./") -> None:
        """Kill the job's own mdrun (SIGKILL) and wait for it.

        Not SIGTERM: mdrun answers it by writing a checkpoint at the next
        neighbour-search step, which after a blow-up would overwrite the last good
        checkpoint with the blown-up state (and a hung mdrun never gets there).
        """
        p = self.process
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(timeout=120)

    # --- helpers -------------------------------------------------------------------------

    def _record_exit(self, d: Path, rc: int) -> None:
        state = rd.load_state(d, self.deffnm)
        if state is not None and self.process is not None and state.pid == self.process.pid:
            state.returncode = rc
            rd.save_state(d, state)

    def _keep_previous_mdrun_output(self, d: Path, state: rd.RunState) -> None:
        out = d / f"{self.deffnm}{rd.MDRUN_OUT_SUFFIX}"
        if out.exists() and state.attempt > 0:
            dest = rd.attempt_dir(d, self.deffnm, state.attempt)
            shutil.move(str(out), str(dest / out.name))

    def _minimise(self, d: Path, plan: rd.RunPlan) -> Path:
        """Run the minimisation the plan inserts; returns its final configuration."""
        name = f"{self.deffnm}_premin"
        mdp = d / f"{name}.mdp"
        mdp.write_text(eng.minimisation_mdp(
            eng.read_mdp(rd.resolve(d, plan.mdp)), plan.premin_steps,
            title="steepest-descent minimisation inserted before the stage by BlowUpHandler"))
        eng.run_command(eng.grompp_command(mdp.name, _arg(d, rd.resolve(d, self.conf)),
                                           _arg(d, rd.resolve(d, self.top)), f"{name}.tpr",
                                           maxwarn=self.maxwarn),
                        d, f"{name}{rd.GROMPP_OUT_SUFFIX}", env=eng.GMX_ENV)
        eng.run_command(eng.mdrun_command(name, threads=self.threads, maxh=self.maxh,
                                          cpt_minutes=self.cpt_minutes),
                        d, f"{name}{rd.MDRUN_OUT_SUFFIX}", env=eng.GMX_ENV)
        gro = d / f"{name}.gro"
        if not gro.exists():
            raise EngineError(f"{self.name}: the inserted minimisation wrote no {gro.name} in {d}")
        return gro

    def _join_segments(self, d: Path, state: rd.RunState) -> None:
        """Join each earlier segment's frames before its end time with the last segment's
        outputs (``gmx trjconv``/``eneconv -e`` to cut, ``trjcat``/``eneconv`` to join)."""
        gmx = eng.find_gmx()
        tools = {".xtc": ("trjconv", "trjcat"), ".edr": ("eneconv", "eneconv")}
        for ext, (cut_tool, join_tool) in tools.items():
            current = d / f"{self.deffnm}{ext}"
            if not current.exists():
                continue
            parts: list[Path] = []
            for seg in state.segments:
                src = d / f"{seg.prefix}{ext}"
                if not src.exists():
                    continue
                cut = src.with_name(f"{src.stem}.cut{ext}")
                # -e is inclusive: keep frames strictly before the restart time
                eng.run_command([gmx, cut_tool, "-f", src, "-e", f"{seg.t_end_ps - 1e-4:.6f}",
                                 "-o", cut], d, src.with_name(f"{src.stem}.cut.out"),
                                input_text="", env=eng.GMX_ENV)
                if cut.exists() and cut.stat().st_size > 0:
                    parts.append(cut)
            if not parts:
                continue
            joined = d / f"{self.deffnm}.joined{ext}"
            eng.run_command([gmx, join_tool, "-f", *parts, current, "-o", joined], d,
                            f"{self.deffnm}.join{ext}.out", input_text="", env=eng.GMX_ENV)
            os.replace(joined, current)
            logger.info("%s: joined %d earlier segment(s) into %s", self.name, len(parts),
                        current.name)


def _is_mdrun_in(pid: int | None, d: Path) -> bool:
    """Whether ``pid`` is an mdrun working in ``d`` (Linux /proc; False if unknown)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return b"mdrun" in cmdline and cwd.resolve() == d.resolve()


# --- running a stage -----------------------------------------------------------------------


class StageReport(BaseModel):
    """What :func:`run_stage` did.

    Attributes
    ----------
    stage, deffnm, run_dir
        The stage, its file stem, and the run directory.
    wall_s
        Wall time of the whole supervised stage (all attempts, grompp included), s.
    ns_per_day
        mdrun's performance figure of the final log (None for a minimisation).
    final_dt_ps
        Time step of the final attempt, ps (None for a minimisation).
    dt_history_ps
        Time steps used in order, ps (one entry if never halved).
    attempts
        mdrun processes started (0 when the outputs were already complete).
    corrections
        One dict per correction: ``handler`` (class name), ``errors``, ``actions``.
    continued_from_steps
        Checkpoint steps that ``mdrun -cpi`` continued from.
    last_step
        Last step of the final log.
    already_complete
        The outputs were complete before the call (resume): nothing ran.
    """

    model_config = ConfigDict(extra="forbid")

    stage: str
    deffnm: str
    run_dir: str
    wall_s: float
    ns_per_day: float | None
    final_dt_ps: float | None
    dt_history_ps: list[float]
    attempts: int
    corrections: list[dict]
    continued_from_steps: list[int]
    last_step: int | None
    already_complete: bool


def default_handlers(deffnm: str, *, stall_s: float | None = 1800.0) -> list[ErrorHandler]:
    """grompp errors, blow-ups (also a monitor), checkpoint continuation, in this order."""
    return [GromppErrorHandler(deffnm), BlowUpHandler(deffnm, stall_s=stall_s),
            CheckpointContinueHandler(deffnm)]


def run_stage(
    run_dir: str | Path, stage: str, mdp: str | Path, conf: str | Path, top: str | Path, *,
    checkpoint_in: str | Path | None = None, threads: int, maxh: float, max_errors: int = 10,
    cpt_minutes: float = eng.CPT_MINUTES, maxwarn: int = 0, resume: bool = True,
    handlers: list[ErrorHandler] | None = None, validators: list[Validator] | None = None,
    polling_s: float = 1.0, monitor_interval_s: float = 30.0, stall_s: float | None = None,
) -> StageReport:
    """Run one GROMACS stage under Custodian, correcting what the handlers can.

    Parameters
    ----------
    run_dir
        The run directory (all stages of a parameter set share it).
    stage
        ``em``, ``nvt``, ``npt``, ``production`` (or the file stem ``prod``).
    mdp, conf, top, checkpoint_in, threads, maxh, cpt_minutes, maxwarn, resume
        See :class:`GromacsJob`.
    max_errors
        Corrections allowed in total (continuations after ``-maxh`` count too).
    handlers, validators
        Default :func:`default_handlers` and one
        :class:`~cgflow.jobs.gromacs.validators.GromacsOutputValidator`.
    polling_s
        Seconds between Custodian's checks whether mdrun ended.
    monitor_interval_s
        Seconds between blow-up checks of the running mdrun.
    stall_s
        Seconds without output after which a running mdrun counts as hung; default the
        larger of 30 min and three checkpoint intervals.

    Returns
    -------
    StageReport

    Raises
    ------
    InvalidInputError
        Unknown stage, missing input file, bad settings.
    EngineError
        When the stage fails in a way the handlers cannot correct: the stage, the handler
        that gave up or the validator's findings, the GROMACS error text, the command and
        exit code, and the tail of the log; when the run directory cannot be written
        (a full disk), the system's reason, the directory and the free space.
    """
    d = Path(run_dir).resolve()
    if not d.is_dir():
        raise InvalidInputError(f"field 'run_dir': {d} is not a directory")
    if not isinstance(max_errors, int) or max_errors < 1:
        raise InvalidInputError(f"field 'max_errors': must be an integer >= 1, got {max_errors!r}")
    if not polling_s > 0 or not monitor_interval_s > 0:
        raise InvalidInputError(f"fields 'polling_s', 'monitor_interval_s': must be > 0, got "
                                f"{polling_s!r}, {monitor_interval_s!r}")
    job = GromacsJob(stage, str(mdp), str(conf), str(top),
                     None if checkpoint_in is None else str(checkpoint_in), threads=threads,
                     maxh=maxh, cpt_minutes=cpt_minutes, maxwarn=maxwarn, resume=resume)
    if stall_s is None:
        stall_s = max(1800.0, 3.0 * 60.0 * cpt_minutes)
    if handlers is None:
        handlers = default_handlers(job.deffnm, stall_s=stall_s)
    if validators is None:
        validators = [GromacsOutputValidator(job.deffnm)]
    c = Custodian(handlers, [job], validators=validators, max_errors=max_errors,
                  polling_time_step=polling_s,
                  monitor_freq=max(1, round(monitor_interval_s / polling_s)),
                  scratch_dir=None, gzipped_output=False, checkpoint=False,
                  terminate_on_nonzero_returncode=True, directory=str(d))
    t0 = time.monotonic()
    try:
        run_log = c.run()
    except CustodianError as exc:
        raise EngineError(_failure_message(exc, c, job, d)) from exc
    except EngineError as exc:
        raise EngineError(f"GROMACS stage {job.stage_name} ({job.deffnm}) in {d}: {exc}") from exc
    except OSError as exc:  # the run directory cannot be written (full disk, read-only)
        raise EngineError(f"GROMACS stage {job.stage_name} ({job.deffnm}) failed: "
                          f"{write_failure(exc, d)}") from exc
    finally:
        job.terminate(str(d))
    wall = time.monotonic() - t0
    state = rd.load_state(d, job.deffnm)
    info = gout.parse_md_log(d / f"{job.deffnm}.log")
    opts = eng.read_mdp(rd.resolve(d, state.plan.mdp)) if state is not None else {}
    dynamics = eng.mdp_integrator(opts) not in eng.MINIMISERS if opts else True
    return StageReport(
        stage=job.stage_name, deffnm=job.deffnm, run_dir=str(d), wall_s=wall,
        ns_per_day=info.ns_per_day if dynamics else None,
        final_dt_ps=eng.mdp_float(opts, "dt", 0.001) if dynamics and opts else None,
        dt_history_ps=list(state.dt_history_ps) if state is not None else [],
        attempts=job.n_started,
        corrections=run_log_corrections(run_log),
        continued_from_steps=list(state.continued_from_steps) if state is not None else [],
        last_step=info.last_step, already_complete=job.already_complete,
    )


def _failure_message(exc: CustodianError, c: Custodian, job: GromacsJob, d: Path) -> str:
    lines = [f"GROMACS stage {job.stage_name} ({job.deffnm}) in {d} failed: "
             f"{type(exc).__name__}: {exc}"]
    note = full_disk_note(d)
    if note:
        lines.append(note[0].upper() + note[1:])
    corrections = run_log_corrections(c.run_log)
    if isinstance(exc, NonRecoverableError):
        name = type(exc.handler).__name__
        lines.append(f"handler {name} gave up: {gave_up_reason(corrections, name) or ''}")
    elif isinstance(exc, ValidationError):
        problems = getattr(exc.validator, "problems", None)
        lines.append(f"validator {type(exc.validator).__name__} failed: {problems}")
    elif isinstance(exc, ReturnCodeError):
        lines.append("no handler recognised the failure")
    elif isinstance(exc, MaxCorrectionsError | MaxCorrectionsPerJobError):
        lines.append("too many corrections (raise max_errors if the run is only long)")
    applied = [cc for cc in corrections if cc["actions"]]
    if applied:
        lines.append("corrections applied before: " + "; ".join(
            f"{cc['handler']}: {(cc['actions'][0] or {}).get('action', '?')}" for cc in applied))
    out = gout.read_text(d / f"{job.deffnm}{rd.MDRUN_OUT_SUFFIX}", max_bytes=200_000)
    log = gout.read_text(d / f"{job.deffnm}.log", max_bytes=200_000)
    err = gout.gromacs_error_text(out) or gout.gromacs_error_text(log)
    lines.append(f"GROMACS error: {err}" if err else "GROMACS error: none reported")
    if job.command:
        code = job.process.returncode if job.process is not None else None
        lines.append(f"command: {' '.join(map(str, job.command))} (exit code {code})")
    state_file = rd.state_path(d, job.deffnm)
    if state_file.exists():
        lines.append(f"run state: {state_file}")
    tail = eng.text_tail(log or out, 25)
    if tail:
        lines.append(f"--- tail of {job.deffnm}.log ---\n{tail}")
    return "\n".join(lines)
