"""One IBI iteration as prepare / run / finish.

An iteration directory holds the LAMMPS files of :mod:`cgflow.engines.lammps` and
``ibi_state.json`` (the potential sampled, the iteration index, the seed). The split lets
a supervisor run the command between :func:`prepare_iteration` and
:func:`finish_iteration`: the IBI loop (:func:`cgflow.stages.cg.run_ibi_step`) runs it
under Custodian (:func:`cgflow.jobs.lammps.job.run_lammps`).

LAMMPS computes the RDF (``compute rdf``) and the pressure itself and writes block
averages, so no trajectory is written or read during IBI.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgflow import units
from cgflow.engines import lammps
from cgflow.errors import InvalidInputError
from cgflow.ibi.metrics import pressure_deviation, rdf_deviation
from cgflow.ibi.potential import (
    TabulatedPotential,
    initial_potential,
    potential_grid,
    resample_rdf,
)
from cgflow.ibi.settings import IBISettings, IBITarget, IterationResult
from cgflow.ibi.update import (
    adapt_factor,
    anderson_step,
    ibi_update,
    pressure_correction,
    ramp_response_bar,
    ramp_shape,
)
from cgflow.presets import CGPreset

#: State of an iteration directory, written by :func:`prepare_iteration`.
IBI_STATE_FILE = "ibi_state.json"


@dataclass(frozen=True)
class PreparedRun:
    """A CG run directory ready to run.

    Attributes
    ----------
    workdir
        The run directory (run ``command`` in it).
    command
        LAMMPS command line (no shell).
    input_file, log_file
        Input script and log, inside ``workdir``.
    lammps_settings
        Settings the input was written from (for
        :func:`cgflow.engines.lammps.prepare_continuation`).
    """

    workdir: Path
    command: list[str]
    input_file: Path
    log_file: Path
    lammps_settings: lammps.LammpsRunSettings


def cutoff_nm(settings: IBISettings, cg_preset: CGPreset) -> float:
    """Cutoff of the CG potential: the settings' or else the preset's, nm."""
    return settings.cutoff_nm if settings.cutoff_nm is not None else cg_preset.rcut_nm


def ibi_grid(settings: IBISettings, cg_preset: CGPreset) -> np.ndarray:
    """The potential grid: ``r_min_nm`` to the cutoff in steps of ``grid_dr_nm``."""
    return potential_grid(settings.r_min_nm, cutoff_nm(settings, cg_preset), settings.grid_dr_nm)


def check_target_range(target: IBITarget, r_cut_nm: float) -> None:
    """Raise :class:`InvalidInputError` if the target RDF ends before the cutoff.

    The target's last bin (centre plus half a bin) must reach the cutoff: IBI does not
    extrapolate the target. Choose ``IBISettings.cutoff_nm`` within the all-atom RDF
    range (at most half the all-atom box) otherwise.
    """
    half_bin = 0.5 * float(target.r_nm[1] - target.r_nm[0])
    reach = float(target.r_nm[-1]) + half_bin
    if reach < r_cut_nm - 1e-6:
        raise InvalidInputError(
            f"IBI target: field 'r_nm': the target RDF reaches {reach:.4g} nm, less than the "
            f"cutoff {r_cut_nm:.4g} nm; lower IBISettings.cutoff_nm or compute the target "
            "RDF further")


def cg_box_nm(target: IBITarget, cg_preset: CGPreset, r_cut_nm: float) -> float:
    """Edge of the cubic CG box at the target density; checks it holds the cutoff."""
    box = lammps.box_length_nm(cg_preset.n_beads, target.density_kg_m3, target.mass_g_mol)
    if box < 2.0 * r_cut_nm:
        raise InvalidInputError(
            f"CG preset {cg_preset.name!r}: field 'n_beads': {cg_preset.n_beads} beads at "
            f"{target.density_kg_m3:.1f} kg/m^3 make a box of {box:.3f} nm, less than twice "
            f"the cutoff {r_cut_nm} nm")
    return box


def steps_for(ps: float, dt_fs: float) -> int:
    """Number of MD steps (at least 1) in ``ps`` picoseconds at a time step of ``dt_fs``."""
    return max(1, round(units.ps_to_fs(ps) / dt_fs))


def initial_ibi_potential(target: IBITarget, settings: IBISettings,
                          cg_preset: CGPreset) -> TabulatedPotential:
    """The first potential on the IBI grid: the target's potential of mean force, its
    HNC inversion (``settings.initial_guess``, :func:`cgflow.ibi.potential.initial_potential`)
    or the learned inverse's potential (``"inverse"``, :func:`_inverse_potential`)."""
    check_target_range(target, cutoff_nm(settings, cg_preset))
    r = ibi_grid(settings, cg_preset)
    g_t = resample_rdf(target.r_nm, target.g, r)
    if settings.initial_guess == "inverse":
        return _inverse_potential(r, g_t, target, settings)
    # "auto" is resolved per set by cgflow.stages.cg.make_settings; unresolved, it is the PMF
    method = "pmf" if settings.initial_guess == "auto" else settings.initial_guess
    return initial_potential(r, g_t, settings.temperature_k, g_min=settings.g_min,
                             switch_width_nm=settings.switch_width_nm,
                             smoothing_window=settings.smoothing_window,
                             method=method,
                             density_nm3=target.number_density_nm3,
                             s_min=settings.hnc_s_min)


