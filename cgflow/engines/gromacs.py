"""GROMACS layer of the all-atom stage: executable, time step, .mdp files, system
building and grompp/mdrun command lines.

Science level only: functions take and return files, arrays and plain values; the
Custodian jobs of :mod:`cgflow.jobs` call :func:`grompp_command`, :func:`mdrun_command`,
:func:`write_mdp` and :func:`edit_mdp`. What GROMACS writes (md.log, mdrun and grompp
output, checkpoints) is read by :mod:`cgflow.engines.gromacs_output`.

All files of one parameter set live in one run directory::

    molecule.gro  topol.top  box.gro          (build_system)
    em.*  nvt.*  npt.*  prod.*                (one deffnm per stage, see STAGE_DEFFNM)

Units are GROMACS units: nm, ps, kJ/mol, K, bar; densities given in g/cm^3 are named so.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cgflow import units
from cgflow.errors import EngineError, InvalidInputError, full_disk_note
from cgflow.molecule import build_coordinates
from cgflow.molecule.registry import MoleculeSpec, resolve_molecule
from cgflow.molecule.topology import write_gro, write_topology
from cgflow.params import ParameterSet
from cgflow.presets import AAPreset
from cgflow.settings import ENV_VARS, find_executable

# --- names of stages and files ---------------------------------------------------------------

#: Stage names in run order.
STAGES: tuple[str, ...] = ("em", "nvt", "npt", "production")
#: Stage name -> ``-deffnm`` (file stem) of its files in the run directory.
STAGE_DEFFNM: dict[str, str] = {"em": "em", "nvt": "nvt", "npt": "npt", "production": "prod"}
Stage = Literal["em", "nvt", "npt", "production"]

#: File names written by :func:`build_system`.
MOLECULE_GRO = "molecule.gro"
TOPOLOGY_TOP = "topol.top"
BOX_GRO = "box.gro"

#: Environment variable naming the gmx executable (a path or a name on PATH).
GMX_ENV_VAR = ENV_VARS["gmx"]
#: Environment added to gmx commands that must leave no ``#file.1#`` back-ups of the
#: files they overwrite.
GMX_ENV = {"GMX_MAXBACKUP": "-1"}

#: Density (g/cm^3) that the liquid reaches after NPT, used for the box-size check
#: (experimental 2,3,4-trimethylpentane at 298 K: about 0.715 g/cm^3).
LIQUID_DENSITY_G_CM3 = 0.72
#: Insertion tries per molecule of the first ``gmx insert-molecules`` attempt (``-try``).
INSERT_TRIES = 500
#: Factor applied to the box edge after a failed insertion attempt.
INSERT_EDGE_GROWTH = 1.05
#: Margin (nm) added to the cut-off in the box-size check: edge >= 2 (rcut + margin).
BOX_MARGIN_NM = 0.1

#: Isothermal compressibility (1/bar) given to the barostat: liquid alkanes are about
#: 1e-4 to 1.5e-4 bar^-1 at room temperature. It sets only how fast the box responds
#: (water's 4.5e-5 would be about twice as slow), not the equilibrium density.
COMPRESSIBILITY_PER_BAR = 1.0e-4
#: Barostat time constant (ps) of the C-rescale barostat.
TAU_P_PS = 2.0
#: Thermostat time constants (ps): short while heating in NVT, gentle in NPT and
#: production so that the dynamics (diffusion) is little perturbed.
TAU_T_PS = {"nvt": 0.1, "npt": 1.0, "production": 1.0}
#: Energy-minimisation tolerance: maximum force, kJ/mol/nm.
EM_TOL = 100.0
#: Default checkpoint interval of mdrun (minutes).
CPT_MINUTES = 5.0

# --- executable ------------------------------------------------------------------------------


def find_gmx() -> str:
    """Path of the ``gmx`` executable.

    ``$CGFLOW_GMX`` (a path or a command name) overrides; otherwise ``gmx`` on ``PATH``.

    Raises
    ------
    EngineError
        If the executable cannot be found.
    """
    return find_executable("gmx", "GROMACS",
                           f"Install GROMACS 2022 or set {GMX_ENV_VAR} to the gmx executable.")


@lru_cache(maxsize=8)
def _version_of(exe: str) -> str:
    res = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    text = res.stdout + res.stderr
    version = version_in(text)
    if res.returncode != 0 or version is None:
        raise EngineError(
            f"command [{exe!r}, '--version'] failed (exit code {res.returncode}):\n"
            + text_tail(text)
        )
    return version


def version_in(text: str) -> str | None:
    """The version of the first ``GROMACS version:`` line of a text (the output of ``gmx
    --version`` or the header of an md.log), or None."""
    m = re.search(r"^\s*GROMACS version:\s*(\S+)", text, re.M)
    return m.group(1) if m else None


def gromacs_version() -> str:
    """Version string of the GROMACS found by :func:`find_gmx` (e.g. ``2022.5-Debian_2022.5_2``)."""
    return _version_of(find_gmx())


def gromacs_topology_dir() -> Path:
    """The GROMACS force-field directory (``share/gromacs/top``).

    ``$GMXDATA/top`` if ``GMXDATA`` is set, else ``<prefix>/share/gromacs/top`` next to the
    gmx executable.
    """
    env = os.environ.get("GMXDATA")
    if env:
        return Path(env) / "top"
    return Path(find_gmx()).resolve().parent.parent / "share" / "gromacs" / "top"


# --- running commands -----------------------------------------------------------------------


def text_tail(text: str, n_lines: int = 40) -> str:
    """The last ``n_lines`` lines of ``text`` (for error messages)."""
    return "\n".join(text.rstrip().splitlines()[-n_lines:])


def run_command(
    cmd: Sequence[str],
    cwd: str | Path,
    log_path: str | Path,
    *,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd``; stdout and stderr go (merged) to ``log_path``.

    Parameters
    ----------
    cmd
        Command and arguments (no shell).
    cwd
        Working directory.
    log_path
        File that receives the merged output as it is produced (relative paths are
        relative to ``cwd``).
    input_text
        Text fed to standard input (for interactive gmx tools).
    env
        Extra environment variables, added to the current environment.
    timeout_s
        Kill the command after this many seconds (raises :class:`EngineError`).

    Returns
    -------
    subprocess.CompletedProcess
        With ``stdout`` holding the merged output text.

    Raises
    ------
    EngineError
        On a non-zero exit code or a timeout, with the command, the exit code and the
        tail of the output.
    """
    cmd = [str(c) for c in cmd]
    cwd = Path(cwd)
    log = Path(log_path)
    if not log.is_absolute():
        log = cwd / log
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        with log.open("w") as out:  # streamed, so that a long run's output can be followed
            res = subprocess.run(  # noqa: S603
                cmd, cwd=cwd, input=input_text, stdout=out, stderr=subprocess.STDOUT,
                text=True, env=full_env, timeout=timeout_s, check=False,
            )
    except subprocess.TimeoutExpired:
        raise EngineError(
            f"command {cmd} timed out after {timeout_s} s in {cwd}; output tail "
            f"(full output in {log}):\n{text_tail(log.read_text(errors='replace'))}"
        ) from None
    except OSError as exc:
        raise EngineError(f"command {cmd} could not be started in {cwd}: {exc}") from None
    res.stdout = log.read_text(errors="replace")
    if res.returncode != 0:
        note = full_disk_note(cwd)
        raise EngineError(
            f"command {cmd} failed with exit code {res.returncode} in {cwd}"
            + (f" ({note})" if note else "")
            + f"; output tail (full output in {log}):\n{text_tail(res.stdout)}"
        )
    return res


