"""Overhead of cgflow's all-atom workflow, and its mdrun speed, against bare GROMACS.

What is measured
----------------
1. **Workflow overhead.** A small campaign (default: preset ``tiny``, the OPLS-AA
   reference plus one sampled set, 2 threads) runs through FireWorks on a private embedded
   job database: ``cgflow campaign submit`` then ``cgflow launch``, each as its own
   process. Its wall time (start of ``submit`` to end of ``launch``) is compared with the
   engine's own time: the ``Time:`` wall seconds of the ``em``, ``nvt``, ``npt`` and
   ``prod`` md.log of every set (the minimisation log of GROMACS 2022 has no ``Time:``
   line: for ``em`` the mdrun process span stands in, start-up included), plus the
   analysis time (:func:`cgflow.stages.aa.analyse` timed again in this process on a copy
   of each set's ``prod.tpr/.xtc/.edr``).
   ``overhead = campaign wall - engine wall`` is reported in seconds, as a percentage of
   the campaign wall and of the engine wall, and split into parts:

   ``submit``
       the ``cgflow campaign submit`` process (start-up, spec validation, DB writes);
   ``launcher_startup``
       start of ``cgflow launch`` to the first Firework RUNNING (process start-ups of
       ``cgflow`` and ``rlaunch``, imports, LaunchPad, launcher lock);
   ``between_fireworks``
       gaps between one Firework's end and the next one's start (FireWorks queries,
       launcher directories, rapidfire's 0.15 s pauses);
   ``launcher_shutdown``
       last Firework end to the end of ``cgflow launch`` (``rlaunch`` exit plus the up to
       5 s progress poll of ``cgflow launch``; the part up to the last line of
       ``rlaunch.log`` is given separately);
   ``system_build``
       topology and ``gmx insert-molecules`` (``box.gro`` mtime minus ``molecule.gro``
       mtime);
   ``grompp_and_setup``
       per stage: ``<stage>.tpr`` mtime minus ``<stage>.mdp`` mtime (Custodian job
       set-up, input fingerprint, grompp);
   ``mdrun_startup``
       per stage: mdrun process span (``.tpr`` mtime to the last write of ``.log`` /
       ``.mdrun.out``) minus the log's ``Time:`` (process start, tpr reading, exit);
   ``custodian_after_mdrun``
       per stage: end of the supervised stage (``.mdp`` mtime + the stage's recorded
       ``wall_s``) minus the mdrun end (Custodian's 1 s polling, validation, log parsing);
   ``firetask_bookkeeping``
       the rest of the Fireworks' run times (result-store reads and writes, imports,
       ``gmx --version``) and the difference between the analysis as it ran in the
       workflow and as timed here.

   Approximations: file mtimes and FireWorks' state timestamps are wall-clock times
   with millisecond resolution or better; the split assumes each stage ran once (the
   ``attempts`` of each stage are recorded, and more than one makes the split of that
   stage approximate); the analysis is re-timed, not taken from the workflow, so its
   difference lands in ``firetask_bookkeeping``.

2. **ns/day against bare mdrun.** On the reference set's system (its ``prod.tpr``, same
   number of steps), three variants run in scratch directories, interleaved so that they
   see similar load, ``--repeats`` times each: ``cgflow_custodian`` = cgflow's production
   stage again as the campaign ran it (:func:`cgflow.jobs.gromacs.job.run_stage` on copies of
   ``prod.mdp``, ``npt.gro``, ``npt.cpt``, ``topol.top``: grompp, then mdrun under
   Custodian, checkpoints every ``checkpoint_minutes``); ``bare`` =
   ``gmx mdrun -s prod.tpr -nt <threads> -pin off`` (GROMACS' defaults, checkpoint every
   15 min); ``cgflow_flags`` = cgflow's mdrun command line (``-ntmpi 1 -ntomp <threads>
   -pin off -maxh .. -cpt <checkpoint_minutes>``) without Custodian. Their ns/day (mean,
   standard deviation, min, max, from the logs' ``Performance:`` line) and ratios are
   reported, with the ns/day of the campaign's own production (its ``prod.log``), which
   ran earlier and possibly under another load. Checkpoints written are counted from
   each log.

3. **Machine facts**: nproc, CPU model, 1/5/15-minute load before and after (and sampled
   during the timed parts), GROMACS version, date. The machine may be shared: before the
   timed parts the script waits (up to ``--wait-minutes`` in total) for the 1-minute load
   to fall to ``--max-load``; it runs anyway afterwards and records whether it was loaded.
   Our own runs add about ``threads`` to the load while they run.

How to run
----------
::

    .venv/bin/python benchmarks/aa_overhead.py                        # tiny: reference + 1 set
    .venv/bin/python benchmarks/aa_overhead.py --preset demo --n-sets 0   # reference only

A private cgflow home (a fresh temporary directory, never ``~/.cgflow``) holds the
embedded database and the run directories; its server is stopped at the end and the
directory removed unless ``--keep-home``. Results are merged into ``--out`` (default
``benchmarks/results/aa_overhead.json``, one entry per preset, replaced when that preset
runs again) and summarised in the Markdown file of the same name (``.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import figures
import yaml
from _common import cpu_model, home_env, load_average

from cgflow.engines import gromacs as eng
from cgflow.engines.gromacs_output import parse_md_log
from cgflow.errors import EngineError, InvalidInputError
from cgflow.jobs.gromacs.state import MDRUN_OUT_SUFFIX
from cgflow.params import OPLSAA_REFERENCE
from cgflow.presets import get_aa_preset

RESULTS_DEFAULT = Path(__file__).resolve().parent / "results" / "aa_overhead.json"
#: Stages of the all-atom run whose md.log is read, in run order.
STAGES = eng.STAGES
#: Seconds between load samples while waiting for a quiet machine and while timing.
LOAD_POLL_S = 15.0
#: Timeout of one bare mdrun (s).
BARE_TIMEOUT_S = 3600.0
#: Timeout of the whole campaign launch (s).
LAUNCH_TIMEOUT_S = 4 * 3600.0


def _say(msg: str) -> None:
    print(f"[aa_overhead {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- machine and load ------------------------------------------------------------------------




def machine_facts() -> dict[str, Any]:
    """nproc, CPU model, platform, Python and GROMACS versions, date (UTC)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gromacs_version": eng.gromacs_version(),
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class LoadSampler:
    """Samples ``os.getloadavg()`` every ``interval_s`` in a background thread."""

    def __init__(self, interval_s: float = LOAD_POLL_S) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.interval_s)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float | int]:
        """Mean and maximum of the sampled 1-minute load."""
        s = self.samples or [os.getloadavg()[0]]
        return {"load1_mean": round(statistics.fmean(s), 2), "load1_max": round(max(s), 2),
                "n_samples": len(s)}


