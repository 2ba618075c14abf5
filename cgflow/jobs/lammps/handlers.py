"""Custodian error handlers for LAMMPS runs of the coarse-grained liquid.

Each handler reads what LAMMPS left in the run directory (the log, the screen output
``lammps.out``, the pair table named by the input) in :meth:`check` and repairs the
inputs in :meth:`correct`, which returns ``{"errors": [...], "actions": [...]}``; an
empty ``actions`` list means the handler gives up (Custodian then raises, and
:func:`cgflow.jobs.lammps.job.run_lammps` turns that into an :class:`~cgflow.errors.EngineError`).

=======================  ======================================================================
handler                  recognises and corrects
=======================  ======================================================================
LostAtomsHandler         ``Lost atoms``, ``Out of range atoms``, ``Non-numeric positions``
                         (pressure, box), NaN/inf in the thermo output, and a pair distance
                         below the table's inner cut-off where the table is already far too
                         high for a thermal collision (see :func:`inner_cutoff_is_instability`).
                         First stiffens an unsound repulsive core
                         (:func:`cgflow.ibi.table_repair.stiffen_core`), then halves the time
                         step (keeping the simulated times), then gives up.
TableRangeHandler        ``Pair distance < table inner cutoff`` at a soft table edge: extends the
                         table inwards with a steep core; ``Pair table cutoff outside of table``
                         or ``Pair distance > table outer cutoff``: extends the table outwards
                         with zeros when it ends at zero, else lowers the pair cut-off to the
                         table's end.
RestartContinueHandler   a run that stopped without an ERROR (killed: no ``Total wall time``,
                         e.g. exit -9 or -15, or a ``Wall time limit reached`` stop): with a
                         restart file continues from the newest one and runs the remaining
                         steps only; a killed run without one is rerun from the start.
=======================  ======================================================================

After a table or time-step repair the run starts afresh: the files of the failed attempt
(log, screen output, block averages, dump, restart files) move to ``attempts/<k>/``.
When the run directory holds ``lammps_settings.json`` (see
:mod:`cgflow.jobs.lammps.state`), the input is rewritten from the corrected settings
with :func:`cgflow.engines.lammps.write_input`, and a continuation is prepared with
:func:`cgflow.engines.lammps.prepare_continuation`; otherwise the input script is edited
in place and a continuation needs a hand-written continuation input.

Counts of applied corrections are kept in ``lammps_corrections.json``, so limits hold
when a run is resumed by another process.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

from custodian.custodian import ErrorHandler

from cgflow import units
from cgflow.engines import lammps as eng
from cgflow.errors import InvalidInputError
from cgflow.ibi import table_repair as tr
from cgflow.jobs.lammps import state as rd

#: Default temperature used when no run settings tell it, K.
DEFAULT_TEMPERATURE_K = 298.15
#: Energy (in kT, above the cut-off value) of a table edge that no thermal collision reaches.
HARD_EDGE_KT = 40.0

_LOST_RE = re.compile(r"(?:Lost atoms|Out of range atoms"
                      r"|Non-numeric (?:positions|pressure|box dimensions))[^\n]*")
_DIST = r"(?:: ijtype \d+ \d+ dist ([-+0-9.eE]+))?"
_INNER_RE = re.compile(r"Pair distance < table inner cutoff" + _DIST)
_OUTER_RE = re.compile(r"Pair distance > table outer cutoff" + _DIST
                       + r"|Pair table cutoff outside of table")
_WALLTIME = "Wall time limit reached"


class _LammpsHandler(ErrorHandler):
    """Shared file names and helpers of the LAMMPS handlers."""

    input_file: str
    log_file: str
    stdout_file: str

    def _dir(self, directory) -> Path:
        return Path(directory)

    def _text(self, directory) -> str:
        return rd.output_text(directory, self.log_file, self.stdout_file)

    def _temperature(self, directory) -> float:
        settings = rd.load_settings(directory)
        return settings.temperature_k if settings else self.temperature_k

    def _restart_fresh(self, directory: Path, settings: eng.LammpsRunSettings | None) -> str:
        """Archive the attempt's outputs and make the input a fresh run; describe it."""
        patterns = rd.restart_patterns(directory / self.input_file)
        dest = rd.archive_attempt(
            directory,
            [self.log_file, self.stdout_file, eng.RDF_FILE + "*", eng.PRESSURE_FILE + "*",
             eng.DUMP_FILE, eng.FINAL_DATA_FILE, rd.CONTINUE_FILE],
            restarts=True, patterns=patterns,
        )
        if settings is not None and settings.restart_file is not None:
            settings = dataclasses.replace(settings, restart_file=None, restart_step=0)
            rd.save_settings(directory, settings)
            eng.write_input(directory / self.input_file, settings)
        return f"moved the failed attempt's files to {dest.relative_to(directory)}/"


