"""Run FireWorks workflows through a SLURM queue with ``qlaunch``, robustly, to the end.

``qlaunch`` on its own has two habits that make it awkward to script:

* it returns as soon as the last job is *submitted*, not when the work is done, and one
  round does not come back for Fireworks that become READY later (children of a
  running one);
* in normal (non-reservation) mode the job only picks a Firework when it *starts*, so a
  second submission round before that can send a second job for the same READY Firework
  (which then finds nothing, or takes the next one out of order).

:func:`drive_qlaunch` wraps it in a loop: look at our jobs in the queue (``squeue``) and
at the Fireworks of the workflow(s), submit exactly as many jobs as there are Fireworks
to run and free job slots (``qlaunch [-r] rapidfire -m 0 --nlaunches <n>``: the count is
ours, so that qlaunch never waits on its own queue count), wait, repeat, until nothing
can run any more (all COMPLETED, or the rest FIZZLED/DEFUSED or waiting on those) or a
timeout. Along the way it

* cancels reservations whose queue job ended before starting its Firework
  (reservation mode), so the Firework becomes READY again;
* optionally reruns lost runs (a RUNNING Firework whose job was killed stops pinging
  the database) via FireWorks' ``detect_lostruns`` once their last ping is older than
  ``rerun_lost_after_s``;
* stops with an :class:`~cgflow.errors.EngineError` (naming the job's output files)
  when several jobs in a row ended without any Firework changing state, e.g. a broken
  environment in the queue adapter's ``pre_rocket``.

Jobs are ours when ``squeue`` reports a working directory under ``launch_dir`` (qlaunch
submits from ``<launch_dir>/block_*/launcher_*``) or when their id was printed by a
qlaunch call of this loop.

Job slots and the database: the embedded job database (:mod:`cgflow.db.server`) serves
one launcher at a time, so keep ``max_jobs=1`` on it (this is enforced when the
LaunchPad is the embedded server of the cgflow home, and the launcher lock of
:mod:`cgflow.db.launcher_lock` is held for the whole drive). MongoDB serves any number
of concurrent launchers: use ``max_jobs`` > 1 there.

This module only runs the SLURM and FireWorks commands (``squeue``, ``scancel``,
``qlaunch``) and reads the LaunchPad; it holds no science.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgflow.errors import CgflowError, EngineError, InvalidInputError

#: Firework states in which a Firework may still be run by a queue job.
ACTIVE_FW_STATES = frozenset({"READY", "RESERVED", "RUNNING"})
# qlaunch's log line for a submitted job, and its (swallowed) error messages.
_JOB_ID_RE = re.compile(r"job_id is (\d+)")
_QLAUNCH_ERRORS = (
    "Error with queue launcher rapid fire",
    "Error writing/submitting queue script",
    "Error in job submission",
)


class QueueTimeoutError(CgflowError, TimeoutError):
    """The workflow did not finish within the time limit; ``.result`` has the state then."""

    def __init__(self, message: str, result: DriveResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class QueueJob:
    """One job listed by ``squeue``.

    Attributes
    ----------
    job_id
        The SLURM job id.
    state
        Its state (PENDING, RUNNING, COMPLETING, ...).
    work_dir
        The job's working directory (where it was submitted from).
    name
        The job name.
    """

    job_id: str
    state: str
    work_dir: Path
    name: str = ""


@dataclass
class DriveResult:
    """What :func:`drive_qlaunch` did and where the workflow(s) ended.

    Attributes
    ----------
    fw_states
        Final state of each Firework (fw_id -> state).
    job_ids
        SLURM job ids submitted (in order).
    rounds
        Number of ``qlaunch`` calls.
    cancelled_reservations
        Launch ids whose reservation was cancelled because their job ended first.
    rerun_lost
        Firework ids rerun as lost runs.
    elapsed_s
        Wall time of the drive (s).
    """

    fw_states: dict[int, str] = field(default_factory=dict)
    job_ids: list[str] = field(default_factory=list)
    rounds: int = 0
    cancelled_reservations: list[int] = field(default_factory=list)
    rerun_lost: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def completed(self) -> bool:
        """Whether every Firework is COMPLETED."""
        return bool(self.fw_states) and all(s == "COMPLETED" for s in self.fw_states.values())

    def count(self, state: str) -> int:
        """Number of Fireworks in ``state``."""
        return sum(1 for s in self.fw_states.values() if s == state)


# --- SLURM --------------------------------------------------------------------------------


def _run(cmd: Sequence[str], timeout_s: float = 60.0,
         env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command (no shell), capturing its output; EngineError when it cannot start."""
    try:
        return subprocess.run(  # noqa: S603 - fixed argument vector, no shell
            list(cmd), capture_output=True, text=True, timeout=timeout_s,
            env=dict(env) if env is not None else None, check=False,
        )
    except FileNotFoundError as exc:
        raise EngineError(f"command not found: {cmd[0]} (is SLURM/FireWorks installed?)") from exc
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or "") if isinstance(exc.stdout, str) else ""
        raise EngineError(f"{' '.join(cmd)} did not finish within {timeout_s:.0f} s; "
                          f"output tail:\n{_tail(out)}") from exc


