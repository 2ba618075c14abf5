"""Custodian error handlers for GROMACS stages, and what they read and write.

A stage (``em``, ``nvt``, ``npt``, ``production``) runs in a run directory under the
file stem ``deffnm`` (see :data:`cgflow.engines.gromacs.STAGE_DEFFNM`). Besides GROMACS'
own files, the job and the handlers share the **run state** ``<deffnm>.gmxjob.json``
(:class:`RunState`): the attempt count, the phase (grompp failed, mdrun started, ...),
the mdrun exit code, and the **plan** of the next attempt (:class:`RunPlan`: start
afresh from the stage input, restart from a checkpoint through grompp, or continue with
``mdrun -cpi``). The handlers never touch the user's inputs: a corrected ``.mdp`` is
written next to them as ``<deffnm>_retry<k>.mdp``, and the outputs of a failed attempt
move to ``attempts/<deffnm>-<k>/``.

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

import math
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from custodian.custodian import ErrorHandler
from pydantic import BaseModel, ConfigDict, Field

from cgflow.engines import gromacs as eng
from cgflow.errors import EngineError, InvalidInputError

# --- file names --------------------------------------------------------------------------

#: Suffix of the run state shared by the job and the handlers.
STATE_SUFFIX = ".gmxjob.json"
#: Suffix of the merged stdout/stderr of the current mdrun attempt.
MDRUN_OUT_SUFFIX = ".mdrun.out"
#: Suffix of the merged stdout/stderr of the last grompp.
GROMPP_OUT_SUFFIX = ".grompp.out"
#: Folder (in the run directory) that receives the outputs of failed attempts.
ATTEMPTS_DIR = "attempts"
#: Environment of every gmx command: no ``#file.1#`` back-ups (attempts are kept in
#: :data:`ATTEMPTS_DIR` instead).
GMX_ENV = {"GMX_MAXBACKUP": "-1"}

#: Output extensions of one mdrun attempt (moved together when an attempt is set aside).
ATTEMPT_OUTPUTS = (".log", ".edr", ".xtc", ".trr", ".gro", ".cpt", ".tpr", MDRUN_OUT_SUFFIX)

#: mdrun integrators that minimise the energy instead of integrating the dynamics.
MINIMISERS = frozenset({"steep", "cg", "l-bfgs"})

#: Exit codes of a process ended by a crash signal (Popen gives -N, a shell 128 + N).
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT,
                           signal.SIGILL})
#: Exit codes of a process that was stopped from outside.
INTERRUPT_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                               signal.SIGXCPU, signal.SIGUSR1, signal.SIGUSR2})


def state_path(directory: str | Path, deffnm: str) -> Path:
    """Path of the run state of stage ``deffnm``."""
    return Path(directory) / f"{deffnm}{STATE_SUFFIX}"


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
        Corrections applied by :class:`BlowUpHandler` / :class:`CheckpointContinueHandler`
        (kept here so that their limits hold across processes).
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


def resolve(directory: str | Path, name: str | Path) -> Path:
    """``name`` if absolute, else relative to ``directory``."""
    p = Path(name)
    return p if p.is_absolute() else Path(directory) / p


# --- mdp files ---------------------------------------------------------------------------

#: GROMACS defaults of the mdp options the time-step halving rescales (in steps).
_STEP_INTERVAL_DEFAULTS = {
    "nstlog": 1000, "nstenergy": 1000, "nstcalcenergy": 100, "nstcomm": 100,
    "nstxout": 0, "nstvout": 0, "nstfout": 0, "nstxout-compressed": 0,
}
#: Options copied from a stage's mdp into the mdp of an inserted minimisation.
_INTERACTION_KEYS = (
    "define", "cutoff-scheme", "nstlist", "pbc", "periodic-molecules",
    "verlet-buffer-tolerance", "rlist", "coulombtype", "coulomb-modifier", "rcoulomb",
    "rcoulomb-switch", "epsilon-r", "epsilon-rf", "vdwtype", "vdw-type", "vdw-modifier",
    "rvdw", "rvdw-switch", "dispcorr", "fourierspacing", "fourier-nx", "fourier-ny",
    "fourier-nz", "pme-order", "ewald-rtol", "ewald-rtol-lj", "ewald-geometry",
    "lj-pme-comb-rule", "table-extension", "constraints", "constraint-algorithm",
    "lincs-order", "lincs-iter", "freezegrps", "freezedim", "energygrps",
)


def _norm_key(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def edit_mdp(text: str, updates: Mapping[str, str | None], note: str) -> str:
    """``text`` of an mdp with options replaced, added or (value None) removed.

    Keys compare case-insensitively with ``_`` and ``-`` equal. Other lines, comments and
    the order are kept; new options go to the end under ``; <note>``.
    """
    pending = {_norm_key(k): v for k, v in updates.items()}
    seen: set[str] = set()
    out: list[str] = []
    for line in text.splitlines():
        body = line.split(";", 1)[0]
        if "=" in body:
            key = _norm_key(body.split("=", 1)[0])
            if key in pending:
                seen.add(key)
                value = pending[key]
                if value is not None:
                    out.append(f"{key:<24s} = {value}    ; {note}")
                continue
        out.append(line)
    added = [(k, v) for k, v in pending.items() if k not in seen and v is not None]
    if added:
        out.append(f"; {note}")
        out += [f"{k:<24s} = {v}" for k, v in added]
    return "\n".join(out) + "\n"


def _int_option(opts: Mapping[str, str], key: str, default: int) -> int:
    raw = opts.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise InvalidInputError(f"mdp option '{key}': value {raw!r} is not a number") from None


def _float_option(opts: Mapping[str, str], key: str, default: float) -> float:
    raw = opts.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw.split()[0])
    except (ValueError, IndexError):
        raise InvalidInputError(f"mdp option '{key}': value {raw!r} is not a number") from None


def mdp_integrator(opts: Mapping[str, str]) -> str:
    """The integrator of mdp options (GROMACS default ``md``)."""
    return opts.get("integrator", "md").strip().lower()


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
    dt = _float_option(opts, "dt", 0.001)
    tinit = _float_option(opts, "tinit", 0.0)
    init_step = _int_option(opts, "init-step", 0)
    nsteps = _int_option(opts, "nsteps", 0)
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
        n = _int_option(opts, key, default)
        if n > 0:
            upd[key] = str(2 * n)
    for key in ("nsttcouple", "nstpcouple"):
        n = _int_option(opts, key, -1)
        if n > 0:
            upd[key] = str(2 * n)
    return upd


def minimisation_mdp(stage_opts: Mapping[str, str], nsteps: int) -> str:
    """Text of a steepest-descent mdp with the interaction settings of a stage's mdp.

    Tolerance 100 kJ/mol/nm (:data:`cgflow.engines.gromacs.EM_TOL`), initial step
    0.001 nm, ``nsteps`` steps.
    """
    lines = ["; steepest-descent minimisation inserted before the stage by BlowUpHandler",
             "integrator               = steep",
             f"nsteps                   = {int(nsteps)}",
             f"emtol                    = {eng.EM_TOL:g}",
             "emstep                   = 0.001",
             "nstlog                   = 100",
             "nstenergy                = 100"]
    lines += [f"{k:<24s} = {stage_opts[k]}" for k in _INTERACTION_KEYS if k in stage_opts]
    return "\n".join(lines) + "\n"


# --- md.log and mdrun output -------------------------------------------------------------

_MDRUN_HEADER = ":-) GROMACS - gmx mdrun"
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def read_text(path: Path, max_bytes: int | None = None) -> str:
    """Text of ``path`` ('' if missing); with ``max_bytes``, only the file's tail."""
    try:
        with path.open("rb") as f:
            if max_bytes is not None:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - max_bytes))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def last_log_segment(text: str) -> str:
    """The part of an md.log written by the last mdrun process (after its header).

    ``mdrun -cpi`` appends a new header to the log it continues; a fresh run writes a
    new log.
    """
    i = text.rfind(_MDRUN_HEADER)
    if i < 0:
        return text
    return text[text.rfind("\n", 0, i) + 1:]


