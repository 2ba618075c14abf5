"""AccelerationFactorModel: scikit-learn API, validation, comparison with the RF baseline."""

import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_score

from cgflow.errors import InvalidInputError
from cgflow.ml import AccelerationFactorModel, RandomForestAlphaBaseline, compare_on_folds
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.features import descriptor_matrix, model_inputs
from cgflow.ml.synthetic import synthetic_alpha_table

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "dataset.npz"


@pytest.fixture(scope="module")
def table():
    return synthetic_alpha_table(60, seed=4, space="narrow")


def test_fit_predict_shapes_and_std(table):
    X, y = table
    t0 = time.perf_counter()
    m = AccelerationFactorModel().fit(X[:40], y[:40])
    print(f"\nGP fit on 40 rows: {time.perf_counter() - t0:.2f} s")
    p = m.predict(X[40:])
    p2, s = m.predict(X[40:], return_std=True)
    assert p.shape == s.shape == (20,)
    np.testing.assert_array_equal(p, p2)
    assert np.all(s > 0) and np.all(p > 0)
    assert m.predict(X[0]).shape == (1,)  # one row of 19 values
    rel = m.relevance()
    assert len(rel) == 19
    # the strongest dependence of the synthetic alpha, 0.25 tanh(2 z), is found
    top = sorted(rel, key=rel.get, reverse=True)[:3]
    assert "dih_ctctcthc_c3" in top


def test_sklearn_conventions(table):
    X, y = table
    m = AccelerationFactorModel(nu=1.5)
    assert m.get_params()["nu"] == 1.5
    m.set_params(nu=2.5, random_state=3)
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "gp_")
    # conventions only: no optimiser restarts needed
    scores = cross_val_score(AccelerationFactorModel(n_restarts=0), X[:30], y[:30], cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    rf = clone(RandomForestAlphaBaseline(n_estimators=50)).fit(X[:30], y[:30])
    mean, std = rf.predict(X[30:], return_std=True)
    assert mean.shape == std.shape == (30,) and np.all(std >= 0)


@pytest.mark.parametrize(
    ("X", "y", "fragment"),
    [(np.zeros((5, 18)), np.ones(5), r"expected shape \(n, 19\)"),
     (np.full((5, 19), np.inf), np.ones(5), "non-finite value inf in row 0, column 0"),
     (None, np.ones(4), r"y: expected shape \(5,\)"),
     (None, np.array([1.0, 2.0, np.nan, 1.0, 1.0]), "y: non-finite value nan in row 2"),
     (None, np.array([1.0, 2.0, 0.0, 1.0, 1.0]), "alpha must be > 0")],
)
def test_input_validation(table, X, y, fragment):
    X = table[0][:5] if X is None else X
    with pytest.raises(InvalidInputError, match=fragment):
        AccelerationFactorModel().fit(X, y)


def test_unfitted_predict_is_explained(table):
    with pytest.raises(InvalidInputError, match="not fitted"):
        AccelerationFactorModel().predict(table[0][:2])


def test_gp_beats_random_forest_on_the_same_folds(table):
    X, y = table
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    t0 = time.perf_counter()
    res = compare_on_folds(X, y, folds)
    gp, rf = res["gp"]["pooled"], res["random_forest"]["pooled"]
    print(f"\n60 rows, 3 folds ({time.perf_counter() - t0:.1f} s): GP {gp}\nRF {rf}")
    assert len(res["gp"]["folds"]) == 3
    assert gp["rmse"] < 0.85 * rf["rmse"]
    assert gp["r2"] > rf["r2"]
    # calibration is reported, not asserted: with 40 training rows the GP's 1-sigma
    # coverage is below the nominal 0.68 (see the benchmark in benchmarks/ml)
    assert 0.0 < gp["coverage_1sigma"] <= 1.0 and np.isfinite(gp["nll"])
    wins = sum(g["rmse"] < r["rmse"] for g, r in
               zip(res["gp"]["folds"], res["random_forest"]["folds"], strict=True))
    assert wins >= 2


def test_serialisation_gives_identical_predictions(table):
    X, y = table
    m = AccelerationFactorModel().fit(X[:30], y[:30])
    back = AccelerationFactorModel.from_bytes(m.to_bytes())
    a, sa = m.predict(X[30:], return_std=True)
    b, sb = back.predict(X[30:], return_std=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    assert back.get_params() == m.get_params()


def test_beats_the_mean_predictor_on_the_committed_reference_data():
    ds = CampaignDataset.load_npz(REFERENCE)
    X, y = ds.X, ds.alpha
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    res = compare_on_folds(X, y, folds, {"gp": AccelerationFactorModel()})["gp"]
    pooled = res["pooled"]
    # the mean predictor has R^2 <= 0 and an RMSE of about std(alpha) = 13.5
    print(f"\nreference data, 5-fold: {pooled}")
    assert pooled["r2"] > 0.5 and pooled["rmse"] < 0.7 * np.std(y)
    order = np.argsort(res["predictions"]["index"])
    pred = res["predictions"]["alpha"][order]
    log_r2 = 1 - np.sum((np.log(y) - np.log(pred)) ** 2) / np.sum(
        (np.log(y) - np.log(y).mean()) ** 2)
    assert log_r2 > 0.7
    # alpha grows with density, i.e. falls with the C-H bond length that swells the molecule
    rel = AccelerationFactorModel().fit(X, y).relevance()
    assert "bond_cthc_r0" in sorted(rel, key=rel.get, reverse=True)[:4]


def test_descriptor_inputs(table):
    X, y = table
    names = ("hydrogen_volume_nm3", "dih_ctctctct_barrier_kj_mol")
    m = AccelerationFactorModel(descriptors=names, n_restarts=0).fit(X[:30], y[:30])
    assert list(m.relevance())[-2:] == list(names)
    assert m.gp_.X_train_.shape == (30, 21)
    np.testing.assert_allclose(model_inputs(X[:2], names)[:, 19:],
                               descriptor_matrix(X[:2], names))
    back = AccelerationFactorModel.from_bytes(m.to_bytes())
    np.testing.assert_array_equal(back.predict(X[30:]), m.predict(X[30:]))
    assert back.descriptors == names
    with pytest.raises(InvalidInputError, match="unknown descriptor 'volume'"):
        AccelerationFactorModel(descriptors=("volume",)).fit(X[:10], y[:10])


def test_models_stored_before_descriptors_load(table):
    X, y = table
    m = AccelerationFactorModel(n_restarts=0).fit(X[:20], y[:20])
    state = m.to_dict()
    del state["params"]["descriptors"]  # as written before the option existed
    back = AccelerationFactorModel.from_dict(state)
    assert back.descriptors == ()
    np.testing.assert_array_equal(back.predict(X[20:]), m.predict(X[20:]))
