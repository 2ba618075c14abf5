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
``credentials.json``
    The user and password of the server's authentication (see below).

Security
--------
Anyone who can write to a FireWorks job database can make the next launcher run any
command (a ``ScriptTask``), so the embedded server is private to the user who starts it:

* **authentication** (SecantusDB's ``--auth``: SCRAM-SHA-256, checked on every command
  but the handshake and ``ping``). On the first start of a data folder (or of one made
  by an older cgflow without authentication) cgflow generates a password
  (:func:`secrets.token_urlsafe`), creates the user :data:`AUTH_USERNAME` with the role
  ``root`` in ``admin``, and writes ``credentials.json``. SecantusDB creates users only
  through ``createUser`` on a running server and has no localhost exception, so the user
  is created on a *bootstrap* server that accepts only mutual TLS: a throwaway,
  self-signed server and client certificate made with ``openssl`` in a private
  temporary folder, so that no other process can connect while no user exists, and
  the password is sent only to the server whose certificate cgflow made. The server is
  then restarted with ``--auth``. Clients use :meth:`EmbeddedServer.client_uri` or the
  launchpad files of :func:`cgflow.orchestration.fw_configs.write_embedded_configs`.
* **owner-only files**: ``<home>/db`` and the data folder are 0700, every file cgflow
  writes there 0600, and the server runs with umask 077.
* **loopback only**: the server listens on 127.0.0.1 (or ::1); other hosts are refused.

The server always runs with ``--sync-on-commit`` (every acknowledged write is on disk,
so killing the server loses nothing acknowledged). Known limits of the embedded server,
which is why MongoDB (``docker-compose.yml``) is the production target:

* it serves one FireWorks launcher at a time (see :mod:`cgflow.db.launcher_lock`);
* it is a single Python process that slows down over hours of use; :meth:`restart` helps;
* it has one user: everyone with the credentials file (the owner) may do anything.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cgflow.errors import CgflowError, InvalidInputError
from cgflow.settings import cgflow_home

#: Command of the embedded server (installed by ``pip install 'cgflow[embedded]'``).
SERVER_COMMAND = "secantusd-py"
#: Port tried first when none is given; the next free one is used if it is taken.
DEFAULT_PORT = 27117
#: How many ports above the first one are tried when the port is chosen automatically.
PORT_SEARCH_SPAN = 50
#: Hosts that mean "this machine" in a MongoDB URI.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: The user that cgflow creates on the embedded server (role ``root`` in ``admin``).
AUTH_USERNAME = "cgflow"
#: The database that holds that user (``authSource`` of a client).
AUTH_SOURCE = "admin"
#: Modes of what cgflow writes under ``<home>/db``: owner only.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

_INSTALL_HINT = (
    "the embedded job database needs SecantusDB's command 'secantusd-py', which was not "
    "found (neither on PATH nor next to the Python interpreter). Install it with "
    "pip install 'cgflow[embedded]', or use MongoDB instead (docker-compose.yml and "
    "launchpad_configs/my_launchpad_mongodb.yaml)"
)

_CONFIG_TEXT = """\
# Configuration of cgflow's embedded job database (SecantusDB).
# cgflow passes --host, --port, --storage-path, --sync-on-commit, --log-level and --auth
# on the command line; those flags take precedence over this file. Other settings (for
# example cache_size = "512M") may be added here; see `secantusd-py --help`.
"""

_OPENSSL_HINT = (
    "setting up the embedded job database's authentication needs the 'openssl' command "
    "(for the private certificates of its one-off bootstrap server), which was not found "
    "on PATH. Install it (Debian: apt-get install openssl) and start again"
)

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
    auth
        The running server requires authentication (``None`` when not running).
    credentials_file
        Where the user and password are kept (owner only).
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
    auth: bool | None = None
    credentials_file: Path | None = None

    def describe(self) -> str:
        """A few human-readable lines for the command line (never the password)."""
        if self.running:
            health = "responding" if self.responding else "NOT responding to ping"
            auth = (f"on (SCRAM-SHA-256, user {AUTH_USERNAME}, credentials in "
                    f"{self.credentials_file})" if self.auth else "OFF")
            lines = [f"embedded job database: running ({health}), pid {self.pid}",
                     f"  uri:        {self.uri}", f"  started at: {self.started_at}",
                     f"  auth:       {auth}"]
        else:
            lines = ["embedded job database: not running"
                     + (" (stale state file removed on next start/stop)" if self.stale else "")]
        lines += [f"  data:       {self.data_dir}", f"  log:        {self.log_file}"]
        return "\n".join(lines)


