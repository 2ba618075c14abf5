"""Run a campaign's queued Fireworks: ``rlaunch rapidfire`` with its progress shown, lost
runs rerun and outages of the job database waited out."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo.errors import PyMongoError

from cgflow.errors import CgflowError, InvalidInputError
from cgflow.orchestration.progress import ProgressPrinter
from cgflow.settings import ENV_VARS

#: rlaunch rapidfire's sleeps between looking for READY Fireworks once none is left, and
#: their number: the worker then exits instead of sleeping (FireWorks' default 60 s,
#: forever) while Fireworks it cannot run stay RUNNING; :func:`launch` decides what next.
RLAUNCH_SLEEP_S = 2
RLAUNCH_IDLE_LOOPS = 2
#: How long the launcher's own queries wait for the server (pymongo server selection)
#: before it says the job database is unreachable, s.
DB_CALL_TIMEOUT_S = 10.0
#: Exit code of :func:`launch` when the job database stayed away too long (EX_TEMPFAIL).
OUTAGE_EXIT_CODE = 75
#: MongoDB's error code of a refused login (``AuthenticationFailed``): while the embedded
#: server is down another server may take its port; it refuses the credentials.
AUTHENTICATION_FAILED = 18


def rlaunch_command(lp_file: Path, fworker_file: Path | None) -> list[str]:
    """The ``rlaunch rapidfire`` command of a launchpad (and FireWorker) file.

    It runs every READY Firework (and those that become READY meanwhile) and exits after
    :data:`RLAUNCH_IDLE_LOOPS` sleeps of :data:`RLAUNCH_SLEEP_S` once there is none.
    """
    exe = Path(sys.executable).with_name("rlaunch")
    cmd = [str(exe) if exe.exists() else "rlaunch", "-l", str(lp_file)]
    if fworker_file is not None:
        cmd += ["-w", str(fworker_file)]
    return cmd + ["rapidfire", "--max_loops", str(RLAUNCH_IDLE_LOOPS),
                  "--sleep", str(RLAUNCH_SLEEP_S)]


def launch(lp_file: Path, *, campaign: str | None = None, fworker_file: Path | None = None,
           log_path: Path | None = None, poll_s: float = 5.0,
           report: Callable[[str], None] = print, max_worker_failures: int = 3,
           outage_limit_s: float | None = None, export_to: Path | None = None,
           export_preset: str | None = None) -> int:
    """Run the queued Fireworks with ``rlaunch rapidfire`` until nothing can progress,
    rerunning lost runs and reporting the campaign's progress.

    Rounds, each with the launcher lock held (on the embedded server: one launcher at a
    time; a second one is refused with a message pointing to MongoDB):

    1. **lost runs** (:mod:`cgflow.db.lostruns`): RUNNING Fireworks whose worker is gone
       (a worker folder of this host whose lock is free), any campaign's, and those of
       ``campaign`` (all, without one) whose last ping is older than the expiry of the
       FireWorks config in force (``RUN_EXPIRATION_SECS``, cgflow's 600 s) are rerun and
       named in a line each, and so are Fireworks of ``campaign`` that failed because the
       job database was unreachable (at most three times each);
    2. if a Firework is READY for this FireWorker, one ``rlaunch rapidfire``
       (:func:`rlaunch_command`) runs in a new worker folder under
       ``<launchpad folder>/../launches``, started through ``setpriv --pdeathsig`` (it
       dies with the launcher) and holding the launcher lock and its folder's lock
       (``pass_fds``: the locks last as long as the worker); it exits when nothing is
       left to start. A worker that dies (a signal, an error) is reported, its runs are
       rerun in the next round, and after ``max_worker_failures`` such deaths in a row
       the launcher stops;
    3. else, while Fireworks of ``campaign`` are RUNNING elsewhere (a queue job, another
       launcher), it waits for them to finish or to become lost, saying so; when none is
       left, it stops.

    The job database may go away: every query waits for it with backoff (one line when
    it goes, one when it is back). While a worker runs, the launcher waits as long as
    the worker does (its clients wait up to ``DB_OUTAGE_TOLERANCE_S``); with no worker,
    an outage longer than ``outage_limit_s`` (default the same 300 s) ends the launch
    with a message and :data:`OUTAGE_EXIT_CODE`, and the next launch reruns what this
    one left RUNNING. Before the first round, stored Fireworks that name moved Firetask
    classes are renamed (:func:`cgflow.db.migrations.migrate_firetask_names`).

    With ``export_to`` (and ``campaign``), the campaign is exported there (``cgflow
    dataset export``, of ``export_preset``, else of the campaign's CG preset) at the
    start, again each time its finished sets change and when the launch ends
    (:mod:`cgflow.orchestration.checkpoint`): a launch stopped before the campaign ends
    keeps every finished set on disk.

    Returns
    -------
    int
        0 when nothing is left to run (rlaunch's last exit code if not 0),
        :data:`OUTAGE_EXIT_CODE` after a long outage.
    """
    from fireworks import FWorker

    from cgflow.db.launcher_lock import launcher_lock
    from cgflow.db.lostruns import running_launches
    from cgflow.db.migrations import migrate_firetask_names
    from cgflow.db.store import open_launchpad
    from cgflow.orchestration.fw_configs import (
        DB_OUTAGE_TOLERANCE_S,
        fireworks_config_in_force,
        launcher_fw_config,
        ping_settings,
    )

    if export_to is not None and campaign is None:
        raise InvalidInputError(f"launch: export_to {str(export_to)!r} needs a campaign "
                                "(--campaign NAME) to export")
    lp_file = Path(lp_file)
    lp = _launcher_launchpad(lp_file, open_launchpad(lp_file))
    env = dict(os.environ, **{ENV_VARS["db_file"]: str(lp_file)})
    fw_config = launcher_fw_config(lp_file, env)
    if fw_config is not None:
        env["FW_CONFIG_FILE"] = str(fw_config)
    pings = ping_settings(fireworks_config_in_force(env))
    fworker = FWorker.from_file(str(fworker_file)) if fworker_file else FWorker()
    scope = {"spec.campaign": campaign} if campaign else {}
    root = lp_file.parent.parent / "launches"
    log_path = log_path or lp_file.parent / "rlaunch.log"
    db = _Database(report, DB_OUTAGE_TOLERANCE_S if outage_limit_s is None
                   else outage_limit_s)
    rc, failures, waiting_for = 0, 0, ""
    locked_since: dict[int, float] = {}
    given_up_said: set[int] = set()
    with launcher_lock(lp_file, label="cgflow launch") as lock, open(log_path, "ab") as log:
        watcher = None
        try:
            migrated = db.call(lambda: migrate_firetask_names(lp.db), "migrating")
            if migrated.changed:
                report(f"job database migrated: {migrated.summary()}")
            report(f"launching (rlaunch rapidfire, log: {log_path}); lost runs: worker "
                   f"gone, or no ping for {pings.expiry_s:.0f} s")
            watcher = ProgressPrinter(lp, campaign, report, export_to=export_to,
                                      export_preset=export_preset) if campaign else None
            while True:
                db.call(lambda: _rerun_lost_runs(lp, scope, pings.expiry_s, lock is not None,
                                                 locked_since, given_up_said, report),
                        "looking for lost runs")
                if watcher:
                    db.call(watcher.update, "updating the progress view")
                if db.call(lambda: lp.run_exists(fworker), "looking for READY Fireworks"):
                    waiting_for = ""
                    rc, launched = _run_worker(
                        lp, lp_file, fworker_file, env, root, log, lock, watcher, db,
                        poll_s, report)
                    if rc == 0:
                        failures = 0
                        if launched == 0:
                            report("rlaunch started none of the READY Fireworks; stopping "
                                   f"(see {log_path})")
                            break
                        continue
                    failures += 1
                    report(_death(rc, log_path) + (
                        f"; its runs are rerun (worker death {failures} of at most "
                        f"{max_worker_failures} in a row)"
                        if failures < max_worker_failures else
                        f"; {failures} workers in a row died: stopping"))
                    if failures >= max_worker_failures:
                        break
                    continue
                rc = 0
                running = db.call(lambda: running_launches(lp, scope),
                                  "looking for RUNNING Fireworks")
                if not running:
                    break
                ids = ",".join(str(r.fw_id) for r in running)
                if ids != waiting_for:
                    report(_waiting_line(running, pings.expiry_s))
                    waiting_for = ids
                time.sleep(max(poll_s, min(30.0, pings.ping_s / 2)))
        except _DatabaseAwayError as away:
            report(str(away))
            return OUTAGE_EXIT_CODE
        finally:
            if watcher:
                try:
                    with contextlib.suppress(PyMongoError):
                        watcher.finish()  # the last state and export, if the database answers
                finally:
                    watcher.close()
    report("nothing left to run" + (f" for campaign {campaign}" if campaign else ""))
    return rc


def _launcher_launchpad(lp_file: Path, checked: Any) -> Any:
    """The launcher's own LaunchPad of ``lp_file`` (``checked``: the one
    :func:`cgflow.db.store.open_launchpad` made, file and server checked): the same
    settings, but server selection gives up after :data:`DB_CALL_TIMEOUT_S`, so that an
    outage is noticed and said while the worker's clients wait it out."""
    from fireworks import LaunchPad

    from cgflow.userfiles import read_launchpad_file

    data = read_launchpad_file(lp_file)
    kwargs = dict(data.get("mongoclient_kwargs") or {})
    kwargs["serverSelectionTimeoutMS"] = int(DB_CALL_TIMEOUT_S * 1000)
    lp = LaunchPad.from_dict({"host": checked.host, **data, "mongoclient_kwargs": kwargs})
    checked.connection.close()
    return lp


def _run_worker(lp: Any, lp_file: Path, fworker_file: Path | None, env: dict[str, str],
                root: Path, log: Any, lock: Any, watcher: Any, db: _Database,
                poll_s: float, report: Callable[[str], None]) -> tuple[int, int]:
    """One ``rlaunch rapidfire`` in a new worker folder, watched until it exits;
    (its exit code, launches it made)."""
    from cgflow.db.lostruns import worker_folder
    from cgflow.jobs.lifetime import tied_to_parent

    with worker_folder(root) as folder:
        assert folder.fd is not None
        fds = (folder.fd,) + ((lock.inheritable_fd(),) if lock is not None else ())
        proc = subprocess.Popen(  # noqa: S603 (fixed argument list, no shell)
            tied_to_parent(rlaunch_command(lp_file, fworker_file)), stdout=log,
            stderr=subprocess.STDOUT, env=env, cwd=folder.path, pass_fds=fds)
        folder.release_here()  # the worker holds its folder's lock alone now
        folder.record(worker_pid=proc.pid)
        if lock is not None:
            lock.record_worker(proc.pid)
        try:
            while proc.poll() is None:
                if watcher:
                    db.call(watcher.update, "updating the progress view", worker=proc)
                time.sleep(poll_s)
        finally:
            if proc.poll() is None:  # the launcher itself is stopping (Ctrl-C, an error)
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=60)
            if lock is not None:
                lock.record_worker(None)
        prefix = re.escape(str(folder.path) + os.sep)
        launched = db.call(lambda: lp.launches.count_documents(
            {"launch_dir": {"$regex": f"^{prefix}"}}), "counting launches")
    return proc.returncode, launched


def _rerun_lost_runs(lp: Any, scope: dict[str, Any], expiry_s: float, exclusive: bool,
                     locked_since: dict[int, float], given_up_said: set[int],
                     report: Callable[[str], None]) -> list[int]:
    """Rerun the lost runs (any whose worker is gone, those in ``scope`` whose pings
    stopped), finish the half-recorded runs in ``scope``
    (:func:`cgflow.db.lostruns.half_finished`) and rerun the runs in ``scope`` that failed
    because the job database was unreachable; one line each (and one per workflow lock a
    dead worker left)."""
    from cgflow.db.lostruns import (
        find_lost,
        finish_half_finished,
        half_finished,
        outage_failures,
        rerun_lost,
        rerun_outage_failures,
        running_launches,
    )

    in_scope = {r.fw_id for r in running_launches(lp, scope)} if scope else None
    lost = [r for r in find_lost(running_launches(lp), expiry_s)
            if r.worker_gone or in_scope is None or r.fw_id in in_scope]
    fw_ids, unlocked = rerun_lost(lp, lost, exclusive=exclusive, locked_since=locked_since)
    for wf_id in unlocked:
        report(f"workflow {wf_id}: removed the FireWorks lock a dead worker left")
    for r in lost:
        if r.fw_id in fw_ids:
            report(f"lost run rerun: Firework {r.fw_id} ({r.name}): {r.reason}")
    half = half_finished(lp, scope)
    finished, unlocked = finish_half_finished(lp, half, exclusive=exclusive,
                                              locked_since=locked_since)
    for wf_id in unlocked:
        report(f"workflow {wf_id}: removed the FireWorks lock a dead worker left")
    for fw_id in finished:
        report(f"half-recorded run finished: Firework {fw_id}: its worker died while "
               "FireWorks recorded its end; its stored result applied")
    failed = outage_failures(lp, scope)
    again, given_up = rerun_outage_failures(lp, failed)
    for f in failed:
        if f.fw_id in again:
            report(f"failed run rerun: Firework {f.fw_id} ({f.name}) failed because the job "
                   f"database was unreachable ({f.marker})")
        elif f.fw_id in given_up and f.fw_id not in given_up_said:
            given_up_said.add(f.fw_id)
            report(f"Firework {f.fw_id} ({f.name}) failed {f.earlier + 1} times because the "
                   f"job database was unreachable; not rerun again (lpad rerun_fws -i "
                   f"{f.fw_id} does it)")
    return fw_ids + again


def _waiting_line(running: list[Any], expiry_s: float) -> str:
    """What the launcher waits for: Fireworks RUNNING elsewhere."""
    ids = ", ".join(str(r.fw_id) for r in running[:8]) + (" ..." if len(running) > 8 else "")
    ages = [r.ping_age_s for r in running if r.ping_age_s is not None]
    last = f"latest ping {min(ages):.0f} s ago" if ages else "no ping yet"
    return (f"waiting for {len(running)} Firework(s) RUNNING elsewhere: {ids} ({last}; "
            f"a run silent for {expiry_s:.0f} s is rerun as lost)")


def _death(rc: int, log_path: Path) -> str:
    """How a worker ended, in words."""
    if rc < 0:
        with contextlib.suppress(ValueError):
            return f"rlaunch was killed by {signal.Signals(-rc).name}; see {log_path}"
        return f"rlaunch was killed by signal {-rc}; see {log_path}"
    return f"rlaunch exited with code {rc}; see {log_path}"


class _DatabaseAwayError(CgflowError, RuntimeError):
    """The job database stayed away longer than the launcher waits."""


class _Database:
    """Queries of the launcher that wait out an outage of the job database with backoff.

    A call whose server cannot be reached (``ConnectionFailure``: no server within
    :data:`DB_CALL_TIMEOUT_S`, a connection lost), or whose server refuses the
    credentials (another server on the port of an embedded server that is down), is
    retried after 1, 2, 4, ... 30 s.
    The first failure and the return are said in one line each, and every minute
    meanwhile. With a ``worker`` alive, a failed call is given up (the launcher goes on
    watching the worker); without one, an outage longer than ``limit_s`` raises
    :class:`_DatabaseAwayError`.
    """

    def __init__(self, report: Callable[[str], None], limit_s: float) -> None:
        self.report = report
        self.limit_s = limit_s
        self.away_since: float | None = None
        self.said_at = 0.0

    def call(self, fn: Callable[[], Any], what: str, worker: Any = None) -> Any:
        from pymongo.errors import ConnectionFailure, OperationFailure

        delay = 1.0
        while True:
            started = time.monotonic()
            try:
                out = fn()
            except (ConnectionFailure, OperationFailure) as exc:
                if isinstance(exc, OperationFailure) and exc.code != AUTHENTICATION_FAILED:
                    raise
                now = time.monotonic()
                if self.away_since is None:
                    self.away_since, self.said_at = started, now
                    why = (type(exc).__name__ if isinstance(exc, ConnectionFailure) else
                           "the server on its port refused the credentials: not this job "
                           "database, another server took the port while it was down?")
                    self.report(f"job database unreachable ({why} while {what}): waiting "
                                "for it; without a running rlaunch the launch stops after "
                                f"{self.limit_s:.0f} s")
                elif now - self.said_at >= 60:
                    self.said_at = now
                    self.report(f"job database still unreachable "
                                f"({now - self.away_since:.0f} s)")
                if worker is not None and worker.poll() is None:
                    return None  # the worker waits for the database itself
                if now - self.away_since >= self.limit_s:
                    raise _DatabaseAwayError(
                        f"the job database has been unreachable for "
                        f"{now - self.away_since:.0f} s (limit {self.limit_s:.0f} s): the "
                        "launch stops. Nothing is lost: start the database again (embedded: "
                        "cgflow db start) and run cgflow launch again; it reruns the "
                        "Fireworks this launch left RUNNING") from None
                time.sleep(delay)
                delay = min(2 * delay, 30.0)
                continue
            if self.away_since is not None:
                self.report(f"job database back after "
                            f"{time.monotonic() - self.away_since:.0f} s")
                self.away_since = None
            return out