@dataclass
class LogFacts:
    """Run parameters that mdrun dumps at the top of its log (None if not found)."""

    integrator: str | None = None
    nsteps: int | None = None
    init_step: int | None = None
    dt_ps: float | None = None
    tinit_ps: float | None = None
    n_atoms: int | None = None
    ref_t_k: list[float] = field(default_factory=list)
    nstxout_compressed: int | None = None

    @property
    def is_minimisation(self) -> bool:
        """True for steep, cg and l-bfgs."""
        return self.integrator in MINIMISERS

    @property
    def final_step(self) -> int | None:
        """``init-step + nsteps`` (None if either is unknown or nsteps is -1)."""
        if self.nsteps is None or self.nsteps < 0:
            return None
        return (self.init_step or 0) + self.nsteps


def log_facts(text: str) -> LogFacts:
    """:class:`LogFacts` from the (whole) text of an md.log."""
    facts = LogFacts()

    def first(pattern: str) -> str | None:
        m = re.search(pattern, text, re.M)
        return m.group(1) if m else None

    if (v := first(r"^\s*integrator\s*=\s*(\S+)")) is not None:
        facts.integrator = v.lower()
    if (v := first(r"^\s*nsteps\s*=\s*(-?\d+)")) is not None:
        facts.nsteps = int(v)
    if (v := first(r"^\s*init-step\s*=\s*(-?\d+)")) is not None:
        facts.init_step = int(v)
    if (v := first(rf"^\s*dt\s*=\s*({_FLOAT})")) is not None:
        facts.dt_ps = float(v)
    if (v := first(rf"^\s*tinit\s*=\s*({_FLOAT})")) is not None:
        facts.tinit_ps = float(v)
    if (v := first(r"^\s*nstxout-compressed\s*=\s*(-?\d+)")) is not None:
        facts.nstxout_compressed = int(v)
    if (v := first(r"^There are:\s*(\d+)\s+Atoms")) is not None:
        facts.n_atoms = int(v)
    if (v := first(r"^\s*ref-t:\s*(.+)$")) is not None:
        facts.ref_t_k = [float(x) for x in re.findall(_FLOAT, v)]
    return facts


