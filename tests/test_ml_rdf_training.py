"""The training stage trains the RDF model on every stored all-atom run, converged or not."""

import numpy as np
from stored_results import store_aa_run, store_converged_set

from cgflow.ml.predict import predict_potentials
from cgflow.ml.synthetic import synthetic_campaign
from cgflow.params import ParameterSet
from cgflow.stages.train import aa_target_records, load_campaign_models, train_campaign_models


def test_training_stage_uses_unconverged_all_atom_runs(store):
    campaign = "rdf-all-runs"
    ds = synthetic_campaign(12, seed=8, campaign=campaign)
    r = np.arange(0.005, 1.5, 0.01)
    for i in range(12):
        ps = ParameterSet.from_array(ds.X[i])
        store.upsert_parameter_set(ps, campaign, "narrow")
        g = np.interp(r, ds.r_nm, ds.g_target[i], left=0.0)
        store_aa_run(store, ps, campaign, r, g, 600.0 + 2e3 * ds.X[i, 1], 5.0 * i - 20.0)
        if i >= 10:  # the last two: IBI did not converge, no CG run
            continue
        store_converged_set(store, ds, i, campaign)

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
