"""The committed learning datasets: data/reference/ (merged from the exports under
data/campaigns/ of the campaigns workflows/reference.yaml and workflows/reference-b.yaml)
and its successor data/learning/ (every chunk of the same space and preset): consistent
with their summaries, their sources and those sources' specs; the models train on
data/reference without any simulation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cgflow.ml.dataset import CampaignDataset
from cgflow.orchestration.campaign import load_campaign_spec
from cgflow.params import parameter_set_from_mapping

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "reference"
LEARNING = REPO / "data" / "learning"
SOURCES = REPO / "data" / "campaigns"


@pytest.fixture(scope="module")
def dataset() -> CampaignDataset:
    return CampaignDataset.load_npz(DATA / "dataset.npz")


@pytest.mark.parametrize("folder", [DATA, LEARNING], ids=["reference", "learning"])
def test_dataset_matches_its_summary_and_spec(folder):
    dataset = CampaignDataset.load_npz(folder / "dataset.npz")
    summary = json.loads((folder / "sets.json").read_text())
    assert dataset.content_hash() == summary["dataset_hash"]
    assert len(dataset) == summary["n_converged"] >= 8
    converged = {s["param_id"] for s in summary["sets"] if s.get("ibi_converged")}
    assert set(dataset.param_ids.tolist()) == converged
    # every stored set is one its campaign's spec samples, with the same parameters
    sets_by_campaign = {}
    for source in summary["sources"]:
        part = json.loads((SOURCES / source["folder"] / "sets.json").read_text())
        assert part["dataset_hash"] == source["dataset_hash"]
        assert part["campaign"] == source["campaign"]
        assert CampaignDataset.load_npz(SOURCES / source["folder"] / "dataset.npz"
                                        ).content_hash() == source["dataset_hash"]
        _, sets = load_campaign_spec(REPO / "workflows" / f"{source['campaign']}.yaml")
        sets_by_campaign[source["campaign"]] = {ps.id: ps for ps in sets}
    assert len(summary["sources"]) >= 2
    assert len(summary["sets"]) == sum(s["n_sets"] for s in summary["sources"])
    assert len(dataset) == sum(s["n_converged"] for s in summary["sources"])
    for row in summary["sets"]:
        assert row["param_id"] in sets_by_campaign[row["campaign"]]
        ps = parameter_set_from_mapping(row["params"])
        assert ps.id == row["param_id"]
    by_id = {pid: ps for sets in sets_by_campaign.values() for pid, ps in sets.items()}
    for pid, x in zip(dataset.param_ids, dataset.X, strict=True):
        assert np.allclose(x, by_id[str(pid)].to_array())
    # alpha is D_CG / D_AA, within the rounding of the stored values
    ok = np.isfinite(dataset.alpha)
    assert ok.sum() >= 8
    assert np.allclose(dataset.alpha[ok], dataset.d_cg[ok] / dataset.d_aa[ok], rtol=1e-6)
    assert np.all(dataset.alpha[ok] > 0) and np.all(dataset.alpha_err[ok] > 0)
    # potentials are finite and go to zero at the cutoff, RDFs are physical
    assert np.all(np.abs(dataset.U[:, -1]) < 1e-6)
    assert dataset.g_target is not None and np.all(dataset.g_target >= 0)


def test_learning_dataset_holds_every_chunk_of_the_reference_space():
    """data/learning is the merge of every exported chunk of the reference campaigns'
    space and preset, data/reference's two parts included, each set once."""
    summary = json.loads((LEARNING / "sets.json").read_text())
    chunks = sorted(p.name for p in SOURCES.glob("reference*") if (p / "sets.json").exists())
    assert sorted(s["folder"] for s in summary["sources"]) == chunks
    reference = json.loads((DATA / "sets.json").read_text())
    assert ({r["param_id"] for r in reference["sets"]}
            <= {r["param_id"] for r in summary["sets"]})
    ids = [r["param_id"] for r in summary["sets"]]
    assert len(ids) == len(set(ids))


def test_models_train_on_the_committed_dataset(dataset):
    """The three models train on the committed data (no simulation); the acceleration
    factor model is ahead of the random-forest baseline on the same folds (measured:
    benchmarks/ml/results/reference_dataset.md)."""
    from cgflow.ml.training import train_all

    report = train_all(dataset, seed=0)
    assert report.n_sets == len(dataset) and report.dataset_hash == dataset.content_hash()
    assert len(report.folds) == 5 and len(report.split["test"]) >= 3
    gp, rf = report.cv_mean["alpha"], report.cv_mean["alpha_random_forest"]
    assert gp["n_folds_scored"] == rf["n_folds_scored"] == 5
    assert gp["rmse"] < rf["rmse"], (gp, rf)
    s = report.cv_mean["structure"]
    assert np.isfinite(s["rmse_well"]) and np.isfinite(s["rmse_sampled"])
    # the merged dataset has pairs with D_AA,i = D_CG,j within errors: the dynamics
    # model trains and is scored on the folds
    d = report.cv_mean["dynamics"]
    assert "skipped" not in d, d
    assert np.isfinite(d["rmse_well"]) and np.isfinite(d["rmse_sampled"])


def test_multi_molecule_dataset_holds_every_alkanes_chunk():
    """data/alkanes is the merge of every exported chunk of the multi-molecule specs
    (workflows/alkanes-*.yaml): each row is a set of its chunk's spec run on a molecule of
    that spec, its id the molecule's id of the set, each once."""
    from cgflow.molecule.registry import resolve_molecule

    folder = REPO / "data" / "alkanes"
    dataset = CampaignDataset.load_npz(folder / "dataset.npz")
    summary = json.loads((folder / "sets.json").read_text())
    assert dataset.content_hash() == summary["dataset_hash"]
    assert len(dataset) == summary["n_converged"]
    chunks = sorted(p.name for p in SOURCES.glob("alkanes*") if (p / "sets.json").exists())
    assert sorted(s["folder"] for s in summary["sources"]) == chunks and len(chunks) >= 2
    expected = {}
    for source in summary["sources"]:
        part = json.loads((SOURCES / source["folder"] / "sets.json").read_text())
        assert part["dataset_hash"] == source["dataset_hash"]
        spec, sets = load_campaign_spec(REPO / "workflows" / f"{source['campaign']}.yaml")
        for name in spec.molecules:
            mol = resolve_molecule(name)
            expected.update({mol.set_id(ps): (source["campaign"], mol.name) for ps in sets})
    ids = [r["param_id"] for r in summary["sets"]]
    assert len(ids) == len(set(ids))
    for row in summary["sets"]:
        assert expected[row["param_id"]] == (row["campaign"], row["molecule"])
    converged = {r["param_id"] for r in summary["sets"] if r.get("ibi_converged")}
    assert set(dataset.param_ids.tolist()) == converged
    assert len(set(dataset.molecule.tolist())) == 6
