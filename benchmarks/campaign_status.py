"""How fast ``cgflow campaign status`` answers on a campaign of 300 parameter sets.

What is measured
----------------
:func:`cgflow.orchestration.status.campaign_status` (its queries: the campaign's Fireworks,
their launches in chunks of ids, the potentials of its sets; then the stage of each set
in Python; the per-query timings below are of the first version's single queries, kept
for comparison) and the
whole ``cgflow campaign status NAME -l LAUNCHPAD`` command (a new process: Python
start-up, imports, connection, the function, formatting), on a database that looks like
a campaign in progress. No simulation runs.

1. **The database.** A private embedded job database (SecantusDB) in a fresh temporary
   cgflow home (never ``~/.cgflow``). A campaign of 300 parameter sets with the CG stage
   (``space: wide``, ``n_sets: 299``, ``include_reference: true``, ``cg_stage: true``,
   ``preset: tiny``; 1801 Fireworks) is submitted with
   :func:`cgflow.orchestration.submit.submit_campaign`.
2. **A campaign in progress, without simulating.** The workflow is loaded as a FireWorks
   ``Workflow``; Launches are added to its Fireworks the way ``rlaunch`` does (a
   ``Launch`` RUNNING, then COMPLETED or FIZZLED with the ``FWAction`` the Firetask
   returns) and ``Workflow.refresh`` (FireWorks' own state logic) updates the states and
   applies the actions: each IBI iteration that continues adds the next one as a detour,
   made by :func:`cgflow.orchestration.firetasks.cg.iteration_firework` as the Firetask
   does; a failed task's launch stores ``action.stored_data._exception._stacktrace`` (a
   real Python traceback, of an ``EngineError`` raised in this script) as FireWorks' Rocket does.
   New Firework and launch ids come from FireWorks' id counters; the ``fireworks``,
   ``launches`` and ``workflows`` documents are written with FireWorks' own
   ``to_db_dict``. Launch times are made up (stage durations of a few minutes, one
   after another, ending now), so ``runtime_secs`` is filled. The sets, in campaign
   order: 100 done end to end (IBI converged after 3-6 iterations, CG production
   completed, converged potential stored), 10 with IBI unconverged after the ``tiny``
   limit of 8 iterations (CG production skipped, unconverged potential stored), 50 in
   IBI iteration 0-7 (that iteration READY), 10 FIZZLED (4 in ``aa-produce``, 3 in
   ``aa-equilibrate``, 3 in IBI iteration 2), 1 RUNNING (``aa-produce``), 20 further on
   in the all-atom stage (equilibrate, produce or analyse READY), 5 paused (``lpad
   pause_fw`` of their first Firework), and the other 104 untouched (``aa-build``
   READY). Potentials are written with :class:`cgflow.db.store.Store` (111-point
   tables, 120-point RDFs, the metrics of each iteration); ``aa_runs``,
   ``ibi_iterations`` and ``cg_runs`` are not written (the status does not read them).
   Before timing, the status is checked against this plan (stages per set, IBI
   iteration numbers, failure reasons, the RUNNING Firework, the Firework state counts,
   the summed run time); a mismatch stops the benchmark.
3. **Timing.** ``--repeats`` calls of the function in this process (connection already
   open), each with wall time, CPU time of this process and CPU time of the database
   server process. Then, interleaved ``--repeats`` times: the command as a subprocess
   (wall time and peak RSS, both from a small launcher process with ``wait4``: a
   child's ``ru_maxrss`` also counts the address space it was forked from),
   ``cgflow --help`` and ``python -c pass`` as start-up baselines, and a fresh Python
   process that does what the command does step by step (imports, connection, the call,
   the formatting; each timed) and measures the call's peak RSS (``VmHWM``, reset
   through ``/proc/self/clear_refs`` after the imports and the connection, against
   ``VmRSS`` just before the call). The peak of Python allocations of one call
   (``tracemalloc``) is taken in this process. The three queries are also repeated on
   their own (same filters and projections) to split the function's time; for
   comparison, the launches query with a half and a quarter of the ids and without a
   filter, and the potentials without validation and with a projection.
4. **Machine.** Date, ``nproc``, CPU model, the 1/5/15-minute load before and after.
   The machine may be shared with running simulations: then the wall times are upper
   bounds, and the CPU times are the steadier figure.

How to run
----------
::

    .venv/bin/python benchmarks/campaign_status.py                # 5 repeats
    .venv/bin/python benchmarks/campaign_status.py --repeats 10 --keep-home

The database server is stopped and the temporary home removed at the end, also on
error (``--keep-home`` keeps the home, with the server stopped). Results go to ``--out``
(default ``benchmarks/results/campaign_status.json``) and a Markdown summary beside it
(``.md``), which is also printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from _common import home_env, load_average, write_results

RESULTS_DEFAULT = Path(__file__).resolve().parent / "results" / "campaign_status.json"
CAMPAIGN = "status-bench"
#: Sets of the campaign: the OPLS-AA reference plus N_SAMPLED sampled ones.
N_SAMPLED = 299
#: What happens to the sets, in campaign (priority) order: (scenario, number of sets).
#: The untouched rest follows.
PLAN = (("done", 100), ("unconverged", 10), ("ibi", 50), ("failed", 10), ("running", 1),
        ("aa_progress", 20), ("paused", 5))
#: Made-up run time of each stage (s); each launch gets +-20 %.
STAGE_SECONDS = {"aa-build": 40.0, "aa-equilibrate": 240.0, "aa-produce": 420.0,
                 "aa-analyse": 25.0, "cg-ibi": 75.0, "cg-production": 180.0}
#: IBI iteration limit of the ``tiny`` CG preset (the spec sets none).
TINY_MAX_ITERATIONS = 8
#: Where the failed sets fail: (stage, IBI iteration or None), cycled over the sets.
FAILURES = (("aa-produce", None),) * 4 + (("aa-equilibrate", None),) * 3 + (("cg-ibi", 2),) * 3
AA_STAGES = ("aa-build", "aa-equilibrate", "aa-produce", "aa-analyse")
CLI_TIMEOUT_S = 300.0


class BenchmarkError(RuntimeError):
    """The benchmark could not set up its database or the status did not match the plan."""


def _say(msg: str) -> None:
    print(f"[campaign_status {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- machine --------------------------------------------------------------------------------



def _nproc() -> int:
    try:
        out = subprocess.run(["nproc"], capture_output=True, text=True, check=True,  # noqa: S607
                             timeout=10)
        return int(out.stdout.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        return len(os.sched_getaffinity(0))


def machine_facts() -> dict[str, Any]:
    """Date, nproc, CPU model and versions."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("cgflow", "fireworks", "pymongo", "pydantic"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "nproc": _nproc(), "cpu_model": cpu, "python": platform.python_version(),
            "versions": versions}


