"""The all-atom campaign through FireWorks on a real wire-protocol server, end to end.

``cgflow campaign build`` -> ``lpad add``; ``cgflow campaign submit`` refusing bad specs
with nothing written; a tiny campaign run by ``cgflow launch`` (rlaunch rapidfire) in
which the production mdrun is killed with SIGKILL and resumed from its checkpoint by the
Custodian handler, the workflow COMPLETED and the results stored; a second submission of
the same parameter set reusing the stored run instead of running it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cgflow.db.store import Store
from cgflow.params import OPLSAA_REFERENCE

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def cgflow(*args: str, env: dict | None = None,
           timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "cgflow"), *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=timeout, cwd=REPO)


def write_spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_campaign_build_then_lpad_add(launchpad, launchpad_file, tmp_path):
    out = tmp_path / "wf.yaml"
    r = cgflow("campaign", "build", "workflows/demo.yaml", "-o", str(out))
    assert r.returncode == 0, r.stderr
    wf = yaml.safe_load(out.read_text())
    # 3 sets x (4 all-atom Fireworks + the first IBI iteration + CG production) + training
    assert len(wf["fws"]) == 3 * 6 + 1
    r = subprocess.run([str(VENV_BIN / "lpad"), "-l", str(launchpad_file), "add", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert launchpad.fireworks.count_documents({"spec.campaign": "demo"}) == 19
    stages = {d["spec"]["cgflow_stage"] for d in launchpad.fireworks.find({}, {"spec": 1})}
    assert stages == {"aa-build", "aa-equilibrate", "aa-produce", "aa-analyse", "cg-ibi",
                      "cg-production", "train"}
    train = launchpad.fireworks.find_one({"spec.cgflow_stage": "train"})
    assert train["spec"]["_allow_fizzled_parents"] is True
    # the chain of one set: build -> equilibrate -> produce -> analyse
    order = ["aa-build", "aa-equilibrate", "aa-produce", "aa-analyse", "cg-ibi",
             "cg-production"]
    ref = sorted(launchpad.fireworks.find({"spec.param_id": OPLSAA_REFERENCE.id}),
                 key=lambda d: order.index(d["spec"]["cgflow_stage"]))
    links = launchpad.workflows.find_one({})["links"]
    for a, b in zip(ref, ref[1:], strict=False):
        assert links[str(a["fw_id"])] == [b["fw_id"]]
    # the training Firework follows the last Firework of every set
    parents = [k for k, v in links.items() if train["fw_id"] in v]
    stages_of = {str(d["fw_id"]): d["spec"]["cgflow_stage"] for d in launchpad.fireworks.find()}
    assert sorted(stages_of[k] for k in parents) == ["cg-production"] * 3


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("name: bad\nn_sets: 0\nparameter_sets:\n  - {bond_ctct_k: -1}\n",
         ["parameter_sets[0]", "bond_ctct_k", "-1"]),
        ("name: bad\npreset: nope\n", ["field 'preset'", "'nope'"]),
        ("name: bad\nseed: [\n", ["malformed YAML"]),
        ("name: bad\nn_sets: 1\nspace: narrow\nextra_field: 3\n", ["extra_field", "unknown field"]),
    ],
)
def test_bad_spec_is_refused_and_nothing_written(launchpad, launchpad_file, tmp_path, text,
                                                  fragments):
    spec = write_spec(tmp_path, text)
    r = cgflow("campaign", "submit", str(spec), "-l", str(launchpad_file))
    assert r.returncode == 2, (r.stdout, r.stderr)
    for frag in fragments:
        assert frag in r.stderr, r.stderr
    assert launchpad.fireworks.count_documents({}) == 0
    assert launchpad.workflows.count_documents({}) == 0
    with Store.from_launchpad(launchpad) as store:
        assert store.counts().get("parameter_sets", 0) == 0


def _mdrun_pids(deffnm: str, under: Path) -> list[int]:
    """The mdrun processes of ``-deffnm deffnm`` that run in a directory below ``under``
    (this test's own: never another user's or test's runs on the machine)."""
    pids = []
    root = under.resolve()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            cwd = (d / "cwd").resolve()
        except OSError:
            continue
        if b"mdrun" in argv and deffnm.encode() in argv and cwd.is_relative_to(root):
            pids.append(int(d.name))
    return pids


def _kill_production_after_checkpoint(run_dir: Path, killed: list[int], stop: threading.Event):
    """Wait for prod.cpt, then SIGKILL the production mdrun once."""
    cpt = run_dir / "prod.cpt"
    while not stop.is_set():
        if cpt.exists():
            pids = _mdrun_pids("prod", run_dir)
            if pids:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed.extend(pids)
                return
        time.sleep(0.2)


@pytest.mark.engine
def test_tiny_campaign_with_killed_mdrun_completes_and_is_reused(launchpad, launchpad_file,
                                                                  tmp_path):
    spec_text = (REPO / "workflows" / "tiny.yaml").read_text().replace("n_sets: 1", "n_sets: 0")
    spec = write_spec(tmp_path, spec_text)
    r = cgflow("campaign", "submit", str(spec), "-l", str(launchpad_file))
    assert r.returncode == 0, r.stderr

    run_dir = Path(os.environ["CGFLOW_WORK_ROOT"]) / OPLSAA_REFERENCE.id / "tiny" / "aa"
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_production_after_checkpoint,
                              args=(run_dir, killed, stop), daemon=True)
    killer.start()
    try:
        r = cgflow("launch", "-l", str(launchpad_file), "--campaign", "tiny")
    finally:
        stop.set()
        killer.join(5)
    assert r.returncode == 0, r.stdout + r.stderr
    assert killed, "the production mdrun was never killed (no checkpoint seen)"

    wf = launchpad.workflows.find_one({"metadata.cgflow_campaign": "tiny"})
    assert wf["state"] == "COMPLETED"

    with Store.from_launchpad(launchpad) as store:
        runs = store.aa_runs(campaign="tiny")
        assert len(runs) == 1
        run = runs[0]
        assert run.status == "completed"
        # the run names the Firework that started it
        fw = launchpad.fireworks.find_one({"fw_id": run.fw_id})
        assert fw is not None and fw["spec"]["cgflow_stage"].startswith("aa-")
        res = run.results
        assert 300.0 < res.density_kg_m3 < 900.0 and res.density_err_kg_m3 >= 0
        assert len(res.rdf.r_nm) == len(res.rdf.g) > 50
        assert res.d_nm2_ps > 0 and res.d_err_nm2_ps > 0
        # the kill was handled by continuing from the checkpoint, not by starting over
        assert "production" in run.timings
        fixes = [c for c in run.corrections
                 if c["stage"] == "production" and c["handler"] == "CheckpointContinueHandler"]
        assert fixes, run.corrections
        assert (run_dir / "prod.log").read_text().count("Restarting from checkpoint") >= 1

        # the same parameter set in another campaign is not run again
        spec2 = write_spec(tmp_path, spec_text.replace("name: tiny", "name: tiny-again"),
                           "spec2.yaml")
        r = cgflow("campaign", "submit", str(spec2), "-l", str(launchpad_file))
        assert r.returncode == 0, r.stderr
        mtime = (run_dir / "prod.xtc").stat().st_mtime
        r = cgflow("launch", "-l", str(launchpad_file), "--campaign", "tiny-again")
        assert r.returncode == 0, r.stdout + r.stderr
        wf2 = launchpad.workflows.find_one({"metadata.cgflow_campaign": "tiny-again"})
        assert wf2["state"] == "COMPLETED"
        assert (run_dir / "prod.xtc").stat().st_mtime == mtime
        again = store.aa_runs(campaign="tiny-again")
        assert [a.id for a in again] == [run.id]
        assert store.get_aa_run(run.id).attempts == 1


