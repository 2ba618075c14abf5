"""The campaign's final training Firework, ``cgflow models`` and ``cgflow predict``.

The stored results are a synthetic campaign (:mod:`cgflow.ml.synthetic`) written through
the store as the CG stage writes them; the training Firework runs through FireWorks on
the test server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from fireworks import Firework, FWorker, Workflow
from fireworks.core.rocket_launcher import rapidfire

from cgflow.db.store import Store
from cgflow.firetasks.train import STATUS_MODEL, TrainModelsTask
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ml.synthetic import synthetic_campaign
from cgflow.params import OPLSAA_REFERENCE, ParameterSet

VENV_BIN = Path(sys.executable).parent


def store_campaign(store: Store, campaign: str, n: int) -> None:
    ds = synthetic_campaign(n, seed=3, campaign=campaign)
    for i in range(n):
        ps = ParameterSet.from_array(ds.X[i])
        store.upsert_parameter_set(ps, campaign, "narrow")
        pot = TabulatedPotential.from_energy(ds.r_nm, ds.U[i])
        rdf = {"r_nm": ds.r_nm.tolist(), "g": ds.g_target[i].tolist(), "n_frames": 5}
        store.save_potential({
            "param_id": ps.id, "campaign": campaign, "preset": "tiny", "converged": True,
            "reason": "converged", "n_iterations": 4, "best_iteration": 3,
            "potential": pot.to_dict(), "target_rdf": rdf, "final_rdf": rdf})
        store.save_cg_run({
            "param_id": ps.id, "campaign": campaign, "preset": "tiny", "status": "completed",
            "d_cg_nm2_ps": {"mean": ds.d_cg[i], "err": ds.d_cg_err[i]},
            "d_aa_nm2_ps": {"mean": ds.d_aa[i], "err": ds.d_aa_err[i]},
            "alpha": {"mean": ds.alpha[i], "err": ds.alpha_err[i]}})


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
    # a parameter far outside the training data is warned about
    r = cli("predict", str(pfile), "--set", "bond_cthc_k=900000", "--campaign", "synth",
            "-l", str(launchpad_file), "-o", str(out))
    assert r.returncode == 0 and "warning" in r.stderr and "bond_cthc_k" in r.stderr