# --- time step -------------------------------------------------------------------------------

#: Integration steps per period of the fastest harmonic vibration. OPLS-AA's C-H bond
#: (period 11.4 fs) then gets the customary 1 fs of unconstrained all-atom MD.
STEPS_PER_PERIOD = 11.0
#: The time step is rounded down to a multiple of this (ps), i.e. 0.05 fs.
DT_QUANTUM_PS = 0.00005
#: Smallest time step accepted (ps); a parameter set that needs less is rejected.
DT_MIN_PS = 0.0001


def vibration_periods_ps(ps: ParameterSet) -> dict[str, float]:
    """Harmonic periods (ps) of the isolated bonded vibrations of a parameter set.

    Bonds: ``T = 2 pi sqrt(mu / k)`` with the reduced mass ``mu`` of C-H or C-C.
    Angles: ``T = 2 pi / sqrt(k G)`` with Wilson's G-matrix element of a bend ``A-B-C``,
    ``G = 1/(m_A r1^2) + 1/(m_C r2^2) + (1/r1^2 + 1/r2^2 - 2 cos(theta0)/(r1 r2)) / m_B``,
    at the equilibrium ``r0`` and ``theta0`` (so short bonds make bends fast).
    Approximation: vibrations are treated as uncoupled normal modes; the dihedrals are far
    slower and are not considered. Units: k in kJ/mol/nm^2 (or /rad^2), masses in g/mol,
    so that sqrt(k/m) is in 1/ps.

    Returns
    -------
    dict
        Parameter field of the force constant (``bond_cthc_k``, ...) -> period in ps.
    """
    m_c, m_h = 12.011, 1.008
    mass = {"CT": m_c, "HC": m_h}
    r = {("CT", "CT"): ps.bond_ctct_r0, ("CT", "HC"): ps.bond_cthc_r0,
         ("HC", "CT"): ps.bond_cthc_r0}
    out: dict[str, float] = {}
    for kind, (a, b) in {"ctct": ("CT", "CT"), "cthc": ("CT", "HC")}.items():
        mu = mass[a] * mass[b] / (mass[a] + mass[b])
        out[f"bond_{kind}_k"] = 2.0 * math.pi * math.sqrt(mu / getattr(ps, f"bond_{kind}_k"))
    for kind, (a, b, c) in {"ctctct": ("CT", "CT", "CT"), "ctcthc": ("CT", "CT", "HC"),
                            "hcthc": ("HC", "CT", "HC")}.items():
        r1, r2 = r[(a, b)], r[(b, c)]
        th = math.radians(getattr(ps, f"angle_{kind}_theta0"))
        g = (1.0 / (mass[a] * r1**2) + 1.0 / (mass[c] * r2**2)
             + (1.0 / r1**2 + 1.0 / r2**2 - 2.0 * math.cos(th) / (r1 * r2)) / mass[b])
        out[f"angle_{kind}_k"] = 2.0 * math.pi / math.sqrt(getattr(ps, f"angle_{kind}_k") * g)
    return out


