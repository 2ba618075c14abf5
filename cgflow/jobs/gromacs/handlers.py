"""Custodian error handlers for GROMACS stages.

A stage (``em``, ``nvt``, ``npt``, ``production``) runs in a run directory under the
file stem ``deffnm``; the job and the handlers share its **run state** and plan of the
next attempt (:mod:`cgflow.jobs.gromacs.state`). The handlers read GROMACS' outputs with
:mod:`cgflow.engines.gromacs_output` (:func:`diagnose` judges the last attempt) and never
touch the user's inputs: a corrected ``.mdp`` is written next to them as
``<deffnm>_retry<k>.mdp``, and the outputs of a failed attempt move to
``attempts/<deffnm>-<k>/``.

=========================  ==============================================================
handler                    recognises and corrects
=========================  ==============================================================
GromppErrorHandler         grompp failed: not recoverable; the message names the input
                           file and line GROMACS blames and its ERROR/Fatal error text.
BlowUpHandler (monitor)    a blown-up run: LINCS/SETTLE warnings, atoms that moved too far
                           or left the domain, "The total potential energy is ... not
                           finite / extremely high", coordinates too large for the xtc
                           file, NaN/inf or absurd energies or temperatures in the log's
                           energy blocks, a crash signal (SIGSEGV, SIGBUS, SIGFPE,
                           SIGABRT), and (while it runs) an mdrun that writes nothing for
                           ``stall_s`` (with one rank, a blown-up system often hangs mdrun
                           in its pair search instead of stopping it). Dynamics: restart
                           from the last good checkpoint with the time step halved,
                           keeping the simulated end time; without one, rerun the stage
                           from its input with the time step halved, after an inserted
                           steepest-descent minimisation when the stage starts from
                           coordinates only (no ``-t`` checkpoint, e.g. NVT).
                           Minimisation: rerun with ``emstep`` halved and ``nsteps``
                           doubled. Gives up after ``max_halvings`` or below
                           ``min_dt_ps``.
CheckpointContinueHandler  a run that was killed (SIGKILL, SIGTERM, ...), stopped at
                           ``-maxh`` or otherwise ended before ``nsteps`` without an error:
                           continues from ``<deffnm>.cpt`` with ``mdrun -cpi`` (appending
                           to the outputs); without a checkpoint, reruns the attempt.
=========================  ==============================================================

Units: GROMACS units throughout (ps, nm, kJ/mol, K).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from custodian.custodian import ErrorHandler

from cgflow.engines import gromacs as eng
from cgflow.engines import gromacs_output as gout
from cgflow.errors import InvalidInputError
from cgflow.jobs.gromacs import state as rd

# --- exit codes --------------------------------------------------------------------------

#: Exit codes of a process ended by a crash signal (Popen gives -N, a shell 128 + N).
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT,
                           signal.SIGILL})
#: Exit codes of a process that was stopped from outside.
INTERRUPT_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                               signal.SIGXCPU, signal.SIGUSR1, signal.SIGUSR2})


def signal_of(returncode: int | None) -> int | None:
    """The signal that ended a process, from a Popen (-N) or shell (128 + N) exit code."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if 128 < returncode < 160:
        return returncode - 128
    return None


