"""Synthetic campaigns (``kind: synthetic``): the spec, the workflow, and a real campaign
through FireWorks and LAMMPS that stores its pairs and the learned inverse, resumes a
batch without running its stored pairs again, and exports both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cgflow.cli.main import main
from cgflow.db.store import Store
from cgflow.errors import InvalidInputError
from cgflow.ml.inverse import StructureInverse
from cgflow.orchestration.campaign import campaign_spec_from_text
from cgflow.orchestration.firetasks.synthetic import SyntheticBatchTask
from cgflow.orchestration.stage_names import SPEC_STAGE
from cgflow.orchestration.status import campaign_status
from cgflow.orchestration.workflows import campaign_workflow
from cgflow.stages import synthetic

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
SPEC = ("name: syn\nkind: synthetic\npreset: tiny\nthreads: 1\n"
        "synthetic: {n_pairs: 5, batch_size: 3, seed: 4}\n")


def test_a_synthetic_spec_names_its_batches_and_refuses_what_it_cannot_run():
    spec, sets = campaign_spec_from_text(SPEC)
    assert sets == [] and spec.synthetic.batches() == [(0, 3), (3, 2)]
    assert spec.set_ids(sets) == ["pairs-000000", "pairs-000003"]
    for text, field in [
        (SPEC.replace("n_pairs: 5", "n_pairs: 0"), "synthetic.n_pairs"),
        (SPEC.replace("n_pairs: 5", "n_pairs: five"), "synthetic.n_pairs"),
        (SPEC.replace("seed: 4", "seed: -1"), "synthetic.seed"),
        (SPEC.replace("seed: 4", "seed: 4, family: {max_bump: 1}"), "max_bump"),
        (SPEC.replace("seed: 4", "seed: 4, family: {bump_width_nm: [0.2, 0.1]}"),
         "bump_width_nm"),
        (SPEC.replace("seed: 4", "seed: 4, anchors: /no/such/folder"), "synthetic.anchors"),
        (SPEC.replace("preset: tiny", "preset: demo"), "preset 'demo'"),
        (SPEC + "n_sets: 3\n", "n_sets"),
        (SPEC + "cg_stage: true\n", "cg_stage"),
        (SPEC.replace("kind: synthetic\n", ""), "kind is 'parameters'"),
        ("name: syn\nkind: synthetic\n", "needs a synthetic: section"),
    ]:
        with pytest.raises(InvalidInputError, match=field.replace(".", r"\.")):
            campaign_spec_from_text(text, source="spec")


def test_a_synthetic_workflow_is_independent_batches_then_the_inverse():
    spec, sets = campaign_spec_from_text(SPEC)
    wf = campaign_workflow(spec, sets)
    stages = [f.spec[SPEC_STAGE] for f in wf.fws]
    assert stages == ["synthetic-batch", "synthetic-batch", "train-inverse"]
    (last,) = [wf.id_fw[i] for i in wf.leaf_fw_ids]
    assert last.spec["_allow_fizzled_parents"] is True
    assert sorted(wf.root_fw_ids) == sorted(f.fw_id for f in wf.fws[:2])
    tasks = [f.tasks[0] for f in wf.fws[:2]]
    assert [(t["start"], t["n"]) for t in tasks] == [(0, 3), (3, 2)]
    assert wf.metadata["n_pairs"] == 5 and wf.metadata["kind"] == "synthetic"
    no_inverse, _ = campaign_spec_from_text(SPEC.replace("seed: 4", "seed: 4, "
                                                         "train_inverse: false"))
    assert [f.spec[SPEC_STAGE] for f in campaign_workflow(no_inverse, []).fws] == [
        "synthetic-batch"] * 2


def test_the_shipped_anchors_are_the_reference_datasets_potentials():
    r, U, rho = synthetic.shipped_anchors()
    r_ref, U_ref, rho_ref = synthetic.reference_anchors(REPO / "data" / "reference")
    assert np.allclose(r, r_ref) and np.array_equal(U, U_ref)
    assert np.array_equal(rho, rho_ref)
    shipped = synthetic.SyntheticSettings(n_pairs=2).make_family().sample(2, 1)
    folder = synthetic.SyntheticSettings(
        n_pairs=2, anchors=str(REPO / "data" / "reference")).make_family().sample(2, 1)
    for a, b in zip(shipped, folder, strict=True):
        assert a.anchor == b.anchor
        assert np.array_equal(a.u_kj_mol, b.u_kj_mol)


@pytest.mark.engine
@pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed")
def test_a_synthetic_campaign_stores_pairs_and_the_inverse_and_resumes(
        launchpad, launchpad_file, tmp_path, monkeypatch):
    monkeypatch.setenv("CGFLOW_WORK_ROOT", str(tmp_path / "runs"))
    spec_file = tmp_path / "syn.yaml"
    spec_file.write_text(SPEC)
    env = dict(os.environ)
    out = []
    for args in (["campaign", "submit", str(spec_file)], ["launch", "--campaign", "syn"]):
        r = subprocess.run([str(VENV_BIN / "cgflow"), *args, "-l", str(launchpad_file)],
                           capture_output=True, text=True, env=env, timeout=900, cwd=REPO)
        assert r.returncode == 0, r.stdout + r.stderr
        out.append(r.stdout)
    assert "queued campaign syn: 5 synthetic pair(s) in 2 batch(es)" in out[0]
    wf = launchpad.workflows.find_one({"metadata.cgflow_campaign": "syn"})
    assert wf["state"] == "COMPLETED"

    with Store.from_launchpad(launchpad) as store:
        docs = store.synthetic_pairs("syn")
        assert [d.index for d in docs] == [0, 1, 2, 3, 4]
        model = store.get_model("syn", synthetic.INVERSE_MODEL)
        status = campaign_status(launchpad, store, "syn")
    assert len(status.sets) == 2
    # the stored pairs are the family's samples, simulated: potential, RDF and pressure
    family = synthetic.SyntheticSettings(n_pairs=5, seed=4).make_family()
    samples = family.sample(5, 4)
    for d, s in zip(docs, samples, strict=True):
        assert np.allclose(d.u_kj_mol, s.u_kj_mol)
        assert d.density_kg_m3 == pytest.approx(s.density_kg_m3)
        assert d.anchor == s.anchor and d.preset == "tiny" and d.fw_id is not None
        g = np.asarray(d.g)
        assert np.all(np.isfinite(g)) and g.max() > 1.05 and g[0] < 0.05
        assert abs(d.pressure_bar) < 5000 and d.pressure_err_bar > 0
    assert len({d.lammps_seed for d in docs}) == 5
    assert model is not None and model.kind == "structure-inverse"
    assert model.metadata["n_pairs"] == 5

    # export: the pairs as the benchmark's arrays, the inverse as the IBI's model file
    npz, inv = tmp_path / "pairs.npz", tmp_path / "inverse.json"
    assert main(["dataset", "pairs", "syn", "-o", str(npz), "-l", str(launchpad_file)]) == 0
    assert main(["models", "export", synthetic.INVERSE_MODEL, "--campaign", "syn",
                 "-o", str(inv), "-l", str(launchpad_file)]) == 0
    with np.load(npz) as f:
        assert f["g"].shape == (5, f["r_nm"].size)
        assert np.allclose(f["u_kj_mol"][2], docs[2].u_kj_mol)
        assert f["seed"].tolist() == [d.lammps_seed for d in docs]
    loaded = StructureInverse.load(inv)
    u = loaded.predict_potential(np.asarray(docs[0].g), docs[0].density_kg_m3, 298.15,
                                 114.23, pressure_bar=docs[0].pressure_bar)
    assert u.u_kj_mol[-1] == pytest.approx(0.0, abs=1e-9)

    # a rerun batch runs only the pairs it has not stored
    with Store.from_launchpad(launchpad) as store:
        store.db["synthetic_pairs"].delete_one({"_id": "syn:1"})
    spec, _ = campaign_spec_from_text(SPEC)
    task = SyntheticBatchTask(campaign="syn", preset="tiny", start=0, n=3, threads=1,
                              synthetic=spec.synthetic.model_dump(mode="json"))
    action = task.run_task({"_fw_env": {"cgflow_db_file": str(launchpad_file),
                                        "cgflow_work_root": str(tmp_path / "runs")}})
    assert action.stored_data["ran"] == [1] and action.stored_data["stored"] == 3
    with Store.from_launchpad(launchpad) as store:
        again = {d.index: d for d in store.synthetic_pairs("syn")}
    assert np.allclose(again[1].u_kj_mol, docs[1].u_kj_mol)
    assert again[1].lammps_seed == docs[1].lammps_seed


def test_pairs_export_refuses_nothing_or_mixed_grids(tmp_path):
    with pytest.raises(InvalidInputError, match="no synthetic pairs"):
        synthetic.write_pairs([], tmp_path / "x.npz", source="campaign 'none'")
    assert not (tmp_path / "x.npz").exists()
    one = {"r_nm": [0.1, 0.2, 0.3], "u_kj_mol": [1.0, 0.0, 0.0], "g": [0.0, 1.0, 1.0],
           "g_err": [0.0, 0.1, 0.1], "pressure_bar": 1.0, "pressure_err_bar": 1.0,
           "density_kg_m3": 700.0, "temperature_k": 298.15, "mass_g_mol": 114.23,
           "lammps_seed": 3, "wall_s": 1.0}
    other = dict(one, r_nm=[0.1, 0.2, 0.4])
    with pytest.raises(InvalidInputError, match="one grid"):
        synthetic.write_pairs([one, other], tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
