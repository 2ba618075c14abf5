"""Closed-loop validation of predicted CG potentials: simulate them and compare.

For one parameter set the models have not seen, with its all-atom results (target RDF,
density, pressure, D_AA), each predicted potential is run in LAMMPS twice, exactly as
the CG stage runs a potential (:func:`cgflow.stages.cg.run_iteration` and
:func:`cgflow.stages.cg.run_cg_production`): a sampling run as in an IBI iteration (the
RDF and the pressure, block-averaged by LAMMPS) and a CG production (D_CG from the MSD,
the same analysis as D_AA). Then

* structure route: the RDF deviation of the structure-preserving potential against the
  AA target (:func:`cgflow.ibi.metrics.rdf_deviation`), and its D_CG rescaled by the
  predicted alpha, D_CG / alpha, against D_AA;
* structure route through the inverse (models with an RDF model and an inverse that
  covers the grid, :mod:`cgflow.ml.predict`): the same for the potential the learned
  inverse makes of the predicted g_t;
* dynamics route: D_CG of the dynamics-preserving potential against D_AA (and, for
  information, its RDF deviation: that potential is not meant to keep the structure);
* potential + friction route (models with a friction model): the structure-preserving
  potential run with the predicted friction gamma (the friction calibration's Langevin
  production, :mod:`cgflow.stages.friction`): its D_CG against D_AA, with no rescaling,
  and its RDF deviation against the AA target.

Relative D errors are (D - D_AA) / D_AA. :func:`validate_prediction` is a plain function
on run directories, like :mod:`cgflow.stages.cg`; :func:`validate_campaign_models` runs it
for a campaign's unseen sets, reading them from and storing the results in a
:class:`cgflow.db.store.Store` (it knows nothing of FireWorks).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from cgflow.errors import InvalidInputError
from cgflow.ibi.iteration import ibi_grid
from cgflow.ibi.potential import TabulatedPotential, switching_function
from cgflow.ibi.settings import IBISettings, IBITarget
from cgflow.ibi.table_repair import extend_inward, extend_outward, tail_is_zero
from cgflow.ml.predict import Prediction
from cgflow.presets import CGPreset
from cgflow.stages import cg as cg_stage

#: Seeds of the validation runs (distinct from the IBI and production seeds).
SAMPLING_SEED = 7001
PRODUCTION_SEED = 7002
FRICTION_SEED = 7003


def on_ibi_grid(r_nm: np.ndarray, u_kj_mol: np.ndarray, settings: IBISettings,
                cg_preset: CGPreset) -> TabulatedPotential:
    """A predicted potential moved onto the IBI grid of ``settings`` and ``cg_preset``.

    Below the predicted grid's first point the r^-12 core of
    :func:`cgflow.ibi.table_repair.extend_inward` continues the wall; a predicted grid
    that ends before the IBI cutoff is extended with zeros (only if it already ends at
    U = F = 0, :func:`~cgflow.ibi.table_repair.tail_is_zero`); one that reaches beyond is
    cut at the IBI cutoff and switched off over the last ``switch_width_nm``, as IBI
    potentials are (an approximation of the predicted tail, said in the README). Then
    linear interpolation onto the grid.

    Raises
    ------
    InvalidInputError
        When the predicted potential ends before the cutoff without going to zero.
    """
    grid = ibi_grid(settings, cg_preset)
    pot = TabulatedPotential.from_energy(np.asarray(r_nm, float), np.asarray(u_kj_mol, float))
    r, u, f = extend_inward(pot.r_nm, pot.u_kj_mol, pot.f_kj_mol_nm, float(grid[0]))
    if r[-1] < grid[-1] - 1e-9:
        if not tail_is_zero(u, f):
            raise InvalidInputError(
                f"predicted potential: ends at {r[-1]:.4g} nm with U = {u[-1]:.4g} kJ/mol, "
                f"before the cutoff {grid[-1]:.4g} nm: cannot extend it with zeros")
        r, u, f = extend_outward(r, u, f, float(grid[-1]))
    out = np.interp(grid, r, u)
    if r[-1] > grid[-1] + 1e-9:
        out = (out - out[-1]) * switching_function(grid, float(grid[-1]),
                                                    settings.switch_width_nm)
    return TabulatedPotential.from_energy(grid, out)


def simulate_potential(
    workdir: str | Path, potential: TabulatedPotential, target: IBITarget,
    settings: IBISettings, cg_preset: CGPreset, *, d_aa: float, d_aa_err: float,
    threads: int = 1,
) -> dict[str, Any]:
    """Sample the RDF and pressure of ``potential``, then run a CG production with it.

    Returns
    -------
    dict
        ``rdf_deviation``, ``pressure_bar``, ``pressure_err_bar``,
        ``pressure_deviation_bar``, ``rdf`` (``r_nm``, ``g``), ``d_cg``, ``d_cg_err``
        (nm^2/ps), ``wall_s`` (both LAMMPS runs).

    Raises
    ------
    cgflow.errors.EngineError
        When LAMMPS fails in a way its handlers cannot correct.
    """
    workdir = Path(workdir)
    sampled, report = cg_stage.run_iteration(workdir, 0, potential, target, settings,
                                             cg_preset, previous=None, threads=threads,
                                             seed=SAMPLING_SEED)
    prod = cg_stage.run_cg_production(workdir, potential, target, settings, cg_preset,
                                      d_aa_nm2_ps=d_aa, d_aa_err_nm2_ps=d_aa_err,
                                      threads=threads, seed=PRODUCTION_SEED)
    return {
        "rdf_deviation": sampled.rdf_deviation, "pressure_bar": sampled.pressure_bar,
        "pressure_err_bar": sampled.pressure_err_bar,
        "pressure_deviation_bar": sampled.pressure_deviation_bar,
        "rdf": {"r_nm": sampled.r_nm.tolist(), "g": sampled.g.tolist()},
        "d_cg": prod["d_cg_nm2_ps"]["mean"], "d_cg_err": prod["d_cg_nm2_ps"]["err"],
        "wall_s": float((report.wall_time_s or 0.0)
                        + prod["timings"]["production"]["wall_s"]),
    }


def simulate_with_friction(
    workdir: str | Path, potential: TabulatedPotential, target: IBITarget,
    settings: IBISettings, cg_preset: CGPreset, *, friction_per_ps: float, threads: int = 1,
) -> dict[str, Any]:
    """A CG production of ``potential`` with a Langevin friction (the calibration's trial
    run): ``d_cg``, ``d_cg_err`` (nm^2/ps), ``rdf_deviation`` against the AA target,
    ``pressure_bar``, ``friction_per_ps``, ``wall_s``."""
    from cgflow.ibi.metrics import rdf_deviation
    from cgflow.ibi.potential import resample_rdf
    from cgflow.ibi.production import finish_production, prepare_production
    from cgflow.jobs.lammps.job import run_lammps

    prep = prepare_production(Path(workdir) / "production", potential, target, settings,
                              cg_preset, seed=FRICTION_SEED, threads=threads,
                              thermostat="langevin", friction_per_ps=friction_per_ps)
    report = run_lammps(prep.workdir, prep.input_file.name, settings=prep.lammps_settings,
                        threads=threads)
    prod = finish_production(prep.workdir)
    r = potential.r_nm
    dev = rdf_deviation(r, resample_rdf(prod.rdf_r_nm, prod.rdf_g, r),
                        resample_rdf(target.r_nm, target.g, r))
    return {"friction_per_ps": friction_per_ps, "d_cg": prod.diffusion.d_nm2_ps,
            "d_cg_err": prod.diffusion.d_err_nm2_ps, "rdf_deviation": dev,
            "pressure_bar": prod.pressure_bar, "wall_s": float(report.wall_time_s or 0.0)}


def relative_error(value: float, reference: float) -> float:
    """(value - reference) / reference."""
    return (value - reference) / reference


def _positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (math.isfinite(v) and v > 0):
        raise InvalidInputError(f"closed-loop validation: field {name!r}: value {value!r}: "
                                "must be a finite number > 0")
    return v


def validate_prediction(
    workdir: str | Path, prediction: Prediction, target: IBITarget, settings: IBISettings,
    cg_preset: CGPreset, *, d_aa: float, d_aa_err: float | None = None, threads: int = 1,
) -> dict[str, Any]:
    """Simulate both predicted potentials of one parameter set and compare with the AA run.

    Parameters
    ----------
    workdir
        Run directory (``structure/`` and ``dynamics/`` are made below it).
    prediction
        :func:`cgflow.ml.predict.predict_potentials` of the set.
    target, settings, cg_preset
        The set's AA target and the IBI settings and CG sizes to run with
        (:func:`cgflow.stages.cg.make_target`, :func:`cgflow.stages.cg.make_settings`).
    d_aa, d_aa_err
        The set's all-atom diffusion coefficient and its error, nm^2/ps.

    Returns
    -------
    dict
        ``alpha_pred``, ``alpha_std``, ``d_aa``, ``d_aa_err``, ``warnings``, ``structure``
        (the :func:`simulate_potential` result plus ``d_rescaled`` = D_CG / alpha_pred and
        ``d_rescaled_rel_error``), ``structure_inverse`` (the same for the route through
        the predicted g_t and the inverse; None without it), ``dynamics`` (plus
        ``d_rel_error``; None without a dynamics model) and ``friction``
        (:func:`simulate_with_friction` with the predicted gamma plus ``friction_std``
        and ``d_rel_error``; None without a friction model).

    Raises
    ------
    InvalidInputError
        Before any run, when D_AA or the predicted alpha is not a finite number > 0.
    """
    d_aa = _positive("d_aa", d_aa)
    alpha = _positive("alpha_pred", prediction.alpha)
    err = 0.0 if d_aa_err is None or not math.isfinite(d_aa_err) else float(d_aa_err)
    workdir = Path(workdir)
    out: dict[str, Any] = {"alpha_pred": alpha, "alpha_std": prediction.alpha_std,
                           "d_aa": d_aa, "d_aa_err": d_aa_err,
                           "warnings": list(prediction.out_of_space)}
    pot_s = on_ibi_grid(prediction.r_nm, prediction.U_structure, settings, cg_preset)
    pot_d = (None if prediction.U_dynamics is None
             else on_ibi_grid(prediction.r_nm, prediction.U_dynamics, settings, cg_preset))
    s = simulate_potential(workdir / "structure", pot_s, target, settings, cg_preset,
                           d_aa=d_aa, d_aa_err=err, threads=threads)
    s["d_rescaled"] = s["d_cg"] / alpha
    s["d_rescaled_rel_error"] = relative_error(s["d_rescaled"], d_aa)
    out["structure"] = s
    out["structure_inverse"] = None
    u_inv = getattr(prediction, "U_structure_inverse", None)
    if u_inv is not None:
        si = simulate_potential(workdir / "structure-inverse",
                                on_ibi_grid(prediction.r_nm, u_inv, settings, cg_preset),
                                target, settings, cg_preset, d_aa=d_aa, d_aa_err=err,
                                threads=threads)
        si["d_rescaled"] = si["d_cg"] / alpha
        si["d_rescaled_rel_error"] = relative_error(si["d_rescaled"], d_aa)
        out["structure_inverse"] = si
    out["dynamics"] = None
    if pot_d is not None:
        dyn = simulate_potential(workdir / "dynamics", pot_d, target, settings, cg_preset,
                                 d_aa=d_aa, d_aa_err=err, threads=threads)
        dyn["d_rel_error"] = relative_error(dyn["d_cg"], d_aa)
        out["dynamics"] = dyn
    out["friction"] = None
    gamma = getattr(prediction, "friction", None)
    if gamma is not None and math.isfinite(gamma) and gamma > 0:
        fr = simulate_with_friction(workdir / "friction", pot_s, target, settings, cg_preset,
                                    friction_per_ps=float(gamma), threads=threads)
        fr["friction_std"] = prediction.friction_std
        fr["d_rel_error"] = relative_error(fr["d_cg"], d_aa)
        out["friction"] = fr
    return out


# --- a campaign's models on its unseen sets ------------------------------------------


def unseen_aa_runs(store: Any, sets_campaign: str, trained: set[str],
                   param_ids: list[str] | None = None) -> list[Any]:
    """Completed AA runs of ``sets_campaign`` whose sets are not in ``trained``."""
    runs = [r for r in store.aa_runs(campaign=sets_campaign, status="completed")
            if r.param_id not in trained and r.results is not None]
    if param_ids:
        wanted = set(param_ids)
        seen = {r.param_id for r in runs}
        for pid in param_ids:
            if pid in trained:
                raise InvalidInputError(f"--param-id {pid}: the models were trained on this set")
            if pid not in seen:
                raise InvalidInputError(f"--param-id {pid}: no completed all-atom run in "
                                        f"campaign {sets_campaign!r}")
        runs = [r for r in runs if r.param_id in wanted]
    return runs


def validate_campaign_models(
    store: Any, models_campaign: str, *, sets_campaign: str | None = None,
    work_root: str | Path = "validation", preset: str | None = None,
    max_sets: int | None = None, param_ids: list[str] | None = None, threads: int = 1,
    progress=print,
) -> tuple[list[Any], list[str]]:
    """Validate the models of ``models_campaign`` on unseen sets.

    Returns
    -------
    docs, failures
        The stored validation documents, and one message per set whose runs failed.

    Raises
    ------
    InvalidInputError
        No trained models, models without their training ids, an unknown preset, or no
        unseen set with a completed all-atom run.
    """
    from cgflow.errors import CgflowError
    from cgflow.ml.predict import predict_potentials
    from cgflow.params import parameter_set_from_mapping
    from cgflow.presets import get_cg_preset
    from cgflow.stages.train import load_campaign_models

    if preset is not None:
        get_cg_preset(preset)
    models = load_campaign_models(store, models_campaign)
    if not models.metadata.get("train_param_ids"):
        raise InvalidInputError(f"the models of {models_campaign!r} do not record their "
                                "training sets ('train_param_ids'): cannot tell unseen sets")
    trained = set(models.metadata["train_param_ids"])
    data_hash = str(models.metadata.get("dataset_hash") or "unknown")
    source = sets_campaign or models_campaign
    runs = unseen_aa_runs(store, source, trained, param_ids)
    if not runs:
        raise InvalidInputError(
            f"campaign {source!r} has no completed all-atom run of a set the models of "
            f"{models_campaign!r} have not seen ({len(trained)} training sets)")
    if max_sets is not None:
        runs = runs[:max_sets]
    docs, failures = [], []
    for k, aa in enumerate(runs, 1):
        cg_preset = get_cg_preset(preset or aa.preset)
        ps_doc = store.get_parameter_set(aa.param_id)
        if ps_doc is None:
            failures.append(f"{aa.param_id}: its parameter set is not in the database")
            continue
        ps = parameter_set_from_mapping(ps_doc.params, source=f"parameter set {aa.param_id}")
        target = cg_stage.target_from_aa_run(aa)
        settings = cg_stage.make_settings(None, target, cg_preset)
        # the run's molecule and state point (models of one molecule refuse another)
        pred = predict_potentials(models, ps, molecule=target.molecule_smiles,
                                  temperature_k=target.temperature_k,
                                  mass_g_mol=target.mass_g_mol)
        progress(f"[validate] {k}/{len(runs)} {aa.param_id}: simulating the predicted "
                 f"potentials ({cg_preset.name} CG preset)")
        # one directory per models version: a retrain never resumes an older run
        workdir = (Path(work_root) / models_campaign
                   / f"{aa.param_id}-{cg_preset.name}-{data_hash[:12]}")
        try:
            out = validate_prediction(
                workdir, pred, target, settings, cg_preset, d_aa=aa.results.diffusion.d_nm2_ps,
                d_aa_err=aa.results.diffusion.d_err_nm2_ps, threads=threads)
        except CgflowError as exc:
            failures.append(f"{aa.param_id}: {exc}")
            progress(f"[validate] {aa.param_id}: failed: {exc}")
            continue
        docs.append(store.save_validation({
            "models_campaign": models_campaign, "models_dataset_hash": data_hash,
            "param_id": aa.param_id, "preset": cg_preset.name, "sets_campaign": source,
            "run_dir": str(workdir), **out,
        }))
    return docs, failures
