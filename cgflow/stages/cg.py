"""The coarse-grained stage of one parameter set: the IBI loop and CG production.

Plain functions on run directories, like :mod:`cgflow.stages.aa`. There is one IBI loop,
made of one step: :func:`run_ibi_step` runs the iteration an :class:`IterationPlan`
asks for (LAMMPS under Custodian with :func:`cgflow.jobs.lammps.job.run_lammps`, the
sampled RDF and pressure, the metrics and the next potential) and asks the IBI monitor
(:func:`cgflow.ibi.monitor.assess_history`) what to do next. A campaign runs each step
as its own Firework (:mod:`cgflow.orchestration.firetasks.cg`, the next plan added as a
detour); :func:`run_ibi` runs the same steps in one process (benchmarks, tests). Then
the CG production with the final potential (:func:`run_cg_production`: D_CG with the
same MSD analysis as D_AA, and alpha = D_CG / D_AA with a propagated error).

Nothing here knows of FireWorks or of the database; the Firetasks call these functions
and store what they return.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgflow.db.documents import finite_or_none
from cgflow.errors import InvalidInputError
from cgflow.ibi.iteration import finish_iteration as _finish_iteration
from cgflow.ibi.iteration import (
    ibi_grid,
    initial_ibi_potential,
    prepare_iteration,
    unbroken_chain,
)
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
from cgflow.ml.inverse import shipped_inverse_for
from cgflow.molecule.registry import MoleculeSpec, resolve_molecule
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


def target_from_aa_run(aa: Any, molecule: MoleculeSpec | None = None) -> IBITarget:
    """The IBI target of a stored all-atom run (a :class:`cgflow.db.documents.AARunDoc`):
    its results at its temperature, the bead of the run's molecule (its
    :attr:`~cgflow.molecule.registry.MoleculeSpec.bead_mass_g_mol` and SMILES; a run
    stored without a molecule is of ``molecule``, default 2,3,4-trimethylpentane)."""
    spec = resolve_molecule(molecule)
    info = getattr(aa, "molecule", None)
    smiles = info.smiles if info is not None else spec.smiles
    mass = round(info.molar_mass_g_mol, 2) if info is not None else spec.bead_mass_g_mol
    target = target_from_aa_results(aa.results, aa.preset_settings.get("temperature_k",
                                                                        spec.temperature_k))
    return dataclasses.replace(target, mass_g_mol=mass, molecule_smiles=smiles)


def make_settings(ibi: IBISettings | None, target: IBITarget,
                  cg_preset: CGPreset) -> IBISettings:
    """The IBI settings of one parameter set: a campaign's ``ibi`` section resolved
    against its all-atom target and CG preset.

    The temperature is the target's (the all-atom run's). The pressure tolerance is the
    larger of the section's and the AA pressure's standard error (so a noisy AA pressure
    is not chased below its own uncertainty). The cutoff is the section's or else the CG
    preset's, shortened to the range of the target RDF when the all-atom box was too
    small for it (IBI does not extrapolate the target). The iteration limit is the
    section's or else the preset's ``max_ibi_iterations``. ``initial_guess: auto``
    becomes the shipped learned inverse where it covers the set's grid, temperature and
    bead mass (or ``inverse_model`` when the section names one), else the PMF. Every
    other field is the section's as it is.
    """
    ibi = ibi if ibi is not None else IBISettings()
    dr = ibi.grid_dr_nm
    reach = float(target.r_nm[-1]) + 0.5 * float(target.r_nm[1] - target.r_nm[0])
    cutoff = min(ibi.cutoff_nm or cg_preset.rcut_nm, np.floor(reach / dr + 1e-6) * dr)
    resolved = ibi.replace(
        temperature_k=target.temperature_k,
        cutoff_nm=round(float(cutoff), 6),
        pressure_tolerance_bar=max(ibi.pressure_tolerance_bar, target.pressure_err_bar),
        max_iterations=ibi.max_iterations or cg_preset.max_ibi_iterations,
    )
    if resolved.initial_guess != "auto":
        return resolved
    if resolved.inverse_model:  # a model of the user's own
        return resolved.replace(initial_guess="inverse")
    shipped = shipped_inverse_for(ibi_grid(resolved, cg_preset), target.temperature_k,
                                  target.mass_g_mol, target.molecule_smiles)
    if shipped is None:
        return resolved.replace(initial_guess="pmf")
    return resolved.replace(initial_guess="inverse", inverse_model=str(shipped))


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
    chain: list[IterationResult] | None = None,
) -> tuple[IterationResult, LammpsRunReport]:
    """One IBI iteration in ``cg_dir/iter_NNN``: LAMMPS under Custodian, then the update.

    ``seed`` (bead placement and thermostat) defaults to ``SEED_BASE + iteration``;
    ``chain`` is passed to :func:`cgflow.ibi.iteration.finish_iteration`.

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
    result = _finish_iteration(prep.workdir, target, settings, cg_preset, previous=previous,
                               chain=chain)
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
        settings = settings.replace(update_factor=f, factor_max=min(settings.factor_max, f),
                                    factor_min=min(settings.factor_min, f))
    if sampling_ps:
        cg_preset = cg_preset.model_copy(update={"ibi_sampling_ps": float(sampling_ps)})
    return settings, cg_preset


