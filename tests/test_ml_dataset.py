"""CampaignDataset construction, persistence, hashing, and the evaluation splits."""

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.ml.dataset import CampaignDataset, splits
from cgflow.params import FIELDS, OPLSAA_REFERENCE, SPACES


def _record(ps, r, u, **extra):
    rec = {
        "param_id": ps.id, "params": {f: getattr(ps, f) for f in FIELDS}, "r_nm": list(r),
        "u_kj_mol": list(u), "d_aa": 2.0e-3, "d_aa_err": 1e-4, "d_cg": 5.0e-3,
        "d_cg_err": 2e-4, "alpha": 2.5, "alpha_err": 0.1,
    }
    rec.update(extra)
    return rec


def _records(n=4):
    sets = SPACES["narrow"].sample(n, seed=5)
    r = np.linspace(0.3, 1.5, 61)  # 0.02 nm spacing
    return [_record(ps, r, 3.0 - 2.0 * r + k, g_target=np.full(r.size, 1.0 + k))
            for k, ps in enumerate(sets)], sets


def test_from_records_interpolates_onto_common_grid():
    recs, sets = _records()
    grid = np.round(np.arange(0.30, 1.501, 0.01), 10)
    ds = CampaignDataset.from_records(recs, grid, campaign="c1")
    assert len(ds) == 4 and ds.X.shape == (4, 19) and ds.U.shape == (4, grid.size)
    np.testing.assert_allclose(ds.X[2], sets[2].to_array())
    # linear potentials are interpolated exactly
    np.testing.assert_allclose(ds.U[1], 3.0 - 2.0 * grid + 1, atol=1e-12)
    np.testing.assert_allclose(ds.g_target[3], 4.0)
    assert ds.param_ids.tolist() == [ps.id for ps in sets]
    assert ds.campaign == "c1"


def test_potential_is_zero_beyond_a_record_cutoff():
    recs, _ = _records(2)
    grid = np.linspace(0.3, 1.8, 151)
    ds = CampaignDataset.from_records(recs, grid)
    assert np.all(ds.U[:, grid > 1.5 + 1e-9] == 0.0)


def test_missing_scalars_become_nan_and_rdf_is_optional():
    recs, _ = _records(2)
    for rec in recs:
        del rec["g_target"]
    recs[1]["alpha"] = None
    del recs[1]["d_cg_err"]
    ds = CampaignDataset.from_records(recs, np.linspace(0.3, 1.5, 13))
    assert ds.g_target is None
    assert np.isnan(ds.alpha[1]) and np.isnan(ds.d_cg_err[1]) and ds.alpha[0] == 2.5


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (lambda r: r.pop("u_kj_mol"), ["record 1", "field 'u_kj_mol'", "missing"]),
        (lambda r: r["params"].update(bond_ctct_k=-5.0), ["record 1", "bond_ctct_k", "-5.0"]),
        (lambda r: r.update(u_kj_mol=r["u_kj_mol"][:-1]), ["record 1", "u_kj_mol", "60 values"]),
        (lambda r: r.update(r_nm=[0.35] + r["r_nm"][1:]), ["record 1", "strictly increasing"]),
        (lambda r: r.update(alpha="fast"), ["record 1", "field 'alpha'", "'fast'"]),
        (lambda r: r["u_kj_mol"].__setitem__(3, float("nan")), ["record 1", "non-finite"]),
    ],
)
def test_bad_records_are_named(mutate, fragments):
    recs, _ = _records(3)
    mutate(recs[1])
    with pytest.raises(InvalidInputError) as exc:
        CampaignDataset.from_records(recs, np.linspace(0.3, 1.5, 25))
    for frag in fragments:
        assert frag in str(exc.value)


def test_grid_starting_before_a_record_is_an_error():
    recs, _ = _records(2)
    with pytest.raises(InvalidInputError, match="starts at 0.3 nm"):
        CampaignDataset.from_records(recs, np.linspace(0.25, 1.5, 26))


def test_npz_round_trip_and_content_hash(tmp_path):
    recs, _ = _records(3)
    ds = CampaignDataset.from_records(recs, np.linspace(0.3, 1.5, 25), campaign="c2")
    path = ds.save_npz(tmp_path / "ds.npz")
    back = CampaignDataset.load_npz(path)
    assert back.campaign == "c2"
    for name in ("X", "U", "r_nm", "g_target", "alpha", "d_aa_err"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))
    assert back.param_ids.tolist() == ds.param_ids.tolist()
    assert back.content_hash() == ds.content_hash()
    changed = CampaignDataset.load_npz(path)
    changed.U[0, 5] += 1e-9
    assert changed.content_hash() != ds.content_hash()
    assert ds.subset([2, 0]).content_hash() != ds.content_hash()


