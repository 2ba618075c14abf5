"""The benchmarks' figures, drawn from their JSON results (matplotlib, Agg).

Every benchmark that writes a table writes its figure beside it, through this module:
its script calls :func:`draw` with its JSON file at the end of a run. The figures of
committed results can be drawn again without running anything::

    .venv/bin/python benchmarks/figures.py            # every known result
    .venv/bin/python benchmarks/figures.py aa_overhead campaign_status

Figures (``<name>.png`` beside ``<name>.json``): ``aa_overhead`` (campaign wall time
split into engine time and overhead parts; ns/day of the three mdrun variants),
``campaign_status`` and ``report`` (wall times of the timed parts), ``ibi_aa_targets``
(and every ``ibi_aa_*`` result of ``ibi_aa_targets.py``: RDF deviation per iteration and
iterations per set, per variant; a combined table gets the figure of the files it
names), ``ibi_methods`` (D and dP per iteration, per update method and seed),
``ibi_vs_votca_aa`` (converged potentials and RDFs of cgflow and VOTCA per all-atom
target),
``campaign_build`` (time and memory against n_sets), ``faults`` (trials survived, lost,
duplicated), ``ml/alpha_models`` (GP against random forest by training-set size) and
``ml/reference_validation`` (the closed-loop validation table of its Markdown file),
``active_learning`` (test error against sets simulated, active against random),
``molecule_densities`` (simulated against experimental density per registry liquid),
``friction`` (predicted against calibrated gamma; D / D_AA per route),
``synthetic_campaign`` (wall per synthetic pair, campaign against direct),
``ml/structure_routes`` (learning curves of the two predicted structure routes in closed
loop).
``votca_ibi``, ``ml/learning_curve`` and ``ml/reference_dataset`` draw their own.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ML_RESULTS = HERE / "ml" / "results"
DPI = 110
COLOURS = ["#1f4e79", "#d95f02", "#7b3294", "#1a9850", "#555555", "#e7298a"]


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _title_date(r: dict[str, Any]) -> str:
    for key in ("date_utc", "date"):
        if r.get(key):
            return str(r[key])[:10]
    m = r.get("machine") or {}
    return str(m.get("date") or m.get("date_utc") or "")[:10]


# --- aa_overhead ---------------------------------------------------------------------------


def aa_overhead(r: dict[str, Any], path: Path) -> Path:
    """Per preset run: the campaign's wall time as engine time plus the overhead parts,
    and the ns/day of the production variants (mean, min-max)."""
    runs = r["runs"]
    fig, axes = plt.subplots(len(runs), 2, figsize=(11.0, 3.8 * len(runs)), squeeze=False,
                             layout="constrained")
    for (key, run), (a1, a2) in zip(runs.items(), axes, strict=True):
        c = run["campaign"]
        parts = c["overhead_parts_s"]
        left = 0.0
        a1.barh([0], [c["engine_wall_s"]], color=COLOURS[0], label="GROMACS (mdrun + analysis)")
        left = c["engine_wall_s"]
        cmap = plt.get_cmap("tab20")
        for k, (name, sec) in enumerate(sorted(parts.items(), key=lambda kv: -kv[1])):
            if sec and sec > 0:
                a1.barh([0], [sec], left=left, color=cmap(k % 20),
                        label=f"{name.removesuffix('_s').replace('_', ' ')} {sec:.1f} s")
                left += sec
        a1.set_yticks([])
        a1.set_xlabel("seconds")
        a1.set_title(f"preset {key}: campaign {c['campaign_wall_s']:.0f} s, overhead "
                     f"{c['overhead_s']:.1f} s ({c['overhead_pct_of_campaign']:.0f} %)",
                     fontsize=10)
        a1.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.25),
                  ncol=3)
        n = run["ns_per_day"]
        names = [v for v in ("cgflow_custodian", "cgflow_flags", "bare") if v in n]
        means = [n[v]["ns_per_day"]["mean"] for v in names]
        lo = [n[v]["ns_per_day"]["mean"] - n[v]["ns_per_day"]["min"] for v in names]
        hi = [n[v]["ns_per_day"]["max"] - n[v]["ns_per_day"]["mean"] for v in names]
        a2.bar(range(len(names)), means, yerr=[lo, hi], capsize=4, color=COLOURS[:len(names)])
        camp = n.get("campaign_production", {}).get("ns_per_day")
        if camp:
            a2.axhline(camp, color="k", lw=0.8, ls="--", label=f"the campaign's run {camp:.1f}")
            a2.legend(fontsize=8, frameon=False)
        a2.set_xticks(range(len(names)), [v.replace("_", " ") for v in names])
        a2.set_ylabel("ns/day")
        a2.set_title(f"production speed, {n['system']['n_molecules']} molecules "
                     f"(mean, min-max of {n[names[0]]['ns_per_day']['n']})", fontsize=10)
    fig.suptitle(f"all-atom workflow overhead ({_title_date(runs[next(iter(runs))]['machine'])})",
                 fontsize=11)
    return _save(fig, path)


# --- campaign_status and report --------------------------------------------------------------


def _timing_bars(ax: Any, rows: list[tuple[str, dict[str, Any]]], colour: str) -> None:
    y = np.arange(len(rows))[::-1]
    means = [s["mean"] for _, s in rows]
    err = [[s["mean"] - s["min"] for _, s in rows], [s["max"] - s["mean"] for _, s in rows]]
    ax.barh(y, means, xerr=err, capsize=3, color=colour)
    ax.set_yticks(y, [name for name, _ in rows], fontsize=8)
    for yy, (_, st) in zip(y, rows, strict=True):
        ax.text(st["max"], yy, f"  {st['mean']:.2f} s", va="center", fontsize=7)
    ax.set_xlim(0, max(st["max"] for _, st in rows) * 1.15)
    ax.set_xlabel("wall time / s (mean, min-max)")


def campaign_status(r: dict[str, Any], path: Path) -> Path:
    """The status call, its queries on their own, and the command against start-up."""
    fn, cli = r["function"], r["cli"]
    rows = [("campaign_status() in process", fn["wall_s"])]
    rows += [(f"query: {k}"[:70], v) for k, v in r["function_parts"].items()]
    rows += [("cgflow campaign status (new process)", cli["status_wall_s"]),
             ("cgflow --help (start-up)", cli["help_wall_s"]),
             ("python -c pass", cli["python_startup_wall_s"])]
    fig, ax = plt.subplots(figsize=(10.0, 0.35 * len(rows) + 1.4), layout="constrained")
    _timing_bars(ax, rows, COLOURS[0])
    m = r["machine"]
    ax.set_title(f"cgflow campaign status, 300 sets ({m['date'][:10]}, load "
                 f"{m['load_before'][0]} on {m['nproc']} cores)", fontsize=10)
    return _save(fig, path)


def report(r: dict[str, Any], path: Path) -> Path:
    """``cgflow report``: reading and drawing, new folder against the same folder, and the
    whole command."""
    t = r["timing"]
    rows = [("read (new folder)", t["cold_read_s"]),
            (f"draw {t['figures_drawn']['cold']} figures (new folder)", t["cold_draw_s"]),
            ("read (same folder)", t["warm_read_s"]),
            (f"draw {t['figures_drawn']['warm']} figures (same folder)", t["warm_draw_s"]),
            ("cgflow report, new process, new folder", t["cli_wall_s"])]
    cpu = [(f"CPU: {name}", t[key]) for key, name in (
        ("cold_cpu_s", "write_report(), new folder"), ("warm_cpu_s", "same folder"),
        ("cli_cpu_s", "the command")) if key in t]
    fig, axes = plt.subplots(1, 2 if cpu else 1, figsize=(13.0 if cpu else 8.0, 3.2),
                             layout="constrained", squeeze=False)
    ax = axes[0, 0]
    _timing_bars(ax, rows, COLOURS[1])
    if cpu:
        ax2 = axes[0, 1]
        _timing_bars(ax2, cpu, COLOURS[0])
        ax2.set_xlabel("CPU time / s (this process, its workers, the command)")
        ax2.set_title("CPU time (steadier on a loaded machine)", fontsize=10)
    m = r["machine"]
    ax.set_title(f"cgflow report, 300 sets ({m['date'][:10]}, load "
                 f"{r['load_before_timing'][0]} on {m['nproc']} cores)", fontsize=10)
    return _save(fig, path)


def campaign_build(r: dict[str, Any], path: Path) -> Path:
    """Wall time and peak memory of ``cgflow campaign build`` against the number of sets."""
    rows = sorted((row for row in r["rows"] if row.get("exit_status") == 0),
                  key=lambda row: row["n_sets"])
    n = [row["n_sets"] for row in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.0, 3.6), layout="constrained")
    a1.loglog(n, [row["wall_s"] for row in rows], "o-", color=COLOURS[0])
    a2.loglog(n, [row["peak_rss_mib"] for row in rows], "s-", color=COLOURS[1])
    for ax, ylabel in ((a1, "wall time / s"), (a2, "peak RSS / MiB")):
        ax.set_xlabel("parameter sets")
        ax.set_ylabel(ylabel)
        ax.set_xticks(n, [str(x) for x in n])
    a1.set_title("cgflow campaign build: time", fontsize=10)
    a2.set_title("cgflow campaign build: memory", fontsize=10)
    m = r.get("machine") or {}
    fig.suptitle(f"campaign build against n_sets ({str(r.get('date', ''))[:10]}, load "
                 f"{(m.get('load_before') or ['?'])[0]} on {m.get('cores', '?')} cores)",
                 fontsize=11)
    return _save(fig, path)


def faults(r: dict[str, Any], path: Path) -> Path:
    """Trials per kind of fault, split into survived, lost and duplicated."""
    kinds = list(r["faults"])
    rows = [r["faults"][k] for k in kinds]
    y = np.arange(len(kinds))[::-1]
    fig, ax = plt.subplots(figsize=(9.0, 0.38 * len(kinds) + 1.5), layout="constrained")
    left = np.zeros(len(kinds))
    for key, colour in (("survived", COLOURS[3]), ("lost", COLOURS[1]),
                        ("duplicated", COLOURS[2])):
        vals = np.array([float(row.get(key) or 0) for row in rows])
        ax.barh(y, vals, left=left, color=colour, label=key)
        left += vals
    for yy, row in zip(y, rows, strict=True):
        ax.text(row["trials"], yy, f"  {row['survived']}/{row['trials']}", va="center",
                fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(left=1)
    ax.set_yticks(y, [k.replace("_", " ") for k in kinds], fontsize=8)
    ax.set_xlabel("trials (log scale)")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_title(f"fault injection ({str(r.get('date', ''))[:10]}, seed {r.get('seed')})",
                 fontsize=10)
    return _save(fig, path)


# --- IBI ---------------------------------------------------------------------------------


def ibi_aa_targets(results: dict[str, Any] | list[dict[str, Any]], path: Path) -> Path:
    """Results of ``ibi_aa_targets.py`` (one or several files): D per iteration (each
    set thin, the median thick) and the iterations each set took, per variant."""
    parts = results if isinstance(results, list) else [results]
    runs = [run for r in parts for run in r["runs"]]
    variants = list(dict.fromkeys(run["variant"] for run in runs))
    sets = list(dict.fromkeys(run["param_id"] for run in runs))
    tol = parts[0]["base"].get("rdf_tolerance")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12.0, 4.8), layout="constrained")
    for k, v in enumerate(variants):
        colour = COLOURS[k % len(COLOURS)]
        curves = [run["D"] for run in runs if run["variant"] == v]
        for c in curves:
            a1.semilogy(range(len(c)), c, color=colour, lw=0.5, alpha=0.35)
        n = max(len(c) for c in curves)
        med = [np.median([c[i] for c in curves if len(c) > i]) for i in range(n)]
        a1.semilogy(range(n), med, color=colour, lw=2.0, label=f"{v}")
    if tol:
        a1.axhline(tol, color="k", lw=0.8, ls="--", label=f"tolerance {tol:g}")
    a1.set_xlabel("IBI iteration")
    a1.set_ylabel("RDF deviation D")
    a1.legend(fontsize=8, frameon=False)
    a1.set_title("RDF deviation per iteration (thin: each set; thick: the median of the "
                 "sets still iterating)", fontsize=9)
    width = 0.8 / len(variants)
    x = np.arange(len(sets))
    for k, v in enumerate(variants):
        by = {run["param_id"]: run for run in runs if run["variant"] == v}
        its = [by[s]["iterations"] if s in by else np.nan for s in sets]
        conv = [bool(by[s]["converged"]) if s in by else False for s in sets]
        bars = a2.bar(x + (k - (len(variants) - 1) / 2) * width, its, width,
                      color=COLOURS[k % len(COLOURS)],
                      label=f"{v}: {sum(conv)}/{len(by)} converged")
        for b, ok in zip(bars, conv, strict=True):
            if not ok:
                b.set_hatch("///")
                b.set_alpha(0.5)
    a2.set_xticks(x, [s[:8] for s in sets], rotation=60, fontsize=7)
    a2.set_ylabel("iterations (hatched: not converged)")
    a2.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22),
              ncol=3)
    a2.set_title("iterations per all-atom target", fontsize=10)
    dates = sorted({_title_date(r) for r in parts})
    fig.suptitle(f"IBI on the all-atom targets of {parts[0].get('data', '?')} "
                 f"({', '.join(dates)})", fontsize=11)
    return _save(fig, path)


def ibi_vs_votca_aa(r: dict[str, Any], path: Path) -> Path:
    """Converged potentials and RDFs of cgflow's default and VOTCA's corrections side by
    side, one row per all-atom target of ``votca_ibi.py --stage aa-report``."""
    curves = r["curves"]
    n = max(1, len(curves))
    fig, axes = plt.subplots(n, 2, figsize=(11.0, 3.2 * n), layout="constrained",
                             squeeze=False)
    for row, (pid, c) in zip(axes, curves.items(), strict=False):
        a_u, a_g = row
        a_g.plot(c["target"]["r_nm"], c["target"]["g"], "k--", lw=1.2, label="AA target")
        u_min = -3.0
        for k, (label, run) in enumerate(c["runs"].items()):
            fin = run["final"]
            u_min = min(u_min, float(np.min(fin["u_kj_mol"])) - 0.5)
            colour = COLOURS[k % len(COLOURS)]
            tag = f"{label}: {run['iterations']} it" + ("" if run["converged"] else
                                                        " (not conv.)")
            a_u.plot(fin["potential_r_nm"], fin["u_kj_mol"], color=colour, lw=1.2, label=tag)
            a_g.plot(fin["r_nm"], fin["g"], color=colour, lw=1.0, label=tag)
        a_u.set(xlim=(0.3, c["target"]["r_nm"][-1]), ylim=(u_min, 6.0), xlabel="r (nm)",
                ylabel="U (kJ/mol)", title=f"{pid}: potential (converged, else the last)")
        a_g.set(xlim=(0.3, c["target"]["r_nm"][-1]), xlabel="r (nm)", ylabel="g(r)",
                title=f"{pid}: RDF (converged, else the last)")
        a_u.legend(fontsize=7, frameon=False)
        a_g.legend(fontsize=7, frameon=False)
    fig.suptitle(f"IBI against VOTCA csg_inverse on all-atom targets ({_title_date(r)})",
                 fontsize=11)
    return _save(fig, path)


def ibi_methods(r: dict[str, Any], path: Path) -> Path:
    """D and |dP| per iteration of each update method and seed on the LJ target."""
    tol = r.get("tolerances") or {}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11.0, 4.0), layout="constrained")
    methods = list(dict.fromkeys(run["method"] for run in r["runs"]))
    for run in r["runs"]:
        colour = COLOURS[methods.index(run["method"]) % len(COLOURS)]
        it = range(len(run["D"]))
        a1.semilogy(it, run["D"], color=colour, lw=1.0, alpha=0.8)
        a2.semilogy(it, np.maximum(np.abs(run["dP_bar"]), 0.1), color=colour, lw=1.0, alpha=0.8)
    for k, m in enumerate(methods):
        its = [run["iterations_to_D_and_P_within_tol"] for run in r["runs"]
               if run["method"] == m]
        a1.plot([], [], color=COLOURS[k % len(COLOURS)], label=f"{m}: criterion met at {its}")
    if tol.get("D"):
        a1.axhline(tol["D"], color="k", lw=0.8, ls="--")
    if tol.get("dP_bar"):
        a2.axhline(tol["dP_bar"], color="k", lw=0.8, ls="--")
    a1.set_xlabel("IBI iteration")
    a1.set_ylabel("RDF deviation D")
    a1.legend(fontsize=7, frameon=False)
    a2.set_xlabel("IBI iteration")
    a2.set_ylabel("|P_CG - P_target| / bar")
    a1.set_title("RDF deviation (each line a seed)", fontsize=10)
    a2.set_title("pressure deviation", fontsize=10)
    fig.suptitle(f"IBI update methods on the LJ target, preset {r.get('preset')} "
                 f"({_title_date(r)})", fontsize=11)
    return _save(fig, path)


# --- ML ----------------------------------------------------------------------------------


def alpha_models(rows: list[dict[str, Any]], path: Path) -> Path:
    """RMSE and 1-sigma coverage of the GP and the random forest by training-set size."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.0, 3.8), layout="constrained")
    keys = sorted({(row["space"], row["model"]) for row in rows})
    for space, model in keys:
        sel = sorted((row for row in rows if (row["space"], row["model"]) == (space, model)),
                     key=lambda row: row["n"])
        n = [row["n"] for row in sel]
        style = dict(color=COLOURS[0] if model == "gp" else COLOURS[1],
                     ls="-" if space == "narrow" else "--", marker="o", ms=4)
        a1.plot(n, [row["rmse"] for row in sel], label=f"{model}, {space}", **style)
        a2.plot(n, [row["coverage_1sigma"] for row in sel], **style)
    a2.axhline(0.683, color="k", lw=0.8, ls=":", label="ideal 0.68")
    a1.set_xlabel("sets (5-fold CV)")
    a1.set_ylabel("RMSE of alpha")
    a1.set_title("acceleration-factor models on synthetic tables", fontsize=10)
    a1.legend(fontsize=8, frameon=False)
    a2.set_xlabel("sets (5-fold CV)")
    a2.set_ylabel("fraction within 1 sigma")
    a2.set_title("coverage of the 1-sigma interval", fontsize=10)
    a2.legend(fontsize=8, frameon=False)
    return _save(fig, path)