def _inverse_potential(r: np.ndarray, g_t: np.ndarray, target: IBITarget,
                       settings: IBISettings) -> TabulatedPotential:
    """The first potential from the learned inverse of ``settings.inverse_model``."""
    from cgflow.ml.inverse import StructureInverse, grid_prefix  # the ML layer imports ibi

    inverse = StructureInverse.load(settings.inverse_model)
    if grid_prefix(inverse.r_nm, r) is None:
        raise InvalidInputError(
            f"IBI settings: field 'inverse_model': the inverse's grid "
            f"({inverse.r_nm[0]:.4g}..{inverse.r_nm[-1]:.4g} nm, {inverse.r_nm.size} points) "
            f"is not the IBI grid ({r[0]:.4g}..{r[-1]:.4g} nm, {r.size} points) nor its "
            "beginning")
    return inverse.predict_potential_on(r, g_t, target.density_kg_m3, settings.temperature_k,
                                        target.mass_g_mol, target.pressure_bar)


def ibi_lammps_settings(settings: IBISettings, cg_preset: CGPreset, *, seed: int,
                        table_points: int) -> lammps.LammpsRunSettings:
    """LAMMPS settings of an IBI sampling run for a preset.

    A restart file is written at the end of every sampling block (``restart_every`` > 0:
    the IBI stage writes them on the block boundaries), so that a run killed while
    sampling continues from its last complete block
    (:class:`~cgflow.jobs.lammps.handlers.RestartContinueHandler`).
    """
    dt = cg_preset.dt_fs
    return lammps.LammpsRunSettings(
        stage="ibi", temperature_k=settings.temperature_k, dt_fs=dt,
        equilibration_steps=steps_for(cg_preset.equilibration_ps, dt),
        run_steps=steps_for(cg_preset.ibi_sampling_ps, dt), rcut_nm=cutoff_nm(settings, cg_preset),
        table_points=table_points, seed=seed,
        sample_every=cg_preset.sample_every_steps, n_blocks=cg_preset.n_blocks,
        rdf_bin_nm=settings.grid_dr_nm, restart_every=1,
    )


def write_potential_table(path: str | os.PathLike, potential: TabulatedPotential,
                          spacing_nm: float) -> int:
    """Write a potential as the LAMMPS table of a run; returns the number of points."""
    r, u, f = potential.tabulate(spacing_nm)
    lammps.write_table(path, r, u, f, lammps.TABLE_KEYWORD)
    return r.size


def prepare_iteration(
    workdir: str | os.PathLike, potential: TabulatedPotential, target: IBITarget,
    settings: IBISettings, cg_preset: CGPreset, *, iteration: int, seed: int,
    threads: int | None = None,
) -> PreparedRun:
    """Write the table, data file, input and state of one IBI iteration.

    Parameters
    ----------
    workdir
        Run directory (created).
    potential
        Potential to sample, on the IBI grid (:func:`ibi_grid`).
    target
        The all-atom target.
    settings, cg_preset
        IBI settings and CG run sizes.
    iteration
        Index of the iteration (from 0).
    seed
        Seed of the bead placement and the thermostat.
    threads
        LAMMPS processes; None: the preset's.

    Returns
    -------
    PreparedRun
        The command to run in ``workdir``.
    """
    check_temperature(target, settings)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    r_cut = cutoff_nm(settings, cg_preset)
    check_target_range(target, r_cut)
    box = cg_box_nm(target, cg_preset, r_cut)
    grid = ibi_grid(settings, cg_preset)
    if potential.r_nm.shape != grid.shape or not np.allclose(potential.r_nm, grid):
        raise InvalidInputError(f"IBI iteration {iteration}: the potential's grid "
                                f"({potential.r_nm[0]:.4g}..{potential.r_nm[-1]:.4g} nm, "
                                f"{potential.r_nm.size} points) is not the IBI grid "
                                f"({grid[0]:.4g}..{grid[-1]:.4g} nm, {grid.size} points)")
    n_table = write_potential_table(workdir / lammps.TABLE_FILE, potential,
                                    settings.table_spacing_nm)
    lammps.write_data(workdir / lammps.DATA_FILE, cg_preset.n_beads, box, target.mass_g_mol,
                      seed)
    lset = ibi_lammps_settings(settings, cg_preset, seed=seed, table_points=n_table)
    lammps.write_input(workdir / lammps.INPUT_FILE, lset)
    state = {"iteration": iteration, "seed": seed, "potential": potential.to_dict(),
             "box_nm": box}
    (workdir / IBI_STATE_FILE).write_text(json.dumps(state))
    cmd = lammps.lammps_command(lammps.INPUT_FILE, lammps.LOG_FILE,
                                threads=threads or cg_preset.threads)
    return PreparedRun(workdir, cmd, workdir / lammps.INPUT_FILE, workdir / lammps.LOG_FILE,
                       lset)


