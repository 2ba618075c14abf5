"""Cross-validated errors and learning curves of the three models on a cgflow-made dataset.

Reads a dataset exported by ``cgflow dataset export`` (default: the committed
``data/reference/dataset.npz``), runs :func:`cgflow.ml.training.train_all` (a seeded
held-out test set of 20 % and 5-fold cross-validation on the rest; the structure,
dynamics and acceleration-factor models, and the random-forest baseline on the same
folds) and :func:`cgflow.ml.training.learning_curve`, and writes
``results/reference_dataset.json``, ``.md`` and ``.png`` next to this script.

Usage: ``.venv/bin/python benchmarks/ml/reference_dataset.py [--dataset PATH] [--sizes ...]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cgflow.ml import potential_rmse, splits
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.training import learning_curve, train_all

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "results"


def _fmt(block: dict, key: str, digits: int = 3) -> str:
    v = block.get(key)
    return f"{v:.{digits}f}" if isinstance(v, float) and np.isfinite(v) else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT / "data" / "reference" / "dataset.npz"))
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="training-set sizes of the learning curve (default: 4 steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="reference_dataset")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    ds = CampaignDataset.load_npz(args.dataset)
    t0 = time.perf_counter()
    report = train_all(ds, seed=args.seed)
    sp = splits(len(ds), n_folds=2, test_fraction=0.2, seed=args.seed)
    n_free = sp.trainval.size
    sizes = args.sizes or sorted({max(4, n_free // 4), max(5, n_free // 2),
                                  max(6, 3 * n_free // 4), n_free})
    curve = learning_curve(ds, sizes, seed=args.seed)
    ref = ds.U[sp.trainval].mean(axis=0)
    spread = potential_rmse(ds.r_nm, ds.U[sp.test], np.tile(ref, (sp.test.size, 1)), ref)
    result = {
        "dataset": str(Path(args.dataset).resolve().relative_to(ROOT))
        if Path(args.dataset).resolve().is_relative_to(ROOT) else args.dataset,
        "dataset_hash": ds.content_hash(), "n_sets": len(ds), "seed": args.seed,
        "report": report.to_dict(), "learning_curve": curve,
        "mean_potential_predictor_test": spread,
        "alpha_mean_std": [float(np.nanmean(ds.alpha)), float(np.nanstd(ds.alpha))],
        "seconds": time.perf_counter() - t0,
    }
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=1, default=float))

    cv, test = report.cv_mean, report.test
    lines = [
        f"Dataset `{result['dataset']}` ({len(ds)} converged sets, hash "
        f"{result['dataset_hash'][:12]}), seed {args.seed}: held-out test set of "
        f"{len(report.split['test'])} sets, 5-fold CV on the other "
        f"{len(report.split['trainval'])}; {report.n_pairs} dynamics pairs "
        f"(|D_AA,i - D_CG,j| within the combined error). alpha over the dataset: mean "
        f"{result['alpha_mean_std'][0]:.3f}, std {result['alpha_mean_std'][1]:.3f}. "
        f"Predicting the mean potential on the test set: well RMSE "
        f"{spread['rmse_well']:.3f}, sampled {spread['rmse_sampled']:.3f} kJ/mol.", "",
        "| model | metric | CV mean | test |", "|---|---|---|---|",
    ]
    # (rmse_grid, over the whole grid, is in the JSON: it is dominated by the r^-12 cores
    # at the inner grid points, thousands of kJ/mol that no bead ever samples)
    for model, keys in (("structure", ["rmse_well", "rmse_sampled"]),
                        ("dynamics", ["rmse_well", "rmse_sampled", "n_pairs_eval"]),
                        ("alpha (GP)", ["rmse", "mae", "r2", "coverage_1sigma"]),
                        ("alpha (random forest)", ["rmse", "mae", "r2"])):
        key = {"alpha (GP)": "alpha", "alpha (random forest)": "alpha_random_forest"}.get(
            model, model)
        for k in keys:
            lines.append(f"| {model} | {k} | {_fmt(cv.get(key, {}), k)} | "
                         f"{_fmt(test.get(key, {}), k)} |")
        if "skipped" in cv.get(key, {}):
            lines.append(f"| {model} | skipped | {cv[key]['skipped']} | |")
    lines += ["", "Per fold, alpha RMSE (GP / random forest on the same folds):", ""]
    for f in report.folds:
        a, rf = f.get("alpha", {}), f.get("alpha_random_forest", {})
        lines.append(f"- fold {f['fold']} ({f['n_train']} train, {f['n_val']} validation): "
                     f"{_fmt(a, 'rmse', 4)} / {_fmt(rf, 'rmse', 4)}")
    lines += ["", "Learning curve (test set fixed; nested training sets):", "",
              "| n_train | U RMSE well (kJ/mol) | U RMSE sampled | alpha RMSE GP | "
              "alpha RMSE RF | alpha R^2 GP | alpha R^2 RF |", "|---|---|---|---|---|---|---|"]
    for r in curve:
        lines.append(f"| {r['n_train']} | {r['structure_rmse_well']:.3f} | "
                     f"{r['structure_rmse_sampled']:.3f} | {r['alpha_rmse']:.4f} | "
                     f"{r['alpha_random_forest_rmse']:.4f} | {r['alpha_r2']:.3f} | "
                     f"{r['alpha_random_forest_r2']:.3f} |")
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    n = [r["n_train"] for r in curve]
    axes[0].plot(n, [r["structure_rmse_well"] for r in curve], "o-", label="well region")
    axes[0].plot(n, [r["structure_rmse_sampled"] for r in curve], "s-", label="sampled region")
    axes[0].axhline(spread["rmse_well"], ls=":", c="gray", label="mean potential (well)")
    axes[0].set(xlabel="training sets", ylabel="U RMSE on test sets (kJ/mol)",
                title="structure-preserving model")
    axes[0].legend()
    axes[1].plot(n, [r["alpha_rmse"] for r in curve], "o-", label="GP (cgflow)")
    axes[1].plot(n, [r["alpha_random_forest_rmse"] for r in curve], "s-",
                 label="random forest")
    axes[1].axhline(result["alpha_mean_std"][1], ls=":", c="gray", label="std of alpha")
    axes[1].set(xlabel="training sets", ylabel="alpha RMSE on test sets",
                title="acceleration factor")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(OUT / f"{args.name}.png", dpi=120)


if __name__ == "__main__":
    main()
