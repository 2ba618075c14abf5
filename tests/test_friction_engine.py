"""Friction thermostats in real LAMMPS runs: the input writer's thermostat lines, D
falling with gamma at an unchanged structure, the DPD thermostat where LAMMPS has
DPD-BASIC (a clear error where it has not), and the exported snippet with the stored
damping running in a plain ``lmp``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from plain_lammps import run_snippet_in_plain_lammps
from test_cli_potentials import lj_potential, store_set

from cgflow.cli.potentials import export_potential, select_potentials
from cgflow.engines import lammps
from cgflow.errors import EngineError, InvalidInputError
from cgflow.ibi.friction import structure_check
from cgflow.ibi.iteration import ibi_grid
from cgflow.ibi.potential import TabulatedPotential, switching_function
from cgflow.ibi.production import finish_production, prepare_production
from cgflow.ibi.settings import IBISettings, IBITarget
from cgflow.jobs.lammps.job import run_lammps
from cgflow.params import OPLSAA_REFERENCE
from cgflow.presets import get_cg_preset

needs_lmp = pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed")
PRESET = get_cg_preset("tiny")
SETTINGS = IBISettings(cutoff_nm=PRESET.rcut_nm, temperature_k=298.15)


def settings(**kw) -> lammps.LammpsRunSettings:
    return lammps.LammpsRunSettings(stage="production", temperature_k=298.15, dt_fs=5.0,
                                    equilibration_steps=100, run_steps=1000, rcut_nm=1.2,
                                    table_points=500, **kw)


def test_thermostat_lines_of_the_input(tmp_path: Path):
    text = lammps.write_input(tmp_path / "nh", settings()).read_text()
    assert "fix integrate all nvt temp 298.15 298.15 5000" in text and "rdf" not in text
    text = lammps.write_input(tmp_path / "lg", settings(thermostat="langevin",
                                                        friction_per_ps=4.0,
                                                        sample_rdf=True)).read_text()
    assert "fix thermostat all langevin 298.15 298.15 250 3 zero yes gjf vhalf" in text
    assert "compute rdf all rdf 120" in text
    # the table's pair_coeff stays the first (the handlers read it), DPD overlays it later
    text = lammps.write_input(tmp_path / "dpd", settings(thermostat="dpd",
                                                         dpd_gamma_g_mol_ps=10.0)).read_text()
    lines = text.splitlines()
    assert lines.index("pair_style table linear 500") < next(
        i for i, ln in enumerate(lines) if ln.startswith("pair_style hybrid/overlay"))
    assert f"pair_coeff 1 1 dpd/tstat {lammps.dpd_gamma_lammps(10.0):.10g} 12" in text
    assert lammps.dpd_gamma_lammps(1.0) == pytest.approx(1000 / 4.184 / 100)
    with pytest.raises(InvalidInputError, match="friction_per_ps"):
        settings(thermostat="langevin")
    with pytest.raises(InvalidInputError, match="'thermostat'"):
        lammps.LammpsRunSettings(stage="ibi", temperature_k=298.15, dt_fs=5.0,
                                 equilibration_steps=0, run_steps=100, rcut_nm=1.2,
                                 table_points=10, thermostat="langevin", friction_per_ps=1.0)


def lj() -> tuple[TabulatedPotential, IBITarget]:
    r = ibi_grid(SETTINGS, PRESET)
    u = 4 * 3.0 * ((0.6 / r) ** 12 - (0.6 / r) ** 6)
    pot = TabulatedPotential.from_energy(r, (u - u[-1]) * switching_function(r, r[-1], 0.1))
    return pot, IBITarget(r_nm=r, g=np.ones_like(r), density_kg_m3=723.0, pressure_bar=0.0,
                          temperature_k=298.15)


def production(workdir: Path, **kw):
    pot, target = lj()
    prep = prepare_production(workdir, pot, target, SETTINGS, PRESET, seed=3,
                              production_ps=50.0, **kw)
    run_lammps(prep.workdir, prep.input_file.name, settings=prep.lammps_settings)
    return finish_production(prep.workdir)


@pytest.mark.engine
@needs_lmp
def test_friction_slows_diffusion_and_keeps_the_structure(tmp_path: Path):
    free = production(tmp_path / "free")
    damped = production(tmp_path / "damped", thermostat="langevin", friction_per_ps=3.0)
    assert free.rdf_g is not None and damped.rdf_g is not None
    assert damped.diffusion.d_nm2_ps < 0.6 * free.diffusion.d_nm2_ps
    check = structure_check(damped.rdf_r_nm, damped.rdf_g, damped.rdf_g_err, free.rdf_r_nm,
                            free.rdf_g, free.rdf_g_err, pressure_bar=damped.pressure_bar,
                            pressure_err_bar=damped.pressure_err_bar,
                            pressure0_bar=free.pressure_bar,
                            pressure0_err_bar=free.pressure_err_bar, sigma=3.0)
    assert check.rdf_passed, check
    assert abs(damped.temperature_k - 298.15) < 6.0


@pytest.mark.engine
@needs_lmp
def test_dpd_thermostat_where_lammps_has_it(tmp_path: Path):
    if "DPD-BASIC" not in lammps.lammps_packages():
        with pytest.raises(EngineError, match="DPD-BASIC.*CGFLOW_LMP"):
            production(tmp_path / "dpd", thermostat="dpd", dpd_gamma_g_mol_ps=50.0)
        assert not (tmp_path / "dpd" / lammps.INPUT_FILE).exists()
        return
    free = production(tmp_path / "free")
    dpd = production(tmp_path / "dpd", thermostat="dpd", dpd_gamma_g_mol_ps=200.0)
    assert dpd.diffusion.d_nm2_ps < free.diffusion.d_nm2_ps
    assert abs(dpd.temperature_k - 298.15) < 6.0


@pytest.mark.engine
@needs_lmp
def test_exported_snippet_runs_with_the_stored_damping(store, tmp_path: Path):
    store_set(store, OPLSAA_REFERENCE, "c1", True, 3.0)
    r = lj_potential().r_nm.tolist()
    store.save_friction({
        "param_id": OPLSAA_REFERENCE.id, "campaign": "c1", "preset": "tiny",
        "status": "converged", "converged": True, "reason": "converged at trial 2",
        "friction_per_ps": {"mean": 4.0, "err": 0.3}, "langevin_damp_fs": 250.0,
        "d_cg_nm2_ps": {"mean": 1.02e-3, "err": 3e-5}, "d_aa_nm2_ps": {"mean": 1e-3, "err": 1e-4},
        "d_cg0_nm2_ps": {"mean": 3e-3, "err": 1e-4}, "n_trials": 2, "best_trial": 2,
        "rdf": {"r_nm": r, "g": [1.0] * len(r), "n_frames": 0}, "temperature_k": 298.15,
    })
    (row,) = select_potentials(store, campaign="c1", converged=True)
    assert row.view.gamma == 4.0 and row.view.gamma_err == 0.3
    files = export_potential(row, tmp_path)
    snippet = next(f for f in files if f.name.endswith(".in.lammps")).read_text()
    assert "fix thermostat all langevin 298.15 298.15 250 " in snippet
    assert "mass 1 114.23" in snippet and "calibrated, +- 0.3" in snippet
    log = run_snippet_in_plain_lammps(snippet, tmp_path, nve=False)
    assert "fix thermostat all langevin 298.15 298.15 250" in log
    # the pair-only snippet is unchanged
    pair = next(f for f in files if f.name.endswith(".in.pair")).read_text()
    assert "langevin" not in pair and "pair_style table" in pair


@pytest.mark.engine
@needs_lmp
def test_closed_loop_route_potential_plus_predicted_friction(tmp_path: Path):
    from test_workflow_cg import lj_target

    from cgflow.cli.validate import format_validations
    from cgflow.db.documents import ValidationDoc
    from cgflow.ml.predict import Prediction
    from cgflow.stages import cg as cg_stage
    from cgflow.stages.validate import validate_prediction

    target = lj_target(tmp_path / "target")
    pot, _ = lj()
    pred = Prediction(param_id=OPLSAA_REFERENCE.id, r_nm=pot.r_nm, U_structure=pot.u_kj_mol,
                      F_structure=pot.f_kj_mol_nm, U_dynamics=None, F_dynamics=None,
                      alpha=3.0, alpha_std=0.5, friction=3.0, friction_std=0.4,
                      U_structure_inverse=pot.u_kj_mol * 0.9,
                      F_structure_inverse=pot.f_kj_mol_nm * 0.9)
    st = cg_stage.make_settings(None, target, PRESET)
    out = validate_prediction(tmp_path / "v", pred, target, st, PRESET, d_aa=1e-3,
                              d_aa_err=1e-4)
    fr = out["friction"]
    assert fr["friction_per_ps"] == 3.0 and fr["friction_std"] == 0.4
    assert fr["d_cg"] < 0.6 * out["structure"]["d_cg"]  # the friction slows it
    assert fr["d_rel_error"] == pytest.approx(fr["d_cg"] / 1e-3 - 1)
    assert fr["rdf_deviation"] < 0.05  # the potential's own structure
    doc = ValidationDoc.validated({"models_campaign": "m", "models_dataset_hash": "h",
                                   "param_id": OPLSAA_REFERENCE.id, "preset": "tiny", **out})
    table = format_validations([doc])
    assert f"{100 * fr['d_rel_error']:+.0f} %" in table.splitlines()[-1]
    # the route through the inverse is simulated on its own: a weaker well, its own RDF
    inv = doc.structure_inverse
    assert inv is not None and inv["rdf_deviation"] != out["structure"]["rdf_deviation"]
    assert inv["d_rescaled"] == pytest.approx(inv["d_cg"] / 3.0)
    assert f"{inv['rdf_deviation']:.3f}" in table.splitlines()[-1]
