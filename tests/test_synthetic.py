"""The potential family and the synthetic structure-potential pairs (real LAMMPS)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import cumulative_simpson

from cgflow.errors import InvalidInputError
from cgflow.ibi.iteration import ibi_grid
from cgflow.ibi.potential import spline_forces
from cgflow.ml.potential_family import FamilySettings, PotentialFamily
from cgflow.presets import get_cg_preset
from cgflow.stages import synthetic

DATA = Path(__file__).resolve().parents[1] / "data" / "reference"


@pytest.fixture(scope="module")
def family() -> PotentialFamily:
    return synthetic.reference_family(DATA)


def test_family_is_seeded_and_spans_the_anchors(family):
    a, b = family.sample(20, seed=3), family.sample(20, seed=3)
    c = family.sample(20, seed=4)
    assert all(np.array_equal(x.u_kj_mol, y.u_kj_mol) for x, y in zip(a, b, strict=True))
    assert not np.allclose(a[0].u_kj_mol, c[0].u_kj_mol)
    assert len({s.anchor for s in a}) > 5
    rho = np.array([s.density_kg_m3 for s in a])
    anchors = family.anchor_density_kg_m3[[s.anchor for s in a]]
    assert np.all(np.abs(np.log(rho / anchors)) < 0.5)
    assert not np.allclose(rho, anchors)


def test_family_potentials_are_simulation_ready(family):
    rep = family.representation
    c = rep.core_end_index_
    for s in family.sample(30, seed=11):
        u = s.u_kj_mol
        assert np.all(np.isfinite(u))
        assert u[-1] == pytest.approx(0.0, abs=1e-12)
        f = rep.forces(u)
        assert f[-1] == pytest.approx(0.0, abs=1e-9)
        # the forces are -dU/dr: their integral from the cutoff gives the energies back
        # (checked where the liquid samples the potential, U <= 10 kJ/mol)
        w = np.arange(u.size) >= np.flatnonzero(u > 10.0).max(initial=-1) + 1
        u_back = cumulative_simpson(f[w], x=s.r_nm[w], initial=0.0)
        assert np.allclose(u_back[-1] - u_back, u[w], atol=0.05)  # 0.02 kT
        # the table the engine gets (not-a-knot spline) has a small force at the cutoff
        assert abs(spline_forces(s.r_nm, u)[-1]) < 0.5
        assert np.all(np.diff(u[: c + 1]) < 0), "repulsive core not monotonic"
        assert u.min() < 0, "no attractive well"


def test_family_refuses_bad_input(family):
    with pytest.raises(InvalidInputError, match="density_kg_m3"):
        PotentialFamily(family.r_nm, np.zeros((3, family.r_nm.size)) + 1.0, [700.0, -1.0, 5.0])
    with pytest.raises(InvalidInputError, match="bump_width_nm"):
        FamilySettings(bump_width_nm=(0.1, 0.01))
    with pytest.raises(InvalidInputError, match="coefficient_scale"):
        FamilySettings(coefficient_scale=float("nan"))


@pytest.mark.engine
@pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed")
def test_pairs_are_sampled_by_the_cg_engine(family, tmp_path):
    preset = get_cg_preset("tiny")
    assert np.allclose(family.r_nm, ibi_grid(synthetic.synthetic_settings(preset), preset))
    pairs = synthetic.run_pairs(family, 2, seed=5, workdir=tmp_path, cg_preset=preset, start=3)
    samples = family.sample(5, seed=5)[3:]
    assert not list(tmp_path.iterdir()), "run directories left behind"
    for pair, s in zip(pairs, samples, strict=True):
        assert np.array_equal(pair.u_kj_mol, s.u_kj_mol)
        assert pair.density_kg_m3 == s.density_kg_m3
        assert pair.g.shape == family.r_nm.shape
        assert np.all(pair.g[:5] < 0.01), "beads overlap inside the repulsive core"
        assert pair.g.max() > 1.2
        # (no g -> 1 check: a strongly attractive potential at a low density separates
        # into liquid and vapour in the NVT box, and g stays below 1 at long range)
        assert np.all(np.isfinite(pair.g)) and np.all(pair.g >= 0)
        assert np.isfinite(pair.pressure_bar) and pair.pressure_err_bar > 0
        again = synthetic.SyntheticPair.from_dict(pair.to_dict())
        assert np.array_equal(again.g, pair.g) and again.seed == pair.seed
    assert pairs[0].seed != pairs[1].seed
    assert not np.allclose(pairs[0].g, pairs[1].g)