def _tail(text: str, n_lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-n_lines:])


def squeue_jobs(user: str | None = None, attempts: int = 3,
                retry_s: float = 2.0) -> list[QueueJob]:
    """The jobs of ``user`` (default: the current user) that ``squeue`` lists.

    ``squeue`` lists pending, running and finishing jobs; finished jobs are gone. A
    failing ``squeue`` (a busy controller) is retried ``attempts`` times, ``retry_s``
    seconds apart.

    Raises
    ------
    EngineError
        When ``squeue`` keeps failing (with its exit code and error output).
    """
    user = user or getpass.getuser()
    cmd = ["squeue", "-h", "-u", user, "-o", "%i|%T|%j|%Z"]
    for attempt in range(attempts):
        proc = _run(cmd, timeout_s=60.0)
        if proc.returncode == 0:
            break
        if attempt + 1 < attempts:
            time.sleep(retry_s)
    else:
        raise EngineError(f"{' '.join(cmd)} failed {attempts} times, last exit code "
                          f"{proc.returncode}:\n{_tail(proc.stderr or proc.stdout)}")
    jobs = []
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) == 4:
            jobs.append(QueueJob(job_id=parts[0], state=parts[1], name=parts[2],
                                 work_dir=Path(parts[3])))
    return jobs


def cancel_jobs(job_ids: Iterable[str]) -> None:
    """``scancel`` the given jobs (ids not in the queue any more are ignored)."""
    ids = [str(j) for j in job_ids]
    if ids:
        _run(["scancel", *ids], timeout_s=60.0)


def wait_for_jobs(job_ids: Iterable[str], timeout_s: float, poll_s: float = 1.0,
                  user: str | None = None) -> None:
    """Wait until none of ``job_ids`` is listed by ``squeue`` any more.

    Raises
    ------
    QueueTimeoutError
        When some are still listed after ``timeout_s`` (they are left alone).
    """
    wanted = {str(j) for j in job_ids}
    deadline = time.monotonic() + timeout_s
    while True:
        left = sorted(j.job_id for j in squeue_jobs(user) if j.job_id in wanted)
        if not left:
            return
        if time.monotonic() >= deadline:
            raise QueueTimeoutError(f"jobs {', '.join(left)} still queued after {timeout_s:.0f} s",
                                    DriveResult(job_ids=left))
        time.sleep(poll_s)


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True


# --- FireWorks ----------------------------------------------------------------------------