@dataclass(frozen=True)
class Credentials:
    """The user of the embedded server's authentication; the password is never shown."""

    username: str
    password: str = field(repr=False)
    auth_source: str = AUTH_SOURCE

    @classmethod
    def generate(cls) -> Credentials:
        """A new password (32 random URL-safe characters) for :data:`AUTH_USERNAME`."""
        return cls(AUTH_USERNAME, secrets.token_urlsafe(24))


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable and writable by the owner only.

    The content goes to a temporary file created with mode 0600 in the same folder,
    which then replaces ``path``: nobody else can read it at any moment, and a reader
    sees the old or the new content, never a half-written one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_private(path: Path, *, recursive: bool = False) -> None:
    """Make a folder 0700 (and, with ``recursive``, everything in it 0700/0600) or a file
    0600. Missing paths are left alone."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir():
            os.chmod(path, PRIVATE_DIR_MODE)
            if recursive:
                for root, dirs, files in os.walk(path):
                    for d in dirs:
                        os.chmod(os.path.join(root, d), PRIVATE_DIR_MODE)
                    for f in files:
                        with contextlib.suppress(FileNotFoundError):
                            os.chmod(os.path.join(root, f), PRIVATE_FILE_MODE)
        else:
            os.chmod(path, PRIVATE_FILE_MODE)


def _open_private_log(path: Path) -> Any:
    """``path`` opened for appending (binary), created with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "ab")


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


