"""The campaign's final training Firework, ``cgflow models`` and ``cgflow predict``.

The stored results are a synthetic campaign (:mod:`cgflow.ml.synthetic`) written through
the store as the CG stage writes them; the training Firework runs through FireWorks on
the test server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from fireworks import Firework, FWorker, Workflow
from fireworks.core.rocket_launcher import rapidfire
from plain_lammps import run_snippet_in_plain_lammps
from stored_results import store_converged_set

from cgflow.db.store import Store
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.synthetic import synthetic_campaign
from cgflow.orchestration.firetasks.train import TrainModelsTask
from cgflow.params import OPLSAA_REFERENCE, ParameterSet
from cgflow.stages.train import STATUS_MODEL

VENV_BIN = Path(sys.executable).parent


def store_campaign(store: Store, campaign: str, n: int) -> None:
    ds = synthetic_campaign(n, seed=3, campaign=campaign)
    for i in range(n):
        store_converged_set(store, ds, i, campaign)


def run_training(launchpad, launchpad_file, campaign, monkeypatch, tmp_path):
    monkeypatch.setenv("CGFLOW_DB_FILE", str(launchpad_file))
    monkeypatch.chdir(tmp_path)
    fw = Firework([TrainModelsTask(campaign=campaign, preset="tiny")],
                  spec={"campaign": campaign, "cgflow_stage": "train"}, name="train")
    launchpad.add_wf(Workflow([fw], name=campaign))
    rapidfire(launchpad, FWorker(), strm_lvl="ERROR")
    return launchpad.fireworks.find_one({"fw_id": launchpad.get_fw_ids(
        {"name": "train", "spec.campaign": campaign})[0]})


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "cgflow"), *args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))


def test_too_few_sets_ends_with_a_clear_message(launchpad, launchpad_file, monkeypatch,
                                                tmp_path):
    with Store.from_launchpad(launchpad) as store:
        store_campaign(store, "small", 3)
    fw = run_training(launchpad, launchpad_file, "small", monkeypatch, tmp_path)
    assert fw["state"] == "COMPLETED"
    with Store.from_launchpad(launchpad) as store:
        status = store.get_model("small", STATUS_MODEL)
        assert status.metadata["status"] == "insufficient_data"
        assert "has 3 converged parameter sets; training needs at least" in \
            status.metadata["message"]
        assert [m.name for m in store.models(campaign="small")] == [STATUS_MODEL]
    r = cli("models", "list", "--campaign", "small", "-l", str(launchpad_file))
    assert r.returncode == 0 and "insufficient_data" in r.stdout, r.stdout + r.stderr
    r = cli("models", "train", "--campaign", "small", "-l", str(launchpad_file))
    assert r.returncode == 1 and "has 3 converged parameter sets" in r.stdout, r.stdout
    r = cli("predict", "--campaign", "small", "-l", str(launchpad_file),
            "-o", str(tmp_path / "p"), *[f"--set={k}={v}" for k, v in
                                         OPLSAA_REFERENCE.model_dump().items()])
    assert r.returncode == 2 and "no trained models" in r.stderr


def test_training_stores_models_and_predict_writes_tables(launchpad, launchpad_file,
                                                          monkeypatch, tmp_path):
    with Store.from_launchpad(launchpad) as store:
        store_campaign(store, "synth", 12)
    fw = run_training(launchpad, launchpad_file, "synth", monkeypatch, tmp_path)
    assert fw["state"] == "COMPLETED"
    with Store.from_launchpad(launchpad) as store:
        names = {m.name for m in store.models(campaign="synth")}
        assert {"structure", "alpha", "manifest", STATUS_MODEL} <= names
        meta = store.get_model("synth", "structure").metadata
        assert meta["n_sets"] == 12 and meta["dataset_hash"] and "torch" in meta["versions"]
    r = cli("models", "list", "--campaign", "synth", "-l", str(launchpad_file))
    assert r.returncode == 0 and "structure" in r.stdout and "12 sets" in r.stdout

    pfile = tmp_path / "set.yaml"
    pfile.write_text(yaml.safe_dump(OPLSAA_REFERENCE.model_dump()))
    out = tmp_path / "pred"
    r = cli("predict", str(pfile), "--campaign", "synth", "-l", str(launchpad_file),
            "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "predicted alpha" in r.stdout
    assert (out / f"{OPLSAA_REFERENCE.id}-structure.table").exists()
    assert (out / f"{OPLSAA_REFERENCE.id}-structure.xvg").exists()
    if shutil.which("lmp"):  # the predicted tables run in a plain LAMMPS input
        for route in ("structure", "dynamics"):
            snippet = out / f"{OPLSAA_REFERENCE.id}-{route}.in.pair"
            if route == "structure" or snippet.exists():
                run_snippet_in_plain_lammps(snippet.read_text(), out)
    # a parameter far outside the training data is warned about
    r = cli("predict", str(pfile), "--set", "bond_cthc_k=900000", "--campaign", "synth",
            "-l", str(launchpad_file), "-o", str(out))
    assert r.returncode == 0 and "warning" in r.stderr and "bond_cthc_k" in r.stderr


def store_unseen_aa_run(store: Store, campaign: str, n: int) -> str:
    """An AA run, with results made from the synthetic target, for a set the models of
    ``campaign`` did not train on; returns its param_id."""
    from cgflow.stages.train import load_campaign_models

    ds = synthetic_campaign(n, seed=3, campaign=campaign)
    trained = set(load_campaign_models(store, campaign).metadata["train_param_ids"])
    i = next(k for k in range(n) if ds.param_ids[k] not in trained)
    r = np.arange(0.005, 1.5, 0.01)
    g = np.interp(r, ds.r_nm, ds.g_target[i], left=0.0)
    lag = np.linspace(0.0, 10.0, 21)
    run = store.start_aa_run(ds.param_ids[i], campaign, "tiny", "/nonexistent/aa")
    store.complete_aa_run(run.id, {
        "density_kg_m3": 723.0, "density_err_kg_m3": 2.0, "pressure_bar": 0.0,
        "pressure_err_bar": 40.0, "temperature_k": 298.15, "temperature_err_k": 0.3,
        "box_length_nm": 2.56, "n_molecules": 64, "production_ps": 20.0,
        "rdf_r_nm": r.tolist(), "rdf_g": g.tolist(), "rdf_n_frames": 50,
        "msd_lag_ps": lag.tolist(), "msd_nm2": (6 * ds.d_aa[i] * lag).tolist(),
        "d_nm2_ps": float(ds.d_aa[i]), "d_err_nm2_ps": float(ds.d_aa_err[i]),
        "d_xyz_nm2_ps": [float(ds.d_aa[i])] * 3, "d_fit_start_ps": 2.0, "d_fit_end_ps": 8.0,
    }, timings={"prod": {"wall_s": 1.0}})
    return str(ds.param_ids[i])


@pytest.mark.engine
def test_dataset_export_and_closed_loop_validation(launchpad, launchpad_file, monkeypatch,
                                                   tmp_path):
    with Store.from_launchpad(launchpad) as store:
        store_campaign(store, "loop", 12)
    fw = run_training(launchpad, launchpad_file, "loop", monkeypatch, tmp_path)
    assert fw["state"] == "COMPLETED"

    r = cli("dataset", "export", "loop", "-o", str(tmp_path / "data"), "-l", str(launchpad_file))
    assert r.returncode == 0, r.stderr
    ds = CampaignDataset.load_npz(tmp_path / "data" / "dataset.npz")
    assert len(ds) == 12 and ds.g_target is not None and np.all(np.isfinite(ds.alpha))
    rows = json.loads((tmp_path / "data" / "sets.json").read_text())
    assert rows["n_sets"] == 12 and rows["n_converged"] == 12
    assert all(s["ibi_converged"] for s in rows["sets"])

    # a set the models have not seen, with all-atom results: simulate its predictions
    with Store.from_launchpad(launchpad) as store:
        pid = store_unseen_aa_run(store, "loop", 12)
    r = cli("validate", "--campaign", "loop", "--max-sets", "1", "--preset", "tiny",
            "-o", str(tmp_path / "val"), "-l", str(launchpad_file))
    assert r.returncode == 0, r.stdout + r.stderr
    assert pid in r.stdout and "D_CG/alpha vs D_AA" in r.stdout
    with Store.from_launchpad(launchpad) as store:
        (doc,) = store.validations("loop")
    assert doc.param_id == pid and doc.preset == "tiny"
    s, d = doc.structure, doc.dynamics
    assert 0 <= s["rdf_deviation"] < 1 and s["d_cg"] > 0
    assert s["d_rescaled"] == pytest.approx(s["d_cg"] / doc.alpha_pred)
    assert s["d_rescaled_rel_error"] == pytest.approx(s["d_rescaled"] / doc.d_aa - 1)
    if d is not None:
        assert d["d_rel_error"] == pytest.approx(d["d_cg"] / doc.d_aa - 1)
    assert doc.models_dataset_hash and doc.run_dir.endswith(doc.models_dataset_hash[:12])
    assert (Path(doc.run_dir) / "structure" / "production").is_dir()

    # the training sets themselves are refused by name
    with Store.from_launchpad(launchpad) as store:
        from cgflow.stages.train import load_campaign_models

        trained = load_campaign_models(store, "loop").metadata["train_param_ids"][0]
    r = cli("validate", "--campaign", "loop", "--param-id", trained, "-l", str(launchpad_file))
    assert r.returncode == 2 and "trained on this set" in r.stderr


def test_a_campaign_trains_on_the_sets_it_reused(launchpad):
    """Sets whose potentials and CG runs an earlier campaign made (and a later one reused
    instead of rerunning) are part of the later campaign's training data and export."""
    from cgflow.stages.dataset import set_rows
    from cgflow.stages.train import training_records

    with Store.from_launchpad(launchpad) as store:
        store_campaign(store, "first", 6)
        reused = [ps.param_id for ps in store.parameter_sets("first")][:4]
        for pid in reused:
            doc = store.get_parameter_set(pid)
            store.upsert_parameter_set(ParameterSet(**doc.params), "second", "narrow")
        records = training_records(store, "second", "tiny")
        assert sorted(r["param_id"] for r in records) == sorted(reused)
        assert all(np.isfinite(r["alpha"]) for r in records)
        rows = set_rows(store, "second", "tiny")
        assert {r["param_id"] for r in rows} == set(reused)
        assert all(r["ibi_converged"] for r in rows)
        assert len(training_records(store, "first", "tiny")) == 6


def test_models_train_from_an_exported_dataset(launchpad, launchpad_file, tmp_path):
    """``cgflow models train --dataset`` trains on a file (e.g. a merged export) and
    stores the models under the given campaign, where predict and validate find them."""
    ds = synthetic_campaign(10, seed=5, campaign="files")
    ds.save_npz(tmp_path / "dataset.npz")
    r = cli("models", "train", "--campaign", "from-files", "--dataset",
            str(tmp_path / "dataset.npz"), "-l", str(launchpad_file))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "campaign from-files: trained" in r.stdout
    with Store.from_launchpad(launchpad) as store:
        from cgflow.stages.train import load_campaign_models

        manifest = store.get_model("from-files", "manifest")
        assert manifest.metadata["dataset_hash"] == ds.content_hash()
        assert manifest.metadata["data_source"].endswith("dataset.npz")
        trained = load_campaign_models(store, "from-files")
        assert set(trained.metadata["train_param_ids"]) <= set(ds.param_ids.tolist())
    r = cli("models", "train", "--campaign", "x", "--dataset", str(tmp_path / "none.npz"),
            "-l", str(launchpad_file))
    assert r.returncode == 2 and "none.npz" in r.stderr and "no such file" in r.stderr
