"""Dynamics pairs and the DynamicsModel."""

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.ml.dynamics import DynamicsModel, dynamics_pairs
from cgflow.ml.synthetic import synthetic_campaign


def test_pairs_on_a_constructed_example():
    # D_AA of sets 0..3 and D_CG of sets 0..3 (nm^2/ps) with standard errors
    d_aa = np.array([1.0, 2.0, 3.0, 4.0])
    d_aa_err = np.array([0.1, 0.1, 0.1, 0.1])
    d_cg = np.array([2.1, 3.2, 4.0, 1.0])
    d_cg_err = np.array([0.1, 0.2, 0.5, 0.0])
    # combined errors: sqrt(0.01 + e_j^2) = 0.141, 0.224, 0.510, 0.1
    pairs = dynamics_pairs(d_aa, d_aa_err, d_cg, d_cg_err)
    # |1-1.0|=0 <= 0.1 -> (0,3); |2-2.1|=0.1 <= 0.141 -> (1,0);
    # |3-3.2|=0.2 <= 0.224 -> (2,1); |3-4|=1 > 0.51; |4-4|=0 -> (3,2); |4-3.2|=0.8 > 0.224
    assert pairs == [(0, 3), (1, 0), (2, 1), (3, 2)]
    # tighter k drops the marginal pair (2, 1) and keeps the exact ones
    assert dynamics_pairs(d_aa, d_aa_err, d_cg, d_cg_err, k=0.5) == [(0, 3), (3, 2)]
    # looser k adds (2, 2): |3 - 4| = 1 <= 2 * 0.51, but not (3, 1): 0.8 > 2 * 0.224
    loose = dynamics_pairs(d_aa, d_aa_err, d_cg, d_cg_err, k=2.0)
    assert (2, 2) in loose and (3, 1) not in loose


def test_pairs_skip_missing_values_and_validate():
    d = np.array([1.0, np.nan, 1.0])
    e = np.array([0.1, 0.1, np.nan])
    assert dynamics_pairs(d, e, d, e) == [(0, 0)]
    with pytest.raises(InvalidInputError, match="d_cg: expected 3 values"):
        dynamics_pairs(d, e, d[:2], e)
    with pytest.raises(InvalidInputError, match="standard errors must be >= 0"):
        dynamics_pairs(d, -e, d, e)
    with pytest.raises(InvalidInputError, match="field 'k'"):
        dynamics_pairs(d, e, d, e, k=-1.0)


def test_dynamics_model_trains_on_pairs_split_by_i():
    ds = synthetic_campaign(30, seed=8)
    pairs = dynamics_pairs(ds.d_aa, ds.d_aa_err, ds.d_cg, ds.d_cg_err)
    print(f"\n{len(pairs)} dynamics pairs among 30 synthetic sets")
    assert len(pairs) > 10
    for i, j in pairs:
        tol = np.hypot(ds.d_aa_err[i], ds.d_cg_err[j])
        assert abs(ds.d_aa[i] - ds.d_cg[j]) <= tol
    model = DynamicsModel(ds.r_nm, max_epochs=100, patience=30, hidden=(32,))
    # the early-stopping split keeps all pairs of one set i on the same side
    groups = np.array([i for i, _ in pairs])
    val = model._validation_rows(len(pairs), groups)
    assert np.intersect1d(groups[val], groups[np.setdiff1d(np.arange(len(pairs)), val)]).size == 0
    model.fit_pairs(ds.X, ds.U, pairs)
    assert model.training_info_["n_pairs"] == len(pairs)
    U = model.predict(ds.X[:4])
    assert U.shape == (4, ds.r_nm.size) and np.all(U[:, -1] == 0.0)
    back = DynamicsModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(back.predict(ds.X[:4]), U)


def test_dynamics_model_rejects_unusable_pairs():
    ds = synthetic_campaign(10, seed=8)
    model = DynamicsModel(ds.r_nm)
    with pytest.raises(InvalidInputError, match="no \\(i, j\\) pairs"):
        model.fit_pairs(ds.X, ds.U, [])
    with pytest.raises(InvalidInputError, match="at least 2 distinct sets"):
        model.fit_pairs(ds.X, ds.U, [(1, 2), (1, 3), (1, 4)])
    with pytest.raises(InvalidInputError, match="indices must be in"):
        model.fit_pairs(ds.X, ds.U, [(1, 2), (3, 10)])
