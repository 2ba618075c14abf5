"""Benchmark: cgflow's IBI against VOTCA's ``csg_inverse`` on one larger, cleaner all-atom target.

The all-atom comparison of ``votca_ibi.py --stage aa`` runs on the targets of the
committed dataset (64 molecules, 50 ps of production each). This one makes its own
target with cgflow's all-atom stage (:mod:`cgflow.stages.aa`: ``build``,
``equilibrate``, ``produce``, ``analyse``, the functions a campaign runs): the OPLS-AA
reference parameters (:data:`cgflow.params.OPLSAA_REFERENCE`), the default molecule
(2,3,4-trimethylpentane), 298.15 K and 1 bar, the ``demo`` all-atom preset with 216
molecules and 200 ps of production (:data:`LARGE_AA`). Its target is
what a campaign's CG stage reads (:func:`cgflow.stages.cg.target_from_aa_run`: the
bead RDF, density, pressure and its error, the molecule's bead mass).

On that target, with the CG system and per-iteration run length of the all-atom
comparison (the ``reference`` CG preset: 343 beads, 10 + 50 ps, 1.2 nm cutoff) and its
criterion (D <= 0.03 and |dP| <= max(50 bar, the AA error), held for two iterations):

* cgflow's default IBI through the campaign's own loop
  (``ibi_aa_targets.run_variant("default", ..., hold=True)``: :func:`cgflow.stages.cg.make_settings`
  on the reference campaign's ``ibi`` section, :func:`cgflow.stages.cg.run_ibi` with its
  monitor), on several seeds;
* VOTCA ``csg_inverse`` with the wjk pressure correction (scale 1.0) and with the simple
  one (``votca_ibi.run_votca_aa``, the driver of the all-atom comparison), at most
  :data:`VOTCA_MAX_ITERATIONS` steps.

Stages (each writes its part as soon as it finishes; a finished part is not run again)::

    nice -n 19 .venv/bin/python benchmarks/ibi_vs_votca_large.py --stage target [--threads 1]
    nice -n 19 .venv/bin/python benchmarks/ibi_vs_votca_large.py --stage cgflow
    nice -n 19 .venv/bin/python benchmarks/ibi_vs_votca_large.py --stage votca --pressures wjk
    nice -n 19 .venv/bin/python benchmarks/ibi_vs_votca_large.py --stage votca --pressures simple
    .venv/bin/python benchmarks/ibi_vs_votca_large.py --stage report

GROMACS threads: the preset's 2, or ``--threads``. The committed target was run with
one: beside other work on the 2-core machine, 2 OpenMP threads ran NVT at 42 steps/s and
1 thread at 140 steps/s.

``target`` writes ``target.npz`` in ``--workdir`` and its copy
``results/ibi_vs_votca_large_target.npz`` (later stages read the copy, so they run
without GROMACS); ``report`` writes ``results/ibi_vs_votca_large.{json,md,png}``.

Approximations: one all-atom run (its RDF noise is part of the target); VOTCA uses one
seed per run, cgflow's median is over its seeds; the machine is shared, so wall times
carry the load recorded with them (CPU times are given beside them).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ibi_aa_targets as aa_targets  # noqa: E402
import votca_ibi  # noqa: E402
from _common import cpu_model, load_average  # noqa: E402

from cgflow.ibi import iteration as ibi_it  # noqa: E402
from cgflow.ibi.potential import resample_rdf  # noqa: E402
from cgflow.ibi.settings import IBISettings, IBITarget  # noqa: E402
from cgflow.molecule.registry import resolve_molecule  # noqa: E402
from cgflow.params import OPLSAA_REFERENCE  # noqa: E402
from cgflow.presets import AAPreset, get_aa_preset, get_cg_preset  # noqa: E402
from cgflow.stages import aa  # noqa: E402
from cgflow.stages import cg as cg_stage  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "ibi_vs_votca_large"
TARGET_COPY = RESULTS / "ibi_vs_votca_large_target.npz"
#: The all-atom preset of the target: ``demo`` with 216 molecules and 200 ps of production.
LARGE_AA = AAPreset(**get_aa_preset("demo").model_dump()
                    | {"name": "large", "n_molecules": 216, "production_ps": 200.0,
                       "maxh": 4.0})
#: The CG preset of every run (the all-atom comparison's).
CG_PRESET = votca_ibi.AA_PRESET
VOTCA_MAX_ITERATIONS = 30
CGFLOW_SEEDS = (1, 2, 3, 4, 5)


# ---------------------------------------------------------------- target


def make_large_target(workdir: Path, threads: int) -> dict:
    """The all-atom stage on the OPLS-AA reference with :data:`LARGE_AA`; the target
    (AA RDF, and on the IBI grid of :data:`CG_PRESET`), density, pressure, D_AA into
    ``workdir/target.npz`` and its copy :data:`TARGET_COPY`."""
    run_dir = workdir / "aa"
    shutil.rmtree(run_dir, ignore_errors=True)
    mol = resolve_molecule(None)
    preset = LARGE_AA.model_copy(update={"threads": threads})
    load0, t0 = load_average(), time.time()
    reports = aa.build(run_dir, OPLSAA_REFERENCE, preset, molecule=mol)
    reports += aa.equilibrate(run_dir, OPLSAA_REFERENCE, preset)
    reports += aa.produce(run_dir, OPLSAA_REFERENCE, preset)
    res = aa.analyse(run_dir, preset)
    wall = time.time() - t0
    target = cg_stage.make_target(rdf_r_nm=res.rdf.r_nm, rdf_g=res.rdf.g,
                                  density_kg_m3=res.density_kg_m3,
                                  pressure_bar=res.pressure_bar,
                                  pressure_err_bar=res.pressure_err_bar or 0.0,
                                  temperature_k=LARGE_AA.temperature_k)
    settings = cg_stage.make_settings(IBISettings(**aa_targets.BASE), target,
                                      get_cg_preset(CG_PRESET))
    grid = ibi_it.ibi_grid(settings, get_cg_preset(CG_PRESET))
    d = res.diffusion
    info = {
        "preset": preset.model_dump(), "params": "OPLSAA_REFERENCE",
        "molecule_smiles": mol.smiles, "mass_g_mol": mol.bead_mass_g_mol,
        "n_molecules": res.n_molecules, "production_ps": res.production_ps,
        "density_kg_m3": res.density_kg_m3, "density_err_kg_m3": res.density_err_kg_m3,
        "pressure_bar": res.pressure_bar, "pressure_err_bar": res.pressure_err_bar,
        "temperature_k": res.temperature_k, "box_length_nm": res.box_length_nm,
        "rdf_frames": res.rdf.n_frames,
        "d_aa_nm2_ps": d.d_nm2_ps if d else None, "d_aa_err_nm2_ps": d.d_err_nm2_ps if d else None,
        "wall_s": round(wall, 1), "stage_wall_s": {r.stage: round(r.wall_s, 1) for r in reports},
        "load_before": load0, "load_after": load_average(), "cpu": cpu_model(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    arrays = {"r": np.asarray(res.rdf.r_nm), "g": np.asarray(res.rdf.g),
              "r_ibi": grid, "g_ibi": resample_rdf(target.r_nm, target.g, grid)}
    for path in (workdir / "target.npz", TARGET_COPY):
        np.savez_compressed(path, **{k: np.round(v, 5) for k, v in arrays.items()},
                            info=json.dumps(info))
    print(json.dumps(info, indent=1), flush=True)
    return info


def read_large_target() -> tuple[IBITarget, dict, dict]:
    """The target of :data:`TARGET_COPY` as the campaign's CG stage builds it, its
    information and arrays."""
    d = np.load(TARGET_COPY)
    info = json.loads(str(d["info"]))
    target = IBITarget(r_nm=d["r"], g=d["g"], density_kg_m3=info["density_kg_m3"],
                       pressure_bar=info["pressure_bar"],
                       pressure_err_bar=info["pressure_err_bar"] or 0.0,
                       temperature_k=LARGE_AA.temperature_k, mass_g_mol=info["mass_g_mol"],
                       molecule_smiles=info["molecule_smiles"])
    return target, info, {k: d[k] for k in d.files if k != "info"}


# ---------------------------------------------------------------- runs


def part_path(name: str) -> Path:
    """The result file of one run (``cgflow``, ``votca_wjk``, ``votca_simple``)."""
    return OUT.with_name(f"{OUT.name}_{name}.json")


def run_cgflow_seeds(workdir: Path, seeds: tuple[int, ...]) -> dict:
    """cgflow's default on the target, once per seed (the campaign's loop, the
    held-for-two rerun included); the part file is rewritten after every seed and a seed
    already in it is skipped."""
    target, _, _ = read_large_target()
    path = part_path("cgflow")
    d = json.loads(path.read_text()) if path.exists() else {"runs": []}
    settings = cg_stage.make_settings(IBISettings(**aa_targets.BASE), target,
                                      get_cg_preset(CG_PRESET))
    d.update({"preset": CG_PRESET, "base": aa_targets.BASE, "cpu": cpu_model(),
              "initial_guess": settings.initial_guess,
              "inverse_model": settings.inverse_model})
    for seed in seeds:
        if any(r["seed"] == seed for r in d["runs"]):
            continue
        r = aa_targets.run_variant("default", "large", target, workdir, seed, hold=True)
        r["seed"] = seed
        r["inverse_model"] = settings.inverse_model
        print(f"cgflow seed {seed}: {r['iterations']} it, converged {r['converged']}, "
              f"held {r.get('held')}, D {r['D']}, dP {r['dP_bar']}, wall/it "
              f"{r['wall_per_iteration_s']} s, cpu/it {r['cpu_per_iteration_s']} s", flush=True)
        d["runs"].append(r)
        d["date_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        votca_ibi.write_json(path, d)
    return d


def run_votca(workdir: Path, pressure: str, max_iter: int) -> dict:
    """VOTCA ``csg_inverse`` with the ``pressure`` correction on the target
    (:func:`votca_ibi.run_votca_aa`), written to its part file; skipped if it exists."""
    path = part_path(f"votca_{pressure}")
    if path.exists():
        return json.loads(path.read_text())
    target, _, _ = read_large_target()
    r = votca_ibi.run_votca_aa(workdir / f"votca_{pressure}", "large", target, pressure,
                               max_iter)
    r["load_after"] = load_average()
    print(f"votca {pressure}: {r['iterations']} it, converged {r['converged']}, wall/it "
          f"{r['wall_per_iteration_s']} s, cpu/it {r['cpu_per_iteration_s']} s", flush=True)
    d = {"votca_version": votca_ibi.votca_version(), "preset": CG_PRESET,
         "base": aa_targets.BASE, "cpu": cpu_model(), "wjk_scale": votca_ibi.VOTCA_WJK_SCALE,
         "simple": {"max_A_kT": votca_ibi.VOTCA_SIMPLE_MAX_A,
                    "scale_per_bar": votca_ibi.VOTCA_SIMPLE_SCALE},
         "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "run": r}
    votca_ibi.write_json(path, d)
    return d


# ---------------------------------------------------------------- report


def _median(xs: list[float]) -> float | None:
    return float(np.median(xs)) if xs else None


def _first_met(r: dict) -> int | None:
    """The first iteration (1-based) that met the criterion once."""
    return next((k + 1 for k, (d, p) in enumerate(zip(r["D"], r["dP_bar"], strict=True))
                 if d <= r["rdf_tolerance"] and abs(p) <= r["pressure_tolerance_bar"]), None)


def report() -> dict:
    """The parts that exist, the goals judged, written to ``OUT.{json,md,png}``."""
    _, info, arrays = read_large_target()
    s: dict = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
               "cpu": cpu_model(), "target": info, "cg_preset": CG_PRESET,
               "cg_preset_settings": get_cg_preset(CG_PRESET).model_dump(),
               "base": aa_targets.BASE, "votca_max_iterations": VOTCA_MAX_ITERATIONS,
               "target_rdf": {"r_nm": arrays["r"].tolist(), "g": arrays["g"].tolist()},
               "methods": {}}
    cg_path = part_path("cgflow")
    if cg_path.exists():
        cg = json.loads(cg_path.read_text())
        runs = cg["runs"]
        for r in runs:
            r["first_met"] = _first_met(r)
            r["passed"] = bool(r["converged"] and r.get("held"))
        s["methods"]["cgflow_default"] = {
            "label": "cgflow default", "initial_guess": cg["initial_guess"],
            "inverse_model": cg.get("inverse_model"), "seeds": [r["seed"] for r in runs],
            "iterations": [r["iterations"] for r in runs],
            "held": [r.get("held") for r in runs],
            "n_runs": len(runs), "n_passed": sum(r["passed"] for r in runs),
            "median_iterations": _median([r["iterations"] for r in runs]),
            # a run not held on the rerun needs one more iteration at least
            "median_iterations_not_held_plus_one": _median(
                [r["iterations"] + (0 if r["passed"] else 1) for r in runs]),
            "median_wall_per_iteration_s": _median([r["wall_per_iteration_s"] for r in runs]),
            "median_cpu_per_iteration_s": _median([r["cpu_per_iteration_s"] for r in runs]),
            "load_before": [r["load_before"] for r in runs], "runs": runs}
    for pressure in ("wjk", "simple"):
        path = part_path(f"votca_{pressure}")
        if not path.exists():
            continue
        v = json.loads(path.read_text())
        r = v["run"]
        r["first_met"] = _first_met(r)
        s["methods"][f"votca_{pressure}"] = {
            "label": f"VOTCA {pressure}" + (f" {v['wjk_scale']:.1f}" if pressure == "wjk" else ""),
            "votca_version": v.get("votca_version"), "n_runs": 1,
            "n_passed": int(r["converged"]), "iterations": [r["iterations"]],
            "median_iterations": float(r["iterations"]),
            "median_wall_per_iteration_s": r["wall_per_iteration_s"],
            "median_cpu_per_iteration_s": r["cpu_per_iteration_s"],
            "load_before": [r["load_before"]], "runs": [r]}
    m = s["methods"]
    goals = {}
    vts = [k for k in ("votca_wjk", "votca_simple") if k in m]
    if "cgflow_default" in m and vts:
        best = min(vts, key=lambda k: m[k]["median_iterations"])
        med = m["cgflow_default"]["median_iterations_not_held_plus_one"]
        goals["half_of_votca_best"] = {
            "median_cgflow": med, "votca_best": best,
            "votca_best_iterations": m[best]["median_iterations"],
            "votca_best_converged": bool(m[best]["n_passed"]),
            "met": med <= 0.5 * m[best]["median_iterations"]}
        w = m["cgflow_default"]["median_wall_per_iteration_s"]
        goals["wall_per_iteration"] = {
            "cgflow_s": w, "cgflow_cpu_s": m["cgflow_default"]["median_cpu_per_iteration_s"],
            **{f"{k}_s": m[k]["median_wall_per_iteration_s"] for k in vts},
            **{f"{k}_cpu_s": m[k]["median_cpu_per_iteration_s"] for k in vts},
            "met": all(w <= m[k]["median_wall_per_iteration_s"] for k in vts)}
    s["goals"] = goals
    votca_ibi.write_json(OUT.with_suffix(".json"), s)
    OUT.with_suffix(".md").write_text(markdown(s))
    plot(s, OUT.with_suffix(".png"))
    print(OUT.with_suffix(".md").read_text())
    return s


def markdown(s: dict) -> str:
    """The summary table of :func:`report`."""
    t, p = s["target"], s["cg_preset_settings"]
    b = s["base"]
    lines = [
        "# IBI on a larger all-atom target: cgflow against VOTCA csg_inverse", "",
        f"Date {s['date_utc']} UTC; {s['cpu']}; machine shared (2 cores, other work "
        "running; loads per run in the JSON).", "",
        f"Target (`ibi_vs_votca_large.py --stage target`, {t['date_utc']} UTC): cgflow's "
        f"all-atom stage on the OPLS-AA reference, 2,3,4-trimethylpentane, "
        f"{t['n_molecules']} molecules, {t['preset']['nvt_ps']:g} ps NVT + "
        f"{t['preset']['npt_ps']:g} ps NPT + {t['production_ps']:g} ps NPT production at "
        f"{t['preset']['temperature_k']} K and {t['preset']['pressure_bar']:g} bar "
        f"({t['preset']['threads']} GROMACS thread(s), {t['wall_s'] / 60:.0f} min): "
        f"density {t['density_kg_m3']:.1f} +- {t['density_err_kg_m3']:.1f} kg/m^3, "
        f"pressure {t['pressure_bar']:.1f} +- {t['pressure_err_bar']:.1f} bar, "
        f"T {t['temperature_k']:.2f} K, box {t['box_length_nm']:.3f} nm, "
        f"D_AA {t['d_aa_nm2_ps'] * 1e3:.2f} +- {t['d_aa_err_nm2_ps'] * 1e3:.2f} "
        "x 10^-3 nm^2/ps; RDF of "
        f"{t['rdf_frames']} frames. Committed as `ibi_vs_votca_large_target.npz`.", "",
        f"CG system and run length for all three: the `{s['cg_preset']}` CG preset "
        f"({p['n_beads']} beads, {p['equilibration_ps']:g} + {p['ibi_sampling_ps']:g} ps "
        f"per iteration at {p['dt_fs']:g} fs, cutoff {p['rcut_nm']} nm), the one of the "
        "all-atom comparison (`ibi_vs_votca_aa.md`). Criterion for all: D <= "
        f"{b['rdf_tolerance']} (cgflow's `rdf_deviation` on cgflow's grid) and |dP| <= "
        f"max({b['pressure_tolerance_bar']:g} bar, the AA error), held for two "
        "iterations; iterations count up to the first of the two. cgflow: the reference "
        "campaign's `ibi` section resolved by `make_settings` (at most "
        f"{b['max_iterations']} iterations), `run_ibi` with its monitor, the converged "
        "potential run once more for the second iteration. VOTCA: at most "
        f"{s['votca_max_iterations']} steps, one run per correction.", "",
        "| method | start | runs | held for two | iterations | median | "
        "wall / iteration (s) | CPU / iteration (s) | load before |",
        "|---|---|---|---|---|---|---|---|---|"]
    for mm in s["methods"].values():
        start = mm.get("initial_guess", "BI of g_t (VOTCA's)")
        if mm.get("inverse_model"):
            start += f" (`{Path(mm['inverse_model']).name}`)"
        its = []
        for r in mm["runs"]:
            ok = r.get("passed", r["converged"])
            its.append(f"{r['iterations']}" + ("" if ok else
                       (" (not held)" if r["converged"] else " (not conv.)")))
        median = f"{mm['median_iterations']:g}"
        plus = mm.get("median_iterations_not_held_plus_one")
        if plus is not None and plus != mm["median_iterations"]:
            median += f" ({plus:g} with a run not held counted one longer)"
        lines.append(
            f"| {mm['label']} | {start} | {mm['n_runs']} | {mm['n_passed']} | "
            f"{', '.join(its)} | {median} | "
            f"{mm['median_wall_per_iteration_s']:.1f} | {mm['median_cpu_per_iteration_s']:.1f} "
            f"| {mm['load_before'][0]} |")
    g = s["goals"]
    if g:
        h, w = g["half_of_votca_best"], g["wall_per_iteration"]
        vt = [k for k in ("votca_wjk", "votca_simple") if f"{k}_s" in w]
        lines += [
            "", "## Goals of the issue", "",
            "- Median iterations at most half of VOTCA's best: cgflow "
            f"{h['median_cgflow']:g} (a run not held on the rerun counted one iteration "
            "longer)"
            f", {s['methods'][h['votca_best']]['label']} {h['votca_best_iterations']:g}"
            + ("" if h["votca_best_converged"] else " (not converged: the iterations it ran)")
            + f": **{'met' if h['met'] else 'not met'}**.",
            f"- No more wall time per iteration than VOTCA's: cgflow {w['cgflow_s']:.1f} s"
            f" (CPU {w['cgflow_cpu_s']:.1f} s), "
            + ", ".join(f"{s['methods'][k]['label']} {w[k + '_s']:.1f} s (CPU "
                        f"{w[k + '_cpu_s']:.1f} s)" for k in vt)
            + f": **{'met' if w['met'] else 'not met'}**."]
    for mm in s["methods"].values():
        st = mm["runs"][0].get("steps")
        if st:
            lw, lc, sw = (float(np.mean([x[k] for x in st]))
                          for k in ("lammps_wall_s", "lammps_cpu_s", "step_wall_s"))
            lines += ["", f"{mm['label']}: LAMMPS itself {lw:.1f} s wall and {lc:.1f} s CPU "
                      f"of a step of {sw:.1f} s (the rest: VOTCA's "
                      "scripts, `csg_stat` on the dump), setup (step 0) "
                      f"{mm['runs'][0]['setup_wall_s']} s."]
    lines += ["", "## Per iteration", "",
              "| run | D per iteration | dP per iteration (bar) |", "|---|---|---|"]
    for mm in s["methods"].values():
        for r in mm["runs"]:
            name = mm["label"] + (f", seed {r['seed']}" if "seed" in r else "")
            d, dp = list(r["D"]), list(r["dP_bar"])
            if r.get("hold_D") is not None:
                d.append(r["hold_D"])
                dp.append(r["hold_dP_bar"])
            lines.append(f"| {name} | " + ", ".join(f"{x:.3f}" for x in d) + " | "
                         + ", ".join(f"{x:+.0f}" for x in dp) + " |")
    lines += ["", "cgflow's rows end with the rerun of the converged potential.", "",
              "![potentials, RDFs, D and dP per iteration](ibi_vs_votca_large.png)", ""]
    return "\n".join(lines)


def plot(s: dict, path: Path) -> None:
    """Converged (else last) potentials and RDFs beside g_t; D and dP per iteration."""
    import figures

    plt = figures.plt
    fig, ((a_u, a_g), (a_d, a_p)) = plt.subplots(2, 2, figsize=(11.0, 7.5),
                                                 layout="constrained")
    tr = s["target_rdf"]
    u_min = -3.0
    a_g.plot(tr["r_nm"], tr["g"], "k--", lw=1.4, label="AA target g_t")
    for k, mm in enumerate(s["methods"].values()):
        c = figures.COLOURS[k % len(figures.COLOURS)]
        for j, r in enumerate(mm["runs"]):
            lab = mm["label"] if j == 0 else None
            d = list(r["D"]) + ([r["hold_D"]] if r.get("hold_D") is not None else [])
            dp = list(r["dP_bar"]) + ([r["hold_dP_bar"]] if r.get("hold_D") is not None
                                      else [])
            a_d.plot(range(1, len(d) + 1), d, "o-", color=c, lw=1, ms=3, alpha=0.8,
                     label=lab)
            a_p.plot(range(1, len(dp) + 1), dp, "o-", color=c, lw=1, ms=3, alpha=0.8,
                     label=lab)
        fin = mm["runs"][0].get("final")
        if fin:
            tag = f"{mm['label']}: {mm['runs'][0]['iterations']} it"
            u_min = min(u_min, float(np.min(fin["u_kj_mol"])) - 0.5)
            a_u.plot(fin["potential_r_nm"], fin["u_kj_mol"], color=c, lw=1.2, label=tag)
            a_g.plot(fin["r_nm"], fin["g"], color=c, lw=1.0, label=tag)
    b = s["base"]
    p_tol = max(b["pressure_tolerance_bar"], s["target"]["pressure_err_bar"] or 0.0)
    a_d.axhline(b["rdf_tolerance"], color="grey", ls=":", lw=1)
    a_p.axhspan(-p_tol, p_tol, color="grey", alpha=0.15)
    a_u.set(xlim=(0.3, 1.2), ylim=(u_min, 6.0), xlabel="r (nm)", ylabel="U (kJ/mol)",
            title="potential (converged, else the last; cgflow: first seed)")
    a_g.set(xlim=(0.3, 1.2), xlabel="r (nm)", ylabel="g(r)", title="RDF")
    a_d.set(yscale="log", xlabel="iteration", ylabel="D", title="RDF deviation D")
    a_p.set(xlabel="iteration", ylabel="dP (bar)", title="P_CG - P_AA")
    for a in (a_d, a_p):
        a.xaxis.get_major_locator().set_params(integer=True)
    for a in (a_u, a_g, a_d, a_p):
        a.legend(fontsize=7, frameon=False)
    fig.suptitle(f"IBI on a {s['target']['n_molecules']}-molecule all-atom target: cgflow "
                 f"against VOTCA ({s['date_utc'][:10]})", fontsize=11)
    fig.savefig(path, dpi=figures.DPI)
    plt.close(fig)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", required=True, choices=["target", "cgflow", "votca", "report"])
    ap.add_argument("--pressures", nargs="+", default=["wjk", "simple"],
                    choices=list(votca_ibi.VOTCA_PRESSURE_BLOCKS))
    ap.add_argument("--threads", type=int, default=LARGE_AA.threads,
                    help="--stage target: GROMACS threads (default the preset's 2)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(CGFLOW_SEEDS),
                    help="--stage cgflow: seeds of cgflow's runs")
    ap.add_argument("--max-iterations", type=int, default=VOTCA_MAX_ITERATIONS,
                    help="--stage votca: VOTCA's iterations_max")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cgflow_ibi_large"))
    a = ap.parse_args(argv)
    a.workdir.mkdir(parents=True, exist_ok=True)
    if a.stage == "target":
        make_large_target(a.workdir, a.threads)
    if a.stage == "cgflow":
        run_cgflow_seeds(a.workdir, tuple(a.seeds))
    if a.stage == "votca":
        for pressure in a.pressures:
            run_votca(a.workdir, pressure, a.max_iterations)
    if a.stage == "report":
        report()


if __name__ == "__main__":
    main()
