"""Synthetic campaign results written through the store, the way the stages write them:
what tests of training, rounds and views read back (no engine runs)."""

from __future__ import annotations

import numpy as np

from cgflow.db.store import Store
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ml.dataset import CampaignDataset
from cgflow.params import ParameterSet


def store_aa_run(store: Store, ps: ParameterSet, campaign: str, r: np.ndarray, g: np.ndarray,
                 density_kg_m3: float, pressure_bar: float, preset: str = "tiny") -> None:
    """A completed all-atom run of ``ps`` with target RDF ``g(r)`` and the given density
    and pressure (the other fields plausible constants)."""
    lag = np.linspace(0.0, 10.0, 21)
    run = store.start_aa_run(ps.id, campaign, preset, "/nonexistent/aa")
    store.complete_aa_run(run.id, {
        "density_kg_m3": density_kg_m3, "density_err_kg_m3": 2.0, "pressure_bar": pressure_bar,
        "pressure_err_bar": 40.0, "temperature_k": 298.15, "temperature_err_k": 0.3,
        "box_length_nm": 2.56, "n_molecules": 64, "production_ps": 20.0,
        "rdf_r_nm": r.tolist(), "rdf_g": g.tolist(), "rdf_n_frames": 50,
        "msd_lag_ps": lag.tolist(), "msd_nm2": (6e-3 * lag).tolist(),
        "d_nm2_ps": 1e-3, "d_err_nm2_ps": 1e-4, "d_xyz_nm2_ps": [1e-3] * 3,
        "d_fit_start_ps": 2.0, "d_fit_end_ps": 8.0,
    }, timings={"prod": {"wall_s": 1.0}})


def store_converged_set(store: Store, ds: CampaignDataset, i: int, campaign: str,
                        space: str = "narrow", preset: str = "tiny") -> ParameterSet:
    """Row ``i`` of a synthetic dataset stored as a converged set: its parameter set, its
    IBI potential (converged) and its CG run with D_CG, D_AA and alpha. Returns the set."""
    ps = ParameterSet.from_array(ds.X[i])
    store.upsert_parameter_set(ps, campaign, space)
    pot = TabulatedPotential.from_energy(ds.r_nm, ds.U[i])
    rdf = {"r_nm": ds.r_nm.tolist(), "g": ds.g_target[i].tolist(), "n_frames": 5}
    store.save_potential({
        "param_id": ps.id, "campaign": campaign, "preset": preset, "converged": True,
        "reason": "converged", "n_iterations": 4, "best_iteration": 3,
        "potential": pot.to_dict(), "target_rdf": rdf, "final_rdf": rdf})
    store.save_cg_run({
        "param_id": ps.id, "campaign": campaign, "preset": preset, "status": "completed",
        "d_cg_nm2_ps": {"mean": ds.d_cg[i], "err": ds.d_cg_err[i]},
        "d_aa_nm2_ps": {"mean": ds.d_aa[i], "err": ds.d_aa_err[i]},
        "alpha": {"mean": ds.alpha[i], "err": ds.alpha_err[i]}})
    return ps
