"""Learning curves of the structure and alpha models on a synthetic campaign.

Uses :func:`cgflow.ml.learning_curve` on :func:`cgflow.ml.synthetic.synthetic_campaign`
(Lennard-Jones-like potentials whose sigma and epsilon depend on four of the 19
parameters, 0.02 kJ/mol noise). Writes ``results/learning_curve.json``, ``.md`` and
``.png`` next to this script.

Usage: ``.venv/bin/python benchmarks/ml/learning_curve.py [--n 250] [--sizes 15 30 60 120 200]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cgflow.ml import learning_curve, potential_rmse, splits
from cgflow.ml.synthetic import synthetic_campaign

OUT = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=250)
    parser.add_argument("--sizes", type=int, nargs="+", default=[15, 30, 60, 120, 200])
    parser.add_argument("--space", default="narrow")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