def workflow_fw_ids(launchpad: Any, fw_ids: int | Iterable[int] | None) -> list[int] | None:
    """All Firework ids of the workflows containing ``fw_ids`` (``None``: everything).

    Raises
    ------
    InvalidInputError
        When a given fw_id belongs to no workflow of the LaunchPad.
    """
    if fw_ids is None:
        return None
    wanted = [fw_ids] if isinstance(fw_ids, int) else [int(i) for i in fw_ids]
    nodes: set[int] = set()
    for fw_id in wanted:
        wf = launchpad.workflows.find_one({"nodes": fw_id}, {"nodes": 1})
        if wf is None:
            raise InvalidInputError(f"fw_ids: value {fw_id!r}: no workflow of LaunchPad "
                                    f"{launchpad.name!r} contains this Firework")
        nodes.update(int(n) for n in wf["nodes"])
    return sorted(nodes)


def fw_states(launchpad: Any, nodes: list[int] | None) -> dict[int, str]:
    """Current state of each Firework in ``nodes`` (``None``: all Fireworks)."""
    query: dict[str, Any] = {} if nodes is None else {"fw_id": {"$in": nodes}}
    return {int(d["fw_id"]): str(d["state"])
            for d in launchpad.fireworks.find(query, {"fw_id": 1, "state": 1})}


def _reservations(launchpad: Any, nodes: list[int] | None) -> dict[str, int]:
    """reservation id (queue job id) -> launch id, for RESERVED launches of ``nodes``."""
    query: dict[str, Any] = {"state": "RESERVED"}
    if nodes is not None:
        query["fw_id"] = {"$in": nodes}
    out = {}
    for launch in launchpad.launches.find(query, {"launch_id": 1, "state_history": 1}):
        for entry in launch.get("state_history", []):
            if entry.get("state") == "RESERVED" and entry.get("reservation_id"):
                out[str(entry["reservation_id"])] = int(launch["launch_id"])
    return out


def find_qlaunch() -> str:
    """The ``qlaunch`` command: next to ``sys.executable`` (a venv), else on ``PATH``."""
    candidate = Path(sys.executable).with_name("qlaunch")
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which("qlaunch") or "qlaunch"


def qlaunch_command(
    *,
    launchpad_file: Path,
    qadapter_file: Path,
    launch_dir: Path,
    n_launches: int,
    max_jobs: int,
    reserve: bool,
    fworker_file: Path | None = None,
    sleep_s: int = 2,
    timeout_s: int = 60,
    qlaunch: str | None = None,
) -> list[str]:
    """The argument vector of one ``qlaunch [-r] rapidfire`` submission round.

    ``--nlaunches`` bounds the submissions, ``-m`` the jobs of this user in the queue as
    qlaunch counts them (0: no cap), ``--timeout`` (s) the time qlaunch may spend when
    fewer Fireworks than expected turn out to be READY (it then waits for more).
    """
    cmd = [qlaunch or find_qlaunch(), "-l", str(launchpad_file), "-q", str(qadapter_file),
           "--launch_dir", str(launch_dir), "--loglvl", "INFO"]
    if fworker_file is not None:
        cmd += ["-w", str(fworker_file)]
    if reserve:
        cmd.append("-r")
    cmd += ["rapidfire", "-m", str(max_jobs), "--nlaunches", str(n_launches),
            "--sleep", str(sleep_s), "--timeout", str(timeout_s)]
    return cmd


def _job_output_files(launch_dir: Path, job_id: str, work_dir: Path | None) -> list[Path]:
    roots = [work_dir] if work_dir is not None else []
    found: list[Path] = []
    for root in roots:
        found += sorted(root.glob(f"*{job_id}*"))
    if not found:
        found = sorted(launch_dir.glob(f"block_*/launcher_*/*-{job_id}.*"))
    return [p for p in found if p.suffix in (".out", ".error", ".err")]


def _describe_job_outputs(files: list[Path]) -> str:
    parts = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        parts.append(f"--- {path} (tail)\n{_tail(text) or '(empty)'}")
    return "\n".join(parts) or "(no job output files found)"


