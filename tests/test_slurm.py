"""FireWorks workflows through a real (single-node) SLURM with qlaunch, end to end.

The cluster comes from ``tools/slurm/slurm.sh`` (see tests/slurm_support.py: started for
the session when not running, skipped with the reason when that is impossible). Each
test gets a fresh LaunchPad (``launchpad`` fixture of conftest.py) and writes its
FireWorks files into its tmp folder. Workflows are small ScriptTask Fireworks; one job
per Firework, one job at a time (the embedded database serves one launcher at a time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import slurm_support
from fireworks import Firework, ScriptTask, Workflow
from slurm_support import (
    SLURM_SCRIPT,
    QlaunchFiles,
    slurm_cluster_fixture,
    wait_until,
    write_qlaunch_files,
)

from cgflow.errors import EngineError, InvalidInputError
from cgflow.orchestration.cluster import (
    QueueTimeoutError,
    cancel_jobs,
    drive_qlaunch,
    qlaunch_command,
    squeue_jobs,
    wait_for_jobs,
)

slurm = slurm_cluster_fixture()

pytestmark = pytest.mark.engine


def _bin(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else name


def _fan_out(tmp_path: Path) -> tuple[Workflow, Path]:
    """A -> (B, C); each appends its name to order.txt, B and C after sleeping 1 s."""
    order = tmp_path / "order.txt"

    def fw(name: str, parents: list[Firework] | None = None, sleep: bool = False) -> Firework:
        script = f"{'sleep 1; ' if sleep else ''}echo {name} >> {order}"
        return Firework(ScriptTask.from_str(script), name=f"step-{name}", parents=parents)

    a = fw("A")
    return Workflow([a, fw("B", [a], sleep=True), fw("C", [a], sleep=True)], name="fan-out"), order


def _our_jobs(files: QlaunchFiles) -> list[str]:
    root = files.launch_dir.resolve()
    return [j.job_id for j in squeue_jobs() if str(j.work_dir).startswith(str(root))]


@pytest.fixture
def qfiles(slurm, launchpad, tmp_path) -> Iterator[QlaunchFiles]:
    files = write_qlaunch_files(tmp_path, launchpad, partition=slurm.partition, ping_time_s=1)
    yield files
    left = _our_jobs(files)
    if left:  # a failed test must not leave jobs behind
        cancel_jobs(left)
        wait_for_jobs(left, timeout_s=30)


def test_slurm_script_status_and_check(slurm):
    status = subprocess.run(["bash", str(SLURM_SCRIPT), "status"], capture_output=True,  # noqa: S603
                            text=True, timeout=60, check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "slurmctld: running" in status.stdout and "slurmd: running" in status.stdout
    check = subprocess.run(["bash", str(SLURM_SCRIPT), "check"], capture_output=True,  # noqa: S603
                           text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stderr
    assert "COMPLETED" in check.stderr


def test_qlaunch_command_arguments(tmp_path):
    cmd = qlaunch_command(launchpad_file=tmp_path / "lp.yaml", qadapter_file=tmp_path / "q.yaml",
                          launch_dir=tmp_path, n_launches=2, max_jobs=3, reserve=True,
                          fworker_file=tmp_path / "w.yaml", qlaunch="qlaunch")
    # -r is an option of qlaunch itself and must come before the sub-command
    assert cmd.index("-r") < cmd.index("rapidfire")
    assert cmd[cmd.index("--nlaunches") + 1] == "2" and cmd[cmd.index("-m") + 1] == "3"
    assert cmd[cmd.index("-w") + 1] == str(tmp_path / "w.yaml")
    plain = qlaunch_command(launchpad_file=tmp_path / "lp.yaml", qadapter_file=tmp_path / "q.yaml",
                            launch_dir=tmp_path, n_launches=1, max_jobs=1, reserve=False)
    assert "-r" not in plain and "-w" not in plain


def test_drive_qlaunch_rejects_bad_input(launchpad, tmp_path):
    qa = tmp_path / "q.yaml"
    with pytest.raises(InvalidInputError, match="qadapter_file"):
        drive_qlaunch(launchpad, None, qadapter_file=qa, launch_dir=tmp_path)
    qa.write_text("_fw_name: CommonAdapter\n")
    with pytest.raises(InvalidInputError, match="max_jobs: value 0"):
        drive_qlaunch(launchpad, None, qadapter_file=qa, launch_dir=tmp_path, max_jobs=0)
    with pytest.raises(InvalidInputError, match="fw_ids: value 12345"):
        drive_qlaunch(launchpad, 12345, qadapter_file=qa, launch_dir=tmp_path)


def test_drive_qlaunch_keeps_one_job_on_the_embedded_database(launchpad, tmp_path, monkeypatch):
    """A LaunchPad on the cgflow home's embedded server: max_jobs > 1 is refused."""
    import json
    from urllib.parse import urlsplit

    home = tmp_path / "home"
    (home / "db").mkdir(parents=True)
    port = urlsplit(launchpad.host).port
    (home / "db" / "server.json").write_text(json.dumps(
        {"pid": os.getpid(), "host": "127.0.0.1", "port": port, "uri": launchpad.host}))
    monkeypatch.setenv("CGFLOW_HOME", str(home))
    qa = tmp_path / "q.yaml"
    qa.write_text("_fw_name: CommonAdapter\n")
    with pytest.raises(InvalidInputError, match="max_jobs: value 2: the embedded job database"):
        drive_qlaunch(launchpad, None, qadapter_file=qa, launch_dir=tmp_path / "l", max_jobs=2)


