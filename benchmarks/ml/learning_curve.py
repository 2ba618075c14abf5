"""Learning curves of the structure and alpha models: on a synthetic campaign, or on
cgflow's committed dataset over several random splits.

Uses :func:`cgflow.ml.learning_curve`. Default: one split of
:func:`cgflow.ml.synthetic.synthetic_campaign` (Lennard-Jones-like potentials whose sigma
and epsilon depend on four of the 19 parameters, 0.02 kJ/mol noise); writes
``results/learning_curve.{json,md,png}`` next to this script. With ``--reference``: the
53 sets of ``data/reference`` over ``--splits`` random splits (seeds 0..splits-1; each a
test set of 11 sets and nested training sets drawn from the other 42), the median and
interquartile range (and mean +- standard error) of every test error over the splits;
writes ``results/learning_curve_reference.{json,md,png}``. ``--data`` names other export
folders (several are merged: e.g. ``data/reference data/campaigns/reference-c``; the test
sets are a fifth of them) and ``--name`` the results' file name.

Usage: ``.venv/bin/python benchmarks/ml/learning_curve.py [--n 250] [--sizes 15 30 60 120 200]``
or ``nice -n 19 .venv/bin/python benchmarks/ml/learning_curve.py --reference [--splits 10]
[--data FOLDER ...] [--name NAME]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cgflow.ml import learning_curve, potential_rmse, splits
from cgflow.ml.synthetic import synthetic_campaign

OUT = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=250)
    parser.add_argument("--sizes", type=int, nargs="+", default=[15, 30, 60, 120, 200])
    parser.add_argument("--space", default="narrow")
    parser.add_argument("--reference", action="store_true",
                        help="cgflow's data/reference over several splits")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--data", type=Path, nargs="+", default=[ROOT / "data" / "reference"],
                        help="with --reference: export folders (several are merged)")
    parser.add_argument("--name", default="learning_curve_reference",
                        help="with --reference: file name of the results")
    args = parser.parse_args()
    if args.reference:
        reference_curves(args.splits, None if args.sizes == parser.get_default("sizes")
                         else args.sizes, args.data, args.name)
        return
    OUT.mkdir(exist_ok=True)
    ds = synthetic_campaign(args.n, seed=0, space=args.space)
    rows = learning_curve(ds, args.sizes, seed=0, test_fraction=0.2)
    # the error of predicting the mean potential, for scale
    sp = splits(len(ds), n_folds=2, test_fraction=0.2, seed=0)
    ref = ds.U[sp.trainval].mean(axis=0)
    spread = potential_rmse(ds.r_nm, ds.U[sp.test], np.tile(ref, (sp.test.size, 1)), ref)
    result = {"space": args.space, "n_sets": args.n, "rows": rows,
              "mean_predictor": spread, "alpha_std_test": float(np.std(ds.alpha[sp.test]))}
    (OUT / "learning_curve.json").write_text(json.dumps(result, indent=1))
    lines = [f"Synthetic campaign, {args.n} sets ({args.space} space), test set of "
             f"{rows[0]['n_test']}. Predicting the mean potential: well RMSE "
             f"{spread['rmse_well']:.3f}, sampled {spread['rmse_sampled']:.3f} kJ/mol; "
             f"std of alpha over the test set {result['alpha_std_test']:.3f}.", "",
             "| n_train | U RMSE well (kJ/mol) | U RMSE sampled | U RMSE grid | alpha RMSE GP | "
             "alpha RMSE RF | alpha R^2 GP | alpha R^2 RF | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['n_train']} | {r['structure_rmse_well']:.3f} | "
            f"{r['structure_rmse_sampled']:.3f} | {r['structure_rmse_grid']:.3f} | "
            f"{r['alpha_rmse']:.4f} | {r['alpha_random_forest_rmse']:.4f} | "
            f"{r['alpha_r2']:.3f} | {r['alpha_random_forest_r2']:.3f} | {r['seconds']:.1f} |")
    (OUT / "learning_curve.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n_train"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    a1.loglog(n, [r["structure_rmse_well"] for r in rows], "o-", label="well")
    a1.loglog(n, [r["structure_rmse_sampled"] for r in rows], "s-", label="sampled region")
    a1.axhline(spread["rmse_well"], ls="--", c="C0", alpha=0.6, label="mean potential (well)")
    a1.axhline(spread["rmse_sampled"], ls=":", c="C1", alpha=0.8,
               label="mean potential (sampled)")
    a1.set_xlabel("training sets")
    a1.set_ylabel("test RMSE of U (kJ/mol)")
    a1.legend(fontsize=8)
    a2.loglog(n, [r["alpha_rmse"] for r in rows], "o-", label="GP on log(alpha)")
    a2.loglog(n, [r["alpha_random_forest_rmse"] for r in rows], "s-", label="random forest")
    a2.axhline(result["alpha_std_test"], ls="--", c="gray", label="std of alpha")
    a2.set_xlabel("training sets")
    a2.set_ylabel("test RMSE of alpha")
    a2.legend(fontsize=8)
    for ax in (a1, a2):
        ax.set_xticks(n, [str(v) for v in n])
        ax.minorticks_off()
    fig.tight_layout()
    fig.savefig(OUT / "learning_curve.png", dpi=120)


#: Test errors of :func:`cgflow.ml.learning_curve` summarised over the splits.
METRICS = ("structure_rmse_well", "structure_rmse_sampled", "alpha_rmse", "alpha_r2",
           "alpha_random_forest_rmse", "alpha_random_forest_r2")


def reference_curves(n_splits: int, sizes: list[int] | None, folders: list[Path],
                     name: str) -> None:
    """Learning curves on the converged sets of ``folders`` (exports, merged when several)
    over ``n_splits`` random splits; results in ``results/<name>.{json,md,png}``."""
    import datetime as dt
    import os
    import sys
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _common import cpu_model, data_folder, data_label, load_average

    from cgflow.ml.dataset import CampaignDataset

    t0, load_before = time.perf_counter(), load_average()
    with data_folder(folders) as folder:
        ds = CampaignDataset.load_npz(folder / "dataset.npz")
    label = data_label(folders, ROOT)
    # the training sets available besides a test fifth: as splits() makes them
    n_avail = len(ds) - splits(len(ds), n_folds=2, test_fraction=0.2, seed=0).test.size
    sizes = sizes or sorted({*[n for n in (10, 20, 30, 40, 60, 80, 120)
                               if n < 0.9 * n_avail],
                             n_avail})
    per_split = [learning_curve(ds, sizes, seed=k, test_fraction=0.2) for k in range(n_splits)]
    mean_pot = []
    for k in range(n_splits):
        sp = splits(len(ds), n_folds=2, test_fraction=0.2, seed=k)
        ref = ds.U[sp.trainval].mean(axis=0)
        mean_pot.append(potential_rmse(ds.r_nm, ds.U[sp.test],
                                       np.tile(ref, (sp.test.size, 1)), ref))
    summary: dict = {}
    for m in METRICS:
        v = np.array([[row[m] for row in rows] for rows in per_split])  # (splits, sizes)
        q1, med, q3 = np.nanpercentile(v, [25, 50, 75], axis=0)
        summary[m] = {"median": med.tolist(), "q1": q1.tolist(), "q3": q3.tolist(),
                      "mean": np.nanmean(v, axis=0).tolist(),
                      "sem": (np.nanstd(v, axis=0, ddof=1) / np.sqrt(n_splits)).tolist()}
    result = {"dataset": label, "n_sets": len(ds), "splits": n_splits,
              "sizes": sizes, "n_test": per_split[0][0]["n_test"], "summary": summary,
              "mean_potential_predictor": {
                  k: float(np.median([mp[k] for mp in mean_pot]))
                  for k in ("rmse_well", "rmse_sampled")},
              "per_split": per_split,
              "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "cpu": cpu_model(), "nproc": os.cpu_count(), "load_before": load_before,
              "load_after": load_average(), "seconds": time.perf_counter() - t0,
              "command": "nice -n 19 .venv/bin/python benchmarks/ml/learning_curve.py "
                         + " ".join(sys.argv[1:])}
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=1))

    def cell(m: str, i: int, f: str) -> str:
        s = summary[m]
        return f"{s['median'][i]:{f}} ({s['q1'][i]:{f}}-{s['q3'][i]:{f}})"

    mp = result["mean_potential_predictor"]
    lines = [f"Learning curves on `{label}` ({len(ds)} converged sets) over {n_splits} "
             f"random splits (test sets of {result['n_test']}, nested training sets from the "
             f"other {len(ds) - result['n_test']}); median (interquartile range) over the "
             f"splits. {result['date_utc']}, {result['cpu']}, {result['nproc']} cores, load "
             f"{load_before} before, {result['load_after']} after, {result['seconds']:.0f} s; "
             f"`{result['command'].strip()}`. Predicting the mean potential: well RMSE "
             f"{mp['rmse_well']:.2f}, sampled {mp['rmse_sampled']:.2f} kJ/mol (median over "
             "the splits).", "",
             "| n_train | U RMSE well (kJ/mol) | U RMSE sampled | alpha RMSE GP | alpha R^2 GP "
             "| alpha RMSE RF | alpha R^2 RF |", "|---|---|---|---|---|---|---|"]
    for i, n in enumerate(sizes):
        cells = [cell(m, i, ".2f" if m.endswith(("r2", "well", "sampled")) else ".1f")
                 for m in METRICS]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    (OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot_reference(result, OUT / f"{name}.png")


def _plot_reference(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array(result["sizes"])
    s = result["summary"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = ((axes[0], (("structure_rmse_well", "well"), ("structure_rmse_sampled", "sampled")),
               "test RMSE of U (kJ/mol)"),
              (axes[1], (("alpha_rmse", "GP"), ("alpha_random_forest_rmse", "random forest")),
               "test RMSE of alpha"),
              (axes[2], (("alpha_r2", "GP"), ("alpha_random_forest_r2", "random forest")),
               "test R^2 of alpha"))
    for ax, series, ylabel in panels:
        for k, (m, label) in enumerate(series):
            ax.plot(n, s[m]["median"], "o-", color=f"C{k}", label=label)
            ax.fill_between(n, s[m]["q1"], s[m]["q3"], color=f"C{k}", alpha=0.2, lw=0)
        ax.set_xlabel("training sets")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    mp = result["mean_potential_predictor"]
    axes[0].axhline(mp["rmse_well"], ls="--", c="C0", alpha=0.6)
    axes[0].axhline(mp["rmse_sampled"], ls=":", c="C1", alpha=0.8)
    fig.suptitle(f"{result['dataset']} ({result['n_sets']} sets): median and IQR over "
                 f"{result['splits']} splits "
                 f"({result['date_utc'][:10]})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
