"""The coarse-grained stage of one parameter set: IBI iterations and CG production.

Plain functions on run directories, like :mod:`cgflow.stages.aa`: one IBI iteration
(:func:`run_iteration`: prepare the LAMMPS run, run it under Custodian with
:func:`cgflow.jobs.lammps.job.run_lammps`, read the sampled RDF and pressure, compute the
metrics and the next potential), the decision what to do next
(:func:`decide`, the IBI monitor of :mod:`cgflow.ibi.monitor`), and the CG
production with the final potential (:func:`run_cg_production`: D_CG with the same MSD
analysis as D_AA, and alpha = D_CG / D_AA with a propagated error).

Nothing here knows of FireWorks or of the database; :mod:`cgflow.orchestration.firetasks.cg` calls
these functions and stores what they return.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from cgflow.ibi.iteration import finish_iteration as _finish_iteration
from cgflow.ibi.iteration import initial_ibi_potential, prepare_iteration
from cgflow.ibi.monitor import (
    IBIDecision,
    IBIMonitorSettings,
    IterationMetrics,
    assess_history,
)
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.production import acceleration_factor, finish_production, prepare_production
from cgflow.ibi.settings import IBISettings, IBITarget, IterationResult
from cgflow.jobs.lammps.job import LammpsRunReport, run_lammps
from cgflow.presets import CGPreset

#: Seed offset of the IBI iterations (iteration i uses SEED_BASE + i).
SEED_BASE = 1000
#: Seed of the CG production.
PRODUCTION_SEED = 4242


def make_target(*, rdf_r_nm, rdf_g, density_kg_m3: float, pressure_bar: float,
                pressure_err_bar: float, temperature_k: float) -> IBITarget:
    """The IBI target from all-atom results (GROMACS units)."""
    return IBITarget(r_nm=np.asarray(rdf_r_nm, float), g=np.asarray(rdf_g, float),
                     density_kg_m3=density_kg_m3, pressure_bar=pressure_bar,
                     temperature_k=temperature_k, pressure_err_bar=pressure_err_bar)


def target_from_aa_results(results: Any, temperature_k: float) -> IBITarget:
    """The IBI target from a stored all-atom result (an
    :class:`cgflow.db.documents.AAResults`, or anything with its ``rdf``,
    ``density_kg_m3``, ``pressure_bar`` and ``pressure_err_bar``)."""
    return make_target(rdf_r_nm=results.rdf.r_nm, rdf_g=results.rdf.g,
                       density_kg_m3=results.density_kg_m3, pressure_bar=results.pressure_bar,
                       pressure_err_bar=results.pressure_err_bar or 0.0,
                       temperature_k=temperature_k)


def make_settings(ibi_spec: Any, target: IBITarget, cg_preset: CGPreset) -> IBISettings:
    """IBI settings from a campaign's ``ibi`` section and the target.

    The pressure tolerance is the larger of the spec's and the AA pressure's standard
    error (so a noisy AA pressure is not chased below its own uncertainty). The cutoff is
    the CG preset's, shortened to the range of the target RDF when the all-atom box was
    too small for it (IBI does not extrapolate the target).
    """
    dr = IBISettings.grid_dr_nm
    reach = float(target.r_nm[-1]) + 0.5 * float(target.r_nm[1] - target.r_nm[0])
    cutoff = min(cg_preset.rcut_nm, np.floor(reach / dr + 1e-6) * dr)
    return IBISettings(
        temperature_k=target.temperature_k,
        cutoff_nm=round(float(cutoff), 6),
        update_factor=ibi_spec.update_factor,
        update_method=ibi_spec.update_method,
        ihnc_start_iteration=ibi_spec.ihnc_start_iteration,
        switch_width_nm=ibi_spec.switch_width_nm,
        pressure_factor=ibi_spec.pressure_factor,
        pressure_drift_weight=ibi_spec.pressure_drift_weight,
        adaptive_factor=ibi_spec.adaptive_factor,
        pressure_correction=ibi_spec.pressure_correction,
        rdf_tolerance=ibi_spec.rdf_tolerance,
        pressure_tolerance_bar=max(ibi_spec.pressure_tolerance_bar, target.pressure_err_bar),
        max_iterations=ibi_spec.max_iterations or cg_preset.max_ibi_iterations,
    )


def monitor_settings(settings: IBISettings) -> IBIMonitorSettings:
    """Thresholds of the IBI monitor matching ``settings``."""
    return IBIMonitorSettings.from_ibi_spec(settings, max_iterations=settings.max_iterations)


def iteration_dir(cg_dir: Path, iteration: int) -> Path:
    """Run directory of IBI iteration ``iteration``."""
    return cg_dir / f"iter_{iteration:03d}"


def initial_potential(target: IBITarget, settings: IBISettings,
                      cg_preset: CGPreset) -> TabulatedPotential:
    """Potential of mean force -kT ln g_t with a repulsive core and a tail shifted to 0."""
    return initial_ibi_potential(target, settings, cg_preset)


def run_iteration(
    cg_dir: Path, iteration: int, potential: TabulatedPotential, target: IBITarget,
    settings: IBISettings, cg_preset: CGPreset, *, previous: IterationResult | None,
    threads: int = 1, seed: int | None = None,
) -> tuple[IterationResult, LammpsRunReport]:
    """One IBI iteration in ``cg_dir/iter_NNN``: LAMMPS under Custodian, then the update.

    ``seed`` (bead placement and thermostat) defaults to ``SEED_BASE + iteration``.

    Raises
    ------
    cgflow.errors.EngineError
        When LAMMPS fails in a way the handlers cannot correct.
    """
    prep = prepare_iteration(iteration_dir(cg_dir, iteration), potential, target, settings,
                             cg_preset, iteration=iteration,
                             seed=SEED_BASE + iteration if seed is None else seed,
                             threads=threads)
    report = run_lammps(prep.workdir, prep.input_file.name, settings=prep.lammps_settings,
                        threads=threads)
    result = _finish_iteration(prep.workdir, target, settings, cg_preset, previous=previous)
    return result, report


def decide(history: list[IterationMetrics], settings: IBISettings) -> IBIDecision:
    """What to do after the latest iteration: continue (perhaps corrected), converged,
    or unconverged (corrections spent, or the iteration limit reached)."""
    return assess_history(history, monitor_settings(settings))


def apply_corrections(settings: IBISettings, cg_preset: CGPreset, *,
                      update_factor: float | None, sampling_ps: float | None
                      ) -> tuple[IBISettings, CGPreset]:
    """Settings and preset of an iteration run under a monitor correction: the update
    factor capped at ``update_factor`` (the adaptive factor stays at or below it), the
    sampling time ``sampling_ps``."""
    if update_factor:
        f = float(update_factor)
        settings = dataclasses.replace(settings, update_factor=f,
                                       factor_max=min(settings.factor_max, f),
                                       factor_min=min(settings.factor_min, f))
    if sampling_ps:
        cg_preset = cg_preset.model_copy(update={"ibi_sampling_ps": float(sampling_ps)})
    return settings, cg_preset


def run_cg_production(
    cg_dir: Path, potential: TabulatedPotential, target: IBITarget, settings: IBISettings,
    cg_preset: CGPreset, *, d_aa_nm2_ps: float, d_aa_err_nm2_ps: float, threads: int = 1,
    seed: int = PRODUCTION_SEED,
) -> dict[str, Any]:
    """CG production with the final potential in ``cg_dir/production``: D_CG, alpha =
    D_CG / D_AA with error.

    Returns
    -------
    dict
        ``d_cg``/``d_cg_err`` (nm^2/ps), ``alpha``/``alpha_err``, ``pressure_bar``/err,
        ``msd`` (lag_ps, msd_nm2), ``wall_s``, ``ns_per_day``, ``corrections``.
    """
    prep = prepare_production(cg_dir / "production", potential, target, settings, cg_preset,
                              seed=seed, threads=threads)
    report = run_lammps(prep.workdir, prep.input_file.name, settings=prep.lammps_settings,
                        threads=threads)
    prod = finish_production(prep.workdir)
    d = prod.diffusion
    alpha, alpha_err = acceleration_factor(d.d_nm2_ps, d.d_err_nm2_ps, d_aa_nm2_ps,
                                           d_aa_err_nm2_ps)
    return {
        "d_cg": d.d_nm2_ps, "d_cg_err": d.d_err_nm2_ps,
        "d_cg_corrected": d.d_corrected_nm2_ps,
        "alpha": alpha, "alpha_err": alpha_err,
        "pressure_bar": prod.pressure_bar, "pressure_err_bar": prod.pressure_err_bar,
        "temperature_k": prod.temperature_k, "duration_ps": prod.duration_ps,
        "wall_s": report.wall_time_s, "ns_per_day": prod.performance_ns_day,
        "corrections": report.corrections,
    }