# --- the private home and its database --------------------------------------------------------



@contextlib.contextmanager
def private_database(keep_home: bool) -> Iterator[tuple[Path, Path, Any]]:
    """A fresh temporary cgflow home with its own embedded server running.

    Yields (home, launchpad file, server). The server started here is stopped at the
    end (only it: :meth:`EmbeddedServer.stop` signals the pid in this home's state
    file), and the home removed unless ``keep_home``; the environment is restored.
    """
    home = Path(tempfile.mkdtemp(prefix="cgflow-bench-status-"))
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(home_env(home))
    server = None
    try:
        from cgflow.db.server import EmbeddedServer
        from cgflow.orchestration.fw_configs import write_embedded_configs

        server = EmbeddedServer(home=home)
        t0 = time.perf_counter()
        uri = server.start()
        _say(f"private cgflow home {home}; embedded database at {uri} "
             f"({time.perf_counter() - t0:.1f} s to start)")
        yield home, write_embedded_configs(uri, home=home), server
    finally:
        if server is not None:
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - report and go on cleaning up
                _say(f"stopping the embedded database failed: {exc}")
        os.environ.clear()
        os.environ.update(saved)
        if keep_home:
            _say(f"home kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def write_spec(home: Path) -> Path:
    """The campaign spec: like workflows/reference.yaml, 300 sets, preset tiny."""
    spec = {"name": CAMPAIGN,
            "description": "Status benchmark (benchmarks/campaign_status.py); never run",
            "space": "wide", "n_sets": N_SAMPLED, "seed": 2026, "sampling": "lhs",
            "include_reference": True, "preset": "tiny", "cg_stage": True}
    path = home / f"{CAMPAIGN}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def submit(spec_path: Path, lp_file: Path, log: Path) -> float:
    """Submit with :func:`cgflow.orchestration.submit.submit_campaign` (FireWorks' log to
    ``log``)."""
    from cgflow.orchestration.submit import submit_campaign

    t0 = time.perf_counter()
    with log.open("w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        submit_campaign(str(spec_path), lp_file)
    return time.perf_counter() - t0


# --- a campaign in progress, without simulating ----------------------------------------------


def _traceback_of(exc: BaseException) -> str:
    """A real traceback string of ``exc`` (raised and caught here)."""
    try:
        raise exc
    except BaseException:  # noqa: BLE001 - we want its traceback, whatever it is
        return traceback.format_exc()


def _failure(stage: str, label: str, iteration: int | None) -> Exception:
    from cgflow.errors import EngineError

    if stage == "aa-produce":
        return EngineError(f"gmx mdrun (prod) of {label} failed after 3 attempts: "
                           "LINCS warnings, the system is blowing up")
    if stage == "aa-equilibrate":
        return EngineError(f"gmx grompp (npt) of {label} failed: 1 error in npt.mdp")
    return EngineError(f"LAMMPS (IBI iteration {iteration}) of {label} failed: "
                       "Lost atoms: original 343 current 341")


class FakeLauncher:
    """Runs Fireworks of an in-memory Workflow the way ``rlaunch`` would, without tasks.

    Each launch starts at the running clock and lasts its stage's made-up duration; the
    Workflow's own :meth:`refresh` sets the states and applies the actions (detours).
    """

    def __init__(self, wf: Any, fworker: Any, launch_root: Path, seed: int) -> None:
        self.wf = wf
        self.fworker = fworker
        self.launch_root = launch_root
        self.rng = random.Random(seed)
        self.clock = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self.launches: list[Any] = []
        self.exceptions: dict[int, str] = {}  # id(launch) -> last line of its stacktrace

    def _launch(self, fw: Any) -> tuple[Any, dt.datetime, dt.datetime]:
        from fireworks.core.firework import Launch

        if fw.state != "READY":
            raise BenchmarkError(f"{fw.name}: expected READY before running, got {fw.state}")
        secs = STAGE_SECONDS[fw.spec["cgflow_stage"]] * self.rng.uniform(0.8, 1.2)
        start = self.clock
        end = start + dt.timedelta(seconds=round(secs, 3))
        launch_dir = self.launch_root / f"launcher_{start:%Y-%m-%d-%H-%M-%S-%f}"
        launch = Launch("RUNNING", str(launch_dir), fworker=self.fworker, fw_id=fw.fw_id)
        launch.state_history[0].update(created_on=start, updated_on=end)
        self.clock = end + dt.timedelta(seconds=round(self.rng.uniform(0.2, 2.0), 3))
        return launch, start, end

    def run(self, fw: Any, action: Any = None, state: str = "COMPLETED") -> Any:
        """One launch of ``fw`` ending in ``state`` with ``action``; returns the Launch."""
        from fireworks import FWAction

        launch, _, end = self._launch(fw)
        # FireWorks stores the action, and applies the copy it reads back: keep the
        # stored one as it was returned (detours with their negative ids)
        stored = (action or FWAction()).to_dict()
        launch.action = action or FWAction()
        launch.state = state
        launch.state_history[-1]["created_on"] = end
        fw.launches.append(launch)
        self.wf.refresh(fw.fw_id)
        launch.action = FWAction.from_dict(stored)
        self.launches.append(launch)
        return launch

    def run_running(self, fw: Any, started_s_ago: float, pinged_s_ago: float) -> Any:
        """A launch still RUNNING (started and last pinged the given seconds before now)."""
        launch, _, _ = self._launch(fw)
        now = dt.datetime.now(dt.UTC)
        launch.state_history[0].update(created_on=now - dt.timedelta(seconds=started_s_ago),
                                       updated_on=now - dt.timedelta(seconds=pinged_s_ago))
        fw.launches.append(launch)
        self.wf.refresh(fw.fw_id)
        self.launches.append(launch)
        return launch

    def fizzle(self, fw: Any, exc: Exception) -> Any:
        """A launch that FIZZLED: the action FireWorks' Rocket stores for an exception."""
        from fireworks import FWAction

        tb = _traceback_of(exc)
        action = FWAction(stored_data={"_message": "runtime error during task",
                                       "_task": fw.tasks[0].to_dict(),
                                       "_exception": {"_stacktrace": tb, "_details": None}},
                          exit=True)
        launch = self.run(fw, action, state="FIZZLED")
        self.exceptions[id(launch)] = [ln for ln in tb.splitlines() if ln.strip()][-1].strip()
        return launch

    def shift_to(self, end: dt.datetime, skip: Any = None) -> None:
        """Move all finished launches so that the last one ends at ``end``."""
        finished = [la for la in self.launches if la is not skip]
        last = max(h["created_on"] for la in finished for h in la.state_history)
        delta = end - last
        for la in finished:
            for h in la.state_history:
                for key in ("created_on", "updated_on"):
                    if h.get(key) is not None:
                        h[key] = h[key] + delta


def _potential_doc(pid: str, converged: bool, n_iter: int, best: int,
                   rng: random.Random) -> dict[str, Any]:
    """A potential document of the shape IBI stores (tables, RDFs, metrics history)."""
    r = [round(0.1 + 0.01 * k, 6) for k in range(111)]
    sig, eps = 0.6 * rng.uniform(0.95, 1.05), 3.0 * rng.uniform(0.9, 1.1)
    u = [4 * eps * ((sig / x) ** 12 - (sig / x) ** 6) for x in r]
    f = [24 * eps * (2 * (sig / x) ** 12 - (sig / x) ** 6) / x for x in r]
    r_rdf = [round(0.005 + 0.01 * k, 6) for k in range(120)]
    g = [0.0 if x < 0.45 else 1.0 + 0.6 * (2.71828 ** (-((x - 0.65) / 0.08) ** 2)) for x in r_rdf]
    hist = [{"rdf_deviation": round(0.2 / (k + 1) + rng.uniform(0, 0.01), 5),
             "pressure_bar": round(rng.uniform(-300, 300) / (k + 1), 2),
             "pressure_deviation_bar": round(rng.uniform(-300, 300) / (k + 1), 2)}
            for k in range(n_iter)]
    if converged:
        reason = (f"converged at iteration {best}: RDF deviation "
                  f"{hist[best]['rdf_deviation']:.4g} (tolerance 0.02), pressure deviation "
                  f"{hist[best]['pressure_deviation_bar']:+.4g} bar (tolerance 50 bar)")
    else:
        reason = (f"not converged after {n_iter} iterations (max_iterations {n_iter}); best "
                  f"iteration {best} with score {rng.uniform(1.1, 3.0):.3g}")
    return {"param_id": pid, "campaign": CAMPAIGN, "preset": "tiny", "converged": converged,
            "reason": reason, "n_iterations": n_iter, "best_iteration": best,
            "potential": {"r_nm": r, "u_kj_mol": u, "f_kj_mol_nm": f},
            "target_rdf": {"r_nm": r_rdf, "g": g, "n_frames": 0},
            "final_rdf": {"r_nm": r_rdf, "g": g, "n_frames": 5},
            "metrics_history": hist,
            "diagnosis": "converged" if converged else "max_iterations"}


def _ibi_continue(fw: Any, iteration: int, rng: random.Random) -> Any:
    """The FWAction of an IBI iteration that continues: the next iteration as a detour,
    made as :class:`cgflow.orchestration.firetasks.cg.IBIIterationTask` makes it."""
    from fireworks import FWAction, Workflow

    from cgflow.orchestration.firetasks.cg import iteration_firework
    from cgflow.stages.cg import IterationPlan

    task = fw.tasks[0]
    params = {k: task[k] for k in ("campaign", "param_set", "preset", "ibi", "threads")
              if k in task}
    spec = {k: fw.spec[k] for k in ("campaign", "param_id", "label", "_category", "_priority")
            if k in fw.spec}
    nxt = iteration_firework(params, spec, IterationPlan(
        iteration=iteration + 1, update_factor=round(rng.uniform(0.1, 0.3), 3)))
    return FWAction(detours=[Workflow.from_firework(nxt)], stored_data={
        "rdf_deviation": round(rng.uniform(0.02, 0.2), 5),
        "pressure_deviation_bar": round(rng.uniform(-300, 300), 2), "decision": "improving"})


def _run_ibi(fl: FakeLauncher, fws: dict[str, Any], pid: str, n_complete: int,
             final: Any | None, rng: random.Random) -> Any:
    """Complete IBI iterations 0..n_complete-1 of set ``pid``; the last one gets
    ``final`` as its action (None: it continues too). Returns the next iteration's
    Firework (or None)."""
    fw = fws["cg-ibi"]
    for it in range(n_complete):
        last = it == n_complete - 1
        if last and final is not None:
            fl.run(fw, final)
            return None
        fl.run(fw, _ibi_continue(fw, it, rng))
        fw = _current_ibi(fl.wf, pid)
    return fw


def _current_ibi(wf: Any, pid: str) -> Any:
    """The IBI iteration Firework of ``pid`` with the highest iteration number."""
    its = [f for f in wf.id_fw.values()
           if f.spec.get("param_id") == pid and f.spec.get("cgflow_stage") == "cg-ibi"]
    return max(its, key=lambda f: f.spec.get("ibi_iteration", 0))


def _aa_actions() -> dict[str, Any]:
    from fireworks import FWAction

    return {"aa-build": FWAction(stored_data={"stages": ["em"]}),
            "aa-equilibrate": FWAction(stored_data={"stages": ["nvt", "npt"]}),
            "aa-produce": FWAction(stored_data={"stages": ["prod"]})}


def make_progress(lp: Any, lp_file: Path, home: Path, store: Any,
                  seed: int = 1) -> dict[str, Any]:
    """Turn the freshly submitted campaign into one in progress (see the module docstring).

    Returns the expected status: stage per param_id, failure reasons, the RUNNING
    Firework, the summed run time, and counts.
    """
    from fireworks import FWAction, FWorker, Workflow
    from fireworks.core.firework import Firework

    wf_doc = lp.workflows.find_one({"metadata.cgflow_campaign": CAMPAIGN})
    if wf_doc is None:
        raise BenchmarkError(f"no workflow of campaign {CAMPAIGN} after submitting")
    docs = list(lp.fireworks.find({"fw_id": {"$in": wf_doc["nodes"]}}))
    wf = Workflow([Firework.from_dict(d) for d in docs], wf_doc["links"], wf_doc["name"],
                  wf_doc["metadata"], wf_doc["created_on"], wf_doc["updated_on"])
    by_set: dict[str, dict[str, Any]] = {}
    for fw in wf.id_fw.values():
        if fw.spec.get("cgflow_stage") != "train":
            by_set.setdefault(fw.spec["param_id"], {})[fw.spec["cgflow_stage"]] = fw
    order = list(wf.metadata["param_ids"])
    if len(order) != N_SAMPLED + 1 or set(order) != set(by_set):
        raise BenchmarkError(f"expected {N_SAMPLED + 1} parameter sets, got {len(order)}")

    fworker = FWorker.from_file(str(lp_file.parent / "my_fworker.yaml"))
    fl = FakeLauncher(wf, fworker, home / "launches", seed)
    rng = random.Random(seed + 1)
    aa_act = _aa_actions()
    scenario = []
    for name, n in PLAN:
        scenario += [name] * n
    scenario += ["untouched"] * (len(order) - len(scenario))
    expected: dict[str, str] = {}
    detail: dict[str, str] = {}
    reasons: list[str] = []
    potentials: list[dict[str, Any]] = []
    running = None
    counters: Counter = Counter()

    def run_aa(fws: dict[str, Any], upto: int) -> None:
        for st in AA_STAGES[:upto]:
            act = (FWAction(stored_data={"density_kg_m3": round(rng.uniform(650, 800), 2),
                                         "d_nm2_ps": round(rng.uniform(1e-3, 4e-3), 6)})
                   if st == "aa-analyse" else aa_act[st])
            fl.run(fws[st], act)

    for pid, what in zip(order, scenario, strict=True):
        fws = by_set[pid]
        k = counters[what]
        counters[what] += 1
        if what == "done":
            run_aa(fws, 4)
            n_it = 3 + k % 4
            final = FWAction(stored_data={"ibi": "converged", "reason": "converged",
                                          "best_iteration": n_it - 1})
            _run_ibi(fl, fws, pid, n_it, final, rng)
            fl.run(fws["cg-production"], FWAction(stored_data={
                "alpha": round(rng.uniform(2, 8), 3),
                "alpha_err": round(rng.uniform(0.1, 0.5), 3)}))
            potentials.append(_potential_doc(pid, True, n_it, n_it - 1, rng))
            expected[pid] = "done"
        elif what == "unconverged":
            run_aa(fws, 4)
            n_it = TINY_MAX_ITERATIONS
            doc = _potential_doc(pid, False, n_it, n_it - 2, rng)
            final = FWAction(stored_data={"ibi": "unconverged", "reason": doc["reason"],
                                          "best_iteration": n_it - 2})
            _run_ibi(fl, fws, pid, n_it, final, rng)
            fl.run(fws["cg-production"],
                   FWAction(stored_data={"skipped": f"IBI unconverged: {doc['reason']}"}))
            potentials.append(doc)
            expected[pid] = "unconverged"
            detail[pid] = doc["reason"]
        elif what == "ibi":
            run_aa(fws, 4)
            n = k % TINY_MAX_ITERATIONS
            _run_ibi(fl, fws, pid, n, None, rng)
            expected[pid] = f"IBI iteration {n}"
            detail[pid] = "READY"
        elif what == "failed":
            stage, it = FAILURES[k % len(FAILURES)]
            label = fws["aa-build"].spec["label"]
            if stage == "cg-ibi":
                run_aa(fws, 4)
                fw = _run_ibi(fl, fws, pid, it, None, rng)
            else:
                run_aa(fws, AA_STAGES.index(stage))
                fw = fws[stage]
            launch = fl.fizzle(fw, _failure(stage, label, it))
            reasons.append(fl.exceptions[id(launch)])
            expected[pid] = "failed"
            detail[pid] = f"{stage} FIZZLED"
        elif what == "running":
            run_aa(fws, 2)
            running = fws["aa-produce"]
            expected[pid] = "AA produce"
            detail[pid] = "RUNNING"
        elif what == "aa_progress":
            upto = 1 + k % 3
            run_aa(fws, upto)
            expected[pid] = f"AA {AA_STAGES[upto][3:]}"
            detail[pid] = "READY"
        elif what == "paused":
            fw = fws["aa-build"]  # as `lpad pause_fw` does: state PAUSED, then refresh
            fw.state = "PAUSED"
            wf.refresh(fw.fw_id)
            expected[pid] = "waiting"
        else:
            expected[pid] = "AA build"
            detail[pid] = "READY"
    fl.shift_to(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=300))
    run_launch = fl.run_running(running, started_s_ago=200.0, pinged_s_ago=20.0)

    # new ids from FireWorks' counters, as LaunchPad._upsert_fws / get_new_launch_id give
    new_fws = sorted((f for f in wf.id_fw.values() if f.fw_id < 0), key=lambda f: -f.fw_id)
    old_new: dict[int, int] = {}
    if new_fws:
        first = lp.get_new_fw_id(quantity=len(new_fws))
        for i, fw in enumerate(new_fws):
            old_new[fw.fw_id] = first + i
            for la in fw.launches:
                la.fw_id = first + i
            fw.fw_id = first + i
        wf._reassign_ids(old_new)  # noqa: SLF001 - what LaunchPad._update_wf does
    fl.launches.sort(key=lambda la: la.state_history[0]["created_on"])
    first_lid = lp.fw_id_assigner.find_one_and_update(
        {}, {"$inc": {"next_launch_id": len(fl.launches)}})["next_launch_id"]
    for i, la in enumerate(fl.launches):
        la.launch_id = first_lid + i

    lp.launches.insert_many([la.to_db_dict() for la in fl.launches])
    lp.fireworks.delete_many({"fw_id": {"$in": list(wf.id_fw)}})
    lp.fireworks.insert_many([fw.to_db_dict() for fw in wf.id_fw.values()])
    lp.workflows.replace_one({"_id": wf_doc["_id"]}, wf.to_db_dict())
    for doc in potentials:
        store.save_potential(doc)

    runtime = sum(la.runtime_secs or 0.0 for la in fl.launches)
    return {"stage": expected, "detail": detail, "reasons": sorted(reasons),
            "running_fw_id": running.fw_id, "running_host": run_launch.host,
            "time_spent_s": runtime, "n_launches": len(fl.launches),
            # the running launch counts from its start until the status is read
            "running_started": run_launch.state_history[0]["created_on"],
            "n_detours": len(new_fws), "n_potentials": len(potentials),
            "scenarios": dict(Counter(scenario)), "wf_state": wf.state}


# --- checks ----------------------------------------------------------------------------------


def _fold(stage: str) -> str:
    return "IBI" if stage.startswith("IBI") else stage


def check_status(status: Any, exp: dict[str, Any], lp: Any) -> dict[str, Any]:
    """Compare the status with the plan and with the database; raise on a mismatch."""
    problems = []
    got = {s.param_id: s for s in status.sets}
    if set(got) != set(exp["stage"]):
        problems.append(f"sets: {len(got)} reported, {len(exp['stage'])} expected")
    for pid, stage in exp["stage"].items():
        s = got.get(pid)
        if s is None or s.stage != stage:
            problems.append(f"{pid}: stage {s.stage if s else None!r}, expected {stage!r}")
        elif pid in exp["detail"] and s.detail != exp["detail"][pid]:
            problems.append(f"{pid}: detail {s.detail!r}, expected {exp['detail'][pid]!r}")
    db_states = Counter(d["state"] for d in lp.fireworks.find({"spec.campaign": CAMPAIGN},
                                                               {"state": 1}))
    if dict(status.fw_states) != dict(db_states):
        problems.append(f"Firework states {dict(status.fw_states)} != database {dict(db_states)}")
    wf_states = Counter(lp.workflows.find_one({"metadata.cgflow_campaign": CAMPAIGN})
                        ["fw_states"].values())
    if wf_states != db_states:
        problems.append(f"workflow document fw_states {dict(wf_states)} != Fireworks "
                        f"{dict(db_states)}")
    if sorted(r["reason"] for r in status.failed) != exp["reasons"]:
        problems.append(f"failure reasons {[r['reason'] for r in status.failed]} != "
                        f"{exp['reasons']}")
    if [(r["fw_id"], r.get("host")) for r in status.running] != [(exp["running_fw_id"],
                                                                  exp["running_host"])]:
        problems.append(f"running {status.running}, expected fw {exp['running_fw_id']}")
    if len(status.queued) != db_states.get("READY", 0) + db_states.get("RESERVED", 0):
        problems.append(f"{len(status.queued)} queued, database has {db_states.get('READY')}")
    started = exp["running_started"]
    if started.tzinfo is None:
        started = started.replace(tzinfo=dt.UTC)
    want = exp["time_spent_s"] + (dt.datetime.now(dt.UTC) - started).total_seconds()
    if abs(status.time_spent_s - want) > 5.0 + 1e-3 * want:
        problems.append(f"time spent {status.time_spent_s} s, expected {want} s")
    if problems:
        raise BenchmarkError("the status does not match the campaign made:\n  "
                             + "\n  ".join(problems[:20]))
    return {"stage_counts": dict(sorted(status.stage_counts().items())),
            "expected_stage_counts": dict(sorted(Counter(
                _fold(v) for v in exp["stage"].values()).items())),
            "ibi_iterations": dict(sorted(Counter(
                s.stage for s in status.sets if s.stage.startswith("IBI")).items())),
            "fw_states": dict(sorted(status.fw_states.items())),
            "n_running": len(status.running), "n_queued": len(status.queued),
            "n_failed": len(status.failed), "time_spent_h": round(status.time_spent_s / 3600, 3),
            "failed_reason_example": status.failed[0]["reason"] if status.failed else None,
            "workflow_state": exp["wf_state"]}


# --- timing ----------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values),
            "values": values}


