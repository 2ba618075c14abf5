"""End-to-end IBI and CG production with LAMMPS on a small system.

Closed test: a target RDF and pressure are sampled with a known pair potential (a
Lennard-Jones-like table, sigma = 0.6 nm, epsilon = 3 kJ/mol, at the number density of
liquid 234TriMePe); IBI started from the potential of mean force must approach them.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cgflow.ibi.iteration import ibi_grid
from cgflow.ibi.potential import TabulatedPotential, switching_function
from cgflow.ibi.production import acceleration_factor, finish_production, prepare_production
from cgflow.ibi.settings import IBISettings, IBITarget
from cgflow.jobs.lammps.job import run_lammps
from cgflow.presets import CGPreset
from cgflow.stages import cg as cg_stage

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed"),
]

T = 298.15
DENSITY = 723.0  # kg/m^3

PRESET = CGPreset(
    name="closed-loop", n_beads=216, dt_fs=5.0, equilibration_ps=5.0, ibi_sampling_ps=30.0,
    production_ps=30.0, dump_interval_ps=0.5, rcut_nm=1.2, n_blocks=3, sample_every_steps=20,
    restart_interval_ps=10.0, max_ibi_iterations=4,
)


def reference_potential(settings: IBISettings) -> TabulatedPotential:
    r = ibi_grid(settings, PRESET)
    u = 4 * 3.0 * ((0.6 / r) ** 12 - (0.6 / r) ** 6)
    return TabulatedPotential.from_energy(r, (u - u[-1]) * switching_function(r, r[-1], 0.1))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """RDF and pressure of the reference potential (longer sampling than IBI's)."""
    settings = IBISettings()
    pot = reference_potential(settings)
    r = ibi_grid(settings, PRESET)
    dummy = IBITarget(r_nm=r, g=np.ones_like(r), density_kg_m3=DENSITY, pressure_bar=0.0,
                      temperature_k=T)
    longer = PRESET.model_copy(update={"ibi_sampling_ps": 60.0})
    res, _ = cg_stage.run_iteration(tmp_path_factory.mktemp("reference"), 0, pot, dummy,
                                    settings, longer, previous=None, seed=101)
    target = IBITarget(r_nm=res.r_nm, g=res.g, density_kg_m3=DENSITY,
                       pressure_bar=res.pressure_bar, pressure_err_bar=res.pressure_err_bar,
                       temperature_k=T)
    return pot, target


def test_ibi_recovers_a_known_potential(reference, tmp_path):
    ref_pot, target = reference
    assert target.g.max() > 2.0  # a dense, structured liquid
    settings = IBISettings(rdf_tolerance=0.02, pressure_tolerance_bar=60.0, max_iterations=4)
    # the campaign's loop: monitor and Custodian included
    results = cg_stage.run_ibi(target, settings, PRESET, tmp_path, seed_base=7).results
    devs = [res.rdf_deviation for res in results]
    # the PMF is a poor potential for a dense liquid; IBI improves on it quickly
    assert devs[0] > 0.05
    assert min(devs[1:]) < 0.5 * devs[0]
    assert min(devs) < 0.035
    last = results[-1]
    assert abs(last.pressure_deviation_bar) < abs(results[0].pressure_deviation_bar)
    # the recovered potential has its well where the reference has it
    pot = last.potential
    r = pot.r_nm
    well = (r > 0.55) & (r < 0.9)
    r_min = r[well][np.argmin(pot.u_kj_mol[well])]
    r_ref = r[well][np.argmin(ref_pot.u_kj_mol[well])]
    assert abs(r_min - r_ref) <= 0.04
    # each iteration leaves its files and the state for finish_iteration
    assert (tmp_path / "iter_000" / "rdf.dat").exists()
    assert (tmp_path / "iter_000" / "ibi_state.json").exists()


def test_production_gives_a_diffusion_coefficient(reference, tmp_path):
    ref_pot, target = reference
    prep = prepare_production(tmp_path, ref_pot, target, IBISettings(), PRESET, seed=3)
    run_lammps(prep.workdir, prep.input_file.name, settings=prep.lammps_settings)
    res = finish_production(prep.workdir)
    d = res.diffusion
    # beads of 114 g/mol in a dense LJ-like liquid: D of order 1e-3 nm^2/ps
    assert 1e-4 < d.d_nm2_ps < 2e-2
    assert d.n_beads == 216 and d.n_frames >= 50
    assert abs(res.temperature_k - T) < 15.0
    assert res.pressure_bar == pytest.approx(target.pressure_bar, abs=150.0)
    alpha, err = acceleration_factor(d.d_nm2_ps, d.d_err_nm2_ps, 1e-3, 1e-4)
    assert alpha > 0 and err > 0
