"""How fast ``cgflow report`` writes the report of a campaign of 300 parameter sets.

What is measured
----------------
:func:`cgflow.stages.report.write_report` (reading the database: the per-set view, IBI
histories, models and their predictions, validations; drawing every figure; writing the
page) and the whole ``cgflow report NAME -o DIR -l LAUNCHPAD`` command in a new process,
on a database that looks like a campaign well under way. No simulation runs.

1. **The database.** The 300-set campaign of ``benchmarks/campaign_status.py``, made by
   its own builder (:func:`campaign_status.private_database`, ``write_spec``, ``submit``,
   ``make_progress``: FireWorks' own objects, 100 sets done, 10 unconverged, 50 in IBI,
   10 FIZZLED, 1 running, 20 further on in the AA stage, 5 paused, 104 untouched; the
   potentials of the done and unconverged sets). On top of it, what the report reads
   and the status does not, written with :class:`cgflow.db.store.Store` as the stages
   write it: a completed AA run (64 molecules: RDF on 125 bins, MSD on 51 lags, density,
   pressure, D) for every set past ``aa-analyse``, a failed AA run for the sets that
   FIZZLED in the AA stage, a running one for the running set; the IBI iterations of the
   sets in IBI; a CG run (D_CG, alpha) for every done set; the campaign's models,
   trained on its converged sets by :func:`cgflow.stages.train.train_campaign_models`
   (timed apart, not part of the report); closed-loop validations of 10 sets.
2. **Timing.** ``--repeats`` times, interleaved: the function in this process into a
   new folder (every figure drawn; split into reading and drawing), the function again
   into the same folder (the per-set figures are reused, only the campaign figures and
   the page are written again: a report refreshed during a campaign), and the command
   as a subprocess into a new folder (Python start-up and imports included). The
   folder's size and number of files are recorded, and the page is checked to show
   every set.
3. **Machine.** Date, ``nproc``, CPU model, the 1/5/15-minute load before and after (the
   machine may be shared: then the wall times are upper bounds).

How to run
----------
::

    .venv/bin/python benchmarks/report.py                 # 3 repeats
    .venv/bin/python benchmarks/report.py --repeats 5 --no-models

Results go to ``--out`` (default ``benchmarks/results/report.json``), a Markdown summary
and a figure (``.md``, ``.png``) beside it; the summary is also printed. The database
server is stopped and the temporary home removed at the end, also on error.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import home_env, load_average, write_results
from campaign_status import (
    CAMPAIGN,
    machine_facts,
    make_progress,
    private_database,
    submit,
    write_spec,
)

RESULTS_DEFAULT = Path(__file__).resolve().parent / "results" / "report.json"
#: Closed-loop validations stored (of done sets the models did not train on, if any).
N_VALIDATIONS = 10
CLI_TIMEOUT_S = 1800.0


def _say(msg: str) -> None:
    print(f"[report {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _aa_results(rng: random.Random, pot: dict[str, Any] | None) -> dict[str, Any]:
    r = np.arange(0.005, 1.25, 0.01)
    if pot is not None:
        g = np.interp(r, pot["target_rdf"]["r_nm"], pot["target_rdf"]["g"])
    else:
        g = np.where(r < 0.45, 0.0, 1.0 + 0.6 * np.exp(-(((r - 0.65) / 0.08) ** 2)))
    d = rng.uniform(1e-3, 4e-3)
    lag = np.linspace(0.0, 5.0, 51)
    return {
        "density_kg_m3": rng.uniform(650, 800), "density_err_kg_m3": rng.uniform(1, 4),
        "pressure_bar": rng.uniform(-200, 200), "pressure_err_bar": rng.uniform(30, 90),
        "temperature_k": 298.15, "temperature_err_k": 0.4, "box_length_nm": 2.56,
        "n_molecules": 64, "production_ps": 10.0, "rdf_r_nm": r.tolist(),
        "rdf_g": np.maximum(g, 0).tolist(), "rdf_n_frames": 50, "msd_lag_ps": lag.tolist(),
        "msd_nm2": (6 * d * lag + 0.002).tolist(), "d_nm2_ps": d, "d_err_nm2_ps": 0.08 * d,
        "d_xyz_nm2_ps": [d] * 3, "d_fit_start_ps": 1.0, "d_fit_end_ps": 4.0,
    }


def add_report_documents(lp: Any, store: Any, exp: dict[str, Any], seed: int) -> dict[str, Any]:
    """Write the documents the report reads beyond the status' (see the module docstring)."""
    from cgflow.params import parameter_set_from_mapping

    rng = random.Random(seed + 7)
    pots = {p.param_id: p.model_dump(mode="json") for p in store.potentials(campaign=CAMPAIGN)}
    counts: dict[str, int] = {"parameter_sets": 0, "aa_completed": 0, "aa_failed": 0,
                              "aa_running": 0, "ibi_iterations": 0, "cg_runs": 0}
    tasks = {d["spec"]["param_id"]: d["spec"]["_tasks"][0] for d in lp.fireworks.find(
        {"spec.campaign": CAMPAIGN, "spec.cgflow_stage": "aa-build"},
        {"spec.param_id": 1, "spec._tasks": 1})}
    for pid, stage in exp["stage"].items():
        detail = exp["detail"].get(pid, "")
        if stage == "waiting" or (stage == "AA build" and detail == "READY"):
            continue  # its aa-build has not run: nothing of it is stored yet
        # what the aa-build Firetask stores first
        store.upsert_parameter_set(parameter_set_from_mapping(tasks[pid]["param_set"]),
                                   CAMPAIGN, tasks[pid].get("space"))
        counts["parameter_sets"] += 1
        past_aa = stage in ("done", "unconverged") or stage.startswith("IBI") or (
            stage == "failed" and detail.startswith("cg-ibi"))
        if past_aa:
            run = store.start_aa_run(pid, CAMPAIGN, "tiny", f"/nonexistent/{pid}/aa")
            store.complete_aa_run(run.id, _aa_results(rng, pots.get(pid)),
                                  timings={"production": {"wall_s": rng.uniform(300, 500)}})
            counts["aa_completed"] += 1
        elif stage == "failed":
            run = store.start_aa_run(pid, CAMPAIGN, "tiny", f"/nonexistent/{pid}/aa")
            store.fail_aa_run(run.id, f"{detail.split()[0]}: gmx mdrun failed (LINCS warnings)")
            counts["aa_failed"] += 1
        elif stage == "AA produce" and detail == "RUNNING":
            store.start_aa_run(pid, CAMPAIGN, "tiny", f"/nonexistent/{pid}/aa")
            counts["aa_running"] += 1
        if stage.startswith("IBI iteration "):
            pot = {"r_nm": [round(0.1 + 0.01 * k, 6) for k in range(111)]}
            pot["u_kj_mol"] = [4 * 3.0 * ((0.6 / x) ** 12 - (0.6 / x) ** 6) for x in pot["r_nm"]]
            pot["f_kj_mol_nm"] = [24 * 3.0 * (2 * (0.6 / x) ** 12 - (0.6 / x) ** 6) / x
                                  for x in pot["r_nm"]]
            rdf = {"r_nm": [round(0.005 + 0.01 * k, 6) for k in range(120)], "n_frames": 5}
            rdf["g"] = [0.0 if x < 0.45 else 1.0 for x in rdf["r_nm"]]
            for it in range(int(stage.rsplit(" ", 1)[1])):
                store.save_ibi_iteration({
                    "param_id": pid, "campaign": CAMPAIGN, "preset": "tiny", "iteration": it,
                    "potential": pot, "rdf": rdf, "metrics": {
                        "rdf_deviation": 0.2 / (it + 1), "pressure_bar": 100.0 / (it + 1),
                        "pressure_deviation_bar": 100.0 / (it + 1)}})
                counts["ibi_iterations"] += 1
        if stage == "done":
            d_aa = store.get_aa_run(f"{pid}:tiny").results.d_nm2_ps
            alpha = rng.uniform(2, 8)
            store.save_cg_run({
                "param_id": pid, "campaign": CAMPAIGN, "preset": "tiny", "status": "completed",
                "d_cg_nm2_ps": {"mean": alpha * d_aa, "err": 0.03 * alpha * d_aa},
                "d_aa_nm2_ps": {"mean": d_aa, "err": 0.08 * d_aa},
                "alpha": {"mean": alpha, "err": 0.09 * alpha}})
            counts["cg_runs"] += 1
    return counts