def test_dataset_validates_shapes():
    x = OPLSAA_REFERENCE.to_array()[None, :]
    kw = {k: [1.0] for k in ("d_aa", "d_aa_err", "d_cg", "d_cg_err", "alpha", "alpha_err")}
    with pytest.raises(InvalidInputError, match="field 'U'"):
        CampaignDataset(param_ids=["a"], X=x, r_nm=np.linspace(0.3, 1.5, 5), U=np.zeros((1, 4)),
                        **kw)
    with pytest.raises(InvalidInputError, match="field 'X'"):
        CampaignDataset(param_ids=["a"], X=x[:, :18], r_nm=np.linspace(0.3, 1.5, 5),
                        U=np.zeros((1, 5)), **kw)


def test_splits_partition_and_are_seeded():
    sp = splits(37, n_folds=5, test_fraction=0.2, seed=3)
    assert sp.test.size == 7 and sp.trainval.size == 30
    assert np.intersect1d(sp.test, sp.trainval).size == 0
    assert np.array_equal(np.union1d(sp.test, sp.trainval), np.arange(37))
    vals = np.concatenate([v for _, v in sp.folds])
    assert np.array_equal(np.sort(vals), sp.trainval)  # each non-test set validated once
    for train, val in sp.folds:
        assert np.intersect1d(train, val).size == 0
        assert np.intersect1d(train, sp.test).size == 0
        assert train.size + val.size == 30
    again = splits(37, n_folds=5, test_fraction=0.2, seed=3)
    assert np.array_equal(again.test, sp.test)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(again.folds, sp.folds, strict=True))
    assert not np.array_equal(splits(37, seed=4).test, sp.test)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"n_folds": 1}, "n_folds"), ({"test_fraction": 1.0}, "test_fraction"),
     ({"n_folds": 9}, "only 8 remain")],
)
def test_splits_reject_bad_settings(kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        splits(10, **kwargs)


def _part(sets, r, campaign, offset=0.0):
    recs = [_record(ps, r, 3.0 - 2.0 * r + offset, g_target=np.full(r.size, 1.5))
            for ps in sets]
    return CampaignDataset.from_records(recs, r, campaign=campaign)


def test_concatenate_aligns_grids_and_keeps_rows():
    sets = SPACES["narrow"].sample(5, seed=7)
    a = _part(sets[:3], np.round(np.arange(0.30, 1.201, 0.01), 10), "a")
    b = _part(sets[3:], np.round(np.arange(0.30, 1.501, 0.01), 10), "b", offset=1.0)
    ab = CampaignDataset.concatenate([a, b])
    assert ab.campaign == "a+b" and len(ab) == 5
    assert ab.param_ids.tolist() == [ps.id for ps in sets]
    assert ab.r_nm[0] == pytest.approx(0.30) and ab.r_nm[-1] == pytest.approx(1.50)
    # a's potentials end at its cutoff: zero beyond, unchanged before
    beyond = ab.r_nm > 1.2 + 1e-9
    assert np.all(ab.U[:3, beyond] == 0.0)
    np.testing.assert_allclose(ab.U[:3, ~beyond], a.U, atol=1e-12)
    np.testing.assert_allclose(ab.U[3:], b.U, atol=1e-12)
    np.testing.assert_allclose(ab.X, np.vstack([a.X, b.X]))
    assert CampaignDataset.concatenate([a, b], campaign="ref").campaign == "ref"


def test_concatenate_rejects_a_set_in_two_parts_and_other_spacings():
    sets = SPACES["narrow"].sample(3, seed=7)
    a = _part(sets[:2], np.round(np.arange(0.30, 1.201, 0.01), 10), "a")
    b = _part(sets[1:], np.round(np.arange(0.30, 1.201, 0.01), 10), "b")
    with pytest.raises(InvalidInputError, match=f"{sets[1].id!r} is in both 'a' and 'b'"):
        CampaignDataset.concatenate([a, b])
    c = _part(sets[2:], np.round(np.arange(0.30, 1.201, 0.02), 10), "c")
    with pytest.raises(InvalidInputError, match="different spacings"):
        CampaignDataset.concatenate([a, c])
    with pytest.raises(InvalidInputError, match="no datasets"):
        CampaignDataset.concatenate([])