def _proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (from /proc; None if unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def time_function(lp: Any, store: Any, repeats: int, server_pid: int | None) -> dict[str, Any]:
    """``repeats`` calls of campaign_status: wall, CPU here, CPU of the server."""
    from cgflow.orchestration.status import campaign_status

    wall, cpu, srv = [], [], []
    for _ in range(repeats):
        s0 = _proc_cpu_s(server_pid) if server_pid else None
        c0, t0 = time.process_time(), time.perf_counter()
        campaign_status(lp, store, CAMPAIGN)
        t1, c1 = time.perf_counter(), time.process_time()
        s1 = _proc_cpu_s(server_pid) if server_pid else None
        wall.append(round(t1 - t0, 4))
        cpu.append(round(c1 - c0, 4))
        if s0 is not None and s1 is not None:
            srv.append(round(s1 - s0, 3))
    return {"wall_s": _stats(wall), "cpu_s_client": _stats(cpu),
            "cpu_s_server": _stats(srv) if srv else None}


def measure_tracemalloc(lp: Any, store: Any) -> dict[str, Any]:
    """Peak Python allocations of one campaign_status call (tracemalloc, in this process)."""
    from cgflow.orchestration.status import campaign_status

    gc.collect()
    tracemalloc.start()
    campaign_status(lp, store, CAMPAIGN)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"tracemalloc_peak_mib": round(peak / 2**20, 2)}


