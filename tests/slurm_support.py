"""A single-node SLURM cluster for tests, started once per test session when needed.

Use in a test module::

    from slurm_support import slurm_cluster_fixture
    slurm = slurm_cluster_fixture()          # a session-scoped fixture named ``slurm``

If ``sinfo`` already answers, that cluster is used and left running. Otherwise, as root,
``tools/slurm/slurm.sh install`` (apt-get, once) and ``start`` are run, and ``stop`` at
the end of the session (which cancels every job first); when several test sessions run
at once, the last one to finish stops it. Tests are skipped, with the
reason, when SLURM is not running and cannot be started here (not root, no apt-get,
install failed) or when ``CGFLOW_TEST_SLURM=0``. A failure of ``start`` after a good
install is a test error, not a skip: it is a bug of the script.

Also: helpers to write the FireWorks files (launchpad, fworker, FW_config, qadapter) that
``qlaunch`` needs in a temporary folder, the qadapter adapted from the shipped
``launchpad_configs/my_qadapter.yaml`` through its documented keys only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SLURM_SCRIPT = REPO / "tools" / "slurm" / "slurm.sh"
SHIPPED_QADAPTER = REPO / "launchpad_configs" / "my_qadapter.yaml"
#: Placeholder of the config folder in the shipped qadapter's rocket_launch.
SHIPPED_CONFIG_DIR = "/path/to/cgflow/launchpad_configs"
#: Set to 0 to skip the SLURM tests.
ENABLE_ENV = "CGFLOW_TEST_SLURM"
#: Sessions using the cluster, and whether a test session started it.
REGISTRY = Path(tempfile.gettempdir()) / "cgflow-slurm-test-sessions"


@dataclass(frozen=True)
class SlurmCluster:
    """The cluster the tests use.

    Attributes
    ----------
    started_here
        This session started it (and stops it at the end).
    partition
        The default partition.
    """

    started_here: bool
    partition: str


def _run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)  # noqa: S603


def _tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def slurm_answers() -> bool:
    """Whether a SLURM controller is up (``scontrol ping``) and ``sinfo`` answers."""
    if not (shutil.which("scontrol") and shutil.which("sinfo")):
        return False
    try:
        ping = _run(["scontrol", "ping"], 15)
        if "is UP" not in ping.stdout:
            return False
        return _run(["sinfo", "-h"], 15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def default_partition() -> str:
    """Name of the default partition (``debug`` on the cluster of tools/slurm)."""
    out = _run(["sinfo", "-h", "-o", "%P"], 15).stdout.split()
    for name in out:
        if name.endswith("*"):
            return name.rstrip("*")
    return out[0] if out else "debug"


@contextlib.contextmanager
def _registry_lock() -> Iterator[Path]:
    """Hold the lock of the registry of test sessions using the cluster; yield its folder."""
    REGISTRY.mkdir(parents=True, exist_ok=True)
    (REGISTRY / "users").mkdir(exist_ok=True)
    with open(REGISTRY / "lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield REGISTRY
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _live_users(registry: Path) -> list[int]:
    """Pids of registered sessions still alive (entries of dead ones are removed)."""
    alive = []
    for entry in (registry / "users").iterdir():
        try:
            pid = int(entry.name)
            os.kill(pid, 0)
            alive.append(pid)
        except (ValueError, ProcessLookupError):
            entry.unlink(missing_ok=True)
        except PermissionError:
            alive.append(int(entry.name))
    return alive


def _bring_up() -> bool:
    """Install (if needed) and start SLURM; skip when impossible. Returns True if started."""
    if slurm_answers():
        return False
    if os.geteuid() != 0:
        pytest.skip("SLURM is not running and starting it needs root "
                    f"(run 'sudo {SLURM_SCRIPT} install && sudo {SLURM_SCRIPT} start')")
    installed = all(shutil.which(c) for c in ("slurmctld", "slurmd", "sbatch", "munged"))
    if not installed:
        if not shutil.which("apt-get"):
            pytest.skip("SLURM is not installed and there is no apt-get to install it")
        proc = _run(["bash", str(SLURM_SCRIPT), "install"], 900)
        if proc.returncode != 0:
            pytest.skip(f"could not install SLURM ({SLURM_SCRIPT} install, exit "
                        f"{proc.returncode}):\n{_tail(proc.stderr + proc.stdout)}")
    proc = _run(["bash", str(SLURM_SCRIPT), "start"], 180)
    if proc.returncode != 0:
        pytest.fail(f"{SLURM_SCRIPT} start failed (exit {proc.returncode}):\n"
                    f"{_tail(proc.stderr + proc.stdout, 40)}")
    return True


def start_cluster(pid: int | None = None) -> Iterator[SlurmCluster]:
    """Generator behind the session fixture: use, or install and start, a SLURM cluster.

    Test sessions that run at the same time share the cluster: each registers its pid
    under :data:`REGISTRY`; a cluster started by a test session is stopped by the last
    session to finish (a cluster started by hand is never stopped). ``pid`` (default:
    this process) is the id registered for the session.
    """
    if os.environ.get(ENABLE_ENV, "1") == "0":
        pytest.skip(f"SLURM tests disabled ({ENABLE_ENV}=0)")
    me = str(pid if pid is not None else os.getpid())
    with _registry_lock() as registry:
        started = _bring_up()
        if started:
            (registry / "started_by_tests").touch()
        (registry / "users" / me).touch()
    try:
        yield SlurmCluster(started_here=started, partition=default_partition())
    finally:
        with _registry_lock() as registry:
            (registry / "users" / me).unlink(missing_ok=True)
            marker = registry / "started_by_tests"
            if marker.exists() and not _live_users(registry):
                stop = _run(["bash", str(SLURM_SCRIPT), "stop"], 180)
                if stop.returncode != 0:
                    print(f"warning: {SLURM_SCRIPT} stop failed:\n"
                          f"{_tail(stop.stderr + stop.stdout)}", file=sys.stderr)
                marker.unlink(missing_ok=True)


def slurm_cluster_fixture(name: str = "slurm") -> Callable[..., Iterator[SlurmCluster]]:
    """A session-scoped pytest fixture (default name ``slurm``) yielding a SlurmCluster."""

    @pytest.fixture(scope="session", name=name)
    def _fixture() -> Iterator[SlurmCluster]:
        yield from start_cluster()

    return _fixture


# --- FireWorks files for qlaunch ---------------------------------------------------------


@dataclass(frozen=True)
class QlaunchFiles:
    """The FireWorks files of one test, all in one folder.

    Attributes
    ----------
    config_dir
        Holds my_launchpad.yaml, my_fworker.yaml, FW_config.yaml, my_qadapter.yaml.
    launchpad, fworker, fw_config, qadapter
        The files.
    launch_dir
        Where qlaunch writes its job folders.
    env
        The environment for qlaunch/lpad (``FW_CONFIG_FILE`` set); sbatch hands it on
        to the jobs.
    """

    config_dir: Path
    launchpad: Path
    fworker: Path
    fw_config: Path
    qadapter: Path
    launch_dir: Path
    env: dict[str, str]


def venv_activation() -> str:
    """Shell lines that put this interpreter's environment first in a job's login shell."""
    activate = Path(sys.prefix) / "bin" / "activate"
    if sys.prefix != sys.base_prefix and activate.is_file():
        return f"source {activate}"
    return f"export PATH={Path(sys.executable).parent}:$PATH"


def write_qlaunch_files(
    folder: Path,
    launchpad: Any,
    *,
    partition: str,
    walltime: str = "00:05:00",
    ping_time_s: int = 60,
    extra_pre_rocket: str = "",
    fworker_name: str = "slurm-test",
    fworker_env: dict[str, Any] | None = None,
) -> QlaunchFiles:
    """Write launchpad, fworker, FW_config and qadapter files for ``launchpad`` into ``folder``.

    The qadapter is the shipped ``launchpad_configs/my_qadapter.yaml`` with only its
    documented keys changed: ``queue`` (partition), ``account`` (none: no accounting
    here), ``walltime``, ``cpus_per_task`` 1 (two jobs fit the 2-CPU node),
    ``pre_rocket`` (activate this interpreter's environment, then ``extra_pre_rocket``),
    the config folder in ``rocket_launch`` and ``logdir``. ``fworker_env`` becomes the
    FireWorker's ``env`` (e.g. ``cgflow_work_root``).
    """
    config_dir = folder / "fw_config"
    launch_dir = folder / "launches"
    logdir = folder / "queue_logs"
    for d in (config_dir, launch_dir, logdir):
        d.mkdir(parents=True, exist_ok=True)
    lp_file = config_dir / "my_launchpad.yaml"
    launchpad.to_file(str(lp_file))
    fworker = config_dir / "my_fworker.yaml"
    fworker.write_text(yaml.safe_dump(
        {"name": fworker_name, "category": "", "query": "{}", "env": dict(fworker_env or {})},
        sort_keys=False))
    fw_config = config_dir / "FW_config.yaml"
    fw_config.write_text(yaml.safe_dump({
        "CONFIG_FILE_DIR": str(config_dir),
        "PING_TIME_SECS": ping_time_s,
        "RUN_EXPIRATION_SECS": ping_time_s * 4,
        "EXCEPT_DETAILS_ON_RERUN": True,
        "QUEUE_UPDATE_INTERVAL": 1,
    }, sort_keys=False))
    qa = yaml.safe_load(SHIPPED_QADAPTER.read_text())
    assert SHIPPED_CONFIG_DIR in qa["rocket_launch"], qa["rocket_launch"]
    qa["rocket_launch"] = qa["rocket_launch"].replace(SHIPPED_CONFIG_DIR, str(config_dir))
    qa["queue"] = partition
    qa["account"] = None
    qa["walltime"] = walltime
    qa["cpus_per_task"] = 1
    qa["logdir"] = str(logdir)
    qa["pre_rocket"] = "\n".join(line for line in (
        venv_activation(), f"export FW_CONFIG_FILE={fw_config}", "export OMP_NUM_THREADS=1",
        extra_pre_rocket) if line)
    qadapter = config_dir / "my_qadapter.yaml"
    qadapter.write_text(yaml.safe_dump(qa, sort_keys=False))
    env = dict(os.environ, FW_CONFIG_FILE=str(fw_config))
    return QlaunchFiles(config_dir=config_dir, launchpad=lp_file, fworker=fworker,
                        fw_config=fw_config, qadapter=qadapter, launch_dir=launch_dir, env=env)


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.5,
               what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)