@pytest.mark.parametrize("reserve", [True, False], ids=["reservation", "normal"])
def test_dependent_workflow_through_slurm(qfiles, launchpad, tmp_path, reserve):
    wf, order = _fan_out(tmp_path)
    launchpad.add_wf(wf)
    first = min(launchpad.get_fw_ids())
    events: list[str] = []
    result = drive_qlaunch(launchpad, first, qadapter_file=qfiles.qadapter,
                           launch_dir=qfiles.launch_dir, fworker_file=qfiles.fworker,
                           launchpad_file=qfiles.launchpad, reserve=reserve, max_jobs=1,
                           timeout_s=240, poll_s=0.5, env=qfiles.env, log=events.append)
    assert result.completed, (result, events)
    assert set(result.fw_states.values()) == {"COMPLETED"} and len(result.fw_states) == 3
    # exactly one SLURM job per Firework: no job was sent for a Firework already taken
    assert len(result.job_ids) == 3 and len(set(result.job_ids)) == 3, events
    lines = order.read_text().split()
    assert sorted(lines) == ["A", "B", "C"] and lines[0] == "A"
    assert launchpad.get_wf_summary_dict(first)["state"] == "COMPLETED"
    launches = list(launchpad.launches.find({}, {"state_history": 1, "fworker": 1}))
    assert len(launches) == 3 and all(l_["fworker"]["name"] == "slurm-test" for l_ in launches)
    reservation_ids = {h.get("reservation_id") for l_ in launches for h in l_["state_history"]
                       if h.get("reservation_id")}
    if reserve:  # each reserved launch records its SLURM job id
        assert reservation_ids == set(result.job_ids)
    else:
        assert reservation_ids == set()
    assert _our_jobs(qfiles) == []  # qlaunch returned early, drive_qlaunch waited for all


def test_broken_job_environment_is_reported(slurm, launchpad, tmp_path):
    files = write_qlaunch_files(tmp_path, launchpad, partition=slurm.partition,
                                extra_pre_rocket="echo 'environment broken on purpose'; exit 3")
    launchpad.add_wf(Firework(ScriptTask.from_str("echo never"), name="never-runs"))
    events: list[str] = []
    try:
        with pytest.raises(EngineError, match="2 queue jobs in a row ended without") as err:
            drive_qlaunch(launchpad, None, qadapter_file=files.qadapter,
                          launch_dir=files.launch_dir, launchpad_file=files.launchpad,
                          fworker_file=files.fworker, reserve=True, max_idle_jobs=2,
                          timeout_s=180, poll_s=0.5, env=files.env, log=events.append)
    finally:
        left = _our_jobs(files)
        cancel_jobs(left)
        wait_for_jobs(left, timeout_s=30)
    assert "environment broken on purpose" in str(err.value)
    assert any("reservation" in e and "cancelled" in e for e in events), events
    # the reservations of the dead jobs were cancelled: the Firework can run again
    assert [fw["state"] for fw in launchpad.fireworks.find({}, {"state": 1})] == ["READY"]


def _lpad(files: QlaunchFiles, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_bin("lpad"), "-l", str(files.launchpad), *args],  # noqa: S603
                          capture_output=True, text=True, timeout=120, env=files.env, check=False)