def _table(directory: Path, input_file: str) -> tuple[rd.TableRef, Path]:
    ref = rd.table_ref(directory / input_file)
    path = directory / ref.file
    if not path.exists():
        raise InvalidInputError(f"pair table {path} named in {input_file} does not exist")
    return ref, path


def _backup_table(path: Path) -> None:
    orig = path.with_name(path.name + ".orig")
    if not orig.exists():
        shutil.copy2(path, orig)


def inner_cutoff_is_instability(
    directory: str | Path, input_file: str, temperature_k: float,
    hard_edge_kt: float = HARD_EDGE_KT,
) -> bool:
    """Whether a "Pair distance < table inner cutoff" error means an unstable run.

    True when the table's first point lies more than ``hard_edge_kt`` kT above its
    cut-off value: beads in equilibrium never get that close, so they were thrown
    together by an integration blow-up (too large a time step or a broken core) and
    extending the table would not help.
    """
    directory = Path(directory)
    ref, path = _table(directory, input_file)
    _, u, _ = eng.read_table(path, ref.keyword)
    return float(u[0] - u[-1]) > hard_edge_kt * units.kt_kj_mol(temperature_k)


class LostAtomsHandler(_LammpsHandler):
    """Unstable dynamics: lost atoms, out-of-range atoms, non-finite thermo output.

    Causes: a tabulated potential whose repulsive core is too soft (beads cross it and
    collide at short range where the table is steep or attractive) or a time step too
    large for the forces. Corrections, in order:

    1. while the core is unsound (:func:`cgflow.ibi.table_repair.diagnose_core`) and
       fewer than ``max_core_stiffenings`` were applied: replace the table below its
       core anchor by a wall ``core_factor`` times harder
       (:func:`cgflow.ibi.table_repair.stiffen_core`);
    2. while fewer than ``max_dt_halvings`` were applied and the halved step stays at or
       above ``min_dt_fs``: halve the time step. With run settings every step count
       (equilibration, run, sampling, dump, thermo and restart intervals) is doubled so
       that simulated times stay the same; without them the ``run`` counts are doubled;
    3. give up.

    Parameters
    ----------
    input_file, log_file, stdout_file
        Names in the run directory.
    core_factor
        Hardness factor of a core repair (>= 1).
    max_core_stiffenings, max_dt_halvings
        Limits of each correction.
    min_dt_fs
        Smallest time step, fs.
    temperature_k
        Temperature used to judge the table edge when no run settings tell it, K.
    hard_edge_kt
        See :func:`inner_cutoff_is_instability`.
    """

    is_monitor = False

    def __init__(
        self, input_file: str = eng.INPUT_FILE, log_file: str = eng.LOG_FILE,
        stdout_file: str = eng.STDOUT_FILE, core_factor: float = 2.0,
        max_core_stiffenings: int = 2, max_dt_halvings: int = 2, min_dt_fs: float = 0.5,
        temperature_k: float = DEFAULT_TEMPERATURE_K, hard_edge_kt: float = HARD_EDGE_KT,
    ) -> None:
        if core_factor < 1.0:
            raise InvalidInputError(f"field 'core_factor': must be >= 1, got {core_factor!r}")
        if min_dt_fs <= 0:
            raise InvalidInputError(f"field 'min_dt_fs': must be > 0 fs, got {min_dt_fs!r}")
        self.input_file = input_file
        self.log_file = log_file
        self.stdout_file = stdout_file
        self.core_factor = core_factor
        self.max_core_stiffenings = max_core_stiffenings
        self.max_dt_halvings = max_dt_halvings
        self.min_dt_fs = min_dt_fs
        self.temperature_k = temperature_k
        self.hard_edge_kt = hard_edge_kt

    def diagnose(self, directory="./") -> str | None:
        """The symptom found in the run's output, or None."""
        text = self._text(directory)
        m = _LOST_RE.search(text)
        if m:
            return m.group(0).strip()
        line = rd.nonfinite_thermo(text)
        if line is not None:
            return f"non-finite thermo output: {line!r}"
        m = _INNER_RE.search(text)
        if m and inner_cutoff_is_instability(directory, self.input_file,
                                             self._temperature(directory), self.hard_edge_kt):
            return (f"unstable run: {m.group(0)} (the table edge is above "
                    f"{self.hard_edge_kt:g} kT, no thermal collision gets there)")
        return None

    def check(self, directory="./") -> bool:
        """True when the run shows one of the symptoms of unstable dynamics."""
        return self.diagnose(directory) is not None

    def correct(self, directory="./") -> dict:
        """Stiffen an unsound core, else halve the time step, else give up."""
        d = self._dir(directory)
        symptom = self.diagnose(d) or "unstable run"
        state = rd.load_state(d)
        done = state.setdefault("lost_atoms", {"core_stiffenings": 0, "dt_halvings": 0})
        settings = rd.load_settings(d)
        ref, path = _table(d, self.input_file)
        r, u, f = eng.read_table(path, ref.keyword)
        diag = tr.diagnose_core(r, u)
        core_state = "no repulsive core" if diag is None else diag.reason
        can_stiffen = done["core_stiffenings"] < self.max_core_stiffenings
        if diag is not None and not diag.sound and can_stiffen:
            _backup_table(path)
            r2, u2, f2, rep = tr.stiffen_core(r, u, f, factor=self.core_factor)
            eng.write_table(path, r2, u2, f2, ref.keyword)
            done["core_stiffenings"] += 1
            rd.save_state(d, state)
            note = self._restart_fresh(d, settings)
            return {"errors": [symptom, core_state], "actions": [
                {"file": ref.file, "action": {"_stiffen_core": {
                    "factor": self.core_factor, "r_anchor_nm": rep.r_anchor_nm,
                    "force_kj_mol_nm": rep.force_kj_mol_nm,
                    "points_replaced": rep.n_points_replaced}}},
                {"action": note},
            ]}
        dt = settings.dt_fs if settings else rd.timestep_fs(d / self.input_file)
        if dt is None:
            return {"errors": [symptom, core_state,
                               f"cannot halve the time step: no 'timestep' in {self.input_file}"],
                    "actions": []}
        if done["dt_halvings"] < self.max_dt_halvings and dt / 2.0 >= self.min_dt_fs:
            state.setdefault("original_dt_fs", dt)
            new_dt = dt / 2.0
            if settings is not None:
                s = dataclasses.replace(
                    settings, dt_fs=new_dt, equilibration_steps=2 * settings.equilibration_steps,
                    run_steps=2 * settings.run_steps, sample_every=2 * settings.sample_every,
                    dump_every=2 * settings.dump_every, thermo_every=2 * settings.thermo_every,
                    restart_every=2 * settings.restart_every, restart_file=None, restart_step=0,
                )
                rd.save_settings(d, s)
                eng.write_input(d / self.input_file, s)
            else:
                rd.edit_input(d / self.input_file, timestep=new_dt, run_factor=2)
            done["dt_halvings"] += 1
            rd.save_state(d, state)
            note = self._restart_fresh(d, rd.load_settings(d))
            return {"errors": [symptom, core_state], "actions": [
                {"file": self.input_file, "action": {"_set": {"timestep_fs": new_dt,
                                                             "step_counts": "doubled"}}},
                {"action": note},
            ]}
        return {"errors": [
            symptom, core_state,
            f"gave up after {done['core_stiffenings']} core stiffening(s) and "
            f"{done['dt_halvings']} time-step halving(s) (time step now {dt:g} fs, limits: "
            f"{self.max_core_stiffenings} stiffenings, {self.max_dt_halvings} halvings, "
            f"{self.min_dt_fs:g} fs)",
        ], "actions": []}


