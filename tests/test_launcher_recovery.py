"""``cgflow launch`` recovers from killed processes by itself: a killed ``rlaunch`` is said
and its run rerun, a killed launcher keeps the one-launcher lock for as long as its
``rlaunch`` lives and takes it down, and a run whose pings stopped is rerun after the
expiry instead of leaving the launcher asleep. Real processes (``cgflow launch``,
``rlaunch``, ``kill -9``) on the session's job database; small ScriptTask workflows."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from cgflow.db.server import pid_alive
from cgflow.jobs.lifetime import _setpriv

BIN = Path(sys.executable).parent


def _wait(cond: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture
def home(launchpad, launchpad_file, tmp_path) -> Path:
    """A cgflow home whose embedded server is the session's (its state file names that
    port, so the launcher lock applies) with the launchpad and FW_config files of the
    session database in ``fw_config/``."""
    port = urlsplit(launchpad.host).port
    if urlsplit(launchpad.host).hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("the launcher lock applies to a job database on this machine")
    h = tmp_path / "home"
    (h / "db").mkdir(parents=True)
    (h / "db" / "server.json").write_text(json.dumps({
        "pid": os.getpid(), "host": "127.0.0.1", "port": port,
        "uri": f"mongodb://127.0.0.1:{port}/?directConnection=true"}))
    (h / "fw_config").mkdir()
    (h / "fw_config" / "my_launchpad.yaml").write_text(launchpad_file.read_text())
    _fw_config(h, ping_s=60, expiry_s=600)
    return h


def _fw_config(home: Path, ping_s: float, expiry_s: float) -> Path:
    path = home / "fw_config" / "FW_config.yaml"
    path.write_text(yaml.safe_dump({"CONFIG_FILE_DIR": str(path.parent),
                                    "PING_TIME_SECS": ping_s,
                                    "RUN_EXPIRATION_SECS": expiry_s}))
    return path


def _two_step_workflow(lp, seconds: float = 4) -> dict[str, int]:
    """``first`` (sleeps) then ``second``, both of campaign ``t``; their fw_ids."""
    from fireworks import Firework, ScriptTask, Workflow

    first = Firework(ScriptTask.from_str(f"sleep {seconds}"), spec={"campaign": "t"},
                     name="first")
    second = Firework(ScriptTask.from_str("echo second"), spec={"campaign": "t"},
                      name="second", parents=[first])
    lp.add_wf(Workflow([first, second]))
    return {d["name"]: d["fw_id"] for d in lp.fireworks.find({}, {"name": 1, "fw_id": 1})}


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, CGFLOW_HOME=str(home))
    env.pop("FW_CONFIG_FILE", None)
    return env


def _launch(home: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [str(BIN / "cgflow"), "launch", "-l", str(home / "fw_config" / "my_launchpad.yaml"),
         "--campaign", "t"], stdout=open(out, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        env=_env(home))


def _holder(home: Path) -> dict:
    try:
        return json.loads((home / "db" / "launcher.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _running_worker(home: Path, lp, fw_id: int) -> int:
    """Wait until ``fw_id`` runs under a worker of the launcher; the worker's pid."""
    _wait(lambda: lp.fireworks.find_one({"fw_id": fw_id})["state"] == "RUNNING", 120,
          f"Firework {fw_id} to run")
    return int(_wait(lambda: _holder(home).get("worker_pid"), 30, "the worker pid"))


def _all_threads_stopped(pid: int) -> bool:
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
        except OSError:
            continue
    return bool(states) and all(s in ("T", "t") for s in states)


def _completed_once(lp, fw_ids: dict[str, int]) -> dict[str, list[str]]:
    """Launch states per Firework name (a rerun archives the earlier launches); asserts
    every Firework COMPLETED exactly once."""
    states = {}
    for name, fw_id in fw_ids.items():
        fw = lp.fireworks.find_one({"fw_id": fw_id})
        assert fw["state"] == "COMPLETED", (name, fw["state"])
        ids = list(fw.get("archived_launches") or []) + list(fw["launches"])
        states[name] = [lp.launches.find_one({"launch_id": i})["state"] for i in ids]
        assert states[name].count("COMPLETED") == 1, states
    return states


def test_a_killed_rlaunch_is_said_and_its_run_rerun_by_the_same_launch(home, launchpad):
    fw_ids = _two_step_workflow(launchpad)
    out = home / "launch.out"
    wrapper = _launch(home, out)
    try:
        worker = _running_worker(home, launchpad, fw_ids["first"])
        os.kill(worker, signal.SIGKILL)
        assert wrapper.wait(timeout=180) == 0, out.read_text()
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    text = out.read_text()
    assert "rlaunch was killed by SIGKILL" in text, text
    assert (f"lost run rerun: Firework {fw_ids['first']} (first): its worker (launch dir "
            f"{home / 'launches'}/worker-") in text, text
    assert "nothing left to run for campaign t" in text and "Traceback" not in text
    assert _completed_once(launchpad, fw_ids)["first"] == ["FIZZLED", "COMPLETED"]


