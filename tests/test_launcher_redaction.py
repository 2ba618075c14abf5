"""The job database's password never leaves the files meant to hold it: it is planted in
launchpad files (as ``username``/``password`` keys, as cgflow writes them, and inside a
``mongodb://user:PASSWORD@`` URI) and every output of ``cgflow db start/status``,
``cgflow campaign submit/status/results`` and ``cgflow launch`` (with the database up and
down), the rlaunch log and every file of the launcher is searched for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import free_tcp_port

from cgflow.db.server import EmbeddedServer, find_server_command

pytestmark = pytest.mark.skipif(find_server_command() is None,
                                reason="secantusd-py (cgflow[embedded]) is not installed")
BIN = Path(sys.executable).parent


def _cgflow(home: Path, *args: str, ok: bool = True) -> str:
    env = dict(os.environ, CGFLOW_HOME=str(home), CGFLOW_WORK_ROOT=str(home / "runs"))
    env.pop("FW_CONFIG_FILE", None)
    r = subprocess.run([str(BIN / "cgflow"), *args], capture_output=True, text=True,  # noqa: S603
                       env=env, timeout=600)
    out = r.stdout + r.stderr
    assert (r.returncode == 0) == ok, (args, out)
    return out


def test_the_password_is_in_no_output_log_or_launcher_file(tmp_path):
    home = tmp_path / "home"
    server = EmbeddedServer(home=home, port=free_tcp_port())
    (home / "db").mkdir(parents=True)
    outputs = {}
    try:
        outputs["db start"] = _cgflow(home, "db", "start")
        password = server.credentials().password
        assert len(password) >= 30
        lp_file = home / "fw_config" / "my_launchpad.yaml"
        written = yaml.safe_load(lp_file.read_text())
        assert written["password"] == password and password not in str(written["host"])
        # the same database through a URI holding the password, and a URI with a scheme
        # in capitals (refused by pymongo, so its error message must be redacted)
        uri_file = tmp_path / "uri_launchpad.yaml"
        uri = (f"mongodb://cgflow:{password}@127.0.0.1:{server.status().port}/cgflow"
               "?authSource=admin&directConnection=true")
        uri_file.write_text(yaml.safe_dump({"host": uri, "name": "cgflow", "uri_mode": True,
                                            "mongoclient_kwargs": {
                                                "serverSelectionTimeoutMS": 5000}}))
        caps_file = tmp_path / "caps_launchpad.yaml"
        caps_file.write_text(yaml.safe_dump({"host": uri.replace("mongodb://", "MONGODB://"),
                                             "name": "cgflow", "uri_mode": True}))
        fworker = tmp_path / "fworker.yaml"
        fworker.write_text(yaml.safe_dump({"name": "redaction", "category": "redaction",
                                           "query": "{}", "env": {}}))
        outputs["submit"] = _cgflow(home, "campaign", "submit", "tiny")
        outputs["status"] = _cgflow(home, "campaign", "status", "tiny")
        outputs["results"] = _cgflow(home, "campaign", "results", "tiny")
        outputs["db status"] = _cgflow(home, "db", "status")
        # work the worker can do: one Firework that succeeds (printing its environment),
        # one that fails (a traceback in the rlaunch log)
        from fireworks import Firework, LaunchPad, ScriptTask

        lp = LaunchPad.from_file(str(lp_file))
        for name, script in (("env", "env; echo done"), ("fails", "exit 3")):
            lp.add_wf(Firework(ScriptTask.from_str(script),
                               spec={"_category": "redaction", "campaign": "tiny"}, name=name))
        outputs["launch"] = _cgflow(home, "launch", "--campaign", "tiny", "-w", str(fworker))
        assert lp.fireworks.find_one({"name": "env"})["state"] == "COMPLETED"
        assert lp.fireworks.find_one({"name": "fails"})["state"] == "FIZZLED"
        outputs["launch (uri file)"] = _cgflow(home, "launch", "-l", str(uri_file),
                                               "--campaign", "tiny", "-w", str(fworker))
        outputs["status (uri file)"] = _cgflow(home, "campaign", "status", "tiny", "-l",
                                               str(uri_file))
        outputs["launch (capitals)"] = _cgflow(home, "launch", "-l", str(caps_file), ok=False)
        outputs["db stop"] = _cgflow(home, "db", "stop")
        outputs["launch (db down)"] = _cgflow(home, "launch", "-l", str(uri_file),
                                              "--campaign", "tiny", ok=False)
        outputs["status (db down)"] = _cgflow(home, "campaign", "status", "tiny", "-l",
                                              str(uri_file), ok=False)
        outputs["results (db down)"] = _cgflow(home, "campaign", "results", "tiny", "-l",
                                               str(uri_file), ok=False)
        outputs["db status (down)"] = _cgflow(home, "db", "status", ok=False)
    finally:
        server.stop()
    assert "launching (rlaunch" in outputs["launch"] and "nothing left to run" in outputs["launch"]
    # the server is down: nothing answers on its port, or (in a full test run) another
    # test's server took the freed port and refuses these credentials; either way the
    # launch fails with a message, and the password must not be in it
    down = outputs["launch (db down)"]
    assert "cannot reach the job database" in down or "refused the credentials" in down, down
    leaks = [what for what, text in outputs.items() if password in text]
    assert leaks == [], f"the password is printed by: {leaks}"
    # every file of the home but the two that must hold it, and the test's own
    keepers = {home / "fw_config" / "my_launchpad.yaml", home / "db" / "credentials.json"}
    files = [f for f in home.rglob("*") if f.is_file() and f not in keepers]
    assert home / "fw_config" / "rlaunch.log" in files
    assert any(f.name == "FW.json" for f in files)  # launch directories were searched
    assert any(f.name == "launcher.lock" for f in files)
    leaking = [str(f) for f in files if password.encode() in f.read_bytes()]
    assert leaking == []
    assert "Traceback" in (home / "fw_config" / "rlaunch.log").read_text()  # the failure
    for keeper in keepers:
        assert keeper.stat().st_mode & 0o777 == 0o600
    assert (home / "fw_config").stat().st_mode & 0o777 == 0o700
