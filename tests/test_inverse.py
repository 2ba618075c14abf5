"""The learned structure-to-potential inverse against the PMF and HNC inversions, trained on
the committed synthetic pairs (``benchmarks/synthetic_pairs.py``), and as IBI's first
potential."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.ibi.iteration import initial_ibi_potential
from cgflow.ibi.metrics import rdf_deviation
from cgflow.ibi.settings import BEAD_MASS_G_MOL, IBISettings
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.inverse import StructureInverse, baseline_potential
from cgflow.ml.metrics import potential_rmse
from cgflow.ml.potential_family import FamilySample
from cgflow.presets import get_cg_preset
from cgflow.stages import cg as cg_stage
from cgflow.stages import synthetic

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "benchmarks" / "results" / "synthetic_pairs.npz"
DATA = ROOT / "data" / "reference"
T = 298.15


@pytest.fixture(scope="module")
def pairs() -> dict[str, np.ndarray]:
    with np.load(PAIRS) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def split(pairs) -> tuple[np.ndarray, np.ndarray]:
    n = pairs["g"].shape[0]
    perm = np.random.default_rng(123).permutation(n)
    return np.sort(perm[n // 5:]), np.sort(perm[: n // 5])


def _fit(pairs, idx, **kw) -> StructureInverse:
    return StructureInverse(**kw).fit(
        pairs["r_nm"], pairs["g"][idx], pairs["density_kg_m3"][idx],
        pairs["temperature_k"][idx], pairs["mass_g_mol"][idx], pairs["u_kj_mol"][idx],
        pairs["pressure_bar"][idx])


def _predict(model, pairs, idx) -> np.ndarray:
    return model.predict_energy(pairs["g"][idx], pairs["density_kg_m3"][idx],
                                pairs["temperature_k"][idx], pairs["mass_g_mol"][idx],
                                pairs["pressure_bar"][idx])


@pytest.fixture(scope="module")
def model(pairs, split) -> StructureInverse:
    return _fit(pairs, split[0], base="hnc")


def test_inverse_beats_pmf_and_hnc_on_held_out_pairs(pairs, split, model):
    test = split[1]
    r, U = pairs["r_nm"], pairs["u_kj_mol"][test]
    ref = U.mean(axis=0)
    learned = potential_rmse(r, U, _predict(model, pairs, test), reference=ref)
    for method in ("pmf", "hnc"):
        base = np.array([baseline_potential(method, r, g, rho, T, BEAD_MASS_G_MOL)
                         for g, rho in zip(pairs["g"][test], pairs["density_kg_m3"][test],
                                           strict=True)])
        other = potential_rmse(r, U, base, reference=ref)
        assert learned["rmse_well"] < 0.5 * other["rmse_well"], method
        assert learned["rmse_sampled"] < 0.5 * other["rmse_sampled"], method


def test_inverse_trained_on_synthetic_pairs_predicts_the_ibi_potentials_of_aa_targets(model):
    """Out of the training domain: the all-atom targets of the reference dataset and the
    potentials IBI converged to for them."""
    ds = CampaignDataset.load_npz(DATA / "dataset.npz")
    rows = {r["param_id"]: r for r in json.loads((DATA / "sets.json").read_text())["sets"]}
    rho = np.array([rows[p]["density_kg_m3"] for p in ds.param_ids.tolist()])
    p = np.array([rows[p]["pressure_bar"] for p in ds.param_ids.tolist()])
    learned = model.predict_energy(ds.g_target, rho, T, BEAD_MASS_G_MOL, p)
    pmf = np.array([baseline_potential("pmf", ds.r_nm, g, d, T, BEAD_MASS_G_MOL)
                    for g, d in zip(ds.g_target, rho, strict=True)])
    a = potential_rmse(ds.r_nm, ds.U, learned)
    b = potential_rmse(ds.r_nm, ds.U, pmf)
    assert a["rmse_well"] < b["rmse_well"] and a["rmse_sampled"] < b["rmse_sampled"]


def test_predictions_are_simulation_ready_and_serialise(pairs, split, model, tmp_path):
    test = split[1][:10]
    U = _predict(model, pairs, test)
    rep = model.representation
    c = rep.core_end_index_
    assert np.all(np.isfinite(U)) and np.all(U[:, -1] == 0.0)
    assert np.all(np.diff(U[:, : c + 1], axis=1) < 0)
    k = int(test[0])
    pot = model.predict_potential(pairs["g"][k], pairs["density_kg_m3"][k], T,
                                  BEAD_MASS_G_MOL, pairs["pressure_bar"][k])
    assert np.allclose(pot.u_kj_mol, U[0], rtol=1e-9, atol=1e-9)
    assert pot.f_kj_mol_nm[-1] == pytest.approx(0.0)
    model.save(tmp_path / "inv.json")
    again = StructureInverse.load(tmp_path / "inv.json")
    assert np.allclose(_predict(again, pairs, test), U, rtol=1e-10, atol=1e-10)


def test_inverse_refuses_bad_input(pairs, model, tmp_path):
    g = pairs["g"][0]
    with pytest.raises(InvalidInputError, match="'g'"):
        model.predict_energy(g[:-1], 700.0, T, BEAD_MASS_G_MOL, 1.0)
    with pytest.raises(InvalidInputError, match="density_kg_m3"):
        model.predict_energy(g, -700.0, T, BEAD_MASS_G_MOL, 1.0)
    with pytest.raises(InvalidInputError, match="pressure_bar"):
        model.predict_energy(g, 700.0, T, BEAD_MASS_G_MOL)
    with pytest.raises(InvalidInputError, match="base"):
        StructureInverse(base="ideal-gas")
    with pytest.raises(InvalidInputError, match="path"):
        StructureInverse.load(tmp_path / "missing.json")
    with pytest.raises(InvalidInputError, match="inverse_model"):
        IBISettings(initial_guess="inverse")


def _target(pairs, k):
    return cg_stage.make_target(rdf_r_nm=pairs["r_nm"], rdf_g=pairs["g"][k],
                                density_kg_m3=float(pairs["density_kg_m3"][k]),
                                pressure_bar=float(pairs["pressure_bar"][k]),
                                pressure_err_bar=0.0, temperature_k=T)


def test_inverse_is_ibi_initial_guess(pairs, split, model, tmp_path):
    path = tmp_path / "inverse.json"
    model.save(path)
    preset = get_cg_preset("reference")
    k = int(split[1][0])
    target = _target(pairs, k)
    settings = cg_stage.make_settings(
        IBISettings(initial_guess="inverse", inverse_model=str(path)), target, preset)
    pot = initial_ibi_potential(target, settings, preset)
    expected = model.predict_energy(pairs["g"][k], target.density_kg_m3, T, BEAD_MASS_G_MOL,
                                    target.pressure_bar)
    assert np.allclose(pot.u_kj_mol, expected, rtol=1e-9, atol=1e-9)
    short = settings.replace(cutoff_nm=1.0)
    with pytest.raises(InvalidInputError, match="inverse_model"):
        initial_ibi_potential(target, short, preset)
    # a longer cutoff: the inverse's potential up to its own cutoff, 0 beyond
    r_long = np.round(np.arange(0.1, 1.5 + 1e-9, 0.01), 6)
    g_long = np.concatenate([pairs["g"][k], np.ones(r_long.size - pairs["r_nm"].size)])
    long = model.predict_potential_on(r_long, g_long, target.density_kg_m3, T,
                                      BEAD_MASS_G_MOL, target.pressure_bar)
    n = pairs["r_nm"].size
    assert np.allclose(long.u_kj_mol[:n], expected, rtol=1e-9, atol=1e-9)
    assert np.all(long.u_kj_mol[n:] == 0.0) and np.allclose(long.f_kj_mol_nm[n - 1:], 0.0,
                                                            atol=1e-12)
    with pytest.raises(InvalidInputError, match="does not begin with"):
        model.predict_potential_on(r_long[1:], g_long[1:], target.density_kg_m3, T,
                                   BEAD_MASS_G_MOL, target.pressure_bar)


@pytest.mark.engine
@pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed")
def test_closed_loop_on_a_held_out_pair(pairs, split, model, tmp_path):
    """The inverse's potential, simulated, gives the held-out pair's RDF more closely than
    the PMF does (the same seed for both)."""
    k = int(split[1][1])
    r, rho = pairs["r_nm"], float(pairs["density_kg_m3"][k])
    dev = {}
    for name, u in (("pmf", baseline_potential("pmf", r, pairs["g"][k], rho, T,
                                               BEAD_MASS_G_MOL)),
                    ("inverse", _predict(model, pairs, np.array([k]))[0])):
        pair = synthetic.run_pair(FamilySample(r, u, rho, -1), tmp_path / name,
                                  get_cg_preset("reference"), seed=99)
        dev[name] = rdf_deviation(r, pair.g, pairs["g"][k])
    assert dev["inverse"] < 0.5 * dev["pmf"], dev


def test_the_inverse_route_of_predict_goes_through_the_predicted_target_structure(tmp_path):
    """``predict_potentials``' structure-inverse route: the RDF model's g_t, density and
    pressure for a set, through the shipped inverse, give a simulation-ready potential
    that is what the inverse makes of that predicted structure; without a covering
    inverse the route is absent."""
    from cgflow.ml.predict import inverse_route, predict_potentials
    from cgflow.ml.rdf_model import AATargets
    from cgflow.ml.training import train_all
    from cgflow.params import ParameterSet

    ds = CampaignDataset.load_npz(DATA / "dataset.npz")
    report = train_all(ds, seed=0, aa_targets=AATargets.from_export(DATA))
    models = report.models
    ps = ParameterSet.from_array(ds.X[0])
    pred = predict_potentials(models, ps)
    assert pred.U_structure_inverse is not None and pred.g_target is not None
    u, f = pred.U_structure_inverse, pred.F_structure_inverse
    assert u.shape == pred.r_nm.shape == f.shape
    assert np.all(np.isfinite(u)) and u[-1] == 0.0 and f[-1] == pytest.approx(0.0)
    assert u.min() < 0 and np.all(np.diff(u[:5]) < 0)
    inv = StructureInverse.load(ROOT / "cgflow" / "ml" / "models"
                                / "inverse_234trimepe_298K.json")
    g = np.interp(pred.r_nm, pred.rdf_r_nm, pred.g_target)
    direct = inv.predict_potential_on(pred.r_nm, np.clip(g, 0, None), pred.density_kg_m3, T,
                                      BEAD_MASS_G_MOL, pred.pressure_bar)
    assert np.array_equal(direct.u_kj_mol, u)
    # cgflow predict's files: the route's tables, recommended, and its table runs in lmp
    from cgflow.stages.predict import write_prediction

    write_prediction(pred, tmp_path)
    summary = json.loads((tmp_path / f"{ps.id}-prediction.json").read_text())
    assert summary["recommended_structure_route"] == "structure-inverse"
    assert "structure-inverse" in summary["routes"]
    if shutil.which("lmp"):
        from plain_lammps import run_snippet_in_plain_lammps

        pair = (tmp_path / f"{ps.id}-structure-inverse.in.pair").read_text()
        run_snippet_in_plain_lammps(pair, tmp_path)
    # another bead mass (another molecule): the shipped inverse does not cover it
    assert predict_potentials(models, ps, mass_g_mol=86.18).U_structure_inverse is None
    assert inverse_route(pred.r_nm[10:], pred.rdf_r_nm, pred.g_target, 700.0, 1.0,
                         temperature_k=T, mass_g_mol=BEAD_MASS_G_MOL) is None
