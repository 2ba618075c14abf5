"""Run presets: system sizes and run lengths of the all-atom and coarse-grained stages.

``tiny`` is for tests (seconds per stage), ``demo`` for the README's main job (a few
minutes per parameter set on 2 cores), ``reference`` for the committed learning dataset
(about two minutes per set on 2 cores), ``paper`` for a cluster (about 1000 molecules and
nanoseconds of production, as in the original study).

All times are in ps and temperatures in K, pressures in bar (GROMACS units); the CG
stage converts to LAMMPS units where it writes its inputs.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cgflow.errors import InvalidInputError


class AAPreset(BaseModel):
    """Size and length of the all-atom (GROMACS) stage.

    The time step ``dt_max_ps`` is an upper bound: :func:`cgflow.engines.gromacs.choose_timestep`
    lowers it for stiff bonds (no constraints are used, so the C-H force constant that a
    campaign varies keeps its meaning).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    n_molecules: int = Field(gt=1)
    temperature_k: float = Field(default=298.15, gt=0)
    pressure_bar: float = 1.0
    #: density at which the box is built (g/cm^3); NPT relaxes it.
    build_density_g_cm3: float = Field(default=0.65, gt=0)
    dt_max_ps: float = Field(default=0.001, gt=0)
    em_steps: int = Field(default=5000, gt=0)
    nvt_ps: float = Field(gt=0)
    npt_ps: float = Field(gt=0)
    production_ps: float = Field(gt=0)
    #: trajectory (xtc) output interval in ps during production.
    traj_interval_ps: float = Field(default=0.5, gt=0)
    #: energy output interval in ps.
    energy_interval_ps: float = Field(default=0.1, gt=0)
    #: non-bonded cut-off in nm (LJ and real-space PME).
    rcut_nm: float = Field(default=1.0, gt=0)
    threads: int = Field(default=2, gt=0)
    #: wall-time limit passed to mdrun -maxh, in hours.
    maxh: float = Field(default=24.0, gt=0)
    #: checkpoint interval passed to mdrun -cpt, in minutes.
    checkpoint_minutes: float = Field(default=15.0, gt=0)


class CGPreset(BaseModel):
    """Size and length of the coarse-grained (LAMMPS) stage, one bead per molecule.

    The CG box holds ``n_beads`` at the all-atom density, independently of the all-atom
    box; its edge must exceed twice ``rcut_nm``. Each IBI iteration equilibrates for
    ``equilibration_ps`` and samples the RDF and pressure for ``ibi_sampling_ps`` (every
    ``sample_every_steps`` steps, averaged in ``n_blocks`` blocks for error bars). The
    production equilibrates for ``equilibration_ps`` and then runs ``production_ps``
    with frames every ``dump_interval_ps`` and restart files every
    ``restart_interval_ps``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    n_beads: int = Field(gt=1)
    dt_fs: float = Field(default=5.0, gt=0)
    equilibration_ps: float = Field(gt=0)
    ibi_sampling_ps: float = Field(gt=0)
    production_ps: float = Field(gt=0)
    dump_interval_ps: float = Field(default=1.0, gt=0)
    rcut_nm: float = Field(default=1.5, gt=0)
    max_ibi_iterations: int = Field(default=30, gt=0)
    sample_every_steps: int = Field(default=10, gt=0)
    n_blocks: int = Field(default=5, ge=2)
    restart_interval_ps: float = Field(default=100.0, gt=0)
    #: LAMMPS processes (MPI ranks or OpenMP threads) per CG run.
    threads: int = Field(default=1, gt=0)


AA_PRESETS: dict[str, AAPreset] = {
    "tiny": AAPreset(
        name="tiny", n_molecules=64, em_steps=2000, nvt_ps=2.0, npt_ps=8.0, production_ps=10.0,
        traj_interval_ps=0.2, energy_interval_ps=0.05, rcut_nm=1.0, maxh=1.0,
        checkpoint_minutes=0.05,
    ),
    "demo": AAPreset(
        name="demo", n_molecules=125, nvt_ps=10.0, npt_ps=40.0, production_ps=100.0,
        traj_interval_ps=0.5, energy_interval_ps=0.1, rcut_nm=1.0, maxh=2.0,
        checkpoint_minutes=1.0,
    ),
    # the committed learning dataset (workflows/reference.yaml): about 2 min per set
    # on 2 cores, as many sets as fit in two hours; density and D_AA are rough
    # (35 ps of equilibration, 50 ps of production, 64 molecules)
    "reference": AAPreset(
        name="reference", n_molecules=64, em_steps=5000, nvt_ps=5.0, npt_ps=30.0,
        production_ps=50.0, traj_interval_ps=0.2, energy_interval_ps=0.05, rcut_nm=1.0,
        maxh=1.0, checkpoint_minutes=1.0,
    ),
    "paper": AAPreset(
        name="paper", n_molecules=1000, nvt_ps=50.0, npt_ps=500.0, production_ps=2000.0,
        traj_interval_ps=1.0, energy_interval_ps=0.2, rcut_nm=1.2, threads=8, maxh=24.0,
    ),
}

CG_PRESETS: dict[str, CGPreset] = {
    # seconds per stage on one core: for tests
    "tiny": CGPreset(
        name="tiny", n_beads=343, equilibration_ps=10.0, ibi_sampling_ps=50.0, rcut_nm=1.2,
        production_ps=100.0, dump_interval_ps=0.5, restart_interval_ps=25.0,
        sample_every_steps=20, max_ibi_iterations=8,
    ),
    # IBI iterations of about 20 s, a converged IBI in a few minutes on 2 cores
    "demo": CGPreset(
        name="demo", n_beads=1000, equilibration_ps=20.0, ibi_sampling_ps=200.0,
        production_ps=1000.0, dump_interval_ps=2.0, restart_interval_ps=100.0,
        sample_every_steps=20, max_ibi_iterations=15,
    ),
    # the committed learning dataset: the tiny system, 10 IBI iterations at most (tiny: 8),
    # a longer production for D_CG
    "reference": CGPreset(
        name="reference", n_beads=343, equilibration_ps=10.0, ibi_sampling_ps=50.0,
        rcut_nm=1.2, production_ps=200.0, dump_interval_ps=0.5, restart_interval_ps=50.0,
        sample_every_steps=20, max_ibi_iterations=10,
    ),
    "paper": CGPreset(
        name="paper", n_beads=4096, equilibration_ps=200.0, ibi_sampling_ps=2000.0,
        production_ps=10000.0, dump_interval_ps=5.0, restart_interval_ps=500.0,
        sample_every_steps=20, max_ibi_iterations=40, threads=2,
    ),
}


def get_aa_preset(name: str) -> AAPreset:
    """An all-atom preset by name; :class:`InvalidInputError` names an unknown value."""
    try:
        return AA_PRESETS[name]
    except KeyError:
        raise InvalidInputError(
            f"field 'preset': unknown value {name!r} (expected one of {sorted(AA_PRESETS)})"
        ) from None


def get_cg_preset(name: str) -> CGPreset:
    """A coarse-grained preset by name; :class:`InvalidInputError` names an unknown value."""
    try:
        return CG_PRESETS[name]
    except KeyError:
        raise InvalidInputError(
            f"field 'preset': unknown value {name!r} (expected one of {sorted(CG_PRESETS)})"
        ) from None
