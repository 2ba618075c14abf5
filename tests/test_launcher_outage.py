"""``cgflow launch`` and its worker wait out an outage of the job database: the embedded
server is killed (``kill -9``) during a run and started again. A short outage is said in
one line when it starts and one when it ends, and the campaign goes on; a long one ends
the launch with a message (no traceback) and the next launch reruns what it left
RUNNING. A server of the test's own (with authentication, as by default)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import free_tcp_port

from cgflow.db.server import EmbeddedServer, find_server_command, pid_alive
from cgflow.orchestration.fw_configs import write_embedded_configs
from cgflow.orchestration.launcher import OUTAGE_EXIT_CODE

pytestmark = pytest.mark.skipif(find_server_command() is None,
                                reason="secantusd-py (cgflow[embedded]) is not installed")
BIN = Path(sys.executable).parent


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[EmbeddedServer, Path]]:
    """An embedded server of a home of its own and its launchpad file."""
    home = tmp_path / "home"
    server = EmbeddedServer(home=home, port=free_tcp_port(), log_level="WARNING")
    lp_file = write_embedded_configs(server.start(wait_s=60), home=home)
    try:
        yield server, lp_file
    finally:
        server.stop()


def _workflow(lp_file: Path, seconds: float) -> tuple[object, dict[str, int]]:
    from fireworks import Firework, LaunchPad, ScriptTask, Workflow

    lp = LaunchPad.from_file(str(lp_file))
    lp.reset("", require_password=False)
    first = Firework(ScriptTask.from_str(f"sleep {seconds}"), spec={"campaign": "t"},
                     name="first")
    second = Firework(ScriptTask.from_str("echo second"), spec={"campaign": "t"},
                      name="second", parents=[first])
    lp.add_wf(Workflow([first, second]))
    return lp, {d["name"]: d["fw_id"] for d in lp.fireworks.find({}, {"name": 1, "fw_id": 1})}


def _kill_server(server: EmbeddedServer) -> None:
    pid = server.status().pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _wait_running(lp, fw_id: int) -> None:
    deadline = time.monotonic() + 120
    while lp.fireworks.find_one({"fw_id": fw_id})["state"] != "RUNNING":
        assert time.monotonic() < deadline, "the Firework never ran"
        time.sleep(0.2)


def _completed_once(lp, fw_ids: dict[str, int]) -> None:
    for name, fw_id in fw_ids.items():
        fw = lp.fireworks.find_one({"fw_id": fw_id})
        ids = list(fw.get("archived_launches") or []) + list(fw["launches"])
        states = [lp.launches.find_one({"launch_id": i})["state"] for i in ids]
        assert fw["state"] == "COMPLETED" and states.count("COMPLETED") == 1, (name, states)


def test_an_outage_of_twenty_seconds_is_said_and_the_campaign_goes_on(served):
    server, lp_file = served
    lp, fw_ids = _workflow(lp_file, seconds=6)
    out = lp_file.parent / "launch.out"
    env = dict(os.environ, CGFLOW_HOME=str(server.home))
    with open(out, "w") as fh:
        wrapper = subprocess.Popen([str(BIN / "cgflow"), "launch", "--campaign", "t"],  # noqa: S603
                                   stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_running(lp, fw_ids["first"])
        _kill_server(server)
        time.sleep(20)  # the Firework ends meanwhile: its worker waits to report it
        server.start(wait_s=60)
        assert wrapper.wait(timeout=300) == 0, out.read_text()
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    text = out.read_text()
    assert "job database unreachable (" in text and "job database back after " in text, text
    assert "Traceback" not in text and "nothing left to run for campaign t" in text
    assert "Traceback" not in (lp_file.parent / "rlaunch.log").read_text()
    lp = type(lp).from_file(str(lp_file))
    _completed_once(lp, fw_ids)


_SHORT_WAITS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from cgflow.orchestration.launcher import launch
    sys.exit(launch(Path(sys.argv[1]), campaign="t", poll_s=1, outage_limit_s=8,
                    report=lambda line: print(line, flush=True)))
""")


def test_a_long_outage_ends_the_launch_clearly_and_the_next_launch_recovers(served):
    server, lp_file = served
    # clients that give up after 4 s instead of 300 s, so that the worker dies soon
    short = lp_file.parent / "short_waits.yaml"
    data = yaml.safe_load(lp_file.read_text())
    data["mongoclient_kwargs"]["serverSelectionTimeoutMS"] = 4000
    short.write_text(yaml.safe_dump(data))
    short.chmod(0o600)
    lp, fw_ids = _workflow(lp_file, seconds=3)
    env = dict(os.environ, CGFLOW_HOME=str(server.home))
    with open(lp_file.parent / "long.out", "w") as fh:
        wrapper = subprocess.Popen([sys.executable, "-c", _SHORT_WAITS, str(short)],  # noqa: S603
                                   stdout=fh, stderr=subprocess.STDOUT, env=env)
    # meanwhile another server (someone else's) takes the port: it refuses our credentials
    # and counts as the outage going on, not as an error of the launcher
    foreign = EmbeddedServer(home=server.home.parent / "foreign", port=server.port,
                             log_level="WARNING")
    try:
        _wait_running(lp, fw_ids["first"])
        _kill_server(server)
        foreign.start(wait_s=60)
        assert wrapper.wait(timeout=300) == OUTAGE_EXIT_CODE
    finally:
        foreign.stop()
        if wrapper.poll() is None:
            wrapper.kill()
    text = (lp_file.parent / "long.out").read_text()
    assert "the job database has been unreachable for " in text, text
    assert "Nothing is lost" in text and "Traceback" not in text
    assert "unexpected error" not in text and "cgflow:" not in text
    server.start(wait_s=60)
    again = subprocess.run([str(BIN / "cgflow"), "launch", "--campaign", "t"],  # noqa: S603
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"lost run rerun: Firework {fw_ids['first']} (first): its worker" in again.stdout
    lp = type(lp).from_file(str(lp_file))
    _completed_once(lp, fw_ids)
