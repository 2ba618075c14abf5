"""Friction-matched CG dynamics on the committed reference sets: calibration, the learned
friction, and the routes to the all-atom mobility compared on the same sets.

For every converged set of ``data/reference/`` (its IBI potential, density, pressure,
target RDF, D_AA; no GROMACS) this script

1. runs the frictionless CG production again (``reference`` preset, the campaign's
   production: weakly coupled Nose-Hoover), which gives D_CG(0), the pressure and the RDF
   of the frictionless run (and checks D_CG(0) against the stored one);
2. calibrates gamma with D_CG(gamma) = D_AA (:func:`cgflow.stages.friction.run_friction`,
   the campaign's steps, Langevin; trials of ``--trial-ps``);
3. cross-validates (5 folds, seeded) the friction model (the alpha model's GP on gamma)
   and the alpha model on the same folds, and simulates each held-out set's potential
   with its *predicted* gamma (route "potential + predicted friction"), next to the
   alpha-rescaled route D_CG(0) / alpha_pred and the calibrated route D_CG(gamma_cal);
   and the route "gamma_0 x ratio": the first estimate gamma_0 = (kT/m)(1/D_AA - 1/D_CG(0))
   of the predicted D_AA = D_CG(0) / alpha_pred, times the GP's gamma_cal / gamma_0 (on the
   same folds), simulated too;
4. ``--stage thermostats``: D_CG(0) of one set under NVE, the production's Nose-Hoover and
   the IBI stage's Langevin thermostat (0.5 ps), and a DPD calibration where a LAMMPS
   with DPD-BASIC is found (``--dpd-lmp``).

Results: ``results/friction.json``, ``results/friction.md`` (with date, machine load
and wall time) and ``results/friction.png`` (``figures.py``: predicted against calibrated
gamma, D / D_AA per route). Each set's calibration is kept in ``<work>/<set>/calibration.json``
and each predicted-friction run's D in ``d.json`` beside it; ``--resume`` reads them instead
of running them again, so a stopped run goes on where it stopped.

Usage::

    .venv/bin/python benchmarks/friction.py                       # calibrate + CV (all sets)
    .venv/bin/python benchmarks/friction.py --max-sets 10
    .venv/bin/python benchmarks/friction.py --resume    # go on after a stop (same --work)
    .venv/bin/python benchmarks/friction.py --stage thermostats --dpd-lmp /path/to/lmp
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model, data_folder, data_label, load_average

from cgflow.engines import lammps
from cgflow.ibi import friction as ffr
from cgflow.ibi.friction import FrictionSettings
from cgflow.ibi.production import finish_production, prepare_production
from cgflow.jobs.lammps.job import run_lammps
from cgflow.ml.alpha_model import AccelerationFactorModel
from cgflow.ml.dataset import CampaignDataset
from cgflow.presets import get_cg_preset
from cgflow.stages import cg as cg_stage
from cgflow.stages import friction as fstage
from cgflow.stages.validate import on_ibi_grid

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "results"
DATA = ROOT / "data" / "reference"
T = 298.15


#: Export folders of the sets (``--data``; several are merged).
FOLDERS: list[Path] = [DATA]


def reference_sets(max_sets: int | None) -> list[dict[str, Any]]:
    """The converged sets of the data folders (:data:`FOLDERS`) with what a CG run needs."""
    with data_folder(FOLDERS) as folder:
        ds = CampaignDataset.load_npz(folder / "dataset.npz")
        info = {s["param_id"]: s for s in json.loads((folder / "sets.json").read_text())["sets"]}
    out = []
    for i, pid in enumerate(ds.param_ids.tolist()):
        s = info[pid]
        out.append({"i": i, "param_id": pid, "X": ds.X[i], "r_nm": ds.r_nm, "U": ds.U[i],
                    "g": ds.g_target[i], "density": s["density_kg_m3"],
                    "pressure": s["pressure_bar"], "pressure_err": s["pressure_err_bar"] or 0.0,
                    "d_aa": float(ds.d_aa[i]), "d_aa_err": float(ds.d_aa_err[i]),
                    "d_cg0_stored": float(ds.d_cg[i]), "alpha": float(ds.alpha[i])})
    return out[:max_sets] if max_sets else out


def set_up(s: dict[str, Any], preset):
    target = cg_stage.make_target(rdf_r_nm=s["r_nm"], rdf_g=np.nan_to_num(s["g"]),
                                  density_kg_m3=s["density"], pressure_bar=s["pressure"],
                                  pressure_err_bar=s["pressure_err"], temperature_k=T)
    settings = cg_stage.make_settings(None, target, preset)
    pot = on_ibi_grid(s["r_nm"], s["U"], settings, preset)
    return target, settings, pot


def frictionless(workdir: Path, pot, target, settings, preset) -> fstage.FrictionReference:
    prep = prepare_production(workdir, pot, target, settings, preset, seed=cg_stage.PRODUCTION_SEED)
    run_lammps(prep.workdir, prep.input_file.name, settings=prep.lammps_settings)
    p = finish_production(prep.workdir)
    return fstage.FrictionReference(
        p.diffusion.d_nm2_ps, p.diffusion.d_err_nm2_ps, p.pressure_bar, p.pressure_err_bar,
        p.rdf_r_nm, p.rdf_g, p.rdf_g_err, "production", temperature_k=p.temperature_k)


def langevin_d(workdir: Path, pot, target, settings, preset, gamma: float,
               trial_ps: float | None) -> float:
    """D_CG of the potential under a Langevin friction gamma (one run)."""
    prep = prepare_production(workdir, pot, target, settings, preset, seed=6001,
                              thermostat="langevin", friction_per_ps=gamma,
                              production_ps=trial_ps)
    run_lammps(prep.workdir, prep.input_file.name, settings=prep.lammps_settings)
    return float(finish_production(prep.workdir).diffusion.d_nm2_ps)


def predicted_d(workdir: Path, s: dict[str, Any], preset, gamma: float,
                trial_ps: float | None, resume: bool) -> float:
    """:func:`langevin_d` of set ``s``, kept in ``workdir/d.json``; with ``resume``, a run of
    the same gamma and trial length already there is read instead of run again."""
    cache = workdir / "d.json"
    if resume and cache.exists():
        saved = json.loads(cache.read_text())
        if saved["trial_ps"] == trial_ps and math.isclose(saved["gamma"], gamma, rel_tol=1e-9):
            return float(saved["d"])
    target, settings, pot = set_up(s, preset)
    d = langevin_d(workdir, pot, target, settings, preset, gamma, trial_ps)
    cache.write_text(json.dumps({"gamma": gamma, "trial_ps": trial_ps, "d": d}) + "\n")
    return d


def calibrate(args, work: Path) -> dict[str, Any]:
    preset = get_cg_preset("reference")
    fs = FrictionSettings(enabled=True, trial_ps=args.trial_ps, max_trials=args.max_trials)
    rows = []
    t0 = time.perf_counter()
    reused = {}
    for f in args.reuse_calibrations or []:
        old = json.loads(Path(f).read_text()).get("calibration") or {}
        if (old.get("trial_ps"), old.get("max_trials")) == (args.trial_ps, args.max_trials):
            reused.update({r["param_id"]: r for r in old.get("rows", [])})
    for k, s in enumerate(reference_sets(args.max_sets), 1):
        d = work / s["param_id"]
        row_file = d / "calibration.json"
        if s["param_id"] in reused:
            rows.append(reused[s["param_id"]])
            print(f"[{k}] {s['param_id']}: calibration reused from a results file", flush=True)
            continue
        if args.resume and row_file.exists():
            saved = json.loads(row_file.read_text())
            if (saved.get("trial_ps"), saved.get("max_trials")) == (args.trial_ps,
                                                                     args.max_trials):
                rows.append(saved["row"])
                print(f"[{k}] {s['param_id']}: resumed from {row_file}", flush=True)
                continue
        target, settings, pot = set_up(s, preset)
        t_set = time.perf_counter()
        ref = frictionless(d / "production", pot, target, settings, preset)
        out = fstage.run_friction(d, pot, target, settings, preset, fs, ref,
                                  d_aa_nm2_ps=s["d_aa"], d_aa_err_nm2_ps=s["d_aa_err"])
        fields = fstage.calibration_fields(out.decision, out.trials, ref, fs, target=target,
                                           settings=settings, d_aa_nm2_ps=s["d_aa"],
                                           d_aa_err_nm2_ps=s["d_aa_err"],
                                           first_estimate_per_ps=out.first.next_friction_per_ps)
        row = {
            "param_id": s["param_id"], "d_aa": s["d_aa"], "d_aa_err": s["d_aa_err"],
            "d_cg0_stored": s["d_cg0_stored"], "d_cg0": ref.d_nm2_ps, "d_cg0_err": ref.d_err_nm2_ps,
            "alpha_stored": s["alpha"], "status": fields["status"], "reason": fields["reason"],
            "first_estimate": fields["first_estimate_per_ps"], "n_trials": fields["n_trials"],
            "gamma": (fields.get("friction_per_ps") or {}).get("mean"),
            "gamma_err": (fields.get("friction_per_ps") or {}).get("err"),
            "d_cal": (fields.get("d_cg_nm2_ps") or {}).get("mean"),
            "d_cal_err": (fields.get("d_cg_nm2_ps") or {}).get("err"),
            "check": fields.get("structure_check"),
            "trials": [{k_: t[k_] for k_ in ("trial", "friction_per_ps", "d_nm2_ps",
                                              "d_err_nm2_ps", "pressure_bar", "wall_s")}
                       for t in out.trials],
            "wall_s": time.perf_counter() - t_set,
        }
        rows.append(row)
        row_file.write_text(json.dumps({"trial_ps": args.trial_ps, "max_trials": args.max_trials,
                                        "row": row}, indent=1, default=float) + "\n")
        print(f"[{k}] {s['param_id']}: D0 {ref.d_nm2_ps:.4g} (stored {s['d_cg0_stored']:.4g}), "
              f"D_AA {s['d_aa']:.4g}: {row['status']} after {row['n_trials']} trial(s), "
              f"gamma {row['gamma']}, {row['wall_s']:.0f} s", flush=True)
    return {"rows": rows, "seconds": time.perf_counter() - t0, "trial_ps": args.trial_ps,
            "max_trials": args.max_trials}


def cross_validate(args, cal: dict[str, Any], work: Path) -> dict[str, Any]:
    """5-fold CV of the friction and alpha models; held-out sets simulated with the
    predicted gamma."""
    from cgflow.ml.dataset import splits

    preset = get_cg_preset("reference")
    sets = {s["param_id"]: s for s in reference_sets(None)}
    rows = [r for r in cal["rows"] if r["status"] == "converged" and (r["gamma"] or 0) > 0
            and (r["first_estimate"] or 0) > 0]
    n = len(rows)
    X = np.array([sets[r["param_id"]]["X"] for r in rows])
    gamma = np.array([r["gamma"] for r in rows])
    alpha0 = np.array([r["d_cg0"] / r["d_aa"] for r in rows])  # alpha of the rerun D_CG(0)
    ratio = gamma / np.array([r["first_estimate"] for r in rows])  # gamma_cal / gamma_0
    sp = splits(n, n_folds=5, test_fraction=0.0, seed=args.seed) if n >= 5 else None
    t0 = time.perf_counter()
    out_rows = []
    if sp is None:
        return {"skipped": f"{n} calibrated sets"}
    for fold, (train, test) in enumerate(sp.folds):
        fm = AccelerationFactorModel(random_state=args.seed).fit(X[train], gamma[train])
        am = AccelerationFactorModel(random_state=args.seed).fit(X[train], alpha0[train])
        rm = AccelerationFactorModel(random_state=args.seed).fit(X[train], ratio[train])
        g_pred, g_std = fm.predict(X[test], return_std=True)
        a_pred = am.predict(X[test])
        r_pred = rm.predict(X[test])
        lg_m, lg_s = fm.predict_log(X[test])
        la_m, la_s = am.predict_log(X[test])
        lr_m, lr_s = rm.predict_log(X[test])
        for j, i in enumerate(test):
            r = rows[i]
            s = sets[r["param_id"]]
            d_pred = predicted_d(work / r["param_id"] / "predicted", s, preset,
                                 float(g_pred[j]), args.trial_ps, args.resume)
            # gamma_0 of the predicted D_AA = D_CG(0) / alpha_pred, times the predicted
            # gamma_cal / gamma_0: what a new set has without D_AA (its D_CG(0), its alpha)
            g0_pred = ffr.first_estimate(r["d_cg0"], r["d_cg0"] / float(a_pred[j]), T,
                                         set_up(s, preset)[0].mass_g_mol)
            g_ratio = g0_pred * float(r_pred[j])
            d_ratio = (predicted_d(work / r["param_id"] / "predicted-ratio", s, preset,
                                   g_ratio, args.trial_ps, args.resume)
                       if g_ratio > 0 else r["d_cg0"])
            out_rows.append({
                "param_id": r["param_id"], "fold": fold, "gamma": r["gamma"],
                "gamma_pred": float(g_pred[j]), "gamma_pred_std": float(g_std[j]),
                "d_aa": r["d_aa"], "d_friction_pred": d_pred,
                "err_friction_pred": d_pred / r["d_aa"] - 1,
                "d_rescaled": r["d_cg0"] / float(a_pred[j]),
                "err_rescaled": r["d_cg0"] / float(a_pred[j]) / r["d_aa"] - 1,
                "err_calibrated": r["d_cal"] / r["d_aa"] - 1,
                "err_frictionless": r["d_cg0"] / r["d_aa"] - 1,
                "alpha": float(alpha0[i]), "alpha_pred": float(a_pred[j]),
                "gamma0": r["first_estimate"], "gamma0_pred": g0_pred,
                "ratio": float(ratio[i]), "ratio_pred": float(r_pred[j]),
                "gamma_ratio_pred": g_ratio, "d_ratio_pred": d_ratio,
                "err_ratio_pred": d_ratio / r["d_aa"] - 1,
                "log_gamma_pred": [float(lg_m[j]), float(lg_s[j])],
                "log_alpha_pred": [float(la_m[j]), float(la_s[j])],
                "log_ratio_pred": [float(lr_m[j]), float(lr_s[j])],
            })
            o = out_rows[-1]
            print(f"[cv {fold}] {r['param_id']}: gamma {r['gamma']:.3g} pred "
                  f"{g_pred[j]:.3g} +- {g_std[j]:.2g}: D {100 * o['err_friction_pred']:+.0f} %"
                  f" (alpha-rescaled {100 * o['err_rescaled']:+.0f} %, gamma_0 x ratio "
                  f"{g_ratio:.3g}: {100 * o['err_ratio_pred']:+.0f} %)", flush=True)
    return {"rows": out_rows, "seconds": time.perf_counter() - t0, "n_sets": n,
            **log_errors(out_rows)}


def log_errors(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Out-of-fold RMSE of the log of gamma, alpha, gamma_cal / gamma_0 and the gamma of
    the gamma_0 route (of the predicted mean, and of the GP's mean of the log, for
    gamma, alpha and the ratio), the spread of log(gamma_cal / gamma_0) and the
    correlation of log gamma_0 with log gamma_cal."""
    def col(key: str) -> np.ndarray:
        return np.array([o[key] for o in rows], dtype=float)

    def rmse(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x**2)))

    out = {"gamma_log_rmse": rmse(np.log(col("gamma_pred") / col("gamma")))}
    if rows and "alpha" in rows[0]:
        lr = np.log(col("ratio"))
        out.update({
            "alpha_log_rmse": rmse(np.log(col("alpha_pred") / col("alpha"))),
            "ratio_log_rmse": rmse(np.log(col("ratio_pred") / col("ratio"))),
            "gamma_ratio_log_rmse": rmse(np.log(col("gamma_ratio_pred") / col("gamma"))),
            "gamma0_pred_log_rmse": rmse(np.log(col("gamma0_pred") / col("gamma0"))),
            "gamma_log_rmse_median": rmse(np.array([o["log_gamma_pred"][0] for o in rows])
                                          - np.log(col("gamma"))),
            "alpha_log_rmse_median": rmse(np.array([o["log_alpha_pred"][0] for o in rows])
                                          - np.log(col("alpha"))),
            "ratio_log_rmse_median": rmse(np.array([o["log_ratio_pred"][0] for o in rows])
                                          - lr),
            "log_gamma_sd": float(np.std(np.log(col("gamma")), ddof=1)),
            "log_alpha_sd": float(np.std(np.log(col("alpha")), ddof=1)),
            "log_ratio_sd": float(np.std(lr, ddof=1)),
            "log_ratio_median": float(np.median(lr)),
            "log_gamma0_gamma_corr": float(np.corrcoef(np.log(col("gamma0")),
                                                       np.log(col("gamma")))[0, 1]),
            "log_ratio_log_alpha_corr": float(np.corrcoef(lr, np.log(col("alpha")))[0, 1]),
        })
    return out


