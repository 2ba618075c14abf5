"""Models of several molecules: molecule inputs, datasets with a molecule column, training
and prediction with molecule features, and what single-molecule models refuse."""

import dataclasses

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.ml import load_models, predict_potentials, save_models, train_all
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.features import (
    MOLECULE_INPUT_NAMES,
    absent_fields,
    model_inputs,
    neutralise_absent,
    resolve_molecules,
)
from cgflow.ml.rdf_model import AATargets
from cgflow.ml.synthetic import synthetic_campaign
from cgflow.molecule import molecule_from_smiles, trimethylpentane
from cgflow.molecule.descriptors import graph_descriptors, molecular_descriptors
from cgflow.molecule.structure import TRIMETHYLPENTANE_SMILES
from cgflow.params import FIELDS, OPLSAA_REFERENCE, ParameterSet

NEOPENTANE, HEXANE = "CC(C)(C)C", "CCCCCC"
FAST = {"max_epochs": 150, "patience": 40, "hidden": (32,)}


def test_graph_descriptors_count_what_the_molecule_has():
    neo = graph_descriptors(molecule_from_smiles(NEOPENTANE))
    assert neo["n_carbons"] == 5 and neo["n_rings"] == 0
    assert neo["frac_ch3"] == pytest.approx(0.8) and neo["frac_c"] == pytest.approx(0.2)
    # neopentane: no CT-CT-CT-CT and no HC-CT-CT-HC dihedral; 4 x 9 CT-CT-CT-HC
    assert neo["dih_ctctctct_per_carbon"] == 0 and neo["dih_hcctcthc_per_carbon"] == 0
    assert neo["dih_ctctcthc_per_carbon"] == pytest.approx(36 / 5)
    ring = graph_descriptors(molecule_from_smiles("C1CCCCC1"))
    assert ring["n_rings"] == 1 and ring["frac_ch2"] == 1
    tmp = graph_descriptors(trimethylpentane())
    assert tmp["molar_mass_g_mol"] == pytest.approx(114.23, abs=0.01)


def test_absent_kinds_are_set_to_the_reference():
    neo = molecule_from_smiles(NEOPENTANE)
    assert set(absent_fields(neo)) == {f"dih_{k}_c{i}" for k in ("ctctctct", "hcctcthc")
                                       for i in (1, 2, 3)}
    assert absent_fields(trimethylpentane()) == ()
    X = np.array([OPLSAA_REFERENCE.to_array()])
    X[0, FIELDS.index("dih_ctctctct_c1")] = 5.0
    X[0, FIELDS.index("dih_ctctcthc_c3")] = 1.0
    out = neutralise_absent(X, [neo])
    assert out[0, FIELDS.index("dih_ctctctct_c1")] == OPLSAA_REFERENCE.dih_ctctctct_c1
    assert out[0, FIELDS.index("dih_ctctcthc_c3")] == 1.0  # a kind neopentane has
    assert X[0, FIELDS.index("dih_ctctctct_c1")] == 5.0  # the input is not changed


def test_default_molecule_inputs_are_unchanged_and_others_are_refused():
    X = np.array([OPLSAA_REFERENCE.to_array()] * 2)
    np.testing.assert_array_equal(model_inputs(X), X)
    np.testing.assert_array_equal(model_inputs(X, molecules=[None, TRIMETHYLPENTANE_SMILES]), X)
    with pytest.raises(InvalidInputError, match=r"field 'molecule'.*CCCCCC.*trained on "
                                                r"2,3,4-trimethylpentane only"):
        model_inputs(X, molecules=[None, HEXANE])
    Z = model_inputs(X, molecule_features=True, molecules=[NEOPENTANE, None])
    assert Z.shape == (2, len(FIELDS) + len(MOLECULE_INPUT_NAMES))
    with pytest.raises(InvalidInputError, match="row 1.*"):
        model_inputs(X, molecule_features=True, molecules=[None, "c1ccccc1"])
    with pytest.raises(InvalidInputError, match="expected 2 molecules"):
        resolve_molecules([None], 2)


def test_descriptors_of_the_default_molecule_are_those_of_before():
    ps = ParameterSet(**{**OPLSAA_REFERENCE.model_dump(), "angle_ctctct_theta0": 118.0})
    assert molecular_descriptors(ps) == molecular_descriptors(ps, trimethylpentane())
    hexane = molecular_descriptors(ps, molecule_from_smiles(HEXANE))
    assert hexane["vdw_volume_nm3"] < molecular_descriptors(ps)["vdw_volume_nm3"]


