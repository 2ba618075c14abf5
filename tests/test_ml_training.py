"""train_all protocol, learning curve, model blobs and predict_potentials."""

import json
import time

import numpy as np
import pytest

from cgflow.ml import (
    MIN_SETS_TO_TRAIN,
    InsufficientDataError,
    dynamics_pairs,
    learning_curve,
    load_models,
    predict_potentials,
    save_models,
    train_all,
)
from cgflow.ml.rdf_model import AATargets
from cgflow.ml.synthetic import synthetic_campaign
from cgflow.params import FIELDS, OPLSAA_REFERENCE, SPACES

FAST = {"max_epochs": 150, "patience": 40, "hidden": (32,)}


@pytest.fixture(scope="module")
def dataset():
    return synthetic_campaign(24, seed=5, campaign="synthetic-24")


@pytest.fixture(scope="module")
def report(dataset):
    t0 = time.perf_counter()
    rep = train_all(dataset, seed=1, n_folds=3, structure_kwargs=FAST, dynamics_kwargs=FAST)
    print(f"\ntrain_all on 24 sets, 3 folds: {time.perf_counter() - t0:.1f} s\n{rep.summary()}")
    return rep


def test_report_follows_the_protocol(dataset, report):
    assert report.n_sets == 24 and report.n_folds == 3 and len(report.folds) == 3
    assert report.dataset_hash == dataset.content_hash()
    test = set(report.split["test"])
    assert len(test) == 5
    for fold in report.split["folds"]:
        assert not test & set(fold["train"]) and not test & set(fold["val"])
    assert report.n_pairs == len(dynamics_pairs(dataset.d_aa, dataset.d_aa_err,
                                                dataset.d_cg, dataset.d_cg_err))
    for block in [*report.folds, report.test, report.cv_mean]:
        for key in ("rmse_grid", "rmse_sampled", "rmse_well"):
            assert np.isfinite(block["structure"][key]) and block["structure"][key] > 0
        for key in ("rmse", "r2", "nll", "coverage_1sigma"):
            assert np.isfinite(block["alpha"][key])
            assert np.isfinite(block["alpha_random_forest"][key])
    assert report.models.dynamics is not None
    meta = report.models.metadata
    assert meta["campaign"] == "synthetic-24" and len(meta["train_param_ids"]) == 19
    assert set(meta["training_bounds"]) == set(FIELDS)
    d = report.to_dict()
    assert "models" not in d and d["cv_mean"] == report.cv_mean
    assert "CV mean" in report.summary()


def test_model_blobs_round_trip_exactly(dataset, report):
    blobs = save_models(report)
    assert set(blobs) == {"structure", "dynamics", "alpha", "rdf", "manifest"}
    assert all(isinstance(b, bytes) for b in blobs.values())
    back = load_models(blobs)
    X = dataset.X
    np.testing.assert_array_equal(back.structure.predict(X), report.models.structure.predict(X))
    np.testing.assert_array_equal(back.dynamics.predict(X), report.models.dynamics.predict(X))
    a, s = report.models.alpha.predict(X, return_std=True)
    b, t = back.alpha.predict(X, return_std=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s, t)
    assert back.metadata == report.models.metadata
    for name in ("g", "g_std"):
        np.testing.assert_array_equal(getattr(back.rdf.predict(X), name),
                                      getattr(report.models.rdf.predict(X), name))


def test_rdf_model_is_trained_with_the_others(dataset, report):
    # without all-atom runs given, it learns the dataset's target RDFs (no density or
    # pressure there), on the non-test sets, and is scored on the test sets
    rdf = report.models.rdf
    assert rdf is not None and rdf.n_rows_["g"] == 19
    assert set(rdf.skipped_) == {"density_kg_m3", "pressure_bar"}
    t = report.test["rdf"]["rdf"]
    assert t["n"] == 5 and t["deviation_mean"] < t["mean_predictor_deviation_mean"]
    assert "rdf model: trained on 19 all-atom runs" in report.summary()
    # every all-atom run given: an unconverged set (not in the dataset) is learnt from too
    targets = AATargets.from_dataset(dataset)
    extra = {"param_id": "unconverged", "params": dict(zip(FIELDS, dataset.X[0], strict=True)),
             "density_kg_m3": 700.0, "pressure_bar": 1.0}
    more = AATargets.from_records([extra], dataset.r_nm)
    rows = {name: np.append(getattr(targets, name), getattr(more, name)[0])
            for name in ("density_kg_m3", "density_err_kg_m3", "pressure_bar",
                         "pressure_err_bar")}
    rows["density_kg_m3"][:-1] = 650.0 + 100.0 * dataset.X[:, 1] / dataset.X[:, 1].max()
    rows["pressure_bar"][:-1] = 1.0
    table = AATargets(param_ids=np.append(targets.param_ids, "unconverged"),
                      X=np.vstack([targets.X, more.X]), r_nm=targets.r_nm,
                      g=np.vstack([targets.g, more.g]), **rows)
    small = dataset.subset(range(12))
    rep = train_all(small, seed=0, n_folds=2, structure_kwargs=FAST, dynamics_kwargs=FAST,
                    aa_targets=table.subset([*range(12), 24]))
    assert rep.models.rdf.n_rows_ == {"g": 10, "density_kg_m3": 11, "pressure_bar": 11}
    assert np.isfinite(rep.test["rdf"]["density"]["rmse"])