def test_a_killed_launcher_keeps_the_lock_while_its_rlaunch_lives_and_takes_it_down(
        home, launchpad):
    if _setpriv() is None:
        pytest.skip("needs util-linux setpriv --pdeathsig")
    fw_ids = _two_step_workflow(launchpad)
    wrapper = _launch(home, home / "first.out")
    worker = _running_worker(home, launchpad, fw_ids["first"])
    # Stop the worker, then kill its launcher: the worker is alive (stopped, with the
    # SIGTERM of its parent's death pending) and still holds the launcher lock.
    os.kill(worker, signal.SIGSTOP)
    try:
        # every thread stopped first: one still running would take the SIGTERM and die
        _wait(lambda: _all_threads_stopped(worker), 30, "the worker to stop")
        wrapper.kill()
        wrapper.wait(timeout=30)
        assert pid_alive(worker)
        second = subprocess.run(  # noqa: S603
            [str(BIN / "cgflow"), "launch", "-l", str(home / "fw_config" / "my_launchpad.yaml"),
             "--campaign", "t"], capture_output=True, text=True, env=_env(home), timeout=120)
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"another launcher (pid {wrapper.pid}" in second.stderr
        assert f"its worker rlaunch pid {worker}" in second.stderr
        assert "Traceback" not in second.stderr
        assert launchpad.fireworks.find_one({"fw_id": fw_ids["first"]})["state"] == "RUNNING"
    finally:
        os.kill(worker, signal.SIGCONT)
    # let go, the worker dies of its parent's death: the lock is free, the run is lost
    _wait(lambda: not pid_alive(worker), 30, "the orphaned rlaunch to die")
    third = subprocess.run(  # noqa: S603
        [str(BIN / "cgflow"), "launch", "-l", str(home / "fw_config" / "my_launchpad.yaml"),
         "--campaign", "t"], capture_output=True, text=True, env=_env(home), timeout=240)
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"lost run rerun: Firework {fw_ids['first']} (first): its worker" in third.stdout
    assert _completed_once(launchpad, fw_ids)["first"] == ["FIZZLED", "COMPLETED"]


def test_a_run_whose_pings_stopped_is_rerun_after_the_expiry_instead_of_idling(
        home, launchpad, tmp_path):
    fw_config = _fw_config(home, ping_s=1, expiry_s=6)
    fw_ids = _two_step_workflow(launchpad, seconds=30)
    # a plain rlaunch (no worker folder: only its pings tell whether it lives), killed
    plain = tmp_path / "plain"
    plain.mkdir()
    rl = subprocess.Popen(  # noqa: S603
        [str(BIN / "rlaunch"), "-l", str(home / "fw_config" / "my_launchpad.yaml"),
         "singleshot"], cwd=plain, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(_env(home), FW_CONFIG_FILE=str(fw_config)), start_new_session=True)
    _wait(lambda: launchpad.fireworks.find_one({"fw_id": fw_ids["first"]})["state"]
          == "RUNNING", 120, "the plain rlaunch to start")
    os.killpg(rl.pid, signal.SIGKILL)  # rlaunch and its ScriptTask's shell
    rl.wait(timeout=30)
    launchpad.fireworks.update_one({"fw_id": fw_ids["first"]},
                                   {"$set": {"spec._tasks.0.script": ["sleep 1"]}})
    done = subprocess.run(  # noqa: S603
        [str(BIN / "cgflow"), "launch", "-l", str(home / "fw_config" / "my_launchpad.yaml"),
         "--campaign", "t"], capture_output=True, text=True, env=_env(home), timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    waiting = [i for i, line in enumerate(lines) if line.startswith(
        f"waiting for 1 Firework(s) RUNNING elsewhere: {fw_ids['first']} (")]
    rerun = [i for i, line in enumerate(lines) if line.startswith(
        f"lost run rerun: Firework {fw_ids['first']} (first): last ping ")
        and line.endswith("(expiry 6 s)")]
    assert rerun, done.stdout
    # rerun only once its last ping is older than the expiry; a launch that started before
    # that (the usual case) says first that it waits for the run instead of idling
    # silently (on a loaded machine the ping may have expired before the launch looks)
    age_s = float(re.search(r"last ping (\d+(?:\.\d+)?) s ago", lines[rerun[0]]).group(1))
    assert age_s >= 6, done.stdout
    assert not waiting or waiting[0] < rerun[0], done.stdout
    assert _completed_once(launchpad, fw_ids)["first"] == ["FIZZLED", "COMPLETED"]
