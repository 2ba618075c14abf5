"""One FireWorks launcher at a time on the embedded job database.

FireWorks hands out Firework and launch ids with ``find_one_and_update``. Under
concurrent clients the embedded server (SecantusDB, see :mod:`cgflow.db.server`) can
return a stale pre-image from that call, so two launchers (``rlaunch``), or an
``lpad add`` during a run, could receive the same id. cgflow therefore lets only one
process at a time launch or add work on the embedded server: :func:`exclusive_launcher`
holds an ``fcntl`` lock on ``<cgflow home>/db/launcher.lock`` for the duration, and a
second process is refused with :class:`LauncherBusyError`. Against MongoDB the lock is
not taken, so any number of launchers may run in parallel.

The lock is released by the operating system when its holder exits, even on SIGKILL,
so a crashed launcher never leaves the database locked. The embedded server listens
on 127.0.0.1 only, so every client that could conflict runs on this machine and a
local file lock covers them all.

**The lock covers the real worker.** ``cgflow launch`` holds the lock in its own process
and hands the locked descriptor to the ``rlaunch`` it starts
(:meth:`LauncherLock.inheritable_fd`, ``subprocess.Popen(pass_fds=...)``). An ``flock``
belongs to the open file description, which both processes then share: the lock is
released only when the last of them has exited, so killing the launcher while its
``rlaunch`` still runs does not let a second launcher in. The holder record in the lock
file names both pids (:meth:`LauncherLock.record_worker`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from cgflow.db.server import LOOPBACK_HOSTS, EmbeddedServer, file_lock, pid_alive
from cgflow.errors import CgflowError
from cgflow.settings import cgflow_home
from cgflow.userfiles import read_yaml_mapping

#: Name of the lock file in ``<cgflow home>/db/``.
LOCK_FILE_NAME = "launcher.lock"


class LauncherBusyError(CgflowError, RuntimeError):
    """Another process holds the embedded job database's launcher lock."""


class LauncherLock:
    """The held launcher lock: its file, descriptor and holder record.

    Attributes
    ----------
    path
        The lock file.
    fd
        The locked descriptor (closed when the lock is left).
    holder
        What the lock file records: ``pid``, ``started_at``, ``label`` and, once a worker
        shares the lock, ``worker_pid``.
    """

    def __init__(self, path: Path, fd: int, holder: dict[str, Any]) -> None:
        self.path = path
        self.fd = fd
        self.holder = holder

    def inheritable_fd(self) -> int:
        """The descriptor to pass to a worker process (``Popen(pass_fds=(fd,))``): the
        worker then holds the same lock for as long as it lives."""
        return self.fd

    def record_worker(self, pid: int | None) -> None:
        """Record (or, with ``None``, forget) the worker process that shares the lock."""
        if pid is None:
            self.holder.pop("worker_pid", None)
        else:
            self.holder["worker_pid"] = int(pid)
        self._write()

    def _write(self) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, (json.dumps(self.holder) + "\n").encode(), 0)


@contextlib.contextmanager
def exclusive_launcher(
    lpad_uri_or_home: str | Path | Any | None = None,
    *,
    home: Path | None = None,
    wait_s: float = 0.0,
    label: str | None = None,
) -> Iterator[bool]:
    """Hold the launcher lock of the embedded job database while the block runs.

    ``True`` is yielded when the lock is held, ``False`` when none was needed (MongoDB);
    :func:`launcher_lock` takes the same arguments and yields the :class:`LauncherLock`.

    Parameters
    ----------
    lpad_uri_or_home
        What the launcher talks to:

        * a MongoDB URI (``str``): the lock is taken only if it points to the embedded
          server recorded in ``home`` (:func:`is_embedded`); for MongoDB nothing is locked;
        * a FireWorks ``LaunchPad`` (any object with ``host``, ``port`` and ``uri_mode``
          attributes): the same, with the URI built from it;
        * a ``Path`` to a file: a FireWorks launchpad file (``my_launchpad.yaml``); the
          same, with the URI read from its ``host`` (and ``port``);
        * a ``Path`` to a directory: a cgflow home whose embedded server is used; the lock
          is always taken;
        * ``None``: the default cgflow home, lock always taken.
    home
        The cgflow home whose state and lock files count (default: the ``Path`` argument,
        else :func:`cgflow.settings.cgflow_home`).
    wait_s
        How long to wait for a busy lock before giving up (default 0: refuse at once).
    label
        What the holder does (e.g. ``"rlaunch rapidfire"``), recorded in the lock file and
        shown to a refused process. Default: the holder's command line.

    Yields
    ------
    bool
        ``True`` if the lock is held, ``False`` if none was needed (MongoDB).

    Raises
    ------
    LauncherBusyError
        When another process holds the lock (after ``wait_s``), naming its pid and start
        time and pointing to MongoDB for parallel launchers.
    """
    with launcher_lock(lpad_uri_or_home, home=home, wait_s=wait_s, label=label) as lock:
        yield lock is not None