def test_models_stored_before_the_rdf_model_load_without_it(dataset, report):
    blobs = save_models(report)
    manifest = json.loads(blobs["manifest"])
    manifest["models"].remove("rdf")
    old = {k: v for k, v in blobs.items() if k != "rdf"} | {
        "manifest": json.dumps(manifest).encode()}
    models = load_models(old)
    assert models.rdf is None
    pred = predict_potentials(models, OPLSAA_REFERENCE)
    assert pred.g_target is None and pred.density_kg_m3 is None and pred.rdf_r_nm is None


def test_predict_potentials(dataset, report):
    models = load_models(save_models(report))
    ps = SPACES["narrow"].sample(1, seed=123)[0]
    predict_potentials(models, ps)  # warm-up
    t0 = time.perf_counter()
    n = 20
    for _ in range(n):
        pred = predict_potentials(models, ps)
    ms = (time.perf_counter() - t0) / n * 1e3
    print(f"\npredict_potentials: {ms:.2f} ms per parameter set")
    g = dataset.r_nm.size
    assert pred.r_nm.shape == pred.U_structure.shape == pred.F_structure.shape == (g,)
    assert pred.U_dynamics.shape == pred.F_dynamics.shape == (g,)
    assert pred.U_structure[-1] == 0.0 and pred.alpha > 0 and pred.alpha_std > 0
    assert pred.param_id == ps.id
    assert pred.rdf_r_nm.shape == pred.g_target.shape == pred.g_target_std.shape == (g,)
    np.testing.assert_array_equal(pred.g_target, models.rdf.predict(ps.to_array()).g[0])
    assert pred.density_kg_m3 is None and pred.pressure_bar is None  # none in the dataset
    np.testing.assert_array_equal(pred.U_structure, models.structure.predict(ps.to_array())[0])
    far = SPACES["wide"].sample(1, seed=3)[0]
    warn = predict_potentials(models, far, space="narrow").out_of_space
    assert any("outside 'narrow'" in w for w in warn)
    assert any("outside 'training-data'" in w for w in warn)
    assert any(w.startswith("bond_ctct_r0 = ") for w in warn)


def test_learning_curve_rows(dataset):
    rows = learning_curve(dataset, [8, 16], seed=0, structure_kwargs=FAST)
    assert [r["n_train"] for r in rows] == [8, 16]
    for r in rows:
        assert r["n_test"] == 5
        for key in ("structure_rmse_well", "alpha_rmse", "alpha_random_forest_rmse"):
            assert np.isfinite(r[key]) and r[key] > 0


def test_too_few_sets_is_a_clear_error():
    ds = synthetic_campaign(MIN_SETS_TO_TRAIN - 1, seed=2, campaign="tiny")
    with pytest.raises(InsufficientDataError) as exc:
        train_all(ds)
    assert str(exc.value) == (f"campaign 'tiny' has {MIN_SETS_TO_TRAIN - 1} converged parameter "
                              f"sets; training needs at least {MIN_SETS_TO_TRAIN}")
    ds = synthetic_campaign(12, seed=2, campaign="half")
    ds.alpha[:6] = np.nan
    with pytest.raises(InsufficientDataError, match="6 parameter sets with a finite, positive"):
        train_all(ds)


def test_without_dynamics_pairs(dataset):
    ds = dataset.subset(range(12))
    ds.d_cg[:] = 10.0 * ds.d_cg  # no CG run is as slow as any all-atom run
    rep = train_all(ds, seed=0, n_folds=2, structure_kwargs=FAST)
    assert rep.n_pairs == 0 and rep.models.dynamics is None
    assert "skipped" in rep.test["dynamics"] and "skipped" in rep.cv_mean["dynamics"]
    models = load_models(save_models(rep))
    assert models.dynamics is None
    pred = predict_potentials(models, OPLSAA_REFERENCE)
    assert pred.U_dynamics is None and pred.F_dynamics is None
    assert "no pairs" not in rep.summary() and "pair(s)" in rep.summary()