def check_temperature(target: IBITarget, settings: IBISettings) -> None:
    """Raise :class:`InvalidInputError` if the settings' and target's temperatures differ
    by more than 0.5 K."""
    if abs(target.temperature_k - settings.temperature_k) > 0.5:
        raise InvalidInputError(f"IBI settings: field 'temperature_k': {settings.temperature_k} "
                                f"K differs from the target's {target.temperature_k} K")


def read_sampled_rdf(workdir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block-averaged RDF of a run directory.

    Returns
    -------
    r_nm, g, g_err : numpy.ndarray
        Bin centres (nm), mean over the blocks, standard error of the mean.
    """
    _, blocks = lammps.read_block_file(Path(workdir) / lammps.RDF_FILE)
    r = units.angstrom_to_nm(blocks[0, :, 0])
    g = blocks[:, :, 1]
    nb = g.shape[0]
    err = g.std(axis=0, ddof=1) / np.sqrt(nb) if nb > 1 else np.full(r.shape, np.nan)
    return r, g.mean(axis=0), err


def read_sampled_pressure(workdir: str | os.PathLike) -> tuple[float, float]:
    """Block-averaged pressure of a run directory and its standard error, bar."""
    _, p_atm = lammps.read_block_file(Path(workdir) / lammps.PRESSURE_FILE)
    p = units.atm_to_bar(np.asarray(p_atm, float))
    err = float(p.std(ddof=1) / np.sqrt(p.size)) if p.size > 1 else float("nan")
    return float(p.mean()), err


def update_method(settings: IBISettings, iteration: int) -> str:
    """The update rule of ``iteration``: ``settings.update_method``, except plain IBI
    before ``settings.ihnc_start_iteration``."""
    if settings.update_method == "ihnc" and iteration < settings.ihnc_start_iteration:
        return "ibi"
    return settings.update_method


def finish_iteration(
    workdir: str | os.PathLike, target: IBITarget, settings: IBISettings, cg_preset: CGPreset,
    *, previous: IterationResult | None = None,
    chain: list[IterationResult] | None = None,
) -> IterationResult:
    """Read what LAMMPS sampled, compute the metrics and the next potential.

    The update factor of this iteration is ``settings.update_factor`` for the first one
    and, with ``settings.adaptive_factor``, :func:`cgflow.ibi.update.adapt_factor` of
    the ``previous`` result's factor and deviations afterwards.

    ``chain`` is the unbroken chain of iterations that led here (each sampled the
    previous one's next potential), oldest first, ending with ``previous``; with
    ``settings.acceleration == "anderson"`` the structural step (the RDF update) is mixed
    with the chain's (:func:`cgflow.ibi.update.anderson_step`) before the pressure ramp is
    added. Each result records its own structural step in ``extra["step_kj_mol"]``.

    Returns
    -------
    IterationResult
        With ``converged`` set when the RDF deviation is below ``rdf_tolerance`` and (with
        pressure correction) |P_cg - P_t| below ``pressure_tolerance_bar``; then
        ``next_potential`` is None.
    """
    workdir = Path(workdir)
    state = json.loads((workdir / IBI_STATE_FILE).read_text())
    potential = TabulatedPotential.from_dict(state["potential"])
    r = potential.r_nm
    info = lammps.parse_lammps_log(workdir / lammps.LOG_FILE)
    r_bins, g_bins, err_bins = read_sampled_rdf(workdir)
    g_n = resample_rdf(r_bins, g_bins, r)
    g_err = np.interp(r, r_bins, err_bins)
    g_t = resample_rdf(target.r_nm, target.g, r)
    p_n, p_err = read_sampled_pressure(workdir)
    dev = rdf_deviation(r, g_n, g_t)
    dp = pressure_deviation(p_n, target.pressure_bar)
    converged = dev < settings.rdf_tolerance and (
        not settings.pressure_correction or abs(dp) < settings.pressure_tolerance_bar)

    accelerated = settings.acceleration == "anderson"
    if previous is None or not settings.adaptive_factor or accelerated:
        factor = settings.update_factor
    else:
        factor = adapt_factor(previous.factor, dev, previous.rdf_deviation,
                              minimum=settings.factor_min, maximum=settings.factor_max)
    amplitude = 0.0
    drift = 0.0
    response = None
    next_potential = None
    extra: dict = {}
    if not converged:
        rho = target.number_density_nm3
        u_new = ibi_update(r, potential.u_kj_mol, g_n, g_t, settings.temperature_k,
                           factor=factor, g_min=settings.g_min,
                           smoothing_window=settings.smoothing_window,
                           switch_width_nm=settings.switch_width_nm,
                           method=update_method(settings, int(state["iteration"])),
                           density_nm3=rho,
                           s_min=settings.hnc_s_min)
        # the structural step; Anderson mixing acts on it, the pressure ramp is added after
        extra["step_kj_mol"] = (u_new - potential.u_kj_mol).tolist()
        if accelerated:
            u_new, gamma = _anderson(potential, u_new - potential.u_kj_mol, g_t, dev, dp,
                                     settings, previous, chain or [])
            extra["anderson_coefficients"] = gamma.tolist()
        if settings.pressure_correction:
            drift = 0.0
            if (settings.pressure_method == "virial" and previous is not None
                    and previous.ramp_response_bar_per_kj_mol is not None):
                explained = (previous.pressure_ramp_amplitude_kj_mol
                             * previous.ramp_response_bar_per_kj_mol)
                drift = settings.pressure_drift_weight * (p_n - previous.pressure_bar
                                                          - explained)
            ramp = pressure_correction(
                r, p_n, target.pressure_bar, settings.temperature_k,
                method=settings.pressure_method, g=g_n, density_nm3=rho,
                factor=settings.pressure_factor, drift_bar=drift,
                max_amplitude_kt=settings.pressure_max_amplitude_kt,
                switch_width_nm=settings.switch_width_nm)
            shape0 = ramp_shape(r, settings.switch_width_nm)[0]
            amplitude = float(ramp[0] / shape0) if shape0 else 0.0
            response = ramp_response_bar(r, g_n, rho, settings.switch_width_nm)
            u_new = u_new + ramp
        next_potential = TabulatedPotential.from_energy(r, u_new)
    return IterationResult(
        iteration=int(state["iteration"]), potential=potential, r_nm=r, g=g_n, g_err=g_err,
        pressure_bar=p_n, pressure_err_bar=p_err, rdf_deviation=dev,
        pressure_deviation_bar=dp, converged=converged, factor=factor,
        next_potential=next_potential, pressure_ramp_amplitude_kj_mol=amplitude,
        ramp_response_bar_per_kj_mol=response, pressure_drift_bar=drift,
        performance_ns_day=info.performance_ns_day, wall_time_s=info.wall_time_s,
        extra=extra,
    )


def _score(rdf_dev: float, dp_bar: float, settings: IBISettings) -> float:
    s = rdf_dev / settings.rdf_tolerance
    if settings.pressure_correction:
        s += abs(dp_bar) / settings.pressure_tolerance_bar
    return s


def unbroken_chain(results: list[IterationResult]) -> list[IterationResult]:
    """The tail of ``results`` in which every iteration sampled the previous one's next
    potential (a restart from an earlier potential breaks the chain)."""
    chain = results[-1:]
    for j in range(len(results) - 1, 0, -1):
        before = results[j - 1].next_potential
        if before is None or not np.allclose(results[j].potential.u_kj_mol,
                                             before.u_kj_mol, rtol=0, atol=1e-9):
            break
        chain.insert(0, results[j - 1])
    return chain


def _anderson(potential: TabulatedPotential, step: np.ndarray, g_t: np.ndarray, dev: float,
              dp: float, settings: IBISettings, previous: IterationResult | None,
              chain: list[IterationResult]) -> tuple[np.ndarray, np.ndarray]:
    """The Anderson-mixed next potential (see :attr:`IBISettings.acceleration`)."""
    usable = [c for c in chain if "step_kj_mol" in c.extra]
    if previous is None or not usable or usable[-1] is not previous:
        usable = []
    elif _score(dev, dp, settings) > 1.1 * _score(previous.rdf_deviation,
                                                  previous.pressure_deviation_bar, settings):
        usable = []  # the last step made things worse: plain step, history dropped
    usable = usable[-settings.anderson_memory:]
    us = [c.potential.u_kj_mol for c in usable] + [potential.u_kj_mol]
    fs = [np.asarray(c.extra["step_kj_mol"], float) for c in usable] + [step]
    return anderson_step(us, fs, mixing=1.0, weights=g_t,
                         max_coefficient=settings.anderson_max_coefficient)