def choose_timestep(ps: ParameterSet, preset: AAPreset) -> float:
    """MD time step (ps) for a parameter set, without constraints.

    ``dt = min(preset.dt_max_ps, T_min / 11)`` rounded down to a multiple of 0.05 fs, where
    ``T_min`` is the shortest period of :func:`vibration_periods_ps` (bond stretches and
    angle bends). Eleven steps per period is what the usual 1 fs gives OPLS-AA's C-H
    stretch (period 11.4 fs), so every parameter set is integrated with the same accuracy
    as the reference: OPLS-AA gets 1.0 fs, the stiffest C-H bond of the wide space (LAMMPS
    K = 990 kcal/mol/A^2, period 6.7 fs) 0.6 fs.

    Raises
    ------
    InvalidInputError
        If the result would be below 0.1 fs (naming the limiting force constant).
    """
    periods = vibration_periods_ps(ps)
    field = min(periods, key=periods.__getitem__)
    dt = min(preset.dt_max_ps, periods[field] / STEPS_PER_PERIOD)
    dt = math.floor(dt / DT_QUANTUM_PS + 1e-6) * DT_QUANTUM_PS
    dt = round(dt, 8)
    if dt < DT_MIN_PS:
        raise InvalidInputError(
            f"field '{field}': value {getattr(ps, field)!r} makes a vibration period of "
            f"{units.ps_to_fs(periods[field]):.3g} fs, which needs a time step below "
            f"{units.ps_to_fs(DT_MIN_PS)} fs"
        )
    return dt


# --- mdp files -------------------------------------------------------------------------------


