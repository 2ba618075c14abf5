"""IBI settings compared on real all-atom targets: iterations to convergence per set.

The LJ benchmark (``votca_ibi.py``) has one clean target; this one takes the all-atom
targets of the committed reference dataset (``data/reference/``: the target RDF on the
potential grid from ``dataset.npz``, the AA density, pressure and its error from
``sets.json``) and runs cgflow's IBI on each with every variant of settings, the same
seeds for all variants, as the campaign would (:func:`cgflow.stages.cg.make_settings`
from the campaign's ``ibi`` section, the ``reference`` CG preset: 343 beads, 10 + 50 ps
per iteration, at most 12 iterations, converged at D <= 0.03 and |dP| <= max(50 bar, the
AA error)), through the campaign's own loop (:func:`cgflow.stages.cg.run_ibi`: the IBI
monitor's corrections and Custodian included). Writes ``results/ibi_aa_targets.{json,md}``.

Usage::

    .venv/bin/python benchmarks/ibi_aa_targets.py [--sets N] [--variants a b ...]
        [--hold] [--resume] [--out NAME]

``--hold`` runs one more iteration of a converged set's potential (the next iteration's
seed) and records whether it meets the criterion again (the "held for two iterations" of
``votca_ibi.py --stage aa``); ``--resume`` writes the JSON after every run and skips the
runs already in it, so a stopped run loses nothing.

*Approximation:* the target RDF is the one stored on the potential grid (0.01 nm bins
from 0.1 nm), which is what IBI samples against in the campaign as well.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from cgflow.ibi.settings import IBISettings
from cgflow.ml.dataset import CampaignDataset
from cgflow.presets import get_cg_preset
from cgflow.stages import cg as cg_stage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import figures  # noqa: E402
from _common import cpu_model, cpu_s, load_average  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
BASE = {"rdf_tolerance": 0.03, "pressure_tolerance_bar": 50.0, "max_iterations": 12}
#: name -> campaign ``ibi`` section on top of BASE
VARIANTS: dict[str, dict] = {
    "ibi": {},
    # today's default (the shipped inverse where it covers the set, else the PMF) and the
    # old one, by name (``ibi`` is whatever the default is when it runs)
    "default": {"initial_guess": "auto"},
    "pmf": {"initial_guess": "pmf"},
    "ihnc": {"update_method": "ihnc", "ihnc_start_iteration": 1, "switch_width_nm": 0.03,
             "pressure_drift_weight": 0.0},
    "anderson": {"acceleration": "anderson"},
    "hnc_init": {"initial_guess": "hnc"},
    "overrelax": {"update_factor": 1.5, "factor_max": 1.5},
    "anderson_ihnc": {"acceleration": "anderson", "update_method": "ihnc",
                      "ihnc_start_iteration": 1},
    # the learned structure-to-potential inverse of benchmarks/inverse.py (path from ROOT)
    "inverse_init": {"initial_guess": "inverse",
                     "inverse_model": "benchmarks/results/inverse_model.json"},
    # the same, trained without the pairs drawn around the first 10 sets' IBI potentials
    "inverse_init_unseen": {"initial_guess": "inverse",
                            "inverse_model": "benchmarks/results/inverse_model_unseen10.json"},
}


def targets(data: Path, n: int | None) -> list[tuple[str, object]]:
    ds = CampaignDataset.load_npz(data / "dataset.npz")
    rows = {r["param_id"]: r for r in json.loads((data / "sets.json").read_text())["sets"]}
    out = []
    for i, pid in enumerate(ds.param_ids.tolist()[:n]):
        row = rows[pid]
        out.append((pid, cg_stage.make_target(
            rdf_r_nm=ds.r_nm, rdf_g=ds.g_target[i], density_kg_m3=row["density_kg_m3"],
            pressure_bar=row["pressure_bar"], pressure_err_bar=row["pressure_err_bar"] or 0.0,
            temperature_k=298.15)))
    return out


def run_variant(name: str, pid: str, target, workdir: Path, seed: int,
                hold: bool = False) -> dict:
    """One variant on one target through :func:`cgflow.stages.cg.run_ibi`; with ``hold``,
    a converged potential is run once more (seed of the next iteration) and judged by
    the same criterion (``held``)."""
    preset = get_cg_preset("reference")
    spec = dict(VARIANTS[name])
    if "inverse_model" in spec:
        spec["inverse_model"] = str(ROOT / spec["inverse_model"])
    settings = cg_stage.make_settings(IBISettings(**BASE, **spec), target, preset)
    out = workdir / f"{name}_{pid}"
    shutil.rmtree(out, ignore_errors=True)
    load0, t0, c0 = load_average(), time.time(), cpu_s()
    # the campaign's IBI loop (monitor and Custodian included), in one process
    outcome = cg_stage.run_ibi(target, settings, preset, out, seed_base=seed, threads=1)
    wall, cpu = time.time() - t0, cpu_s() - c0
    results = outcome.results
    best = outcome.best
    res = {"variant": name, "param_id": pid, "converged": outcome.converged,
           "reason": outcome.decision.reason, "initial_guess": settings.initial_guess,
           "iterations": len(results), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
           "load_before": load0, "load_after": load_average(),
           "wall_per_iteration_s": round(wall / len(results), 2),
           "cpu_per_iteration_s": round(cpu / len(results), 2),
           "D": [round(r.rdf_deviation, 4) for r in results],
           "dP_bar": [round(r.pressure_deviation_bar, 1) for r in results],
           "pressure_tolerance_bar": settings.pressure_tolerance_bar,
           "rdf_tolerance": settings.rdf_tolerance,
           "final": {"r_nm": np.round(best.r_nm, 4).tolist(),
                     "g": np.round(best.g, 4).tolist(),
                     "potential_r_nm": np.round(best.potential.r_nm, 4).tolist(),
                     "u_kj_mol": np.round(best.potential.u_kj_mol, 4).tolist()}}
    if hold and outcome.converged:
        n = len(results)
        again, _ = cg_stage.run_iteration(out, n, best.potential, target, settings, preset,
                                          previous=None, seed=seed + n, threads=1)
        res.update({"hold_D": round(again.rdf_deviation, 4),
                    "hold_dP_bar": round(again.pressure_deviation_bar, 1),
                    "held": bool(again.rdf_deviation <= settings.rdf_tolerance
                                 and abs(again.pressure_deviation_bar)
                                 <= settings.pressure_tolerance_bar)})
    shutil.rmtree(out, ignore_errors=True)
    return res


def combine(names: list[str], out: str) -> None:
    """One table from several result files of this script (same sets and seed)."""
    runs, meta, settings = [], [], {}
    for name in names:
        d = json.loads((RESULTS / f"{name}.json").read_text())
        runs += [dict(r, source=name) for r in d["runs"]]
        settings.update(d.get("variants", {}))
        meta.append(f"`{name}.json` ({d['date_utc']} UTC, load {d['load_before']})")
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    pids = list(dict.fromkeys(r["param_id"] for r in runs))
    lines = ["# IBI variants on the all-atom targets of the reference dataset", "",
             "The campaign's own IBI loop (`cgflow.stages.cg.run_ibi`: monitor and Custodian "
             "included), preset `reference` (343 beads, 10 + 50 ps per iteration), at most 12 "
             "iterations, converged at D <= 0.03 and |dP| <= max(50 bar, AA error), the same "
             "seeds for every variant. From " + ", ".join(meta) + ".", "",
             "| variant | settings | sets converged | total iterations | median |",
             "|---|---|---|---|---|"]
    for v in variants:
        mine = [r for r in runs if r["variant"] == v]
        its = [r["iterations"] for r in mine]
        lines.append(f"| {v} | {settings.get(v) or 'defaults'} | "
                     f"{sum(r['converged'] for r in mine)} / {len(mine)} | {sum(its)} | "
                     f"{float(np.median(its)):g} |")
    lines += ["", "| set | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for pid in pids:
        cells = []
        for v in variants:
            r = next((x for x in runs if x["variant"] == v and x["param_id"] == pid), None)
            cells.append("-" if r is None else
                         f"{r['iterations']}{'' if r['converged'] else ' (not conv.)'}")
        lines.append(f"| {pid} | " + " | ".join(cells) + " |")
    (RESULTS / f"{out}.md").write_text("\n".join(lines) + "\n")
    figures.ibi_aa_targets([json.loads((RESULTS / f"{n}.json").read_text()) for n in names],
                           RESULTS / f"{out}.png")
    print((RESULTS / f"{out}.md").read_text())


def write_summary(out_json: Path, a: argparse.Namespace, load0: list[float],
                  runs: list[dict]) -> dict:
    """The results so far (every finished run) to ``out_json``, written atomically."""
    summary = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
               "cpu": cpu_model(), "load_before": load0, "load_after": load_average(),
               "data": str(a.data.relative_to(ROOT)) if a.data.is_relative_to(ROOT)
               else str(a.data), "base": BASE, "seed": a.seed, "hold": a.hold,
               "variants": {k: VARIANTS[k] for k in a.variants}, "runs": runs}
    per = {}
    for name in a.variants:
        mine = [r for r in runs if r["variant"] == name]
        conv = [r["iterations"] for r in mine if r["converged"]]
        per[name] = {"n_sets": len(mine), "n_converged": len(conv),
                     "mean_iterations_converged": float(np.mean(conv)) if conv else None,
                     "total_iterations": int(sum(r["iterations"] for r in mine))}
    summary["per_variant"] = per
    out_json.parent.mkdir(exist_ok=True)
    tmp = out_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out_json)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "reference")
    ap.add_argument("--sets", type=int, default=None, help="first N sets only")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hold", action="store_true",
                    help="run a converged potential once more and judge it again")
    ap.add_argument("--resume", action="store_true",
                    help="write the JSON after every run; skip the runs already in it")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cgflow_ibi_aa_targets"))
    ap.add_argument("--out", default="ibi_aa_targets",
                    help="results/<OUT>.{json,md} (default ibi_aa_targets)")
    ap.add_argument("--combine", nargs="+", metavar="RESULT",
                    help="only write results/<OUT>.md from these results/<RESULT>.json")
    a = ap.parse_args()
    if a.combine:
        combine(a.combine, a.out)
        return
    load0 = load_average()
    out_json = RESULTS / f"{a.out}.json"
    runs = []
    if a.resume and out_json.exists():
        prev = json.loads(out_json.read_text())
        runs, load0 = prev["runs"], prev["load_before"]
    done = {(r["variant"], r["param_id"]) for r in runs}
    sets = targets(a.data, a.sets)
    for pid, target in sets:
        for name in a.variants:
            if (name, pid) in done:
                continue
            res = run_variant(name, pid, target, a.workdir, a.seed, hold=a.hold)
            runs.append(res)
            print(f"{pid} {name}: {res['iterations']} it, converged {res['converged']}, "
                  f"D {res['D'][-1]}, dP {res['dP_bar'][-1]}, held {res.get('held')}",
                  flush=True)
            if a.resume:
                write_summary(out_json, a, load0, runs)
    summary = write_summary(out_json, a, load0, runs)
    per = summary["per_variant"]
    lines = ["# IBI settings on the all-atom targets of the reference dataset", "",
             f"Date {summary['date_utc']} UTC; {summary['cpu']}; load before "
             f"{load0}. Preset `reference` (343 beads, 10 + 50 ps per iteration), at most "
             f"12 iterations, converged at D <= 0.03 and |dP| <= max(50 bar, AA error); "
             f"the same seeds for every variant.", "",
             "| variant | sets converged | mean iterations of the converged | total "
             "iterations |", "|---|---|---|---|"]
    for name, p in per.items():
        m = p["mean_iterations_converged"]
        lines.append(f"| {name} | {p['n_converged']} / {p['n_sets']} | "
                     f"{'-' if m is None else f'{m:.2f}'} | {p['total_iterations']} |")
    lines += ["", "| set | " + " | ".join(a.variants) + " |",
              "|---|" + "---|" * len(a.variants)]
    for pid, _ in sets:
        cells = []
        for name in a.variants:
            r = next(x for x in runs if x["variant"] == name and x["param_id"] == pid)
            cells.append(f"{r['iterations']}{'' if r['converged'] else ' (not conv.)'}")
        lines.append(f"| {pid} | " + " | ".join(cells) + " |")
    lines += ["", "Variants (the campaign's `ibi` section on top of the base):", ""]
    lines += [f"- `{k}`: {VARIANTS[k] or 'defaults'}" for k in a.variants]
    (RESULTS / f"{a.out}.md").write_text("\n".join(lines) + "\n")
    figures.draw("ibi_aa_targets", RESULTS / f"{a.out}.json")


if __name__ == "__main__":
    main()
