"""Lifecycle of the embedded job database: a SecantusDB server run as its own process.

SecantusDB speaks the MongoDB wire protocol, so FireWorks (``lpad``, ``rlaunch``) and
:class:`cgflow.db.store.Store` use it exactly like MongoDB. It is an optional extra
(``pip install 'cgflow[embedded]'``) under the GPL-2.0: cgflow never imports it, it only
runs its ``secantusd-py`` command as a separate, detached process and talks to it over
TCP.

Files, all under ``<cgflow home>/db/`` (see :func:`cgflow.settings.cgflow_home`):

``data/``
    The server's storage (WiredTiger), kept across restarts.
``server.json``
    State of the running server: pid, host, port, uri, started_at (UTC, ISO 8601),
    data_dir, log_file. Written when the server answers a ``ping``, removed by
    :meth:`EmbeddedServer.stop`. A state file whose process is gone is *stale* and is
    ignored (and cleaned up by :meth:`~EmbeddedServer.start` / :meth:`~EmbeddedServer.stop`).
``server.log``
    The server's standard output and error, appended across starts.
``server.lock``
    An ``fcntl`` lock that serialises :meth:`~EmbeddedServer.start` and
    :meth:`~EmbeddedServer.stop` between processes.
``secantusd.toml``
    The server's configuration file, passed with ``--config`` so that no configuration
    file elsewhere on the machine is picked up. Created empty (comments only); the
    command-line flags set by cgflow take precedence over it.

The server always runs with ``--sync-on-commit`` (every acknowledged write is on disk,
so killing the server loses nothing acknowledged). Known limits of the embedded server,
which is why MongoDB (``docker-compose.yml``) is the production target:

* it serves one FireWorks launcher at a time (see :mod:`cgflow.db.launcher_lock`);
* it is a single Python process that slows down over hours of use; :meth:`restart` helps.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cgflow.errors import CgflowError
from cgflow.settings import cgflow_home

#: Command of the embedded server (installed by ``pip install 'cgflow[embedded]'``).
SERVER_COMMAND = "secantusd-py"
#: Port tried first when none is given; the next free one is used if it is taken.
DEFAULT_PORT = 27117
#: How many ports above the first one are tried when the port is chosen automatically.
PORT_SEARCH_SPAN = 50
#: Hosts that mean "this machine" in a MongoDB URI.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

_INSTALL_HINT = (
    "the embedded job database needs SecantusDB's command 'secantusd-py', which was not "
    "found (neither on PATH nor next to the Python interpreter). Install it with "
    "pip install 'cgflow[embedded]', or use MongoDB instead (docker-compose.yml and "
    "launchpad_configs/my_launchpad_mongodb.yaml)"
)

_CONFIG_TEXT = """\
# Configuration of cgflow's embedded job database (SecantusDB).
# cgflow passes --host, --port, --storage-path, --sync-on-commit and --log-level on the
# command line; those flags take precedence over this file. Other settings (for example
# cache_size = "512M") may be added here; see `secantusd-py --help`.
"""

# Children started by this process, kept so that they can be reaped when stopped here.
_CHILDREN: dict[int, subprocess.Popen] = {}


class EmbeddedServerError(CgflowError, RuntimeError):
    """The embedded job database could not be started, reached or stopped."""


class EmbeddedServerNotInstalledError(EmbeddedServerError):
    """The ``secantusd-py`` command of the optional extra ``cgflow[embedded]`` is missing."""


@dataclass(frozen=True)
class ServerStatus:
    """What is known about the embedded server of one cgflow home.

    Attributes
    ----------
    running
        The process recorded in the state file is alive.
    responding
        It answered a ``ping`` (``None`` when not running, so not asked).
    pid, port, uri, started_at
        From the state file (``None`` when there is none, or it is stale).
    data_dir, log_file, state_file
        Where the server keeps its data, log and state.
    stale
        A state file was found whose process is gone.
    """

    running: bool
    responding: bool | None
    pid: int | None
    port: int | None
    uri: str | None
    started_at: str | None
    data_dir: Path
    log_file: Path
    state_file: Path
    stale: bool = False

    def describe(self) -> str:
        """A few human-readable lines for the command line."""
        if self.running:
            health = "responding" if self.responding else "NOT responding to ping"
            lines = [f"embedded job database: running ({health}), pid {self.pid}",
                     f"  uri:        {self.uri}", f"  started at: {self.started_at}"]
        else:
            lines = ["embedded job database: not running"
                     + (" (stale state file removed on next start/stop)" if self.stale else "")]
        lines += [f"  data:       {self.data_dir}", f"  log:        {self.log_file}"]
        return "\n".join(lines)


def find_server_command() -> str | None:
    """Path of ``secantusd-py``: on ``PATH``, else next to ``sys.executable`` (a venv's bin)."""
    found = shutil.which(SERVER_COMMAND)
    if found:
        return found
    candidate = Path(sys.executable).parent / SERVER_COMMAND
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return None


def make_uri(host: str, port: int) -> str:
    """``mongodb://HOST:PORT/?directConnection=true`` for a server on ``host``.

    A wildcard bind address (``0.0.0.0``, ``::``, empty) is reached via 127.0.0.1.
    ``directConnection=true`` is needed because the server advertises itself as a
    single-node replica set.
    """
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"mongodb://{host}:{port}/?directConnection=true"


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port`` (a TCP bind with ``SO_REUSEADDR`` succeeds).

    ``SO_REUSEADDR`` matches how the server binds, so a port whose last connections are
    in TIME_WAIT after a stop counts as free and a restart keeps its port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ping(uri: str, timeout_s: float = 1.0) -> bool:
    """Whether a MongoDB-protocol server at ``uri`` answers ``ping`` within ``timeout_s``."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    ms = max(int(timeout_s * 1000), 50)
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                                      socketTimeoutMS=max(ms, 2000))
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a server started by this
    process is reaped when it has exited)."""
    if pid <= 0:
        return False
    proc = _CHILDREN.get(pid)
    if proc is not None:  # started by this process: poll() also reaps it
        if proc.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # state is the field after the parenthesised command name
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    return True


def _is_server_process(pid: int) -> bool:
    """Whether ``pid`` runs the server command (guards against a recycled pid).

    Where ``/proc`` is unavailable, any live process is accepted.
    """
    if not pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return not Path("/proc/self").exists()
    return any(SERVER_COMMAND.encode() in a for a in args)


def tail(path: Path, n_lines: int = 30) -> str:
    """The last ``n_lines`` of a text file ("" when it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(size - 64_000, 0))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-n_lines:])


@contextlib.contextmanager
def file_lock(path: Path, timeout_s: float, *, mode: int = 0o600, poll_s: float = 0.1,
              busy: Callable[[], Exception] | None = None) -> Iterator[int]:
    """Hold an exclusive ``fcntl.flock`` on ``path``, waiting at most ``timeout_s``.

    Yields the lock file's descriptor (the holder may record itself in it). ``busy``
    makes the error raised when the lock is still held after ``timeout_s``.

    Raises
    ------
    EmbeddedServerError
        When the lock is still held by another process after ``timeout_s`` (unless
        ``busy`` says otherwise).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    raise (busy() if busy is not None else EmbeddedServerError(
                        f"timed out after {timeout_s:.0f} s waiting for the lock {path}: "
                        "another cgflow process is starting or stopping the embedded job "
                        "database")) from None
                time.sleep(poll_s)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


class EmbeddedServer:
    """Start, stop and inspect the embedded job database of a cgflow home.

    Parameters
    ----------
    home
        The cgflow home (default :func:`cgflow.settings.cgflow_home`); everything lives in
        ``<home>/db/``.
    host
        Address the server binds to. Keep the default 127.0.0.1: the server has no
        authentication.
    port
        TCP port. ``None``: :data:`DEFAULT_PORT` or the next free one. An explicit port
        that is taken is an error.
    command
        The server command (default :func:`find_server_command`).
    log_level
        The server's log level (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``).
    """

    def __init__(self, home: Path | None = None, host: str = "127.0.0.1",
                 port: int | None = None, command: str | None = None,
                 log_level: str = "INFO") -> None:
        self.home = Path(home).expanduser() if home is not None else cgflow_home()
        self.host = host
        self.port = port
        self.command = command
        self.log_level = log_level
        self.db_dir = self.home / "db"
        self.data_dir = self.db_dir / "data"
        self.state_file = self.db_dir / "server.json"
        self.log_file = self.db_dir / "server.log"
        self.lock_file = self.db_dir / "server.lock"
        self.config_file = self.db_dir / "secantusd.toml"

    def __repr__(self) -> str:
        return f"EmbeddedServer(home={str(self.home)!r}, host={self.host!r}, port={self.port!r})"

    # --- state ---------------------------------------------------------------------------

    def read_state(self) -> dict[str, Any] | None:
        """The state file's content, or ``None`` when missing or unreadable."""
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None

    def _live_state(self) -> tuple[dict[str, Any] | None, bool]:
        """(state of a live server or None, whether a stale state file was found)."""
        state = self.read_state()
        if state is None:
            return None, self.state_file.exists()
        if _is_server_process(state["pid"]):
            return state, False
        return None, True

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)

    def _remove_state(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    @property
    def uri(self) -> str:
        """URI of the running server (from the state file), else of the configured port."""
        state, _ = self._live_state()
        if state is not None:
            return str(state["uri"])
        return make_uri(self.host, self.port if self.port is not None else DEFAULT_PORT)

    def status(self, ping_timeout_s: float = 1.0) -> ServerStatus:
        """Whether the server runs (and answers ``ping``), with its pid, uri and files."""
        state, stale = self._live_state()
        common = dict(data_dir=self.data_dir, log_file=self.log_file,
                      state_file=self.state_file)
        if state is None:
            return ServerStatus(running=False, responding=None, pid=None, port=None, uri=None,
                                started_at=None, stale=stale, **common)
        return ServerStatus(
            running=True, responding=ping(state["uri"], ping_timeout_s), pid=state["pid"],
            port=state.get("port"), uri=state["uri"], started_at=state.get("started_at"),
            **common,
        )

    # --- start / stop ----------------------------------------------------------------------

    def start(self, wait_s: float = 30.0) -> str:
        """Start the server (detached) unless it already runs; return its URI.

        Idempotent: a running server that answers ``ping`` is left alone. Safe against
        concurrent calls from several processes (file lock). The server is started in a
        new session, so it outlives the process that started it.

        Parameters
        ----------
        wait_s
            How long to wait for the new server to answer ``ping`` (seconds).

        Raises
        ------
        EmbeddedServerNotInstalledError
            When ``secantusd-py`` is not installed.
        EmbeddedServerError
            When the port is taken, the server exits or does not answer in time (with
            the tail of the server log), or a recorded server does not answer.
        """
        command = self.command or find_server_command()
        if command is None:
            raise EmbeddedServerNotInstalledError(_INSTALL_HINT)
        self.db_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.lock_file, timeout_s=wait_s + 30.0):
            state, stale = self._live_state()
            if state is not None:
                if self._wait_for_ping(state["uri"], state["pid"], wait_s):
                    return str(state["uri"])
                raise EmbeddedServerError(
                    f"the embedded job database (pid {state['pid']}, {state['uri']}) is running "
                    f"but does not answer ping after {wait_s:.0f} s; stop it (cgflow db stop) "
                    f"and start it again. Server log {self.log_file}, last lines:\n"
                    + tail(self.log_file)
                )
            if stale:
                self._remove_state()
            if not self.config_file.exists():
                self.config_file.write_text(_CONFIG_TEXT)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self.port is not None:
                if not port_is_free(self.host, self.port):
                    raise EmbeddedServerError(
                        f"cannot start the embedded job database: port {self.port} on "
                        f"{self.host} is already in use; choose another port"
                    )
                return self._launch(command, self.port, wait_s)
            last_error: EmbeddedServerError | None = None
            for port in range(DEFAULT_PORT, DEFAULT_PORT + PORT_SEARCH_SPAN):
                if not port_is_free(self.host, port):
                    continue
                try:
                    return self._launch(command, port, wait_s)
                except _PortTakenError as exc:  # lost a race for the port: try the next one
                    last_error = exc
            raise last_error or EmbeddedServerError(
                f"cannot start the embedded job database: no free port in "
                f"{DEFAULT_PORT}-{DEFAULT_PORT + PORT_SEARCH_SPAN - 1} on {self.host}"
            )

    def _launch(self, command: str, port: int, wait_s: float) -> str:
        uri = make_uri(self.host, port)
        args = [command, "--config", str(self.config_file), "--host", self.host,
                "--port", str(port), "--storage-path", str(self.data_dir),
                "--sync-on-commit", "--log-level", self.log_level]
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log:
            log.write(f"--- {_utc_iso()} cgflow: starting {' '.join(args)}\n".encode())
            log.flush()
            proc = subprocess.Popen(  # noqa: S603 (fixed argument list, no shell)
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.db_dir, start_new_session=True, close_fds=True,
            )
        _CHILDREN[proc.pid] = proc
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _CHILDREN.pop(proc.pid, None)
                new_log = _read_from(self.log_file, log_offset)
                taken = "Address already in use" in new_log
                raise (_PortTakenError if taken else EmbeddedServerError)(
                    f"the embedded job database exited with code {proc.returncode} while "
                    f"starting ({' '.join(args)}). Server log {self.log_file}, last lines:\n"
                    + "\n".join(new_log.splitlines()[-30:])
                )
            if ping(uri, timeout_s=0.5):
                self._write_state({
                    "pid": proc.pid, "host": self.host, "port": port, "uri": uri,
                    "started_at": _utc_iso(), "data_dir": str(self.data_dir),
                    "log_file": str(self.log_file), "command": args,
                })
                return uri
            time.sleep(0.2)
        self._terminate(proc.pid, timeout_s=10.0)
        raise EmbeddedServerError(
            f"the embedded job database did not answer ping at {uri} within {wait_s:.0f} s "
            f"and was stopped. Server log {self.log_file}, last lines:\n"
            + "\n".join(_read_from(self.log_file, log_offset).splitlines()[-30:])
        )

    def _wait_for_ping(self, uri: str, pid: int, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        while True:
            if ping(uri, timeout_s=1.0):
                return True
            if time.monotonic() > deadline or not pid_alive(pid):
                return False
            time.sleep(0.2)

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout_s``; remove the state file.

        Returns
        -------
        bool
            ``True`` if a running server was stopped, ``False`` if none was running (a
            stale state file is removed all the same).

        Raises
        ------
        EmbeddedServerError
            When the process survives SIGKILL (it then keeps its state file).
        """
        self.db_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.lock_file, timeout_s=timeout_s + 60.0):
            state, stale = self._live_state()
            if state is None:
                if stale:
                    self._remove_state()
                return False
            self._terminate(state["pid"], timeout_s)
            self._remove_state()
            with open(self.log_file, "ab") as log:
                log.write(f"--- {_utc_iso()} cgflow: stopped pid {state['pid']}\n".encode())
            return True

    def restart(self, wait_s: float = 30.0, timeout_s: float = 20.0) -> str:
        """Stop (if running) and start again, keeping the port when it is still free."""
        state, _ = self._live_state()
        self.stop(timeout_s=timeout_s)
        if state is not None and self.port is None and port_is_free(self.host, state["port"]):
            return EmbeddedServer(self.home, self.host, state["port"], self.command,
                                  self.log_level).start(wait_s)
        return self.start(wait_s)

    def _terminate(self, pid: int, timeout_s: float) -> None:
        for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
            _signal(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not pid_alive(pid):
                    self._reap(pid)
                    return
                time.sleep(0.1)
        raise EmbeddedServerError(
            f"the embedded job database (pid {pid}) did not exit after SIGTERM and SIGKILL"
        )

    @staticmethod
    def _reap(pid: int) -> None:
        proc = _CHILDREN.pop(pid, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)


class _PortTakenError(EmbeddedServerError):
    """The server could not bind its port (another process took it meanwhile)."""


def _signal(pid: int, sig: int) -> None:
    """Send ``sig`` to the server's process group (it leads its own session), else to it."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _utc_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
