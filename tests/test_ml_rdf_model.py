"""RDFModel: parameters -> g_t(r), density, pressure, on the committed reference data."""

from pathlib import Path

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.rdf_model import MIN_ROWS, AATargets, RDFModel, score_rdf_model
from cgflow.params import OPLSAA_REFERENCE

DATA = Path(__file__).resolve().parents[1] / "data" / "reference"


@pytest.fixture(scope="module")
def targets():
    return AATargets.from_export(DATA)


@pytest.fixture(scope="module")
def split(targets):
    rows = np.arange(len(targets))
    test = rows[np.isfinite(targets.g).all(axis=1)][::4]  # 14 sets with a measured RDF
    return np.setdiff1d(rows, test), test


@pytest.fixture(scope="module")
def model(targets, split):
    return RDFModel().fit_targets(targets.subset(split[0]))


def test_export_table_holds_every_completed_aa_run(targets):
    ds = CampaignDataset.load_npz(DATA / "dataset.npz")
    # 58 finished all-atom runs, of which the 53 converged sets have their RDF in the npz
    assert len(targets) == 58
    with_g = np.isfinite(targets.g).all(axis=1)
    assert with_g.sum() == len(ds) == 53
    assert set(targets.param_ids[with_g]) == set(ds.param_ids)
    assert np.isfinite(targets.density_kg_m3).all() and np.isfinite(targets.pressure_bar).all()
    i = int(np.flatnonzero(targets.param_ids == ds.param_ids[0])[0])
    np.testing.assert_array_equal(targets.g[i], ds.g_target[0])
    np.testing.assert_array_equal(targets.r_nm, ds.r_nm)


def test_model_beats_the_mean_on_held_out_sets(targets, split, model):
    train, test = split
    assert 3 <= model.n_components <= 8 and model.skipped_ == {}
    scores = score_rdf_model(model, targets, test, baseline_rows=train)
    rdf, rho = scores["rdf"], scores["density"]
    print(f"\nheld out {test.size}: {scores}")
    assert rdf["n"] == test.size
    # measured against the mean training RDF and the mean training density
    assert rdf["deviation_mean"] < 0.6 * rdf["mean_predictor_deviation_mean"]
    assert rho["rmse"] < 0.6 * rho["mean_predictor_rmse"]
    assert np.isfinite(scores["pressure"]["rmse"])


def test_predictions_shapes_and_uncertainty(targets, model):
    pred = model.predict(targets.X[:3])
    g = targets.r_nm.size
    assert pred.g.shape == pred.g_std.shape == (3, g)
    assert np.all(pred.g >= 0) and np.all(pred.g_std > 0)
    for value, std in ((pred.density_kg_m3, pred.density_std_kg_m3),
                       (pred.pressure_bar, pred.pressure_std_bar)):
        assert value.shape == std.shape == (3,) and np.all(std > 0)
    # g_t of a liquid is 0 inside the core and oscillates about 1 at the cut-off
    one = model.predict(OPLSAA_REFERENCE.to_array())
    assert one.g[0, 0] == pytest.approx(0.0, abs=0.02)
    assert 0.7 < one.g[0, -1] < 1.4
    assert 500 < one.density_kg_m3[0] < 900  # OPLS-AA: about 720 kg/m^3 measured


