"""The frozen acceleration-factor model on the original study's table of 234 sets.

The independent benchmark of :class:`cgflow.ml.AccelerationFactorModel`: its defaults were
chosen on cgflow's own data only (``alpha_selection.py``) and are used unchanged here.
The table (Bag, Meinel and Mueller-Plathe's D_AA, D_CG, alpha and 19 parameters in LAMMPS
units) is read from ``shared/data/mobility-study/alpha_table.dat`` next to the clone (CI
clones the repository beside ``shared/``); it is not part of the project. Without it the
script says so and exits.

What it does: converts the parameters to cgflow's GROMACS units
(:meth:`cgflow.params.ParameterSet.from_lammps`), drops the rows with alpha below 0.1
(the README of the table: a failed run), and runs 10-fold cross-validation, repeated with
``--repeats`` shuffles, of the GP and of the random-forest baseline on the same folds; the
same protocol on cgflow's reference dataset for comparison. It estimates the noise ceiling
of R^2 (the table has no errors; see ``noise_ceiling``), and writes
``results/study_alpha.json``, ``.md`` and a parity plot ``.png``.

Usage: ``.venv/bin/python benchmarks/ml/study_alpha.py [--repeats N]``
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
from alpha_cv import repeated_cv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import cpu_model, load_average  # noqa: E402

from cgflow.ml.alpha_model import AccelerationFactorModel, RandomForestAlphaBaseline  # noqa: E402
from cgflow.ml.dataset import CampaignDataset  # noqa: E402
from cgflow.params import FIELDS, ParameterSet  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT.parent / "shared" / "data" / "mobility-study"
OUT = Path(__file__).resolve().parent / "results"
#: Rows with an alpha below this are failed runs of the study (its README).
MIN_ALPHA = 0.1


def read_study_table(folder: Path) -> dict:
    """The table as arrays: X (n, 19) GROMACS units, alpha, D_AA, D_CG (1e-9 m^2/s)."""
    raw = np.loadtxt(folder / "alpha_table.dat")
    if raw.ndim != 2 or raw.shape[1] != 3 + len(FIELDS):
        raise SystemExit(f"{folder / 'alpha_table.dat'}: expected {3 + len(FIELDS)} columns, "
                         f"got shape {raw.shape}")
    d_aa, d_cg, alpha = raw[:, 0], raw[:, 1], raw[:, 2]
    X = np.array([ParameterSet.from_lammps(dict(zip(FIELDS, row[3:].tolist(), strict=True)))
                  .to_array() for row in raw])
    ratio_ok = np.abs(alpha / (d_cg / d_aa) - 1.0) <= 0.01
    return {"X": X, "alpha": alpha, "d_aa": d_aa, "d_cg": d_cg, "n_rows": int(raw.shape[0]),
            "n_ratio_within_1pct": int(ratio_ok.sum())}


def noise_ceiling(alpha: np.ndarray, rel_err: float) -> float:
    """Largest expected R^2 of any model when alpha carries a relative error ``rel_err``:
    ``1 - mean((rel_err alpha)^2) / var(alpha)`` (the noise variance of a perfect model's
    residuals over the variance of the measured values)."""
    return float(1.0 - np.mean((rel_err * alpha) ** 2) / np.var(alpha))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--study", default=str(STUDY), help="folder of alpha_table.dat")
    args = parser.parse_args()
    study = Path(args.study)
    if not (study / "alpha_table.dat").is_file():
        print(f"skipped: the study's table {study / 'alpha_table.dat'} is not there (it lives "
              "in shared/data/mobility-study next to the clone, not in the project)")
        return
    OUT.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    load_before = load_average()
    table = read_study_table(study)
    keep = table["alpha"] >= MIN_ALPHA
    X, y = table["X"][keep], table["alpha"][keep]
    ref = CampaignDataset.load_npz(ROOT / "data" / "reference" / "dataset.npz")
    ok = np.isfinite(ref.alpha) & (ref.alpha > 0)
    frozen = AccelerationFactorModel()
    models = {"gp": frozen, "random_forest": RandomForestAlphaBaseline()}
    res_study = repeated_cv(X, y, models, folds=args.folds, repeats=args.repeats)
    res_ref = repeated_cv(ref.X[ok], ref.alpha[ok], models, folds=args.folds,
                          repeats=args.repeats)
    full = AccelerationFactorModel().fit(X, y)
    noise_log = float(full.gp_.kernel_.k2.noise_level) * float(np.var(np.log(y)))
    rel_ref = ref.alpha_err[ok] / ref.alpha[ok]
    ceilings = {f"rel_err_{e:.2f}": noise_ceiling(y, e) for e in (0.05, 0.10, 0.15, 0.20)}
    ceilings["gp_fitted_noise"] = noise_ceiling(y, float(np.sqrt(np.expm1(noise_log))))
    relevance = full.relevance()
    result = {
        "study_folder": "shared/data/mobility-study (next to the clone)",
        "n_rows": table["n_rows"], "n_used": int(keep.sum()),
        "dropped_alpha_below": MIN_ALPHA, "n_dropped": int((~keep).sum()),
        "n_alpha_within_1pct_of_ratio": table["n_ratio_within_1pct"],
        "alpha_range": [float(y.min()), float(y.max())],
        "alpha_mean_std": [float(y.mean()), float(y.std())],
        "model": {k: (list(v) if isinstance(v, tuple) else v)
                  for k, v in frozen.get_params().items()},
        "folds": args.folds, "repeats": args.repeats,
        "study": {k: {kk: vv for kk, vv in v.items()} for k, v in res_study.items()},
        "cgflow_reference": {k: {kk: vv for kk, vv in v.items() if kk != "oof"}
                             for k, v in res_ref.items()},
        "noise": {
            "gp_fitted_noise_var_log_alpha": noise_log,
            "gp_fitted_noise_rel": float(np.sqrt(np.expm1(noise_log))),
            "cgflow_reference_median_rel_err": float(np.median(rel_ref)),
            "r2_ceiling": ceilings,
        },
        "relevance_full_table": dict(sorted(relevance.items(), key=lambda kv: -kv[1])[:8]),
        "date": dt.date.today().isoformat(), "nproc": os.cpu_count(), "cpu": cpu_model(),
        "load_before": load_before, "load_after": load_average(),
        "seconds": time.perf_counter() - t0,
    }
    (OUT / "study_alpha.json").write_text(json.dumps(result, indent=1))

    def row(res: dict, name: str, label: str, data: str) -> str:
        m, s = res[name]["mean"], res[name]["std"]
        return (f"| {data} | {label} | {m['r2_pooled']:.3f} +- {s['r2_pooled']:.3f} | "
                f"{m['r2_fold_mean']:.3f} +- {s['r2_fold_mean']:.3f} | "
                f"{m['r2_log']:.3f} +- {s['r2_log']:.3f} | {m['rmse']:.2f} | "
                f"{m['coverage_1sigma']:.2f} |")

    nz = result["noise"]
    lines = [
        f"The original study's table ({table['n_rows']} rows; {result['n_dropped']} with alpha "
        f"< {MIN_ALPHA} dropped, {result['n_used']} used; alpha {y.min():.2f}-{y.max():.1f}, "
        f"mean {y.mean():.2f}, std {y.std():.2f}) against cgflow's reference dataset "
        f"({int(ok.sum())} sets). Model frozen before this run: `AccelerationFactorModel()` "
        f"= {result['model']}. {args.folds}-fold cross-validation, {args.repeats} shuffles, "
        "the same folds for both models; mean +- std over the shuffles. "
        f"{result['date']}, {result['nproc']} cores, load {load_before} before, "
        f"{result['load_after']} after, {result['seconds']:.0f} s.", "",
        "| data | model | R^2 of alpha, pooled | mean of per-fold R^2 | R^2 of log alpha | "
        "RMSE | 1-sigma coverage |", "|---|---|---|---|---|---|---|",
        row(res_study, "gp", "GP (cgflow)", "study, 10-fold"),
        row(res_study, "random_forest", "random forest", "study, 10-fold"),
        row(res_ref, "gp", "GP (cgflow)", "cgflow reference"),
        row(res_ref, "random_forest", "random forest", "cgflow reference"), "",
        "Noise ceiling of R^2 on the study's table (it reports no errors): "
        + ", ".join(f"{int(round(float(k.split('_')[-1]) * 100))} % relative error of alpha: "
                    f"{v:.3f}" for k, v in ceilings.items() if k.startswith("rel_err"))
        + f". cgflow's runs of the reference preset (64 molecules, 50 ps) have a median "
        f"relative error of alpha of {nz['cgflow_reference_median_rel_err']:.3f}. The GP "
        f"fitted on the whole table puts {nz['gp_fitted_noise_rel']:.3f} relative noise on "
        f"alpha (white-noise variance {nz['gp_fitted_noise_var_log_alpha']:.4f} in log alpha; "
        "an upper bound of the measurement noise, as it also holds what the model misses), "
        f"which would cap R^2 at {ceilings['gp_fitted_noise']:.3f}.", "",
        "Largest relevances (inverse length scales) of the GP on the whole table: "
        + ", ".join(f"{k} {v:.3f}" for k, v in result["relevance_full_table"].items()) + ".",
    ]
    (OUT / "study_alpha.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(y, res_study, ref.alpha[ok], res_ref, OUT / "study_alpha.png")


def plot(y: np.ndarray, res: dict, y_ref: np.ndarray, res_ref: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, truth, block, title in ((axes[0], y, res, "study's table"),
                                    (axes[1], y_ref, res_ref, "cgflow reference dataset")):
        for name, marker, label in (("random_forest", "s", "random forest"),
                                    ("gp", "o", "GP (cgflow)")):
            pred = np.asarray(block[name]["oof"]["alpha"])
            r2 = block[name]["mean"]["r2_pooled"]
            ax.scatter(truth, pred, s=12, marker=marker, alpha=0.6,
                       label=f"{label}: R^2 {r2:.2f} (pooled, mean of shuffles)")
        lo, hi = 0.8 * truth.min(), 1.25 * truth.max()
        ax.plot([lo, hi], [lo, hi], "k:")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
               xlabel="alpha measured", ylabel="alpha predicted (out of fold, first shuffle)",
               title=f"{title}: 10-fold cross-validation")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