def add_models_and_validations(store: Any) -> dict[str, Any]:
    """Train the campaign's models (timed) and store closed-loop validations."""
    from cgflow.stages.train import load_campaign_models, train_campaign_models

    t0 = time.perf_counter()
    out = train_campaign_models(store, CAMPAIGN, seed=0)
    train_s = time.perf_counter() - t0
    if out["status"] != "trained":
        raise RuntimeError(f"training did not train: {out}")
    meta = load_campaign_models(store, CAMPAIGN).metadata
    trained = set(meta["train_param_ids"])
    done = [c.param_id for c in store.cg_runs(campaign=CAMPAIGN)]
    unseen = [p for p in done if p not in trained] or done
    for k, pid in enumerate(unseen[:N_VALIDATIONS]):
        store.save_validation({
            "models_campaign": CAMPAIGN, "models_dataset_hash": meta["dataset_hash"],
            "param_id": pid, "preset": "tiny", "alpha_pred": 3.0 + 0.2 * k, "alpha_std": 0.5,
            "d_aa": 2e-3, "d_aa_err": 2e-4,
            "structure": {"rdf_deviation": 0.05 + 0.01 * k, "d_cg": 6e-3,
                          "d_rescaled": 2e-3, "d_rescaled_rel_error": 0.1 - 0.03 * k},
            "dynamics": {"rdf_deviation": 0.2, "d_cg": 2.2e-3, "d_rel_error": 0.05 * k}})
    return {"train_s": train_s, "n_sets_trained": out["n_sets"],
            "n_validations": min(N_VALIDATIONS, len(unseen))}