@dataclass
class EnergyBlock:
    """One energy block of an md.log: the step and the named values (kJ/mol, K, bar)."""

    step: int
    values: dict[str, float]


def _columns(line: str) -> list[str]:
    """Fixed 15-character columns of an energy block line."""
    line = line.rstrip("\n")
    return [line[i:i + 15].strip() for i in range(0, len(line), 15) if line[i:i + 15].strip()]


def energy_blocks(text: str) -> list[EnergyBlock]:
    """The ``Step Time`` energy blocks of an md.log text, in order.

    Values print as ``nan``/``-nan``/``inf`` when the run blew up; they come back as
    float NaN or infinity. Steps without energies and the averages section are skipped.
    """
    lines = text.splitlines()
    blocks: list[EnergyBlock] = []
    i, n = 0, len(lines)
    while i < n:
        if re.match(r"^\s+Step\s+Time\s*$", lines[i]) and i + 1 < n:
            m = re.match(r"^\s+(\d+)\s+", lines[i + 1])
            if not m:
                i += 1
                continue
            step = int(m.group(1))
            j = i + 2
            while j < n and j < i + 10 and "Energies (kJ/mol)" not in lines[j]:
                if re.match(r"^\s+Step\s+Time\s*$", lines[j]) or "A V E R A G E S" in lines[j]:
                    break
                j += 1
            if j < n and "Energies (kJ/mol)" in lines[j]:
                values: dict[str, float] = {}
                k = j + 1
                while k + 1 < n and lines[k].strip():
                    names, nums = _columns(lines[k]), _columns(lines[k + 1])
                    if len(names) != len(nums):
                        break
                    for name, num in zip(names, nums, strict=True):
                        try:
                            values[name] = float(num)
                        except ValueError:
                            values[name] = math.nan
                    k += 2
                blocks.append(EnergyBlock(step, values))
                i = k
                continue
        i += 1
    return blocks


#: Messages of GROMACS that mean the system blew up (regex, short description).
BLOWUP_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"LINCS\s+WARNING", "LINCS warning"),
    (r"Too\s+many\s+LINCS\s+warnings", "too many LINCS warnings"),
    (r"can\s+not\s+be\s+settled|SETTLE\s+(?:warning|error)", "SETTLE failure"),
    (r"moved\s+(?:more\s+than|too\s+far)", "atoms moved too far"),
    (r"(?:atoms?|particles?)\b[^\n]{0,120}?\bnot\s+within\s+the", "atoms not within the domain"),
    (r"out\s+of\s+the\s+domain\s+decomposition\s+cell", "atoms out of the domain"),
    (r"total\s+potential\s+energy\s+is\s+\S+,\s+which\s+is\s+(?:not\s+finite|extremely\s+high)",
     "non-finite or extremely high potential energy"),
    (r"force\s+on\s+at\s+least\s+one\s+atom\s+is\s+not\s+finite", "non-finite force"),
    (r"simulation\s+with\s+major\s+instabilities", "coordinates too large for the trajectory"),
    (r"Segmentation\s+fault|core\s+dumped", "crash"),
)