@contextlib.contextmanager
def launcher_lock(
    lpad_uri_or_home: str | Path | Any | None = None,
    *,
    home: Path | None = None,
    wait_s: float = 0.0,
    label: str | None = None,
) -> Iterator[LauncherLock | None]:
    """:func:`exclusive_launcher`, yielding the held :class:`LauncherLock` (to share with
    a worker process), or ``None`` when no lock is needed (MongoDB)."""
    if isinstance(lpad_uri_or_home, Path) and lpad_uri_or_home.is_file():
        need_lock = is_embedded(launchpad_file_uri(lpad_uri_or_home), home=home)
    elif isinstance(lpad_uri_or_home, Path) or lpad_uri_or_home is None:
        home = Path(lpad_uri_or_home) if lpad_uri_or_home is not None else home
        need_lock = True
    else:
        uri = lpad_uri_or_home if isinstance(lpad_uri_or_home, str) else _launchpad_uri(
            lpad_uri_or_home)
        need_lock = is_embedded(uri, home=home)
    if not need_lock:
        yield None
        return
    home = Path(home).expanduser() if home is not None else cgflow_home()
    lock_path = home / "db" / LOCK_FILE_NAME
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(lock_path, wait_s, mode=0o600, poll_s=0.2,
                   busy=lambda: LauncherBusyError(_busy_message(lock_path))) as fd:
        lock = LauncherLock(lock_path, fd, {
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "label": label or " ".join(sys.argv) or "python",
        })
        lock._write()
        try:
            yield lock
        finally:
            os.ftruncate(fd, 0)


def lock_holder(home: Path | None = None) -> dict[str, Any] | None:
    """The current holder of the launcher lock (pid, started_at, label and the
    ``worker_pid`` sharing it), or ``None``.

    Read from the lock file without touching the lock (so that looking never makes a
    launcher fail); a holder whose processes (launcher and worker) are all gone is not
    reported.
    """
    home = Path(home).expanduser() if home is not None else cgflow_home()
    holder = _read_holder(home / "db" / LOCK_FILE_NAME)
    if not holder:
        return None
    pids = [p for p in (holder.get("pid"), holder.get("worker_pid")) if isinstance(p, int)]
    return holder if any(pid_alive(p) for p in pids) else None


def is_embedded(uri: str, home: Path | None = None) -> bool:
    """Whether ``uri`` points to the embedded server recorded in ``home``'s state file.

    True when the URI names exactly one host, that host is this machine (127.0.0.1,
    localhost, ::1 or the recorded bind address) and its port is the recorded port.
    The state file is trusted even if its process has died meanwhile (a launcher
    would then fail to connect anyway). ``False`` when no server was ever recorded.
    """
    state = EmbeddedServer(home=home).read_state()
    if state is None or "port" not in state:
        return False
    hosts = _uri_hosts(uri)
    if len(hosts) != 1:
        return False
    host, port = hosts[0]
    local = LOOPBACK_HOSTS | {str(state.get("host", ""))}
    return host in local and port == int(state["port"])


def _uri_hosts(uri: str) -> list[tuple[str, int]]:
    """(host, port) pairs of a ``mongodb://`` URI; ``[]`` for anything else (e.g. SRV)."""
    if not uri.startswith("mongodb://"):
        return []
    netloc = urlsplit(uri).netloc.rsplit("@", 1)[-1]
    out = []
    for part in netloc.split(","):
        if part.startswith("["):  # [ipv6]:port
            host, _, rest = part[1:].partition("]")
            port = rest.lstrip(":")
        else:
            host, _, port = part.partition(":")
        try:
            out.append((host.lower(), int(port) if port else 27017))
        except ValueError:
            return []
    return out


def launchpad_file_uri(path: Path) -> str:
    """The server URI of a FireWorks launchpad file (``host``, or ``host`` and ``port``).

    Raises
    ------
    InvalidInputError
        When the file cannot be read or is not a YAML mapping.
    """
    data = read_yaml_mapping(path, "launchpad file")
    return _launchpad_uri(SimpleNamespace(host=data.get("host"), port=data.get("port"),
                                          uri_mode=data.get("uri_mode", False)))


def _launchpad_uri(lpad: Any) -> str:
    """A URI from a FireWorks LaunchPad-like object (``host``, ``port``, ``uri_mode``)."""
    host = str(getattr(lpad, "host", "") or "localhost")
    if getattr(lpad, "uri_mode", False) or host.startswith("mongodb"):
        return host
    port = getattr(lpad, "port", None) or 27017
    return f"mongodb://{host}:{port}/"


def _read_holder(lock_path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(lock_path.read_text() or "null")
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _busy_message(lock_path: Path) -> str:
    holder = _read_holder(lock_path) or {}
    pid = holder.get("pid", "unknown")
    started = holder.get("started_at", "unknown time")
    doing = f", running '{holder['label']}'" if holder.get("label") else ""
    if isinstance(holder.get("worker_pid"), int):
        alive = "" if pid_alive(holder["worker_pid"]) else ", gone"
        doing += f", its worker rlaunch pid {holder['worker_pid']}{alive}"
    return (
        f"another launcher (pid {pid}, started at {started}{doing}) is using the embedded "
        "job database; it serves one launcher at a time: wait for it, or use MongoDB "
        "(docker-compose.yml / launchpad_configs/my_launchpad_mongodb.yaml) for parallel "
        f"launchers. Lock file: {lock_path}"
    )
