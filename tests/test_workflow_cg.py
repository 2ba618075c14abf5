"""The CG stage through FireWorks with real LAMMPS runs: a diverging IBI is caught and
corrected by the monitor; an IBI that cannot converge ends marked unconverged with its
history and reason, and the campaign still completes.

The all-atom target is made, not simulated: the RDF and pressure of a known
Lennard-Jones-like potential, stored as a completed AA run of the OPLS-AA reference set
(the AA Fireworks reuse it, as they reuse any stored run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cgflow.db.store import Store
from cgflow.ibi.iteration import ibi_grid
from cgflow.ibi.potential import TabulatedPotential, switching_function
from cgflow.ibi.settings import IBISettings, IBITarget
from cgflow.orchestration.status import campaign_status
from cgflow.params import OPLSAA_REFERENCE
from cgflow.presets import get_cg_preset
from cgflow.stages import cg as cg_stage

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed"),
]

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def lj_target(workdir: Path) -> IBITarget:
    preset = get_cg_preset("tiny")
    settings = IBISettings(cutoff_nm=preset.rcut_nm)
    r = ibi_grid(settings, preset)
    u = 4 * 3.0 * ((0.6 / r) ** 12 - (0.6 / r) ** 6)
    pot = TabulatedPotential.from_energy(r, (u - u[-1]) * switching_function(r, r[-1], 0.1))
    dummy = IBITarget(r_nm=r, g=np.ones_like(r), density_kg_m3=723.0, pressure_bar=0.0,
                      temperature_k=298.15)
    res, _ = cg_stage.run_iteration(workdir, 0, pot, dummy, settings, preset, previous=None,
                                    seed=5)
    return IBITarget(r_nm=res.r_nm, g=res.g, density_kg_m3=723.0,
                     pressure_bar=res.pressure_bar, pressure_err_bar=res.pressure_err_bar,
                     temperature_k=298.15)


def store_aa_run(store: Store, campaign: str, target: IBITarget) -> None:
    ps = OPLSAA_REFERENCE
    store.upsert_parameter_set(ps, campaign, "narrow")
    run = store.start_aa_run(ps.id, campaign, "tiny", "/nonexistent/aa",
                             preset_settings={"temperature_k": 298.15})
    lag = np.linspace(0.0, 10.0, 21)
    store.complete_aa_run(run.id, {
        "density_kg_m3": target.density_kg_m3, "density_err_kg_m3": 2.0,
        "pressure_bar": target.pressure_bar, "pressure_err_bar": 20.0, "temperature_k": 298.15,
        "temperature_err_k": 0.3, "box_length_nm": 2.56, "n_molecules": 64,
        "production_ps": 10.0, "rdf_r_nm": target.r_nm.tolist(), "rdf_g": target.g.tolist(),
        "rdf_n_frames": 50, "msd_lag_ps": lag.tolist(), "msd_nm2": (6e-3 * lag).tolist(),
        "d_nm2_ps": 1e-3, "d_err_nm2_ps": 1e-4, "d_xyz_nm2_ps": [1e-3] * 3,
        "d_fit_start_ps": 2.0, "d_fit_end_ps": 8.0,
    }, timings={"prod": {"wall_s": 1.0}})


def test_diverging_ibi_is_corrected_then_ends_unconverged_and_the_campaign_completes(
        launchpad, launchpad_file, tmp_path, monkeypatch):
    """Provoked divergence: a fixed update factor of 2 overshoots more at every step. The
    monitor diagnoses divergence, damps the factor and restarts from the best iteration
    (the next Firework runs corrected); a tolerance no sampled RDF meets then makes the
    set end unconverged at the iteration limit, and the campaign completes."""
    monkeypatch.setenv("CGFLOW_WORK_ROOT", str(tmp_path / "runs"))
    target = lj_target(tmp_path / "target")
    with Store.from_launchpad(launchpad) as store:
        store_aa_run(store, "stuck", target)
    spec = tmp_path / "spec.yaml"
    # from the potential of mean force, far from the target, a fixed factor of 2 diverges
    # (the default learned-inverse start is too close to the target for that)
    spec.write_text("name: stuck\nn_sets: 0\ninclude_reference: true\npreset: tiny\n"
                    "threads: 1\ncg_stage: true\n"
                    "ibi: {rdf_tolerance: 0.0001, max_iterations: 6, update_factor: 2.0,\n"
                    "      adaptive_factor: false, initial_guess: pmf}\n")
    env = dict(os.environ)
    for args in (["campaign", "submit", str(spec)], ["launch", "--campaign", "stuck"]):
        r = subprocess.run([str(VENV_BIN / "cgflow"), *args, "-l", str(launchpad_file)],
                           capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
        assert r.returncode == 0, r.stdout + r.stderr

    wf = launchpad.workflows.find_one({"metadata.cgflow_campaign": "stuck"})
    assert wf["state"] == "COMPLETED"
    with Store.from_launchpad(launchpad) as store:
        its = store.ibi_iterations(OPLSAA_REFERENCE.id, "tiny")
        assert [it.iteration for it in its] == list(range(6))
        corrected = [it for it in its if it.monitor.get("correction") == "divergence"]
        assert corrected, [it.monitor for it in its]
        first = corrected[0]
        before = [it for it in its if it.iteration < first.iteration]
        best = min(before, key=lambda it: it.monitor["rdf_deviation"])
        # damped, and started again from the best potential so far
        assert first.monitor["update_factor"] == pytest.approx(1.0)
        assert first.monitor["restarted_from"] == best.iteration
        assert first.potential.u_kj_mol == pytest.approx(best.potential.u_kj_mol)
        assert first.metrics["rdf_deviation"] < before[-1].metrics["rdf_deviation"]

        pot = store.get_potential(OPLSAA_REFERENCE.id, "tiny")
        assert pot is not None and pot.converged is False and pot.n_iterations == 6
        assert len(pot.metrics_history) == 6 and pot.best_iteration is not None
        assert "after 6 iterations" in pot.reason, pot.reason
        cg = store.get_cg_run(OPLSAA_REFERENCE.id, "tiny")
        assert cg is None or cg.status != "completed"  # never a production as converged
        (s,) = campaign_status(launchpad, store, "stuck").sets
        assert s.stage == "unconverged" and s.detail == pot.reason
