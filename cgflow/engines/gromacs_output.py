"""Reading what GROMACS writes: md.log, mdrun and grompp output, checkpoints.

Science level only, like :mod:`cgflow.engines.gromacs`: functions take texts or files and
return plain values and dataclasses. Every reading of GROMACS output in cgflow goes
through this module; the Custodian handlers and validators of :mod:`cgflow.jobs.gromacs`
decide what to do with what it finds.

=============================  ==========================================================
reader                         reads
=============================  ==========================================================
:func:`parse_md_log`           a summary of an mdrun log (:class:`MdLogInfo`): version,
                               normal end, steps, minimisation convergence, performance
:func:`log_facts`              the run parameters mdrun dumps at the top of its log
:func:`energy_blocks`          the ``Step Time`` energy blocks of a log (NaN/inf kept)
                               and :func:`last_energy_step`
:func:`last_log_segment`       the part of a log written by the last mdrun (after ``-cpi``)
:func:`scan_blowup`            evidence of a blow-up: LINCS/SETTLE warnings, atoms that
                               moved too far, non-finite or absurd energies
:func:`gromacs_errors`         the ``Fatal error:`` / ``Internal error (bug):`` ... blocks
:func:`grompp_failure_message` the input files, lines and errors grompp blames
:func:`checkpoint_info`        step and time of a checkpoint (``gmx dump -cp``)
=============================  ==========================================================

Units: GROMACS units (ps, nm, kJ/mol, K, bar).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cgflow.engines.gromacs import GMX_ENV, MINIMISERS, find_gmx, text_tail, version_in
from cgflow.errors import EngineError

#: A number as GROMACS prints it (``-1.2e+03``, ``0.00000``, ``.5``).
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
#: First line of the header that each mdrun process writes to its log.
_MDRUN_HEADER = ":-) GROMACS - gmx mdrun"
#: Header of an energy block and the line with its step and time below it.
_STEP_HEADER = re.compile(r"^\s*Step\s+Time\s*$")
_STEP_VALUES = re.compile(r"^\s*(\d+)\s+" + _FLOAT)


# --- files and log segments ------------------------------------------------------------------


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


def mdrun_finished(text: str) -> bool:
    """Whether an md.log (or a segment of it) says ``Finished mdrun``: a normal end, also
    after a ``-maxh`` stop or a signal."""
    return "Finished mdrun" in text


def signal_received(text: str) -> str | None:
    """The signal mdrun says it received and stopped on (``"TERM"``, ...), or None."""
    m = re.search(r"Received the (\w+) signal", text)
    return m.group(1) if m else None


def stopped_at_maxh(text: str) -> bool:
    """Whether mdrun reports hitting its ``-maxh`` wall-time limit."""
    return "Run time exceeded" in text


# --- run parameters and energy blocks --------------------------------------------------------


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


#: :class:`LogFacts` field -> (regex of its line in the log's parameter dump, conversion).
_FACT_PATTERNS: dict[str, tuple[str, Callable[[str], object]]] = {
    "integrator": (r"^\s*integrator\s*=\s*(\S+)", str.lower),
    "nsteps": (r"^\s*nsteps\s*=\s*(-?\d+)", int),
    "init_step": (r"^\s*init-step\s*=\s*(-?\d+)", int),
    "dt_ps": (rf"^\s*dt\s*=\s*({_FLOAT})", float),
    "tinit_ps": (rf"^\s*tinit\s*=\s*({_FLOAT})", float),
    "nstxout_compressed": (r"^\s*nstxout-compressed\s*=\s*(-?\d+)", int),
    "n_atoms": (r"^There are:\s*(\d+)\s+Atoms", int),
    "ref_t_k": (r"^\s*ref-t:\s*(.+)$", lambda v: [float(x) for x in re.findall(_FLOAT, v)]),
}


def log_facts(text: str) -> LogFacts:
    """:class:`LogFacts` from the (whole) text of an md.log (the first match of each)."""
    facts = LogFacts()
    for name, (pattern, convert) in _FACT_PATTERNS.items():
        if m := re.search(pattern, text, re.M):
            setattr(facts, name, convert(m.group(1)))
    return facts


def _step_headers(lines: list[str]) -> Iterator[tuple[int, int]]:
    """``(line index, step)`` of each ``Step Time`` header followed by its step and time."""
    for i in range(len(lines) - 1):
        if _STEP_HEADER.match(lines[i]) and (m := _STEP_VALUES.match(lines[i + 1])):
            yield i, int(m.group(1))


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
    n = len(lines)
    blocks: list[EnergyBlock] = []
    for i, step in _step_headers(lines):
        j = i + 2
        while j < n and j < i + 10 and "Energies (kJ/mol)" not in lines[j]:
            if _STEP_HEADER.match(lines[j]) or "A V E R A G E S" in lines[j]:
                break
            j += 1
        if j >= n or "Energies (kJ/mol)" not in lines[j]:
            continue
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
    return blocks


def last_energy_step(text: str) -> int | None:
    """Step of the last energy block of an md.log text (:func:`energy_blocks`), or None."""
    blocks = energy_blocks(text)
    return blocks[-1].step if blocks else None


# --- GROMACS errors --------------------------------------------------------------------------

#: The error block GROMACS prints (to stderr and the log) when a tool stops: ``Program:``,
#: ``Source file:`` ..., a blank line, ``<kind>:`` and the message.
_ERROR_BLOCK = re.compile(
    r"^Program:[^\n]*\n(?:[^\n]+\n)*?\s*\n(?P<kind>[A-Z][^\n]*?):\s*\n(?P<body>.*?)"
    r"(?:\n\s*\nFor more information|\n-{20,}|\Z)",
    re.M | re.S,
)


@dataclass(frozen=True)
class GromacsError:
    """One error block of a GROMACS tool's output.

    Attributes
    ----------
    kind
        ``Fatal error``, ``Internal error (bug)``, ``Error in user input``, ...
    message
        The message as printed (line breaks kept, surrounding white space stripped).
    """

    kind: str
    message: str

    def one_line(self) -> str:
        """``"<kind>: <message>"`` on one line."""
        return f"{self.kind}: {' '.join(self.message.split())}"


def gromacs_errors(text: str) -> list[GromacsError]:
    """The error blocks of a GROMACS output (md.log, mdrun or grompp output), in order."""
    return [GromacsError(m.group("kind"), m.group("body").strip())
            for m in _ERROR_BLOCK.finditer(text)]


def gromacs_error_text(text: str) -> str | None:
    """The last GROMACS error block of an output (``Fatal error:``, ``Internal error
    (bug):``, ``Error in user input:`` ...) as ``"<kind>: <message>"`` on one line."""
    errors = gromacs_errors(text)
    return errors[-1].one_line() if errors else None


# --- the md.log summary ----------------------------------------------------------------------


@dataclass
class MdLogInfo:
    """What :func:`parse_md_log` reads from an mdrun log.

    Attributes
    ----------
    gromacs_version
        Version string (``GROMACS version:`` line), or None.
    finished
        True if mdrun wrote ``Finished mdrun`` (a normal end, also after ``-maxh``).
    steps_requested
        ``nsteps`` of the input (None if not found).
    last_step
        Last step reported (the last ``Step Time`` header's step, or the step count of
        an energy minimisation), or None.
    converged
        Energy minimisation only: True/False for reached/missed ``emtol``, else None.
    ns_per_day, hours_per_ns
        From the ``Performance:`` line (dynamics only), or None.
    wall_time_s
        Wall time in s from the ``Time:`` line, or None.
    fatal_error
        Text of the first ``Fatal error:`` block, or None.
    """

    gromacs_version: str | None = None
    finished: bool = False
    steps_requested: int | None = None
    last_step: int | None = None
    converged: bool | None = None
    ns_per_day: float | None = None
    hours_per_ns: float | None = None
    wall_time_s: float | None = None
    fatal_error: str | None = None

    @property
    def steps_done(self) -> int | None:
        """Alias of :attr:`last_step`."""
        return self.last_step

    @property
    def completed(self) -> bool:
        """Finished normally and reached ``nsteps`` (or converged, for minimisation)."""
        if not self.finished or self.fatal_error:
            return False
        if self.converged is not None:
            return True  # minimisation ended normally (converged or at nsteps)
        return (self.steps_requested is not None and self.last_step is not None
                and self.last_step >= self.steps_requested)


def parse_md_log(path: str | Path) -> MdLogInfo:
    """Parse an mdrun ``.log`` file (a missing file raises :class:`EngineError`)."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise EngineError(f"cannot read mdrun log {path}: {exc}") from None
    info = MdLogInfo()
    info.gromacs_version = version_in(text)
    info.finished = mdrun_finished(text)
    info.steps_requested = log_facts(text).nsteps
    steps = [step for _, step in _step_headers(text.splitlines())]
    if steps:
        info.last_step = steps[-1]
    if m := re.search(r"converged to Fmax < \S+ in (\d+) steps", text):
        info.converged = True
        info.last_step = int(m.group(1))
    elif m := re.search(r"(?:did not converge to Fmax < \S+|converged to machine precision)"
                        r" in (\d+) steps", text):
        info.converged = False
        info.last_step = int(m.group(1))
    elif "Steepest Descents" in text and info.finished:
        info.converged = False
        if m := re.findall(r"Step=\s*(\d+)", text):
            info.last_step = int(m[-1])
    if m := re.search(r"^\s*Performance:\s+(" + _FLOAT + r")\s+(" + _FLOAT + ")", text, re.M):
        info.ns_per_day, info.hours_per_ns = float(m.group(1)), float(m.group(2))
    if m := re.search(r"^\s*Time:\s+(" + _FLOAT + r")\s+(" + _FLOAT + ")", text, re.M):
        info.wall_time_s = float(m.group(2))
    info.fatal_error = next((e.message for e in gromacs_errors(text) if e.kind == "Fatal error"),
                            None)
    return info


