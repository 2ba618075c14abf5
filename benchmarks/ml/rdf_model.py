"""The structure model (parameters -> g_t(r), density, pressure) on every all-atom run.

Reads an exported dataset folder (default the committed ``data/reference``: 58 finished
all-atom runs, of which the 53 converged sets have their target RDF in ``dataset.npz``;
see :meth:`cgflow.ml.rdf_model.AATargets.from_export`) and measures
:class:`cgflow.ml.rdf_model.RDFModel`:

1. **Cross-validation**: ``--folds``-fold (default 10) over all runs, ``--repeats`` times
   with different shuffles; per held-out set the RDF deviation D
   (:func:`cgflow.ibi.metrics.rdf_deviation`) between predicted and measured g_t, the
   density and pressure errors, next to the mean predictor (the mean of the training
   RDFs / densities / pressures of the same fold).
2. **Learning curves with error bars**: ``--splits`` random splits (default 8) into a test
   set of ``--test-fraction`` (default 20 %) of the runs and the rest; on each split the
   model is trained on the first n of a seeded permutation of the rest, for every n of
   ``--sizes``; mean and standard deviation over the splits of the test errors.

Writes ``results/rdf_model.json``, ``.md`` and ``.png`` next to this script, with the date,
the machine and its load. With ``--variants`` it instead compares settings of the model
(descriptors, noise bound, number of components) by 5-fold cross-validation with 2
shuffles, the same folds for all, and writes ``results/rdf_model_variants.md`` (how the
defaults were chosen).

Usage: ``.venv/bin/python benchmarks/ml/rdf_model.py [--data DIR] [--splits N] [--sizes ...]
[--variants]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import cpu_model, load_average  # noqa: E402

from cgflow.ibi.metrics import rdf_deviation  # noqa: E402
from cgflow.ml.rdf_model import AATargets, RDFModel, score_rdf_model  # noqa: E402
from cgflow.molecule.descriptors import DESCRIPTOR_NAMES  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "results"
METRICS = ("rdf_deviation_mean", "rdf_mean_predictor", "density_rmse",
           "density_mean_predictor", "pressure_rmse", "pressure_mean_predictor")


def _flat(scores: dict) -> dict[str, float]:
    rdf, rho, p = scores["rdf"], scores["density"], scores["pressure"]
    nan = float("nan")
    return {"rdf_deviation_mean": rdf.get("deviation_mean", nan),
            "rdf_deviation_median": rdf.get("deviation_median", nan),
            "rdf_mean_predictor": rdf.get("mean_predictor_deviation_mean", nan),
            "rdf_coverage_1sigma": rdf.get("coverage_1sigma", nan),
            "density_rmse": rho.get("rmse", nan),
            "density_mean_predictor": rho.get("mean_predictor_rmse", nan),
            "density_coverage_1sigma": rho.get("coverage_1sigma", nan),
            "pressure_rmse": p.get("rmse", nan),
            "pressure_mean_predictor": p.get("mean_predictor_rmse", nan),
            "pressure_coverage_1sigma": p.get("coverage_1sigma", nan)}


def cross_validate(t: AATargets, folds: int, repeats: int) -> dict:
    """Out-of-fold predictions of every run, ``repeats`` times."""
    n = len(t)
    runs = []
    for rep in range(repeats):
        perm = np.random.default_rng(1000 + rep).permutation(n)
        g = np.full(t.g.shape, np.nan)
        g_std, g_mean = np.full(t.g.shape, np.nan), np.full(t.g.shape, np.nan)
        rho, rho_std, p, p_std = (np.full(n, np.nan) for _ in range(4))
        rho_mean, p_mean = np.full(n, np.nan), np.full(n, np.nan)
        for test in np.array_split(perm, folds):
            train = np.setdiff1d(perm, test)
            model = RDFModel().fit_targets(t.subset(train))
            pred = model.predict(t.X[test])
            g[test], g_std[test] = pred.g, pred.g_std
            rho[test], rho_std[test] = pred.density_kg_m3, pred.density_std_kg_m3
            p[test], p_std[test] = pred.pressure_bar, pred.pressure_std_bar
            with_g = train[np.isfinite(t.g[train]).all(axis=1)]
            g_mean[test] = t.g[with_g].mean(axis=0)
            rho_mean[test] = np.nanmean(t.density_kg_m3[train])
            p_mean[test] = np.nanmean(t.pressure_bar[train])
        have = np.isfinite(t.g).all(axis=1)
        dev = np.full(n, np.nan)
        dev_mean = np.full(n, np.nan)
        for i in np.flatnonzero(have):
            dev[i] = rdf_deviation(t.r_nm, g[i], t.g[i])
            dev_mean[i] = rdf_deviation(t.r_nm, g_mean[i], t.g[i])
        runs.append({"rdf_deviation": dev, "rdf_deviation_mean_predictor": dev_mean,
                     "g": g, "g_std": g_std, "density": rho, "density_std": rho_std,
                     "density_mean_predictor": rho_mean, "pressure": p, "pressure_std": p_std,
                     "pressure_mean_predictor": p_mean})
    return {"runs": runs}


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


def summarise_cv(t: AATargets, cv: dict) -> dict:
    rows = []
    for run in cv["runs"]:
        dev, devm = run["rdf_deviation"], run["rdf_deviation_mean_predictor"]
        ok = np.isfinite(dev)
        rho_t, p_t = t.density_kg_m3, t.pressure_bar
        g_ok = np.isfinite(t.g).all(axis=1)
        within = np.abs(run["g"][g_ok] - t.g[g_ok]) <= run["g_std"][g_ok]
        rows.append({
            "rdf_deviation_mean": float(dev[ok].mean()),
            "rdf_deviation_median": float(np.median(dev[ok])),
            "rdf_deviation_p90": float(np.percentile(dev[ok], 90)),
            "rdf_mean_predictor": float(devm[ok].mean()),
            "rdf_coverage_1sigma": float(within.mean()),
            "density_rmse": _rmse(run["density"], rho_t),
            "density_r2": 1.0 - _rmse(run["density"], rho_t) ** 2 / float(np.nanvar(rho_t)),
            "density_mean_predictor": _rmse(run["density_mean_predictor"], rho_t),
            "density_coverage_1sigma": float(np.nanmean(
                np.abs(run["density"] - rho_t) <= run["density_std"])),
            "pressure_rmse": _rmse(run["pressure"], p_t),
            "pressure_mean_predictor": _rmse(run["pressure_mean_predictor"], p_t),
            "pressure_coverage_1sigma": float(np.nanmean(
                np.abs(run["pressure"] - p_t) <= run["pressure_std"])),
            "n_rdf": int(ok.sum()), "n_density": int(np.isfinite(rho_t).sum()),
        })
    return {k: [float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))]
            for k in rows[0]}


def learning_curve(t: AATargets, sizes: list[int], n_splits: int, test_fraction: float
                   ) -> list[dict]:
    n = len(t)
    n_test = max(1, int(round(test_fraction * n)))
    per_size: dict[int, list[dict]] = {s: [] for s in sizes}
    for k in range(n_splits):
        rng = np.random.default_rng(k)
        perm = rng.permutation(n)
        test, rest = np.sort(perm[:n_test]), rng.permutation(perm[n_test:])
        for s in sizes:
            train = np.sort(rest[:s])
            model = RDFModel().fit_targets(t.subset(train))
            per_size[s].append(_flat(score_rdf_model(model, t, test, baseline_rows=train)))
    out = []
    for s in sizes:
        rows = per_size[s]
        entry: dict = {"n_train": s, "n_test": n_test, "n_splits": n_splits}
        for key in rows[0]:
            vals = np.array([r[key] for r in rows], dtype=float)
            entry[key] = [float(np.nanmean(vals)), float(np.nanstd(vals))]
        out.append(entry)
    return out


VARIANTS = {
    "default (all 8 descriptors, noise bound 1e-2, at most 8 components)": {},
    "no descriptors (the 19 parameters only; the default before)": {"descriptors": ()},
    "size and shape (radius of gyration, asphericity, vdW volume)": {
        "descriptors": DESCRIPTOR_NAMES[:3]},
    "size, shape and volumes (5 geometry descriptors)": {"descriptors": DESCRIPTOR_NAMES[:5]},
    "dihedral barriers only": {"descriptors": DESCRIPTOR_NAMES[5:]},
    "noise bound 1e-3": {"noise_bounds": (1e-3, 1.0)},
    "at most 4 components": {"max_components": 4},
    "at most 12 components": {"max_components": 12},
}


def compare_variants(t: AATargets, path: Path) -> None:
    """5-fold CV with 2 shuffles of every setting of :data:`VARIANTS`."""
    from sklearn.model_selection import KFold

    t0 = time.perf_counter()
    lines = [f"5-fold cross-validation, 2 shuffles, the same folds for every setting, on "
             f"{len(t)} all-atom runs; mean over the 10 folds. {dt.date.today().isoformat()}, "
             f"load {load_average()}.", "",
             "| setting | RDF D | RDF D, median | g_t within 1 sigma | density RMSE (kg/m^3) "
             "| density within 1 sigma | pressure RMSE (bar) | mean predictor | components |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, kw in VARIANTS.items():
        rows = []
        for rep in range(2):
            for train, test in KFold(5, shuffle=True, random_state=rep).split(t.X):
                model = RDFModel(**kw).fit_targets(t.subset(train))
                f = _flat(score_rdf_model(model, t, test, baseline_rows=train))
                rows.append([f["rdf_deviation_mean"], f["rdf_deviation_median"],
                             f["rdf_coverage_1sigma"],
                             f["density_rmse"], f["density_coverage_1sigma"],
                             f["pressure_rmse"], f["pressure_mean_predictor"],
                             model.n_components])
        m = np.nanmean(np.array(rows, dtype=float), axis=0)
        lines.append(f"| {name} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.2f} | {m[3]:.1f} | "
                     f"{m[4]:.2f} | {m[5]:.1f} | {m[6]:.1f} | {m[7]:.1f} |")
    lines.append(f"\n{time.perf_counter() - t0:.0f} s.")
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "reference"))
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--splits", type=int, default=8)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="training-set sizes of the learning curve (default 10, 20, ... all)")
    parser.add_argument("--name", default="rdf_model")
    parser.add_argument("--variants", action="store_true",
                        help="compare settings of the model (results/rdf_model_variants.md)")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.variants:
        compare_variants(AATargets.from_export(args.data), OUT / f"{args.name}_variants.md")
        return
    t0 = time.perf_counter()
    load_before = load_average()
    t = AATargets.from_export(args.data)
    n_free = len(t) - max(1, int(round(args.test_fraction * len(t))))
    sizes = args.sizes or sorted({*range(10, n_free, 10), n_free})
    full = RDFModel().fit_targets(t)
    cv = cross_validate(t, args.folds, args.repeats)
    cv_summary = summarise_cv(t, cv)
    curve = learning_curve(t, sizes, args.splits, args.test_fraction)
    data = Path(args.data).resolve()
    result = {
        "data": str(data.relative_to(ROOT)) if data.is_relative_to(ROOT) else str(data),
        "n_runs": len(t), "n_with_rdf": int(np.isfinite(t.g).all(axis=1).sum()),
        "n_components_all_data": full.n_components,
        "cv": {"folds": args.folds, "repeats": args.repeats, "summary": cv_summary},
        "learning_curve": curve,
        "date": dt.date.today().isoformat(), "nproc": os.cpu_count(), "cpu": cpu_model(),
        "load_before": load_before, "load_after": load_average(),
        "seconds": time.perf_counter() - t0,
    }
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=1))

    s = cv_summary

    def pm(key: str, digits: int = 3) -> str:
        return f"{s[key][0]:.{digits}f} +- {s[key][1]:.{digits}f}"

    lines = [
        f"Data `{result['data']}`: {len(t)} finished all-atom runs ({result['n_with_rdf']} with "
        f"their target RDF: the converged sets of the export), grid {t.r_nm[0]:.2f}-"
        f"{t.r_nm[-1]:.2f} nm. {result['date']}, {result['nproc']} cores ({result['cpu']}), "
        f"load {load_before} before and {result['load_after']} after, "
        f"{result['seconds']:.0f} s in all. The model on all runs keeps "
        f"{full.n_components} principal components of g_t.", "",
        f"**{args.folds}-fold cross-validation** over all runs ({args.repeats} shuffles; mean +- "
        "std over the shuffles):", "",
        "| quantity | RDFModel | mean predictor |", "|---|---|---|",
        f"| RDF deviation D, mean over sets | {pm('rdf_deviation_mean')} | "
        f"{pm('rdf_mean_predictor')} |",
        f"| RDF deviation D, median / 90th percentile | {pm('rdf_deviation_median')} / "
        f"{pm('rdf_deviation_p90')} | |",
        f"| g_t points within 1 sigma | {pm('rdf_coverage_1sigma', 2)} | |",
        f"| density RMSE (kg/m^3) | {pm('density_rmse', 1)} (R^2 {pm('density_r2')}) | "
        f"{pm('density_mean_predictor', 1)} |",
        f"| density within 1 sigma | {pm('density_coverage_1sigma', 2)} | |",
        f"| pressure RMSE (bar) | {pm('pressure_rmse', 1)} | {pm('pressure_mean_predictor', 1)} |",
        f"| pressure within 1 sigma | {pm('pressure_coverage_1sigma', 2)} | |",
        "", f"**Learning curve**: {args.splits} random splits, test sets of "
        f"{curve[0]['n_test']} runs; mean +- std over the splits:", "",
        "| n_train | RDF D | RDF D, mean predictor | density RMSE | mean predictor | "
        "pressure RMSE | mean predictor |", "|---|---|---|---|---|---|---|",
    ]
    for row in curve:
        cells = [f"{row[k][0]:.3f} +- {row[k][1]:.3f}" if k.startswith("rdf")
                 else f"{row[k][0]:.1f} +- {row[k][1]:.1f}" for k in METRICS]
        lines.append(f"| {row['n_train']} | " + " | ".join(cells) + " |")
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(t, cv, curve, OUT / f"{args.name}.png")


def plot(t: AATargets, cv: dict, curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    n = [r["n_train"] for r in curve]
    for ax, (key, base, label) in zip(axes[0], (
            ("rdf_deviation_mean", "rdf_mean_predictor", "RDF deviation D (test sets)"),
            ("density_rmse", "density_mean_predictor", "density RMSE (kg/m^3)"),
            ("pressure_rmse", "pressure_mean_predictor", "pressure RMSE (bar)")), strict=True):
        ax.errorbar(n, [r[key][0] for r in curve], [r[key][1] for r in curve], fmt="o-",
                    capsize=3, label="RDFModel")
        ax.errorbar(n, [r[base][0] for r in curve], [r[base][1] for r in curve], fmt="s:",
                    capsize=3, c="gray", label="mean predictor")
        ax.set(xlabel="training runs", ylabel=label)
        ax.legend()
    run = cv["runs"][0]
    dev = run["rdf_deviation"]
    ok = np.flatnonzero(np.isfinite(dev))
    order = ok[np.argsort(dev[ok])]
    picks = [order[len(order) // 10], order[len(order) // 2], order[-1]]
    ax = axes[1, 0]
    for k, i in enumerate(picks):
        off = 1.0 * k
        ax.plot(t.r_nm, t.g[i] + off, "k-", lw=1)
        ax.plot(t.r_nm, run["g"][i] + off, "C0--", lw=1.2)
        ax.fill_between(t.r_nm, run["g"][i] - run["g_std"][i] + off,
                        run["g"][i] + run["g_std"][i] + off, color="C0", alpha=0.25)
        ax.text(t.r_nm[-1], off + 1.05, f"D = {dev[i]:.3f}", ha="right", fontsize=8)
    ax.set(xlabel="r (nm)", ylabel="g_t(r) (offset by 1)",
           title="held out: measured (black), predicted +- 1 sigma")
    ax = axes[1, 1]
    rho = t.density_kg_m3
    ax.errorbar(rho, run["density"], run["density_std"], fmt="o", ms=3, capsize=2)
    lim = [np.nanmin(rho) * 0.9, np.nanmax(rho) * 1.1]
    ax.plot(lim, lim, "k:")
    ax.set(xlabel="measured density (kg/m^3)", ylabel="predicted (held out)",
           title="density, cross-validated")
    ax = axes[1, 2]
    ax.hist(dev[ok], bins=15, alpha=0.7, label="RDFModel")
    ax.hist(run["rdf_deviation_mean_predictor"][ok], bins=15, alpha=0.5, color="gray",
            label="mean predictor")
    ax.axvline(0.03, c="k", ls=":", label="IBI tolerance of the data (0.03)")
    ax.set(xlabel="RDF deviation D of held-out sets", ylabel="sets")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