#: ``Step N, time T (ps)  LINCS WARNING`` and similar lines that date a warning.
_WARNING_STEP = re.compile(r"Step\s+(\d+),\s+time\s+\S+\s+\(ps\)\s+(?:LINCS|SETTLE)")


def gromacs_error_text(text: str) -> str | None:
    """The last GROMACS error block of an output (``Fatal error:``, ``Internal error
    (bug):``, ``Error in user input:`` ...) as ``"<kind>: <message>"`` on one line."""
    found = None
    for m in re.finditer(
        r"^Program:[^\n]*\n(?:[^\n]+\n)*?\s*\n(?P<kind>[A-Z][^\n]*?):\s*\n(?P<body>.*?)"
        r"(?:\n\s*\nFor more information|\n-{20,}|\Z)",
        text, re.M | re.S,
    ):
        found = f"{m.group('kind')}: {' '.join(m.group('body').split())}"
    return found


@dataclass
class BlowUpScan:
    """Evidence of a blow-up in the current attempt's log and mdrun output.

    Attributes
    ----------
    evidence
        One line per finding (empty: no blow-up seen).
    first_bad_step
        The earliest step known to be bad (abnormal energies, dated warnings), or None.
    last_good_step
        The last energy block before ``first_bad_step`` (all blocks if none is bad), or
        None if there is no sound block.
    """

    evidence: list[str] = field(default_factory=list)
    first_bad_step: int | None = None
    last_good_step: int | None = None


def scan_blowup(
    log_segment: str,
    mdrun_out: str,
    facts: LogFacts,
    *,
    max_energy_per_atom_kj_mol: float = 1.0e4,
    max_temperature_factor: float = 3.0,
) -> BlowUpScan:
    """Look for a blow-up in the last log segment and the mdrun output.

    An energy block is abnormal when any value is NaN or infinite; for dynamics also when
    the potential, kinetic or total energy exceeds ``max_energy_per_atom_kj_mol`` per
    atom in magnitude, or the temperature exceeds ``max_temperature_factor`` times the
    highest thermostat reference temperature (the ``ref-t`` of the log). Minimisations
    start from overlapping atoms with huge finite energies, so only non-finite values
    count for them. Approximation: the thresholds are generous sanity bounds, not a
    stability analysis; a run that drifts slowly is not caught until it crosses them.
    """
    scan = BlowUpScan()
    texts = {"md.log": log_segment, "mdrun output": mdrun_out}
    for where, text in texts.items():
        for pattern, what in BLOWUP_PATTERNS:
            m = re.search(pattern, text)
            if m:
                start = text.rfind("\n", 0, m.start()) + 1
                end = text.find("\n", m.end())
                line = " ".join(text[start:end if end >= 0 else None].split())
                scan.evidence.append(f"{what} ({where}: {line[:200]})")
    bad_steps = [int(s) for text in texts.values() for s in _WARNING_STEP.findall(text)]
    m = re.search(r"Step\s+(\d+):\s+The\s+total\s+potential\s+energy", mdrun_out + log_segment)
    if m:
        bad_steps.append(int(m.group(1)))

    blocks = energy_blocks(log_segment)
    ref_t = max(facts.ref_t_k) if facts.ref_t_k else 0.0
    n_atoms = facts.n_atoms or 0
    for b in blocks:
        why = None
        bad = [k for k, v in b.values.items() if not math.isfinite(v)]
        if bad:
            why = f"non-finite {', '.join(bad)}"
        elif not facts.is_minimisation:
            for name in ("Potential", "Kinetic En.", "Total Energy"):
                v = b.values.get(name)
                if v is not None and n_atoms and abs(v) / n_atoms > max_energy_per_atom_kj_mol:
                    why = f"{name} = {v:.4g} kJ/mol ({abs(v) / n_atoms:.3g} per atom)"
                    break
            temp = b.values.get("Temperature")
            if why is None and temp is not None and ref_t > 0 \
                    and temp > max_temperature_factor * ref_t:
                why = f"Temperature = {temp:.4g} K (reference {ref_t:g} K)"
        if why:
            scan.evidence.append(f"abnormal energies at step {b.step}: {why}")
            bad_steps.append(b.step)
            break
    scan.first_bad_step = min(bad_steps) if bad_steps else None
    good = [b.step for b in blocks
            if scan.first_bad_step is None or b.step < scan.first_bad_step]
    scan.last_good_step = max(good) if good else None
    return scan