def reference_validation(md_text: str, path: Path) -> Path:
    """The closed-loop validation table of ``ml/results/reference_validation.md``."""
    rows = []
    for line in md_text.splitlines():
        m = re.match(r"^([0-9a-f]{16})\s+([\d.]+)\s+([\d.]+) \+- ([\d.]+)\s+([+-]?\d+) %\s+"
                     r"([+-]?\d+) %\s+([\d.]+)\s*$", line)
        if m:
            rows.append([m.group(1), *map(float, m.groups()[1:])])
    if not rows:
        raise ValueError("no validation rows found in the Markdown table")
    labels = [r[0][:8] for r in rows]
    x = np.arange(len(rows))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11.0, 3.9), layout="constrained")
    a1.bar(x - 0.2, [r[1] for r in rows], 0.4, color=COLOURS[0], label="structure route")
    a1.bar(x + 0.2, [r[6] for r in rows], 0.4, color=COLOURS[2], label="dynamics route")
    a1.axhline(0.03, color="k", lw=0.8, ls="--", label="converged IBI (0.03)")
    a1.set_ylabel("RDF deviation D against the AA target")
    a1.legend(fontsize=8, frameon=False)
    a1.set_title("structure of the predicted potentials", fontsize=10)
    a2.axhspan(-35, 35, color="k", alpha=0.07, label="+-35 %")
    a2.axhline(0, color="k", lw=0.6)
    a2.plot(x, [r[4] for r in rows], "o", color=COLOURS[0], label="D_CG / alpha_pred vs D_AA")
    a2.plot(x, [r[5] for r in rows], "s", color=COLOURS[2], label="dynamics route D_CG vs D_AA")
    a2.set_yscale("symlog", linthresh=100, linscale=2)
    ticks = [-50, 0, 50, 100, 300, 1000]
    a2.set_yticks(ticks, [f"{t:+d}" if t else "0" for t in ticks])
    a2.set_ylim(-75, 1300)
    a2.set_ylabel("relative error / %")
    a2.legend(fontsize=8, frameon=False)
    a2.set_title("mobility against the AA D", fontsize=10)
    for ax in (a1, a2):
        ax.set_xticks(x, labels, rotation=60, fontsize=7)
    fig.suptitle("closed-loop validation of the reference models on 10 unseen sets",
                 fontsize=11)
    return _save(fig, path)