def _steps(interval_ps: float, dt_ps: float, name: str) -> int:
    n = round(interval_ps / dt_ps)
    if n < 1:
        raise InvalidInputError(f"field '{name}': value {interval_ps!r} ps is shorter than the "
                                f"time step {dt_ps} ps")
    return n


def mdp_settings(
    stage: Stage,
    preset: AAPreset,
    dt_ps: float,
    *,
    continuation: bool = False,
    nsteps: int | None = None,
    gen_seed: int = 20240,
) -> dict[str, str]:
    """The mdp options of a stage as an ordered mapping (see :func:`write_mdp`)."""
    if stage not in STAGES:
        raise InvalidInputError(
            f"field 'stage': unknown value {stage!r} (expected one of {STAGES})"
        )
    if not (isinstance(dt_ps, int | float) and math.isfinite(dt_ps) and dt_ps > 0):
        raise InvalidInputError(f"field 'dt_ps': must be a positive number, got {dt_ps!r}")
    if nsteps is not None and (not isinstance(nsteps, int) or nsteps < 0):
        raise InvalidInputError(f"field 'nsteps': must be an integer >= 0, got {nsteps!r}")
    o: dict[str, str] = {}
    if stage == "em":
        o["integrator"] = "steep"
        o["emtol"] = f"{EM_TOL:g}"
        o["emstep"] = "0.001"
        o["nsteps"] = str(preset.em_steps if nsteps is None else nsteps)
        o["nstenergy"] = "100"
        o["nstlog"] = "100"
    else:
        length_ps = {"nvt": preset.nvt_ps, "npt": preset.npt_ps,
                     "production": preset.production_ps}[stage]
        n = round(length_ps / dt_ps) if nsteps is None else nsteps
        nstenergy = _steps(preset.energy_interval_ps, dt_ps, "energy_interval_ps")
        if nstenergy > 20:  # a multiple of 10 steps, so that energies need not be computed
            nstenergy = 10 * round(nstenergy / 10)  # at every step (nstcalcenergy)
        nstcalc = max(d for d in range(1, min(nstenergy, 100) + 1) if nstenergy % d == 0)
        o["integrator"] = "md"
        o["dt"] = f"{dt_ps:.8g}"
        o["nsteps"] = str(n)
        o["nstcalcenergy"] = str(nstcalc)
        o["nstenergy"] = str(nstenergy)
        o["nstlog"] = str(nstenergy * max(1, round(1.0 / preset.energy_interval_ps)))
        o["nstxout"] = "0"
        o["nstvout"] = "0"
        o["nstfout"] = "0"
        if stage == "production":
            o["nstxout-compressed"] = str(_steps(preset.traj_interval_ps, dt_ps,
                                                 "traj_interval_ps"))
            o["compressed-x-precision"] = "1000"
        else:
            o["nstxout-compressed"] = "0"
        o["comm-mode"] = "Linear"
    o["cutoff-scheme"] = "Verlet"
    o["nstlist"] = "10"
    o["pbc"] = "xyz"
    o["coulombtype"] = "PME"
    o["rcoulomb"] = f"{preset.rcut_nm:g}"
    o["fourierspacing"] = "0.12"
    o["pme-order"] = "4"
    o["vdwtype"] = "Cut-off"
    o["vdw-modifier"] = "Potential-shift"
    o["rvdw"] = f"{preset.rcut_nm:g}"
    o["DispCorr"] = "EnerPres"
    o["constraints"] = "none"
    if stage != "em":
        o["tcoupl"] = "V-rescale"
        o["tc-grps"] = "System"
        o["tau-t"] = f"{TAU_T_PS[stage]:g}"
        o["ref-t"] = f"{preset.temperature_k:g}"
        if stage == "nvt":
            o["pcoupl"] = "no"
        else:
            o["pcoupl"] = "C-rescale"
            o["pcoupltype"] = "isotropic"
            o["tau-p"] = f"{TAU_P_PS:g}"
            o["ref-p"] = f"{preset.pressure_bar:g}"
            o["compressibility"] = f"{COMPRESSIBILITY_PER_BAR:g}"
        gen = stage == "nvt" and not continuation
        o["gen-vel"] = "yes" if gen else "no"
        if gen:
            o["gen-temp"] = f"{preset.temperature_k:g}"
            o["gen-seed"] = str(int(gen_seed))
        o["continuation"] = "yes" if continuation else "no"
    return o


