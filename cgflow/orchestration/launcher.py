"""Run a campaign's queued Fireworks: ``rlaunch rapidfire`` with its progress shown."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cgflow.settings import ENV_VARS


def rlaunch_command(lp_file: Path, fworker_file: Path | None) -> list[str]:
    """The ``rlaunch rapidfire`` command of a launchpad (and FireWorker) file."""
    exe = Path(sys.executable).with_name("rlaunch")
    cmd = [str(exe) if exe.exists() else "rlaunch", "-l", str(lp_file)]
    if fworker_file is not None:
        cmd += ["-w", str(fworker_file)]
    return cmd + ["rapidfire"]


class ProgressPrinter:
    """Reports a line whenever a Firework of the campaign changes state."""

    def __init__(self, launchpad: Any, campaign: str,
                 report: Callable[[str], None] = print) -> None:
        self.lp = launchpad
        self.campaign = campaign
        self.report = report
        self.seen: dict[int, str] = {}
        self.t0 = time.time()

    def update(self) -> None:
        """Report the state changes since the last call."""
        from cgflow.db.fw_queries import campaign_fireworks

        fws = campaign_fireworks(self.lp, self.campaign)
        sets = {f.param_id for f in fws if f.param_id}
        n_sets = len(sets)
        done_sets = sets - {f.param_id for f in fws if f.state != "COMPLETED"}
        order = {"COMPLETED": 0, "FIZZLED": 1, "RUNNING": 2}
        for f in sorted(fws, key=lambda f: (order.get(f.state, 3), f.fw_id)):
            if self.seen.get(f.fw_id) != f.state and f.state in order:
                el = time.time() - self.t0
                stamp = f"{int(el // 3600):02d}:{int(el % 3600 // 60):02d}:{int(el % 60):02d}"
                self.report(f"[{stamp}] {f.label:18s} {f.stage:15s} {f.state:10s} "
                            f"({len(done_sets)}/{n_sets} sets done)")
            self.seen[f.fw_id] = f.state


def launch(lp_file: Path, *, campaign: str | None = None, fworker_file: Path | None = None,
           log_path: Path | None = None, poll_s: float = 5.0,
           report: Callable[[str], None] = print) -> int:
    """Run ``rlaunch rapidfire`` until nothing is ready, reporting the campaign's progress.

    On the embedded server only one launcher may run at a time (the lock refuses a
    second one with a message pointing to MongoDB). Before rlaunch starts, stored
    Fireworks that name moved Firetask classes are renamed
    (:func:`cgflow.db.migrations.migrate_firetask_names`; one query per collection on an
    up-to-date database). Returns rlaunch's exit code.
    """
    from cgflow.db.launcher_lock import exclusive_launcher
    from cgflow.db.migrations import migrate_firetask_names
    from cgflow.db.store import open_launchpad

    lp = open_launchpad(lp_file)
    env = dict(os.environ, **{ENV_VARS["db_file"]: str(lp_file)})
    log_path = log_path or lp_file.parent / "rlaunch.log"
    with exclusive_launcher(Path(lp_file)), open(log_path, "ab") as log:
        migrated = migrate_firetask_names(lp.db)
        if migrated.changed:
            report(f"job database migrated: {migrated.summary()}")
        report(f"launching (rlaunch rapidfire, log: {log_path})")
        launch_dir = lp_file.parent.parent / "launches"
        launch_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(rlaunch_command(lp_file, fworker_file),  # noqa: S603
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=launch_dir)
        watcher = ProgressPrinter(lp, campaign, report) if campaign else None
        while proc.poll() is None:
            if watcher:
                watcher.update()
            time.sleep(poll_s)
        if watcher:
            watcher.update()
    if proc.returncode != 0:
        report(f"rlaunch exited with code {proc.returncode}; see {log_path}")
    return proc.returncode