def active_learning(r: dict[str, Any], path: Path) -> Path:
    """Test error against sets simulated, active strategies against random: median and
    interquartile range over the repeats, one panel per problem."""
    probs = r["problems"]
    fig, axes = plt.subplots(1, len(probs), figsize=(4.2 * len(probs), 3.8),
                             layout="constrained", squeeze=False)
    for ax, (name, p) in zip(axes[0], probs.items(), strict=True):
        n = np.array(p["sizes"])
        for k, (strategy, s) in enumerate(p["summary"].items()):
            c = COLOURS[k % len(COLOURS)]
            ax.plot(n, s["median"], "o-", ms=3.5, color=c, label=strategy)
            ax.fill_between(n, s["q1"], s["q3"], color=c, alpha=0.18, lw=0)
        ax.set_yscale("log")
        ax.set_xlabel("sets simulated (pool emulator)")
        ax.set_ylabel(p["error"] if len(p["error"]) < 30 else
                      ("test RMSE of log(alpha)" if p["route"] == "alpha" else
                       "test RMS error of g_t"))
        ax.set_title(f"{name} (pool {p['n_pool']}, test {p['n_test']}, "
                     f"{p.get('repeats_done', r['repeats'])} repeats)", fontsize=9)
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle("active against random sampling, median and IQR over the repeats "
                 f"({_title_date(r)})", fontsize=11)
    return _save(fig, path)