# --- grompp ------------------------------------------------------------------------------


def grompp_failure_message(output: str, directory: str | Path, top: str | Path | None = None,
                           returncode: int | None = None) -> str:
    """One message for a failed grompp: the input files and lines GROMACS blames and its
    ERROR / WARNING (when they made it stop) / Fatal error texts.

    ``[file X, line N]`` references are made absolute relative to ``directory``. A
    missing ``#include`` is located in ``top`` (file and line of the ``#include``).
    """
    d = Path(directory)
    parts: list[str] = []
    fatal = gromacs_error_text(output)
    too_many_warnings = bool(fatal and "Too many warnings" in fatal)
    for m in re.finditer(
        r"^(?P<kind>ERROR|WARNING)\s+\d+\s+\[file\s+(?P<file>[^,\]]+)(?:,\s+line\s+(?P<line>\d+))?\]:"
        r"\s*\n(?P<body>(?:[ \t]+\S.*\n?)+)",
        output, re.M,
    ):
        if m.group("kind") == "WARNING" and not too_many_warnings:
            continue
        where = str((d / m.group("file")).resolve()) if not Path(m.group("file")).is_absolute() \
            else m.group("file")
        if m.group("line"):
            where += f", line {m.group('line')}"
        parts.append(f"{m.group('kind')} [{where}]: {' '.join(m.group('body').split())}")
    if fatal:
        inc = re.search(r'include file "([^"]+)" not found', fatal)
        if inc and top is not None:
            top_path = resolve(d, top)
            for lineno, line in enumerate(read_text(top_path).splitlines(), start=1):
                if re.match(rf'\s*#include\s+["<]{re.escape(inc.group(1))}[">]', line):
                    fatal += f" [{top_path.resolve()}, line {lineno}]"
                    break
        parts.append(fatal)
    if not parts:
        tail = "\n".join(output.rstrip().splitlines()[-15:])
        parts.append(f"no GROMACS error text found; output tail:\n{tail}")
    code = f" (exit code {returncode})" if returncode is not None else ""
    return f"grompp failed{code}: " + "; ".join(parts)


# --- checkpoints -------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointInfo:
    """Step and time (ps) stored in an mdrun checkpoint."""

    path: Path
    step: int
    time_ps: float


def checkpoint_info(path: str | Path) -> CheckpointInfo:
    """Step and time of a checkpoint file, read with ``gmx dump -cp``.

    Raises
    ------
    EngineError
        If gmx cannot read the file (with its output tail).
    """
    path = Path(path)
    cmd = [eng.find_gmx(), "dump", "-cp", str(path)]
    res = subprocess.run(  # noqa: S603
        cmd, capture_output=True, text=True, check=False, env={**os.environ, **GMX_ENV},
    )
    step = re.search(r"^step = (\d+)", res.stdout, re.M)
    t = re.search(rf"^t = ({_FLOAT})", res.stdout, re.M)
    if res.returncode != 0 or step is None or t is None:
        tail = "\n".join((res.stdout + res.stderr).rstrip().splitlines()[-10:])
        raise EngineError(f"command {cmd} could not read checkpoint {path} "
                          f"(exit code {res.returncode}):\n{tail}")
    return CheckpointInfo(path, int(step.group(1)), float(t.group(1)))


def set_attempt_aside(directory: str | Path, deffnm: str, attempt: int) -> Path:
    """Move the outputs of attempt ``attempt`` to ``attempts/<deffnm>-<attempt>/``.

    Moves ``<deffnm>.{log,edr,xtc,trr,gro,cpt,tpr,mdrun.out}``, ``<deffnm>_prev.cpt`` and
    the ``step<N>{b,c}.pdb`` snapshots that mdrun writes on LINCS/SETTLE failures, where
    they exist, keeping their names. Returns the folder.
    """
    d = Path(directory)
    dest = d / ATTEMPTS_DIR / f"{deffnm}-{attempt}"
    dest.mkdir(parents=True, exist_ok=True)
    names = [f"{deffnm}{ext}" for ext in ATTEMPT_OUTPUTS] + [f"{deffnm}_prev.cpt"]
    names += [p.name for p in d.glob("step*.pdb") if re.fullmatch(r"step\d+[bc]\.pdb", p.name)]
    for name in names:
        src = d / name
        if src.exists():
            shutil.move(str(src), str(dest / name))
    return dest


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
    scan: BlowUpScan | None = None
    facts: LogFacts | None = None