def _stats(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "n": len(values), "values": values}


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and of its children that ended (the
    report's drawing workers, the command's process)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _folder(path: Path) -> dict[str, Any]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return {"n_files": len(files), "mib": sum(p.stat().st_size for p in files) / 2**20,
            "n_png": sum(p.suffix == ".png" for p in files)}


def time_report(lp: Any, store: Any, lp_file: Path, home: Path, repeats: int,
                with_models: bool) -> dict[str, Any]:
    """The function (cold and warm folder) and the command, interleaved."""
    from cgflow.cli.report import write_campaign_report

    cold_read, cold_draw, warm_read, warm_draw, cli_wall = [], [], [], [], []
    cold_cpu, warm_cpu, cli_cpu = [], [], []
    folder: dict[str, Any] = {}
    drawn: dict[str, int] = {}
    root = Path(tempfile.mkdtemp(prefix="report-bench-", dir=home))
    cmd = [str(Path(sys.executable).with_name("cgflow")), "report", CAMPAIGN, "-l",
           str(lp_file)] + ([] if with_models else ["--no-models"])
    for k in range(repeats):
        out = root / f"fn-{k}"
        t0, c0 = time.perf_counter(), _cpu_s()
        res = write_campaign_report(lp, store, CAMPAIGN, out, with_models=with_models)
        total = time.perf_counter() - t0
        cold_cpu.append(_cpu_s() - c0)
        cold_read.append(res.read_s)
        cold_draw.append(res.draw_s)
        drawn["cold"] = res.n_drawn
        folder = _folder(out)
        page = res.page.read_text()
        missing = [pid for pid in _set_ids(store) if f'id="set-{pid}-tiny"' not in page]
        if missing:
            raise RuntimeError(f"the page misses {len(missing)} sets, e.g. {missing[:3]}")
        _say(f"function, new folder: {total:.1f} s (read {res.read_s:.1f}, draw "
             f"{res.draw_s:.1f}; {res.n_drawn} figures; CPU {cold_cpu[-1]:.1f} s)")
        c0 = _cpu_s()
        res = write_campaign_report(lp, store, CAMPAIGN, out, with_models=with_models)
        warm_cpu.append(_cpu_s() - c0)
        warm_read.append(res.read_s)
        warm_draw.append(res.draw_s)
        drawn["warm"] = res.n_drawn
        _say(f"function, same folder: read {res.read_s:.1f} s, draw {res.draw_s:.1f} s "
             f"({res.n_drawn} figures drawn)")
        t0, c0 = time.perf_counter(), _cpu_s()
        r = subprocess.run([*cmd, "-o", str(root / f"cli-{k}")], capture_output=True,
                           text=True, timeout=CLI_TIMEOUT_S, env=home_env(home), check=False)
        cli_wall.append(time.perf_counter() - t0)
        cli_cpu.append(_cpu_s() - c0)
        if r.returncode != 0:
            raise RuntimeError(f"cgflow report failed: {r.stderr[-2000:]}")
        _say(f"command, new folder: {cli_wall[-1]:.1f} s (CPU {cli_cpu[-1]:.1f} s): "
             f"{r.stdout.strip()}")
    shutil.rmtree(root, ignore_errors=True)
    return {"cold_read_s": _stats(cold_read), "cold_draw_s": _stats(cold_draw),
            "warm_read_s": _stats(warm_read), "warm_draw_s": _stats(warm_draw),
            "cli_wall_s": _stats(cli_wall), "cold_cpu_s": _stats(cold_cpu),
            "warm_cpu_s": _stats(warm_cpu), "cli_cpu_s": _stats(cli_cpu),
            "figures_drawn": drawn, "folder": folder,
            "workers": min(4, os.cpu_count() or 1)}