def molecule_densities(r: dict[str, Any], path: Path) -> Path:
    """Simulated (OPLS-AA reference, block error) against experimental density per
    registry liquid, with the 5 % band around experiment; uncertain values hatched."""
    rows = r["molecules"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.5, 1.0 * len(rows) + 4.0), 4.2),
                           layout="constrained")
    w = 0.38
    ax.bar(x - w / 2, [m["density_kg_m3"] for m in rows], w,
           yerr=[m["density_err_kg_m3"] for m in rows], capsize=3, color=COLOURS[0],
           label="simulated (OPLS-AA, demo)")
    bars = ax.bar(x + w / 2, [m["experimental_kg_m3"] for m in rows], w, color=COLOURS[1],
                  label="experimental (registry)")
    for bar, m in zip(bars, rows, strict=True):
        if not m["certain"]:
            bar.set_hatch("//")
            bar.set_edgecolor("white")
    for i, m in enumerate(rows):
        exp = m["experimental_kg_m3"]
        ax.plot([i - w, i + w], [exp * (1 - r["goal_rel"])] * 2, color="k", lw=0.7, ls="--")
        ax.plot([i - w, i + w], [exp * (1 + r["goal_rel"])] * 2, color="k", lw=0.7, ls="--",
                label="experimental +- 5 %" if i == 0 else None)
        ax.text(i, max(exp, m["density_kg_m3"]) * 1.055,
                f"{m['deviation_rel'] * 100:+.1f} %", ha="center", fontsize=8)
    lo = min(min(m["density_kg_m3"], m["experimental_kg_m3"]) for m in rows)
    hi = max(max(m["density_kg_m3"], m["experimental_kg_m3"]) for m in rows)
    ax.set_ylim(lo * 0.85, hi * 1.12)
    ax.set_xticks(x, [m["molecule"] for m in rows], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("liquid density (kg/m$^3$)")
    ax.set_title(f"OPLS-AA reference densities, {len(rows)} of {r['n_registry']} registry "
                 f"liquids ({_title_date(r)})\nhatched: experimental value not certain; "
                 "label: deviation from experiment", fontsize=9)
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True)
            if not lab.startswith("experimental (")]
    keep.append((Patch(color=COLOURS[1]), "experimental (registry)"))
    # beside the bars, not over them (a patch of the bars' colour would vanish on them)
    ax.legend(*zip(*keep, strict=True), fontsize=8, frameon=False, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def friction(r: dict[str, Any], path: Path) -> Path:
    """Out-of-fold predicted against calibrated friction gamma (and the first estimate
    gamma_0), and D / D_AA of each route to the all-atom mobility on the same sets."""
    rows = (r.get("cv") or {}).get("rows") or []
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 4.2), layout="constrained")
    g = np.array([o["gamma"] for o in rows])
    a1.errorbar(g, [o["gamma_pred"] for o in rows], yerr=[o["gamma_pred_std"] for o in rows],
                fmt="o", ms=4, color=COLOURS[0], elinewidth=0.7, label="GP on gamma (CV)")
    if rows and "gamma_ratio_pred" in rows[0]:
        a1.plot(g, [o["gamma_ratio_pred"] for o in rows], "s", ms=4, mfc="none",
                color=COLOURS[1], label="gamma_0(alpha_pred) x predicted ratio (CV)")
        a1.plot(g, [o["gamma0"] for o in rows], "^", ms=3.5, color=COLOURS[4], alpha=0.6,
                label="gamma_0 from D_AA (not a prediction)")
    if rows:
        lim = np.array([min(g.min(), *(o["gamma_pred"] for o in rows)) / 1.5,
                        max(g.max(), *(o.get("gamma0", 0) for o in rows)) * 1.5])
        a1.plot(lim, lim, "k-", lw=0.8)
        a1.fill_between(lim, lim / 1.25, lim * 1.25, color="k", alpha=0.08, lw=0)
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("calibrated gamma (1/ps)")
    a1.set_ylabel("predicted gamma (1/ps); band: factor 1.25")
    a1.set_title(f"friction, {len(rows)} sets, 5-fold CV", fontsize=10)
    a1.legend(fontsize=7.5, frameon=False)
    routes = [("err_frictionless", "frictionless"), ("err_rescaled", "alpha-\nrescaled"),
              ("err_friction_pred", "predicted\nfriction"),
              ("err_ratio_pred", "gamma_0 x\nratio"), ("err_calibrated", "calibrated\nfriction")]
    routes = [(k, n) for k, n in routes if rows and k in rows[0]]
    rng = np.random.default_rng(0)
    for x, (key, _name) in enumerate(routes):
        y = 1 + np.array([o[key] for o in rows])
        inside = np.abs(y - 1) <= 0.2
        a2.plot(x + rng.uniform(-0.18, 0.18, y.size), y, "o", ms=3.5, color=COLOURS[x],
                alpha=0.75)
        a2.text(x, 0.02, f"{100 * inside.mean():.0f} %\nwithin 20 %", ha="center",
                va="bottom", fontsize=7.5, transform=a2.get_xaxis_transform())
    a2.axhspan(0.8, 1.2, color="k", alpha=0.1, lw=0)
    a2.axhline(1.0, color="k", lw=0.8)
    a2.set_yscale("log")
    a2.set_ylim(bottom=min(0.12, a2.get_ylim()[0]))
    a2.set_xticks(range(len(routes)), [n for _, n in routes], fontsize=8)
    a2.set_ylabel("D / D_AA")
    a2.set_title("routes to the all-atom mobility (held-out sets)", fontsize=10)
    fig.suptitle(f"friction-matched CG dynamics on the reference sets ({_title_date(r)})",
                 fontsize=11)
    return _save(fig, path)


