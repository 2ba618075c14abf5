"""Leave-one-molecule-out: models trained on the other molecules, simulated for the held-out
one, in closed loop.

The data are exports of cgflow campaigns (``cgflow dataset export`` / ``merge``) of several
molecules with the same CG preset. ``--data`` folders hold the molecules that are held out
in turn; ``--extra`` folders only add training rows (default ``data/reference``: the 53
sets of 2,3,4-trimethylpentane; a set already in ``--data`` is kept once). For each
molecule M of ``--data``:

1. the models are trained as the training stage trains them
   (:func:`cgflow.ml.training.train_all`, molecule features on because the rows are of
   several molecules; every row of the other molecules, with their all-atom targets; no
   test split: all of them train the final models);
2. for every converged set of M, :func:`cgflow.ml.predict.predict_potentials` with M's
   canonical SMILES, temperature and bead mass gives the structure potential (direct route)
   and the predicted alpha (and the route through the predicted g_t and the learned inverse
   where the shipped inverse covers M: 2,3,4-trimethylpentane only);
3. each potential is simulated by :func:`cgflow.stages.validate.validate_prediction` (the
   code of ``cgflow validate``: an IBI-style sampling run for the RDF and pressure, then a
   CG production for D_CG) at the set's all-atom density and temperature, against its
   all-atom target RDF and D_AA. Reported: RDF deviation D
   (:func:`cgflow.ibi.metrics.rdf_deviation`, the integrated absolute deviation over the
   integral of g_t: about the mean absolute error where g ~ 1), the pressure error, and the
   error of the alpha-rescaled mobility D_CG / alpha_pred against D_AA.

Without simulation, per set: the predicted g_t's deviation from the measured one, the
predicted density and alpha against the measured ones.

Goals (issue: any alkane): median RDF deviation of predicted potentials on held-out
molecules <= 0.05; alpha-rescaled D within 25 % of D_AA on at least most of them.

Each set's result is written to ``--workdir/<molecule>/<param_id>.json`` as it finishes,
so a stopped run resumes (``--resume``) without repeating finished sets.

Usage::

    nice -n 19 .venv/bin/python benchmarks/ml/molecule_transfer.py \\
        [--data data/alkanes] [--extra data/reference] [--only NAME] [--resume]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from cgflow.ibi.metrics import rdf_deviation
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.predict import predict_potentials
from cgflow.ml.rdf_model import AATargets
from cgflow.ml.training import train_all
from cgflow.molecule.registry import entry_for_smiles, resolve_molecule
from cgflow.params import ParameterSet
from cgflow.presets import get_cg_preset
from cgflow.stages import cg as cg_stage
from cgflow.stages.validate import validate_prediction

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _common import cpu_model, load_average, write_results  # noqa: E402

ROOT = HERE.parents[1]
GOAL_D, GOAL_DREL = 0.05, 0.25
#: The follow-up study's range on its eight liquids (issue text; per molecule in the
#: results file when known): D_CG / D_target and RDF mean absolute error.
FOLLOW_UP = {"d_ratio": (1.1, 6.7), "d_ratio_median": 2.85, "rdf_mae": (0.04, 0.11)}
#: Its D_CG / D_target per alkane, read from the repository saientan/database_and_ML_CG_Mobi
#: (D_CG: field 4 of CGMD_with_NN_predicted_potential/<mol>/Diffusivity.dat; D_target:
#: column 3 of NN_to_extrapolate_the_potential/prediction_with_optimized_hyperameter/
#: 8_mol_data.dat; both 1e-9 m^2/s). Its RDF mean absolute error for
#: 2,3,4-trimethylpentane, computed from its stored target and CG RDFs over 0.1-2.475 nm,
#: is 0.044 (first peak 0.30 too high); the other molecules' were not computed.
FOLLOW_UP_D_RATIO = {"2,3,4-trimethylpentane": 3.235 / 1.20, "2,3-dimethylbutane": 3.109 / 1.96,
                     "3-ethylhexane": 5.699 / 1.72, "3-methylpentane": 4.373 / 2.74,
                     "neopentane": 1.777 / 1.64}


def load_export(folder: Path) -> tuple[CampaignDataset, AATargets, dict[str, dict]]:
    ds = CampaignDataset.load_npz(folder / "dataset.npz")
    targets = AATargets.from_export(folder)
    rows = {r["param_id"]: r for r in json.loads((folder / "sets.json").read_text())["sets"]}
    return ds, targets, rows


def molecule_spec(smiles: str):
    entry = entry_for_smiles(smiles)
    return resolve_molecule(entry.name if entry is not None else {"smiles": smiles})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, nargs="+", default=[ROOT / "data" / "alkanes"])
    ap.add_argument("--extra", type=Path, nargs="*", default=[ROOT / "data" / "reference"])
    ap.add_argument("--only", action="append", help="hold out only this molecule (name or "
                    "SMILES; repeatable)")
    ap.add_argument("--preset", default="reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-sets", type=int, default=None,
                    help="simulate at most N sets per held-out molecule")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--summarise", action="store_true",
                    help="only write the tables and figure again from the results file "
                    "--out (its run's date, load, wall time and command are kept)")
    ap.add_argument("--inverse-beyond-molecule", action="store_true",
                    help="also apply the shipped inverse (trained on pairs of "
                    "2,3,4-trimethylpentane's potential family) to the other molecules, at "
                    "their own temperature and bead mass: an extrapolation, measured")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cgflow_molecule_transfer"))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "molecule_transfer.json")
    a = ap.parse_args()
    if a.summarise:
        old = json.loads(a.out.read_text())
        trainings = {k: v["training"] for k, v in old["molecules"].items()}
        summarise(a, old["sets"], trainings, old["load_before"], 0.0, run=old)
        return
    load0, t0 = load_average(), time.time()
    preset = get_cg_preset(a.preset)

    main_parts = [load_export(f) for f in a.data]
    main_ids = {p for ds, _, _ in main_parts for p in ds.param_ids.tolist()}
    parts = list(main_parts)
    for f in a.extra:
        ds, targets, rows = load_export(f)
        keep = [i for i, p in enumerate(ds.param_ids.tolist()) if p not in main_ids]
        tkeep = [i for i, p in enumerate(targets.param_ids.tolist()) if p not in main_ids]
        parts.append((ds.subset(keep), targets.subset(tkeep), rows))
    ds = CampaignDataset.concatenate([p[0] for p in parts], campaign="transfer")
    targets = AATargets.concatenate([p[1] for p in parts], ds.r_nm)
    rows = {k: v for p in parts for k, v in p[2].items()}
    held = [m for m in dict.fromkeys(x for d, _, _ in main_parts for x in d.molecules)]
    if a.only:
        wanted = {molecule_spec_from_arg(o) for o in a.only}
        held = [m for m in held if m in wanted]
    if not a.resume:
        shutil.rmtree(a.workdir, ignore_errors=True)

    inverse = None
    if a.inverse_beyond_molecule:
        from cgflow.ml.inverse import SHIPPED_INVERSE, StructureInverse

        inverse = StructureInverse.load(SHIPPED_INVERSE)
    results, trainings = [], {}
    for m in held:
        spec = molecule_spec(m)
        train = np.flatnonzero(ds.molecule != m)
        keep = np.flatnonzero(targets.molecule != m)
        t1 = time.time()
        report = train_all(ds.subset(train), seed=a.seed, test_fraction=0.0,
                           aa_targets=targets.subset(keep))
        models = report.models
        trainings[spec.name] = {"n_train_sets": int(train.size),
                                "n_train_aa_runs": int(keep.size),
                                "molecules": sorted({molecule_spec(x).name
                                                     for x in ds.molecule[train]}),
                                "cv_alpha_r2": report.cv_mean["alpha"].get("r2"),
                                "train_s": round(time.time() - t1, 1)}
        # simulated: the held-out molecule's sets of --data (rows of --extra only train)
        test = [i for i in np.flatnonzero(ds.molecule == m)
                if ds.param_ids[i] in main_ids and np.isfinite(ds.d_aa[i])
                and np.isfinite(ds.alpha[i])][:a.max_sets]
        print(f"held out {spec.name}: trained on {train.size} sets of "
              f"{len(trainings[spec.name]['molecules'])} molecules in "
              f"{trainings[spec.name]['train_s']} s; {len(test)} sets to simulate", flush=True)
        for i in test:
            pid = str(ds.param_ids[i])
            done = a.workdir / spec.name / f"{pid}.json"
            if a.resume and done.is_file():
                results.append(json.loads(done.read_text()))
                continue
            row = rows[pid]
            ps = ParameterSet.from_array(ds.X[i])
            pred = predict_potentials(models, ps, molecule=m, temperature_k=spec.temperature_k,
                                      mass_g_mol=spec.bead_mass_g_mol, inverse=inverse)
            target = cg_stage.make_target(
                rdf_r_nm=ds.r_nm, rdf_g=ds.g_target[i], density_kg_m3=row["density_kg_m3"],
                pressure_bar=row["pressure_bar"],
                pressure_err_bar=row.get("pressure_err_bar") or 0.0,
                temperature_k=spec.temperature_k)
            target = dataclasses.replace(target, mass_g_mol=spec.bead_mass_g_mol,
                                         molecule_smiles=m)
            settings = cg_stage.make_settings(None, target, preset)
            out = validate_prediction(a.workdir / spec.name / pid, pred, target, settings,
                                      preset, d_aa=float(ds.d_aa[i]),
                                      d_aa_err=float(ds.d_aa_err[i]))
            g_dev = (rdf_deviation(ds.r_nm, np.interp(ds.r_nm, pred.rdf_r_nm, pred.g_target),
                                   ds.g_target[i]) if pred.g_target is not None else None)
            res = {
                "molecule": spec.name, "smiles": m, "param_id": pid,
                "alpha_measured": float(ds.alpha[i]), "alpha_pred": pred.alpha,
                "alpha_std": pred.alpha_std, "d_aa": float(ds.d_aa[i]),
                "density_kg_m3": row["density_kg_m3"], "pred_density_kg_m3": pred.density_kg_m3,
                "aa_pressure_bar": row["pressure_bar"],
                "ibi_rdf_deviation": row.get("rdf_deviation"),
                "g_target_deviation_of_model": g_dev,
                "routes": {name: None if v is None else {
                    "D": v["rdf_deviation"], "dP_bar": v["pressure_deviation_bar"],
                    "d_cg": v["d_cg"],
                    "d_rescaled_rel_error": v.get("d_rescaled_rel_error")}
                    for name, v in (("structure", out["structure"]),
                                    ("structure_inverse", out["structure_inverse"]))},
            }
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps(res, indent=1) + "\n")
            shutil.rmtree(a.workdir / spec.name / pid, ignore_errors=True)
            results.append(res)
            s = res["routes"]["structure"]
            print(f"  {spec.name} {pid}: D={s['D']:.3f} dP={s['dP_bar']:+.0f} bar, "
                  f"alpha {res['alpha_pred']:.2f} (measured {res['alpha_measured']:.2f}), "
                  f"D_rescaled {100 * s['d_rescaled_rel_error']:+.0f} %", flush=True)
    summarise(a, results, trainings, load0, t0)


def molecule_spec_from_arg(value: str) -> str:
    from cgflow.cli.models import molecule_argument

    return molecule_argument(value).smiles


def summarise(a: argparse.Namespace, results: list[dict], trainings: dict, load0, t0,
              run: dict | None = None) -> None:
    """Write the result file, its tables and figure (``run``: the earlier run's record,
    whose date, load, wall time, command and settings are kept)."""
    per: dict[str, dict] = {}
    for name in dict.fromkeys(r["molecule"] for r in results):
        rs = [r for r in results if r["molecule"] == name]
        s = [r["routes"]["structure"] for r in rs]
        d = np.array([x["D"] for x in s])
        dp = np.array([abs(x["dP_bar"]) for x in s])
        de = np.array([x["d_rescaled_rel_error"] for x in s])
        ratio = np.array([1.0 + x for x in de])
        alpha_err = np.array([r["alpha_pred"] / r["alpha_measured"] - 1 for r in rs])
        gdev = [r["g_target_deviation_of_model"] for r in rs
                if r["g_target_deviation_of_model"] is not None]
        inv = [r["routes"]["structure_inverse"] for r in rs if r["routes"]["structure_inverse"]]
        per[name] = {
            "n": len(rs), "median_D": float(np.median(d)), "max_D": float(d.max()),
            "median_abs_dP_bar": float(np.median(dp)),
            "median_d_rescaled_rel_error": float(np.median(de)),
            "median_abs_d_rescaled_rel_error": float(np.median(np.abs(de))),
            "frac_d_within_25": float(np.mean(np.abs(de) <= GOAL_DREL)),
            "d_ratio_range": [float(ratio.min()), float(ratio.max())],
            "median_abs_alpha_rel_error": float(np.median(np.abs(alpha_err))),
            "median_g_target_deviation_of_model": float(np.median(gdev)) if gdev else None,
            "median_ibi_rdf_deviation": float(np.median([r["ibi_rdf_deviation"] for r in rs
                                                         if r["ibi_rdf_deviation"] is not None]
                                                        or [np.nan])),
            "inverse_median_D": float(np.median([x["D"] for x in inv])) if inv else None,
            "training": trainings.get(name),
        }
    med = [v["median_D"] for v in per.values()]
    within = [v["median_abs_d_rescaled_rel_error"] <= GOAL_DREL for v in per.values()]
    res = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "cpu": cpu_model(),
           "load_before": load0, "load_after": load_average(),
           "wall_s": round(time.time() - t0, 1),
           "command": " ".join(["benchmarks/ml/molecule_transfer.py", *sys.argv[1:]]),
           "data": [str(p) for p in a.data], "extra": [str(p) for p in a.extra],
           "preset": a.preset, "seed": a.seed,
           "inverse_beyond_molecule": a.inverse_beyond_molecule,
           **({k: run[k] for k in ("date_utc", "cpu", "load_before", "load_after", "wall_s",
                                    "command", "data", "extra", "preset", "seed",
                                    "inverse_beyond_molecule") if k in run} if run else {}),
           "goals": {"median_D": GOAL_D, "abs_d_rescaled_rel_error": GOAL_DREL},
           "follow_up_study": {**FOLLOW_UP, "d_ratio_per_molecule": FOLLOW_UP_D_RATIO},
           "molecules": per, "sets": results}
    lines = ["# Leave-one-molecule-out transfer, closed loop", "",
             f"Date {res['date_utc']} UTC; {res['cpu']}; load before {load0}, after "
             f"{res['load_after']}; wall {res['wall_s'] / 60:.1f} min. Command: "
             f"`.venv/bin/python {res['command']}`. Held out in turn: each molecule of "
             f"{', '.join(f'`{p}`' for p in res['data'])}; the models trained on every "
             "other row (and " + (", ".join(f"`{p}`" for p in res["extra"]) or "nothing")
             + "), with molecule features. Each set's predicted structure potential "
             f"simulated (preset `{res['preset']}`, `cgflow validate`'s code) at its all-atom "
             "density and temperature.", "",
             "| held-out molecule | sets | median D | max D | IBI's own D | model g_t D | "
             "median abs dP (bar) | D_CG/alpha vs D_AA, median | within 25 % | "
             "D ratio range | follow-up's D ratio | alpha error, median abs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in per.items():
        g = v["median_g_target_deviation_of_model"]
        lines.append(
            f"| {name} | {v['n']} | {v['median_D']:.3f} | {v['max_D']:.3f} | "
            f"{v['median_ibi_rdf_deviation']:.3f} | {'-' if g is None else f'{g:.3f}'} | "
            f"{v['median_abs_dP_bar']:.0f} | {100 * v['median_d_rescaled_rel_error']:+.0f} % | "
            f"{100 * v['frac_d_within_25']:.0f} % | {v['d_ratio_range'][0]:.2f}-"
            f"{v['d_ratio_range'][1]:.2f} | "
            + (f"{FOLLOW_UP_D_RATIO[name]:.2f}" if name in FOLLOW_UP_D_RATIO else "-")
            + f" | {100 * v['median_abs_alpha_rel_error']:.0f} % |")
    if med:
        lines += ["", f"Median over held-out molecules of the per-molecule median D: "
                  f"**{np.median(med):.3f}** (goal <= {GOAL_D}); alpha-rescaled D within "
                  f"{100 * GOAL_DREL:.0f} % (per-molecule median) on **{sum(within)} of "
                  f"{len(within)}** molecules (goal: most). The follow-up study (its "
                  f"predicted potentials on eight liquids): D_CG/D_target "
                  f"{FOLLOW_UP['d_ratio'][0]}-{FOLLOW_UP['d_ratio'][1]} (median "
                  f"{FOLLOW_UP['d_ratio_median']}), RDF mean absolute error "
                  f"{FOLLOW_UP['rdf_mae'][0]}-{FOLLOW_UP['rdf_mae'][1]}; here the D ratio is "
                  "(D_CG / alpha_pred) / D_AA, and D is close to a mean absolute error "
                  "where g ~ 1."]
        inv = {k: v["inverse_median_D"] for k, v in per.items() if v["inverse_median_D"]}
        if inv:
            lines += ["", "Through the predicted g_t and the shipped inverse ("
                      + ("applied to every molecule at its own temperature and bead mass, "
                         "an extrapolation beyond the 2,3,4-trimethylpentane family it was "
                         "trained on" if res["inverse_beyond_molecule"] else
                         "where it covers the molecule") + "): " + ", ".join(f"{k} median D {v:.3f}"
                                                          for k, v in inv.items()) + "."]
    write_results(a.out, res, "\n".join(lines) + "\n", figure="ml/molecule_transfer")


if __name__ == "__main__":
    main()