def test_a_rerun_analysis_whose_results_are_stored_keeps_them(launchpad, launchpad_file,
                                                              monkeypatch, tmp_path):
    """An analysis Firework that stored its results and then failed (a lost run, a killed
    launcher) is rerun: it returns the stored results instead of failing on the
    completed run, and analyses nothing (its run directory does not even exist)."""
    from stored_results import store_aa_run

    from cgflow.orchestration.firetasks.aa import AAAnalyseTask

    monkeypatch.setenv("CGFLOW_DB_FILE", str(launchpad_file))
    monkeypatch.setenv("CGFLOW_WORK_ROOT", str(tmp_path / "runs"))
    r = np.linspace(0.1, 1.2, 111)
    with Store.from_launchpad(launchpad) as store:
        store.upsert_parameter_set(OPLSAA_REFERENCE, "rerun", "narrow")
        store_aa_run(store, OPLSAA_REFERENCE, "rerun", r, np.ones_like(r), 712.5, -3.0)
    task = AAAnalyseTask(campaign="rerun", param_set=OPLSAA_REFERENCE.model_dump(),
                         preset="tiny")
    action = task.run_task({})
    assert action.stored_data["already_stored"] is True
    assert action.stored_data["density_kg_m3"] == 712.5
    with Store.from_launchpad(launchpad) as store:
        run = store.get_aa_run(f"{OPLSAA_REFERENCE.id}:tiny")
        assert run.status == "completed" and run.results.density_kg_m3 == 712.5