def write_mdp(
    stage: Stage,
    preset: AAPreset,
    dt_ps: float,
    path: str | Path,
    *,
    continuation: bool = False,
    nsteps: int | None = None,
    gen_seed: int = 20240,
) -> Path:
    """Write the ``.mdp`` file of a stage.

    Parameters
    ----------
    stage
        ``"em"`` (steepest descent to a maximum force of 100 kJ/mol/nm, ``preset.em_steps``
        steps), ``"nvt"`` (V-rescale at ``preset.temperature_k``, velocities generated),
        ``"npt"`` (V-rescale + C-rescale barostat, isotropic, ``preset.pressure_bar``) or
        ``"production"`` (as ``"npt"``, with an xtc frame every ``preset.traj_interval_ps``).
    preset
        All-atom preset: run lengths (ps), output intervals (ps), cut-off (nm), T and p.
    dt_ps
        Time step in ps (see :func:`choose_timestep`); ignored for ``"em"``.
    path
        Output file.
    continuation
        The stage continues from the previous stage's state (its checkpoint passed to
        grompp ``-t``): writes ``continuation = yes`` and never generates velocities.
        ``"npt"`` and ``"production"`` never generate velocities either way; they take
        them from the ``-t`` checkpoint (or the input .gro).
    nsteps
        Number of steps instead of the preset's length (em: instead of ``em_steps``).
    gen_seed
        Seed of the Maxwell-Boltzmann velocities of ``"nvt"`` (reproducible runs).

    Notes
    -----
    Common settings: Verlet lists, PME electrostatics and a plain LJ cut-off (potential
    shift) both at ``preset.rcut_nm``, long-range dispersion correction for energy and
    pressure (``DispCorr = EnerPres``, as OPLS-AA is parameterised with it), no
    constraints (the C-H force constant is a varied parameter). Energies are written every
    ``preset.energy_interval_ps`` (rounded to a multiple of 10 steps when it is more than 20
    steps, so the actual interval may differ by up to 5 steps; read times from the file),
    xtc frames every ``preset.traj_interval_ps`` rounded to whole steps; the energy file
    always holds the full pressure tensor (``Pres-XX`` ... ``Pres-ZZ``), the box, volume and
    density. Checkpoints for resuming are written by mdrun (``-cpt`` minutes, see
    :func:`mdrun_command`), not set here.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    opts = mdp_settings(stage, preset, dt_ps, continuation=continuation, nsteps=nsteps,
                        gen_seed=gen_seed)
    path = Path(path)
    lines = [f"; cgflow {stage} stage, preset {preset.name}"]
    lines += [f"{k:<24s} = {v}" for k, v in opts.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _mdp_key(key: str) -> str:
    """An mdp option name as GROMACS compares them: case-insensitive, ``_`` as ``-``."""
    return key.strip().lower().replace("_", "-")


def read_mdp(path: str | Path) -> dict[str, str]:
    """Options of an ``.mdp`` file (keys lower-case with ``_`` as ``-``, comments dropped)."""
    out: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.split(";", 1)[0].strip()
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        out[_mdp_key(k)] = v.strip()
    return out


def edit_mdp(text: str, updates: Mapping[str, str | None], note: str) -> str:
    """``text`` of an mdp with options replaced, added or (value None) removed.

    Keys compare case-insensitively with ``_`` and ``-`` equal. Other lines, comments and
    the order are kept; new options go to the end under ``; <note>``.
    """
    pending = {_mdp_key(k): v for k, v in updates.items()}
    seen: set[str] = set()
    out: list[str] = []
    for line in text.splitlines():
        body = line.split(";", 1)[0]
        if "=" in body:
            key = _mdp_key(body.split("=", 1)[0])
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


def _mdp_number(opts: Mapping[str, str], key: str, default: float,
                parse: Callable[[str], float]) -> float:
    """Option ``key`` of mdp options read by ``parse``, ``default`` if unset or empty."""
    raw = opts.get(key)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except (ValueError, IndexError):
        raise InvalidInputError(f"mdp option '{key}': value {raw!r} is not a number") from None


def mdp_int(opts: Mapping[str, str], key: str, default: int) -> int:
    """Integer option ``key`` of mdp options (:func:`read_mdp`), ``default`` if unset.

    Raises
    ------
    InvalidInputError
        If the value is not a number.
    """
    return int(_mdp_number(opts, key, default, float))


def mdp_float(opts: Mapping[str, str], key: str, default: float) -> float:
    """Number option ``key`` of mdp options (its first word), ``default`` if unset.

    Raises
    ------
    InvalidInputError
        If the value is not a number.
    """
    return _mdp_number(opts, key, default, lambda raw: float(raw.split()[0]))


#: mdrun integrators that minimise the energy instead of integrating the dynamics.
MINIMISERS = frozenset({"steep", "cg", "l-bfgs"})


def mdp_integrator(opts: Mapping[str, str]) -> str:
    """The integrator of mdp options (GROMACS default ``md``)."""
    return opts.get("integrator", "md").strip().lower()


#: Options copied from a stage's mdp into the mdp of a minimisation before it.
_INTERACTION_KEYS = (
    "define", "cutoff-scheme", "nstlist", "pbc", "periodic-molecules",
    "verlet-buffer-tolerance", "rlist", "coulombtype", "coulomb-modifier", "rcoulomb",
    "rcoulomb-switch", "epsilon-r", "epsilon-rf", "vdwtype", "vdw-type", "vdw-modifier",
    "rvdw", "rvdw-switch", "dispcorr", "fourierspacing", "fourier-nx", "fourier-ny",
    "fourier-nz", "pme-order", "ewald-rtol", "ewald-rtol-lj", "ewald-geometry",
    "lj-pme-comb-rule", "table-extension", "constraints", "constraint-algorithm",
    "lincs-order", "lincs-iter", "freezegrps", "freezedim", "energygrps",
)


def minimisation_mdp(stage_opts: Mapping[str, str], nsteps: int,
                     title: str = "steepest-descent minimisation") -> str:
    """Text of a steepest-descent mdp with the interaction settings of a stage's mdp.

    Tolerance 100 kJ/mol/nm (:data:`EM_TOL`), initial step 0.001 nm, ``nsteps`` steps;
    ``stage_opts`` as :func:`read_mdp` gives them, ``title`` the first (comment) line.
    """
    lines = [f"; {title}",
             "integrator               = steep",
             f"nsteps                   = {int(nsteps)}",
             f"emtol                    = {EM_TOL:g}",
             "emstep                   = 0.001",
             "nstlog                   = 100",
             "nstenergy                = 100"]
    lines += [f"{k:<24s} = {stage_opts[k]}" for k in _INTERACTION_KEYS if k in stage_opts]
    return "\n".join(lines) + "\n"


# --- command lines -----------------------------------------------------------------------------


def grompp_command(
    mdp: str | Path,
    conf: str | Path,
    top: str | Path,
    tpr: str | Path,
    *,
    checkpoint: str | Path | None = None,
    maxwarn: int = 0,
) -> list[str]:
    """``gmx grompp`` command line.

    The processed mdp (``-po``) is written next to the tpr as ``<tpr stem>.mdout.mdp``, so
    stages in one directory do not overwrite each other's. ``checkpoint`` (a previous
    stage's ``.cpt``) goes to ``-t`` to carry over velocities and barostat state.
    """
    tpr = Path(tpr)
    cmd = [find_gmx(), "grompp", "-f", str(mdp), "-c", str(conf), "-p", str(top),
           "-o", str(tpr), "-po", str(tpr.with_suffix(".mdout.mdp"))]
    if checkpoint is not None:
        cmd += ["-t", str(checkpoint)]
    cmd += ["-maxwarn", str(int(maxwarn))]
    return cmd


def mdrun_command(
    deffnm: str,
    *,
    threads: int,
    maxh: float,
    checkpoint_in: str | Path | None = None,
    cpt_minutes: float = CPT_MINUTES,
) -> list[str]:
    """``gmx mdrun`` command line.

    One thread-MPI rank with ``threads`` OpenMP threads (no domain decomposition, which
    small boxes do not allow), no thread pinning (the machine is shared), a wall-time
    limit ``maxh`` hours after which mdrun writes a checkpoint and stops cleanly, and a
    checkpoint every ``cpt_minutes``. ``checkpoint_in`` resumes from that checkpoint
    (``-cpi``, appending to the existing output files).
    """
    if not isinstance(threads, int) or threads < 1:
        raise InvalidInputError(f"field 'threads': must be an integer >= 1, got {threads!r}")
    if not maxh > 0:
        raise InvalidInputError(f"field 'maxh': must be > 0 hours, got {maxh!r}")
    cmd = [find_gmx(), "mdrun", "-deffnm", deffnm, "-ntmpi", "1", "-ntomp", str(threads),
           "-pin", "off", "-maxh", f"{maxh:g}", "-cpt", f"{cpt_minutes:g}"]
    if checkpoint_in is not None:
        cmd += ["-cpi", str(checkpoint_in)]
    return cmd


# --- system building -------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemFiles:
    """Files written by :func:`build_system` (absolute paths) and the box built."""

    molecule_gro: Path
    topology: Path
    box_gro: Path
    n_molecules: int
    box_edge_nm: float


def box_edge_nm(n_molecules: int, density_g_cm3: float,
                molecule: MoleculeSpec | None = None) -> float:
    """Edge (nm) of the cubic box holding ``n_molecules`` of ``molecule`` (default
    2,3,4-trimethylpentane) at ``density_g_cm3``."""
    mass = resolve_molecule(molecule).molar_mass_g_mol
    n_per_nm3 = units.number_density_nm3(units.density_g_cm3_to_kg_m3(density_g_cm3), mass)
    return (n_molecules / n_per_nm3) ** (1.0 / 3.0)


def liquid_density_g_cm3(molecule: MoleculeSpec | None = None) -> float:
    """The liquid density boxes are sized at: the molecule's density guess (for the
    default molecule :data:`LIQUID_DENSITY_G_CM3`), g/cm^3."""
    return resolve_molecule(molecule).density_guess_kg_m3 / 1000.0


def build_density_g_cm3(preset: AAPreset, molecule: MoleculeSpec | None = None) -> float:
    """Density the box is built at: the preset's, scaled by the molecule's liquid density
    over 2,3,4-trimethylpentane's (:data:`LIQUID_DENSITY_G_CM3`), so that every liquid
    starts at the same fraction of its own density (unchanged for the default)."""
    return preset.build_density_g_cm3 * liquid_density_g_cm3(molecule) / LIQUID_DENSITY_G_CM3


def check_box_size(preset: AAPreset, molecule: MoleculeSpec | None = None) -> float:
    """Check that the liquid box is large enough for the cut-off.

    The box edge at the molecule's liquid density (:func:`liquid_density_g_cm3`) must be
    at least ``2 (preset.rcut_nm + 0.1 nm)`` (minimum image plus pair-list buffer).

    Returns
    -------
    float
        The liquid box edge in nm.

    Raises
    ------
    InvalidInputError
        Naming ``n_molecules`` and ``rcut_nm`` with their values.
    """
    liquid = liquid_density_g_cm3(molecule)
    edge = box_edge_nm(preset.n_molecules, liquid, molecule)
    need = 2.0 * (preset.rcut_nm + BOX_MARGIN_NM)
    if edge < need:
        n_min = math.ceil(preset.n_molecules * (need / edge) ** 3)
        raise InvalidInputError(
            f"preset {preset.name!r}: fields 'n_molecules' = {preset.n_molecules} and "
            f"'rcut_nm' = {preset.rcut_nm}: the liquid box ({edge:.3f} nm at "
            f"{liquid:g} g/cm^3) is smaller than 2*(rcut_nm + {BOX_MARGIN_NM}) "
            f"= {need:.3f} nm; use at least {n_min} molecules or a shorter cut-off"
        )
    return edge


def _count_gro_atoms(path: Path) -> int:
    """The atom count on the second line of a .gro file.

    Raises
    ------
    EngineError
        If the file is cut short or unreadable (naming it, and a full disk if so).
    """
    try:
        with path.open() as f:
            f.readline()
            return int(f.readline().split()[0])
    except (OSError, ValueError, IndexError) as exc:
        note = full_disk_note(path.parent)
        raise EngineError(f"{path} is cut short or unreadable ({type(exc).__name__}: {exc})"
                          + (f"; {note}" if note else "")) from exc


def build_system(
    ps: ParameterSet,
    preset: AAPreset,
    workdir: str | Path,
    *,
    seed: int = 1,
    max_attempts: int = 6,
    molecule: MoleculeSpec | None = None,
) -> SystemFiles:
    """Write ``molecule.gro``, ``topol.top`` and ``box.gro`` into ``workdir``.

    The molecule (``molecule``, default 2,3,4-trimethylpentane) is built by
    :func:`cgflow.molecule.build_coordinates` from the parameter set's ``r0`` and
    ``theta0``; ``preset.n_molecules`` copies are inserted at random positions and
    orientations into a cubic box at :func:`build_density_g_cm3` with
    ``gmx insert-molecules -seed seed``. If not all fit (parameter sets with long bonds
    make large molecules), the box volume grows by the ratio of requested to placed
    molecules (the edge by at least 5 %, at most 50 %) and the number of tries per molecule
    doubles (from 500, at most 2000), up to ``max_attempts`` attempts; NPT then compresses
    the box.

    Returns
    -------
    SystemFiles
        Paths of the three files, the number of molecules and the box edge (nm).

    Raises
    ------
    InvalidInputError
        If the liquid box would be too small for the cut-off (see :func:`check_box_size`).
    EngineError
        If gmx insert-molecules fails or cannot place all molecules (with its output).
    """
    spec = resolve_molecule(molecule)
    check_box_size(preset, spec)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    mol = spec.molecule
    x = build_coordinates(ps, mol)
    extent = float((x.max(axis=0) - x.min(axis=0)).max())
    mol_box = extent + 1.0
    mol_gro = write_gro(workdir / MOLECULE_GRO, x + 0.5 * mol_box, mol_box,
                        title=f"{mol.label}, parameter set {ps.id}", molecule=mol)
    top = write_topology(ps, workdir / TOPOLOGY_TOP, preset.n_molecules, molecule=mol)
    edge = box_edge_nm(preset.n_molecules, build_density_g_cm3(preset, spec), spec)
    tries = INSERT_TRIES
    box = workdir / BOX_GRO
    last_output = ""
    for attempt in range(1, max_attempts + 1):
        cmd = [find_gmx(), "insert-molecules", "-ci", MOLECULE_GRO,
               "-nmol", str(preset.n_molecules), "-box", *(f"{edge:.4f}",) * 3,
               "-try", str(tries), "-seed", str(seed), "-o", BOX_GRO]
        res = run_command(cmd, workdir, f"insert-molecules.{attempt}.log", env=GMX_ENV)
        last_output = res.stdout
        n_added = (_count_gro_atoms(box) if box.exists() else 0) // mol.n_atoms
        if n_added == preset.n_molecules:
            return SystemFiles(mol_gro, top, box, preset.n_molecules, edge)
        if attempt < max_attempts:
            # grow the volume by the missing fraction (at least 5 % on the edge)
            ratio = preset.n_molecules / max(n_added, 1)
            edge *= max(INSERT_EDGE_GROWTH, min(ratio ** (1.0 / 3.0), 1.5))
            tries = min(2 * tries, 4 * INSERT_TRIES)
    box.unlink(missing_ok=True)
    summary = [ln for ln in last_output.splitlines() if not ln.startswith("Try ")]
    raise EngineError(
        f"gmx insert-molecules placed fewer than {preset.n_molecules} molecules after "
        f"{max_attempts} attempts (last box edge {edge:.3f} nm, -seed {seed}) in {workdir}; "
        f"output tail:\n{text_tail(chr(10).join(summary))}"
    )