#: A fresh process that splits the command's time and measures the call's peak RSS:
#: imports, connection, then (peak RSS reset through /proc/self/clear_refs) the call,
#: then the formatting. Arguments: launchpad file, campaign.
_CHILD = """
import gc, json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from fireworks import LaunchPad
from cgflow.orchestration.status import campaign_status, format_status
from cgflow.db.store import Store
t1 = time.perf_counter()
def kib(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
lp = LaunchPad.from_file(sys.argv[1])
store = Store.from_launchpad(lp)
store.ping()
t2 = time.perf_counter()
gc.collect()
try:
    Path("/proc/self/clear_refs").write_text("5")
    reset = True
except OSError:
    reset = False
rss0 = kib("VmRSS")
t3 = time.perf_counter()
status = campaign_status(lp, store, sys.argv[2])
t4 = time.perf_counter()
hwm = kib("VmHWM")
text = format_status(status)
t5 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "connect_s": t2 - t1, "call_s": t4 - t3,
                  "format_s": t5 - t4, "rss_before_mib": rss0 / 1024,
                  "rss_peak_mib": hwm / 1024, "hwm_reset": reset}))
"""


def time_queries(lp: Any, store: Any, repeats: int) -> dict[str, Any]:
    """The function's three queries on their own (same filters and projections); for
    comparison the launches query with fewer ids and without a filter, and the potentials
    read raw and with a projection."""
    from cgflow.db.store import POTENTIALS

    fw_proj = {"fw_id": 1, "name": 1, "state": 1, "launches": 1, "spec.param_id": 1,
               "spec.label": 1, "spec.cgflow_stage": 1, "spec.ibi_iteration": 1}
    la_proj = {"launch_id": 1, "runtime_secs": 1, "action.stored_data._exception._stacktrace": 1,
               "state_history": 1, "host": 1}
    ids = [lid for f in lp.fireworks.find({"spec.campaign": CAMPAIGN}, {"launches": 1})
           for lid in f.get("launches") or []]
    coll = store.db[POTENTIALS]
    n = len(ids)
    parts: dict[str, Callable[[], Any]] = {
        "fireworks": lambda: list(lp.fireworks.find({"spec.campaign": CAMPAIGN}, fw_proj)),
        f"launches ($in of all {n} ids)":
            lambda: list(lp.launches.find({"launch_id": {"$in": ids}}, la_proj)),
        f"launches ($in of {n // 2} ids)":
            lambda: list(lp.launches.find({"launch_id": {"$in": ids[: n // 2]}}, la_proj)),
        f"launches ($in of {n // 4} ids)":
            lambda: list(lp.launches.find({"launch_id": {"$in": ids[: n // 4]}}, la_proj)),
        f"launches (all {n} ids in $in chunks of 250, as campaign_status does)":
            lambda: [d for k in range(0, n, 250)
                     for d in lp.launches.find({"launch_id": {"$in": ids[k:k + 250]}},
                                               la_proj)],
        "launches (whole collection, no filter, same projection)":
            lambda: list(lp.launches.find({}, la_proj)),
        "potentials (Store.potentials: full documents, validated)":
            lambda: store.potentials(campaign=CAMPAIGN),
        "potentials raw (same documents, no validation)":
            lambda: list(coll.find({"campaign": CAMPAIGN})),
        "potentials projected (param_id, converged, reason)":
            lambda: list(coll.find({"campaign": CAMPAIGN},
                                   {"param_id": 1, "converged": 1, "reason": 1})),
    }
    out = {}
    for name, fn in parts.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(round(time.perf_counter() - t0, 4))
        out[name] = _stats(times)
    return out


def database_facts(lp: Any, store: Any) -> dict[str, Any]:
    """Numbers and sizes of the documents the status reads; indexes of ``fireworks``."""
    import bson

    from cgflow.db.store import POTENTIALS

    fws = list(lp.fireworks.find({"spec.campaign": CAMPAIGN}))
    ids = [lid for f in fws for lid in f.get("launches") or []]
    launches = list(lp.launches.find({"launch_id": {"$in": ids}}))
    pots = list(store.db[POTENTIALS].find({"campaign": CAMPAIGN}))

    def size(docs: list[dict]) -> float:
        return round(sum(len(bson.encode(d)) for d in docs) / 2**20, 3)

    return {"n_fireworks": len(fws), "n_launches": len(launches), "n_potentials": len(pots),
            "n_fireworks_in_database": lp.fireworks.count_documents({}),
            "mib_fireworks_full": size(fws), "mib_launches_full": size(launches),
            "mib_potentials_full": size(pots),
            "fireworks_indexes": sorted(lp.fireworks.index_information()),
            "potentials_indexes": sorted(store.db[POTENTIALS].index_information())}


def _cgflow_exe() -> list[str]:
    exe = Path(sys.executable).with_name("cgflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cgflow.cli.main"]


#: Starts a command and reports its wall time, exit code and peak RSS (``wait4``).
#: A small process of its own: a child's ``ru_maxrss`` also counts the address space
#: it was forked from, which would be this (large) benchmark process.
#: Arguments: timeout s, output file, command...
_SPAWN = """
import json, os, subprocess, sys, time
timeout, out, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
with open(out, "wb") as fh:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.001)
    wall = time.perf_counter() - t0
p.returncode = os.waitstatus_to_exitcode(status)
print(json.dumps({"wall_s": wall, "rc": p.returncode, "maxrss_mib": ru.ru_maxrss / 1024}))
"""


def run_child(cmd: list[str], env: dict[str, str], cwd: Path,
              out: Path) -> tuple[float, int, float]:
    """Run ``cmd`` (through ``_SPAWN``); returns (wall s, exit code, peak RSS MiB)."""
    res = subprocess.run([sys.executable, "-c", _SPAWN, str(CLI_TIMEOUT_S), str(out), *cmd],  # noqa: S603
                         capture_output=True, text=True, env=env, cwd=cwd,
                         timeout=CLI_TIMEOUT_S + 60, check=False)
    if res.returncode != 0:
        raise BenchmarkError(f"starting {cmd[:3]} failed: {res.stderr[-2000:]}")
    r = json.loads(res.stdout.strip().splitlines()[-1])
    return r["wall_s"], r["rc"], r["maxrss_mib"]


def time_cli(home: Path, lp_file: Path, repeats: int) -> dict[str, Any]:
    """``cgflow campaign status`` as a new process; ``cgflow --help`` and ``python -c pass``
    as start-up baselines; the split/memory child (``_CHILD``). Interleaved, so that the
    variants see similar load."""
    env = home_env(home)
    logs = home / "bench-logs"
    logs.mkdir(exist_ok=True)
    variants = {"status": _cgflow_exe() + ["campaign", "status", CAMPAIGN, "-l", str(lp_file)],
                "help": _cgflow_exe() + ["--help"],
                "python": [sys.executable, "-c", "pass"],
                "child": [sys.executable, "-c", _CHILD, str(lp_file), CAMPAIGN]}
    res: dict[str, dict[str, list]] = {k: {"wall": [], "rss": []} for k in variants}
    child: list[dict[str, Any]] = []
    text = ""
    for i in range(repeats):
        for name, cmd in variants.items():
            out = logs / f"{name}-{i}.out"
            wall, rc, rss = run_child(cmd, env, home, out)
            if rc != 0:
                raise BenchmarkError(f"{' '.join(cmd[:3])} ... exited with {rc}:\n"
                                     + out.read_text(errors="replace")[-3000:])
            res[name]["wall"].append(round(wall, 4))
            res[name]["rss"].append(round(rss, 1))
            if name == "status":
                text = out.read_text()
            elif name == "child":
                child.append(json.loads(out.read_text().strip().splitlines()[-1]))
    split = {k: _stats([round(c[k], 4) for c in child])
             for k in ("import_s", "connect_s", "call_s", "format_s", "rss_before_mib",
                       "rss_peak_mib")}
    split["rss_call_increase_mib"] = _stats(
        [round(c["rss_peak_mib"] - c["rss_before_mib"], 1) for c in child])
    split["hwm_reset"] = all(c["hwm_reset"] for c in child)
    return {"command": "cgflow campaign status " + CAMPAIGN + " -l <launchpad file>",
            "status_wall_s": _stats(res["status"]["wall"]),
            "status_peak_rss_mib": _stats(res["status"]["rss"]),
            "help_peak_rss_mib": _stats(res["help"]["rss"]),
            "help_wall_s": _stats(res["help"]["wall"]),
            "python_startup_wall_s": _stats(res["python"]["wall"]),
            "fresh_process_split": split,
            "output_lines": len(text.splitlines()), "output_bytes": len(text.encode()),
            "output_head": text.splitlines()[:2]}


# --- the run ---------------------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Set up the database, check the status, time it; returns the results."""
    machine = machine_facts()
    machine["load_before"] = load_average()
    _say(f"nproc {machine['nproc']}, load {machine['load_before']}")
    with private_database(args.keep_home) as (home, lp_file, server):
        from fireworks import LaunchPad

        from cgflow.db.store import Store
        from cgflow.orchestration.status import campaign_status, format_status

        (home / "bench-logs").mkdir(exist_ok=True)
        spec_path = write_spec(home)
        spec = yaml.safe_load(spec_path.read_text())
        submit_s = submit(spec_path, lp_file, home / "bench-logs" / "submit.out")
        _say(f"submitted campaign {CAMPAIGN} ({submit_s:.1f} s)")
        lp = LaunchPad.from_file(str(lp_file))
        lp.m_logger.setLevel("WARNING")
        server_pid = (server.read_state() or {}).get("pid")
        with Store.from_launchpad(lp) as store:
            t0 = time.perf_counter()
            exp = make_progress(lp, lp_file, home, store, seed=args.seed)
            progress_s = time.perf_counter() - t0
            _say(f"campaign in progress made in {progress_s:.1f} s: {exp['n_launches']} "
                 f"launches, {exp['n_detours']} IBI detours, {exp['n_potentials']} potentials")
            db = database_facts(lp, store)
            status = campaign_status(lp, store, CAMPAIGN)
            check = check_status(status, exp, lp)
            _say("status matches the plan; sets by stage: " + ", ".join(
                f"{k} {v}" for k, v in check["stage_counts"].items()))
            _say("IBI iterations: " + ", ".join(f"{k[14:]}: {v}"
                                                for k, v in check["ibi_iterations"].items()))
            _say(f"Fireworks by state: {check['fw_states']}; {check['n_failed']} failed "
                 f"(e.g. {check['failed_reason_example']!r})")
            (home / "bench-logs" / "status.txt").write_text(format_status(status))
            del status

            load_fn = load_average()
            _say(f"timing the function ({args.repeats} calls; load {load_fn})")
            fn = time_function(lp, store, args.repeats, server_pid)
            fn["memory"] = measure_tracemalloc(lp, store)
            fn["load_before"] = load_fn
            parts = time_queries(lp, store, args.repeats)
        load_cli = load_average()
        _say(f"timing the command ({args.repeats} runs; load {load_cli})")
        cli = time_cli(home, lp_file, args.repeats)
        cli["load_before"] = load_cli
    machine["load_after"] = load_average()
    return _round({
        "benchmark": "campaign_status",
        "machine": machine,
        "shared_machine_note": ("The machine may be shared with running simulations; "
                                "wall times are then upper bounds (see the loads)."),
        "settings": {"repeats": args.repeats, "seed": args.seed, "campaign": CAMPAIGN,
                     "spec": spec,
                     "plan": exp["scenarios"]},
        "setup": {"submit_s": submit_s, "make_progress_s": progress_s,
                  "n_launches_made": exp["n_launches"], "n_ibi_detours": exp["n_detours"]},
        "database": db,
        "status_check": check,
        "function": fn,
        "function_parts": parts,
        "cli": cli,
    })


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


def _f(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(r: dict[str, Any]) -> str:
    """The readable summary."""
    m, db, ck, fn, cli = r["machine"], r["database"], r["status_check"], r["function"], r["cli"]
    w, mem = fn["wall_s"], fn["memory"]
    srv = fn["cpu_s_server"]
    lines = [
        "# `cgflow campaign status` on a campaign of 300 parameter sets", "",
        "Written by `benchmarks/campaign_status.py` (see its docstring and "
        "`benchmarks/README.md`); numbers in `campaign_status.json`.", "",
        f"{m['date']}, `nproc` {m['nproc']} ({m['cpu_model']}), Python {m['python']}, "
        f"FireWorks {m['versions']['fireworks']}, embedded database (SecantusDB). "
        f"1-minute load before: {m['load_before'][0]}, after: {m['load_after'][0]} "
        f"(1/5/15 min: {m['load_before']} -> {m['load_after']}). The machine is shared with "
        "running simulations, so wall times are upper bounds; the CPU times are the steadier "
        "figure.", "",
        f"Database: {db['n_fireworks']} Fireworks, {db['n_launches']} launches, "
        f"{db['n_potentials']} potentials of the campaign ({db['mib_fireworks_full']} + "
        f"{db['mib_launches_full']} + {db['mib_potentials_full']} MiB as full documents). "
        f"Status as checked against the plan: "
        + ", ".join(f"{k} {v}" for k, v in ck["stage_counts"].items())
        + f"; Fireworks {ck['fw_states']}; {ck['n_queued']} queued, {ck['n_running']} "
        f"running, {ck['n_failed']} failed; time spent {ck['time_spent_h']} h.", "",
        f"| what ({w['n']} repeats) | mean s | min s | max s |",
        "| --- | ---: | ---: | ---: |",
        f"| `campaign_status()` in process, wall | {_f(w['mean'])} | {_f(w['min'])} | "
        f"{_f(w['max'])} |",
        f"| - CPU of this process | {_f(fn['cpu_s_client']['mean'])} | "
        f"{_f(fn['cpu_s_client']['min'])} | {_f(fn['cpu_s_client']['max'])} |",
    ]
    if srv:
        lines.append(f"| - CPU of the database server | {_f(srv['mean'])} | {_f(srv['min'])} "
                     f"| {_f(srv['max'])} |")
    for name, s in r["function_parts"].items():
        lines.append(f"| query alone: {name} | {_f(s['mean'])} | {_f(s['min'])} | "
                     f"{_f(s['max'])} |")
    for key, label in (("status_wall_s", f"`{cli['command']}` (new process)"),
                       ("help_wall_s", "`cgflow --help` (start-up baseline)"),
                       ("python_startup_wall_s", "`python -c pass`")):
        s = cli[key]
        lines.append(f"| {label} | {_f(s['mean'])} | {_f(s['min'])} | {_f(s['max'])} |")
    sp = cli["fresh_process_split"]
    lines += [
        "",
        f"The command in a fresh process, split ({sp['call_s']['n']} runs, mean s): imports "
        f"{_f(sp['import_s']['mean'])}, connection {_f(sp['connect_s']['mean'])}, "
        f"`campaign_status()` {_f(sp['call_s']['mean'])}, formatting "
        f"{_f(sp['format_s']['mean'])}.", "",
        f"Memory of one function call, in that fresh process: peak RSS "
        f"{_f(sp['rss_peak_mib']['mean'], 1)} MiB, "
        + (f"+{_f(sp['rss_call_increase_mib']['mean'], 1)} MiB (max "
           f"{_f(sp['rss_call_increase_mib']['max'], 1)}) over the "
           f"{_f(sp['rss_before_mib']['mean'], 1)} MiB before the call (imports and "
           "connection)" if sp["hwm_reset"] else
           "(the peak could not be reset before the call: it includes the imports)")
        + f"; peak Python allocations of the call (tracemalloc) "
        f"{mem['tracemalloc_peak_mib']} MiB. Peak RSS of the whole command: "
        f"{_f(cli['status_peak_rss_mib']['mean'], 1)} MiB (`cgflow --help`: "
        f"{_f(cli['help_peak_rss_mib']['mean'], 1)} MiB). The command prints "
        f"{cli['output_lines']} lines ({cli['output_bytes']} bytes).",
        "",
        f"Load (1 min) before the function timing: {fn['load_before'][0]}, before the command "
        f"timing: {cli['load_before'][0]}.", "",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="timed calls/runs of each (default 5)")
    p.add_argument("--seed", type=int, default=1, help="seed of the made-up durations")
    p.add_argument("--out", type=Path, default=RESULTS_DEFAULT,
                   help="JSON results file (a .md summary is written beside it)")
    p.add_argument("--keep-home", action="store_true",
                   help="keep the temporary cgflow home (database files) for inspection")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    results = run_benchmark(args)
    write_results(args.out, results, markdown(results), "campaign_status")
    _say(f"results: {args.out}, {args.out.with_suffix('.md')} and "
         f"{args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
