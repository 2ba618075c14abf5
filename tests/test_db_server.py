"""The embedded job database's lifecycle: start, status, restart, stale state, failures."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from cgflow.db import server as server_mod
from cgflow.db.server import (
    EmbeddedServer,
    EmbeddedServerError,
    EmbeddedServerNotInstalledError,
    find_server_command,
    make_uri,
    pid_alive,
)

needs_server = pytest.mark.skipif(find_server_command() is None,
                                  reason="secantusd-py (cgflow[embedded]) is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _insert_and_read(uri: str, value: int | None = None) -> list[int]:
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        coll = client["persist"]["items"]
        if value is not None:
            coll.insert_one({"value": value})
        return sorted(d["value"] for d in coll.find())
    finally:
        client.close()


def test_make_uri_uses_loopback_for_wildcard_hosts():
    assert make_uri("127.0.0.1", 27117) == "mongodb://127.0.0.1:27117/?directConnection=true"
    assert make_uri("0.0.0.0", 5) == "mongodb://127.0.0.1:5/?directConnection=true"
    assert make_uri("::1", 5) == "mongodb://[::1]:5/?directConnection=true"


@needs_server
def test_start_status_restart_kill_and_stop_keep_the_data(tmp_path):
    srv = EmbeddedServer(home=tmp_path, port=_free_port(), log_level="WARNING")
    assert srv.status().running is False
    t0 = time.monotonic()
    uri = srv.start()
    started_in = time.monotonic() - t0
    try:
        st = srv.status()
        assert st.running and st.responding
        assert st.uri == uri == srv.uri
        assert uri == f"mongodb://127.0.0.1:{srv.port}/?directConnection=true"
        assert st.data_dir == tmp_path / "db" / "data" and st.data_dir.is_dir()
        state = json.loads((tmp_path / "db" / "server.json").read_text())
        assert state["pid"] == st.pid and state["uri"] == uri and state["started_at"]
        assert "--sync-on-commit" in state["command"]
        assert started_in < 30

        # idempotent: a second start returns the same server
        assert srv.start() == uri
        assert srv.status().pid == st.pid
        assert _insert_and_read(uri, 1) == [1]

        # graceful restart keeps port and data
        uri2 = srv.restart()
        st2 = srv.status()
        assert uri2 == uri and st2.pid != st.pid and not pid_alive(st.pid)
        assert _insert_and_read(uri2, 2) == [1, 2]

        # kill -9: acknowledged writes survive (--sync-on-commit); the state file is stale
        os.kill(st2.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(st2.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        st3 = srv.status()
        assert st3.running is False and st3.stale is True
        assert "stale" in st3.describe()
        uri3 = srv.start()
        assert srv.status().pid not in (st.pid, st2.pid)
        assert _insert_and_read(uri3) == [1, 2]
    finally:
        stopped = srv.stop()
    assert stopped is True
    assert srv.status().running is False
    assert not (tmp_path / "db" / "server.json").exists()
    assert srv.stop() is False  # nothing to stop
    log = (tmp_path / "db" / "server.log").read_text()
    assert "cgflow: starting" in log and "cgflow: stopped" in log


def test_stale_state_file_is_detected_and_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603
    dead.wait()
    db = tmp_path / "db"
    db.mkdir()
    (db / "server.json").write_text(json.dumps({
        "pid": dead.pid, "host": "127.0.0.1", "port": 27999,
        "uri": make_uri("127.0.0.1", 27999), "started_at": "2020-01-01T00:00:00+00:00",
    }))
    srv = EmbeddedServer(home=tmp_path)
    st = srv.status()
    assert st.running is False and st.stale is True and st.pid is None and st.uri is None
    # a live process that is not the server (pid recycled) is not taken for it
    (db / "server.json").write_text(json.dumps({"pid": os.getpid(), "port": 27999,
                                                "uri": make_uri("127.0.0.1", 27999)}))
    assert srv.status().running is False and srv.status().stale is True
    assert srv.stop() is False
    assert not (db / "server.json").exists()
    assert srv.status().stale is False


def test_start_refuses_without_the_server_command(tmp_path, monkeypatch):
    monkeypatch.setattr(server_mod, "find_server_command", lambda: None)
    with pytest.raises(EmbeddedServerNotInstalledError) as info:
        EmbeddedServer(home=tmp_path).start()
    assert "pip install 'cgflow[embedded]'" in str(info.value)
    assert "secantusd-py" in str(info.value)


def test_start_refuses_an_explicit_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(EmbeddedServerError, match=f"port {port} .* already in use"):
            EmbeddedServer(home=tmp_path, port=port, command=sys.executable).start()
    assert not (tmp_path / "db" / "server.json").exists()


def test_start_reports_the_log_tail_when_the_server_exits(tmp_path):
    fake = tmp_path / "fake-server"
    fake.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        print("fake server: cannot open storage", flush=True)
        sys.exit(3)
    """))
    fake.chmod(0o755)
    srv = EmbeddedServer(home=tmp_path / "home", port=_free_port(), command=str(fake))
    with pytest.raises(EmbeddedServerError) as info:
        srv.start(wait_s=10)
    msg = str(info.value)
    assert "exited with code 3" in msg and "fake server: cannot open storage" in msg
    assert srv.status().running is False


def test_start_gives_up_and_stops_a_server_that_never_answers(tmp_path):
    fake = tmp_path / "silent-server"
    fake.write_text(f"#!{sys.executable}\nimport time\nprint('silent', flush=True)\n"
                    "time.sleep(60)\n")
    fake.chmod(0o755)
    srv = EmbeddedServer(home=tmp_path / "home", port=_free_port(), command=str(fake))
    with pytest.raises(EmbeddedServerError, match="did not answer ping") as info:
        srv.start(wait_s=1.5)
    assert "silent" in str(info.value)
    assert srv.status().running is False


@needs_server
def test_concurrent_starts_share_one_detached_server(tmp_path):
    port = _free_port()
    code = textwrap.dedent(f"""
        from pathlib import Path
        from cgflow.db.server import EmbeddedServer
        srv = EmbeddedServer(home=Path({str(tmp_path)!r}), port={port}, log_level="WARNING")
        print(srv.start(wait_s=60), srv.status().pid, flush=True)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,  # noqa: S603
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=90) for p in procs]
    srv = EmbeddedServer(home=tmp_path, port=port)
    try:
        assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
        lines = {o[0].strip() for o in outs}
        assert len(lines) == 1, lines  # same uri and pid for both
        uri, pid = lines.pop().split()
        # both starters have exited; the server lives on in its own session
        st = srv.status()
        assert st.running and st.responding and st.pid == int(pid) and st.uri == uri
        assert os.getsid(st.pid) == st.pid
    finally:
        srv.stop()
    assert not pid_alive(int(pid))


def test_status_of_a_fresh_home_names_its_files(tmp_path):
    st = EmbeddedServer(home=tmp_path).status()
    assert st.running is False and st.stale is False and st.responding is None
    assert st.log_file == tmp_path / "db" / "server.log"
    assert "not running" in st.describe()
    assert EmbeddedServer(home=tmp_path).uri.endswith(":27117/?directConnection=true")


def test_default_home_is_the_session_cgflow_home(cgflow_home):
    assert EmbeddedServer().home == cgflow_home
    assert Path(os.environ["CGFLOW_HOME"]) == cgflow_home