def _set_ids(store: Any) -> list[str]:
    return store.param_ids(CAMPAIGN)


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_facts()
    machine["load_before"] = load_average()
    _say(f"nproc {machine['nproc']}, load {machine['load_before']}")
    with private_database(args.keep_home) as (home, lp_file, _server):
        from cgflow.db.store import Store, open_launchpad

        (home / "bench-logs").mkdir(exist_ok=True)
        submit_s = submit(write_spec(home), lp_file, home / "bench-logs" / "submit.out")
        lp = open_launchpad(lp_file)
        lp.m_logger.setLevel("WARNING")
        with Store.from_launchpad(lp) as store:
            t0 = time.perf_counter()
            exp = make_progress(lp, lp_file, home, store, seed=args.seed)
            counts = add_report_documents(lp, store, exp, args.seed)
            setup_s = time.perf_counter() - t0
            _say(f"campaign made in {setup_s:.1f} s (submit {submit_s:.1f} s): {counts}")
            models = add_models_and_validations(store) if args.models else None
            if models:
                _say(f"models trained in {models['train_s']:.1f} s")
            load_t = load_average()
            timing = time_report(lp, store, lp_file, home, args.repeats, args.models)
    machine["load_after"] = load_average()
    return _round({"benchmark": "report", "machine": machine,
                   "settings": {"repeats": args.repeats, "seed": args.seed, "models": args.models,
                                "campaign": CAMPAIGN, "plan": exp["scenarios"]},
                   "setup": {"submit_s": submit_s, "documents_s": setup_s, **counts},
                   "models": models, "load_before_timing": load_t, "timing": timing})


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 3)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


def markdown(r: dict[str, Any]) -> str:
    m, t, s = r["machine"], r["timing"], r["setup"]
    row = lambda name, x: f"| {name} | {x['mean']:.2f} | {x['min']:.2f} | {x['max']:.2f} |"  # noqa: E731
    models = r["models"]
    lines = [
        "# `cgflow report` on a campaign of 300 parameter sets", "",
        "Written by `benchmarks/report.py` (see its docstring and `benchmarks/README.md`); "
        "numbers in `report.json`, figure `report.png`.", "",
        f"{m['date']}, `nproc` {m['nproc']} ({m['cpu_model']}), Python {m['python']}, embedded "
        f"database. 1-minute load before: {m['load_before'][0]}, before the timing: "
        f"{r['load_before_timing'][0]}, after: {m['load_after'][0]} (1/5/15 min "
        f"{m['load_before']} -> {m['load_after']}); on a shared machine the wall times are "
        "upper bounds.", "",
        f"Campaign: the 300 sets of `campaign_status.py` ({r['settings']['plan']}), with "
        f"{s['aa_completed']} completed, {s['aa_failed']} failed and {s['aa_running']} running "
        f"AA runs, {s['ibi_iterations']} IBI iterations of the sets in IBI, {s['cg_runs']} CG "
        "runs"
        + (f"; models trained on {models['n_sets_trained']} converged sets "
           f"({models['train_s']:.0f} s, not part of the report), {models['n_validations']} "
           "validations." if models else "; no models."), "",
        f"| what ({t['cli_wall_s']['n']} repeats) | mean s | min s | max s |",
        "| --- | ---: | ---: | ---: |",
        row("`write_report()`, new folder: reading (views, histories, models, predictions)",
            t["cold_read_s"]),
        row(f"- drawing {t['figures_drawn']['cold']} figures and writing the page "
            f"({t['workers']} worker processes)", t["cold_draw_s"]),
        row("`write_report()` again, same folder: reading", t["warm_read_s"]),
        row(f"- drawing ({t['figures_drawn']['warm']} figures: the set figures are reused)",
            t["warm_draw_s"]),
        row("`cgflow report` in a new process, new folder", t["cli_wall_s"]), "",
        "CPU time (user + system of this process, its drawing workers and the command's "
        "process; the database server's not counted), mean s: `write_report()` new folder "
        f"{t['cold_cpu_s']['mean']:.1f}, same folder {t['warm_cpu_s']['mean']:.1f}, the "
        f"command {t['cli_cpu_s']['mean']:.1f}. On a loaded machine these are the steadier "
        "figures; the wall time of the drawing is about its CPU time divided by the "
        "workers' share of the cores.", "",
        f"The report folder: {t['folder']['n_files']} files ({t['folder']['n_png']} PNG), "
        f"{t['folder']['mib']:.1f} MiB.", "",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    p.add_argument("--seed", type=int, default=1, help="seed of the made-up campaign")
    p.add_argument("--no-models", dest="models", action="store_false",
                   help="no trained models (no parity plots, no training)")
    p.add_argument("--out", type=Path, default=RESULTS_DEFAULT,
                   help="JSON results file (.md and .png are written beside it)")
    p.add_argument("--keep-home", action="store_true", help="keep the temporary cgflow home")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    results = run_benchmark(args)
    write_results(args.out, results, markdown(results), "report")
    _say(f"results: {args.out}, {args.out.with_suffix('.md')}, {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
