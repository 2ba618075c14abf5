"""Acquisition for active learning: criteria, diverse batches, determinism, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.ml.active_learning import (
    AcquisitionSettings,
    BatchSelection,
    fit_models,
    select_batch,
)
from cgflow.ml.dataset import CampaignDataset

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "dataset.npz"


@pytest.fixture(scope="module")
def data():
    ds = CampaignDataset.load_npz(REFERENCE)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds))
    train, cand = order[:12], order[12:40]
    return {"X": ds.X[train], "alpha": ds.alpha[train], "g": ds.g_target[train][:, ::4],
            "Xc": ds.X[cand], "lows": ds.X.min(axis=0), "highs": ds.X.max(axis=0)}


def test_alpha_std_batch_is_deterministic_distinct_and_auditable(data):
    s = AcquisitionSettings(criterion="alpha_std", seed=3)
    a = select_batch(data["X"], data["alpha"], None, data["Xc"], 4, s)
    models = fit_models(data["X"], data["alpha"], None, s)  # fitted once, passed in
    b = select_batch(data["X"], data["alpha"], None, data["Xc"], 4, s, models=models)
    assert a.model_dump() == b.model_dump()
    idx = [c.candidate_index for c in a.choices]
    assert len(set(idx)) == 4 and all(0 <= i < len(data["Xc"]) for i in idx)
    assert a.n_train == 12 and a.criterion == "alpha_std"
    c0 = a.choices[0]
    assert set(c0.components) == {"alpha_std", "diversity"}
    assert c0.score == pytest.approx(c0.components["alpha_std"] * c0.components["diversity"])
    text = json.dumps(a.model_dump())  # stored with every chosen set
    again = BatchSelection.model_validate(json.loads(text))
    assert again == a
    st = a.model_state["routes"]["alpha_std"]
    assert len(st["kernel"]["length_scale"]) == 19 and st["target"] == "log(alpha)"
    assert "scikit-learn" in a.model_state["versions"]


def test_alpha_std_prefers_sets_far_from_the_training_sets(data):
    X = data["X"]
    far = X.mean(axis=0) + 3.0 * X.std(axis=0)  # outside the training cloud
    cands = np.vstack([X[:5] * (1 + 1e-4), far])
    sel = select_batch(X, data["alpha"], None, cands, 1,
                       AcquisitionSettings(criterion="alpha_std", diversity_weight=0.0))
    assert sel.choices[0].candidate_index == 5
    assert sel.choices[0].components["alpha_std"] > 0


def test_batches_are_diverse(data):
    X = data["X"]
    far = X.mean(axis=0) + 3.0 * X.std(axis=0)
    other = X.mean(axis=0) - 3.0 * X.std(axis=0)
    first = select_batch(X, data["alpha"], None, np.vstack([far, other]), 1,
                         AcquisitionSettings(criterion="alpha_std", diversity_weight=0.0))
    best, rest = (far, other) if first.choices[0].candidate_index == 0 else (other, far)
    cands = np.vstack([best, best, best, rest, X[0]])  # three copies of the best candidate
    for rule, weight in (("distance", 1.0), ("believer", 0.0)):
        s = AcquisitionSettings(criterion="alpha_std", diversity_weight=weight, batch_rule=rule)
        sel = select_batch(X, data["alpha"], None, cands, 3, s)
        chosen = [c.candidate_index for c in sel.choices]
        assert chosen[:2] == [0, 3], rule
        if rule == "distance":  # a copy of a chosen set or of a training set scores 0
            assert sel.choices[2].score == 0.0
    # without a diversity rule the copies win
    plain = select_batch(X, data["alpha"], None, cands, 2,
                         AcquisitionSettings(criterion="alpha_std", diversity_weight=0.0))
    assert [c.candidate_index for c in plain.choices] == [0, 1]


def test_structure_and_combined_criteria(data):
    s = AcquisitionSettings(criterion="combined", batch_rule="believer", seed=1)
    sel = select_batch(data["X"], data["alpha"], data["g"], data["Xc"], 3, s,
                       bounds=(data["lows"], data["highs"]))
    assert set(sel.choices[0].components) == {"alpha_std", "structure_spread", "diversity"}
    med = sel.model_state["combined_medians"]
    c = sel.choices[0].components
    assert sel.choices[0].score == pytest.approx(
        (c["alpha_std"] / med["alpha_std"] + c["structure_spread"] / med["structure_spread"])
        * c["diversity"])
    st = sel.model_state["routes"]["structure_spread"]
    assert st["spread"] == "posterior std" and st["n_components"] >= 1
    # alpha missing everywhere: combined falls back to the structure route and says so
    g_only = select_batch(data["X"][:6], np.full(6, np.nan), data["g"][:6], data["Xc"][:5], 2, s)
    assert "alpha_std" in g_only.model_state["skipped"]
    assert set(g_only.choices[0].components) == {"structure_spread", "diversity"}


def test_bootstrap_ensemble_spread(data):
    s = AcquisitionSettings(criterion="structure_spread", structure_ensemble=2, seed=5)
    sel = select_batch(data["X"][:6], None, data["g"][:6], data["Xc"][:6], 2, s)
    st = sel.model_state["routes"]["structure_spread"]
    assert st["spread"] == "bootstrap ensemble" and len(st["member_seeds"]) == 2
    assert all(c.components["structure_spread"] > 0 for c in sel.choices)


def test_bad_input_names_the_argument(data):
    X, a, Xc = data["X"], data["alpha"], data["Xc"]
    s = AcquisitionSettings(criterion="alpha_std")
    cases = [
        (dict(X_candidates=Xc[:, :5]), "X_candidates"),
        (dict(X_train=X[:, :18]), "X_train"),
        (dict(n=0), "n:"),
        (dict(n=len(Xc) + 1), "n:"),
        (dict(alpha_train=a[:3]), "alpha_train"),
        (dict(alpha_train=-a), "alpha_train"),
        (dict(alpha_train=None), "alpha_train"),
        (dict(g_train=np.ones((3, 5)), settings=AcquisitionSettings(
            criterion="structure_spread")), "g_train"),
        (dict(settings=AcquisitionSettings(criterion="structure_spread")), "g_train"),
        (dict(bounds=(np.zeros(3), np.ones(3))), "bounds"),
        (dict(settings={"criterion": "alpha_std", "seeed": 1}), "seeed"),
        (dict(settings={"criterion": "entropy"}), "criterion"),
    ]
    for change, name in cases:
        kw = dict(X_train=X, alpha_train=a, g_train=None, X_candidates=Xc, n=2, settings=s)
        kw.update(change)
        with pytest.raises(InvalidInputError, match=name):
            select_batch(**kw)
    for bad in ({"structure_ensemble": 1}, {"batch_rule": "believer", "structure_ensemble": 3},
                {"diversity_weight": -1.0},
                {"objective": "variance_reduction", "structure_ensemble": 2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            AcquisitionSettings(**bad)


def test_variance_reduction_is_the_drop_of_the_mean_variance(data):
    from cgflow.ml.active_learning import _Posterior

    s = AcquisitionSettings(criterion="alpha_std", objective="variance_reduction",
                            diversity_weight=0.0)
    models = fit_models(data["X"], data["alpha"], None, s)
    Zc = models.alpha._scale(data["Xc"])
    ref = np.arange(len(Zc))
    post = _Posterior(models.alpha.gp_, Zc, float(np.std(models.alpha.log_y_train_)), ref)
    red, before = post.reduction.copy(), post.var.mean()
    post.condition(7)
    assert red[7] == pytest.approx(before - post.var.mean(), rel=1e-6)
    sel = select_batch(data["X"], data["alpha"], None, data["Xc"], 3, s, models=models)
    assert sel.choices[0].candidate_index == int(np.argmax(red))
    assert sel.choices[0].score == pytest.approx(red.max())
    assert len({c.candidate_index for c in sel.choices}) == 3
    assert "alpha_variance_reduction" in sel.choices[1].components


def test_structure_spread_with_descriptors_is_an_option_and_the_default_is_unchanged(data):
    """Rounds stored before descriptors existed replay to their choice: the structure
    spread's RDF model takes the 19 parameters unless descriptors are asked for."""
    from cgflow.molecule.descriptors import DESCRIPTOR_NAMES

    s = AcquisitionSettings(criterion="structure_spread", seed=1)
    assert s.structure_descriptors == []
    plain = fit_models(data["X"], data["alpha"], data["g"], s)
    assert plain.rdf.descriptors == () and plain.rdf.x_mean_.size == 19
    with_d = AcquisitionSettings(criterion="structure_spread", seed=1,
                                 structure_descriptors=list(DESCRIPTOR_NAMES[:3]))
    models = fit_models(data["X"], data["alpha"], data["g"], with_d)
    assert models.rdf.descriptors == DESCRIPTOR_NAMES[:3] and models.rdf.x_mean_.size == 22
    sel = select_batch(data["X"], data["alpha"], data["g"], data["Xc"], 2, with_d,
                       models=models)
    assert sel.model_state["routes"]["structure_spread"]["settings"]["descriptors"] == list(
        DESCRIPTOR_NAMES[:3])
    with pytest.raises(ValueError, match="structure_descriptors: unknown descriptor 'mass'"):
        AcquisitionSettings(structure_descriptors=["mass"])
