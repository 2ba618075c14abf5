"""One launcher at a time on the embedded job database; none of that on MongoDB."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from cgflow.db.launcher_lock import (
    LauncherBusyError,
    exclusive_launcher,
    is_embedded,
    launchpad_file_uri,
    lock_holder,
)
from cgflow.errors import CgflowError

PORT = 27555


def _record_server(home: Path, port: int = PORT) -> str:
    """Write an embedded-server state file, as EmbeddedServer.start does."""
    (home / "db").mkdir(parents=True, exist_ok=True)
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    (home / "db" / "server.json").write_text(json.dumps({
        "pid": 1, "host": "127.0.0.1", "port": port, "uri": uri,
        "started_at": "2024-01-01T00:00:00+00:00"}))
    return uri


_HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from cgflow.db.launcher_lock import exclusive_launcher
    with exclusive_launcher(Path(sys.argv[1]), label="rlaunch rapidfire"):
        print("locked", flush=True)
        sys.stdin.read()
""")

_TRY = textwrap.dedent("""
    import sys
    from pathlib import Path
    from cgflow.db.launcher_lock import LauncherBusyError, exclusive_launcher
    try:
        with exclusive_launcher(Path(sys.argv[1])):
            print("acquired", flush=True)
    except LauncherBusyError as exc:
        print(exc, flush=True)
        sys.exit(7)
""")


def _start_holder(home: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(home)],  # noqa: S603
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_launcher_is_refused_with_a_clear_message(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        with pytest.raises(LauncherBusyError) as info, exclusive_launcher(tmp_path):
            pytest.fail("the lock should not be acquired")  # pragma: no cover
        msg = str(info.value)
        assert f"another launcher (pid {holder.pid}, started at " in msg
        assert "rlaunch rapidfire" in msg
        assert "it serves one launcher at a time: wait for it, or use MongoDB" in msg
        assert "docker-compose.yml / launchpad_configs/my_launchpad_mongodb.yaml" in msg
        assert isinstance(info.value, CgflowError)
        assert lock_holder(tmp_path)["pid"] == holder.pid
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        holder.stdout.close()
    assert lock_holder(tmp_path) is None
    with exclusive_launcher(tmp_path) as held:  # released: free again
        assert held is True
        assert lock_holder(tmp_path)["pid"] == os.getpid()


def test_a_launcher_in_another_process_is_refused_while_this_one_holds(tmp_path):
    with exclusive_launcher(tmp_path, label="cgflow launch"):
        out = subprocess.run([sys.executable, "-c", _TRY, str(tmp_path)],  # noqa: S603
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 7, out.stderr
        assert f"another launcher (pid {os.getpid()}" in out.stdout
        assert "cgflow launch" in out.stdout
    out = subprocess.run([sys.executable, "-c", _TRY, str(tmp_path)],  # noqa: S603
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "acquired"


def test_a_killed_launcher_leaves_no_lock_behind(tmp_path):
    holder = _start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    holder.stdin.close()
    holder.stdout.close()
    assert lock_holder(tmp_path) is None
    with exclusive_launcher(tmp_path) as held:
        assert held


def test_waiting_for_a_busy_lock_times_out(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        with pytest.raises(LauncherBusyError), exclusive_launcher(tmp_path, wait_s=0.5):
            pass  # pragma: no cover
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


def test_is_embedded_matches_the_recorded_server_only(tmp_path):
    assert is_embedded(f"mongodb://127.0.0.1:{PORT}/cgflow", home=tmp_path) is False  # none yet
    _record_server(tmp_path)
    assert is_embedded(f"mongodb://127.0.0.1:{PORT}/cgflow?directConnection=true", home=tmp_path)
    assert is_embedded(f"mongodb://localhost:{PORT}/", home=tmp_path)
    assert not is_embedded(f"mongodb://127.0.0.1:{PORT + 1}/", home=tmp_path)
    assert not is_embedded(f"mongodb://db.example.org:{PORT}/", home=tmp_path)
    assert not is_embedded("mongodb://u:p@localhost:27017/cgflow?authSource=admin", home=tmp_path)
    assert not is_embedded(f"mongodb://127.0.0.1:{PORT},127.0.0.1:9/", home=tmp_path)
    assert not is_embedded("mongodb+srv://cluster.example.org/cgflow", home=tmp_path)


def test_the_lock_follows_the_target_uri_or_launchpad(tmp_path):
    uri = _record_server(tmp_path)
    lock_file = tmp_path / "db" / "launcher.lock"
    with exclusive_launcher("mongodb://localhost:27017/cgflow", home=tmp_path) as held:
        assert held is False  # MongoDB: parallel launchers are fine
    assert not lock_file.exists()

    holder = _start_holder(tmp_path)
    try:
        with pytest.raises(LauncherBusyError), exclusive_launcher(uri, home=tmp_path):
            pass  # pragma: no cover
        lp_file = tmp_path / "my_launchpad.yaml"
        lp_file.write_text(yaml.safe_dump({"host": uri.replace("/?", "/cgflow?"),
                                           "name": "cgflow", "uri_mode": True}))
        assert launchpad_file_uri(lp_file).startswith(f"mongodb://127.0.0.1:{PORT}/cgflow")
        with pytest.raises(LauncherBusyError), exclusive_launcher(lp_file, home=tmp_path):
            pass  # pragma: no cover
        mongo_file = tmp_path / "mongodb.yaml"
        mongo_file.write_text(yaml.safe_dump({"host": "localhost", "port": 27017,
                                              "name": "cgflow"}))
        with exclusive_launcher(mongo_file, home=tmp_path) as held:
            assert held is False

        class FakeLaunchPad:  # what exclusive_launcher reads from a FireWorks LaunchPad
            host, port, uri_mode = "127.0.0.1", PORT, False

        with pytest.raises(LauncherBusyError), exclusive_launcher(FakeLaunchPad(),
                                                                  home=tmp_path):
            pass  # pragma: no cover
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


def test_default_home_is_used_without_arguments(cgflow_home):
    with exclusive_launcher() as held:
        assert held is True
        assert (cgflow_home / "db" / "launcher.lock").exists()
        assert lock_holder()["pid"] == os.getpid()


_SHARER = textwrap.dedent("""
    import subprocess, sys
    from pathlib import Path
    from cgflow.db.launcher_lock import launcher_lock
    with launcher_lock(Path(sys.argv[1]), label="cgflow launch") as lock:
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                  pass_fds=(lock.inheritable_fd(),))
        lock.record_worker(worker.pid)
        print(worker.pid, flush=True)
        sys.stdin.read()
""")


def test_a_worker_given_the_lock_keeps_it_after_its_launcher_is_killed(tmp_path):
    launcher = subprocess.Popen([sys.executable, "-c", _SHARER, str(tmp_path)],  # noqa: S603
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    worker_pid = int(launcher.stdout.readline())
    try:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=30)
        assert lock_holder(tmp_path)["worker_pid"] == worker_pid
        with pytest.raises(LauncherBusyError) as info, exclusive_launcher(tmp_path):
            pytest.fail("the worker still holds the lock")  # pragma: no cover
        assert f"its worker rlaunch pid {worker_pid}" in str(info.value)
        assert f"pid {launcher.pid}" in str(info.value)
    finally:
        os.kill(worker_pid, signal.SIGKILL)
        launcher.stdin.close()
        launcher.stdout.close()
    deadline = time.monotonic() + 30
    while lock_holder(tmp_path) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    with exclusive_launcher(tmp_path) as held:  # both gone: free again
        assert held is True
    assert (tmp_path / "db" / "launcher.lock").stat().st_mode & 0o777 == 0o600