def process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
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


@dataclass
class Thresholds:
    """Blow-up detection thresholds (see :func:`scan_blowup`) and the hang limit (s)."""

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
    state = load_state(d, deffnm)
    if state is not None:
        if state.phase == "grompp_failed":
            return Diagnosis("grompp_failed", [state.grompp_failure or "grompp failed"])
        if state.phase in ("new", "corrected") or state.plan.mode == "complete":
            return Diagnosis("none")
    log_path = d / f"{deffnm}.log"
    full_log = read_text(log_path)
    mdrun_out = read_text(d / f"{deffnm}{MDRUN_OUT_SUFFIX}", max_bytes=200_000)
    if state is None and not full_log and not mdrun_out:
        return Diagnosis("none")
    segment = last_log_segment(full_log)
    facts = log_facts(full_log)
    rc = state.returncode if state is not None else None
    running = state is not None and rc is None and process_alive(state.pid)
    scan = scan_blowup(segment, mdrun_out, facts,
                       max_energy_per_atom_kj_mol=th.max_energy_per_atom_kj_mol,
                       max_temperature_factor=th.max_temperature_factor)
    error = gromacs_error_text(mdrun_out) or gromacs_error_text(segment)
    diag = Diagnosis("none", returncode=rc, gromacs_error=error, scan=scan, facts=facts)
    if scan.evidence:
        diag.kind, diag.evidence = "blowup", list(scan.evidence)
        return diag
    sig = signal_of(rc)
    if running:
        if th.stall_s is not None:
            outputs = [d / f"{deffnm}{ext}" for ext in (".log", ".edr", ".xtc", ".trr", ".cpt",
                                                        MDRUN_OUT_SUFFIX)]
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
    finished = "Finished mdrun" in segment
    received = re.search(r"Received the (\w+) signal", segment)
    if error and not (finished and rc == 0):
        diag.kind, diag.evidence = "error", [error]
        return diag
    if sig in INTERRUPT_SIGNALS:
        diag.kind = "interrupted"
        diag.evidence = [f"mdrun was stopped by {signal_name(sig)} (exit code {rc})"]
        return diag
    if received:
        diag.kind = "interrupted"
        diag.evidence = [f"mdrun received the {received.group(1)} signal and stopped "
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
    blocks = energy_blocks(segment)
    last = blocks[-1].step if blocks else None
    final = facts.final_step
    if final is not None and (last is None or last < final):
        diag.kind = "interrupted"
        why = "hit the -maxh wall-time limit" if "Run time exceeded" in segment \
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
        state = load_state(directory, self.deffnm)
        return state is not None and state.phase == "grompp_failed"

    def correct(self, directory="./") -> dict:
        """Give up: ``actions`` is None."""
        state = load_state(directory, self.deffnm)
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
        Thresholds of :func:`scan_blowup`.
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
        state = load_state(d, self.deffnm)
        errors = list(diag.evidence)
        if diag.gromacs_error:
            errors.append(diag.gromacs_error)
        if state is None:
            errors.append(f"no run state {state_path(d, self.deffnm).name}: cannot plan a restart")
            return {"errors": errors, "actions": None}
        if state.n_blowup_corrections >= self.max_halvings:
            errors.append(f"gave up after {state.n_blowup_corrections} blow-up corrections "
                          f"(max_halvings = {self.max_halvings}); time steps used (ps): "
                          f"{state.dt_history_ps or 'n/a'}, emstep (nm): "
                          f"{state.emstep_history_nm or 'n/a'}")
            return {"errors": errors, "actions": None}
        mdp_path = resolve(d, state.plan.mdp)
        mdp_text = mdp_path.read_text()
        opts = eng.read_mdp(mdp_path)
        k = state.n_blowup_corrections + 1
        retry_name = f"{self.deffnm}_retry{k}.mdp"
        note = f"BlowUpHandler correction {k}"
        if mdp_integrator(opts) in MINIMISERS:
            return self._correct_minimisation(d, state, opts, mdp_text, retry_name, note, errors)
        dt_old = _float_option(opts, "dt", 0.001)
        dt_new = dt_old / 2.0
        if dt_new < self.min_dt_ps * (1 - 1e-9):
            errors.append(f"gave up: halving dt = {dt_old:g} ps would go below min_dt_ps = "
                          f"{self.min_dt_ps:g} ps; time steps used (ps): {state.dt_history_ps}")
            return {"errors": errors, "actions": None}
        good = self._good_checkpoint(d, diag)
        attempt_dir = set_attempt_aside(d, self.deffnm, state.attempt)
        rel_attempt = attempt_dir.relative_to(d)
        action: dict = {"dt_ps": [dt_old, dt_new], "mdp": retry_name,
                        "failed_attempt_outputs": str(rel_attempt)}
        if good is not None:
            cpt = rel_attempt / good.path.name
            upd = halved_dt_updates(opts, t_start_ps=good.time_ps)
            upd.update({"continuation": "yes", "gen-vel": "no"})
            state.segments.append(Segment(prefix=str(rel_attempt / self.deffnm),
                                          t_end_ps=good.time_ps))
            state.plan = RunPlan(mode="restart", mdp=retry_name, checkpoint=str(cpt),
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
            state.plan = RunPlan(mode="fresh" if not state.segments else "restart",
                                 mdp=retry_name, checkpoint=state.plan.checkpoint,
                                 premin_steps=premin)
            action.update({"action": "rerun_from_input", "nsteps": int(upd["nsteps"]),
                           "init_step": int(upd["init-step"]),
                           "reason": "no checkpoint before the blow-up"})
            if premin:
                action["premin_steps"] = premin
        (d / retry_name).write_text(edit_mdp(mdp_text, upd, note))
        state.dt_history_ps = (state.dt_history_ps or [dt_old]) + [dt_new]
        state.n_blowup_corrections = k
        state.phase, state.returncode, state.pid = "corrected", None, None
        save_state(d, state)
        return {"errors": errors, "actions": [action]}

    def _correct_minimisation(self, d: Path, state: RunState, opts: Mapping[str, str],
                              mdp_text: str, retry_name: str, note: str,
                              errors: list[str]) -> dict:
        emstep = _float_option(opts, "emstep", 0.01)
        nsteps = _int_option(opts, "nsteps", 0)
        upd = {"emstep": f"{emstep / 2.0:.6g}"}
        if nsteps > 0:
            upd["nsteps"] = str(2 * nsteps)
        attempt_dir = set_attempt_aside(d, self.deffnm, state.attempt)
        (d / retry_name).write_text(edit_mdp(mdp_text, upd, note))
        state.plan = RunPlan(mode="fresh", mdp=retry_name, checkpoint=state.plan.checkpoint,
                             premin_steps=0)
        state.emstep_history_nm = (state.emstep_history_nm or [emstep]) + [emstep / 2.0]
        state.n_blowup_corrections += 1
        state.phase, state.returncode, state.pid = "corrected", None, None
        save_state(d, state)
        return {"errors": errors, "actions": [{
            "action": "rerun_minimisation", "mdp": retry_name, "emstep_nm": [emstep, emstep / 2],
            "nsteps": int(upd.get("nsteps", nsteps)),
            "failed_attempt_outputs": str(attempt_dir.relative_to(d))}]}

    def _good_checkpoint(self, d: Path, diag: Diagnosis) -> CheckpointInfo | None:
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
            info = checkpoint_info(path)
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
        state = load_state(d, self.deffnm)
        errors = list(diag.evidence)
        if state is None:
            errors.append(f"no run state {state_path(d, self.deffnm).name}: cannot continue")
            return {"errors": errors, "actions": None}
        if state.n_continuations >= self.max_continuations:
            errors.append(f"gave up after {state.n_continuations} continuations "
                          f"(max_continuations = {self.max_continuations})")
            return {"errors": errors, "actions": None}
        cpt, tpr = d / f"{self.deffnm}.cpt", d / f"{self.deffnm}.tpr"
        if cpt.exists() and tpr.exists():
            info = checkpoint_info(cpt)
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
        save_state(d, state)
        return {"errors": errors, "actions": [action]}

