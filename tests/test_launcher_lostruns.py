"""Lost-run detection (:mod:`cgflow.db.lostruns`) and the ping settings a launcher derives
its expiry from (:mod:`cgflow.orchestration.fw_configs`), on the session's job database:
Fireworks checked out by FireWorks' own ``checkout_fw``, worker folders with real locks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cgflow.db.lostruns import (
    MAX_OUTAGE_RERUNS,
    WORKER_INFO_NAME,
    find_lost,
    finish_half_finished,
    half_finished,
    outage_failures,
    rerun_lost,
    rerun_outage_failures,
    running_launches,
    worker_folder,
    worker_state,
)
from cgflow.errors import InvalidInputError
from cgflow.orchestration.fw_configs import (
    DB_OUTAGE_TOLERANCE_S,
    PING_TIME_SECS,
    RUN_EXPIRATION_SECS,
    fireworks_config_in_force,
    launcher_fw_config,
    ping_settings,
)


def _checked_out(lp, launch_dir: Path, n: int = 1, campaign: str = "t") -> list[int]:
    """``n`` Fireworks of ``campaign`` made RUNNING by FireWorks' checkout in
    ``launch_dir`` (as a Rocket does before it runs the tasks)."""
    from fireworks import Firework, FWorker, ScriptTask

    ids = []
    for i in range(n):
        lp.add_wf(Firework(ScriptTask.from_str("true"), spec={"campaign": campaign},
                           name=f"{campaign}-{i}"))
        launch_dir.mkdir(parents=True, exist_ok=True)
        fw, _ = lp.checkout_fw(FWorker(), str(launch_dir))
        ids.append(fw.fw_id)
    return ids


def test_a_worker_folder_tells_whether_its_worker_lives(tmp_path):
    assert worker_state(None) == "unknown" and worker_state(tmp_path / "x") == "unknown"
    with worker_folder(tmp_path) as folder:
        launch_dir = folder.path / "launcher_2026-01-01"
        launch_dir.mkdir()
        assert folder.path.name.startswith("worker-") and folder.path.parent == tmp_path
        info = json.loads((folder.path / WORKER_INFO_NAME).read_text())
        assert info["host"] == socket.gethostname()
        assert worker_state(launch_dir) == "alive" == worker_state(folder.path)
        # a process given the lock keeps the worker alive after this one lets go
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],  # noqa: S603
                                 stdin=subprocess.PIPE, pass_fds=(folder.fd,))
        folder.release_here()
        folder.record(worker_pid=child.pid)
        assert worker_state(launch_dir) == "alive"
        child.stdin.close()
        child.wait(timeout=30)
        assert worker_state(launch_dir) == "gone"
    assert json.loads((folder.path / WORKER_INFO_NAME).read_text())["worker_pid"] == child.pid
    # a worker folder of another host is never judged from here
    info["host"] = "another-host.example.org"
    (folder.path / WORKER_INFO_NAME).write_text(json.dumps(info))
    assert worker_state(launch_dir) == "unknown"


def test_lost_runs_are_found_by_gone_workers_and_by_old_pings(launchpad, tmp_path):
    with worker_folder(tmp_path) as alive:
        gone_dir = tmp_path / "worker-gone"
        with worker_folder(tmp_path) as gone:
            gone_dir = gone.path
        gone_ids = _checked_out(launchpad, gone_dir / "launcher_a")
        alive_ids = _checked_out(launchpad, alive.path / "launcher_b")
        plain_ids = _checked_out(launchpad, tmp_path / "plain" / "launcher_c", n=2,
                                 campaign="other")
        running = running_launches(launchpad)
        assert [r.fw_id for r in running] == sorted(gone_ids + alive_ids + plain_ids)
        worker = {r.fw_id: r.worker for r in running}
        assert [worker[i] for i in gone_ids + alive_ids + plain_ids] == [
            "gone", "alive", "unknown", "unknown"]
        assert all(r.ping_age_s is not None and r.ping_age_s < 120 for r in running)
        # fresh pings: only the dead worker's run is lost
        lost = find_lost(running, expiry_s=600)
        assert [(r.fw_id, r.worker_gone) for r in lost] == [(gone_ids[0], True)]
        assert "its worker (launch dir" in lost[0].reason
        # an hour later, the runs without a known worker are lost too, the alive one is not
        later = running_launches(launchpad, now=datetime.now(UTC) + timedelta(hours=1))
        lost = find_lost(later, expiry_s=600)
        assert sorted(r.fw_id for r in lost) == sorted(gone_ids + plain_ids)
        assert all("(expiry 600 s)" in r.reason for r in lost if not r.worker_gone)
        # a query narrows the Fireworks looked at
        assert [r.fw_id for r in running_launches(launchpad, {"spec.campaign": "other"})] \
            == plain_ids
        rerun, unlocked = rerun_lost(launchpad, lost)
        assert rerun == sorted(gone_ids + plain_ids) and unlocked == []
        for fw_id in rerun:
            fw = launchpad.fireworks.find_one({"fw_id": fw_id})
            assert fw["state"] == "READY" and fw["launches"] == []
            (old,) = fw["archived_launches"]
            assert launchpad.launches.find_one({"launch_id": old})["state"] == "FIZZLED"
        assert launchpad.fireworks.find_one({"fw_id": alive_ids[0]})["state"] == "RUNNING"


def test_a_workflow_lock_left_by_a_dead_worker_is_removed(launchpad, tmp_path):
    with worker_folder(tmp_path) as gone:
        pass
    (fw_id,) = _checked_out(launchpad, gone.path / "launcher_a")
    launchpad.workflows.update_one({"nodes": fw_id}, {"$set": {"locked": True}})
    wf_id = launchpad.workflows.find_one({"nodes": fw_id})["_id"]
    lost = find_lost(running_launches(launchpad), expiry_s=600)
    seen: dict[int, float] = {}
    # not the only launcher: the lock might be someone's; wait until it is stale
    assert rerun_lost(launchpad, lost, locked_since=seen, now=100.0) == ([], [])
    assert rerun_lost(launchpad, lost, locked_since=seen, now=159.0) == ([], [])
    assert launchpad.fireworks.find_one({"fw_id": fw_id})["state"] == "RUNNING"
    assert rerun_lost(launchpad, lost, locked_since=seen, now=160.0) == ([fw_id], [wf_id])
    assert launchpad.fireworks.find_one({"fw_id": fw_id})["state"] == "READY"
    assert "locked" not in launchpad.workflows.find_one({"_id": wf_id})
    # the only launcher (embedded server, lock held): a left lock is removed at once
    from fireworks import FWorker

    launchpad.checkout_fw(FWorker(), str(gone.path / "launcher_b"))
    launchpad.workflows.update_one({"_id": wf_id}, {"$set": {"locked": True}})
    lost = find_lost(running_launches(launchpad), expiry_s=600)
    assert rerun_lost(launchpad, lost, exclusive=True) == ([fw_id], [wf_id])


def test_a_run_whose_worker_died_while_its_end_was_recorded_is_finished(launchpad, tmp_path):
    """The launch written COMPLETED with its action (Fireworks to add), the Firework still
    RUNNING and its workflow locked: FireWorks' refresh applies the stored action."""
    from fireworks import Firework, FWAction, ScriptTask, Workflow

    with worker_folder(tmp_path) as gone:
        pass
    half, running = _checked_out(launchpad, gone.path / "launcher_a", n=2)
    added = Workflow([Firework(ScriptTask.from_str("true"), name="added")])
    launch_id = launchpad.fireworks.find_one({"fw_id": half})["launches"][-1]
    launchpad.launches.update_one({"launch_id": launch_id}, {
        "$set": {"state": "COMPLETED", "action": FWAction(additions=[added]).to_dict()},
        "$push": {"state_history": {"state": "COMPLETED",
                                    "created_on": datetime.now(UTC).isoformat()}}})
    launchpad.workflows.update_one({"nodes": half}, {"$set": {"locked": True}})
    assert half_finished(launchpad) == [half]
    assert half_finished(launchpad, {"spec.campaign": "other"}) == []
    wf_id = launchpad.workflows.find_one({"nodes": half})["_id"]
    assert finish_half_finished(launchpad, [half], exclusive=True) == ([half], [wf_id])
    assert launchpad.fireworks.find_one({"fw_id": half})["state"] == "COMPLETED"
    wf = launchpad.get_wf_by_fw_id(half)
    assert [f.name for f in wf.fws if f.name == "added"] == ["added"]
    assert launchpad.fireworks.find_one({"fw_id": running})["state"] == "RUNNING"
    assert half_finished(launchpad) == []


