"""The structure-to-potential inverse: PMF, HNC and learned, on held-out synthetic pairs and
in closed loop on the all-atom targets of the reference dataset.

Reads the pairs of ``benchmarks/synthetic_pairs.py`` (``results/synthetic_pairs.npz``),
holds out a seeded ``--test-fraction``, and compares on the same held-out pairs

- ``pmf``: -kT ln g (IBI's default first potential),
- ``hnc``: the HNC inversion (:mod:`cgflow.ibi.integral_equation`),
- ``learned``: :class:`cgflow.ml.inverse.StructureInverse` with ``base="none"``,
- ``learned_hnc``: the same learning a correction on top of the HNC inversion,

by the potential RMSE (kJ/mol; :func:`cgflow.ml.metrics.potential_rmse`, regions of the
held-out mean potential) and, for the first ``--simulate`` held-out pairs, in closed
loop: each method's potential is simulated once at the pair's density
(:func:`cgflow.stages.synthetic.run_pair`, the same seed for every method) and the RDF
deviation (:func:`cgflow.ibi.metrics.rdf_deviation`) from the pair's g is measured.
Then the same closed loop on the first ``--aa-sets`` all-atom targets of
``data/reference`` (target g_t on the potential grid, the AA density and pressure): RDF
deviation from g_t and pressure deviation. The learned inverse with the smaller
held-out potential RMSE (sampled region) is refitted on all pairs and written to
``results/inverse_model.json`` (the model of ``initial_guess: inverse``). Writes
``results/inverse.{json,md}``.

Usage::

    .venv/bin/python benchmarks/inverse.py [--simulate 30] [--aa-sets 15]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from cgflow.ibi.metrics import rdf_deviation
from cgflow.ibi.settings import BEAD_MASS_G_MOL
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.inverse import StructureInverse, baseline_potential
from cgflow.ml.metrics import potential_rmse
from cgflow.ml.potential_family import FamilySample
from cgflow.presets import get_cg_preset
from cgflow.stages import synthetic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model, load_average  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
#: name -> StructureInverse settings
LEARNED = {"learned": {"base": "none"}, "learned_hnc": {"base": "hnc"}}
METHODS = ["pmf", "hnc", *LEARNED]


def load_pairs(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def fit(name: str, d: dict[str, np.ndarray], idx: np.ndarray) -> StructureInverse:
    return StructureInverse(**LEARNED[name]).fit(
        d["r_nm"], d["g"][idx], d["density_kg_m3"][idx], d["temperature_k"][idx],
        d["mass_g_mol"][idx], d["u_kj_mol"][idx], d["pressure_bar"][idx])


def predict(method: str, models: dict, r, g, rho, t, m, p) -> np.ndarray:
    if method in ("pmf", "hnc"):
        n = len(g)
        return np.array([baseline_potential(method, r, gi, ri, ti, mi) for gi, ri, ti, mi in
                         zip(g, *(np.broadcast_to(np.asarray(x, float), (n,))
                                  for x in (rho, t, m)), strict=True)])
    return models[method].predict_energy(g, rho, t, m, p)


def simulate(r, u, rho, seed, workdir) -> tuple[np.ndarray, float]:
    pair = synthetic.run_pair(FamilySample(r, u, float(rho), -1), workdir,
                              get_cg_preset("reference"), seed=seed)
    return pair.g, pair.pressure_bar


def aa_targets(data: Path, n: int) -> list[dict]:
    ds = CampaignDataset.load_npz(data / "dataset.npz")
    rows = {r["param_id"]: r for r in json.loads((data / "sets.json").read_text())["sets"]}
    out = []
    for i, pid in enumerate(ds.param_ids.tolist()[:n]):
        row = rows[pid]
        out.append({"param_id": pid, "g": ds.g_target[i], "U_ibi": ds.U[i],
                    "density_kg_m3": row["density_kg_m3"], "pressure_bar": row["pressure_bar"],
                    "pressure_err_bar": row["pressure_err_bar"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, default=RESULTS / "synthetic_pairs.npz")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "reference")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--simulate", type=int, default=30)
    ap.add_argument("--aa-sets", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cgflow_inverse"))
    ap.add_argument("--out", default="inverse")
    ap.add_argument("--exclude-anchors", type=int, default=0, metavar="K",
                    help="train without the pairs drawn around the first K anchor sets "
                    "(the first K all-atom targets), so that those targets are unseen")
    ap.add_argument("--family-seed", type=int, default=1,
                    help="seed the pairs were sampled with (to recover their anchors)")
    ap.add_argument("--model-out", default="inverse_model",
                    help="results/<MODEL_OUT>.json (default inverse_model)")
    a = ap.parse_args()
    load0 = load_average()
    d = load_pairs(a.pairs)
    r = d["r_nm"]
    n = d["g"].shape[0]
    rng = np.random.default_rng(a.seed)
    perm = rng.permutation(n)
    n_test = max(1, round(a.test_fraction * n))
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    usable = np.arange(n)
    if a.exclude_anchors:
        family = synthetic.reference_family(a.data)
        anchors = np.array([s.anchor for s in family.sample(n, a.family_seed)])
        assert np.allclose(family.sample(1, a.family_seed)[0].u_kj_mol, d["u_kj_mol"][0])
        usable = np.flatnonzero(anchors >= a.exclude_anchors)
        train = np.intersect1d(train, usable)
    models = {k: fit(k, d, train) for k in LEARNED}
    args = [d[k][test] for k in ("g", "density_kg_m3", "temperature_k", "mass_g_mol",
                                 "pressure_bar")]
    U_true = d["u_kj_mol"][test]
    preds = {mth: predict(mth, models, r, *args) for mth in METHODS}
    ref = U_true.mean(axis=0)
    rmse = {mth: potential_rmse(r, U_true, preds[mth], reference=ref) for mth in METHODS}
    best = min(LEARNED, key=lambda m: rmse[m]["rmse_sampled"])
    fit(best, d, usable).save(RESULTS / f"{a.model_out}.json")

    sims = []
    for j, k in enumerate(test[: a.simulate]):
        row = {"pair": int(k)}
        for mth in METHODS:
            g, p = simulate(r, preds[mth][j], d["density_kg_m3"][k], 777 + int(k),
                            a.workdir / f"heldout_{k}_{mth}")
            row[mth] = {"D": rdf_deviation(r, g, d["g"][k]),
                        "dP_bar": float(p - d["pressure_bar"][k])}
        sims.append(row)
        print(f"held-out {k}: " + ", ".join(f"{m} {row[m]['D']:.3f}" for m in METHODS),
              flush=True)

    aa = []
    for tgt in aa_targets(a.data, a.aa_sets):
        row = {"param_id": tgt["param_id"]}
        one = [tgt["g"][None, :], tgt["density_kg_m3"], 298.15, BEAD_MASS_G_MOL,
               tgt["pressure_bar"]]
        for mth in METHODS:
            u = predict(mth, models, r, *one)[0]
            g, p = simulate(r, u, tgt["density_kg_m3"], 4242, a.workdir / f"aa_{mth}")
            row[mth] = {"D": rdf_deviation(r, g, tgt["g"]),
                        "dP_bar": float(p - tgt["pressure_bar"]),
                        "rmse_vs_ibi_sampled": potential_rmse(r, tgt["U_ibi"][None], u[None],
                                                              reference=tgt["U_ibi"])[
                                                                  "rmse_sampled"]}
        aa.append(row)
        print(f"AA {tgt['param_id']}: " + ", ".join(f"{m} {row[m]['D']:.3f}"
                                                   for m in METHODS), flush=True)
    shutil.rmtree(a.workdir, ignore_errors=True)

    def med(rows, mth, key="D"):
        return float(np.median([x[mth][key] for x in rows])) if rows else None

    summary = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
               "cpu": cpu_model(), "load_before": load0, "load_after": load_average(),
               "pairs": str(a.pairs.relative_to(ROOT)) if a.pairs.is_relative_to(ROOT)
               else str(a.pairs), "n_train": int(train.size), "n_test": int(test.size),
               "learned_settings": LEARNED, "exclude_anchors": a.exclude_anchors,
               "n_usable": int(usable.size), "potential_rmse_heldout": rmse,
               "heldout_closed_loop": sims, "aa_closed_loop": aa, "saved_model": best}
    (RESULTS / f"{a.out}.json").write_text(json.dumps(summary, indent=1))
    lines = ["# Structure-to-potential inverse", "",
             f"Date {summary['date_utc']} UTC; {summary['cpu']}; load before {load0}. "
             f"{train.size} synthetic pairs to train, {test.size} held out "
             f"(`{summary['pairs']}`)"
             + (f", without the pairs around the first {a.exclude_anchors} anchor sets"
                if a.exclude_anchors else "") + "; closed loop with preset `reference` (343 beads, "
             "10 + 50 ps).", "",
             "| method | RMSE well (kJ/mol) | RMSE sampled | held-out closed loop: median D "
             "(range) | median abs dP (bar) | AA targets: median D (range) | median abs dP "
             "(bar) |", "|---|---|---|---|---|---|---|"]

    def rng_(rows, mth):
        if not rows:
            return "-"
        v = [x[mth]["D"] for x in rows]
        return f"{np.median(v):.3f} ({min(v):.3f}-{max(v):.3f})"

    def dp(rows, mth):
        return "-" if not rows else f"{np.median([abs(x[mth]['dP_bar']) for x in rows]):.0f}"

    for mth in METHODS:
        lines.append(f"| {mth} | {rmse[mth]['rmse_well']:.3f} | {rmse[mth]['rmse_sampled']:.3f}"
                     f" | {rng_(sims, mth)} ({len(sims)}) | {dp(sims, mth)} | "
                     f"{rng_(aa, mth)} ({len(aa)}) | {dp(aa, mth)} |")
    lines += ["", f"Saved model (`results/{a.model_out}.json`, refitted on "
              f"{usable.size} pairs): `{best}`.", ""]
    (RESULTS / f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