# --- blow-ups --------------------------------------------------------------------------------

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


# --- grompp ----------------------------------------------------------------------------------


def grompp_failure_message(output: str, directory: str | Path, top: str | Path | None = None,
                           returncode: int | None = None) -> str:
    """One message for a failed grompp: the input files and lines GROMACS blames and its
    ERROR / WARNING (when they made it stop) / Fatal error texts.

    ``[file X, line N]`` references are made absolute relative to ``directory``. A
    missing ``#include`` is located in ``top`` (absolute, or relative to ``directory``:
    file and line of the ``#include``).
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
            top_path = d / top  # an absolute top stays itself
            for lineno, line in enumerate(read_text(top_path).splitlines(), start=1):
                if re.match(rf'\s*#include\s+["<]{re.escape(inc.group(1))}[">]', line):
                    fatal += f" [{top_path.resolve()}, line {lineno}]"
                    break
        parts.append(fatal)
    if not parts:
        parts.append(f"no GROMACS error text found; output tail:\n{text_tail(output, 15)}")
    code = f" (exit code {returncode})" if returncode is not None else ""
    return f"grompp failed{code}: " + "; ".join(parts)


# --- checkpoints -----------------------------------------------------------------------------


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
    cmd = [find_gmx(), "dump", "-cp", str(path)]
    res = subprocess.run(  # noqa: S603
        cmd, capture_output=True, text=True, check=False, env={**os.environ, **GMX_ENV},
    )
    step = re.search(r"^step = (\d+)", res.stdout, re.M)
    t = re.search(rf"^t = ({_FLOAT})", res.stdout, re.M)
    if res.returncode != 0 or step is None or t is None:
        tail = text_tail(res.stdout + res.stderr, 10)
        raise EngineError(f"command {cmd} could not read checkpoint {path} "
                          f"(exit code {res.returncode}):\n{tail}")
    return CheckpointInfo(path, int(step.group(1)), float(t.group(1)))