@dataclass(frozen=True)
class IterationPlan:
    """What an IBI iteration runs: its index and the monitor's corrections, if any.

    Attributes
    ----------
    iteration
        Index of the iteration (0: the initial potential).
    update_factor, sampling_ps
        A correction's update factor cap and sampling time; None: the settings'.
    restart_from
        Start from this iteration's potential instead of the latest update.
    correction
        Diagnosis of the correction the iteration runs under, else None.
    """

    iteration: int = 0
    update_factor: float | None = None
    sampling_ps: float | None = None
    restart_from: int | None = None
    correction: str | None = None

    @classmethod
    def after(cls, decision: IBIDecision) -> IterationPlan:
        """The plan of the iteration a ``continue`` decision asks for."""
        nxt = decision.next_metrics()
        return cls(iteration=int(nxt["iteration"]), update_factor=nxt["update_factor"],
                   sampling_ps=nxt["sampling_ps"], restart_from=nxt["restarted_from"],
                   correction=nxt["correction"])

    def to_dict(self) -> dict[str, Any]:
        """The plan's fields that are set (the Firework parameters of the iteration)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class IBIStep:
    """One step of the IBI loop: what ran, what it gave, and what the monitor decided.

    Attributes
    ----------
    plan
        The plan the step ran.
    potential
        The potential sampled.
    result
        The iteration's RDF, pressure, metrics and next potential.
    report
        The LAMMPS run under Custodian (wall time, corrections).
    metrics
        The monitor's record of the iteration.
    decision
        What the loop does next (:meth:`IterationPlan.after` for a ``continue``).
    sampling_ps
        Length of the iteration's sampling run, ps.
    """

    plan: IterationPlan
    potential: TabulatedPotential
    result: IterationResult
    report: LammpsRunReport
    metrics: IterationMetrics
    decision: IBIDecision
    sampling_ps: float


def run_ibi_step(
    cg_dir: Path, plan: IterationPlan, target: IBITarget, settings: IBISettings,
    cg_preset: CGPreset, *, results: list[IterationResult],
    history: list[IterationMetrics], threads: int = 1, seed_base: int = SEED_BASE,
    initial: TabulatedPotential | None = None,
) -> IBIStep:
    """Run the iteration ``plan`` asks for and decide what comes next.

    Parameters
    ----------
    cg_dir
        The set's CG folder (the iteration runs in ``cg_dir/iter_NNN``).
    plan
        Which iteration, under which correction.
    target, settings, cg_preset
        The all-atom target, the set's resolved settings (:func:`make_settings`) and the
        CG preset.
    results, history
        The results and monitor records of the iterations before this one, in order
        (empty for iteration 0).
    threads
        LAMMPS processes.
    seed_base
        Iteration ``i`` uses the seed ``seed_base + i``.
    initial
        Potential of iteration 0; None: :func:`initial_potential`.

    Raises
    ------
    cgflow.errors.EngineError
        When LAMMPS fails in a way the handlers cannot correct.
    InvalidInputError
        When ``plan`` restarts from an iteration that is not in ``results``.
    """
    run_settings, run_preset = apply_corrections(
        settings, cg_preset, update_factor=plan.update_factor, sampling_ps=plan.sampling_ps)
    previous = None
    if plan.iteration == 0:
        potential = initial if initial is not None else initial_potential(
            target, run_settings, run_preset)
    elif plan.restart_from is not None:
        src = [r for r in results if r.iteration == plan.restart_from]
        if not src:
            raise InvalidInputError(f"IBI iteration {plan.iteration}: field 'restart_from': "
                                    f"iteration {plan.restart_from} has no stored result")
        potential = src[0].potential
    else:
        previous = results[-1]
        if previous.next_potential is None:
            raise InvalidInputError(f"IBI iteration {plan.iteration}: iteration "
                                    f"{previous.iteration} has no next potential (converged)")
        potential = previous.next_potential
    result, report = run_iteration(cg_dir, plan.iteration, potential, target, run_settings,
                                   run_preset, previous=previous, threads=threads,
                                   seed=seed_base + plan.iteration,
                                   chain=unbroken_chain(results) if previous else None)
    metrics = IterationMetrics.from_result(result, run_preset.ibi_sampling_ps,
                                           restarted_from=plan.restart_from,
                                           correction=plan.correction)
    decision = decide([*(m for m in history if m.iteration < plan.iteration), metrics],
                      settings)
    return IBIStep(plan=plan, potential=potential, result=result, report=report,
                   metrics=metrics, decision=decision, sampling_ps=run_preset.ibi_sampling_ps)


@dataclass
class IBIOutcome:
    """The IBI loop of one parameter set, run to its end by :func:`run_ibi`.

    Attributes
    ----------
    steps
        Every step, in order.
    decision
        The last decision (``converged`` or ``unconverged``).
    """

    steps: list[IBIStep]
    decision: IBIDecision

    @property
    def results(self) -> list[IterationResult]:
        """The iteration results, in order."""
        return [s.result for s in self.steps]

    @property
    def converged(self) -> bool:
        """True when the loop ended converged."""
        return self.decision.action == "converged"

    @property
    def best(self) -> IterationResult:
        """The result of the best iteration (the first converged one, else the best
        score), whose potential is the set's IBI potential."""
        return next(s.result for s in self.steps
                    if s.result.iteration == self.decision.best_iteration)


