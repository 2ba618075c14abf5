"""The two structure routes of ``cgflow predict`` in closed loop on sets no model has seen.

On the committed reference dataset (``data/reference``: 53 converged sets; the RDF model
also learns from the all-atom runs whose IBI did not converge), K-fold cross-validation
(seeded): for each fold the models the routes use (structure, RDF and alpha model, with
their defaults) are fitted on every set of the other folds (:func:`fit_routes`: as
:func:`cgflow.ml.training.train_all` fits its final models, without its own
cross-validation and test split; the RDF model on every all-atom run but the held-out
sets'), and for each held-out set both structure-preserving potentials are predicted
(:func:`cgflow.ml.predict.predict_potentials`):

- ``direct``: parameters -> U by the structure model (the baseline);
- ``inverse``: parameters -> (g_t, density, pressure) by the RDF model -> U by the shipped
  learned inverse;
- ``ibi`` (reference): the set's own converged IBI potential.

Each potential is simulated once as an IBI iteration samples (preset ``reference``: 343
beads, 10 + 50 ps, LAMMPS under Custodian, :func:`cgflow.stages.synthetic.run_pair`) at
the set's all-atom density, and compared with the set's all-atom target: RDF deviation
(:func:`cgflow.ibi.metrics.rdf_deviation`) and CG pressure minus AA pressure. The
diffusion (alpha route) is not simulated here: see ``cgflow validate``.

Goals (issue: simulation-ready predictions): median RDF deviation <= 0.04, 90th
percentile <= 0.06, |dP| <= 100 bar for most sets.

**Learning curves** (``--sizes N1 N2 ...``): in every fold the two predicted routes are
also trained on nested random subsets of N training sets (seeded per fold) and their
potentials simulated for the same held-out sets; the RDF model of a subset learns from
the all-atom runs of its N sets only, the full size from every all-atom run but the
held-out sets'. Its figure (``benchmarks/figures.py``) is drawn beside the json.

Usage::

    .venv/bin/python benchmarks/ml/structure_routes.py [--folds 5] [--max-sets N]
        [--data DIR [DIR ...]] [--sizes 15 30 45] [--out FILE.json]

Several ``--data`` folders (exports of campaigns with the same preset) are merged first
(:func:`cgflow.stages.dataset.merge_exports`, into a temporary folder).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from cgflow.ibi.metrics import rdf_deviation
from cgflow.ml.alpha_model import AccelerationFactorModel
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.potential_family import FamilySample
from cgflow.ml.predict import predict_potentials
from cgflow.ml.rdf_model import AATargets, RDFModel
from cgflow.ml.structure_model import StructureModel
from cgflow.ml.training import TrainedModels
from cgflow.params import ParameterSet
from cgflow.presets import get_cg_preset
from cgflow.stages import synthetic

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _common import cpu_model, data_folder, data_label, load_average, write_results  # noqa: E402

ROOT = HERE.parents[1]
ROUTES = ("direct", "inverse", "ibi")
GOAL_MEDIAN, GOAL_P90, GOAL_DP = 0.04, 0.06, 100.0


def simulate(r: np.ndarray, u: np.ndarray, rho: float, seed: int, workdir: Path
             ) -> tuple[np.ndarray, float]:
    pair = synthetic.run_pair(FamilySample(r, u, float(rho), -1), workdir,
                              get_cg_preset("reference"), seed=seed)
    return pair.g, pair.pressure_bar


def fit_routes(ds: CampaignDataset, rows: np.ndarray, targets: AATargets, seed: int
               ) -> TrainedModels:
    """The models the two predicted routes need, fitted on the dataset rows ``rows`` and
    the all-atom runs ``targets`` (no cross-validation, no dynamics or friction model)."""
    sub = ds.subset(rows)
    ok = np.isfinite(sub.alpha) & (sub.alpha > 0)
    return TrainedModels(
        structure=StructureModel(ds.r_nm, seed=seed).fit(sub.X, sub.U), dynamics=None,
        alpha=AccelerationFactorModel(random_state=seed).fit(sub.X[ok], sub.alpha[ok]),
        metadata={"training_bounds": {}}, rdf=RDFModel(random_state=seed).fit_targets(targets))


def route_scores(models: TrainedModels, ds: CampaignDataset, i: int, row: dict,
                 routes: tuple[str, ...], seed: int, workdir: Path) -> dict:
    """Simulate the predicted routes ``routes`` of held-out set ``i`` (and ``ibi``, the
    set's own potential, if asked) and score them against its all-atom target."""
    pred = predict_potentials(models, ParameterSet.from_array(ds.X[i]))
    r = np.asarray(pred.r_nm, float)
    g_t = np.interp(r, ds.r_nm, ds.g_target[i])
    rho, p_aa = float(row["density_kg_m3"]), float(row["pressure_bar"])
    out = {"pred_density_kg_m3": pred.density_kg_m3, "pred_pressure_bar": pred.pressure_bar,
           "g_target_deviation_of_model": rdf_deviation(
               r, np.interp(r, pred.rdf_r_nm, pred.g_target), g_t)
           if pred.g_target is not None else None}
    potentials = {"direct": pred.U_structure, "inverse": pred.U_structure_inverse,
                  "ibi": np.interp(r, ds.r_nm, ds.U[i])}
    for route in routes:
        u = potentials[route]
        if u is None:
            out[route] = None
            continue
        g, p = simulate(r, np.asarray(u, float), rho, seed, workdir / f"{row['param_id']}-{route}")
        out[route] = {"D": rdf_deviation(r, g, g_t), "dP_bar": float(p - p_aa)}
    return out


def _stats(entries: list[dict], route: str) -> dict | None:
    d = np.array([e[route]["D"] for e in entries if e.get(route)])
    dp = np.array([abs(e[route]["dP_bar"]) for e in entries if e.get(route)])
    if d.size == 0:
        return None
    return {"n": int(d.size), "median_D": float(np.median(d)),
            "p90_D": float(np.percentile(d, 90)), "max_D": float(d.max()),
            "median_abs_dP_bar": float(np.median(dp)),
            "frac_abs_dP_le_100": float(np.mean(dp <= GOAL_DP))}


def learning_curve_rows(results: list[dict]) -> list[dict]:
    """Per training size (the curve's, then the full folds'), the routes' statistics
    over the held-out sets and the RDF model's own g_t deviation."""
    sizes = sorted({int(s) for x in results for s in x.get("curve", {})})
    rows = []
    for size in [*sizes, None]:
        entries = ([x["curve"][str(size)] for x in results if str(size) in x.get("curve", {})]
                   if size is not None else results)
        gdev = [e["g_target_deviation_of_model"] for e in entries
                if e.get("g_target_deviation_of_model") is not None]
        rows.append({"n_train": size if size is not None
                     else int(np.median([x["n_train"] for x in results])),
                     "full": size is None, "n_test": len(entries),
                     "g_target_median_D": float(np.median(gdev)) if gdev else None,
                     **{m: _stats(entries, m) for m in ("direct", "inverse")}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, nargs="+", default=[ROOT / "data" / "reference"])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-sets", type=int, default=None, help="simulate at most N held-out "
                    "sets in all (spread over the folds)")
    ap.add_argument("--sizes", type=int, nargs="*", default=[],
                    help="learning curve: numbers of training sets (module docstring)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cgflow_structure_routes"))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "structure_routes.json")
    a = ap.parse_args()
    load0, t0 = load_average(), time.time()
    merged = contextlib.ExitStack()
    folder = merged.enter_context(data_folder(a.data))
    ds = CampaignDataset.load_npz(folder / "dataset.npz")
    targets = AATargets.from_export(folder)
    rows = {r["param_id"]: r for r in json.loads((folder / "sets.json").read_text())["sets"]}
    ids = ds.param_ids.tolist()
    n = len(ids)
    folds = np.array_split(np.random.default_rng(a.seed).permutation(n), a.folds)
    per_fold = None if a.max_sets is None else max(1, -(-a.max_sets // a.folds))
    results = []
    for k, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        train_ids = {ids[i] for i in train}
        test_ids = {ids[i] for i in test}
        # every AA run but the held-out sets' (unconverged runs stay: the RDF model
        # learns from them in a campaign too)
        keep = [i for i, p in enumerate(targets.param_ids.tolist()) if p not in test_ids]
        models = fit_routes(ds, train, targets.subset(keep), a.seed)
        assert not (train_ids & test_ids)
        # nested subsets of the training fold for the learning curve
        order = np.random.default_rng([a.seed, k]).permutation(train)
        curve_models = {}
        for size in sorted({s for s in a.sizes if s < train.size}):
            sub = np.sort(order[:size])
            sub_ids = set(ds.param_ids[sub].tolist())
            own = [j for j, p in enumerate(targets.param_ids.tolist()) if p in sub_ids]
            curve_models[size] = fit_routes(ds, sub, targets.subset(own), a.seed)
        held = [int(j) for j in sorted(test)][:per_fold]
        for i in held:
            pid = ids[i]
            row = rows[pid]
            out = {"param_id": pid, "fold": k, "aa_pressure_bar": float(row["pressure_bar"]),
                   "aa_pressure_err_bar": row.get("pressure_err_bar"),
                   "density_kg_m3": float(row["density_kg_m3"]), "n_train": int(train.size),
                   **route_scores(models, ds, i, row, ROUTES, 9100 + i, a.workdir)}
            out["curve"] = {str(size): route_scores(m, ds, i, row, ("direct", "inverse"),
                                                    9100 + i, a.workdir)
                            for size, m in curve_models.items()}
            results.append(out)
            print(f"fold {k} {pid}: " + ", ".join(
                f"{m} D={out[m]['D']:.3f} dP={out[m]['dP_bar']:+.0f}" for m in ROUTES
                if out[m] is not None) + "".join(
                f"; n={size}: direct {c['direct']['D']:.3f} inverse "
                f"{c['inverse']['D'] if c['inverse'] else float('nan'):.3f}"
                for size, c in out["curve"].items()), flush=True)
    shutil.rmtree(a.workdir, ignore_errors=True)
    merged.close()  # removes a merged copy
    curve = learning_curve_rows(results)

    summary = {m: st for m in ROUTES if (st := _stats(results, m)) is not None}
    res = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
           "cpu": cpu_model(), "load_before": load0, "load_after": load_average(),
           "wall_s": round(time.time() - t0, 1), "data": data_label(a.data, ROOT),
           "folds": a.folds,
           "seed": a.seed, "command": " ".join(["benchmarks/ml/structure_routes.py",
                                                  *sys.argv[1:]]),
           "goals": {"median_D": GOAL_MEDIAN, "p90_D": GOAL_P90, "abs_dP_bar": GOAL_DP},
           "summary": summary, "sets": results}
    lines = ["# Structure routes of `cgflow predict` in closed loop on unseen sets", "",
             f"Date {res['date_utc']} UTC; {res['cpu']}; load before {load0}, after "
             f"{res['load_after']}; wall {res['wall_s'] / 60:.1f} min. Command: "
             f"`.venv/bin/python {res['command']}`. {a.folds}-fold cross-validation on "
             f"`{res['data']}` ({n} converged sets, seed {a.seed}); {len(results)} held-out "
             "sets simulated (preset `reference`: 343 beads, 10 + 50 ps, at the set's AA "
             "density) and compared with their AA target RDF and pressure.", "",
             "Routes: `direct` = structure model (parameters -> U); `inverse` = RDF model "
             "(parameters -> g_t, density, pressure) -> shipped learned inverse; `ibi` = "
             "the set's converged IBI potential (what a campaign would get by simulating).",
             "The shipped inverse was trained on synthetic pairs whose potential family is "
             "anchored on the 53 IBI potentials of `data/reference` (held-out sets of that "
             "folder included; sets of other folders are not anchors); its input here "
             "is the RDF model's g_t, which is learned without them (the inverse alone on "
             "unseen targets: `benchmarks/results/inverse_unseen10.md`).", "",
             "| route | sets | median D | 90th pct D | max D | median abs dP (bar) | "
             "abs dP <= 100 bar |", "|---|---|---|---|---|---|---|"]
    for m, s in summary.items():
        lines.append(f"| {m} | {s['n']} | {s['median_D']:.3f} | {s['p90_D']:.3f} | "
                     f"{s['max_D']:.3f} | {s['median_abs_dP_bar']:.0f} | "
                     f"{100 * s['frac_abs_dP_le_100']:.0f} % |")
    gdev = [x["g_target_deviation_of_model"] for x in results
            if x["g_target_deviation_of_model"] is not None]
    if gdev:
        lines += ["", f"The RDF model's predicted g_t itself deviates from the AA g_t by "
                  f"D = {np.median(gdev):.3f} (median; {np.percentile(gdev, 90):.3f} at the "
                  "90th percentile): most of the inverse route's error is its input's (the "
                  "inverse alone, given the true g_t, reaches 0.029-0.035: "
                  "`benchmarks/results/inverse.md`)."]
    for m in ("direct", "inverse"):
        s = summary.get(m)
        if s:
            met = (s["median_D"] <= GOAL_MEDIAN and s["p90_D"] <= GOAL_P90
                   and s["frac_abs_dP_le_100"] > 0.5)
            lines.append("")
            lines.append(f"Goal (median D <= {GOAL_MEDIAN}, 90th percentile <= {GOAL_P90}, "
                         f"|dP| <= {GOAL_DP:.0f} bar for most sets), route `{m}`: "
                         + ("met" if met else "not met") + ".")
    if len(curve) > 1:
        res["learning_curve"] = curve
        lines += ["", "## Learning curve", "",
                  f"The same held-out sets, the routes trained on nested random subsets of "
                  f"each training fold (module docstring); figure `{a.out.stem}.png`.", "",
                  "| training sets | held-out | RDF model's g_t: median D | direct: median D "
                  "| direct: 90th pct | inverse: median D | inverse: 90th pct | inverse: "
                  "abs dP <= 100 bar |", "|---|---|---|---|---|---|---|---|"]
        for c in curve:
            d, v = c["direct"], c["inverse"]
            lines.append(
                f"| {c['n_train']}{' (all)' if c['full'] else ''} | {c['n_test']} | "
                + (f"{c['g_target_median_D']:.3f}" if c["g_target_median_D"] is not None
                   else "-") + " | "
                + (f"{d['median_D']:.3f} | {d['p90_D']:.3f}" if d else "- | -") + " | "
                + (f"{v['median_D']:.3f} | {v['p90_D']:.3f} | "
                   f"{100 * v['frac_abs_dP_le_100']:.0f} %" if v else "- | - | -") + " |")
    write_results(a.out, res, "\n".join(lines) + "\n",
                  figure="ml/structure_routes" if len(curve) > 1 else None)


if __name__ == "__main__":
    main()