def signal_name(sig: int) -> str:
    """``SIGSEGV`` and so on, or ``signal N``."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


# --- time-step halving -------------------------------------------------------------------

#: GROMACS defaults of the mdp options the time-step halving rescales (in steps).
_STEP_INTERVAL_DEFAULTS = {
    "nstlog": 1000, "nstenergy": 1000, "nstcalcenergy": 100, "nstcomm": 100,
    "nstxout": 0, "nstvout": 0, "nstfout": 0, "nstxout-compressed": 0,
}


def halved_dt_updates(opts: Mapping[str, str], *, t_start_ps: float | None) -> dict[str, str]:
    """mdp updates that halve ``dt`` and keep the simulated end time and output times.

    The stage ends at ``t_end = tinit + (init-step + nsteps) dt``. The new segment starts
    at ``t_start_ps`` (a checkpoint's time; None: where the current mdp starts) with
    ``init-step = (t_start - tinit) / dt_new`` and ``nsteps = (t_end - t_start) /
    dt_new``, so that step numbers and frame times continue those of the stage. Output
    and computation intervals in steps (``nstlog``, ``nstenergy``, ``nstcalcenergy``,
    ``nstcomm``, ``nstxout``, ``nstvout``, ``nstfout``, ``nstxout-compressed``, and
    ``nsttcouple``/``nstpcouple`` when set) are doubled so that they stay the same in ps.
    ``nsteps = -1`` (no limit) stays -1.
    """
    dt = eng.mdp_float(opts, "dt", 0.001)
    tinit = eng.mdp_float(opts, "tinit", 0.0)
    init_step = eng.mdp_int(opts, "init-step", 0)
    nsteps = eng.mdp_int(opts, "nsteps", 0)
    dt_new = dt / 2.0
    t0 = tinit + init_step * dt if t_start_ps is None else t_start_ps
    new_init = round((t0 - tinit) / dt_new)
    upd = {"dt": f"{dt_new:.10g}", "init-step": str(new_init)}
    if nsteps < 0:
        upd["nsteps"] = "-1"
    else:
        t_end = tinit + (init_step + nsteps) * dt
        upd["nsteps"] = str(max(0, round((t_end - tinit) / dt_new) - new_init))
    for key, default in _STEP_INTERVAL_DEFAULTS.items():
        n = eng.mdp_int(opts, key, default)
        if n > 0:
            upd[key] = str(2 * n)
    for key in ("nsttcouple", "nstpcouple"):
        n = eng.mdp_int(opts, key, -1)
        if n > 0:
            upd[key] = str(2 * n)
    return upd


# --- diagnosis ---------------------------------------------------------------------------


@dataclass
class Diagnosis:
    """What the last attempt of a stage left, as the handlers see it.

    ``kind``: ``none`` (nothing to judge: no attempt, or already corrected),
    ``grompp_failed``, ``running``, ``blowup``, ``interrupted`` (killed, stopped at
    ``-maxh`` or early without an error), ``error`` (another GROMACS error: no handler
    corrects it), ``complete``.
    """

    kind: Literal["none", "grompp_failed", "running", "blowup", "interrupted", "error",
                  "complete"]
    evidence: list[str] = field(default_factory=list)
    returncode: int | None = None
    gromacs_error: str | None = None
    scan: gout.BlowUpScan | None = None
    facts: gout.LogFacts | None = None


@dataclass
class Thresholds:
    """Blow-up detection thresholds (see :func:`~cgflow.engines.gromacs_output.scan_blowup`)
    and the hang limit (s)."""

    max_energy_per_atom_kj_mol: float = 1.0e4
    max_temperature_factor: float = 3.0
    stall_s: float | None = 1800.0


def diagnose(directory: str | Path, deffnm: str, thresholds: Thresholds | None = None
             ) -> Diagnosis:
    """Judge the last attempt of stage ``deffnm`` from the files in ``directory``.

    Reads the run state (phase, exit code, pid), the last segment of ``<deffnm>.log`` and
    the tail of ``<deffnm>.mdrun.out``. Without a run state (outputs copied from
    elsewhere), the exit code is unknown and a log without ``Finished mdrun`` counts as
    interrupted unless it shows a blow-up or an error.
    """
    th = thresholds or Thresholds()
    d = Path(directory)
    state = rd.load_state(d, deffnm)
    if state is not None:
        if state.phase == "grompp_failed":
            return Diagnosis("grompp_failed", [state.grompp_failure or "grompp failed"])
        if state.phase in ("new", "corrected") or state.plan.mode == "complete":
            return Diagnosis("none")
    log_path = d / f"{deffnm}.log"
    full_log = gout.read_text(log_path)
    mdrun_out = gout.read_text(d / f"{deffnm}{rd.MDRUN_OUT_SUFFIX}", max_bytes=200_000)
    if state is None and not full_log and not mdrun_out:
        return Diagnosis("none")
    segment = gout.last_log_segment(full_log)
    facts = gout.log_facts(full_log)
    rc = state.returncode if state is not None else None
    running = state is not None and rc is None and rd.process_alive(state.pid)
    scan = gout.scan_blowup(segment, mdrun_out, facts,
                            max_energy_per_atom_kj_mol=th.max_energy_per_atom_kj_mol,
                            max_temperature_factor=th.max_temperature_factor)
    error = gout.gromacs_error_text(mdrun_out) or gout.gromacs_error_text(segment)
    diag = Diagnosis("none", returncode=rc, gromacs_error=error, scan=scan, facts=facts)
    if scan.evidence:
        diag.kind, diag.evidence = "blowup", list(scan.evidence)
        return diag
    sig = signal_of(rc)
    if running:
        if th.stall_s is not None:
            outputs = [d / f"{deffnm}{ext}" for ext in (".log", ".edr", ".xtc", ".trr", ".cpt",
                                                        rd.MDRUN_OUT_SUFFIX)]
            mtimes = [p.stat().st_mtime for p in outputs if p.exists()]
            silent = time.time() - max(mtimes) if mtimes else 0.0
            if silent > th.stall_s:
                diag.kind = "blowup"
                diag.evidence = [f"mdrun (pid {state.pid}) wrote nothing for {silent:.0f} s "
                                 f"(limit {th.stall_s:g} s): hung, as a blown-up system "
                                 "can hang the pair search"]
                return diag
        diag.kind = "running"
        return diag
    if sig in CRASH_SIGNALS:
        diag.kind = "blowup"
        diag.evidence = [f"mdrun crashed ({signal_name(sig)}, exit code {rc}) without a "
                         "GROMACS error: taken for a blow-up"]
        return diag
    finished = gout.mdrun_finished(segment)
    received = gout.signal_received(segment)
    if error and not (finished and rc == 0):
        diag.kind, diag.evidence = "error", [error]
        return diag
    if sig in INTERRUPT_SIGNALS:
        diag.kind = "interrupted"
        diag.evidence = [f"mdrun was stopped by {signal_name(sig)} (exit code {rc})"]
        return diag
    if received:
        diag.kind = "interrupted"
        diag.evidence = [f"mdrun received the {received} signal and stopped "
                         f"(exit code {rc})"]
        return diag
    if not finished:
        if rc not in (None, 0):
            diag.kind = "error"
            diag.evidence = [f"mdrun exited with code {rc} without 'Finished mdrun' and "
                             "without a GROMACS error"]
            return diag
        diag.kind = "interrupted"
        diag.evidence = ["md.log ends without 'Finished mdrun' (process lost: killed with "
                         "its supervisor, or exit code unknown)"]
        return diag
    if facts.is_minimisation:
        diag.kind = "complete"
        return diag
    last = gout.last_energy_step(segment)
    final = facts.final_step
    if final is not None and (last is None or last < final):
        diag.kind = "interrupted"
        why = "hit the -maxh wall-time limit" if gout.stopped_at_maxh(segment) \
            else "stopped early"
        diag.evidence = [f"mdrun {why} at step {last} of {final}"]
        return diag
    diag.kind = "complete"
    return diag


# --- handlers ----------------------------------------------------------------------------


class GromppErrorHandler(ErrorHandler):
    """grompp failed: not recoverable (a bad input needs a person, not a retry).

    :meth:`correct` returns no actions, so Custodian raises its ``NonRecoverableError``;
    the error names the input file and line GROMACS blamed and its error text.
    """

    is_monitor = False

    def __init__(self, deffnm: str) -> None:
        self.deffnm = deffnm

    def check(self, directory="./") -> bool:
        """True when the job's last grompp failed."""
        state = rd.load_state(directory, self.deffnm)
        return state is not None and state.phase == "grompp_failed"

    def correct(self, directory="./") -> dict:
        """Give up: ``actions`` is None."""
        state = rd.load_state(directory, self.deffnm)
        msg = state.grompp_failure if state is not None and state.grompp_failure else \
            "grompp failed"
        return {"errors": [msg], "actions": None}


class BlowUpHandler(ErrorHandler):
    """A blown-up, crashed or hung mdrun: restart with a halved time step.

    Parameters
    ----------
    deffnm
        File stem of the stage.
    max_halvings
        Blow-up corrections allowed for the stage (time-step or emstep halvings).
    min_dt_ps
        Smallest time step (ps) the handler goes down to (0.25 fs).
    premin_steps
        Steps of the minimisation inserted before a stage that restarts from its input
        coordinates; doubled on each further insertion.
    max_energy_per_atom_kj_mol, max_temperature_factor
        Thresholds of :func:`~cgflow.engines.gromacs_output.scan_blowup`.
    stall_s
        While mdrun runs: seconds without any output file changing after which it is taken
        for hung (None: never). Must exceed the wall time between two log outputs or
        checkpoints.
    """

    is_monitor = True

    def __init__(self, deffnm: str, max_halvings: int = 3, min_dt_ps: float = 0.00025,
                 premin_steps: int = 5000, max_energy_per_atom_kj_mol: float = 1.0e4,
                 max_temperature_factor: float = 3.0, stall_s: float | None = 1800.0) -> None:
        if max_halvings < 0:
            raise InvalidInputError(f"field 'max_halvings': must be >= 0, got {max_halvings!r}")
        if not min_dt_ps > 0:
            raise InvalidInputError(f"field 'min_dt_ps': must be > 0, got {min_dt_ps!r}")
        if premin_steps < 1:
            raise InvalidInputError(f"field 'premin_steps': must be >= 1, got {premin_steps!r}")
        self.deffnm = deffnm
        self.max_halvings = max_halvings
        self.min_dt_ps = min_dt_ps
        self.premin_steps = premin_steps
        self.max_energy_per_atom_kj_mol = max_energy_per_atom_kj_mol
        self.max_temperature_factor = max_temperature_factor
        self.stall_s = stall_s
        self.diagnosis: Diagnosis | None = None

    def _thresholds(self) -> Thresholds:
        return Thresholds(self.max_energy_per_atom_kj_mol, self.max_temperature_factor,
                          self.stall_s)

    def check(self, directory="./") -> bool:
        """True when the current or last attempt blew up, crashed or hangs."""
        self.diagnosis = diagnose(directory, self.deffnm, self._thresholds())
        return self.diagnosis.kind == "blowup"

    def correct(self, directory="./") -> dict:
        """Plan the restart (see the module docstring); no actions when out of limits."""
        d = Path(directory)
        diag = self.diagnosis or diagnose(d, self.deffnm, self._thresholds())
        state = rd.load_state(d, self.deffnm)
        errors = list(diag.evidence)
        if diag.gromacs_error:
            errors.append(diag.gromacs_error)
        if state is None:
            errors.append(f"no run state {rd.state_path(d, self.deffnm).name}: "
                          "cannot plan a restart")
            return {"errors": errors, "actions": None}
        if state.n_blowup_corrections >= self.max_halvings:
            errors.append(f"gave up after {state.n_blowup_corrections} blow-up corrections "
                          f"(max_halvings = {self.max_halvings}); time steps used (ps): "
                          f"{state.dt_history_ps or 'n/a'}, emstep (nm): "
                          f"{state.emstep_history_nm or 'n/a'}")
            return {"errors": errors, "actions": None}
        mdp_path = rd.resolve(d, state.plan.mdp)
        mdp_text = mdp_path.read_text()
        opts = eng.read_mdp(mdp_path)
        k = state.n_blowup_corrections + 1
        retry_name = f"{self.deffnm}_retry{k}.mdp"
        note = f"BlowUpHandler correction {k}"
        if eng.mdp_integrator(opts) in eng.MINIMISERS:
            return self._correct_minimisation(d, state, opts, mdp_text, retry_name, note, errors)
        dt_old = eng.mdp_float(opts, "dt", 0.001)
        dt_new = dt_old / 2.0
        if dt_new < self.min_dt_ps * (1 - 1e-9):
            errors.append(f"gave up: halving dt = {dt_old:g} ps would go below min_dt_ps = "
                          f"{self.min_dt_ps:g} ps; time steps used (ps): {state.dt_history_ps}")
            return {"errors": errors, "actions": None}
        good = self._good_checkpoint(d, diag)
        attempt_dir = rd.set_attempt_aside(d, self.deffnm, state.attempt)
        rel_attempt = attempt_dir.relative_to(d)
        action: dict = {"dt_ps": [dt_old, dt_new], "mdp": retry_name,
                        "failed_attempt_outputs": str(rel_attempt)}
        if good is not None:
            cpt = rel_attempt / good.path.name
            upd = halved_dt_updates(opts, t_start_ps=good.time_ps)
            upd.update({"continuation": "yes", "gen-vel": "no"})
            state.segments.append(rd.Segment(prefix=str(rel_attempt / self.deffnm),
                                             t_end_ps=good.time_ps))
            state.plan = rd.RunPlan(mode="restart", mdp=retry_name, checkpoint=str(cpt),
                                    premin_steps=0)
            action.update({"action": "restart_from_checkpoint", "checkpoint": str(cpt),
                           "checkpoint_step": good.step, "checkpoint_time_ps": good.time_ps,
                           "nsteps": int(upd["nsteps"]), "init_step": int(upd["init-step"])})
        else:
            upd = halved_dt_updates(opts, t_start_ps=None)
            premin = 0
            if state.plan.checkpoint is None:
                premin = state.plan.premin_steps * 2 if state.plan.premin_steps \
                    else self.premin_steps
                if opts.get("gen-vel", "no").lower() != "yes":
                    ref_t = opts.get("ref-t", "").split()
                    if ref_t:
                        upd.update({"gen-vel": "yes", "gen-temp": ref_t[0],
                                    "continuation": "no"})
            state.plan = rd.RunPlan(mode="fresh" if not state.segments else "restart",
                                    mdp=retry_name, checkpoint=state.plan.checkpoint,
                                    premin_steps=premin)
            action.update({"action": "rerun_from_input", "nsteps": int(upd["nsteps"]),
                           "init_step": int(upd["init-step"]),
                           "reason": "no checkpoint before the blow-up"})
            if premin:
                action["premin_steps"] = premin
        (d / retry_name).write_text(eng.edit_mdp(mdp_text, upd, note))
        state.dt_history_ps = (state.dt_history_ps or [dt_old]) + [dt_new]
        state.n_blowup_corrections = k
        state.phase, state.returncode, state.pid = "corrected", None, None
        rd.save_state(d, state)
        return {"errors": errors, "actions": [action]}

    def _correct_minimisation(self, d: Path, state: rd.RunState, opts: Mapping[str, str],
                              mdp_text: str, retry_name: str, note: str,
                              errors: list[str]) -> dict:
        emstep = eng.mdp_float(opts, "emstep", 0.01)
        nsteps = eng.mdp_int(opts, "nsteps", 0)
        upd = {"emstep": f"{emstep / 2.0:.6g}"}
        if nsteps > 0:
            upd["nsteps"] = str(2 * nsteps)
        attempt_dir = rd.set_attempt_aside(d, self.deffnm, state.attempt)
        (d / retry_name).write_text(eng.edit_mdp(mdp_text, upd, note))
        state.plan = rd.RunPlan(mode="fresh", mdp=retry_name,
                                checkpoint=state.plan.checkpoint, premin_steps=0)
        state.emstep_history_nm = (state.emstep_history_nm or [emstep]) + [emstep / 2.0]
        state.n_blowup_corrections += 1
        state.phase, state.returncode, state.pid = "corrected", None, None
        rd.save_state(d, state)
        return {"errors": errors, "actions": [{
            "action": "rerun_minimisation", "mdp": retry_name, "emstep_nm": [emstep, emstep / 2],
            "nsteps": int(upd.get("nsteps", nsteps)),
            "failed_attempt_outputs": str(attempt_dir.relative_to(d))}]}

    def _good_checkpoint(self, d: Path, diag: Diagnosis) -> gout.CheckpointInfo | None:
        """The newest of ``<deffnm>.cpt`` / ``<deffnm>_prev.cpt`` written by this attempt
        at or before the last sound energy block (None if there is none)."""
        scan, facts = diag.scan, diag.facts
        if scan is None or scan.last_good_step is None:
            return None
        start = (facts.init_step or 0) if facts is not None else 0
        best = None
        for name in (f"{self.deffnm}.cpt", f"{self.deffnm}_prev.cpt"):
            path = d / name
            if not path.exists():
                continue
            info = gout.checkpoint_info(path)
            if start < info.step <= scan.last_good_step and (best is None or info.step > best.step):
                best = info
        return best


class CheckpointContinueHandler(ErrorHandler):
    """A killed, ``-maxh``-stopped or otherwise unfinished run: continue it.

    With ``<deffnm>.cpt`` (and the tpr) present, the next attempt is ``mdrun -cpi
    <deffnm>.cpt``, appending to the outputs; without a checkpoint the attempt is rerun
    as planned. Gives up after ``max_continuations``.
    """

    is_monitor = False

    def __init__(self, deffnm: str, max_continuations: int = 20) -> None:
        if max_continuations < 1:
            raise InvalidInputError(
                f"field 'max_continuations': must be >= 1, got {max_continuations!r}")
        self.deffnm = deffnm
        self.max_continuations = max_continuations
        self.diagnosis: Diagnosis | None = None

    def check(self, directory="./") -> bool:
        """True when the last attempt was interrupted (not a blow-up, not an error)."""
        self.diagnosis = diagnose(directory, self.deffnm, Thresholds(stall_s=None))
        return self.diagnosis.kind == "interrupted"

    def correct(self, directory="./") -> dict:
        """Plan ``mdrun -cpi`` (or a rerun without a checkpoint)."""
        d = Path(directory)
        diag = self.diagnosis or diagnose(d, self.deffnm, Thresholds(stall_s=None))
        state = rd.load_state(d, self.deffnm)
        errors = list(diag.evidence)
        if state is None:
            errors.append(f"no run state {rd.state_path(d, self.deffnm).name}: cannot continue")
            return {"errors": errors, "actions": None}
        if state.n_continuations >= self.max_continuations:
            errors.append(f"gave up after {state.n_continuations} continuations "
                          f"(max_continuations = {self.max_continuations})")
            return {"errors": errors, "actions": None}
        cpt, tpr = d / f"{self.deffnm}.cpt", d / f"{self.deffnm}.tpr"
        if cpt.exists() and tpr.exists():
            info = gout.checkpoint_info(cpt)
            state.plan = state.plan.model_copy(update={"mode": "continue"})
            action = {"action": "continue_from_checkpoint", "checkpoint": cpt.name,
                      "checkpoint_step": info.step, "checkpoint_time_ps": info.time_ps}
        else:
            if state.plan.mode == "continue":
                errors.append(f"{cpt.name} or {tpr.name} is gone: cannot continue")
                return {"errors": errors, "actions": None}
            action = {"action": "rerun_attempt", "reason": "no checkpoint was written",
                      "mode": state.plan.mode}
        state.n_continuations += 1
        state.phase, state.returncode, state.pid = "corrected", None, None
        rd.save_state(d, state)
        return {"errors": errors, "actions": [action]}

