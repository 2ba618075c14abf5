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
        assert _insert_and_read(srv.client_uri(), 1) == [1]

        # graceful restart keeps port and data
        uri2 = srv.restart()
        st2 = srv.status()
        assert uri2 == uri and st2.pid != st.pid and not pid_alive(st.pid)
        assert _insert_and_read(srv.client_uri(), 2) == [1, 2]

        # kill -9: acknowledged writes survive (--sync-on-commit); the state file is stale
        os.kill(st2.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(st2.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        st3 = srv.status()
        assert st3.running is False and st3.stale is True
        assert "stale" in st3.describe()
        srv.start()
        assert srv.status().pid not in (st.pid, st2.pid)
        assert _insert_and_read(srv.client_uri()) == [1, 2]
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


# --- security: authentication on, owner-only files, loopback only -----------------------


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@needs_server
def test_the_server_requires_authentication_and_keeps_its_files_private(tmp_path):
    from pymongo.errors import OperationFailure

    srv = EmbeddedServer(home=tmp_path, port=_free_port(), log_level="WARNING")
    uri = srv.start()
    try:
        creds = srv.credentials()
        assert creds is not None and creds.username == "cgflow" and len(creds.password) >= 30
        assert creds.password not in uri and creds.password not in repr(creds)
        assert creds.password not in srv.status().describe()
        assert "auth:       on (SCRAM-SHA-256" in srv.status().describe()
        # a client without the password may say hello, nothing else
        anon: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=10_000)
        wrong: MongoClient = MongoClient(
            uri.replace("://", "://cgflow:not-the-password@") + "&authSource=admin",
            serverSelectionTimeoutMS=10_000)
        try:
            assert anon.admin.command("ping")["ok"] == 1.0
            for attempt in (lambda: anon["cgflow"]["fireworks"].insert_one({"fw_id": 1}),
                            lambda: anon["cgflow"]["fireworks"].find_one(),
                            lambda: anon.list_database_names(),
                            lambda: anon.admin.command("createUser", "x", pwd="y",
                                                       roles=["root"]),
                            lambda: wrong["cgflow"]["fireworks"].find_one()):
                with pytest.raises(OperationFailure):
                    attempt()
        finally:
            anon.close()
            wrong.close()
        assert _insert_and_read(srv.client_uri(), 7) == [7]
        # owner-only: the folders 0700, every file cgflow or the server wrote 0600
        db = tmp_path / "db"
        assert _mode(db) == 0o700 and _mode(db / "data") == 0o700
        files = [f for f in db.iterdir() if f.is_file()] + [
            f for f in (db / "data").rglob("*") if f.is_file()]
        assert {f.name for f in files} >= {"credentials.json", "server.json", "server.log",
                                           "secantusd.toml", "WiredTiger.wt"}
        assert {f.name: _mode(f) for f in files if _mode(f) != 0o600} == {}
        assert not list(db.glob("bootstrap-*"))  # the throwaway certificates are gone
        log = (db / "server.log").read_text()
        assert "bootstrap server (mutual TLS)" in log and "--auth" in log
        assert creds.password not in log
    finally:
        srv.stop()


@needs_server
def test_an_open_data_folder_of_an_older_cgflow_gets_authentication_and_keeps_its_data(
        tmp_path):
    port = _free_port()
    old = EmbeddedServer(home=tmp_path, port=port, log_level="WARNING", auth=False)
    uri = old.start()
    try:
        assert _insert_and_read(uri, 1) == [1]  # open to anyone
        for path in (tmp_path / "db", tmp_path / "db" / "data"):
            path.chmod(0o755)  # as an older cgflow left it
        # a running open server is not silently taken for a secured one
        with pytest.raises(EmbeddedServerError, match="runs without authentication"):
            EmbeddedServer(home=tmp_path, port=port).start()
    finally:
        old.stop()
    assert old.credentials() is None
    srv = EmbeddedServer(home=tmp_path, port=port, log_level="WARNING")
    srv.start()
    try:
        assert srv.credentials() is not None
        assert _insert_and_read(srv.client_uri(), 2) == [1, 2]
        assert _mode(tmp_path / "db") == 0o700 and _mode(tmp_path / "db" / "data") == 0o700
        anon: MongoClient = MongoClient(srv.uri, serverSelectionTimeoutMS=10_000)
        try:
            with pytest.raises(Exception, match="requires authentication"):
                anon["persist"]["items"].find_one()
        finally:
            anon.close()
    finally:
        srv.stop()


def test_the_server_listens_on_this_machine_only(tmp_path):
    from cgflow.errors import InvalidInputError

    for host in ("0.0.0.0", "192.168.1.5", "db.example.org", "::"):
        with pytest.raises(InvalidInputError, match=f"field 'host': value {host!r}"):
            EmbeddedServer(home=tmp_path, host=host)
    assert not (tmp_path / "db").exists()
    for host in ("127.0.0.1", "localhost", "::1"):
        assert EmbeddedServer(home=tmp_path, host=host).host == host


def test_without_openssl_authentication_is_not_set_up_and_nothing_runs(tmp_path,
                                                                         monkeypatch):
    if find_server_command() is None:
        pytest.skip("secantusd-py (cgflow[embedded]) is not installed")
    monkeypatch.setattr(server_mod.shutil, "which",
                        lambda name: None if name == "openssl" else "/usr/bin/" + name)
    srv = EmbeddedServer(home=tmp_path, port=_free_port(), command=find_server_command())
    with pytest.raises(EmbeddedServerError, match="needs the 'openssl' command"):
        srv.start()
    assert srv.status().running is False and srv.credentials() is None


@needs_server
def test_a_server_that_died_comes_back_on_its_port(tmp_path):
    port = _free_port()
    srv = EmbeddedServer(home=tmp_path, port=port, log_level="WARNING")
    srv.start()
    pid = srv.status().pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    again = EmbeddedServer(home=tmp_path, log_level="WARNING")  # no port given
    try:
        assert again.start() == make_uri("127.0.0.1", port)
        assert _insert_and_read(again.client_uri(), 3) == [3]
    finally:
        again.stop()