def drive_qlaunch(
    launchpad: Any,
    fw_ids: int | Iterable[int] | None,
    *,
    qadapter_file: Path | str,
    launch_dir: Path | str,
    fworker_file: Path | str | None = None,
    launchpad_file: Path | str | None = None,
    reserve: bool = False,
    max_jobs: int = 1,
    timeout_s: float = 3600.0,
    poll_s: float = 2.0,
    rerun_lost_after_s: float | None = None,
    max_idle_jobs: int = 3,
    qlaunch_timeout_s: int = 30,
    env: Mapping[str, str] | None = None,
    cancel_on_timeout: bool = True,
    qlaunch: str | None = None,
    log: Callable[[str], None] | None = None,
) -> DriveResult:
    """Submit SLURM jobs with ``qlaunch`` until the workflow(s) can make no more progress.

    Parameters
    ----------
    launchpad
        A FireWorks ``LaunchPad``.
    fw_ids
        Any Firework id(s) of the workflow(s) to drive (all their Fireworks count), or
        ``None`` for every Firework of the LaunchPad. Which Fireworks a job runs is
        decided by FireWorks (the FWorker's query): keep other work out of the LaunchPad
        or the FWorker's query, or jobs may run it.
    qadapter_file
        The queue adapter (e.g. a copy of ``launchpad_configs/my_qadapter.yaml``). For
        ``reserve=True`` its ``rocket_launch`` must be ``... singleshot``.
    launch_dir
        Folder where qlaunch writes ``block_*/launcher_*`` job folders (created).
    fworker_file
        FWorker file passed to qlaunch (``-w``); default: qlaunch's own default.
    launchpad_file
        LaunchPad file for qlaunch (``-l``); default: written from ``launchpad`` to
        ``<launch_dir>/qlaunch_launchpad.yaml`` (mode 600, it may hold credentials).
    reserve
        Reservation mode (``qlaunch -r``): each job is bound to one Firework when
        submitted.
    max_jobs
        Most of our jobs in the queue at once (>= 1). Keep 1 on the embedded database.
    timeout_s
        Give up after this many seconds (wall time).
    poll_s
        Seconds between looks at the queue and the LaunchPad.
    rerun_lost_after_s
        If given, RUNNING Fireworks of the workflow(s) that have not pinged for this many
        seconds are rerun (``LaunchPad.detect_lostruns(rerun=True)``). Must be well above
        the ``PING_TIME_SECS`` the jobs run with (FireWorks' default is 3600 s).
    max_idle_jobs
        Raise after this many jobs in a row ended without any Firework changing state.
    qlaunch_timeout_s
        ``--timeout`` of each qlaunch call (s).
    env
        Environment of the qlaunch calls (default: this process's); sbatch passes it on
        to the jobs (e.g. ``FW_CONFIG_FILE``).
    cancel_on_timeout
        ``scancel`` our jobs still queued when the time is up.
    qlaunch
        The qlaunch command (default :func:`find_qlaunch`).
    log
        Called with one line per event (submissions, ended jobs, reruns).

    Returns
    -------
    DriveResult
        Final Firework states, submitted job ids, number of qlaunch rounds, cancelled
        reservations, reruns and the elapsed time. ``result.completed`` tells whether
        everything COMPLETED; FIZZLED Fireworks end the drive without an error.

    Raises
    ------
    InvalidInputError
        For ``max_jobs`` < 1, a missing qadapter file, an unknown fw_id, or ``max_jobs``
        > 1 on the embedded job database.
    EngineError
        When qlaunch fails to submit (with its command, exit code and output tail), or
        ``max_idle_jobs`` jobs in a row did nothing (with the tail of their output).
    QueueTimeoutError
        When the workflow(s) are still running after ``timeout_s``; ``.result`` holds
        the state at that time.
    cgflow.db.launcher_lock.LauncherBusyError
        On the embedded job database, when another launcher (e.g. ``cgflow launch``)
        is using it.
    """
    from cgflow.db.launcher_lock import exclusive_launcher

    say = log or (lambda _msg: None)
    if int(max_jobs) < 1:
        raise InvalidInputError(f"max_jobs: value {max_jobs!r}: must be at least 1")
    qadapter_file = Path(qadapter_file).resolve()
    if not qadapter_file.is_file():
        raise InvalidInputError(f"qadapter_file: value {str(qadapter_file)!r}: no such file")
    launch_dir = Path(launch_dir).resolve()
    launch_dir.mkdir(parents=True, exist_ok=True)
    if launchpad_file is None:
        launchpad_file = launch_dir / "qlaunch_launchpad.yaml"
        launchpad.to_file(str(launchpad_file))
        os.chmod(launchpad_file, 0o600)
    launchpad_file = Path(launchpad_file).resolve()
    fworker_path = Path(fworker_file).resolve() if fworker_file is not None else None
    run_env = dict(os.environ if env is None else env)
    nodes = workflow_fw_ids(launchpad, fw_ids)

    result = DriveResult()
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    ours: set[str] = set()  # job ids known to be ours
    seen_dirs: dict[str, Path] = {}  # job id -> working directory
    snapshot_at_submit: dict[str, dict[int, str]] = {}
    live: set[str] = set()  # our jobs listed at the previous look
    idle_streak = 0
    empty_rounds = 0
    last_idle = ""

    # The lock is taken only on the embedded job database (``embedded`` is then True).
    with exclusive_launcher(launchpad, wait_s=0.0, label="drive_qlaunch") as embedded:
        if embedded and max_jobs > 1:
            raise InvalidInputError(
                f"max_jobs: value {max_jobs!r}: the embedded job database serves one "
                "launcher at a time; use max_jobs=1, or MongoDB for parallel jobs")
        while True:
            # Queue first, then the LaunchPad: a job that ends between the two looks is
            # still counted as active, which only delays the next submission.
            jobs = [j for j in squeue_jobs()
                    if j.job_id in ours or _is_under(j.work_dir, launch_dir)]
            for j in jobs:
                ours.add(j.job_id)
                seen_dirs.setdefault(j.job_id, j.work_dir)
            active = {j.job_id for j in jobs}
            states = fw_states(launchpad, nodes)
            result.fw_states = states

            # Jobs that ended since the last look: did they change anything?
            for job_id in sorted((live | set(snapshot_at_submit)) - active):
                before = snapshot_at_submit.pop(job_id, None)
                live.discard(job_id)
                if before is None:
                    continue
                if states == before:
                    idle_streak += 1
                    last_idle = job_id
                    say(f"job {job_id} ended without any Firework changing state "
                        f"({idle_streak} in a row)")
                else:
                    idle_streak = 0
                    say(f"job {job_id} ended")
            live = set(active)

            # Reservations whose job ended before starting its Firework.
            if reserve:
                n_cancelled = len(result.cancelled_reservations)
                for job_id, launch_id in _reservations(launchpad, nodes).items():
                    if job_id in ours and job_id not in active:
                        launchpad.cancel_reservation(launch_id)
                        result.cancelled_reservations.append(launch_id)
                        say(f"job {job_id} ended before its Firework started: reservation "
                            f"(launch {launch_id}) cancelled")
                if len(result.cancelled_reservations) > n_cancelled:
                    states = fw_states(launchpad, nodes)
                    result.fw_states = states

            if idle_streak >= max_idle_jobs:
                files = _job_output_files(launch_dir, last_idle, seen_dirs.get(last_idle))
                raise EngineError(
                    f"{idle_streak} queue jobs in a row ended without running a Firework "
                    f"(last: job {last_idle}); check the queue adapter {qadapter_file} "
                    f"(pre_rocket, rocket_launch). Job output:\n"
                    f"{_describe_job_outputs(files)}")

            # Lost runs (killed jobs): rerun once their pings are old enough.
            if rerun_lost_after_s is not None and "RUNNING" in states.values():
                query = None if nodes is None else {"fw_id": {"$in": nodes}}
                _, lost_fw_ids, _ = launchpad.detect_lostruns(
                    expiration_secs=rerun_lost_after_s, rerun=True, query=query)
                if lost_fw_ids:
                    result.rerun_lost.extend(int(i) for i in lost_fw_ids)
                    say(f"lost runs rerun: Fireworks {sorted(lost_fw_ids)}")
                    states = fw_states(launchpad, nodes)
                    result.fw_states = states

            if not active and not (set(states.values()) & ACTIVE_FW_STATES):
                break
            if time.monotonic() >= deadline:
                if cancel_on_timeout and active:
                    cancel_jobs(active)
                result.elapsed_s = time.monotonic() - t0
                summary = ", ".join(f"{s}: {result.count(s)}" for s in sorted(set(states.values())))
                raise QueueTimeoutError(
                    f"workflow not finished after {timeout_s:.0f} s ({summary}; jobs in queue: "
                    f"{', '.join(sorted(active)) or 'none'}"
                    f"{', cancelled' if cancel_on_timeout and active else ''})", result)

            n_ready = sum(1 for s in states.values() if s == "READY")
            n_running = sum(1 for s in states.values() if s == "RUNNING")
            # Normal mode: a queued job that has not yet started a Firework will take one
            # of the READY ones; do not submit a second job for it.
            unclaimed = 0 if reserve else max(0, len(active) - n_running)
            n_submit = min(max_jobs - len(active), n_ready - unclaimed)
            if n_submit > 0:
                # The count is ours (--nlaunches); qlaunch's own cap stays off (-m 0): it
                # counts all of the user's jobs in the partition, and a squeue slower than
                # 5 s makes it sleep 30 s, 60 s, ... before trying again.
                cmd = qlaunch_command(
                    launchpad_file=launchpad_file, qadapter_file=qadapter_file,
                    launch_dir=launch_dir, n_launches=n_submit,
                    max_jobs=0, reserve=reserve, fworker_file=fworker_path,
                    sleep_s=max(1, int(poll_s)), timeout_s=qlaunch_timeout_s, qlaunch=qlaunch)
                proc = _run(cmd, timeout_s=qlaunch_timeout_s + 120.0, env=run_env)
                result.rounds += 1
                output = (proc.stdout or "") + (proc.stderr or "")
                new_ids = _JOB_ID_RE.findall(output)
                if proc.returncode != 0 or any(e in output for e in _QLAUNCH_ERRORS):
                    raise EngineError(
                        f"qlaunch failed to submit (exit code {proc.returncode}): "
                        f"{' '.join(cmd)}\n{_tail(output, 30)}")
                # Read the states after the submission (reservation mode has RESERVED
                # them), so that a job that ends without doing anything is noticed.
                after = fw_states(launchpad, nodes)
                for job_id in new_ids:
                    ours.add(job_id)
                    result.job_ids.append(job_id)
                    snapshot_at_submit[job_id] = dict(after)
                say(f"qlaunch{' -r' if reserve else ''} submitted job(s) "
                    f"{', '.join(new_ids) or 'none'} ({n_ready} READY)")
                if new_ids:
                    empty_rounds = 0
                    continue  # look again at once: the new jobs are in the queue now
                empty_rounds += 1
                if empty_rounds >= 3:
                    raise EngineError(
                        f"qlaunch submitted nothing {empty_rounds} times although {n_ready} "
                        "Fireworks are READY: does the FWorker's query/category select them? "
                        f"Last command: {' '.join(cmd)}\n{_tail(output, 30)}")
            time.sleep(poll_s)

    result.elapsed_s = time.monotonic() - t0
    say(f"done after {result.elapsed_s:.0f} s: "
        + ", ".join(f"{s}: {result.count(s)}" for s in sorted(set(result.fw_states.values()))))
    return result