def ping(uri: str, timeout_s: float = 1.0, **client_kwargs: Any) -> bool:
    """Whether a MongoDB-protocol server at ``uri`` answers ``ping`` within ``timeout_s``.

    ``ping`` needs no authentication, so this says whether a server listens, not whether
    a client may use it. ``client_kwargs`` go to ``MongoClient`` (e.g. TLS options).
    """
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    ms = max(int(timeout_s * 1000), 50)
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                                      socketTimeoutMS=max(ms, 2000), **client_kwargs)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def with_credentials(uri: str, credentials: Credentials | None,
                     db_name: str | None = None) -> str:
    """``uri`` (``mongodb://host:port/?options``) with ``credentials`` and their
    ``authSource``, and ``db_name`` as its database when given. Unchanged without
    credentials (apart from the database)."""
    scheme, _, rest = uri.partition("://")
    hostport, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    opts = [o for o in query.split("&") if o and not o.lower().startswith("authsource=")]
    if credentials is not None:
        hostport = (f"{quote(credentials.username, safe='')}:"
                    f"{quote(credentials.password, safe='')}@{hostport.rsplit('@', 1)[-1]}")
        opts.append(f"authSource={quote(credentials.auth_source, safe='')}")
    out = f"{scheme}://{hostport}/{db_name if db_name is not None else path}"
    return out + (f"?{'&'.join(opts)}" if opts else "")


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
        Address the server binds to: this machine only (127.0.0.1, ``localhost`` or ::1).
    port
        TCP port. ``None``: :data:`DEFAULT_PORT` or the next free one. An explicit port
        that is taken is an error.
    command
        The server command (default :func:`find_server_command`).
    log_level
        The server's log level (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``).
    auth
        Require authentication (default). ``False`` runs the server open to every local
        process, as cgflow did before; only for trials on a single-user machine.

    Raises
    ------
    InvalidInputError
        When ``host`` is not a loopback address.
    """

    def __init__(self, home: Path | None = None, host: str = "127.0.0.1",
                 port: int | None = None, command: str | None = None,
                 log_level: str = "INFO", auth: bool = True) -> None:
        if host not in LOOPBACK_HOSTS:
            raise InvalidInputError(
                f"field 'host': value {host!r}: the embedded job database listens on this "
                "machine only (127.0.0.1, localhost or ::1); for clients on other hosts use "
                "MongoDB (docker-compose.yml, launchpad_configs/my_launchpad_mongodb.yaml)")
        self.home = Path(home).expanduser() if home is not None else cgflow_home()
        self.host = host
        self.port = port
        self.command = command
        self.log_level = log_level
        self.auth = auth
        self.db_dir = self.home / "db"
        self.data_dir = self.db_dir / "data"
        self.state_file = self.db_dir / "server.json"
        self.log_file = self.db_dir / "server.log"
        self.lock_file = self.db_dir / "server.lock"
        self.config_file = self.db_dir / "secantusd.toml"
        self.credentials_file = self.db_dir / "credentials.json"

    def __repr__(self) -> str:
        return (f"EmbeddedServer(home={str(self.home)!r}, host={self.host!r}, "
                f"port={self.port!r}, auth={self.auth!r})")

    # --- credentials -----------------------------------------------------------------------

    def credentials(self) -> Credentials | None:
        """The user and password of the server's authentication (``None`` before the
        first start with authentication, or when the file is unreadable)."""
        try:
            data = json.loads(self.credentials_file.read_text())
            return Credentials(str(data["username"]), str(data["password"]),
                               str(data.get("auth_source", AUTH_SOURCE)))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def client_uri(self, db_name: str | None = None) -> str:
        """The URI a client connects with: :attr:`uri` with the credentials (when the
        server requires them) and ``db_name`` as its database. Keep it out of logs."""
        state, _ = self._live_state()
        needs = state.get("auth", False) if state is not None else self.auth
        return with_credentials(self.uri, self.credentials() if needs else None, db_name)

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
        write_private_file(self.state_file, json.dumps(state, indent=2) + "\n")

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
            auth=bool(state.get("auth", False)), credentials_file=self.credentials_file,
            **common,
        )

    def secure_files(self) -> None:
        """Make ``<home>/db`` owner-only: the folder and the data folder 0700 (the data
        recursively, once, for a folder made before cgflow did this), cgflow's files
        0600."""
        self.db_dir.mkdir(parents=True, exist_ok=True)
        make_private(self.db_dir)
        if self.data_dir.exists() and (self.data_dir.stat().st_mode & 0o777) != PRIVATE_DIR_MODE:
            make_private(self.data_dir, recursive=True)
        for path in self.db_dir.iterdir():  # state, log, locks, config, credentials
            if path.is_file() and not path.is_symlink():
                make_private(path)

    # --- start / stop ----------------------------------------------------------------------

    def start(self, wait_s: float = 30.0) -> str:
        """Start the server (detached) unless it already runs; return its URI.

        Idempotent: a running server that answers ``ping`` is left alone. Safe against
        concurrent calls from several processes (file lock). The server is started in a
        new session, so it outlives the process that started it. Without an explicit
        port, a server that died (a stale state file) is started again on its port if
        that is free, so that its clients find it there. With ``auth`` (the
        default) the first start of a data folder creates its user and
        ``credentials.json`` (see the module docstring); the URI returned never holds
        the password (:meth:`client_uri` does).

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
            the tail of the server log), a recorded server does not answer, a running
            server was started without the authentication asked for, the credentials
            are refused, or ``openssl`` is missing for setting authentication up.
        """
        command = self.command or find_server_command()
        if command is None:
            raise EmbeddedServerNotInstalledError(_INSTALL_HINT)
        self.secure_files()
        with file_lock(self.lock_file, timeout_s=wait_s + 30.0):
            state, stale = self._live_state()
            if state is not None:
                if self.auth and not state.get("auth", False):
                    raise EmbeddedServerError(
                        f"the embedded job database (pid {state['pid']}, {state['uri']}) runs "
                        "without authentication (started by an older cgflow or with "
                        "auth=False): any local process can use it. Stop it (cgflow db stop) "
                        "and start it again (cgflow db start) to turn authentication on")
                if self._wait_for_ping(state["uri"], state["pid"], wait_s):
                    return str(state["uri"])
                raise EmbeddedServerError(
                    f"the embedded job database (pid {state['pid']}, {state['uri']}) is running "
                    f"but does not answer ping after {wait_s:.0f} s; stop it (cgflow db stop) "
                    f"and start it again. Server log {self.log_file}, last lines:\n"
                    + tail(self.log_file)
                )
            previous_port = (self.read_state() or {}).get("port") if stale else None
            if stale:
                self._remove_state()
            if not self.config_file.exists():
                write_private_file(self.config_file, _CONFIG_TEXT)
            if self.port is not None and not port_is_free(self.host, self.port):
                raise EmbeddedServerError(
                    f"cannot start the embedded job database: port {self.port} on "
                    f"{self.host} is already in use; choose another port"
                )
            fresh = not self.data_dir.exists() or not any(self.data_dir.iterdir())
            self.data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            if self.auth and (fresh or self.credentials() is None):
                self._provision(command, wait_s)
            if self.port is not None:
                return self._launch(command, self.port, wait_s)
            last_error: EmbeddedServerError | None = None
            # the port of a server that died first: its clients (a running launcher, its
            # rlaunch) wait for it there and go on when it is back
            ports = list(range(DEFAULT_PORT, DEFAULT_PORT + PORT_SEARCH_SPAN))
            if isinstance(previous_port, int) and 0 < previous_port < 65536:
                ports = [previous_port] + [q for q in ports if q != previous_port]
            for port in ports:
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

    def _base_args(self, command: str, port: int) -> list[str]:
        return [command, "--config", str(self.config_file), "--host", self.host,
                "--port", str(port), "--storage-path", str(self.data_dir),
                "--sync-on-commit", "--log-level", self.log_level]

    def _spawn(self, args: list[str], what: str) -> tuple[subprocess.Popen, int]:
        """Start the server process (own session, umask 077); (process, log offset)."""
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with _open_private_log(self.log_file) as log:
            log.write(f"--- {_utc_iso()} cgflow: starting {what}: {' '.join(args)}\n".encode())
            log.flush()
            proc = subprocess.Popen(  # noqa: S603 (fixed argument list, no shell)
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.db_dir, start_new_session=True, close_fds=True, umask=0o077,
            )
        _CHILDREN[proc.pid] = proc
        return proc, log_offset

    def _await_ping(self, proc: subprocess.Popen, args: list[str], uri: str, wait_s: float,
                    log_offset: int, **client_kwargs: Any) -> None:
        """Wait until the new server answers ``ping``; stop it and raise if it does not."""
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
            if ping(uri, timeout_s=0.5, **client_kwargs):
                return
            time.sleep(0.2)
        self._terminate(proc.pid, timeout_s=10.0)
        raise EmbeddedServerError(
            f"the embedded job database did not answer ping at {uri} within {wait_s:.0f} s "
            f"and was stopped. Server log {self.log_file}, last lines:\n"
            + "\n".join(_read_from(self.log_file, log_offset).splitlines()[-30:])
        )

    def _launch(self, command: str, port: int, wait_s: float) -> str:
        uri = make_uri(self.host, port)
        args = self._base_args(command, port) + (["--auth"] if self.auth else [])
        proc, log_offset = self._spawn(args, "the job database")
        self._await_ping(proc, args, uri, wait_s, log_offset)
        if self.auth:
            self._check_credentials(proc, uri)
        self._write_state({
            "pid": proc.pid, "host": self.host, "port": port, "uri": uri,
            "started_at": _utc_iso(), "data_dir": str(self.data_dir),
            "log_file": str(self.log_file), "command": args, "auth": self.auth,
            "credentials_file": str(self.credentials_file) if self.auth else None,
        })
        return uri

    def _check_credentials(self, proc: subprocess.Popen, uri: str) -> None:
        """Stop the new server and raise unless the stored credentials are accepted."""
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient = MongoClient(
            with_credentials(uri, self.credentials()), serverSelectionTimeoutMS=10_000)
        try:
            client.admin.command("listDatabases", nameOnly=True)
        except PyMongoError as exc:
            self._terminate(proc.pid, timeout_s=10.0)
            raise EmbeddedServerError(
                f"the embedded job database refused the credentials in "
                f"{self.credentials_file} ({type(exc).__name__}: {getattr(exc, 'code', '')}) "
                "and was stopped. If its data folder was replaced by one made elsewhere, "
                "restore that folder's credentials file, or move the credentials file away to "
                "set a new user up (the data of a folder made elsewhere stays behind its own "
                "user)") from None
        finally:
            client.close()

    def _provision(self, command: str, wait_s: float) -> None:
        """Create the server's user on a bootstrap server that only a client holding
        this process's throwaway TLS certificate can reach, then write the credentials.

        The password is that of an existing ``credentials.json`` (a data folder replaced
        by an empty one), else a new one; an existing user of that name gets it.
        """
        from pymongo import MongoClient
        from pymongo.errors import OperationFailure, PyMongoError

        creds = self.credentials() or Credentials.generate()
        with tempfile.TemporaryDirectory(dir=self.db_dir, prefix="bootstrap-") as tmp:
            certs = _bootstrap_certificates(Path(tmp), self.host)
            port = _free_port(self.host)
            uri = make_uri(self.host, port) + "&tls=true"
            tls = {"tlsCAFile": str(certs["server_cert"]),
                   "tlsCertificateKeyFile": str(certs["client_pem"])}
            args = self._base_args(command, port) + [
                "--tls-cert-file", str(certs["server_cert"]),
                "--tls-key-file", str(certs["server_key"]),
                "--tls-ca-file", str(certs["client_cert"]), "--tls-require-client-cert"]
            proc, log_offset = self._spawn(args, "bootstrap server (mutual TLS) to create "
                                           f"the user {creds.username!r}")
            try:
                self._await_ping(proc, args, uri, wait_s, log_offset, **tls)
                client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=10_000, **tls)
                try:
                    try:
                        client.admin.command("createUser", creds.username, pwd=creds.password,
                                             roles=["root"])
                    except OperationFailure as exc:
                        if "already exists" not in str(exc):
                            raise
                        client.admin.command("updateUser", creds.username,
                                             pwd=creds.password, roles=["root"])
                finally:
                    client.close()
            except PyMongoError as exc:
                raise EmbeddedServerError(
                    f"could not create the embedded job database's user on its bootstrap "
                    f"server: {type(exc).__name__}: {exc}. Server log {self.log_file}") from None
            finally:
                if pid_alive(proc.pid):
                    self._terminate(proc.pid, timeout_s=20.0)
        write_private_file(self.credentials_file, json.dumps({
            "username": creds.username, "password": creds.password,
            "auth_source": creds.auth_source, "mechanism": "SCRAM-SHA-256",
            "created_at": _utc_iso()}, indent=2) + "\n")
        with _open_private_log(self.log_file) as log:
            log.write(f"--- {_utc_iso()} cgflow: authentication set up: user "
                      f"{creds.username!r}, credentials in {self.credentials_file}\n".encode())

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
            with _open_private_log(self.log_file) as log:
                log.write(f"--- {_utc_iso()} cgflow: stopped pid {state['pid']}\n".encode())
            return True

    def restart(self, wait_s: float = 30.0, timeout_s: float = 20.0) -> str:
        """Stop (if running) and start again, keeping the port when it is still free."""
        state, _ = self._live_state()
        self.stop(timeout_s=timeout_s)
        if state is not None and self.port is None and port_is_free(self.host, state["port"]):
            return EmbeddedServer(self.home, self.host, state["port"], self.command,
                                  self.log_level, auth=self.auth).start(wait_s)
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


def _free_port(host: str) -> int:
    """A TCP port of ``host`` that the operating system reports free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host.strip("[]"), 0))
        return int(sock.getsockname()[1])