class LoadGate:
    """Waits for a quiet machine, within one total budget shared by all waits."""

    def __init__(self, max_load: float, budget_s: float) -> None:
        self.max_load = max_load
        self.budget_s = budget_s
        self.waits: list[dict[str, Any]] = []

    def wait(self, what: str) -> dict[str, Any]:
        """Poll the 1-minute load until it is at most ``max_load`` or the budget is spent."""
        t0 = time.monotonic()
        start = load_average()
        while os.getloadavg()[0] > self.max_load and self.budget_s > 0:
            _say(f"1-minute load {os.getloadavg()[0]:.2f} > {self.max_load} before {what}; "
                 f"waiting (up to {self.budget_s:.0f} s more)")
            step = min(LOAD_POLL_S, self.budget_s)
            time.sleep(step)
            self.budget_s -= step
        entry = {"before": what, "load_at_start": start, "load_at_end": load_average(),
                 "waited_s": round(time.monotonic() - t0, 1),
                 "quiet": os.getloadavg()[0] <= self.max_load}
        self.waits.append(entry)
        if not entry["quiet"]:
            _say(f"machine still loaded ({entry['load_at_end']}) before {what}; running anyway")
        return entry


# --- the cgflow command and its private home ---------------------------------------------------


def _cgflow_exe() -> list[str]:
    exe = Path(sys.executable).with_name("cgflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cgflow.cli.main"]



def run_cgflow(args: list[str], home: Path, log: Path, timeout_s: float) -> dict[str, float]:
    """Run ``cgflow ARGS`` with the private home; returns its start/end times (epoch s).

    Raises
    ------
    EngineError
        On a non-zero exit code or a timeout, with the command and the output tail.
    """
    cmd = _cgflow_exe() + args
    t_start = time.time()
    try:
        with log.open("w") as out:
            res = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                 env=home_env(home), cwd=home, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise EngineError(f"command {cmd} timed out after {timeout_s} s; output in {log}:\n"
                          + _tail(log)) from None
    t_end = time.time()
    if res.returncode != 0:
        raise EngineError(f"command {cmd} failed with exit code {res.returncode}; output in "
                          f"{log}:\n" + _tail(log))
    return {"start": t_start, "end": t_end, "wall_s": t_end - t_start}


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").rstrip().splitlines()[-n:])
    except OSError:
        return ""


def write_spec(home: Path, preset: str, n_sets: int, threads: int, seed: int) -> tuple[Path, str]:
    """The campaign spec of the benchmark; returns its path and the campaign name."""
    name = f"aa-overhead-{preset}"
    spec = {"name": name, "description": "Workflow overhead benchmark (benchmarks/aa_overhead.py)",
            "space": "narrow", "n_sets": n_sets, "seed": seed, "sampling": "lhs",
            "include_reference": True, "preset": preset, "threads": threads}
    path = home / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path, name


# --- what the campaign left: Fireworks, run documents, logs ------------------------------------