def thermostats(args, work: Path) -> dict[str, Any]:
    """D_CG(0) of one set under NVE, Nose-Hoover (5 ps) and Langevin (0.5 ps); DPD."""
    preset = get_cg_preset("reference")
    s = reference_sets(1)[0]
    target, settings, pot = set_up(s, preset)
    out: dict[str, Any] = {"param_id": s["param_id"], "runs": []}
    for name, kw, nh in (("NVE (Nose-Hoover damping 1e6 ps)", {}, 1e6),
                         ("Nose-Hoover 5 ps (the production)", {}, None),
                         ("Langevin 0.5 ps (the IBI stage's)",
                          {"thermostat": "langevin", "friction_per_ps": 2.0}, None)):
        for seed in (4242, 4243, 4244):
            d = work / "thermostats" / f"{name.split()[0]}-{seed}"
            prep = prepare_production(d, pot, target, settings, preset, seed=seed, **kw)
            lset = prep.lammps_settings
            if nh is not None:
                lset = dataclasses.replace(lset, nose_hoover_damp_ps=nh)
                lammps.write_input(prep.input_file, lset)
            run_lammps(prep.workdir, prep.input_file.name, settings=lset)
            p = finish_production(prep.workdir)
            out["runs"].append({"thermostat": name, "seed": seed, "d": p.diffusion.d_nm2_ps,
                                "d_err": p.diffusion.d_err_nm2_ps, "T": p.temperature_k,
                                "P": p.pressure_bar})
            print(out["runs"][-1], flush=True)
    if args.dpd_lmp:
        os.environ["CGFLOW_LMP"] = args.dpd_lmp
        lammps._lammps_help.cache_clear()
        try:
            ref = frictionless(work / "dpd" / "production", pot, target, settings, preset)
            res = {}
            for th in ("dpd", "langevin"):
                fs = FrictionSettings(enabled=True, thermostat=th, trial_ps=args.trial_ps,
                                      max_trials=args.max_trials)
                o = fstage.run_friction(work / th, pot, target, settings, preset, fs, ref,
                                        d_aa_nm2_ps=s["d_aa"], d_aa_err_nm2_ps=s["d_aa_err"])
                res[th] = {"decision": o.decision.reason, "trials": [
                    {k: t.get(k) for k in ("friction_per_ps", "dpd_gamma_g_mol_ps", "d_nm2_ps",
                                           "d_err_nm2_ps", "pressure_bar", "structure_check",
                                           "wall_s")} for t in o.trials]}
                print(th, res[th]["decision"], flush=True)
            out["dpd"] = {"lmp": args.dpd_lmp, "version": lammps.lammps_version(),
                          "reference_d": ref.d_nm2_ps, "d_aa": s["d_aa"], **res}
        finally:
            os.environ.pop("CGFLOW_LMP", None)
            lammps._lammps_help.cache_clear()
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:+.0f} %"