def test_killed_job_is_a_lost_run_and_reruns(qfiles, launchpad, tmp_path):
    """scancel mid-run leaves the Firework RUNNING; detect_lostruns --rerun makes it READY.

    The scancel is drive_qlaunch's own, at its time limit (cancel_on_timeout).

    The task sleeps 30 s on its first run only (a marker file stands for a checkpoint),
    so the rerun finishes at once.
    """
    marker, done = tmp_path / "first_run_started", tmp_path / "done.txt"
    script = (f"if [ -e {marker} ]; then echo resumed > {done}; "
              f"else touch {marker}; sleep 30; fi")
    launchpad.add_wf(Firework(ScriptTask.from_str(script), name="long-step"))
    fw_id = launchpad.get_fw_ids()[0]

    def state() -> str:
        return launchpad.fireworks.find_one({"fw_id": fw_id}, {"state": 1})["state"]

    sub = subprocess.run(  # noqa: S603
        [_bin("qlaunch"), "-l", str(qfiles.launchpad), "-w", str(qfiles.fworker),
         "-q", str(qfiles.qadapter), "--launch_dir", str(qfiles.launch_dir), "singleshot"],
        capture_output=True, text=True, timeout=120, env=qfiles.env, check=False)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    wait_until(lambda: state() == "RUNNING" and marker.exists(), 120,
               what="the Firework to run")
    jobs = _our_jobs(qfiles)
    assert len(jobs) == 1

    # Still pinging (PING_TIME_SECS=1 from the job's FW_config): not lost although it
    # started longer ago than the expiration (same call as `lpad detect_lostruns`).
    time.sleep(4)
    _, lost_ids, _ = launchpad.detect_lostruns(expiration_secs=3, rerun=True)
    assert lost_ids == [] and state() == "RUNNING"

    # drive_qlaunch adopts the running job (it runs under its launch_dir), submits no
    # second one for the busy Firework, and at its time limit scancels it.
    with pytest.raises(QueueTimeoutError, match="cancelled") as timed_out:
        drive_qlaunch(launchpad, fw_id, qadapter_file=qfiles.qadapter,
                      launch_dir=qfiles.launch_dir, fworker_file=qfiles.fworker,
                      launchpad_file=qfiles.launchpad, timeout_s=2, poll_s=0.5, env=qfiles.env)
    assert timed_out.value.result.job_ids == [] and timed_out.value.result.rounds == 0
    wait_for_jobs(jobs, timeout_s=30)
    assert state() == "RUNNING"  # the job was killed; nobody told the database
    time.sleep(4)  # let the last ping age past --time
    lost = _lpad(qfiles, "detect_lostruns", "--time", "3", "--rerun")
    assert lost.returncode == 0, lost.stderr
    assert state() == "READY", lost.stdout + lost.stderr

    result = drive_qlaunch(launchpad, fw_id, qadapter_file=qfiles.qadapter,
                           launch_dir=qfiles.launch_dir, fworker_file=qfiles.fworker,
                           launchpad_file=qfiles.launchpad, timeout_s=180, poll_s=0.5,
                           env=qfiles.env)
    assert result.completed and done.read_text().strip() == "resumed"
    fw = launchpad.get_fw_by_id(fw_id)
    assert len(fw.archived_launches) == 1 and len(fw.launches) == 1