def _bootstrap_certificates(folder: Path, host: str) -> dict[str, Path]:
    """A self-signed server certificate for ``host`` and a self-signed client certificate
    (EC P-256, valid one day) in ``folder``, made with ``openssl``; each is the other
    side's only trust anchor.

    Raises
    ------
    EmbeddedServerError
        When ``openssl`` is missing or fails.
    """
    exe = shutil.which("openssl")
    if exe is None:
        raise EmbeddedServerError(_OPENSSL_HINT)
    ip = "127.0.0.1" if host in ("localhost", "127.0.0.1") else host.strip("[]")
    out = {"server_key": folder / "server.key", "server_cert": folder / "server.crt",
           "client_key": folder / "client.key", "client_cert": folder / "client.crt",
           "client_pem": folder / "client.pem"}
    for side, subject, extra in (("server", f"/CN={ip}", ["-addext",
                                                           f"subjectAltName=IP:{ip}"]),
                                 ("client", "/CN=cgflow-bootstrap-client", [])):
        cmd = [exe, "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", subject,
               "-keyout", str(out[f"{side}_key"]), "-out", str(out[f"{side}_cert"]), *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60,  # noqa: S603
                              check=False, umask=0o077)
        if done.returncode != 0:
            raise EmbeddedServerError(
                f"openssl could not make the bootstrap certificates for the embedded job "
                f"database's authentication ({' '.join(cmd[:3])} ...): {done.stderr.strip()}")
    write_private_file(out["client_pem"], out["client_cert"].read_text()
                       + out["client_key"].read_text())
    return out


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