def run_ibi(target: IBITarget, settings: IBISettings, cg_preset: CGPreset, cg_dir: Path, *,
            threads: int = 1, seed_base: int = SEED_BASE,
            initial: TabulatedPotential | None = None) -> IBIOutcome:
    """The IBI loop in one process: the campaign's steps (:func:`run_ibi_step`, monitor
    and corrections included) until the monitor stops it.

    ``settings`` are a set's resolved settings (:func:`make_settings`); iteration ``i``
    runs in ``cg_dir/iter_NNN`` with the seed ``seed_base + i``.
    """
    cg_dir = Path(cg_dir)
    steps: list[IBIStep] = []
    plan = IterationPlan()
    while True:
        step = run_ibi_step(cg_dir, plan, target, settings, cg_preset,
                            results=[s.result for s in steps],
                            history=[s.metrics for s in steps], threads=threads,
                            seed_base=seed_base, initial=initial)
        steps.append(step)
        if step.decision.action != "continue":
            return IBIOutcome(steps=steps, decision=step.decision)
        plan = IterationPlan.after(step.decision)


def run_cg_production(
    cg_dir: Path, potential: TabulatedPotential, target: IBITarget, settings: IBISettings,
    cg_preset: CGPreset, *, d_aa_nm2_ps: float, d_aa_err_nm2_ps: float | None,
    threads: int = 1, seed: int = PRODUCTION_SEED,
) -> dict[str, Any]:
    """CG production with the final potential in ``cg_dir/production``: D_CG, alpha =
    D_CG / D_AA with error.

    Returns
    -------
    dict
        The fields of the stored CG run (:class:`cgflow.db.documents.CGRunDoc`, less the
        set's ids): ``status``, ``run_dir``, ``d_cg_nm2_ps``, ``d_aa_nm2_ps``, ``alpha``
        and ``pressure_bar`` as ``{"mean", "err"}``, ``timings.production`` (wall time,
        ns/day) and ``engine`` (LAMMPS corrections, temperature, duration, the
        Yeh-Hummer-corrected D_CG).
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
        "status": "completed", "run_dir": str(prep.workdir),
        "d_cg_nm2_ps": {"mean": d.d_nm2_ps, "err": d.d_err_nm2_ps},
        "d_aa_nm2_ps": {"mean": d_aa_nm2_ps, "err": d_aa_err_nm2_ps},
        "alpha": {"mean": alpha, "err": alpha_err},
        "pressure_bar": {"mean": prod.pressure_bar, "err": prod.pressure_err_bar},
        "timings": {"production": {"wall_s": report.wall_time_s or 0.0,
                                   "ns_per_day": prod.performance_ns_day}},
        "engine": {"corrections": report.corrections,
                   "temperature_k": finite_or_none(prod.temperature_k),
                   "duration_ps": finite_or_none(prod.duration_ps),
                   "d_cg_corrected_nm2_ps": finite_or_none(d.d_corrected_nm2_ps)},
    }
