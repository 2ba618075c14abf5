"""StructureModel: learns a synthetic potential family, determinism, save/load, errors."""

import time

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.ml.metrics import potential_rmse
from cgflow.ml.structure_model import StructureModel
from cgflow.ml.synthetic import synthetic_campaign

FAST = {"max_epochs": 150, "patience": 50, "hidden": (32,)}


@pytest.fixture(scope="module")
def family():
    return synthetic_campaign(90, seed=21)


@pytest.fixture(scope="module")
def trained(family):
    ds = family
    t0 = time.perf_counter()
    model = StructureModel(ds.r_nm, seed=0).fit(ds.X[:60], ds.U[:60])
    print(f"\nStructureModel.fit on 60 rows: {time.perf_counter() - t0:.2f} s, "
          f"{model.training_info_}")
    return model


def test_learns_the_family_well_below_its_spread(family, trained):
    ds = family
    test = slice(60, 90)
    ref = ds.U[:60].mean(axis=0)
    pred = trained.predict(ds.X[test])
    err = potential_rmse(ds.r_nm, ds.U[test], pred, reference=ref)
    spread = potential_rmse(ds.r_nm, ds.U[test], np.tile(ref, (30, 1)), reference=ref)
    print(f"test RMSE {err}; predicting the mean: {spread}")
    assert err["rmse_well"] < 0.4 * spread["rmse_well"]
    assert err["rmse_sampled"] < 0.5 * spread["rmse_sampled"]
    assert err["rmse_grid"] < 0.5 * spread["rmse_grid"]
    assert pred.shape == (30, ds.r_nm.size)
    assert np.all(pred[:, -1] == 0.0)


def test_forces_of_predictions(family, trained):
    U, F = trained.predict_forces(family.X[60:63])
    assert U.shape == F.shape == (3, family.r_nm.size)
    assert np.all(F[:, : trained.rep_.core_end_index_] > 0)
    assert np.allclose(F[:, -1], 0.0)


def test_same_seed_same_weights_other_seed_differs(family):
    ds = family
    a = StructureModel(ds.r_nm, seed=3, **FAST).fit(ds.X[:20], ds.U[:20])
    b = StructureModel(ds.r_nm, seed=3, **FAST).fit(ds.X[:20], ds.U[:20])
    c = StructureModel(ds.r_nm, seed=4, **FAST).fit(ds.X[:20], ds.U[:20])
    np.testing.assert_array_equal(a.predict(ds.X[60:]), b.predict(ds.X[60:]))
    assert not np.array_equal(a.predict(ds.X[60:]), c.predict(ds.X[60:]))


def test_save_load_round_trip_is_identical(family, trained, tmp_path):
    X = family.X[60:]
    path = trained.save(tmp_path / "structure.zip")
    back = StructureModel.load(path)
    np.testing.assert_array_equal(back.predict(X), trained.predict(X))
    np.testing.assert_array_equal(StructureModel.from_bytes(trained.to_bytes()).predict(X),
                                  trained.predict(X))
    state = trained.state_dict()
    assert state["metadata"]["kind"] == "structure"
    assert len(state["metadata"]["r_nm"]) == family.r_nm.size
    assert {"x_mean", "x_scale", "representation", "training"} <= set(state["metadata"])


def test_load_rejects_other_kinds_and_garbage(family, trained):
    from cgflow.ml.dynamics import DynamicsModel

    with pytest.raises(InvalidInputError, match="expected kind 'dynamics'"):
        DynamicsModel.from_bytes(trained.to_bytes())
    with pytest.raises(InvalidInputError, match="not a saved model archive"):
        StructureModel.from_bytes(b"not a zip")


@pytest.mark.parametrize(
    ("X", "fragment"),
    [(np.zeros((5, 18)), r"expected shape \(n, 19\)"),
     (np.full((5, 19), np.nan), "non-finite value nan in row 0, column 0"),
     ([["a"] * 19], "numeric array")],
)
def test_bad_features_are_explained(family, trained, X, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        trained.predict(X)


def test_bad_targets_and_unfitted_model(family):
    ds = family
    model = StructureModel(ds.r_nm, **FAST)
    with pytest.raises(InvalidInputError, match="not fitted"):
        model.predict(ds.X[:2])
    with pytest.raises(InvalidInputError, match="U: expected shape"):
        model.fit(ds.X[:10], ds.U[:9])
    with pytest.raises(InvalidInputError, match="at least 3 rows"):
        model.fit(ds.X[:2], ds.U[:2])