def test_the_launcher_expiry_comes_from_the_ping_interval_of_the_config_in_force(tmp_path):
    # what cgflow writes: a live run whose pings waited out an outage is not lost
    assert RUN_EXPIRATION_SECS > PING_TIME_SECS + DB_OUTAGE_TOLERANCE_S
    written = tmp_path / "fw_config" / "FW_config.yaml"
    written.parent.mkdir()
    written.write_text(yaml.safe_dump({"PING_TIME_SECS": PING_TIME_SECS,
                                       "RUN_EXPIRATION_SECS": RUN_EXPIRATION_SECS}))
    got = ping_settings(written)
    assert (got.ping_s, got.expiry_s, got.source) == (60.0, 600.0, written)
    assert ping_settings(None).ping_s == 3600 and ping_settings(None).expiry_s == 4 * 3600
    short = tmp_path / "short.yaml"
    short.write_text("PING_TIME_SECS: 30\nRUN_EXPIRATION_SECS: 10\n")
    assert ping_settings(short).expiry_s == 60  # never below two pings
    for bad in ("PING_TIME_SECS: -1\n", "RUN_EXPIRATION_SECS: soon\n", "- 1\n"):
        short.write_text(bad)
        with pytest.raises(InvalidInputError, match="short.yaml"):
            ping_settings(short)
    # the launcher hands its rlaunch the environment's config, else the one beside the
    # launchpad file; FireWorks' own order decides which one is read
    lp_file = written.parent / "my_launchpad.yaml"
    assert launcher_fw_config(lp_file, {}) == written
    assert launcher_fw_config(lp_file, {"FW_CONFIG_FILE": str(short)}) == short
    assert launcher_fw_config(tmp_path / "x" / "lp.yaml", {}) is None
    env = {"HOME": str(tmp_path / "home"), "FW_CONFIG_FILE": str(written)}
    assert fireworks_config_in_force(env) == written
    user = tmp_path / "home" / ".fireworks" / "FW_config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("PING_TIME_SECS: 3600\n")
    assert fireworks_config_in_force(env) == user
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "FW_config.yaml").write_text("{}\n")
    assert fireworks_config_in_force(env, tmp_path / "cwd") == tmp_path / "cwd" / "FW_config.yaml"


