"""FireWorks on the job database: the shipped config files, and workflows that run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fireworks import Firework, FWorker, LaunchPad, Workflow
from fireworks.core.rocket_launcher import rapidfire
from fireworks.user_objects.firetasks.script_task import PyTask
from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter

from cgflow.db.launcher_lock import is_embedded
from cgflow.db.store import Store

CONFIGS = Path(__file__).resolve().parents[1] / "launchpad_configs"
ROOT = CONFIGS.parent


def _rlaunch() -> str:
    exe = Path(sys.executable).with_name("rlaunch")
    return str(exe) if exe.exists() else "rlaunch"


def test_launchpad_configs_load_with_fireworks():
    lp = LaunchPad.from_file(str(CONFIGS / "my_launchpad.yaml"))
    assert lp.uri_mode and lp.name == "cgflow"
    assert lp.host == "mongodb://127.0.0.1:27117/cgflow?directConnection=true"
    lp.connection.close()

    mdb = LaunchPad.from_file(str(CONFIGS / "my_launchpad_mongodb.yaml"))
    assert (mdb.host, mdb.port, mdb.name, mdb.authsource) == ("localhost", 27017, "cgflow",
                                                               "admin")
    assert mdb.username and mdb.password and not mdb.uri_mode
    mdb.connection.close()

    worker = FWorker.from_file(str(CONFIGS / "my_fworker.yaml"))
    assert worker.category == "" and "cgflow_work_root" in worker.env

    qa = CommonAdapter.from_file(str(CONFIGS / "my_qadapter.yaml"))
    assert qa.q_type == "SLURM" and qa["rocket_launch"].startswith("rlaunch -c ")
    script = qa.get_script_str("/scratch/launch")
    for line in ("#SBATCH --nodes=1", "#SBATCH --time=04:00:00", "#SBATCH --partition=",
                 "#SBATCH --account=", "#SBATCH --job-name=cgflow", "rlaunch -c "):
        assert line in script

    fw_config = yaml.safe_load((CONFIGS / "FW_config.yaml").read_text())
    import fireworks.fw_config as fwc

    assert set(fw_config) <= set(fwc.config_to_dict())  # FireWorks knows every key
    assert fw_config["RUN_EXPIRATION_SECS"] >= 4 * fw_config["PING_TIME_SECS"]


def test_docker_compose_matches_the_mongodb_launchpad():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    lp = yaml.safe_load((CONFIGS / "my_launchpad_mongodb.yaml").read_text())
    svc = compose["services"]["mongodb"]
    assert svc["image"].startswith("mongo:7")
    env = svc["environment"]
    assert env["MONGO_INITDB_ROOT_USERNAME"] == lp["username"]
    assert env["MONGO_INITDB_ROOT_PASSWORD"].endswith(f":-{lp['password']}}}")
    assert lp["authsource"] == "admin"
    assert svc["ports"] == [f"127.0.0.1:{lp['port']}:27017"]
    volume = svc["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]


def _chain(n: int = 2) -> Workflow:
    fws = [Firework(PyTask(func="math.sqrt", args=[float(i)]), name=f"step{i}", fw_id=-(i + 1))
           for i in range(n)]
    links = {fws[i]: [fws[i + 1]] for i in range(n - 1)}
    return Workflow(fws, links, name="chain")


def test_rapidfire_runs_a_workflow_to_completion(launchpad, tmp_path):
    launchpad.add_wf(_chain(3))
    rapidfire(launchpad, FWorker(), m_dir=str(tmp_path), nlaunches=0, sleep_time=0,
              strm_lvl="ERROR")
    ids = launchpad.get_fw_ids()
    assert len(ids) == 3
    assert {launchpad.get_fw_by_id(i).state for i in ids} == {"COMPLETED"}
    wf = launchpad.get_wf_by_fw_id(ids[0])
    assert wf.state == "COMPLETED"
    assert launchpad.launches.count_documents({}) == 3
    # a store sharing the launchpad's connection (naive datetimes) still reads UTC
    from datetime import UTC

    from cgflow.params import OPLSAA_REFERENCE

    st = Store.from_launchpad(launchpad)
    doc = st.upsert_parameter_set(OPLSAA_REFERENCE, "rapidfire")
    assert doc.created_at.tzinfo == UTC and st.get_parameter_set(doc.id) == doc
    st.close()  # does not close the launchpad's connection
    assert launchpad.get_fw_ids() == ids


def test_rlaunch_in_a_subprocess_and_the_store_share_the_database(launchpad, launchpad_file,
                                                                  tmp_path):
    launchpad.add_wf(_chain(2))
    out = subprocess.run([_rlaunch(), "-l", str(launchpad_file), "rapidfire",  # noqa: S603
                          "--nlaunches", "0", "--sleep", "0"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    states = {launchpad.get_fw_by_id(i).state for i in launchpad.get_fw_ids()}
    assert states == {"COMPLETED"}
    with Store.from_launchpad_file(launchpad_file) as st:
        from cgflow.params import OPLSAA_REFERENCE

        st.upsert_parameter_set(OPLSAA_REFERENCE, "fw-test")
        assert st.param_ids("fw-test") == [OPLSAA_REFERENCE.id]
    # FireWorks' reset leaves cgflow's collections alone
    launchpad.reset("", require_password=False)
    assert launchpad.db["parameter_sets"].count_documents({}) == 1
    assert launchpad.fireworks.count_documents({}) == 0
    assert is_embedded(launchpad.host) is False  # the session server is not the user's


@pytest.mark.requires_real_mongodb
def test_two_concurrent_launchers_run_each_firework_exactly_once(launchpad, launchpad_file,
                                                                 tmp_path):
    n = 6
    fws = [Firework(PyTask(func="time.sleep", args=[0.5]), name=f"job{i}") for i in range(n)]
    launchpad.add_wf(Workflow(fws, name="parallel"))
    procs = []
    for k in range(2):
        work = tmp_path / f"launcher{k}"
        work.mkdir()
        procs.append(subprocess.Popen(  # noqa: S603
            [_rlaunch(), "-l", str(launchpad_file), "rapidfire", "--nlaunches", "0",
             "--sleep", "0"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=dict(os.environ)))
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    ids = launchpad.get_fw_ids()
    assert len(ids) == n
    assert {launchpad.get_fw_by_id(i).state for i in ids} == {"COMPLETED"}
    launches = list(launchpad.launches.find({}, {"fw_id": 1, "launch_id": 1, "host": 1}))
    assert sorted(d["fw_id"] for d in launches) == sorted(ids)  # each ran exactly once
    assert len({d["launch_id"] for d in launches}) == n  # no duplicated launch ids
    dirs = [p for k in range(2) for p in (tmp_path / f"launcher{k}").glob("launcher_*")]
    assert len(dirs) == n