# --- synthetic_campaign ----------------------------------------------------------------------


def synthetic_campaign(r: dict[str, Any], path: Path) -> Path:
    """Histogram of the wall time per synthetic pair: through a FireWorks campaign
    against the direct run of ``synthetic_pairs.py`` (the same potentials)."""
    h = r.get("hist") or {}
    camp, direct = np.asarray(h.get("campaign_wall_s", [])), np.asarray(h.get("direct_wall_s", []))
    fig, ax = plt.subplots(figsize=(6.5, 4.0), layout="constrained")
    both = np.concatenate([camp, direct]) if camp.size + direct.size else np.array([1.0])
    bins = np.linspace(0, float(np.percentile(both, 99)) * 1.05, 40)
    for x, label, c in [(direct, "direct (2 processes)", COLOURS[1]),
                        (camp, "campaign (FireWorks)", COLOURS[0])]:
        if x.size:
            ax.hist(np.clip(x, None, bins[-1]), bins=bins, histtype="step", lw=1.6, color=c,
                    label=f"{label}: median {np.median(x):.2f} s")
    ax.set_xlabel("wall per pair, stored wall_s (s; last bin: 99th percentile and above)")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"synthetic pairs, preset {r.get('preset')}, n = {r.get('n_pairs')}; "
                 f"overhead {r.get('overhead_per_pair_s')} s/pair ({_title_date(r)})",
                 fontsize=10)
    return _save(fig, path)