_FW_READS = textwrap.dedent("""
    import sys
    import fireworks.fw_config as c
    print(c.PING_TIME_SECS, c.RUN_EXPIRATION_SECS)
""")


def test_fireworks_reads_the_config_the_launcher_hands_on(tmp_path):
    cfg = tmp_path / "FW_config.yaml"
    cfg.write_text("PING_TIME_SECS: 7\nRUN_EXPIRATION_SECS: 70\n")
    env = {"HOME": str(tmp_path / "home"), "FW_CONFIG_FILE": str(cfg),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _FW_READS], capture_output=True,  # noqa: S603
                         text=True, env=env, cwd=tmp_path / "..", timeout=120, check=True)
    assert out.stdout.split() == ["7", "70"]
    got = ping_settings(fireworks_config_in_force(env))
    assert (got.ping_s, got.expiry_s) == (7.0, 70.0)


def _fail(lp, launch_dir: Path, fw_id: int, stacktrace: str) -> None:
    """Check ``fw_id`` out and fail it as a Rocket does when its Firetask raises."""
    from fireworks import FWAction, FWorker

    launch_dir.mkdir(parents=True, exist_ok=True)
    fw, launch_id = lp.checkout_fw(FWorker(), str(launch_dir), fw_id=fw_id)
    assert fw.fw_id == fw_id
    lp.complete_launch(launch_id, FWAction(stored_data={
        "_message": "runtime error during task",
        "_exception": {"_stacktrace": stacktrace, "_details": None}}, exit=True), "FIZZLED")


def test_a_run_that_failed_because_the_database_was_away_is_rerun_a_few_times(launchpad,
                                                                               tmp_path):
    from fireworks import Firework, ScriptTask

    ids = {}
    for name in ("outage", "real", "other-campaign"):
        launchpad.add_wf(Firework(ScriptTask.from_str("true"), name=name, spec={
            "campaign": "other" if name == "other-campaign" else "t"}))
        ids[name] = max(launchpad.get_fw_ids())
    away = ("Traceback (most recent call last):\n  ...\ncgflow.db.store.DatabaseUnavailable"
            "Error: cannot reach the job database at 127.0.0.1:27117: "
            "ServerSelectionTimeoutError: Connection refused")
    _fail(launchpad, tmp_path / "a", ids["outage"], away)
    _fail(launchpad, tmp_path / "b", ids["real"],
          "Traceback (most recent call last):\ncgflow.errors.EngineError: grompp failed")
    _fail(launchpad, tmp_path / "c", ids["other-campaign"], away)
    (found,) = outage_failures(launchpad, {"spec.campaign": "t"})
    assert (found.fw_id, found.name, found.earlier) == (ids["outage"], "outage", 0)
    assert found.marker == "ServerSelectionTimeoutError"
    assert [f.fw_id for f in outage_failures(launchpad)] == [ids["outage"],
                                                             ids["other-campaign"]]
    for n in range(MAX_OUTAGE_RERUNS):
        assert rerun_outage_failures(launchpad, [found]) == ([ids["outage"]], [])
        assert launchpad.fireworks.find_one({"fw_id": ids["outage"]})["state"] == "READY"
        _fail(launchpad, tmp_path / f"a{n}", ids["outage"], away)
        (found,) = outage_failures(launchpad, {"spec.campaign": "t"})
        assert found.earlier == n + 1
    assert rerun_outage_failures(launchpad, [found]) == ([], [ids["outage"]])
    assert launchpad.fireworks.find_one({"fw_id": ids["outage"]})["state"] == "FIZZLED"
    assert launchpad.fireworks.find_one({"fw_id": ids["real"]})["state"] == "FIZZLED"