class TableRangeHandler(_LammpsHandler):
    """A pair distance outside the table's range.

    * ``Pair distance < table inner cutoff`` at a soft table edge (not an instability,
      see :func:`inner_cutoff_is_instability`): the table is extended inwards to
      ``inner_margin`` times the reported distance (not below ``min_inner_nm``) with the
      power-law core of :func:`cgflow.ibi.table_repair.extend_inward`.
    * ``Pair table cutoff outside of table`` (the ``pair_coeff`` cut-off is beyond the
      table) or ``Pair distance > table outer cutoff``: when the table ends at U = 0 and
      F = 0 it is extended outwards with zeros up to the cut-off; otherwise the pair
      cut-off is lowered to the table's last point.

    At most ``max_extensions`` repairs; the run then starts afresh.
    """

    is_monitor = False

    def __init__(
        self, input_file: str = eng.INPUT_FILE, log_file: str = eng.LOG_FILE,
        stdout_file: str = eng.STDOUT_FILE, max_extensions: int = 3,
        min_inner_nm: float = 0.05, inner_margin: float = 0.8,
        temperature_k: float = DEFAULT_TEMPERATURE_K, hard_edge_kt: float = HARD_EDGE_KT,
    ) -> None:
        if not 0.0 < inner_margin < 1.0:
            raise InvalidInputError(f"field 'inner_margin': must be in (0, 1), "
                                    f"got {inner_margin!r}")
        if min_inner_nm <= 0:
            raise InvalidInputError(f"field 'min_inner_nm': must be > 0 nm, got {min_inner_nm!r}")
        self.input_file = input_file
        self.log_file = log_file
        self.stdout_file = stdout_file
        self.max_extensions = max_extensions
        self.min_inner_nm = min_inner_nm
        self.inner_margin = inner_margin
        self.temperature_k = temperature_k
        self.hard_edge_kt = hard_edge_kt

    def _found(self, directory) -> tuple[str, re.Match] | None:
        text = self._text(directory)
        m = _OUTER_RE.search(text)
        if m:
            return "outer", m
        m = _INNER_RE.search(text)
        if m and not inner_cutoff_is_instability(directory, self.input_file,
                                                 self._temperature(directory),
                                                 self.hard_edge_kt):
            return "inner", m
        return None

    def check(self, directory="./") -> bool:
        """True when LAMMPS stopped on a distance outside the table's range."""
        return self._found(directory) is not None

    def correct(self, directory="./") -> dict:
        """Extend the table (or lower the cut-off) and start the run afresh."""
        d = self._dir(directory)
        found = self._found(d)
        if found is None:
            return {"errors": ["table range error no longer found in the output"],
                    "actions": []}
        side, m = found
        error = m.group(0)
        state = rd.load_state(d)
        done = state.setdefault("table_range", {"extensions": 0})
        if done["extensions"] >= self.max_extensions:
            return {"errors": [error, f"gave up after {done['extensions']} table extension(s)"],
                    "actions": []}
        settings = rd.load_settings(d)
        ref, path = _table(d, self.input_file)
        r, u, f = eng.read_table(path, ref.keyword)
        if side == "inner":
            dist_nm = units.angstrom_to_nm(float(m.group(1))) if m.group(1) else r[0] * 0.9
            target = max(self.min_inner_nm, self.inner_margin * dist_nm)
            if target >= r[0] - 1e-12:
                return {"errors": [error, f"the table already starts at {r[0]:.4g} nm, the "
                                   f"smallest inner radius allowed is {self.min_inner_nm:g} nm"],
                        "actions": []}
            _backup_table(path)
            r2, u2, f2 = tr.extend_inward(r, u, f, target)
            eng.write_table(path, r2, u2, f2, ref.keyword)
            action = {"file": ref.file, "action": {"_extend_inward": {
                "from_nm": float(r[0]), "to_nm": float(r2[0])}}}
        else:
            cut_nm = (settings.rcut_nm if settings else
                      units.angstrom_to_nm(ref.cutoff_angstrom) if ref.cutoff_angstrom else None)
            if m.group(1):
                cut_nm = max(cut_nm or 0.0, units.angstrom_to_nm(float(m.group(1))))
            if cut_nm is None:
                return {"errors": [error, "no pair cut-off to extend the table to"],
                        "actions": []}
            if tr.tail_is_zero(u, f):
                _backup_table(path)
                r2, u2, f2 = tr.extend_outward(r, u, f, cut_nm)
                eng.write_table(path, r2, u2, f2, ref.keyword)
                action = {"file": ref.file, "action": {"_extend_outward": {
                    "from_nm": float(r[-1]), "to_nm": float(r2[-1])}}}
            else:
                new_cut = float(r[-1])
                if settings is not None:
                    settings = dataclasses.replace(settings, rcut_nm=new_cut)
                    rd.save_settings(d, settings)
                    eng.write_input(d / self.input_file, settings)
                else:
                    rd.edit_input(d / self.input_file,
                                  pair_cutoff_angstrom=units.nm_to_angstrom(new_cut))
                action = {"file": self.input_file, "action": {"_set": {
                    "pair_cutoff_nm": new_cut, "was_nm": cut_nm}}}
        done["extensions"] += 1
        rd.save_state(d, state)
        note = self._restart_fresh(d, settings)
        return {"errors": [error], "actions": [action, {"action": note}]}


