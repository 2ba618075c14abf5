"""Lost runs: RUNNING Fireworks whose worker is gone, found and put back in the queue.

A Firework stays RUNNING in the job database when the process running it dies (``kill
-9``, a node failure, an outage of the database longer than its clients wait): nobody
tells the database. A launcher knows a run is lost in one of two ways:

* **its worker is gone.** ``cgflow launch`` runs every ``rlaunch`` in a worker folder of
  its own (:func:`worker_folder`: ``<launch root>/worker-<host>-<time>-<pid>/``) whose
  ``worker.lock`` that ``rlaunch`` holds locked (``flock``) for as long as it lives. A
  RUNNING launch whose launch directory lies in such a folder of this host, and whose
  lock can be taken, was left by a dead worker: it is lost at once, whatever its last
  ping (:func:`worker_state`);
* **its last ping is too old.** Every other run (a SLURM job, another machine, a plain
  ``rlaunch``) pings every ``PING_TIME_SECS``; one silent for longer than the expiry
  (``RUN_EXPIRATION_SECS``, :mod:`cgflow.orchestration.fw_configs`) is lost.

A Firework that *failed* because the database was unreachable (its Firetask could not
write its results, the outage outlasting the clients' wait) is no real failure either:
:func:`outage_failures` finds it by the connection error in its stack trace and
:func:`rerun_outage_failures` reruns it (at most :data:`MAX_OUTAGE_RERUNS` times).

:func:`rerun_lost` goes through FireWorks' own ``detect_lostruns(rerun=True)`` restricted
to the lost launches, so they are marked FIZZLED and their Fireworks READY exactly as
``lpad detect_lostruns --rerun`` does (after removing a workflow lock the dead worker
left behind); cgflow's Firetasks then resume from the files the killed run left in the
parameter set's run directory.

A worker killed in the moment FireWorks records the end of a run leaves a third kind:
the launch is COMPLETED (or FIZZLED) with its result, the Firework still RUNNING, and its
action (for a round of an active campaign: the Fireworks it adds) not applied; nothing
would ever run it again. :func:`half_finished` finds them and
:func:`finish_half_finished` lets FireWorks' refresh finish the recording.

FireWorks is only used through the LaunchPad passed in (no import).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Lock file of a worker folder, held by its rlaunch while it lives.
WORKER_LOCK_NAME = "worker.lock"
#: What a worker folder records about its worker (host, pid, start time).
WORKER_INFO_NAME = "worker.json"
#: Prefix of worker folders.
WORKER_PREFIX = "worker-"


class WorkerFolder:
    """A worker folder with its lock held by this process (see :func:`worker_folder`).

    Attributes
    ----------
    path
        The folder: run ``rlaunch`` in it (its launches' directories go below it).
    fd
        The locked ``worker.lock`` (``None`` once closed here): pass it to the worker
        (``Popen(pass_fds=(fd,))``) and close it here (:meth:`release_here`), so that the
        lock lives exactly as long as the worker.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd: int | None = fd

    def record(self, **info: Any) -> None:
        """Add ``info`` (e.g. ``pid`` of the worker) to the folder's ``worker.json``."""
        data = _read_json(self.path / WORKER_INFO_NAME)
        data.update(info)
        (self.path / WORKER_INFO_NAME).write_text(json.dumps(data) + "\n")

    def release_here(self) -> None:
        """Close this process's copy of the lock (a worker given it keeps its own)."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def worker_folder(root: Path) -> Iterator[WorkerFolder]:
    """Create a new worker folder under ``root`` with its ``worker.lock`` held.

    The folder's name holds this host's name, the time and this process's pid, and its
    ``worker.json`` the host and the launcher's pid. The lock is held by the yielded
    descriptor until it is closed (here: at the end of the block, unless
    :meth:`WorkerFolder.release_here` did it first) and by every process it was passed
    to, for as long as it lives.
    """
    host = socket.gethostname()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = Path(root) / f"{WORKER_PREFIX}{_safe(host)}-{stamp}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=False)
    (path / WORKER_INFO_NAME).write_text(json.dumps({
        "host": host, "launcher_pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds")}) + "\n")
    fd = os.open(path / WORKER_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    folder = WorkerFolder(path, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield folder
    finally:
        folder.release_here()


def worker_state(launch_dir: str | Path | None) -> str:
    """``"gone"``, ``"alive"`` or ``"unknown"``: whether the worker that made a launch in
    ``launch_dir`` still lives.

    Known only for a launch directory in (or being) a worker folder of this host: its
    lock is busy while the worker lives and free once it has exited. Anything else
    (another host, a folder cgflow did not make, a missing one) is ``"unknown"``.
    """
    if not launch_dir:
        return "unknown"
    launch_dir = Path(launch_dir)
    for folder in (launch_dir, launch_dir.parent):
        if not folder.name.startswith(WORKER_PREFIX):
            continue
        info = _read_json(folder / WORKER_INFO_NAME)
        if info.get("host") != socket.gethostname():
            return "unknown"
        try:
            fd = os.open(folder / WORKER_LOCK_NAME, os.O_RDWR)
        except OSError:
            return "unknown"
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return "gone"
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return "alive"
            return "unknown"
        finally:
            os.close(fd)  # also releases the probe's lock
    return "unknown"


@dataclass(frozen=True)
class RunningLaunch:
    """A RUNNING launch of a RUNNING Firework.

    Attributes
    ----------
    fw_id, launch_id, name
        The Firework (its name: cgflow's label and stage) and the launch.
    launch_dir, host
        Where and on which host it runs (from the launch document).
    last_ping
        When it last pinged (or started), UTC; ``None`` if the launch records none.
    ping_age_s
        Seconds since then.
    worker
        :func:`worker_state` of its launch directory.
    """

    fw_id: int
    launch_id: int
    name: str
    launch_dir: str | None
    host: str | None
    last_ping: datetime | None
    ping_age_s: float | None
    worker: str


@dataclass(frozen=True)
class LostRun:
    """A lost launch, why it counts as lost, and whether its worker is known to be gone
    (else its pings stopped)."""

    fw_id: int
    launch_id: int
    name: str
    reason: str
    worker_gone: bool = False


def running_launches(launchpad: Any, query: Mapping[str, Any] | None = None,
                     now: datetime | None = None) -> list[RunningLaunch]:
    """The RUNNING launches of the RUNNING Fireworks matching ``query`` (a query on the
    ``fireworks`` collection; ``None``: all), in fw_id order."""
    now = now or datetime.now(UTC)
    fws = {d["fw_id"]: d for d in launchpad.fireworks.find(
        {**dict(query or {}), "state": "RUNNING"}, {"fw_id": 1, "name": 1, "launches": 1})}
    launch_ids = sorted({lid for d in fws.values() for lid in d.get("launches") or []})
    if not launch_ids:
        return []
    out = []
    for ld in launchpad.launches.find(
            {"launch_id": {"$in": launch_ids}, "state": "RUNNING"},
            {"launch_id": 1, "fw_id": 1, "launch_dir": 1, "host": 1, "state_history": 1}):
        fw = fws.get(ld.get("fw_id"))
        if fw is None:
            continue
        last = _last_ping(ld.get("state_history") or [])
        out.append(RunningLaunch(
            fw_id=int(ld["fw_id"]), launch_id=int(ld["launch_id"]),
            name=str(fw.get("name") or ""), launch_dir=ld.get("launch_dir"),
            host=ld.get("host"), last_ping=last,
            ping_age_s=None if last is None else (now - last).total_seconds(),
            worker=worker_state(ld.get("launch_dir"))))
    return sorted(out, key=lambda r: (r.fw_id, r.launch_id))


def find_lost(running: Iterable[RunningLaunch], expiry_s: float) -> list[LostRun]:
    """The launches of ``running`` that are lost: their worker is gone, or their last
    ping is older than ``expiry_s`` (unless their worker is known to be alive)."""
    lost = []
    for r in running:
        if r.worker == "gone":
            reason = f"its worker (launch dir {r.launch_dir}) is gone"
        elif r.worker == "alive":
            continue
        elif r.ping_age_s is None or r.ping_age_s > expiry_s:
            age = "no ping recorded" if r.ping_age_s is None else (
                f"last ping {r.ping_age_s:.0f} s ago")
            reason = f"{age} (expiry {expiry_s:.0f} s)"
        else:
            continue
        lost.append(LostRun(r.fw_id, r.launch_id, r.name, reason, r.worker == "gone"))
    return lost


def rerun_lost(launchpad: Any, lost: Iterable[LostRun], *, exclusive: bool = False,
               locked_since: dict[int, float] | None = None, stale_lock_s: float = 60.0,
               now: float | None = None) -> tuple[list[int], list[int]]:
    """Mark the ``lost`` launches FIZZLED and make their Fireworks READY again (FireWorks'
    ``detect_lostruns(rerun=True)`` on exactly those launches).

    A worker killed while it held its workflow's FireWorks lock (``WFLock``: the
    ``locked`` key of the workflow, taken for every update of it, e.g. right after a
    Firework is checked out) leaves the workflow locked, and a rerun would wait five
    minutes for it and fail. With ``exclusive`` (the caller holds the embedded server's
    one-launcher lock, and every worker that could hold a workflow lock shares it) such
    a lock is stale and removed. Otherwise a lock is removed once it has been seen for
    ``stale_lock_s`` (FireWorks holds its locks for single updates); ``locked_since``
    (workflow id -> when first seen, kept by the caller between calls) records that, and
    until then the Fireworks of that workflow wait.

    Returns
    -------
    (list of int, list of int)
        The Firework ids rerun, and the ids of the workflows unlocked.
    """
    lost = list(lost)
    fw_ids = sorted({r.fw_id for r in lost})
    unlocked, waiting = _remove_stale_locks(launchpad, fw_ids, exclusive, locked_since,
                                            stale_lock_s, now)
    launch_ids = sorted({r.launch_id for r in lost if r.fw_id not in waiting})
    if not launch_ids:
        return [], unlocked
    _, rerun, _ = launchpad.detect_lostruns(
        expiration_secs=0, rerun=True, launch_query={"launch_id": {"$in": launch_ids}})
    return sorted(int(i) for i in rerun), unlocked


def _remove_stale_locks(launchpad: Any, fw_ids: list[int], exclusive: bool,
                        locked_since: dict[int, float] | None, stale_lock_s: float,
                        now: float | None) -> tuple[list[int], set[int]]:
    """Remove the workflow locks of ``fw_ids``' workflows that are stale (see
    :func:`rerun_lost`); returns the workflows unlocked and the Fireworks that must wait."""
    now = time.monotonic() if now is None else now
    locked_since = {} if locked_since is None else locked_since
    unlocked, waiting = [], set()
    for wf in launchpad.workflows.find({"nodes": {"$in": fw_ids}, "locked": {"$exists": True}},
                                       {"_id": 1, "nodes": 1}):
        seen = locked_since.setdefault(wf["_id"], now)
        if exclusive or now - seen >= stale_lock_s:
            launchpad.workflows.update_one({"_id": wf["_id"]}, {"$unset": {"locked": True}})
            unlocked.append(wf["_id"])
            locked_since.pop(wf["_id"], None)
        else:
            waiting |= set(wf.get("nodes") or [])
    return unlocked, waiting


def half_finished(launchpad: Any, query: Mapping[str, Any] | None = None) -> list[int]:
    """RUNNING Fireworks (matching ``query``) none of whose launches runs any more, the
    last COMPLETED or FIZZLED: a worker killed while FireWorks recorded the end of a run
    (the launch document written, the Firework and its workflow not yet updated: a
    completed run's action, e.g. the Fireworks it adds, not applied)."""
    fws = list(launchpad.fireworks.find({**dict(query or {}), "state": "RUNNING"},
                                        {"fw_id": 1, "launches": 1}))
    ids = sorted({lid for d in fws for lid in d.get("launches") or []})
    states = {d["launch_id"]: d["state"] for d in launchpad.launches.find(
        {"launch_id": {"$in": ids}}, {"launch_id": 1, "state": 1})} if ids else {}
    out = []
    for d in fws:
        mine = [states.get(lid) for lid in d.get("launches") or []]
        if mine and "RUNNING" not in mine and mine[-1] in ("COMPLETED", "FIZZLED"):
            out.append(int(d["fw_id"]))
    return sorted(out)


def finish_half_finished(launchpad: Any, fw_ids: Iterable[int], *, exclusive: bool = False,
                         locked_since: dict[int, float] | None = None,
                         stale_lock_s: float = 60.0, now: float | None = None
                         ) -> tuple[list[int], list[int]]:
    """Put the :func:`half_finished` Fireworks ``fw_ids`` right with FireWorks' own
    refresh (``detect_lostruns(refresh=True)``): the Firework takes its launch's state and
    a completed launch's stored action is applied, exactly as the killed worker would
    have done (nothing is run again). A workflow lock the worker left is removed first,
    as in :func:`rerun_lost`.

    Returns
    -------
    (list of int, list of int)
        The Firework ids finished, and the ids of the workflows unlocked.
    """
    fw_ids = sorted(set(fw_ids))
    if not fw_ids:
        return [], []
    unlocked, waiting = _remove_stale_locks(launchpad, fw_ids, exclusive, locked_since,
                                            stale_lock_s, now)
    ready = [i for i in fw_ids if i not in waiting]
    if not ready:
        return [], unlocked
    launchpad.detect_lostruns(expiration_secs=10**9, refresh=True,
                              query={"fw_id": {"$in": ready}})
    done = {d["fw_id"] for d in launchpad.fireworks.find(
        {"fw_id": {"$in": ready}, "state": {"$ne": "RUNNING"}}, {"fw_id": 1})}
    return sorted(int(i) for i in done), unlocked


#: What a failed launch's stack trace holds when the job database was unreachable: the
#: connection errors of pymongo and cgflow's message for them.
OUTAGE_MARKERS = ("ServerSelectionTimeoutError", "AutoReconnect", "NetworkTimeout",
                  "ConnectionFailure", "cannot reach the job database")
#: How often a Firework that failed because the database was unreachable is rerun.
MAX_OUTAGE_RERUNS = 3


@dataclass(frozen=True)
class OutageFailure:
    """A FIZZLED Firework whose last launch failed because the job database was
    unreachable (its Firetask could not write, or its Rocket could not report).

    Attributes
    ----------
    fw_id, name
        The Firework.
    marker
        The sign of the outage found in the launch's stack trace (e.g.
        ``ServerSelectionTimeoutError``).
    earlier
        How many earlier (archived) launches of it failed the same way.
    """

    fw_id: int
    name: str
    marker: str
    earlier: int


def outage_failures(launchpad: Any, query: Mapping[str, Any] | None = None
                    ) -> list[OutageFailure]:
    """The FIZZLED Fireworks matching ``query`` whose last launch failed because the job
    database was unreachable (:data:`OUTAGE_MARKERS` in its stack trace), in fw_id order.
    A Firework that failed for any other reason is not one: its failure is real."""
    out = []
    for fw in launchpad.fireworks.find({**dict(query or {}), "state": "FIZZLED"},
                                       {"fw_id": 1, "name": 1, "launches": 1,
                                        "archived_launches": 1}):
        if not fw.get("launches"):
            continue
        marker = _outage_marker(launchpad, max(fw["launches"]))
        if marker is None:
            continue
        earlier = sum(_outage_marker(launchpad, i) is not None
                      for i in fw.get("archived_launches") or [])
        out.append(OutageFailure(int(fw["fw_id"]), str(fw.get("name") or ""), marker, earlier))
    return sorted(out, key=lambda f: f.fw_id)


def rerun_outage_failures(launchpad: Any, failures: Iterable[OutageFailure],
                          max_reruns: int = MAX_OUTAGE_RERUNS) -> tuple[list[int], list[int]]:
    """Rerun (``rerun_fw``) the ``failures`` that failed this way fewer than
    ``max_reruns`` times before; (ids rerun, ids given up on)."""
    rerun, given_up = [], []
    for f in failures:
        if f.earlier >= max_reruns:
            given_up.append(f.fw_id)
            continue
        launchpad.rerun_fw(f.fw_id)
        rerun.append(f.fw_id)
    return rerun, given_up


def _outage_marker(launchpad: Any, launch_id: int) -> str | None:
    doc = launchpad.launches.find_one(
        {"launch_id": launch_id, "state": "FIZZLED"}, {"action.stored_data._exception": 1})
    exc = (((doc or {}).get("action") or {}).get("stored_data") or {}).get("_exception") or {}
    text = f"{exc.get('_stacktrace') or ''}\n{exc.get('_details') or ''}"
    return next((m for m in OUTAGE_MARKERS if m in text), None)


def _last_ping(history: list[Mapping[str, Any]]) -> datetime | None:
    """The ``updated_on`` (else ``created_on``) of the last RUNNING entry, as UTC."""
    for entry in reversed(history):
        if entry.get("state") == "RUNNING":
            return _as_utc(entry.get("updated_on") or entry.get("created_on"))
    return None


def _as_utc(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)[:64] or "host"
