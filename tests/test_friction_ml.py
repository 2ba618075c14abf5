"""The learned friction: a dataset column, the alpha model's GP on gamma trained with the
others, absent with a clear status on data without friction, predicted, and written
into the snippet of ``cgflow predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cgflow.ml import load_models, predict_potentials, save_models, train_all
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.synthetic import synthetic_campaign
from cgflow.params import OPLSAA_REFERENCE
from cgflow.stages.predict import write_prediction

FAST = {"max_epochs": 100, "patience": 30, "hidden": (16,)}
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "dataset.npz"


def with_friction(ds: CampaignDataset) -> CampaignDataset:
    """The synthetic sets with a friction that depends on their parameters (1/ps):
    gamma = (kT/m)(1/D_AA - 1/D_CG) times 4, as measured on real sets."""
    gamma = 4 * 0.0217 * (1 / ds.d_aa - 1 / ds.d_cg)
    gamma[::7] = np.nan  # some sets without a calibration
    ds.friction = gamma
    ds.friction_err = 0.1 * gamma
    return ds


@pytest.fixture(scope="module")
def dataset():
    return with_friction(synthetic_campaign(20, seed=3, campaign="fric-ml"))


def test_friction_column_round_trips_and_older_datasets_keep_their_hash(dataset, tmp_path):
    assert dataset.has_friction
    path = dataset.save_npz(tmp_path / "d.npz")
    back = CampaignDataset.load_npz(path)
    np.testing.assert_allclose(back.friction, dataset.friction, equal_nan=True)
    assert back.content_hash() == dataset.content_hash()
    sub = dataset.subset([2, 1])
    assert sub.friction[1] == dataset.friction[1] and np.isnan(dataset.friction[0])
    both = CampaignDataset.concatenate([dataset.subset(range(10)),
                                        dataset.subset(range(10, 20))])
    np.testing.assert_allclose(both.friction, dataset.friction, equal_nan=True)
    old = CampaignDataset.load_npz(REFERENCE)  # made before friction was calibrated
    assert not old.has_friction and np.isnan(old.friction).all()
    import json
    stored = json.loads((REFERENCE.parent / "sets.json").read_text())["dataset_hash"]
    assert old.content_hash() == stored


def test_friction_model_trains_with_the_others_and_predicts(dataset, tmp_path):
    rep = train_all(dataset, seed=2, n_folds=3, structure_kwargs=FAST, dynamics_kwargs=FAST)
    models = rep.models
    assert models.friction is not None
    assert models.metadata["friction_model"].startswith("trained on ")
    for block in [*rep.folds, rep.test]:
        if "rmse" in block["friction"]:
            assert np.isfinite(block["friction"]["rmse"])
    assert "friction rmse" in rep.summary()
    loaded = load_models(save_models(rep))
    assert loaded.friction is not None
    x = dataset.X[:3]
    np.testing.assert_allclose(loaded.friction.predict(x), models.friction.predict(x),
                               rtol=1e-6)
    pred = predict_potentials(loaded, OPLSAA_REFERENCE)
    assert pred.friction is not None and pred.friction > 0 and pred.friction_std > 0
    files = write_prediction(pred, tmp_path / "pred")
    snippet = (tmp_path / "pred" / f"{pred.param_id}-structure.in.lammps").read_text()
    damp = 1000.0 / pred.friction
    assert f"langevin 298.15 298.15 {damp:.10g}" in snippet
    assert "predicted" in snippet and any(f.name.endswith("prediction.json") for f in files)
    dyn = (tmp_path / "pred" / f"{pred.param_id}-dynamics.in.lammps").read_text()
    assert "langevin" not in dyn and "fix integrate all nvt" in dyn


def test_without_friction_data_the_model_is_absent_with_a_status(tmp_path):
    ds = synthetic_campaign(12, seed=4, campaign="no-fric")
    rep = train_all(ds, seed=0, n_folds=3, structure_kwargs=FAST, dynamics_kwargs=FAST)
    assert rep.models.friction is None
    assert rep.models.metadata["friction_model"] == (
        "absent: the dataset has no friction calibrations")
    assert rep.test["friction"] == {"skipped": "the dataset has no friction calibrations"}
    loaded = load_models(save_models(rep))
    assert loaded.friction is None
    pred = predict_potentials(loaded, OPLSAA_REFERENCE)
    assert pred.friction is None
    write_prediction(pred, tmp_path)
    assert "frictionless" in (tmp_path / f"{pred.param_id}-structure.in.lammps").read_text()
    few = ds
    few.friction = np.where(np.arange(len(ds)) < 3, 1.0, np.nan)
    rep = train_all(few, seed=0, n_folds=3, structure_kwargs=FAST, dynamics_kwargs=FAST)
    assert rep.models.friction is None
    assert "needs at least 8" in rep.models.metadata["friction_model"]
