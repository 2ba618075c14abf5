"""Active against random sampling, on a pool of already simulated sets (an emulator).

Does :func:`cgflow.ml.active_learning.select_batch` reach the test error of random
sampling with fewer simulated sets? Three problems, each a pool of sets whose results are
stored, minus a fixed held-out test set:

* ``study_alpha``: the original study's table of 234 sets (read from
  ``../shared/data/mobility-study/alpha_table.dat``, never copied into the project; rows
  with alpha < 0.1 dropped, as in ``ml/study_alpha.py``); error = test RMSE of log(alpha)
  of the acceleration-factor GP (its R^2 of log(alpha) is stored too);
* ``reference_alpha``: cgflow's 53 sets (``data/reference``), the same error;
* ``reference_structure``: the target RDFs g_t of the same 53 sets; error = mean over the
  test sets of the RMS over r of (predicted - measured g_t), RDF model of
  :mod:`cgflow.ml.rdf_model`.

Every repeat draws an initial batch at random from the pool (the same for every
strategy of that repeat); then each strategy adds batches until the budget: ``random``
takes the next sets of a seeded permutation of the pool (uniform random sampling of the
pool; the pool itself is a Latin hypercube or uniform sample of the space), the active
strategies let :func:`select_batch` choose among the pool sets not yet "simulated".
*Approximation (the emulator):* "simulating" a set reveals its stored result, so the
candidates are limited to the pool, which is far smaller than the 2000 candidates a
campaign would draw from the whole space; the benefit of choosing is bounded by what the
pool offers, and at the full pool every strategy has the same training sets.

The goal measured: for each budget b of random sampling, the best median test error
random reached with at most b sets (b itself when its curve falls monotonically; the
curves of a few repeats can rise again by noise), the sets random needed for it and the
sets the active strategy needs for it (linear interpolation between budgets; "not
reached" if it does not get there within the budget), and their ratio; the goal of issue
13 is a ratio of at most 0.5 at the full budget.

Writes ``results/active_learning.{json,md,png}``.

Usage: ``nice -n 19 .venv/bin/python benchmarks/active_learning.py [--quick] [--repeats N]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "ml"))
from _common import cpu_model, data_folder, data_label, load_average, write_results  # noqa: E402
from study_alpha import MIN_ALPHA, STUDY, read_study_table  # noqa: E402

from cgflow.ml.active_learning import (  # noqa: E402
    AcquisitionSettings,
    fit_models,
    select_batch,
)
from cgflow.ml.dataset import CampaignDataset  # noqa: E402

ROOT = HERE.parent
OUT = HERE / "results" / "active_learning.json"

#: Active strategies: name -> settings (besides criterion and seed).
STRATEGIES: dict[str, dict[str, Any]] = {
    "active_distance": {"batch_rule": "distance", "diversity_weight": 1.0},
    "active_reduction": {"objective": "variance_reduction", "batch_rule": "believer",
                         "diversity_weight": 0.0},
    "active_believer": {"batch_rule": "believer", "diversity_weight": 0.0},
    "active_reduction_distance": {"objective": "variance_reduction", "batch_rule": "believer",
                                  "diversity_weight": 1.0},
}
#: The strategies run without ``--strategies`` (the others were tried, see the README).
DEFAULT_STRATEGIES = ("active_distance", "active_reduction")

#: Model options of the benchmark (both strategies alike): no optimiser restarts of the
#: alpha GP (the default 3 cost about ten times the fit), at most 4 principal components
#: of g_t (4, 8 and 12 gave the same cross-validated D, ``ml/rdf_model.py --variants``).
ALPHA_OPTIONS: dict[str, Any] = {"n_restarts": 0}
RDF_OPTIONS: dict[str, Any] = {"max_components": 4}


def problems(quick: bool, data: list[Path] | None = None) -> dict[str, dict[str, Any]]:
    """The pools, test sets and budgets (``quick``: smaller budgets). ``data``: export
    folders for the ``reference_*`` problems (default ``data/reference``; several are
    merged); the test set is a quarter of their sets (13 of 53) and the budgets go on by
    tens up to 80 % of the pool."""
    out: dict[str, dict[str, Any]] = {}
    study = STUDY / "alpha_table.dat"
    if study.is_file():
        t = read_study_table(STUDY)
        keep = t["alpha"] >= MIN_ALPHA
        out["study_alpha"] = {"X": t["X"][keep], "alpha": t["alpha"][keep], "g": None,
                              "route": "alpha", "n_test": 60,
                              "sizes": [10, 20, 30] if quick else
                              [10, 20, 30, 40, 50, 70, 100],
                              "source": "../shared/data/mobility-study/alpha_table.dat"}
    folders = data or [ROOT / "data" / "reference"]
    with data_folder(folders) as folder:
        ds = CampaignDataset.load_npz(folder / "dataset.npz")
    label = data_label(folders, ROOT)
    ok = np.isfinite(ds.alpha) & (ds.alpha > 0)
    okg = np.all(np.isfinite(ds.g_target), axis=1)
    for name, rows, extra in (("reference_alpha", ok, ""),
                              ("reference_structure", okg, " (g_target)")):
        n_test = round(0.245 * int(rows.sum()))  # 13 of 53
        pool = int(rows.sum()) - n_test
        sizes = [5, 10, 15] if quick else [
            *[5, 10, 15, 20, 25, 30], *range(40, int(0.8 * pool) + 1, 10)]
        out[name] = {"X": ds.X[rows], "alpha": ds.alpha[rows] if name.endswith("alpha")
                     else None, "g": None if name.endswith("alpha") else ds.g_target[rows],
                     "route": "alpha" if name.endswith("alpha") else "structure",
                     "n_test": n_test, "sizes": sizes, "source": label + extra}
    return out


def test_error(models: Any, p: dict[str, Any], test: np.ndarray) -> dict[str, float]:
    """Test error of the fitted models on the rows ``test``."""
    X = p["X"][test]
    if p["route"] == "alpha":
        m, _ = models.alpha.predict_log(X)
        y = np.log(p["alpha"][test])
        rmse = float(np.sqrt(np.mean((m - y) ** 2)))
        r2 = 1.0 - float(np.sum((m - y) ** 2) / np.sum((y - y.mean()) ** 2))
        return {"error": rmse, "r2_log": r2}
    g = models.rdf.predict(X).g
    rms = np.sqrt(np.mean((g - p["g"][test]) ** 2, axis=1))
    return {"error": float(rms.mean())}


def run_curve(p: dict[str, Any], pool: np.ndarray, test: np.ndarray, initial: np.ndarray,
              strategy: str, seed: int) -> list[dict[str, float]]:
    """Test errors at each budget of ``p['sizes']`` for one strategy and repeat."""
    criterion = "alpha_std" if p["route"] == "alpha" else "structure_spread"
    extra = STRATEGIES.get(strategy, {})
    settings = AcquisitionSettings(criterion=criterion, seed=seed, **extra)
    train = list(initial)
    rest_random = [int(i) for i in np.random.default_rng(10_000 + seed).permutation(pool)
                   if i not in set(initial)]
    rows = []
    sizes = p["sizes"]
    for k, size in enumerate(sizes):
        assert len(train) == size
        t0 = time.perf_counter()
        idx = np.array(train)
        alpha = None if p["alpha"] is None else p["alpha"][idx]
        g = None if p["g"] is None else p["g"][idx]
        models = fit_models(p["X"][idx], alpha, g, settings, alpha_options=ALPHA_OPTIONS,
                            rdf_options=RDF_OPTIONS)
        row = {"n": size, **test_error(models, p, test)}
        if k + 1 < len(sizes):
            step = sizes[k + 1] - size
            if strategy == "random":
                new = rest_random[:step]
                rest_random = rest_random[step:]
            else:
                cand = np.array([i for i in pool if i not in set(train)])
                sel = select_batch(p["X"][idx], alpha, g, p["X"][cand], step, settings,
                                   models=models)
                new = [int(cand[c.candidate_index]) for c in sel.choices]
            train += new
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    return rows


def needed(sizes: list[int], active: np.ndarray, target: float) -> float | None:
    """Fewest sets at which the active median curve reaches ``target`` (linear
    interpolation between budgets), None if it never does."""
    if active[0] <= target:
        return float(sizes[0])
    for i in range(1, len(sizes)):
        if active[i] <= target:
            a0, a1 = active[i - 1], active[i]
            f = (a0 - target) / (a0 - a1) if a0 != a1 else 1.0
            return float(sizes[i - 1] + f * (sizes[i] - sizes[i - 1]))
    return None


def summarise(curves: dict[str, list[list[dict]]], sizes: list[int]) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for name, reps in curves.items():
        e = np.array([[r["error"] for r in rep] for rep in reps])  # (repeats, sizes)
        q1, med, q3 = np.percentile(e, [25, 50, 75], axis=0)
        stats[name] = {"median": med.tolist(), "q1": q1.tolist(), "q3": q3.tolist(),
                       "mean": e.mean(axis=0).tolist(),
                       "sem": (e.std(axis=0, ddof=1) / np.sqrt(len(reps))).tolist()
                       if len(reps) > 1 else [0.0] * len(sizes)}
        if "r2_log" in reps[0][0]:
            stats[name]["r2_log_median"] = np.median(
                [[r["r2_log"] for r in rep] for rep in reps], axis=0).tolist()
    rand = np.array(stats["random"]["median"])
    for name in curves:
        if name == "random":
            continue
        act = np.array(stats[name]["median"])
        per_budget = []
        for i, b in enumerate(sizes[1:], start=1):
            # the best median error random reached with at most b sets, and the sets it
            # took; a curve that rises again (noise) does not count against either side
            target = float(rand[: i + 1].min())
            n_random = needed(sizes, rand, target)
            n = needed(sizes, act, target)
            per_budget.append({"random_budget": b, "random_best_median_error": target,
                               "random_sets_needed": n_random, "active_sets_needed": n,
                               "ratio": None if n is None else n / n_random})
        # paired: in how many repeats active's error at the full budget is below random's
        e_a = np.array([rep[-1]["error"] for rep in curves[name]])
        e_r = np.array([rep[-1]["error"] for rep in curves["random"]])
        stats[name]["versus_random"] = per_budget
        stats[name]["wins_at_full_budget"] = int(np.sum(e_a < e_r))
        full = per_budget[-1]["ratio"]
        stats[name]["goal_met"] = bool(full is not None and full <= 0.5)
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, small budgets")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--problems", nargs="+", default=None,
                        help="subset of study_alpha reference_alpha reference_structure")
    parser.add_argument("--out", default=str(OUT), help="result file (.json)")
    parser.add_argument("--strategies", nargs="+", default=None,
                        help=f"subset of {' '.join(STRATEGIES)} (random always runs)")
    parser.add_argument("--data", type=Path, nargs="+", default=None,
                        help="export folders of the reference problems (several are merged)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="merge the results of runs of different problems into --out")
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, Path(args.out))
        return
    repeats = args.repeats or (2 if args.quick else 6)
    t_start = time.perf_counter()
    load_before = load_average()
    probs = problems(args.quick, args.data)
    if "study_alpha" not in probs:
        print(f"note: the study's table {STUDY / 'alpha_table.dat'} is not there; "
              "study_alpha skipped")
    if args.problems:  # in the order given
        probs = {k: probs[k] for k in args.problems if k in probs}
    strategies = ["random", *(args.strategies or DEFAULT_STRATEGIES)]
    results: dict[str, Any] = {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "nproc": os.cpu_count(),
                    "python": platform.python_version()},
        "command": "nice -n 19 .venv/bin/python benchmarks/active_learning.py "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
        "load_before": load_before, "repeats": repeats, "quick": args.quick,
        "model_options": {"alpha": ALPHA_OPTIONS, "rdf": RDF_OPTIONS},
        "strategies": {"random": "uniform random order of the pool",
                       **{k: v for k, v in STRATEGIES.items() if k in strategies}},
        "problems": {}}
    for name, p in probs.items():
        n = p["X"].shape[0]
        perm = np.random.default_rng(0).permutation(n)  # the fixed test set
        test, pool = np.sort(perm[: p["n_test"]]), np.sort(perm[p["n_test"]:])
        if p["sizes"][-1] >= pool.size:
            raise SystemExit(f"{name}: budget {p['sizes'][-1]} must be below the pool of "
                             f"{pool.size}")
        curves: dict[str, list[list[dict]]] = {s: [] for s in strategies}
        t0 = time.perf_counter()
        for s in strategies:
            if s not in STRATEGIES and s != "random":
                raise SystemExit(f"unknown strategy {s!r}; known: {', '.join(STRATEGIES)}")
        for rep in range(repeats):
            initial = np.random.default_rng(rep).choice(pool, p["sizes"][0], replace=False)
            for s in strategies:
                curves[s].append(run_curve(p, pool, test, initial, s, rep))
            print(f"{name}: repeat {rep + 1}/{repeats} done, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            results["problems"][name] = {
                "source": p["source"], "route": p["route"], "n_sets": n,
                "n_test": int(test.size), "n_pool": int(pool.size), "sizes": p["sizes"],
                "error": ("test RMSE of log(alpha)" if p["route"] == "alpha" else
                          "mean over test sets of the RMS over r of g_t predicted - measured"),
                "repeats_done": rep + 1,
                "summary": summarise(curves, p["sizes"]), "curves": curves,
                "seconds": time.perf_counter() - t0}
            results["load_after"] = load_average()
            results["seconds"] = time.perf_counter() - t_start
            # after every repeat, so that a stopped run keeps what it finished
            write_results(Path(args.out), results, markdown(results),
                          figure="active_learning")


def merge(files: list[str], out: Path) -> None:
    """One result from the results of several runs (e.g. problems run in parallel)."""
    import json

    parts = [json.loads(Path(f).read_text()) for f in files]
    merged = dict(parts[0])
    merged["problems"] = {k: v for r in parts for k, v in r["problems"].items()}
    merged["command"] = " ; ".join(r["command"] for r in parts)
    merged["seconds"] = max(r["seconds"] for r in parts)
    merged["load_before"] = parts[0]["load_before"]
    merged["load_after"] = parts[-1]["load_after"]
    merged["merged_from"] = [str(f) for f in files]
    for p in merged["problems"].values():  # the summary of this version of the script
        p["summary"] = summarise(p["curves"], p["sizes"])
    write_results(out, merged, markdown(merged), figure="active_learning")


def _fmt_needed(v: dict[str, Any]) -> str:
    n = v["active_sets_needed"]
    return "not reached" if n is None else f"{n:.0f} ({v['ratio']:.2f})"


def markdown(r: dict[str, Any]) -> str:
    lines = [f"Active against random sampling on a pool of simulated sets "
             f"(`benchmarks/active_learning.py`). {r['date_utc']}, {r['machine']['cpu']}, "
             f"{r['machine']['nproc']} cores, load {r['load_before']} before and "
             f"{r['load_after']} after, {r['seconds'] / 60:.1f} min (wall); command: "
             f"`{r['command'].strip()}`. Repeats differ in the initial batch and the random "
             "order; the test set is fixed. Median (interquartile range) of the test "
             "error over the repeats.", ""]
    for name, p in r["problems"].items():
        s = p["summary"]
        names = list(s)
        lines += [f"### {name}: {p['n_sets']} sets ({p['source']}), test {p['n_test']}, "
                  f"pool {p['n_pool']}, {p['repeats_done']} repeats; error = {p['error']}", "",
                  "| sets | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for i, n in enumerate(p["sizes"]):
            cells = [f"{s[k]['median'][i]:.4f} ({s[k]['q1'][i]:.4f}-{s[k]['q3'][i]:.4f})"
                     for k in names]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines += ["", "Sets the active strategy needs for the best median error random "
                  "reached within each budget (ratio to the sets random needed for it; goal "
                  "<= 0.5):", "",
                  "| random budget | best random median (sets) | "
                  + " | ".join(k for k in names if k != "random") + " |",
                  "|---" * (len(names) + 1) + "|"]
        for i, b in enumerate(p["sizes"][1:]):
            v0 = s[names[1]]["versus_random"][i]
            lines.append(f"| {b} | {v0['random_best_median_error']:.4f} "
                         f"({v0['random_sets_needed']:.0f}) | " + " | ".join(
                             _fmt_needed(s[k]["versus_random"][i]) for k in names
                             if k != "random") + " |")
        lines += ["", "Goal (at most half the sets at the full budget): " + "; ".join(
            f"{k}: {'met' if s[k]['goal_met'] else 'not met'} (lower error than random in "
            f"{s[k]['wins_at_full_budget']} of {p['repeats_done']} repeats at "
            f"{p['sizes'][-1]} sets)"
            for k in names if k != "random") + ".", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