def report(result: dict[str, Any]) -> str:
    L = ["# Friction-matched CG dynamics on the reference sets", "",
         f"Sets of `{result.get('data', 'data/reference')}`. "
         + "".join(f"Command ({stage}): `.venv/bin/python {c.strip()}`. "
                   for stage, c in result.get("commands", {}).items())
         + f"Last run {result['date']} on {result['machine']['cpu']} "
         f"({result['machine']['nproc']} cores), load before/after {result['load_before']} / "
         f"{result['load_after']}; "
         f"wall time {result['seconds'] / 60:.1f} min.", ""]
    cal = result.get("calibration")
    if cal:
        rows = cal["rows"]
        conv = [r for r in rows if r["status"] == "converged"]
        within = [r for r in conv if r["d_cal"] is not None
                  and abs(r["d_cal"] / r["d_aa"] - 1) <= 0.1]
        few = [r for r in conv if r["n_trials"] <= 3]
        rdf_ok = [r for r in conv if (r["check"] or {}).get("rdf_passed")]
        p_ok = [r for r in conv if (r["check"] or {}).get("pressure_passed")]
        d0 = np.array([r["d_cg0"] / r["d_cg0_stored"] for r in rows])
        slope = []
        for r in conv:
            if r["gamma"] and r["gamma"] > 0:
                add = (1 / r["d_aa"] - 1 / r["d_cg0"]) / r["gamma"]  # d(1/D)/d(gamma), measured
                slope.append(add * (0.0083144626 * T / 114.23))
        L += [
            "## Calibration (Langevin, `reference` CG preset, 343 beads, "
            f"trials of {cal['trial_ps'] or 200} ps, at most {cal['max_trials']})", "",
            f"{len(rows)} sets, {len(conv)} converged ({len(within)} within 10 % of D_AA, "
            f"the others within the combined error), {len(few)} of the converged in at most "
            f"three trials; mean trials {np.mean([r['n_trials'] for r in conv]):.2f}. RDF of the "
            f"calibrated run within {rows[0]['check']['sigma'] if rows and rows[0]['check'] else 2}"
            f" x its noise of the frictionless run's: {len(rdf_ok)} of {len(conv)}; pressure: "
            f"{len(p_ok)} of {len(conv)}. D_CG(0) rerun / stored: median "
            f"{np.median(d0):.3f} (range {d0.min():.2f}-{d0.max():.2f}). Wall time "
            f"{sum(r['wall_s'] for r in rows) / 60:.1f} min (sum over the sets, also when "
            "resumed).", "",
            "The friction slows diffusion several times more than frictions add: the measured "
            "(1/D_AA - 1/D_CG(0)) / gamma, in units of m / kT, is "
            f"{np.median(slope):.1f} (median; {np.min(slope):.1f}-{np.max(slope):.1f}), so the "
            "first estimate gamma_0 overshoots by that factor and the secant steps correct it.",
            "",
            "| set | D_AA | D_CG(0) | gamma_0 (1/ps) | gamma (1/ps) | trials "
            "| D_CG(gamma)/D_AA - 1 | RDF dev / noise | dP / noise (bar) | status |",
            "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            c = r["check"] or {}
            rn = (f"{c['rdf_deviation']:.4f} / {c['rdf_noise']:.4f}"
                  if c.get("rdf_noise") else "-")
            pn = (f"{c['pressure_deviation_bar']:+.1f} / {c['pressure_noise_bar']:.1f}"
                  if c.get("pressure_noise_bar") else "-")
            g = f"{r['gamma']:.3g} +- {r['gamma_err']:.2g}" if r["gamma"] and r["gamma_err"] \
                else ("0" if r["gamma"] == 0 else "-")
            L.append(f"| {r['param_id']} | {r['d_aa']:.3g} | {r['d_cg0']:.3g} | "
                     f"{(r['first_estimate'] or 0):.3g} | {g} | {r['n_trials']} | "
                     f"{_pct(r['d_cal'] / r['d_aa'] - 1 if r['d_cal'] else None)} | {rn} | {pn} | "
                     f"{r['status']} |")
        L.append("")
    cv = result.get("cv")
    if cv and cv.get("rows"):
        rows = cv["rows"]
        def frac(key, lim=0.2):
            return sum(abs(o[key]) <= lim for o in rows) / len(rows)
        L += ["## Routes to the all-atom mobility, same sets (5-fold CV, held-out sets "
              "simulated)", "",
              f"{len(rows)} sets; friction model: the alpha model's GP on gamma; log(gamma_pred / "
              f"gamma) RMSE {cv['gamma_log_rmse']:.2f}. Wall time {cv['seconds'] / 60:.1f} min.",
              ""]
        if "alpha_log_rmse" in cv:
            L += [
                "Out-of-fold RMSE of the log (predicted mean; in brackets the GP's mean of the "
                f"log) against the spread (sd) of the log over the sets: gamma "
                f"{cv['gamma_log_rmse']:.2f} ({cv['gamma_log_rmse_median']:.2f}) against "
                f"{cv['log_gamma_sd']:.2f}; alpha {cv['alpha_log_rmse']:.2f} "
                f"({cv['alpha_log_rmse_median']:.2f}) against {cv['log_alpha_sd']:.2f}; "
                f"gamma_cal / gamma_0 {cv['ratio_log_rmse']:.2f} "
                f"({cv['ratio_log_rmse_median']:.2f}) against {cv['log_ratio_sd']:.2f}. "
                "gamma_0 = (kT/m)(1/D_AA - 1/D_CG(0)) against the calibrated gamma: "
                f"corr(log gamma_0, log gamma) {cv['log_gamma0_gamma_corr']:.3f}, "
                f"gamma_cal / gamma_0 median {math.exp(cv['log_ratio_median']):.3f} "
                f"(sd of its log {cv['log_ratio_sd']:.2f}; corr with log alpha "
                f"{cv['log_ratio_log_alpha_corr']:+.2f}). Route \"gamma_0 x ratio\": gamma_0 of "
                "the predicted D_AA = D_CG(0) / alpha_pred times the predicted gamma_cal / "
                f"gamma_0 (log RMSE of gamma_0 {cv['gamma0_pred_log_rmse']:.2f}, of its gamma "
                f"{cv['gamma_ratio_log_rmse']:.2f}).", ""]
        L += [
              "| route | D / D_AA - 1 within 20 % | median abs error |",
              "|---|---|---|"]
        for key, name in (("err_frictionless", "frictionless potential (no rescaling)"),
                          ("err_rescaled", "potential, time rescaled by the predicted alpha"),
                          ("err_friction_pred", "potential + predicted friction (simulated)"),
                          ("err_ratio_pred", "potential + predicted friction, gamma_0 x ratio "
                                             "(simulated)"),
                          ("err_calibrated", "potential + calibrated friction (simulated)")):
            if key not in rows[0]:
                continue
            med = float(np.median([abs(o[key]) for o in rows]))
            L.append(f"| {name} | {100 * frac(key):.0f} % of sets | {100 * med:.0f} % |")
        L += ["", "| set | fold | alpha | alpha predicted | gamma | gamma predicted | "
              "gamma_0 x ratio | D error, predicted friction | D error, gamma_0 x ratio | "
              "D error, alpha-rescaled |", "|---|---|---|---|---|---|---|---|---|---|"]
        for o in rows:
            L.append(f"| {o['param_id']} | {o['fold']} | {o.get('alpha', math.nan):.3g} | "
                     f"{o.get('alpha_pred', math.nan):.3g} | {o['gamma']:.3g} | "
                     f"{o['gamma_pred']:.3g} +- {o['gamma_pred_std']:.2g} | "
                     f"{o.get('gamma_ratio_pred', math.nan):.3g} | "
                     f"{_pct(o['err_friction_pred'])} | {_pct(o.get('err_ratio_pred'))} | "
                     f"{_pct(o['err_rescaled'])} |")
        L.append("")
    th = result.get("thermostats")
    if th:
        L += ["## Which thermostat gives D_CG(0)", "", f"Set {th['param_id']}, 3 seeds each:", "",
              "| thermostat | D (nm^2/ps) | T (K) |", "|---|---|---|"]
        for name in dict.fromkeys(r["thermostat"] for r in th["runs"]):
            ds = [r["d"] for r in th["runs"] if r["thermostat"] == name]
            ts = [r["T"] for r in th["runs"] if r["thermostat"] == name]
            L.append(f"| {name} | {np.mean(ds):.4g} +- {np.std(ds, ddof=1) / np.sqrt(len(ds)):.2g}"
                     f" | {np.mean(ts):.1f} |")
        if "dpd" in th:
            dp = th["dpd"]
            L += ["", f"DPD (LAMMPS {dp['version']}, {dp['lmp']}) against Langevin on the same "
                  f"set (D_AA {dp['d_aa']:.4g}, D_CG(0) {dp['reference_d']:.4g}):", "",
                  "| thermostat | trial | gamma (1/ps) | DPD pair gamma (g/mol/ps) | D | RDF ok |",
                  "|---|---|---|---|---|---|"]
            for name in ("langevin", "dpd"):
                for k, t in enumerate(dp[name]["trials"], 1):
                    pg = t.get("dpd_gamma_g_mol_ps")
                    L.append(f"| {name} | {k} | {t['friction_per_ps']:.3g} | "
                             f"{'-' if pg is None else f'{pg:.3g}'} | {t['d_nm2_ps']:.4g} | "
                             f"{t['structure_check']['rdf_passed']} |")
                L.append(f"| {name} | | | | {dp[name]['decision']} | |")
        L.append("")
    return "\n".join(L)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["all", "calibrate", "thermostats", "report"],
                        default="all")
    parser.add_argument("--max-sets", type=int, default=None)
    parser.add_argument("--trial-ps", type=float, default=100.0)
    parser.add_argument("--max-trials", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dpd-lmp", help="a LAMMPS executable with DPD-BASIC")
    parser.add_argument("--work", default="/tmp/cgflow-friction-benchmark")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the per-set results already in --work (calibration.json of "
                             "each set, d.json of each predicted-friction run)")
    parser.add_argument("--data", type=Path, nargs="+", default=[DATA],
                        help="export folders of the sets (several are merged)")
    parser.add_argument("--reuse-calibrations", nargs="*", default=[], metavar="JSON",
                        help="results files of earlier runs whose calibrations (same "
                             "--trial-ps and --max-trials) are taken instead of run again")
    parser.add_argument("--name", default="friction", help="file name of the results")
    args = parser.parse_args()
    FOLDERS[:] = args.data
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{args.name}.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    if args.stage != "report":
        work = Path(args.work)
        t0 = time.perf_counter()
        result.update({"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                       "data": data_label(args.data, ROOT),
                       "load_before": load_average(),
                       "machine": {"cpu": cpu_model(), "nproc": os.cpu_count(),
                                   "python": platform.python_version(),
                                   "lammps": lammps.lammps_version()}})
        result.setdefault("commands", {})[args.stage] = ("benchmarks/friction.py "
                                                         + " ".join(sys.argv[1:]))
        if args.stage in ("all", "calibrate"):
            result["calibration"] = calibrate(args, work)
            result["cv"] = cross_validate(args, result["calibration"], work)
        if args.stage in ("all", "thermostats"):
            result["thermostats"] = thermostats(args, work)
        result["load_after"] = load_average()
        result["seconds"] = time.perf_counter() - t0
        path.write_text(json.dumps(result, indent=1, default=float) + "\n")
    path.with_suffix(".md").write_text(report(result) + "\n")
    if result.get("cv"):
        import figures

        figures.draw("friction", path)
    print(report(result))


if __name__ == "__main__":
    main()
