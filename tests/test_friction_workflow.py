"""The friction calibration through FireWorks with real LAMMPS runs: a campaign with the
CG stage and ``friction: {enabled: true}`` stores, for its converged set, a calibrated
gamma with D_CG(gamma) within 10 % of D_AA (or within the combined error), every trial,
and an RDF of the calibrated run within the noise of the frictionless one; the trials
are Fireworks added as detours, before the training Firework.

The all-atom run is made, not simulated (as in ``tests/test_workflow_cg.py``): the RDF
and pressure of a Lennard-Jones-like potential, with a D_AA four times below the
frictionless CG model's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_workflow_cg import lj_target, store_aa_run

from cgflow.db.store import Store
from cgflow.orchestration.status import campaign_status
from cgflow.params import OPLSAA_REFERENCE
from cgflow.stages.dataset import export_campaign

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed"),
]

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def test_campaign_calibrates_the_friction_of_a_converged_set(launchpad, launchpad_file,
                                                             tmp_path, monkeypatch):
    monkeypatch.setenv("CGFLOW_WORK_ROOT", str(tmp_path / "runs"))
    target = lj_target(tmp_path / "target")
    with Store.from_launchpad(launchpad) as store:
        store_aa_run(store, "fric", target)  # D_AA = 1e-3 nm^2/ps
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: fric\nn_sets: 0\ninclude_reference: true\npreset: tiny\n"
                    "threads: 1\ncg_stage: true\n"
                    "ibi: {rdf_tolerance: 0.05, pressure_tolerance_bar: 300}\n"
                    "friction: {enabled: true, tolerance: 0.1, max_trials: 4}\n")
    export = tmp_path / "export"
    for args in (["campaign", "submit", str(spec)],
                 ["launch", "--campaign", "fric", "--export-to", str(export),
                  "--export-preset", "tiny"]):
        r = subprocess.run([str(VENV_BIN / "cgflow"), *args, "-l", str(launchpad_file)],
                           capture_output=True, text=True, env=dict(os.environ), timeout=900,
                           cwd=REPO)
        assert r.returncode == 0, r.stdout + r.stderr
    # exported while it ran (nothing converged at the start), and at the end: the same
    # files as an export of the finished campaign
    assert "nothing to export yet" in r.stdout, r.stdout
    assert "exported 1 converged of 1 sets (1 of 1 finished)" in r.stdout, r.stdout
    with Store.from_launchpad(launchpad) as store:
        again = export_campaign(store, "fric", tmp_path / "again", preset="tiny")
    assert json.loads((export / "sets.json").read_text())["dataset_hash"] == \
        again["dataset_hash"]
    assert (export / "sets.json").read_text() == (tmp_path / "again" / "sets.json").read_text()

    wf = launchpad.workflows.find_one({"metadata.cgflow_campaign": "fric"})
    assert wf["state"] == "COMPLETED"
    pid = OPLSAA_REFERENCE.id
    with Store.from_launchpad(launchpad) as store:
        pot = store.get_potential(pid, "tiny")
        assert pot is not None and pot.converged, pot.reason if pot else None
        cg = store.get_cg_run(pid, "tiny")
        doc = store.get_friction(pid, "tiny")
        assert doc is not None and doc.status == "converged", doc.reason if doc else None
        d_aa, d0 = doc.d_aa_nm2_ps, doc.d_cg0_nm2_ps
        assert d_aa.mean == pytest.approx(1e-3)
        assert d0.mean == pytest.approx(cg.d_cg_nm2_ps.mean) and d0.mean > 2 * d_aa.mean
        d = doc.d_cg_nm2_ps
        combined = (d.err**2 + d_aa.err**2) ** 0.5
        assert abs(d.mean - d_aa.mean) <= max(0.1 * d_aa.mean, combined)
        gamma = doc.friction_per_ps
        assert gamma.mean > 0 and gamma.err is not None and 0 < gamma.err < gamma.mean
        assert doc.langevin_damp_fs == pytest.approx(1000.0 / gamma.mean)
        # every trial stored; the first at the first estimate; within four runs
        assert 1 <= doc.n_trials == len(doc.trials) <= 4
        assert doc.trials[0]["friction_per_ps"] == pytest.approx(doc.first_estimate_per_ps)
        assert doc.trials[doc.best_trial - 1]["friction_per_ps"] == pytest.approx(gamma.mean)
        # the structure of the calibrated run: within noise of the frictionless run's
        check = doc.structure_check
        assert doc.reference["source"] == "production"
        assert check["rdf_passed"] is True, check
        assert check["rdf_deviation"] <= check["sigma"] * check["rdf_noise"]
        assert doc.rdf is not None and doc.pressure_bar is not None
        (s,) = campaign_status(launchpad, store, "fric").sets
        assert s.stage == "done" and "friction gamma" in s.detail, s.detail
    # one Firework per trial, added as detours before the training Firework
    fws = list(launchpad.fireworks.find({"spec.cgflow_stage": "cg-friction"},
                                        {"fw_id": 1, "spec.friction_trial": 1, "state": 1}))
    assert sorted(f["spec"]["friction_trial"] for f in fws) == list(range(1, doc.n_trials + 1))
    assert all(f["state"] == "COMPLETED" for f in fws)
    train = launchpad.fireworks.find_one({"spec.cgflow_stage": "train"}, {"fw_id": 1})
    links = wf["links"]
    last = max(fws, key=lambda f: f["spec"]["friction_trial"])
    assert train["fw_id"] in links[str(last["fw_id"])]
