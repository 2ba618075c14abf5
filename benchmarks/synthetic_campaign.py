"""Cost per synthetic pair through FireWorks: a synthetic campaign on the embedded database.

Starts an embedded job database (``cgflow db start``) in a private temporary cgflow home,
writes a campaign of ``kind: synthetic`` (preset ``--preset``, default ``reference``;
``--n`` pairs, default 200, in batches of ``--batch``, seed ``--seed``, shipped anchors,
the learned inverse trained at the end), submits it and runs ``cgflow launch`` to
completion. Then

- measures the total wall time, the wall per pair (the stored pairs' ``wall_s`` and the
  total over n), the CPU time of the children, the FireWorks/database overhead per pair
  (total wall minus the sum of the pairs' own wall, over n), the wall of the
  train-inverse Firework, and pairs per hour;
- checks the stored pairs against the direct run of ``benchmarks/synthetic_pairs.py``
  (``results/synthetic_pairs.npz``, same seed, first n pairs): potentials and densities
  equal, the median RDF deviation (:func:`cgflow.ibi.metrics.rdf_deviation`) between the
  two runs of each potential;
- exports the pairs (``cgflow dataset pairs``) and the inverse (``cgflow models export
  structure-inverse --campaign``) and loads the inverse
  (:meth:`cgflow.ml.inverse.StructureInverse.load`).

Writes ``results/synthetic_campaign.{json,md,png}``.

Usage::

    nice -n 19 .venv/bin/python benchmarks/synthetic_campaign.py [--n 200] [--nice 19]

``--home DIR`` keeps the cgflow home in DIR; run again with the same ``--home`` to resume
an interrupted campaign (the stored pairs are not run again; the total wall is then a
lower bound from the pairs' wall_s and FireWorks' launch records, CPU covers the resumed
launch only, and both are marked so).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _common import child_cpu_s, cpu_model, home_env, load_average, write_results

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results"
DIRECT = RESULTS / "synthetic_pairs.npz"


def _cgflow(env: dict[str, str], *args: str, nice: int | None = None,
            timeout_s: float | None = None, check: bool = True
            ) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "cgflow"), *args]
    if nice is not None:
        cmd = ["nice", "-n", str(nice), *cmd]
    print("$", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env,  # noqa: S603
                       timeout=timeout_s, check=False, cwd=ROOT)
    if r.returncode != 0 and check:
        raise SystemExit(f"cgflow {' '.join(args)} failed ({r.returncode}):\n"
                         f"{r.stdout}\n{r.stderr}")
    return r


def _stats(x: np.ndarray, nd: int = 2) -> dict[str, float]:
    return {"median": round(float(np.median(x)), nd), "mean": round(float(x.mean()), nd),
            "max": round(float(x.max()), nd), "sum": round(float(x.sum()), 1)}


def firework_times(lp: Any, campaign: str, wall_of: dict[int, float]) -> dict[str, Any]:
    """Run times of the campaign's completed Fireworks (FireWorks' launch records, so a
    resumed campaign counts every launch): per batch, its run time and that minus the
    own wall of the pairs it ran (``wall_of``: pair index -> ``wall_s``); the
    train-inverse Firework's run time."""
    batches, inverse = [], None
    for fw in lp.fireworks.find({"spec.campaign": campaign, "state": "COMPLETED"}):
        for launch in lp.launches.find({"launch_id": {"$in": fw.get("launches", [])},
                                        "state": "COMPLETED"}):
            runtime = launch.get("runtime_secs")
            if runtime is None:
                continue
            if fw["spec"].get("cgflow_stage") == "train-inverse":
                inverse = round(float(runtime), 2)
                continue
            ran = ((launch.get("action") or {}).get("stored_data") or {}).get("ran") or []
            own = sum(wall_of.get(int(i), 0.0) for i in ran)
            batches.append({"fw_id": fw["fw_id"], "n_ran": len(ran),
                            "runtime_s": round(float(runtime), 2),
                            "outside_pairs_s": round(float(runtime) - own, 2)})
    batches.sort(key=lambda b: b["fw_id"])
    n_ran = sum(b["n_ran"] for b in batches)
    return {"batches": batches, "train_inverse_s": inverse,
            "batch_runtime_sum_s": round(sum(b["runtime_s"] for b in batches), 1),
            "in_firework_overhead_per_pair_s": round(
                sum(b["outside_pairs_s"] for b in batches) / n_ran, 3) if n_ran else None}


