"""Faults of the launcher and the embedded job database during a real campaign, counted.

    .venv/bin/python benchmarks/launcher_faults.py          # the default faults (~25 min)
    .venv/bin/python benchmarks/launcher_faults.py --faults rlaunch*3 server:95 --trials 2

Each trial runs a ``tiny`` campaign of two sets (the OPLS-AA reference and one sampled
set, all-atom stage, GROMACS with one thread) with ``cgflow campaign submit`` and
``cgflow launch`` on a fresh embedded job database (authentication on, as by default) in
a private temporary cgflow home, and injects one fault once a Firework of the
equilibration or production stage runs (GROMACS is then running):

``rlaunch``
    ``kill -9`` of the launcher's ``rlaunch`` (its worker).
``wrapper``
    ``kill -9`` of the ``cgflow launch`` process itself. Somebody (here: this script, at
    once) has to run ``cgflow launch`` again: a new launcher is refused while the old
    worker lives, then accepted (the worker dies with its launcher).
``server:N``
    ``kill -9`` of the database server for N seconds, then ``cgflow db start`` (which
    takes the old port again, unless somebody else's server took it meanwhile: the
    running launch cannot follow it to another port).

A trial's outcome:

``without hand work``
    the campaign completed within the ``cgflow launch`` that was running (for the
    ``wrapper`` fault: within the one launch that had to be started again), no ``lpad``
    command, no second launch;
``after a new launch``
    the launch ended (a message, exit code 75 after a long outage) and one new
    ``cgflow launch`` completed the campaign, no ``lpad`` command;
``lost``
    Fireworks of the campaign not COMPLETED at the end, or sets without a completed
    all-atom run;
``duplicated``
    Fireworks with more than one COMPLETED launch, or a new launcher accepted while the
    old worker still lived.

Writes ``results/launcher_faults.{json,md}`` with the date, the machine and its load.
``benchmarks/faults.py`` (cheap faults of input, submission and outputs) is separate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from _common import cpu_model, home_env, load_average

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results"
#: Stages during which a fault is injected (GROMACS runs then).
FAULT_STAGES = ("aa-equilibrate", "aa-produce")
#: The faults of a default run, ``FAULT*N`` for N trials (``--trials`` multiplies).
DEFAULT_FAULTS = ["rlaunch*2", "wrapper*2", "server:10*2", "server:95", "server:400"]


def _say(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def _wait(cond: Any, timeout_s: float, what: str, poll_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(poll_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Trial:
    """One campaign with one fault, in a private cgflow home."""

    def __init__(self, fault: str, index: int, keep: bool) -> None:
        self.fault = fault
        self.home = Path(tempfile.mkdtemp(prefix="cgflow-launcher-faults-"))
        self.env = home_env(self.home)
        self.keep = keep
        self.campaign = f"faults-{fault.replace(':', '-')}-{index}"
        self.outputs: list[str] = []
        self.events: dict[str, Any] = {}

    def cgflow(self, *args: str, timeout_s: float = 900) -> subprocess.CompletedProcess:
        r = subprocess.run([str(BIN / "cgflow"), *args], capture_output=True, text=True,  # noqa: S603
                           env=self.env, timeout=timeout_s, check=False)
        self.outputs.append(f"$ cgflow {' '.join(args)}  (exit {r.returncode})\n"
                            + r.stdout + r.stderr)
        return r

    def start_launch(self, name: str) -> tuple[subprocess.Popen, Path]:
        out = self.home / f"{name}.out"
        with open(out, "w") as fh:
            proc = subprocess.Popen(  # noqa: S603
                [str(BIN / "cgflow"), "launch", "--campaign", self.campaign], stdout=fh,
                stderr=subprocess.STDOUT, env=self.env)
        return proc, out

    def launchpad(self) -> Any:
        from fireworks import LaunchPad

        return LaunchPad.from_file(str(self.home / "fw_config" / "my_launchpad.yaml"))

    def server(self, port: int | None = None) -> Any:
        from cgflow.db.server import EmbeddedServer

        return EmbeddedServer(home=self.home, port=port)

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads((self.home / "db" / "launcher.lock").read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def run(self) -> dict[str, Any]:
        from cgflow.db.server import pid_alive

        t0 = time.monotonic()
        load0 = load_average()
        spec = self.home / f"{self.campaign}.yaml"
        spec.write_text(yaml.safe_dump({
            "name": self.campaign, "space": "narrow", "n_sets": 1, "seed": 1,
            "sampling": "lhs", "include_reference": True, "preset": "tiny", "threads": 1},
            sort_keys=False))
        assert self.cgflow("db", "start").returncode == 0, self.outputs[-1]
        assert self.cgflow("campaign", "submit", str(spec)).returncode == 0, self.outputs[-1]
        lp = self.launchpad()
        launch, out = self.start_launch("launch-1")
        launches = [out]
        relaunches = 0
        _wait(lambda: lp.fireworks.find_one({"spec.campaign": self.campaign, "state": "RUNNING",
                                             "spec.cgflow_stage": {"$in": FAULT_STAGES}}),
              900, "a Firework of the equilibration or production stage to run")
        worker = int(_wait(lambda: self.holder().get("worker_pid"), 60, "the worker pid"))
        time.sleep(3)  # into the mdrun
        self.events["fault_at_s"] = round(time.monotonic() - t0, 1)
        kind, _, arg = self.fault.partition(":")
        if kind == "rlaunch":
            os.kill(worker, signal.SIGKILL)
        elif kind == "wrapper":
            os.kill(launch.pid, signal.SIGKILL)
            t_kill = time.monotonic()
            launch.wait(timeout=60)
            _wait(lambda: not pid_alive(worker), 120, "the orphaned worker to die", poll_s=0.01)
            self.events["worker_died_after_s"] = round(time.monotonic() - t_kill, 2)
            refused = accepted_while_alive = 0
            while True:  # what a person would do: start it again (here, at once)
                alive = pid_alive(worker)
                launch, out = self.start_launch(f"launch-{len(launches) + 1}")
                launches.append(out)
                time.sleep(8)
                if launch.poll() is None or "another launcher" not in out.read_text():
                    accepted_while_alive += int(alive)
                    break
                refused += 1
            self.events.update(refused_while_worker_lived=refused,
                               accepted_while_worker_lived=accepted_while_alive)
            relaunches += 1
        elif kind == "server":
            status = self.server().status()
            os.kill(status.pid, signal.SIGKILL)
            time.sleep(float(arg))
            assert self.cgflow("db", "start").returncode == 0, self.outputs[-1]
            # on its old port unless somebody else's server took it meanwhile
            self.events["came_back_on_its_port"] = self.server().status().port == status.port
        else:
            raise ValueError(f"unknown fault {self.fault!r}")
        rc = launch.wait(timeout=3600)
        first_rc = rc
        if rc != 0 or not self.campaign_done(lp):
            relaunches += 1
            launch, out = self.start_launch(f"launch-{len(launches) + 1}")
            launches.append(out)
            rc = launch.wait(timeout=3600)
        result = self.tally(self.launchpad())
        texts = [p.read_text() for p in launches]
        lines = [ln for t in texts for ln in t.splitlines()
                 if ln.startswith(("lost run rerun", "rlaunch was killed", "rlaunch exited",
                                   "job database", "the job database", "workflow ",
                                   "waiting for", "cgflow:"))]
        hand_free = result["lost"] == 0 and (relaunches == 0 or (
            kind == "wrapper" and relaunches == 1))
        result.update({
            "fault": self.fault, "campaign": self.campaign,
            "outcome": ("without hand work" if hand_free else
                        "after a new launch" if result["lost"] == 0 else "lost"),
            "first_launch_exit": first_rc, "last_launch_exit": rc,
            "launches": len(launches), "lpad_commands": 0,
            "tracebacks_in_launch_output": sum("Traceback" in t for t in texts),
            "messages": lines, "wall_s": round(time.monotonic() - t0, 1),
            "load_before": load0, "load_after": load_average(), **self.events,
        })
        return result

    def campaign_done(self, lp: Any) -> bool:
        states = {d["state"] for d in lp.fireworks.find({"spec.campaign": self.campaign},
                                                        {"state": 1})}
        return states == {"COMPLETED"}

    def tally(self, lp: Any) -> dict[str, Any]:
        from cgflow.db.store import Store

        fws = list(lp.fireworks.find({"spec.campaign": self.campaign}))
        not_done = [f["fw_id"] for f in fws if f["state"] != "COMPLETED"]
        twice, reruns = [], 0
        for f in fws:
            ids = list(f.get("archived_launches") or []) + list(f.get("launches") or [])
            states = [lp.launches.find_one({"launch_id": i})["state"] for i in ids]
            reruns += max(len(ids) - 1, 0)
            if states.count("COMPLETED") > 1:
                twice.append(f["fw_id"])
        with Store.from_launchpad(lp) as store:
            runs = store.aa_runs(campaign=self.campaign)
            sets = set(store.param_ids(self.campaign))
        completed = {r.param_id for r in runs if r.status == "completed"}
        return {"fireworks": len(fws), "not_completed": not_done,
                "sets": len(sets), "sets_completed": len(completed & sets),
                "lost": len(not_done) + len(sets - completed), "duplicated": len(twice)
                + int(self.events.get("accepted_while_worker_lived", 0)),
                "completed_twice": twice, "fireworks_rerun": reruns}

    def close(self) -> None:
        with open(self.home / "outputs.txt", "w") as fh:
            fh.write("\n".join(self.outputs))
        self.server().stop()
        if not self.keep:
            shutil.rmtree(self.home, ignore_errors=True)


def summarise(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for fault in dict.fromkeys(t["fault"] for t in trials):
        mine = [t for t in trials if t["fault"] == fault]
        rows.append({
            "fault": fault, "trials": len(mine),
            "without_hand_work": sum(t["outcome"] == "without hand work" for t in mine),
            "after_new_launch": sum(t["outcome"] == "after a new launch" for t in mine),
            "lost": sum(t["lost"] for t in mine),
            "duplicated": sum(t["duplicated"] for t in mine),
            "fireworks_rerun": sum(t["fireworks_rerun"] for t in mine),
            "wall_s": [t["wall_s"] for t in mine],
        })
    return rows


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    m = doc["machine"]
    lines = [
        "# Launcher and job-database faults during a `tiny` campaign",
        "",
        f"Measured {doc['date_utc']} on {m['cpu']} ({m['cpus']} CPUs), load "
        f"{doc['load_before']} before and {doc['load_after']} after (1/5/15 min; the "
        "machine was shared). Written by `benchmarks/launcher_faults.py`; every trial is a "
        "`tiny` campaign of two sets (reference + one sampled set, all-atom stage, 1 "
        "thread) on a fresh embedded job database with authentication, one fault injected "
        f"while GROMACS runs; {doc['wall_s'] / 60:.1f} min in all.",
        "",
        "| fault | trials | completed without hand work | completed after a new "
        "`cgflow launch` | lost | duplicated | Fireworks rerun | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in doc["summary"]:
        lines.append(f"| {r['fault']} | {r['trials']} | {r['without_hand_work']} | "
                     f"{r['after_new_launch']} | {r['lost']} | {r['duplicated']} | "
                     f"{r['fireworks_rerun']} | {', '.join(f'{w:.0f}' for w in r['wall_s'])} |")
    lines += ["", "No trial used an `lpad` command. `wrapper`: the killed `cgflow launch` "
              "has to be started again by somebody (here the script, at once); that one "
              "launch is counted as no hand work beyond it. What the launchers said:", ""]
    for t in doc["trials"]:
        extra = ""
        if "worker_died_after_s" in t:
            extra = (f" (its rlaunch died {t['worker_died_after_s']:.2f} s after the launcher "
                     f"was killed; a new launcher accepted while it lived: "
                     f"{t['accepted_while_worker_lived']})")
        if "came_back_on_its_port" in t:
            extra = (" (the server came back on its port)" if t["came_back_on_its_port"]
                     else " (the server came back on ANOTHER port: its port was taken)")
        lines.append(f"- **{t['fault']}** ({t['outcome']}, launch exit codes "
                     f"{t['first_launch_exit']} / {t['last_launch_exit']}, {t['launches']} "
                     f"launch(es), tracebacks in their output: "
                     f"{t['tracebacks_in_launch_output']}){extra}:")
        lines += [f"  - `{ln[:220]}`" for ln in t["messages"]] or ["  - (nothing special)"]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faults", nargs="+", default=DEFAULT_FAULTS,
                    help="rlaunch, wrapper, server:SECONDS, each with *N for N trials "
                         "(default: %(default)s)")
    ap.add_argument("--trials", type=int, default=1,
                    help="multiplies the trials of every fault (default 1)")
    ap.add_argument("--out", type=Path, default=RESULTS / "launcher_faults.json")
    ap.add_argument("--keep-home", action="store_true", help="keep each trial's home")
    args = ap.parse_args()
    t0 = time.monotonic()
    load0 = load_average()
    trials = []
    for item in args.faults:
        fault, _, times = item.partition("*")
        n = args.trials * (int(times) if times else 1)
        for i in range(n):
            _say(f"trial {i + 1}/{n}: {fault}")
            trial = Trial(fault, i, args.keep_home)
            try:
                result = trial.run()
            finally:
                trial.close()
            _say(f"  {result['outcome']}: lost {result['lost']}, duplicated "
                 f"{result['duplicated']}, {result['wall_s']:.0f} s")
            for line in result["messages"]:
                _say(f"    {line[:160]}")
            trials.append(result)
    doc = {
        "benchmark": "launcher_faults",
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count()},
        "load_before": load0, "load_after": load_average(),
        "wall_s": round(time.monotonic() - t0, 1),
        "summary": summarise(trials), "trials": trials,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    write_markdown(doc, args.out.with_suffix(".md"))
    _say(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
