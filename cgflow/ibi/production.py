"""CG production with the final IBI potential, the CG diffusion coefficient and the
acceleration factor alpha = D_CG / D_AA.

The production (:class:`cgflow.engines.lammps.LammpsRunSettings`, ``stage="production"``)
equilibrates with a Langevin thermostat and then runs under a weakly coupled Nose-Hoover
thermostat (the frictionless reference: Newtonian dynamics to a good approximation),
dumping unwrapped bead positions and sampling the pressure and the RDF in blocks. D_CG
comes from :func:`cgflow.analysis.diffusion.diffusion_coefficient`, the same code that
gives D_AA. The friction calibration (:mod:`cgflow.stages.friction`) runs the same
production with a friction thermostat instead (``thermostat="langevin"`` or ``"dpd"``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgflow.analysis.beads import beads_from_lammps
from cgflow.analysis.diffusion import DiffusionResult, diffusion_coefficient
from cgflow.engines import lammps
from cgflow.errors import InvalidInputError
from cgflow.ibi.iteration import (
    PreparedRun,
    cg_box_nm,
    check_temperature,
    cutoff_nm,
    read_sampled_pressure,
    read_sampled_rdf,
    steps_for,
    write_potential_table,
)
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.settings import IBISettings, IBITarget
from cgflow.presets import CGPreset

#: State of a production directory, written by :func:`prepare_production`.
PRODUCTION_STATE_FILE = "production_state.json"


@dataclass(frozen=True)
class ProductionResult:
    """What the CG production gives.

    Attributes
    ----------
    diffusion
        :class:`cgflow.analysis.diffusion.DiffusionResult` of the beads (nm^2/ps).
    pressure_bar, pressure_err_bar
        Block-averaged pressure of the production and its standard error, bar.
    temperature_k
        Mean temperature of the production (thermo output), K.
    duration_ps
        Length of the analysed trajectory, ps.
    performance_ns_day, wall_time_s
        Speed of the LAMMPS run and its total loop time.
    rdf_r_nm, rdf_g, rdf_g_err
        The block-averaged RDF of the production (bin centres in nm, mean, standard
        error of the mean over the blocks), or None for a production that did not
        sample it (made before productions did).
    """

    diffusion: DiffusionResult
    pressure_bar: float
    pressure_err_bar: float
    temperature_k: float
    duration_ps: float
    performance_ns_day: float | None
    wall_time_s: float
    rdf_r_nm: np.ndarray | None = None
    rdf_g: np.ndarray | None = None
    rdf_g_err: np.ndarray | None = None


#: Fewest averaging blocks of a production (its restart interval is capped so).
MIN_PRODUCTION_BLOCKS = 4


def production_lammps_settings(
    settings: IBISettings, cg_preset: CGPreset, *, seed: int, table_points: int,
    thermostat: str = "nose-hoover", friction_per_ps: float = 0.0,
    dpd_gamma_g_mol_ps: float = 0.0, production_ps: float | None = None,
) -> lammps.LammpsRunSettings:
    """LAMMPS settings of a CG production for a preset.

    ``thermostat`` and its friction (``friction_per_ps`` for Langevin, 1/ps;
    ``dpd_gamma_g_mol_ps`` for DPD) as in :class:`cgflow.engines.lammps.LammpsRunSettings`;
    ``production_ps`` overrides the preset's length. The pressure and the RDF are averaged
    in blocks of the restart interval, capped so that there are at least
    :data:`MIN_PRODUCTION_BLOCKS` blocks (for their standard errors).
    """
    dt = cg_preset.dt_fs
    length_ps = cg_preset.production_ps if production_ps is None else float(production_ps)
    if not (math.isfinite(length_ps) and length_ps > 0):
        raise InvalidInputError(f"CG production: field 'production_ps': value {production_ps!r}: "
                                "must be a finite number > 0")
    dump_every = steps_for(cg_preset.dump_interval_ps, dt)
    restart_every = steps_for(min(cg_preset.restart_interval_ps,
                                  length_ps / MIN_PRODUCTION_BLOCKS), dt)
    restart_every = max(dump_every, restart_every // dump_every * dump_every)
    return lammps.LammpsRunSettings(
        stage="production", temperature_k=settings.temperature_k, dt_fs=dt,
        equilibration_steps=steps_for(cg_preset.equilibration_ps, dt),
        run_steps=steps_for(length_ps, dt), rcut_nm=cutoff_nm(settings, cg_preset),
        table_points=table_points, seed=seed,
        sample_every=cg_preset.sample_every_steps, n_blocks=cg_preset.n_blocks,
        rdf_bin_nm=settings.grid_dr_nm, dump_every=dump_every, restart_every=restart_every,
        thermostat=thermostat, friction_per_ps=friction_per_ps,
        dpd_gamma_g_mol_ps=dpd_gamma_g_mol_ps, sample_rdf=True,
    )


def prepare_production(
    workdir: str | os.PathLike, potential: TabulatedPotential, target: IBITarget,
    settings: IBISettings, cg_preset: CGPreset, *, seed: int, threads: int | None = None,
    thermostat: str = "nose-hoover", friction_per_ps: float = 0.0,
    dpd_gamma_g_mol_ps: float = 0.0, production_ps: float | None = None,
) -> PreparedRun:
    """Write the table, data file and input of the CG production.

    Parameters
    ----------
    workdir
        Run directory (created).
    potential
        The final IBI potential (the best iteration's, :class:`cgflow.ibi.monitor.IBIDecision`).
    target
        The all-atom target (density, temperature, bead mass).
    settings, cg_preset
        IBI settings (cutoff, table spacing, temperature) and CG run sizes.
    seed
        Seed of the bead placement and of the equilibration thermostat.
    threads
        LAMMPS processes; None: the preset's.
    thermostat, friction_per_ps, dpd_gamma_g_mol_ps, production_ps
        See :func:`production_lammps_settings` (default: the frictionless Nose-Hoover
        production of the preset's length).

    Returns
    -------
    PreparedRun
        The command to run in ``workdir``. A killed production continues after
        :func:`cgflow.engines.lammps.prepare_continuation` with
        ``PreparedRun.lammps_settings``.
    """
    check_temperature(target, settings)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    box = cg_box_nm(target, cg_preset, cutoff_nm(settings, cg_preset))
    n_table = write_potential_table(workdir / lammps.TABLE_FILE, potential,
                                    settings.table_spacing_nm)
    lammps.write_data(workdir / lammps.DATA_FILE, cg_preset.n_beads, box, target.mass_g_mol,
                      seed)
    lset = production_lammps_settings(
        settings, cg_preset, seed=seed, table_points=n_table, thermostat=thermostat,
        friction_per_ps=friction_per_ps, dpd_gamma_g_mol_ps=dpd_gamma_g_mol_ps,
        production_ps=production_ps)
    lammps.require_packages(thermostat)
    lammps.write_input(workdir / lammps.INPUT_FILE, lset)
    state = {"seed": seed, "dt_fs": lset.dt_fs, "temperature_k": lset.temperature_k,
             "final_step": lset.final_step, "thermostat": thermostat,
             "friction_per_ps": friction_per_ps, "dpd_gamma_g_mol_ps": dpd_gamma_g_mol_ps,
             "box_nm": box, "potential": potential.to_dict()}
    (workdir / PRODUCTION_STATE_FILE).write_text(json.dumps(state))
    cmd = lammps.lammps_command(lammps.INPUT_FILE, lammps.LOG_FILE,
                                threads=threads or cg_preset.threads)
    return PreparedRun(workdir, cmd, workdir / lammps.INPUT_FILE, workdir / lammps.LOG_FILE,
                       lset)


def finish_production(workdir: str | os.PathLike, **diffusion_kwargs) -> ProductionResult:
    """Analyse a finished CG production: D_CG, pressure, temperature.

    Parameters
    ----------
    workdir
        The production directory.
    **diffusion_kwargs
        Passed to :func:`cgflow.analysis.diffusion.diffusion_coefficient` (fit window,
        viscosity for the Yeh-Hummer term).

    Returns
    -------
    ProductionResult
    """
    workdir = Path(workdir)
    state = json.loads((workdir / PRODUCTION_STATE_FILE).read_text())
    dt = float(state["dt_fs"])
    temperature = float(state["temperature_k"])
    traj = beads_from_lammps(workdir / lammps.DATA_FILE, workdir / lammps.DUMP_FILE,
                             timestep_fs=dt)
    diff = diffusion_coefficient(traj, temperature_k=temperature, **diffusion_kwargs)
    p, p_err = read_sampled_pressure(workdir)
    info = lammps.parse_lammps_log(workdir / lammps.LOG_FILE)
    # the production is the last thermo block of the log (a continuation writes a new log)
    last = info.thermo[-1] if info.thermo else {}
    t_mean = float(np.mean(last["Temp"])) if "Temp" in last else float("nan")
    rdf = read_sampled_rdf(workdir) if _has_rdf(workdir) else (None, None, None)
    return ProductionResult(
        diffusion=diff, pressure_bar=p, pressure_err_bar=p_err, temperature_k=t_mean,
        duration_ps=float(traj.times[-1] - traj.times[0]),
        performance_ns_day=info.performance_ns_day, wall_time_s=info.wall_time_s,
        rdf_r_nm=rdf[0], rdf_g=rdf[1], rdf_g_err=rdf[2],
    )


def _has_rdf(workdir: Path) -> bool:
    return (workdir / lammps.RDF_FILE).exists() or any(
        workdir.glob(lammps.RDF_FILE + ".part*"))


def acceleration_factor(
    d_cg: float, d_cg_err: float, d_aa: float, d_aa_err: float,
) -> tuple[float, float]:
    """alpha = D_CG / D_AA with its propagated standard error.

    The relative errors add in quadrature (independent estimates):
    err = alpha sqrt((d_cg_err / d_cg)^2 + (d_aa_err / d_aa)^2). Both coefficients must
    be in the same unit and of the same kind (both raw or both finite-size corrected).

    Raises
    ------
    InvalidInputError
        If a coefficient is not positive or an error is negative or not finite.
    """
    for name, v in (("d_cg", d_cg), ("d_aa", d_aa)):
        if not (math.isfinite(v) and v > 0):
            raise InvalidInputError(f"acceleration factor: field {name!r}: value {v!r}: "
                                    "must be a finite number > 0")
    for name, v in (("d_cg_err", d_cg_err), ("d_aa_err", d_aa_err)):
        if not (math.isfinite(v) and v >= 0):
            raise InvalidInputError(f"acceleration factor: field {name!r}: value {v!r}: "
                                    "must be a finite number >= 0")
    alpha = d_cg / d_aa
    return alpha, alpha * math.hypot(d_cg_err / d_cg, d_aa_err / d_aa)