def _multi(n: int = 24) -> CampaignDataset:
    """A synthetic table whose rows are of three molecules, with alpha depending on the
    molecule (smaller molecules move faster)."""
    ds = synthetic_campaign(n, seed=5, campaign="multi")
    mols = np.array([TRIMETHYLPENTANE_SMILES, NEOPENTANE, HEXANE] * (n // 3))
    factor = np.select([mols == NEOPENTANE, mols == HEXANE], [2.0, 1.5], 1.0)
    ids = np.array([f"{p}-{i}" for i, p in enumerate(ds.param_ids)])
    return dataclasses.replace(ds, param_ids=ids, molecule=mols, alpha=ds.alpha * factor)


def test_dataset_molecule_column_round_trips_and_keeps_old_hashes(tmp_path):
    single = synthetic_campaign(9, seed=2, campaign="single")
    same = dataclasses.replace(single, molecule=[TRIMETHYLPENTANE_SMILES] * 9)
    assert not same.is_multi_molecule and same.content_hash() == single.content_hash()
    multi = _multi(9)
    assert multi.is_multi_molecule and multi.content_hash() != single.content_hash()
    back = CampaignDataset.load_npz(multi.save_npz(tmp_path / "d.npz"))
    assert back.molecules == multi.molecules and back.content_hash() == multi.content_hash()
    assert back.subset([1, 2]).molecules == [NEOPENTANE, HEXANE]
    both = CampaignDataset.concatenate([single, back])
    assert both.molecules == [TRIMETHYLPENTANE_SMILES] * 9 + multi.molecules
    targets = AATargets.from_dataset(back)
    assert targets.molecules == multi.molecules
    with pytest.raises(InvalidInputError, match="field 'molecule'"):
        dataclasses.replace(single, molecule=["C"] * 3)


@pytest.fixture(scope="module")
def multi_report():
    return train_all(_multi(), seed=1, n_folds=3, structure_kwargs=FAST)


def test_train_all_on_several_molecules(multi_report):
    models = multi_report.models
    meta = models.metadata
    assert meta["molecule_features"] is True
    assert set(meta["molecules"]) == {TRIMETHYLPENTANE_SMILES, NEOPENTANE, HEXANE}
    assert models.structure.molecule_features and models.alpha.molecule_features
    assert models.rdf is not None and models.rdf.molecule_features
    assert models.dynamics is None  # its pairs match sets of one liquid
    assert "several molecules" in multi_report.test["dynamics"]["skipped"]
    assert np.isfinite(multi_report.test["alpha"]["rmse"])


def test_predictions_follow_the_molecule_and_ignore_absent_kinds(multi_report):
    models = multi_report.models
    ps = OPLSAA_REFERENCE
    tmp = predict_potentials(models, ps)
    neo = predict_potentials(models, ps, molecule=NEOPENTANE)
    assert not np.allclose(tmp.U_structure, neo.U_structure)
    assert neo.alpha != tmp.alpha
    # a dihedral kind neopentane lacks changes nothing of its prediction
    other = ParameterSet(**{**ps.model_dump(), "dih_ctctctct_c1": 4.0, "dih_hcctcthc_c3": 1.2})
    neo2 = predict_potentials(models, other, molecule=NEOPENTANE)
    np.testing.assert_array_equal(neo.U_structure, neo2.U_structure)
    assert neo.alpha == neo2.alpha
    np.testing.assert_array_equal(neo.g_target, neo2.g_target)
    # ... but it does change that of a molecule which has it
    assert predict_potentials(models, other).alpha != tmp.alpha
    # stored and loaded: the same predictions
    back = load_models(save_models(multi_report))
    again = predict_potentials(back, ps, molecule=NEOPENTANE)
    np.testing.assert_array_equal(again.U_structure, neo.U_structure)
    assert again.alpha == neo.alpha


def test_single_molecule_models_refuse_another_molecule():
    report = train_all(synthetic_campaign(12, seed=3, campaign="one"), seed=0, n_folds=2,
                       structure_kwargs=FAST, dynamics_kwargs=FAST)
    assert report.models.metadata["molecule_features"] is False
    predict_potentials(report.models, OPLSAA_REFERENCE, molecule=TRIMETHYLPENTANE_SMILES)
    with pytest.raises(InvalidInputError, match="CC\\(C\\)\\(C\\)C.*trained on"):
        predict_potentials(report.models, OPLSAA_REFERENCE, molecule=NEOPENTANE)


def test_cli_predict_takes_a_molecule(launchpad, launchpad_file, tmp_path):
    """``cgflow models train --dataset`` on a table of several molecules, then ``cgflow
    predict --molecule``: the tables carry the molecule's bead mass and temperature; an
    unsupported SMILES is refused by name (a model of one molecule refusing another:
    test_single_molecule_models_refuse_another_molecule)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    cgflow = str(Path(sys.executable).parent / "cgflow")

    def cli(*args):
        return subprocess.run([cgflow, *args, "-l", str(launchpad_file)], capture_output=True,
                              text=True, timeout=300, env=dict(os.environ))

    _multi(12).save_npz(tmp_path / "multi.npz")
    r = cli("models", "train", "--campaign", "multi", "--dataset", str(tmp_path / "multi.npz"))
    assert r.returncode == 0, r.stdout + r.stderr
    sets = [f"--set={k}={v}" for k, v in OPLSAA_REFERENCE.model_dump().items()]
    out = tmp_path / "pred"
    r = cli("predict", "--campaign", "multi", "--molecule", "neopentane", "-o", str(out), *sets)
    assert r.returncode == 0, r.stderr
    assert "on neopentane" in r.stdout
    from cgflow.molecule.registry import resolve_molecule

    pid = resolve_molecule("neopentane").set_id(OPLSAA_REFERENCE)  # the id on neopentane
    assert pid != OPLSAA_REFERENCE.id
    summary = json.loads((out / f"{pid}-prediction.json").read_text())
    assert summary["smiles"] == NEOPENTANE and summary["temperature_k"] == pytest.approx(282.65)
    snippet = (out / f"{pid}-structure.in.lammps").read_text()
    assert f"mass 1 {summary['bead_mass_g_mol']:.6g}" in snippet
    assert "282.65" in snippet
    r = cli("predict", "--campaign", "multi", "--molecule", "c1ccccc1", "-o", str(out), *sets)
    assert r.returncode == 2 and "aromatic" in r.stderr.lower(), r.stderr