@pytest.mark.skipif(shutil.which("gmx") is None, reason="GROMACS (gmx) not installed")
@pytest.mark.parametrize("reserve", [True, False], ids=["reservation", "normal"])
def test_campaign_through_slurm_resumes_a_killed_job_from_its_checkpoint(
        slurm, launchpad, tmp_path, reserve):
    """A real (tiny, all-atom) cgflow campaign through SLURM, in reservation and in normal
    mode. Its
    production job is scancelled once mdrun has written a checkpoint; drive_qlaunch finds
    the Firework lost (no pings), reruns it, and the new job continues mdrun from the
    checkpoint. The database ends with one completed AA run for the set."""
    from cgflow.db.store import Store
    from cgflow.orchestration.submit import submit_campaign
    from cgflow.params import OPLSAA_REFERENCE

    runs = tmp_path / "runs"
    files = write_qlaunch_files(tmp_path, launchpad, partition=slurm.partition, ping_time_s=1,
                                fworker_env={"cgflow_work_root": str(runs)})
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("name: slurm-tiny\nn_sets: 0\ninclude_reference: true\n"
                         "preset: tiny\nthreads: 1\n")
    submit_campaign(str(spec_file), files.launchpad)
    first = min(launchpad.get_fw_ids())
    run_dir = runs / OPLSAA_REFERENCE.id / "tiny" / "aa"
    cancelled: list[str] = []

    def cancel_production_job() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not cancelled:
            if (run_dir / "prod.cpt").exists():
                jobs = [j for j in squeue_jobs()
                        if str(j.work_dir).startswith(str(files.launch_dir.resolve()))]
                if jobs:
                    cancel_jobs([j.job_id for j in jobs])
                    cancelled.extend(j.job_id for j in jobs)
                    return
            time.sleep(0.2)

    import threading

    killer = threading.Thread(target=cancel_production_job, daemon=True)
    killer.start()
    events: list[str] = []
    try:
        result = drive_qlaunch(launchpad, first, qadapter_file=files.qadapter,
                               launch_dir=files.launch_dir, fworker_file=files.fworker,
                               launchpad_file=files.launchpad, reserve=reserve, max_jobs=1,
                               timeout_s=600, poll_s=0.5, rerun_lost_after_s=6,
                               env=files.env, log=events.append)
    finally:
        killer.join(5)
        left = _our_jobs(files)
        if left:
            cancel_jobs(left)
            wait_for_jobs(left, timeout_s=30)
    assert cancelled, "the production job was never cancelled (no checkpoint seen)"
    assert result.completed, (result, events)
    assert launchpad.get_wf_summary_dict(first)["state"] == "COMPLETED"
    prod = [fw for fw in launchpad.fireworks.find({}, {"fw_id": 1, "name": 1})
            if fw["name"].endswith("aa-produce")]
    assert len(prod) == 1
    fw = launchpad.get_fw_by_id(prod[0]["fw_id"])
    assert len(fw.archived_launches) == 1, "the lost production run was not rerun once"
    with Store.from_launchpad(launchpad) as store:
        (run,) = store.aa_runs(campaign="slurm-tiny")
        assert run.status == "completed" and run.results.d_nm2_ps > 0
    # mdrun continued from the checkpoint the cancelled job left, not from step 0
    assert (run_dir / "prod.log").read_text().count("Restarting from checkpoint") >= 1


# --- the session fixture's decisions, without touching the real cluster --------------------


@pytest.fixture
def fake_registry(monkeypatch, tmp_path):
    monkeypatch.setattr(slurm_support, "REGISTRY", tmp_path / "registry")
    monkeypatch.setattr(slurm_support, "default_partition", lambda: "debug")
    calls: list[list[str]] = []

    def fake_run(cmd, timeout_s):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(slurm_support, "_run", fake_run)
    return calls


def test_support_skips_without_root_or_when_disabled(monkeypatch, fake_registry):
    monkeypatch.setattr(slurm_support, "slurm_answers", lambda: False)
    monkeypatch.setattr(slurm_support.os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        next(slurm_support.start_cluster())
    monkeypatch.setenv(slurm_support.ENABLE_ENV, "0")
    with pytest.raises(pytest.skip.Exception, match="disabled"):
        next(slurm_support.start_cluster())
    assert fake_registry == []  # nothing installed, started or stopped


def test_support_last_session_stops_a_cluster_started_by_tests(monkeypatch, fake_registry):
    """Two sessions share a cluster the first one started; the last to end stops it."""
    up = {"running": False}

    def fake_bring_up() -> bool:
        started = not up["running"]
        up["running"] = True
        return started

    monkeypatch.setattr(slurm_support, "_bring_up", fake_bring_up)
    first = slurm_support.start_cluster(pid=os.getpid())
    assert next(first).started_here
    second = slurm_support.start_cluster(pid=os.getppid())  # another live process joins
    assert not next(second).started_here
    with pytest.raises(StopIteration):
        next(first)  # the first ends while the second still uses the cluster: no stop
    assert fake_registry == []
    with pytest.raises(StopIteration):
        next(second)  # the last one ends: stop
    assert [cmd[-1] for cmd in fake_registry] == ["stop"]
    assert not (slurm_support.REGISTRY / "started_by_tests").exists()
    # a cluster that was already running when the session began is left alone
    monkeypatch.setattr(slurm_support, "_bring_up", lambda: False)
    third = slurm_support.start_cluster()
    assert not next(third).started_here
    with pytest.raises(StopIteration):
        next(third)
    assert len(fake_registry) == 1