def interruption(directory: str | Path, log_file: str = eng.LOG_FILE,
                 stdout_file: str = eng.STDOUT_FILE) -> str | None:
    """Why a run stopped early without an ERROR (killed or wall-time stop), or None.

    A run without its log whose screen output exists and holds no ERROR was killed
    before LAMMPS wrote the log. None when nothing ran (no log, no screen output) or
    LAMMPS reported an ERROR (those are for the other handlers).
    """
    d = Path(directory)
    log = d / log_file
    if not log.exists():
        out = d / stdout_file
        if out.exists() and rd.error_text(rd.output_text(d, log_file, stdout_file)) is None:
            return f"interrupted before it wrote {log_file} (killed)"
        return None
    text = rd.output_text(d, log_file, stdout_file)
    if rd.error_text(text) is not None:
        return None
    if _WALLTIME in text:
        return "wall-time stop (Wall time limit reached)"
    if "Total wall time" not in log.read_text(errors="replace")[-4000:]:
        return "interrupted: the log does not end with 'Total wall time' (killed)"
    return None


def continue_from_restart(
    directory: str | Path, input_file: str = eng.INPUT_FILE, log_file: str = eng.LOG_FILE,
    stdout_file: str = eng.STDOUT_FILE, continuation_input: str | None = None,
) -> dict | None:
    """Prepare the continuation of an interrupted run from its newest restart file.

    With run settings the input is rewritten by
    :func:`cgflow.engines.lammps.prepare_continuation` (which also cuts the block files
    and the dump back to the restart step); without them, and with a hand-written
    ``continuation_input``, :data:`~cgflow.jobs.lammps.state.CONTINUE_FILE` names the
    restart file and step for :class:`cgflow.jobs.lammps.job.LammpsJob`. The log and screen
    output of the interrupted attempt move to ``attempts/<k>/``.

    Returns
    -------
    dict or None
        ``{"restart_file", "restart_step", "attempt_dir"}``, or None when there is no
        restart file.

    Raises
    ------
    InvalidInputError
        When neither run settings nor a continuation input exist.
    """
    d = Path(directory)
    found = rd.latest_restart(d, rd.restart_patterns(d / input_file))
    if found is None:
        return None
    restart, step = found
    settings = rd.load_settings(d)
    if settings is None and continuation_input is None:
        raise InvalidInputError(
            f"{d}: cannot continue from {restart.name}: no run settings "
            f"({rd.SETTINGS_FILE}) and no continuation input"
        )
    dest = rd.archive_attempt(d, [log_file, stdout_file], restarts=False)
    if settings is not None:
        new = eng.prepare_continuation(d, settings)
        if new is None:  # pragma: no cover - latest_restart found one above
            return None
        rd.save_settings(d, new)
        restart_name, step = new.restart_file, new.restart_step
    else:
        restart_name = restart.name
        (d / rd.CONTINUE_FILE).write_text(json.dumps(
            {"restart_file": restart_name, "restart_step": step}) + "\n")
    return {"restart_file": restart_name, "restart_step": step,
            "attempt_dir": str(dest.relative_to(d))}


