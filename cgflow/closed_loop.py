"""Closed-loop validation of predicted CG potentials: simulate them and compare.

For one parameter set the models have not seen, with its all-atom results (target RDF,
density, pressure, D_AA), each predicted potential is run in LAMMPS twice, exactly as
the CG stage runs a potential: a sampling run as in an IBI iteration (the RDF and the
pressure, block-averaged by LAMMPS) and a CG production (D_CG from the MSD, the same
analysis as D_AA). Then

* structure route: the RDF deviation of the structure-preserving potential against the
  AA target (:func:`cgflow.ibi.metrics.rdf_deviation`), and its D_CG rescaled by the
  predicted alpha, D_CG / alpha, against D_AA;
* dynamics route: D_CG of the dynamics-preserving potential against D_AA (and, for
  information, its RDF deviation: that potential is not meant to keep the structure).

Relative D errors are (D - D_AA) / D_AA. Plain functions on run directories, like
:mod:`cgflow.cg_stage`; nothing here knows of FireWorks or the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cgflow.ibi.iteration import finish_iteration, ibi_grid, prepare_iteration
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.production import finish_production, prepare_production
from cgflow.ibi.settings import IBISettings, IBITarget
from cgflow.jobs.lammps import run_lammps
from cgflow.ml.predict import Prediction
from cgflow.presets import CGPreset

#: Seeds of the validation runs (distinct from the IBI and production seeds).
SAMPLING_SEED = 7001
PRODUCTION_SEED = 7002


def on_ibi_grid(r_nm: np.ndarray, u_kj_mol: np.ndarray, settings: IBISettings,
                cg_preset: CGPreset) -> TabulatedPotential:
    """A predicted potential moved onto the IBI grid of ``settings`` and ``cg_preset``.

    Linear interpolation inside the predicted grid; beyond its last point (its cutoff)
    the potential is 0; before its first point the wall is continued linearly with the
    slope of its first two points (steeper and steeper is not needed: the beads never
    get there at 298 K).
    """
    grid = ibi_grid(settings, cg_preset)
    r = np.asarray(r_nm, float)
    u = np.asarray(u_kj_mol, float)
    out = np.interp(grid, r, u, right=0.0)
    below = grid < r[0]
    if np.any(below):
        slope = (u[1] - u[0]) / (r[1] - r[0])
        out[below] = u[0] + slope * (grid[below] - r[0])
    return TabulatedPotential.from_energy(grid, out)


def simulate_potential(
    workdir: str | Path, potential: TabulatedPotential, target: IBITarget,
    settings: IBISettings, cg_preset: CGPreset, *, threads: int = 1,
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
    prep = prepare_iteration(workdir / "sampling", potential, target, settings, cg_preset,
                             iteration=0, seed=SAMPLING_SEED, threads=threads)
    rep_s = run_lammps(prep.workdir, prep.input_file.name, settings=prep.lammps_settings,
                       threads=threads)
    sampled = finish_iteration(prep.workdir, target, settings, cg_preset)
    prod = prepare_production(workdir / "production", potential, target, settings, cg_preset,
                              seed=PRODUCTION_SEED, threads=threads)
    rep_p = run_lammps(prod.workdir, prod.input_file.name, settings=prod.lammps_settings,
                       threads=threads)
    d = finish_production(prod.workdir).diffusion
    return {
        "rdf_deviation": sampled.rdf_deviation, "pressure_bar": sampled.pressure_bar,
        "pressure_err_bar": sampled.pressure_err_bar,
        "pressure_deviation_bar": sampled.pressure_deviation_bar,
        "rdf": {"r_nm": sampled.r_nm.tolist(), "g": sampled.g.tolist()},
        "d_cg": d.d_nm2_ps, "d_cg_err": d.d_err_nm2_ps,
        "wall_s": float((rep_s.wall_time_s or 0.0) + (rep_p.wall_time_s or 0.0)),
    }


def relative_error(value: float, reference: float) -> float:
    """(value - reference) / reference."""
    return (value - reference) / reference


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
        (:func:`cgflow.cg_stage.make_target`, :func:`cgflow.cg_stage.make_settings`).
    d_aa, d_aa_err
        The set's all-atom diffusion coefficient and its error, nm^2/ps.

    Returns
    -------
    dict
        ``alpha_pred``, ``alpha_std``, ``d_aa``, ``d_aa_err``, ``structure`` (the
        :func:`simulate_potential` result plus ``d_rescaled`` = D_CG / alpha_pred and
        ``d_rescaled_rel_error``) and ``dynamics`` (plus ``d_rel_error``; None without a
        dynamics model).
    """
    workdir = Path(workdir)
    out: dict[str, Any] = {"alpha_pred": prediction.alpha, "alpha_std": prediction.alpha_std,
                           "d_aa": d_aa, "d_aa_err": d_aa_err,
                           "warnings": list(prediction.out_of_space)}
    pot_s = on_ibi_grid(prediction.r_nm, prediction.U_structure, settings, cg_preset)
    s = simulate_potential(workdir / "structure", pot_s, target, settings, cg_preset,
                           threads=threads)
    s["d_rescaled"] = s["d_cg"] / prediction.alpha
    s["d_rescaled_rel_error"] = relative_error(s["d_rescaled"], d_aa)
    out["structure"] = s
    out["dynamics"] = None
    if prediction.U_dynamics is not None:
        pot_d = on_ibi_grid(prediction.r_nm, prediction.U_dynamics, settings, cg_preset)
        dyn = simulate_potential(workdir / "dynamics", pot_d, target, settings, cg_preset,
                                 threads=threads)
        dyn["d_rel_error"] = relative_error(dyn["d_cg"], d_aa)
        out["dynamics"] = dyn
    return out