def compare_direct(docs: list[Any], r_nm: np.ndarray) -> dict[str, Any]:
    """The stored pairs against the first n pairs of the direct run (same seed)."""
    from cgflow.ibi.metrics import rdf_deviation

    with np.load(DIRECT) as f:
        direct = {k: f[k] for k in f.files}
    n = min(len(docs), direct["u_kj_mol"].shape[0])
    u = np.array([d.u_kj_mol for d in docs[:n]])
    rho = np.array([d.density_kg_m3 for d in docs[:n]])
    g = np.array([d.g for d in docs[:n]])
    seeds = np.array([d.lammps_seed for d in docs[:n]])
    dev = np.array([rdf_deviation(r_nm, g[i], direct["g"][i]) for i in range(n)])
    return {"n_compared": n,
            "same_grid": bool(np.allclose(r_nm, direct["r_nm"])),
            "u_kj_mol_equal": bool(np.array_equal(u, direct["u_kj_mol"][:n])),
            "u_kj_mol_max_abs_diff": float(np.abs(u - direct["u_kj_mol"][:n]).max()),
            "density_equal": bool(np.array_equal(rho, direct["density_kg_m3"][:n])),
            "lammps_seeds_equal": bool(np.array_equal(seeds, direct["seed"][:n])),
            "rdf_identical": int(np.sum(dev == 0.0)),
            "rdf_deviation": {"median": round(float(np.median(dev)), 5),
                              "mean": round(float(dev.mean()), 5),
                              "max": round(float(dev.max()), 5)},
            "direct_wall_s": direct["wall_s"][:n].tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--preset", default="reference")
    ap.add_argument("--nice", type=int, default=None,
                    help="run cgflow launch under nice -n NICE")
    ap.add_argument("--home", type=Path, default=None,
                    help="cgflow home to use and keep (default: a temporary one, removed)")
    ap.add_argument("--out", default="synthetic_campaign")
    a = ap.parse_args()

    from fireworks import LaunchPad

    from cgflow.db.server import EmbeddedServer
    from cgflow.db.store import Store
    from cgflow.ml.inverse import StructureInverse
    from cgflow.stages import synthetic

    keep = a.home is not None
    home = a.home or Path(tempfile.mkdtemp(prefix="cgflow-synthetic-campaign-"))
    home.mkdir(parents=True, exist_ok=True)
    env = home_env(home)
    name = f"synthetic-{a.preset}-{a.n}"
    load0 = load_average()
    date0 = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    try:
        _cgflow(env, "db", "start")
        lp = LaunchPad.from_file(str(home / "fw_config" / "my_launchpad.yaml"))
        resumed = lp.workflows.find_one({"metadata.cgflow_campaign": name}) is not None
        t0, c0 = time.time(), child_cpu_s()
        if not resumed:
            spec = home / f"{name}.yaml"
            spec.write_text(yaml.safe_dump({
                "name": name, "description": "cost per synthetic pair through FireWorks",
                "kind": "synthetic", "preset": a.preset,
                "synthetic": {"n_pairs": a.n, "batch_size": a.batch, "seed": a.seed,
                              "anchors": "shipped", "train_inverse": True}},
                sort_keys=False))
            _cgflow(env, "campaign", "submit", str(spec))
        t_submit = time.time() - t0
        _cgflow(env, "launch", "--campaign", name, nice=a.nice)
        wall = time.time() - t0
        cpu = child_cpu_s() - c0
        wf = lp.workflows.find_one({"metadata.cgflow_campaign": name})
        state = wf["state"] if wf else None
        with Store.from_launchpad(lp) as store:
            docs = store.synthetic_pairs(name)
            model = store.get_model(name, synthetic.INVERSE_MODEL)
        n = len(docs)
        per = np.array([d.wall_s for d in docs])
        r_nm = np.asarray(docs[0].r_nm)
        fws = firework_times(lp, name, {d.index: d.wall_s for d in docs})
        t_inverse = fws["train_inverse_s"]
        cmp = compare_direct(docs, r_nm)
        direct_wall = np.array(cmp.pop("direct_wall_s"))

        npz, inv = home / "pairs.npz", home / "inverse.json"
        _cgflow(env, "dataset", "pairs", name, "-o", str(npz))
        exported = _cgflow(env, "models", "export", synthetic.INVERSE_MODEL, "--campaign",
                           name, "-o", str(inv), check=False)
        with np.load(npz) as f:
            export_ok = bool(f["g"].shape == (n, r_nm.size)
                             and np.array_equal(f["u_kj_mol"],
                                                np.array([d.u_kj_mol for d in docs])))
        inverse_ok: bool | str = (exported.stdout + exported.stderr).strip()
        if exported.returncode == 0:
            loaded = StructureInverse.load(inv)
            d0 = docs[0]
            u0 = loaded.predict_potential(np.asarray(d0.g), d0.density_kg_m3,
                                          d0.temperature_k, d0.mass_g_mol,
                                          pressure_bar=d0.pressure_bar)
            inverse_ok = bool(np.all(np.isfinite(u0.u_kj_mol)))
    finally:
        EmbeddedServer(home=home).stop()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)

    if resumed:  # an interrupted launch left no complete record: a lower bound
        wall = (float(per.sum()) + n * (fws["in_firework_overhead_per_pair_s"] or 0.0)
                + (t_inverse or 0.0))
    overhead = (wall - float(per.sum())) / n
    results: dict[str, Any] = {
        "date_utc": date0, "cpu": cpu_model(), "n_cores": os.cpu_count(),
        "load_before": load0, "load_after": load_average(),
        "command": " ".join(["nice -n 19" if os.nice(0) >= 19 else "",
                             ".venv/bin/python benchmarks/synthetic_campaign.py",
                             *sys.argv[1:]]).strip(),
        "campaign": name, "preset": a.preset, "n_pairs": n, "batch_size": a.batch,
        "seed": a.seed, "resumed": resumed, "workflow_state": state,
        "wall_total_s": round(wall, 1),
        "wall_total_note": ("resumed: sum of the pairs' wall_s + n x the overhead inside "
                            "the completed batch Fireworks + train-inverse (launcher gaps "
                            "left out, a lower bound)" if resumed else "submit + launch"),
        "submit_s": round(t_submit, 2),
        "wall_per_pair_s": _stats(per),
        "wall_total_per_pair_s": round(wall / n, 2),
        "cpu_children_s": round(cpu, 1), "cpu_per_pair_s": round(cpu / n, 2),
        "overhead_per_pair_s": round(overhead, 2),
        "train_inverse_s": t_inverse,
        "fireworks": fws,
        "launcher_overhead_per_pair_s": None if resumed else round(
            (wall - fws["batch_runtime_sum_s"] - (t_inverse or 0.0)) / n, 3),
        "throughput_pairs_per_hour": round(3600 * n / wall),
        "direct": {"wall_per_pair_s": _stats(direct_wall),
                   "source": "benchmarks/results/synthetic_pairs.npz"},
        "versus_direct": cmp,
        "export": {"pairs_npz_ok": export_ok, "inverse_loads": inverse_ok,
                   "inverse_n_pairs": (model.metadata or {}).get("n_pairs") if model else None},
        "hist": {"campaign_wall_s": [round(float(x), 3) for x in per],
                 "direct_wall_s": [round(float(x), 3) for x in direct_wall]},
    }
    w, dw = results["wall_per_pair_s"], results["direct"]["wall_per_pair_s"]
    dev = cmp["rdf_deviation"]
    md = "\n".join([
        "# Synthetic pairs through FireWorks: a synthetic campaign on the embedded database",
        "",
        f"Date {date0} UTC; {results['cpu']}, {results['n_cores']} cores; load before "
        f"{load0}, after {results['load_after']}. Command: `{results['command']}`.",
        f"Campaign `{name}`: preset `{a.preset}`, {n} pairs in batches of {a.batch}, seed "
        f"{a.seed}, shipped anchors, inverse trained at the end; workflow {state}"
        + (" (resumed after an interruption: the total wall is a lower bound without the "
           "launcher's gaps, CPU covers the resumed launch only)" if resumed else "") + ".",
        "",
        "| quantity | campaign | direct (`synthetic_pairs.py`, 2 processes) |",
        "|---|---|---|",
        f"| wall per pair, stored `wall_s` (median / mean / max) | {w['median']} / "
        f"{w['mean']} / {w['max']} s | {dw['median']} / {dw['mean']} / {dw['max']} s |",
        f"| total wall / n | {results['wall_total_per_pair_s']} s | |",
        f"| total wall | {results['wall_total_s']} s | |",
        f"| CPU (children) per pair | {results['cpu_per_pair_s']} s | 1.22 s |",
        f"| FireWorks + database overhead per pair (wall - sum wall_s) / n | "
        f"{results['overhead_per_pair_s']} s | |",
        f"| of which inside the batch Fireworks (run time - sum wall_s) / n | "
        f"{fws['in_firework_overhead_per_pair_s']} s | |",
        f"| of which between Fireworks (launcher, rlaunch, queries) / n | "
        f"{results['launcher_overhead_per_pair_s']} s | |",
        f"| train-inverse Firework | {t_inverse} s | |",
        f"| throughput | {results['throughput_pairs_per_hour']} pairs / hour | 1212 |",
        "",
        f"Against the direct run (first {cmp['n_compared']} pairs, same seed): potentials "
        f"equal {cmp['u_kj_mol_equal']}, densities equal {cmp['density_equal']}, LAMMPS seeds "
        f"equal {cmp['lammps_seeds_equal']}; RDF deviation between the two runs of each "
        f"potential median {dev['median']}, max {dev['max']} ({cmp['rdf_identical']} "
        f"identical).",
        f"Export: `cgflow dataset pairs` npz matches the store {export_ok}; "
        f"`cgflow models export structure-inverse` loads {inverse_ok}.", ""])
    write_results(RESULTS / f"{a.out}.json", results, md, figure=a.out
                  if a.out == "synthetic_campaign" else None)


if __name__ == "__main__":
    main()