class RestartContinueHandler(_LammpsHandler):
    """An interrupted run: continue from the newest restart file, or rerun a killed one.

    Recognises a run that stopped without an ERROR: killed (the log does not end with
    ``Total wall time``, or was never written; exit code -9, -15 or any other) or
    stopped by LAMMPS' wall-time limit (``timer timeout``, "Wall time limit reached").
    With a restart file the continuation reads the newest one and runs only the
    remaining steps (``run N upto``), see :func:`continue_from_restart`. A killed run
    without one (killed before its first restart file, e.g. while minimising or
    equilibrating, where none are written) is rerun from the start, its files moved to
    ``attempts/<k>/``; a wall-time stop without one is not (it would stop again). At
    most ``max_continuations`` continuations and reruns together.
    """

    is_monitor = False

    def __init__(
        self, input_file: str = eng.INPUT_FILE, log_file: str = eng.LOG_FILE,
        stdout_file: str = eng.STDOUT_FILE, max_continuations: int = 5,
        continuation_input: str | None = None,
    ) -> None:
        self.input_file = input_file
        self.log_file = log_file
        self.stdout_file = stdout_file
        self.max_continuations = max_continuations
        self.continuation_input = continuation_input

    def check(self, directory="./") -> bool:
        """True when the run was killed, or stopped at the wall-time limit with a restart
        file to continue from."""
        d = self._dir(directory)
        why = interruption(d, self.log_file, self.stdout_file)
        if why is None:
            return False
        return why.startswith("interrupted") or \
            rd.latest_restart(d, rd.restart_patterns(d / self.input_file)) is not None

    def correct(self, directory="./") -> dict:
        """Continue from the newest restart file, else rerun a killed run from the start
        (or give up past the limit)."""
        d = self._dir(directory)
        why = interruption(d, self.log_file, self.stdout_file) or "interrupted run"
        state = rd.load_state(d)
        done = state.setdefault("restart_continue", {"continuations": 0})
        if done["continuations"] >= self.max_continuations:
            return {"errors": [why, f"gave up after {done['continuations']} continuation(s)"],
                    "actions": []}
        try:
            info = continue_from_restart(d, self.input_file, self.log_file, self.stdout_file,
                                         self.continuation_input)
        except InvalidInputError as exc:
            return {"errors": [why, str(exc)], "actions": []}
        if info is None:
            if not why.startswith("interrupted"):
                return {"errors": [why, "no restart file to continue from"], "actions": []}
            note = self._restart_fresh(d, rd.load_settings(d))
            done["continuations"] += 1
            rd.save_state(d, state)
            return {"errors": [why, "no restart file to continue from"],
                    "actions": [{"action": {"_rerun_from_start": note}}]}
        done["continuations"] += 1
        rd.save_state(d, state)
        return {"errors": [why], "actions": [{"action": {"_continue_from_restart": info}}]}