def test_serialisation_round_trip_is_exact(targets, model):
    back = RDFModel.from_bytes(model.to_bytes())
    a, b = model.predict(targets.X), back.predict(targets.X)
    for name in ("g", "g_std", "density_kg_m3", "density_std_kg_m3", "pressure_bar",
                 "pressure_std_bar"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_missing_targets_are_skipped_with_a_reason(targets):
    rows = np.arange(12)
    only_density = RDFModel(max_components=2).fit(
        targets.X[rows], targets.r_nm, density_kg_m3=targets.density_kg_m3[rows])
    pred = only_density.predict(targets.X[:2])
    assert pred.g is None and pred.pressure_bar is None and pred.density_kg_m3.shape == (2,)
    assert only_density.skipped_ == {"g": "no RDFs given", "pressure_bar": "not given"}
    few = targets.pressure_bar[rows].copy()
    few[MIN_ROWS - 1:] = np.nan
    m = RDFModel(max_components=2).fit(targets.X[rows], targets.r_nm,
                                       density_kg_m3=targets.density_kg_m3[rows], pressure_bar=few)
    assert m.skipped_["pressure_bar"] == f"{MIN_ROWS - 1} value(s); need at least {MIN_ROWS}"
    with pytest.raises(InvalidInputError, match="no target has 4 or more rows"):
        RDFModel().fit(targets.X[rows], targets.r_nm, pressure_bar=few)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"g": np.ones((12, 5))}, r"field 'g': expected shape \(12, 111\)"),
    ({"density_kg_m3": -np.ones(12)}, "field 'density_kg_m3': must be > 0, got -1.0 in row 0"),
    ({"pressure_bar": np.ones(11)}, r"field 'pressure_bar': expected shape \(12,\)"),
])
def test_bad_input_names_the_field(targets, kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        RDFModel().fit(targets.X[:12], targets.r_nm, **kwargs)


def test_records_are_validated(targets):
    rec = {"param_id": "x", "params": OPLSAA_REFERENCE.model_dump(), "r_nm": [0.1, 0.2, 0.3],
           "g": [0.0, 1.0]}
    with pytest.raises(InvalidInputError, match="field 'g' has 2 values but 'r_nm' has 3"):
        AATargets.from_records([rec], targets.r_nm)
    rec = {"param_id": "x", "params": OPLSAA_REFERENCE.model_dump(), "pressure_bar": "high"}
    with pytest.raises(InvalidInputError, match="field 'pressure_bar': expected a number"):
        AATargets.from_records([rec], targets.r_nm)


def test_descriptors_are_inputs_and_held_out_sets_gain_from_them(targets, split, model):
    """The default model adds the molecule's size and shape to the 19 parameters; on the
    same held-out sets it beats the parameters-only model (the setting before)."""
    from cgflow.molecule.descriptors import DESCRIPTOR_NAMES

    train, test = split
    assert model.descriptors == DESCRIPTOR_NAMES
    assert model.x_mean_.size == 19 + len(DESCRIPTOR_NAMES)
    # g_t and density see the descriptors; the pressure (barostat plus noise) does not
    assert model.density_gp_.gp_.X_train_.shape[1] == 19 + len(DESCRIPTOR_NAMES)
    assert model.pressure_gp_.gp_.X_train_.shape[1] == 19
    plain = RDFModel(descriptors=()).fit_targets(targets.subset(train))
    assert plain.x_mean_.size == 19
    with_d = score_rdf_model(model, targets, test, baseline_rows=train)
    without = score_rdf_model(plain, targets, test, baseline_rows=train)
    print(f"\nD with descriptors {with_d['rdf']}, without {without['rdf']}")
    assert with_d["rdf"]["deviation_mean"] < without["rdf"]["deviation_mean"]
    assert with_d["density"]["rmse"] < without["density"]["rmse"]
    # a model of several molecules has size and shape among its molecule inputs already
    assert RDFModel(molecule_features=True).descriptors == ()


def test_a_model_stored_before_descriptors_loads_without_them(targets, split):
    """Stored states without a 'descriptors' setting are parameters-only models, and
    predict as they did."""
    plain = RDFModel(descriptors=(), max_components=3).fit_targets(targets.subset(split[0]))
    state = plain.to_dict()
    assert "descriptors" not in state["settings"]
    back = RDFModel.from_dict(state)
    assert back.descriptors == ()
    np.testing.assert_array_equal(back.predict(targets.X[:4]).g, plain.predict(targets.X[:4]).g)


def test_an_unknown_descriptor_is_refused_by_name():
    with pytest.raises(InvalidInputError, match="'descriptors'.*'bead_size'"):
        RDFModel(descriptors=("radius_of_gyration_nm", "bead_size"))