# --- the registry ----------------------------------------------------------------------------

#: name -> (result file, figure function). The figure is ``<result stem>.png``.
def molecule_transfer(r: dict[str, Any], path: Path) -> Path:
    """Leave-one-molecule-out: per held-out molecule, each set's RDF deviation of the
    predicted potential (and its IBI's) and its alpha-rescaled D over D_AA (and the
    follow-up study's D_CG / D_target where it ran the molecule)."""
    names = list(r["molecules"])
    x = np.arange(len(names))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for i, name in enumerate(names):
        rows = [s for s in r["sets"] if s["molecule"] == name]
        jitter = np.linspace(-0.15, 0.15, len(rows)) if len(rows) > 1 else np.zeros(1)
        a1.scatter(i + jitter, [s["routes"]["structure"]["D"] for s in rows], s=18,
                   color=COLOURS[0], label="predicted potential" if i == 0 else None)
        inv = [(j, s["routes"]["structure_inverse"]["D"]) for j, s in zip(jitter, rows,
               strict=True) if s["routes"].get("structure_inverse")]
        if inv:
            a1.scatter([i + j + 0.05 for j, _ in inv], [d for _, d in inv], s=18,
                       marker="^", color=COLOURS[2],
                       label="predicted g_t + inverse" if i == 0 else None)
        a1.scatter(i + jitter, [s["ibi_rdf_deviation"] for s in rows], s=14, marker="x",
                   color=COLOURS[1], label="the set's IBI" if i == 0 else None)
        a2.scatter(i + jitter, [1 + s["routes"]["structure"]["d_rescaled_rel_error"]
                                for s in rows], s=18, color=COLOURS[0],
                   label="(D_CG / alpha_pred) / D_AA" if i == 0 else None)
        ratio = r.get("follow_up_study", {}).get("d_ratio_per_molecule", {}).get(name)
        if ratio is not None:
            a2.scatter([i], [ratio], s=60, marker="*", color=COLOURS[3],
                       label="follow-up study, D_CG / D_target" if i == 0 else None)
    a1.axhline(r["goals"]["median_D"], color="k", lw=0.7, ls="--", label="goal (median)")
    a1.set_ylabel("RDF deviation D")
    a2.set_yscale("log")
    goal = r["goals"]["abs_d_rescaled_rel_error"]
    a2.axhspan(1 - goal, 1 + goal, color="0.9", label="within 25 %", zorder=0)
    a2.set_ylabel("D ratio")
    for ax in (a1, a2):
        ax.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(f"Leave-one-molecule-out, closed loop ({_title_date(r)})", fontsize=10)
    return _save(fig, path)


