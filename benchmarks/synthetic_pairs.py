"""Synthetic structure-potential pairs: cost per pair, and the pairs the inverse trains on.

Samples ``--n`` potentials of the family anchored on the committed reference dataset
(:func:`cgflow.stages.synthetic.reference_family`, seeded), runs each through the CG
stage's sampling run (:func:`cgflow.stages.synthetic.run_pairs`: LAMMPS under Custodian,
the IBI RDF and pressure estimators; preset ``--preset``, default ``reference``: 343
beads, 10 + 50 ps) in ``--jobs`` processes, and writes

- ``results/synthetic_pairs.npz``: the pairs (r_nm, U, g, g_err, P, P_err, density, T,
  mass, seed, wall_s), the training data of ``benchmarks/inverse.py``;
- ``results/synthetic_pairs.{json,md}``: the cost per pair (wall and CPU time), date and
  machine load.

Usage::

    .venv/bin/python benchmarks/synthetic_pairs.py [--n 400] [--seed 1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from cgflow.presets import get_cg_preset
from cgflow.stages import synthetic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model, load_average  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def _batch(args: tuple) -> list[dict]:
    data, n, seed, start, workdir, preset = args
    family = synthetic.reference_family(Path(data))
    pairs = synthetic.run_pairs(family, n, seed, Path(workdir), get_cg_preset(preset),
                                start=start)
    return [p.to_dict() for p in pairs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "reference")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--preset", default="reference")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cgflow_synthetic_pairs"))
    ap.add_argument("--out", default="synthetic_pairs")
    a = ap.parse_args()
    load0 = load_average()
    t0, c0 = time.time(), os.times()
    jobs = [(str(a.data), min(a.batch, a.n - s), a.seed, s, str(a.workdir), a.preset)
            for s in range(0, a.n, a.batch)]
    pairs: list[dict] = []
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        for batch in pool.map(_batch, jobs):
            pairs += batch
            print(f"{len(pairs)} / {a.n} pairs, {time.time() - t0:.0f} s", flush=True)
    wall = time.time() - t0
    c1 = os.times()
    cpu = (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)
    arr = {k: np.array([p[k] for p in pairs]) for k in pairs[0]}
    RESULTS.mkdir(exist_ok=True)
    np.savez_compressed(RESULTS / f"{a.out}.npz", r_nm=arr["r_nm"][0],
                        **{k: v for k, v in arr.items() if k != "r_nm"})
    per = np.array([p["wall_s"] for p in pairs])
    summary = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
               "cpu": cpu_model(), "load_before": load0, "load_after": load_average(),
               "preset": a.preset, "n_pairs": len(pairs), "seed": a.seed, "jobs": a.jobs,
               "wall_total_s": round(wall, 1),
               "wall_per_pair_s": {"median": round(float(np.median(per)), 2),
                                   "mean": round(float(per.mean()), 2),
                                   "max": round(float(per.max()), 2)},
               "cpu_total_s": round(cpu, 1),
               "cpu_per_pair_s": round(cpu / len(pairs), 2),
               "throughput_pairs_per_hour": round(3600 * len(pairs) / wall),
               "pressure_bar_range": [round(float(arr["pressure_bar"].min())),
                                      round(float(arr["pressure_bar"].max()))],
               "density_kg_m3_range": [round(float(arr["density_kg_m3"].min())),
                                       round(float(arr["density_kg_m3"].max()))]}
    (RESULTS / f"{a.out}.json").write_text(json.dumps(summary, indent=1))
    lines = ["# Synthetic structure-potential pairs: cost per pair", "",
             f"Date {summary['date_utc']} UTC; {summary['cpu']}; load before {load0}, after "
             f"{summary['load_after']}. Preset `{a.preset}`, {len(pairs)} pairs (seed "
             f"{a.seed}) in {a.jobs} processes.", "",
             "| quantity | value |", "|---|---|",
             f"| wall per pair (median / mean / max) | {summary['wall_per_pair_s']['median']} / "
             f"{summary['wall_per_pair_s']['mean']} / {summary['wall_per_pair_s']['max']} s |",
             f"| CPU per pair (LAMMPS + analysis, all processes) | "
             f"{summary['cpu_per_pair_s']} s |",
             f"| total wall | {summary['wall_total_s']} s |",
             f"| throughput | {summary['throughput_pairs_per_hour']} pairs / hour |",
             f"| density range | {summary['density_kg_m3_range']} kg/m^3 |",
             f"| pressure range | {summary['pressure_bar_range']} bar |"]
    (RESULTS / f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