def _epoch(value: Any) -> float | None:
    """Epoch seconds of a FireWorks timestamp (datetime or ISO string; naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def firework_spans(lp_file: Path, campaign: str) -> list[dict[str, Any]]:
    """Start (RUNNING) and end (COMPLETED/FIZZLED) of each Firework's last launch, epoch s."""
    from fireworks import LaunchPad

    lp = LaunchPad.from_file(str(lp_file))
    out = []
    for fw in lp.fireworks.find({"spec.campaign": campaign}).sort("fw_id", 1):
        spec = fw.get("spec", {})
        launches = list(lp.launches.find({"launch_id": {"$in": fw.get("launches", [])}})
                        .sort("launch_id", 1))
        start = end = None
        if launches:
            for h in launches[-1].get("state_history", []):
                if h.get("state") == "RUNNING" and start is None:
                    start = _epoch(h.get("created_on"))
                if h.get("state") in ("COMPLETED", "FIZZLED"):
                    end = _epoch(h.get("created_on"))
        out.append({"fw_id": fw["fw_id"], "param_id": spec.get("param_id"),
                    "label": spec.get("label"), "stage": spec.get("cgflow_stage"),
                    "state": fw.get("state"), "n_launches": len(launches),
                    "start": start, "end": end,
                    "runtime_s": None if start is None or end is None else end - start})
    return out


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _count_checkpoints(log_path: Path) -> int:
    text = log_path.read_text(errors="replace")
    return len(re.findall(r"^\s*Writing checkpoint, step", text, re.M))


def _decomposition(log_path: Path) -> dict[str, Any]:
    """Thread-MPI ranks and OpenMP threads reported by an mdrun log."""
    text = log_path.read_text(errors="replace")
    ranks = re.search(r"^Using (\d+) MPI thread", text, re.M)
    omp = re.search(r"^Using (\d+) OpenMP thread", text, re.M)
    return {"mpi_threads": int(ranks.group(1)) if ranks else None,
            "openmp_threads_per_rank": int(omp.group(1)) if omp else None}


def stage_breakdown(run_dir: Path, stage: str, wall_s: float | None) -> dict[str, Any]:
    """Times of one stage of a run directory, from its md.log and file mtimes (seconds)."""
    deffnm = eng.STAGE_DEFFNM[stage]
    log = run_dir / f"{deffnm}.log"
    info = parse_md_log(log)
    t_mdp = _mtime(run_dir / f"{deffnm}.mdp")
    t_tpr = _mtime(run_dir / f"{deffnm}.tpr")
    ends = [t for t in (_mtime(log), _mtime(run_dir / f"{deffnm}{MDRUN_OUT_SUFFIX}")) if t]
    t_mdrun_end = max(ends) if ends else None
    state_file = run_dir / f"{deffnm}.gmxjob.json"
    attempts = None
    if state_file.exists():
        attempts = json.loads(state_file.read_text()).get("attempt")
    mdrun_span = _diff(t_mdrun_end, t_tpr)
    stage_end = None if t_mdp is None or wall_s is None else t_mdp + wall_s
    engine, source = info.wall_time_s, "log Time:"
    if engine is None and info.ns_per_day is None and mdrun_span is not None:
        # minimisation logs of GROMACS 2022 have no Time: line: the process span stands in
        engine, source = mdrun_span, "mdrun process span"
    return {
        "stage": stage,
        "engine_time_s": engine,
        "engine_time_source": source,
        "ns_per_day": info.ns_per_day,
        "steps": info.last_step,
        "stage_wall_s": wall_s,
        "grompp_and_setup_s": _diff(t_tpr, t_mdp),
        "mdrun_process_s": mdrun_span,
        "mdrun_startup_s": _diff(mdrun_span, engine),
        "custodian_after_mdrun_s": _diff(stage_end, t_mdrun_end),
        "attempts": attempts,
        "checkpoints_written": _count_checkpoints(log),
    }


def time_analysis(run_dir: Path, scratch: Path, preset_name: str, threads: int) -> float:
    """Wall seconds of :func:`cgflow.stages.aa.analyse` on a copy of the production files."""
    from cgflow.stages import aa as aa_stage

    scratch.mkdir(parents=True, exist_ok=True)
    for ext in (".tpr", ".xtc", ".edr"):
        shutil.copy2(run_dir / f"prod{ext}", scratch / f"prod{ext}")
    preset = get_aa_preset(preset_name).model_copy(update={"threads": threads})
    t0 = time.perf_counter()
    aa_stage.analyse(scratch, preset)
    return time.perf_counter() - t0


def rlaunch_log_span(log: Path) -> tuple[float | None, float | None]:
    """Epoch seconds of the first and last time-stamped line of ``rlaunch.log`` (local time)."""
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", _read(log), re.M)
    if not stamps:
        return None, None

    def conv(s: str) -> float:
        return datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f").timestamp()

    return conv(stamps[0]), conv(stamps[-1])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# --- bare mdrun --------------------------------------------------------------------------------