# --- ml/structure_routes ---------------------------------------------------------------


def structure_routes(r: dict[str, Any], path: Path) -> Path:
    """Learning curves of the two predicted structure routes in closed loop: median RDF
    deviation of the simulated potentials against the number of training sets, with the
    RDF model's own g_t deviation and the sets' IBI potentials for scale."""
    curve = r["learning_curve"]
    n = [c["n_train"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (m, style) in enumerate((("direct", "o-"), ("inverse", "s-"))):
        ax.plot(n, [c[m]["median_D"] if c[m] else np.nan for c in curve], style,
                color=COLOURS[k], label=f"{m} route, simulated: median D")
        ax.plot(n, [c[m]["p90_D"] if c[m] else np.nan for c in curve], style, color=COLOURS[k],
                alpha=0.35, label=f"{m} route: 90th percentile")
    ax.plot(n, [c["g_target_median_D"] for c in curve], "^--", color=COLOURS[2],
            label="the RDF model's g_t (median D, not simulated)")
    ibi = r["summary"].get("ibi")
    if ibi:
        ax.axhline(ibi["median_D"], color=COLOURS[4], lw=1, label="the sets' own IBI potentials")
    ax.axhline(r["goals"]["median_D"], color="k", ls=":", lw=1, label="goal (median)")
    ax.set_xlabel("all-atom training sets")
    ax.set_ylabel("RDF deviation D against the AA target")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"Structure routes in closed loop on unseen sets ({_title_date(r)})",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


FIGURES: dict[str, tuple[Path, Callable[[Any, Path], Path]]] = {
    "aa_overhead": (RESULTS / "aa_overhead.json", aa_overhead),
    "campaign_status": (RESULTS / "campaign_status.json", campaign_status),
    "report": (RESULTS / "report.json", report),
    "ibi_aa_targets": (RESULTS / "ibi_aa_targets.json", ibi_aa_targets),
    "campaign_build": (RESULTS / "campaign_build.json", campaign_build),
    "faults": (RESULTS / "faults.json", faults),
    "ibi_methods": (RESULTS / "ibi_methods.json", ibi_methods),
    "ibi_vs_votca_aa": (RESULTS / "ibi_vs_votca_aa.json", ibi_vs_votca_aa),
    "ml/alpha_models": (ML_RESULTS / "alpha_models.json", alpha_models),
    "active_learning": (RESULTS / "active_learning.json", active_learning),
    "ml/reference_validation": (ML_RESULTS / "reference_validation.md", reference_validation),
    "molecule_densities": (RESULTS / "molecule_densities.json", molecule_densities),
    "friction": (RESULTS / "friction.json", friction),
    "synthetic_campaign": (RESULTS / "synthetic_campaign.json", synthetic_campaign),
    "ml/molecule_transfer": (ML_RESULTS / "molecule_transfer.json", molecule_transfer),
    "ml/structure_routes": (ML_RESULTS / "structure_routes.json", structure_routes),
}
#: Results of several files drawn into one figure: name -> (files, figure function, figure).
COMBINED: dict[str, tuple[list[Path], Callable[[Any, Path], Path], Path]] = {}


def _ibi_aa_family() -> None:
    """Every other result of ``ibi_aa_targets.py``: its own files, and the tables it
    combined from several (``--combine``; their sources are named in the Markdown)."""
    for f in sorted(RESULTS.glob("ibi_aa_*.json")):
        FIGURES.setdefault(f.stem, (f, ibi_aa_targets))
    for md in sorted(RESULTS.glob("ibi_aa_*.md")):
        if md.with_suffix(".json").exists():
            continue
        sources = re.findall(r"`(ibi_aa_[\w-]+)\.json`", md.read_text())
        if sources:
            COMBINED[md.stem] = ([RESULTS / f"{n}.json" for n in dict.fromkeys(sources)],
                                 ibi_aa_targets, md.with_suffix(".png"))


_ibi_aa_family()


def _load(path: Path) -> Any:
    return path.read_text() if path.suffix == ".md" else json.loads(path.read_text())


def draw(name: str, result_file: Path | None = None) -> Path:
    """Draw the figure ``name`` (a key of :data:`FIGURES` or :data:`COMBINED`) from its
    result file (or ``result_file``: a benchmark run with ``--out``), beside it."""
    if name in COMBINED:
        files, fn, out = COMBINED[name]
        return fn([_load(f) for f in files], out)
    default, fn = FIGURES[name]
    src = Path(result_file) if result_file is not None else default
    return fn(_load(src), src.with_suffix(".png"))


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or [*FIGURES, *COMBINED]
    unknown = [n for n in names if n not in FIGURES and n not in COMBINED]
    if unknown:
        raise SystemExit(f"unknown figure(s) {unknown}; known: {[*FIGURES, *COMBINED]}")
    for name in names:
        files = COMBINED[name][0] if name in COMBINED else [FIGURES[name][0]]
        if not all(f.exists() for f in files):
            print(f"{name}: no results yet ({', '.join(str(f) for f in files)})")
            continue
        print(f"{name}: {draw(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
