"""The training stage trains the RDF model on every stored all-atom run, converged or not."""

import numpy as np

from cgflow.ibi.potential import TabulatedPotential
from cgflow.ml.predict import predict_potentials
from cgflow.ml.synthetic import synthetic_campaign
from cgflow.params import ParameterSet
from cgflow.stages.train import aa_target_records, load_campaign_models, train_campaign_models


def _store_aa_run(store, ps, campaign, r, g, density, pressure):
    lag = np.linspace(0.0, 10.0, 21)
    run = store.start_aa_run(ps.id, campaign, "tiny", "/nonexistent/aa")
    store.complete_aa_run(run.id, {
        "density_kg_m3": density, "density_err_kg_m3": 2.0, "pressure_bar": pressure,
        "pressure_err_bar": 40.0, "temperature_k": 298.15, "temperature_err_k": 0.3,
        "box_length_nm": 2.56, "n_molecules": 64, "production_ps": 20.0,
        "rdf_r_nm": r.tolist(), "rdf_g": g.tolist(), "rdf_n_frames": 50,
        "msd_lag_ps": lag.tolist(), "msd_nm2": (6e-3 * lag).tolist(),
        "d_nm2_ps": 1e-3, "d_err_nm2_ps": 1e-4, "d_xyz_nm2_ps": [1e-3] * 3,
        "d_fit_start_ps": 2.0, "d_fit_end_ps": 8.0,
    }, timings={"prod": {"wall_s": 1.0}})


def test_training_stage_uses_unconverged_all_atom_runs(store):
    campaign = "rdf-all-runs"
    ds = synthetic_campaign(12, seed=8, campaign=campaign)
    r = np.arange(0.005, 1.5, 0.01)
    for i in range(12):
        ps = ParameterSet.from_array(ds.X[i])
        store.upsert_parameter_set(ps, campaign, "narrow")
        g = np.interp(r, ds.r_nm, ds.g_target[i], left=0.0)
        _store_aa_run(store, ps, campaign, r, g, 600.0 + 2e3 * ds.X[i, 1], 5.0 * i - 20.0)
        if i >= 10:  # the last two: IBI did not converge, no CG run
            continue
        pot = TabulatedPotential.from_energy(ds.r_nm, ds.U[i])
        rdf = {"r_nm": ds.r_nm.tolist(), "g": ds.g_target[i].tolist(), "n_frames": 5}
        store.save_potential({
            "param_id": ps.id, "campaign": campaign, "preset": "tiny", "converged": True,
            "reason": "converged", "n_iterations": 4, "best_iteration": 3,
            "potential": pot.to_dict(), "target_rdf": rdf, "final_rdf": rdf})
        store.save_cg_run({
            "param_id": ps.id, "campaign": campaign, "preset": "tiny", "status": "completed",
            "d_cg_nm2_ps": {"mean": ds.d_cg[i], "err": ds.d_cg_err[i]},
            "d_aa_nm2_ps": {"mean": ds.d_aa[i], "err": ds.d_aa_err[i]},
            "alpha": {"mean": ds.alpha[i], "err": ds.alpha_err[i]}})

    records = aa_target_records(store, campaign, "tiny")
    assert len(records) == 12 and {r["param_id"] for r in records} == set(ds.param_ids)
    out = train_campaign_models(store, campaign, "tiny")
    assert out["status"] == "trained" and "rdf" in out["models"]
    models = load_campaign_models(store, campaign)
    # 12 all-atom runs, the 2 held-out test sets of the 10 converged ones left out
    assert models.rdf.n_rows_ == {"g": 10, "density_kg_m3": 10, "pressure_bar": 10}
    assert models.metadata["rdf_model"].startswith("trained on 10 all-atom runs")
    unconverged = ParameterSet.from_array(ds.X[11])
    pred = predict_potentials(models, unconverged)
    assert pred.g_target.shape == pred.rdf_r_nm.shape and pred.density_std_kg_m3 > 0
    assert abs(pred.density_kg_m3 - (600.0 + 2e3 * ds.X[11, 1])) < 30.0