def bare_commands(threads: int, cpt_minutes: float, maxh: float) -> dict[str, list[str]]:
    """The two outside-cgflow mdrun command lines, by variant name."""
    gmx = eng.find_gmx()
    return {
        "bare": [gmx, "mdrun", "-s", "prod.tpr", "-nt", str(threads), "-pin", "off"],
        "cgflow_flags": eng.mdrun_command("prod", threads=threads, maxh=maxh,
                                          cpt_minutes=cpt_minutes),
    }


def run_bare(tpr: Path, work: Path, cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` on a copy of ``tpr`` in ``work``; ns/day and times from its log."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy2(tpr, work / "prod.tpr")
    load = load_average()
    t0 = time.perf_counter()
    eng.run_command(cmd, work, "mdrun.out", env={"GMX_MAXBACKUP": "-1"},
                    timeout_s=BARE_TIMEOUT_S)
    process_s = time.perf_counter() - t0
    log = work / ("prod.log" if "-deffnm" in cmd else "md.log")
    info = parse_md_log(log)
    if not info.completed or info.ns_per_day is None:
        raise EngineError(f"command {cmd} in {work} did not complete (log {log}):\n"
                          + _tail(log))
    return {"ns_per_day": info.ns_per_day, "engine_time_s": info.wall_time_s,
            "process_s": round(process_s, 3), "steps": info.last_step,
            "checkpoints_written": _count_checkpoints(log), "load_before": load,
            **_decomposition(log)}


def _stats(values: list[float]) -> dict[str, float | int]:
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 3),
        "std": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0,
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


# --- the benchmark --------------------------------------------------------------------------------


def _sum(values: list[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(sum(values))  # type: ignore[arg-type]


def _round(obj: Any, nd: int = 3) -> Any:
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, dict):
        return {k: _round(v, nd) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v, nd) for v in obj]
    return obj


def measure_campaign(home: Path, args: argparse.Namespace, gate: LoadGate) -> dict[str, Any]:
    """Run the campaign and split its wall time; returns the campaign part of the results."""
    from cgflow.db.store import Store

    spec_path, campaign = write_spec(home, args.preset, args.n_sets, args.threads, args.seed)
    logs = home / "bench-logs"
    logs.mkdir(exist_ok=True)
    db = run_cgflow(["db", "start"], home, logs / "db-start.out", 120.0)
    lp_file = home / "fw_config" / "my_launchpad.yaml"
    if not lp_file.exists():
        raise EngineError(f"cgflow db start wrote no launchpad file {lp_file}:\n"
                          + _tail(logs / "db-start.out"))
    gate.wait("the campaign")
    _say(f"campaign {campaign}: submit + launch (preset {args.preset}, n_sets {args.n_sets}, "
         f"threads {args.threads})")
    with LoadSampler() as sampler:
        load_before = load_average()
        sub = run_cgflow(["campaign", "submit", str(spec_path), "-l", str(lp_file)], home,
                         logs / "submit.out", 600.0)
        lau = run_cgflow(["launch", "-l", str(lp_file), "--campaign", campaign], home,
                         logs / "launch.out", LAUNCH_TIMEOUT_S)
        load_after = load_average()
    campaign_wall = lau["end"] - sub["start"]
    _say(f"campaign finished in {campaign_wall:.1f} s")

    fws = firework_spans(lp_file, campaign)
    bad = [f for f in fws if f["state"] != "COMPLETED" or f["runtime_s"] is None]
    if bad:
        raise EngineError(f"campaign {campaign}: Fireworks not completed: "
                          f"{[(f['fw_id'], f['stage'], f['state']) for f in bad]}; rlaunch log "
                          f"{lp_file.parent / 'rlaunch.log'}:\n"
                          + _tail(lp_file.parent / "rlaunch.log"))
    with Store.from_launchpad_file(str(lp_file)) as store:
        runs = store.aa_runs(campaign=campaign)
    if not runs or any(r.status != "completed" for r in runs):
        raise EngineError(f"campaign {campaign}: all-atom runs not completed: "
                          f"{[(r.param_id, r.status, r.error) for r in runs]}")

    sets = []
    for run in runs:
        run_dir = Path(run.run_dir)
        stages = [stage_breakdown(run_dir, s, run.timings[s].wall_s if s in run.timings
                                  else None) for s in STAGES]
        analysis_s = time_analysis(run_dir, home / "analysis-copy" / run.param_id, args.preset,
                                   args.threads)
        build = _diff(_mtime(run_dir / eng.BOX_GRO), _mtime(run_dir / eng.MOLECULE_GRO))
        my_fws = [f for f in fws if f["param_id"] == run.param_id]
        sets.append({
            "param_id": run.param_id,
            "label": "reference" if run.param_id == OPLSAA_REFERENCE.id else run.param_id,
            "run_dir": str(run_dir),
            "dt_ps": run.timings["production"].dt_ps if "production" in run.timings else None,
            "stages": stages,
            "analysis_s": analysis_s,
            "system_build_s": build,
            "fireworks_runtime_s": _sum([f["runtime_s"] for f in my_fws]),
            "fireworks": [{k: f[k] for k in ("fw_id", "stage", "runtime_s", "n_launches")}
                          for f in my_fws],
            "recorded_total_wall_s": run.total_wall_s,
        })

    engine_md = _sum([s["engine_time_s"] for st in sets for s in st["stages"]])
    analysis = float(sum(st["analysis_s"] for st in sets))
    engine_wall = None if engine_md is None else engine_md + analysis
    fw_sorted = sorted(fws, key=lambda f: f["start"])
    gaps = [b["start"] - a["end"] for a, b in zip(fw_sorted, fw_sorted[1:], strict=False)]
    rl_first, rl_last = rlaunch_log_span(lp_file.parent / "rlaunch.log")
    fw_runtime = _sum([f["runtime_s"] for f in fws])
    stage_walls = _sum([s["stage_wall_s"] for st in sets for s in st["stages"]])
    build_total = _sum([st["system_build_s"] for st in sets])
    parts = {
        "submit_s": sub["wall_s"],
        "between_commands_s": lau["start"] - sub["end"],
        "launcher_startup_s": fw_sorted[0]["start"] - lau["start"],
        "between_fireworks_s": float(sum(gaps)),
        "launcher_shutdown_s": lau["end"] - fw_sorted[-1]["end"],
        "system_build_s": build_total,
        "grompp_and_setup_s": _sum([s["grompp_and_setup_s"] for st in sets
                                    for s in st["stages"]]),
        "mdrun_startup_s": _sum([s["mdrun_startup_s"] for st in sets for s in st["stages"]]),
        "custodian_after_mdrun_s": _sum([s["custodian_after_mdrun_s"] for st in sets
                                         for s in st["stages"]]),
        "firetask_bookkeeping_s": (None if None in (fw_runtime, stage_walls, build_total)
                                   else fw_runtime - stage_walls - analysis - build_total),
    }
    overhead = None if engine_wall is None else campaign_wall - engine_wall
    parts_sum = _sum(list(parts.values()))
    return {
        "campaign": campaign,
        "spec": yaml.safe_load(spec_path.read_text()),
        "n_sets": len(sets),
        "n_fireworks": len(fws),
        "db_start_s": db["wall_s"],
        "load_before": load_before,
        "load_after": load_after,
        "load_during": sampler.summary(),
        "campaign_wall_s": campaign_wall,
        "submit_s": sub["wall_s"],
        "launch_s": lau["wall_s"],
        "engine_wall_s": engine_wall,
        "engine_mdrun_s": engine_md,
        "analysis_s": analysis,
        "overhead_s": overhead,
        "overhead_pct_of_campaign": None if overhead is None else 100 * overhead / campaign_wall,
        "overhead_pct_of_engine": None if overhead is None else 100 * overhead / engine_wall,
        "overhead_parts_s": parts,
        "overhead_parts_sum_s": parts_sum,
        "rlaunch_log_last_to_launch_end_s": None if rl_last is None else lau["end"] - rl_last,
        "rlaunch_log_first_from_launch_start_s": (None if rl_first is None
                                                  else rl_first - lau["start"]),
        "sets": sets,
        "_lp_file": str(lp_file),
    }


def run_cgflow_stage(run_dir: Path, work: Path, threads: int, preset_name: str
                     ) -> dict[str, Any]:
    """cgflow's production stage again, as the campaign ran it (grompp, then mdrun under
    Custodian via :func:`cgflow.jobs.gromacs.job.run_stage`), on copies of its inputs."""
    from cgflow.jobs.gromacs.job import run_stage

    preset = get_aa_preset(preset_name)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("prod.mdp", "npt.gro", "npt.cpt", eng.TOPOLOGY_TOP):
        shutil.copy2(run_dir / name, work / name)
    load = load_average()
    t0 = time.perf_counter()
    report = run_stage(work, "production", work / "prod.mdp", work / "npt.gro",
                       work / eng.TOPOLOGY_TOP, checkpoint_in=work / "npt.cpt",
                       threads=threads, maxh=preset.maxh, cpt_minutes=preset.checkpoint_minutes)
    process_s = time.perf_counter() - t0
    log = work / "prod.log"
    info = parse_md_log(log)
    return {"ns_per_day": info.ns_per_day, "engine_time_s": info.wall_time_s,
            "process_s": round(process_s, 3), "stage_wall_s": report.wall_s,
            "attempts": report.attempts, "steps": info.last_step,
            "checkpoints_written": _count_checkpoints(log), "load_before": load,
            **_decomposition(log)}


#: Variants of the interleaved ns/day runs, in run order within one repeat.
VARIANTS = ("cgflow_custodian", "bare", "cgflow_flags")


def measure_ns_per_day(home: Path, camp: dict[str, Any], args: argparse.Namespace,
                       gate: LoadGate) -> dict[str, Any]:
    """ns/day of cgflow's production against bare mdrun, on the reference set's system.

    Per repeat, in this order: cgflow's production stage again under Custodian
    (``cgflow_custodian``), the bare mdrun and cgflow's mdrun command line without
    Custodian, so that all three see similar load. The campaign's own production is
    reported beside them (it ran earlier, possibly under another load).
    """
    ref = next(s for s in camp["sets"] if s["label"] == "reference")
    run_dir = Path(ref["run_dir"])
    prod = next(s for s in ref["stages"] if s["stage"] == "production")
    preset = get_aa_preset(args.preset)
    cmds = bare_commands(args.threads, preset.checkpoint_minutes, preset.maxh)
    runners = {
        "cgflow_custodian": lambda w: run_cgflow_stage(run_dir, w, args.threads, args.preset),
        "bare": lambda w: run_bare(run_dir / "prod.tpr", w, cmds["bare"]),
        "cgflow_flags": lambda w: run_bare(run_dir / "prod.tpr", w, cmds["cgflow_flags"]),
    }
    gate.wait("the ns/day runs")
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in VARIANTS}
    failed: list[dict[str, Any]] = []
    with LoadSampler() as sampler:
        for k in range(args.repeats):
            for variant in VARIANTS:
                _say(f"{variant} run {k + 1}/{args.repeats}")
                work = home / "ns_per_day" / f"{variant}-{k + 1}"
                try:
                    r = runners[variant](work)
                except EngineError as exc:
                    # one retry (a shared machine may kill a run); the failure is recorded,
                    # and a second one is raised
                    _say(f"  failed, retrying once: {str(exc).splitlines()[0]}")
                    failed.append({"variant": variant, "repeat": k + 1,
                                   "error": str(exc).splitlines()[0][:500]})
                    r = runners[variant](work.with_name(work.name + "-retry"))
                if r["steps"] != prod["steps"]:
                    raise EngineError(f"{variant} mdrun ran {r['steps']} steps, cgflow's "
                                      f"production {prod['steps']}")
                _say(f"  {r['ns_per_day']:.2f} ns/day ({r['engine_time_s']:.1f} s, load "
                     f"{r['load_before'][0]})")
                results[variant].append(r)
    cgflow_prod = {"ns_per_day": prod["ns_per_day"], "engine_time_s": prod["engine_time_s"],
                   "stage_wall_s": prod["stage_wall_s"], "steps": prod["steps"],
                   "checkpoints_written": prod["checkpoints_written"],
                   "checkpoint_minutes": preset.checkpoint_minutes,
                   "custodian_polling_s": 1.0, **_decomposition(run_dir / "prod.log")}
    commands = {"cgflow_custodian": "cgflow run_stage(production): grompp, then "
                + " ".join(["gmx", *cmds["cgflow_flags"][1:]]) + " under Custodian"}
    commands.update({k: " ".join(["gmx", *v[1:]]) for k, v in cmds.items()})
    out: dict[str, Any] = {"system": {"param_id": ref["param_id"], "tpr": "prod.tpr",
                                      "steps": prod["steps"], "dt_ps": ref["dt_ps"],
                                      "n_molecules": preset.n_molecules},
                           "campaign_production": cgflow_prod,
                           "commands": commands,
                           "failed_and_retried": failed,
                           "load_during": sampler.summary()}
    for variant, runs in results.items():
        out[variant] = {"runs": runs, "ns_per_day": _stats([r["ns_per_day"] for r in runs]),
                        "load1_mean": statistics.fmean(r["load_before"][0] for r in runs)}
    bare = out["bare"]["ns_per_day"]["mean"]
    flags = out["cgflow_flags"]["ns_per_day"]["mean"]
    cust = out["cgflow_custodian"]["ns_per_day"]["mean"]
    out["ratios"] = {
        "cgflow_custodian_over_bare": cust / bare,
        "cgflow_custodian_over_cgflow_flags": cust / flags,
        "cgflow_flags_over_bare": flags / bare,
        "campaign_production_over_bare": prod["ns_per_day"] / bare,
    }
    return out


# --- output ------------------------------------------------------------------------------


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def markdown_entry(key: str, r: dict[str, Any]) -> str:
    """Markdown summary of one benchmark entry."""
    m, c, n = r["machine"], r["campaign"], r["ns_per_day"]
    loaded = r["loaded"]
    lines = [
        f"## Preset `{key}`: {c['n_sets']} parameter set(s), {r['settings']['threads']} "
        f"thread(s)",
        "",
        f"{m['date_utc']}, GROMACS {m['gromacs_version']}, {m['nproc']} CPUs "
        f"({m['cpu_model']}). Load (1/5/15 min) before: {m['load_before']}, after: "
        f"{m['load_after']}; 1-min load during the campaign mean "
        f"{c['load_during']['load1_mean']} (max {c['load_during']['load1_max']}), during the "
        f"bare runs mean {n['load_during']['load1_mean']} (max {n['load_during']['load1_max']})"
        f" -- our own runs add about {r['settings']['threads']}. "
        + ("**The machine was loaded by other jobs**: absolute times and ns/day are "
           "pessimistic and noisy." if loaded else "The machine was quiet."),
        "",
        "### Workflow overhead",
        "",
        "| quantity | s | % of campaign |",
        "| --- | ---: | ---: |",
        f"| campaign wall (`submit` + `launch`) | {_fmt(c['campaign_wall_s'], 1)} | 100.0 |",
        f"| engine: mdrun `Time:` of nvt/npt/prod (em: process span), all sets | "
        f"{_fmt(c['engine_mdrun_s'], 1)} | "
        f"{_fmt(_pct(c['engine_mdrun_s'], c['campaign_wall_s']), 1)} |",
        f"| engine: analysis (re-timed) | {_fmt(c['analysis_s'], 1)} | "
        f"{_fmt(_pct(c['analysis_s'], c['campaign_wall_s']), 1)} |",
        f"| **overhead** = campaign - engine | **{_fmt(c['overhead_s'], 1)}** | "
        f"**{_fmt(c['overhead_pct_of_campaign'], 1)}** |",
    ]
    for k, v in c["overhead_parts_s"].items():
        lines.append(f"| - {k.removesuffix('_s').replace('_', ' ')} | {_fmt(v, 1)} | "
                     f"{_fmt(_pct(v, c['campaign_wall_s']), 1)} |")
    lines += [
        "",
        f"Overhead relative to the engine time: {_fmt(c['overhead_pct_of_engine'], 1)} %. "
        f"Starting the embedded database (not counted): {_fmt(c['db_start_s'], 1)} s. "
        f"Launcher shutdown: the last line of rlaunch.log came "
        f"{_fmt(c['rlaunch_log_last_to_launch_end_s'], 1)} s before `cgflow launch` ended.",
        "",
        "Per set and stage (s): engine time / stage wall / grompp+setup / mdrun start-up / "
        "Custodian after mdrun; attempts:",
        "",
        "| set | stage | engine | stage wall | grompp+setup | mdrun start-up | after mdrun "
        "| ns/day | attempts |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for st in c["sets"]:
        for s in st["stages"]:
            lines.append(
                f"| {st['label']} | {s['stage']} | {_fmt(s['engine_time_s'], 2)} | "
                f"{_fmt(s['stage_wall_s'], 2)} | {_fmt(s['grompp_and_setup_s'], 2)} | "
                f"{_fmt(s['mdrun_startup_s'], 2)} | {_fmt(s['custodian_after_mdrun_s'], 2)} | "
                f"{_fmt(s['ns_per_day'], 1)} | {_fmt(s['attempts'])} |")
        lines.append(f"| {st['label']} | analysis | {_fmt(st['analysis_s'], 2)} | | | | | | |")
    cp, ra = n["campaign_production"], n["ratios"]
    lines += [
        "",
        "### Production ns/day against bare mdrun",
        "",
        f"Reference set `{n['system']['param_id']}`: {n['system']['n_molecules']} molecules, "
        f"{n['system']['steps']} steps of {_fmt(n['system']['dt_ps'], 4)} ps. The three "
        f"variants below ran interleaved, {r['settings']['repeats']} times each; "
        "`checkpoints` counts the checkpoints in one log, the final one included.",
        "",
        "| run | ns/day mean | std | min | max | n | checkpoints | mean 1-min load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant in VARIANTS:
        v = n[variant]
        s = v["ns_per_day"]
        lines.append(
            f"| {variant}: `{n['commands'][variant]}` | {_fmt(s['mean'], 2)} | "
            f"{_fmt(s['std'], 2)} | {_fmt(s['min'], 2)} | {_fmt(s['max'], 2)} | {s['n']} | "
            f"{v['runs'][0]['checkpoints_written']} | {_fmt(v['load1_mean'], 1)} |")
    lines += [
        f"| the campaign's own production (ran earlier, under the campaign's load) | "
        f"{_fmt(cp['ns_per_day'], 2)} | | | | 1 | {cp['checkpoints_written']} | "
        f"{_fmt(c['load_during']['load1_mean'], 1)} |",
        "",
        f"Ratios of mean ns/day: cgflow under Custodian / bare = "
        f"{_fmt(ra['cgflow_custodian_over_bare'], 3)}, cgflow under Custodian / same mdrun "
        f"flags without Custodian = {_fmt(ra['cgflow_custodian_over_cgflow_flags'], 3)}, "
        f"cgflow flags / bare = {_fmt(ra['cgflow_flags_over_bare'], 3)}; the campaign's "
        f"production / bare = {_fmt(ra['campaign_production_over_bare'], 3)}.",
        "",
    ]
    for f in n.get("failed_and_retried", []):
        lines += [f"Run {f['variant']} {f['repeat']} failed and was repeated: {f['error']}", ""]
    return "\n".join(lines)


def _pct(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return 100.0 * part / whole


def write_results(out: Path, key: str, entry: dict[str, Any]) -> None:
    """Merge ``entry`` into the JSON file ``out`` under ``key``; rewrite the Markdown file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"benchmark": "aa_overhead", "runs": {}}
    if out.exists():
        try:
            old = json.loads(out.read_text())
            if isinstance(old, dict) and isinstance(old.get("runs"), dict):
                data["runs"] = old["runs"]
        except json.JSONDecodeError:
            pass
    data["runs"][key] = entry
    out.write_text(json.dumps(data, indent=2) + "\n")
    md = ["# All-atom workflow overhead and ns/day against bare mdrun", "",
          "Written by `benchmarks/aa_overhead.py` (see its docstring and "
          "`benchmarks/README.md` for what is measured); numbers in "
          f"`{out.name}`.", ""]
    for k in sorted(data["runs"]):
        md.append(markdown_entry(k, data["runs"][k]))
    out.with_suffix(".md").write_text("\n".join(md))
    figures.draw("aa_overhead", out)


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run all measurements in a private cgflow home; returns the results entry."""
    get_aa_preset(args.preset)  # unknown preset: InvalidInputError before anything runs
    machine = machine_facts()
    machine["load_before"] = load_average()
    gate = LoadGate(args.max_load, 60.0 * args.wait_minutes)
    home = Path(tempfile.mkdtemp(prefix="cgflow-bench-aa-"))
    _say(f"private cgflow home {home}; load {machine['load_before']}")
    try:
        camp = measure_campaign(home, args, gate)
        ns = measure_ns_per_day(home, camp, args, gate)
    finally:
        stop_log = home / "bench-logs" / "db-stop.out"
        stop_log.parent.mkdir(exist_ok=True)
        try:
            run_cgflow(["db", "stop"], home, stop_log, 120.0)
        except EngineError as exc:
            _say(f"stopping the embedded database failed: {exc}")
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)
    machine["load_after"] = load_average()
    camp.pop("_lp_file", None)
    loads = [machine["load_before"][0], machine["load_after"][0],
             *(w["load_at_end"][0] for w in gate.waits)]
    loaded = max(loads) > args.max_load or any(not w["quiet"] for w in gate.waits)
    return _round({
        "settings": {"preset": args.preset, "n_sets": args.n_sets, "threads": args.threads,
                     "repeats": args.repeats, "seed": args.seed, "max_load": args.max_load,
                     "wait_minutes": args.wait_minutes},
        "machine": machine,
        "load_waits": gate.waits,
        "loaded": loaded,
        "home_kept": str(home) if args.keep_home else None,
        "campaign": camp,
        "ns_per_day": ns,
    })


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=["tiny", "demo"], default="tiny")
    p.add_argument("--n-sets", type=int, default=1,
                   help="sampled parameter sets besides the reference (default 1)")
    p.add_argument("--threads", type=int, default=2, help="mdrun threads (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="bare mdrun runs per variant")
    p.add_argument("--seed", type=int, default=1, help="sampling seed of the campaign")
    p.add_argument("--out", type=Path, default=RESULTS_DEFAULT,
                   help="JSON results file (a .md summary is written beside it)")
    p.add_argument("--max-load", type=float, default=2.5,
                   help="1-minute load above which the machine counts as loaded")
    p.add_argument("--wait-minutes", type=float, default=10.0,
                   help="longest total wait for the load to fall before timed parts")
    p.add_argument("--keep-home", action="store_true",
                   help="keep the private cgflow home (runs, database) for inspection")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("n_sets", "threads", "repeats"):
        v = getattr(args, name)
        low = 0 if name == "n_sets" else 1
        if v < low:
            raise InvalidInputError(f"field '{name}': must be >= {low}, got {v!r}")
    entry = run_benchmark(args)
    write_results(args.out, args.preset, entry)
    c, n = entry["campaign"], entry["ns_per_day"]
    _say(f"campaign {c['campaign_wall_s']} s, engine {c['engine_wall_s']} s, overhead "
         f"{c['overhead_s']} s ({c['overhead_pct_of_campaign']} % of campaign); ns/day: "
         f"cgflow under Custodian {n['cgflow_custodian']['ns_per_day']['mean']}, bare "
         f"{n['bare']['ns_per_day']['mean']} +- {n['bare']['ns_per_day']['std']}")
    _say(f"results: {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
