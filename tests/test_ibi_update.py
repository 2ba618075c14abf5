"""IBI science on arrays: PMF, update rule, pressure correction, metrics, settings, export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cgflow import units
from cgflow.errors import InvalidInputError
from cgflow.ibi import export
from cgflow.ibi.iteration import IBI_STATE_FILE, finish_iteration
from cgflow.ibi.metrics import pressure_deviation, rdf_deviation
from cgflow.ibi.potential import (
    TabulatedPotential,
    extrapolate_core,
    first_reliable_index,
    initial_potential,
    potential_grid,
    switching_function,
)
from cgflow.ibi.production import acceleration_factor
from cgflow.ibi.settings import IBISettings, IBITarget, IterationResult
from cgflow.ibi.update import (
    adapt_factor,
    ibi_update,
    pressure_correction,
    ramp_shape,
    virial_pressure_bar,
)
from cgflow.presets import CGPreset

T = 298.15
KT = units.kt_kj_mol(T)
NORMAL_RUN = Path(__file__).parent / "data" / "ibi" / "normal_run"


def synthetic_rdf(r: np.ndarray, shift: float = 0.0, amp: float = 1.0) -> np.ndarray:
    """A liquid-like RDF: zero core, damped oscillation around 1."""
    x = r - 0.55 - shift
    g = 1.0 + amp * 1.6 * np.exp(-x / 0.25) * np.cos(2 * np.pi * x / 0.55)
    g = np.where(x > 0, g, (1.0 + amp * 1.6) * np.exp(-((x / 0.04) ** 2)))
    return np.clip(g, 0.0, None)


@pytest.fixture
def grid() -> np.ndarray:
    return potential_grid(0.1, 1.5, 0.01)


# --- potentials ------------------------------------------------------------------------------


def test_potential_grid_and_errors():
    r = potential_grid(0.1, 1.5, 0.01)
    assert r.size == 141 and r[0] == pytest.approx(0.1) and r[-1] == pytest.approx(1.5)
    with pytest.raises(InvalidInputError, match="multiple"):
        potential_grid(0.1, 1.505, 0.01)


def test_switching_function_is_smooth_step(grid):
    s = switching_function(grid, 1.5, 0.1)
    assert np.all(s[grid <= 1.4 + 1e-9] == 1.0)
    assert s[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(s) <= 1e-12)
    h = 1e-4  # zero slope at both ends of the switching region
    ends = switching_function(np.array([1.4, 1.4 + h, 1.5 - h, 1.5]), 1.5, 0.1)
    assert abs(ends[1] - ends[0]) / h < 1e-3 and abs(ends[3] - ends[2]) / h < 1e-3


def test_initial_potential_is_pmf_with_core_and_tail(grid):
    g = synthetic_rdf(grid)
    pot = initial_potential(grid, g, T, smoothing_window=0)
    i0 = first_reliable_index(g, 0.02)
    mid = (grid >= grid[i0]) & (grid < 1.35)
    u_pmf = -KT * np.log(g[mid])
    np.testing.assert_allclose(pot.u_kj_mol[mid], u_pmf - (-KT * np.log(g[-1])), atol=1e-9)
    # steep monotonic core
    core = pot.u_kj_mol[: i0 + 1]
    assert np.all(np.diff(core) < 0)
    assert core[0] > 1e3 * KT
    # energy and force vanish at the cutoff
    assert pot.u_kj_mol[-1] == pytest.approx(0.0, abs=1e-12)
    assert abs(pot.f_kj_mol_nm[-1]) < 0.05
    # forces are -dU/dr
    fd = -np.gradient(pot.u_kj_mol, grid)
    sel = grid > 0.6
    np.testing.assert_allclose(pot.f_kj_mol_nm[sel], fd[sel], atol=0.05 * np.abs(fd[sel]).max())


def test_extrapolate_core_matches_value_and_slope():
    r = potential_grid(0.1, 1.0, 0.01)
    u = 0.3 * (0.6 / r) ** 12
    i0 = 40
    out = extrapolate_core(r, np.where(r < r[i0], 0.0, u), i0, T, n_fit=2)
    assert out[i0] == u[i0]
    # continuous value and (one-sided) slope at the junction
    left = (out[i0] - out[i0 - 1]) / 0.01
    right = (out[i0 + 1] - out[i0]) / 0.01
    assert left == pytest.approx(right, rel=0.25)
    assert np.all(np.diff(out[: i0 + 1]) < 0)


def test_tabulated_potential_dict_round_trip(grid):
    pot = initial_potential(grid, synthetic_rdf(grid), T)
    back = TabulatedPotential.from_dict(json.loads(json.dumps(pot.to_dict())))
    np.testing.assert_array_equal(back.u_kj_mol, pot.u_kj_mol)
    np.testing.assert_array_equal(back.f_kj_mol_nm, pot.f_kj_mol_nm)


# --- the update rule ---------------------------------------------------------------------------


def test_update_is_zero_when_rdfs_agree(grid):
    g = synthetic_rdf(grid)
    u0 = initial_potential(grid, g, T).u_kj_mol
    u1 = ibi_update(grid, u0, g, g, T, factor=1.0)
    np.testing.assert_allclose(u1, u0, rtol=0, atol=1e-9)


def test_update_sign_and_factor(grid):
    g_t = synthetic_rdf(grid)
    u0 = initial_potential(grid, g_t, T).u_kj_mol
    g_n = g_t.copy()
    hi = (grid > 0.9) & (grid < 1.0)   # too many neighbours here: more repulsive
    lo = (grid > 1.1) & (grid < 1.2)   # too few: more attractive
    g_n[hi] *= 1.1
    g_n[lo] *= 0.9
    du = ibi_update(grid, u0, g_n, g_t, T, smoothing_window=0) - u0
    np.testing.assert_allclose(du[hi], KT * np.log(1.1), rtol=1e-9)
    np.testing.assert_allclose(du[lo], KT * np.log(0.9), rtol=1e-9)
    half = ibi_update(grid, u0, g_n, g_t, T, factor=0.5, smoothing_window=0) - u0
    np.testing.assert_allclose(half[hi], 0.5 * du[hi], rtol=1e-9)
    # smoothing keeps the sign and the size of a broad change
    smooth = ibi_update(grid, u0, g_n, g_t, T, smoothing_window=5) - u0
    inner_hi = (grid > 0.92) & (grid < 0.98)
    assert np.all(smooth[inner_hi] > 0.8 * KT * np.log(1.1))


def test_update_vanishes_smoothly_at_cutoff(grid):
    g_t = synthetic_rdf(grid)
    u0 = initial_potential(grid, g_t, T).u_kj_mol
    u1 = ibi_update(grid, u0, g_t * 1.05, g_t, T)
    assert u1[-1] == pytest.approx(0.0, abs=1e-12)
    assert abs(u1[-2]) < 0.01 * KT


def test_update_extrapolates_core_where_unreliable(grid):
    g_t = synthetic_rdf(grid)
    g_n = synthetic_rdf(grid, shift=0.03)  # the CG core is too wide
    u0 = initial_potential(grid, g_t, T).u_kj_mol
    u1 = ibi_update(grid, u0, g_n, g_t, T)
    i0 = max(first_reliable_index(g_n, 0.02), first_reliable_index(g_t, 0.02))
    assert np.all(np.diff(u1[: i0 + 1]) < 0)
    # a too-wide core gets softer at the contact distance
    assert u1[i0] < u0[i0]


def test_update_rejects_mismatched_shapes(grid):
    g = synthetic_rdf(grid)
    with pytest.raises(InvalidInputError, match="shapes"):
        ibi_update(grid, np.zeros(5), g, g, T)
    with pytest.raises(InvalidInputError, match="factor"):
        ibi_update(grid, np.zeros_like(g), g, g, T, factor=0.0)


# --- pressure -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["virial", "simple"])
def test_pressure_correction_sign(grid, method):
    g = synthetic_rdf(grid)
    rho = units.number_density_nm3(723.0, 114.23)
    too_high = pressure_correction(grid, 800.0, 1.0, T, method=method, g=g, density_nm3=rho)
    too_low = pressure_correction(grid, -500.0, 1.0, T, method=method, g=g, density_nm3=rho)
    assert too_high[0] < 0 < too_low[0]  # attractive ramp lowers the pressure
    assert too_high[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(too_high) >= -1e-12)  # monotonic ramp to zero
    if method == "simple":
        assert abs(too_high[0]) <= 0.1 * KT + 1e-12


def test_virial_pressure_correction_cancels_first_order_error(grid):
    g = synthetic_rdf(grid)
    rho = units.number_density_nm3(723.0, 114.23)
    du = pressure_correction(grid, 300.0, 1.0, T, method="virial", g=g, density_nm3=rho,
                             factor=1.0, max_amplitude_kt=100.0)
    dp = virial_pressure_bar(grid, np.gradient(du, grid), g, rho)
    assert dp == pytest.approx(-299.0, rel=1e-6)
    capped = pressure_correction(grid, 1e5, 1.0, T, method="virial", g=g, density_nm3=rho,
                                 max_amplitude_kt=1.0)
    assert capped[0] / ramp_shape(grid)[0] == pytest.approx(-KT)


def test_virial_pressure_of_a_known_potential():
    # ideal-gas-free check: U = c r^2 inside r_c, g = 1: -(2 pi/3) rho^2 int r^3 (2 c r) dr
    r = np.linspace(0.0, 1.0, 2001)
    c, rho = 2.0, 3.0
    p = virial_pressure_bar(r, 2 * c * r, np.ones_like(r), rho)
    exact = -(2 * np.pi / 3) * rho**2 * 2 * c / 5
    assert p == pytest.approx(exact * 16.6054, rel=1e-4)


# --- metrics and factor -------------------------------------------------------------------------


def test_rdf_deviation(grid):
    g = synthetic_rdf(grid)
    assert rdf_deviation(grid, g, g) == 0.0
    shifted = g + 0.1
    expected = 0.1 * (grid[-1] - grid[0]) / np.trapezoid(g, grid)
    assert rdf_deviation(grid, shifted, g) == pytest.approx(expected)
    assert rdf_deviation(grid, g - 0.1, g) == pytest.approx(expected)
    part = rdf_deviation(grid, shifted, g, r_max_nm=1.0)
    assert part == pytest.approx(0.1 * 0.9 / np.trapezoid(g[grid <= 1.0], grid[grid <= 1.0]))
    assert pressure_deviation(120.0, 1.0) == 119.0


def test_adapt_factor():
    assert adapt_factor(1.0, 0.05, None) == 1.0            # capped at the maximum
    assert adapt_factor(0.4, 0.05, 0.08) == pytest.approx(0.6)
    assert adapt_factor(1.0, 0.10, 0.08) == 0.5            # clearly worse: halve
    assert adapt_factor(1.0, 0.085, 0.08) == 1.0           # within noise: keep going
    assert adapt_factor(0.15, 0.2, 0.1, minimum=0.1) == 0.1


def test_acceleration_factor_propagates_relative_errors():
    alpha, err = acceleration_factor(6e-3, 3e-4, 1.5e-3, 1.5e-4)
    assert alpha == pytest.approx(4.0)
    assert err == pytest.approx(4.0 * np.hypot(0.05, 0.1))
    with pytest.raises(InvalidInputError, match="d_aa"):
        acceleration_factor(1.0, 0.1, 0.0, 0.1)
    with pytest.raises(InvalidInputError, match="d_cg_err"):
        acceleration_factor(1.0, -0.1, 1.0, 0.1)


# --- settings, target, results ----------------------------------------------------------------


def test_settings_and_target_validation(grid):
    with pytest.raises(InvalidInputError, match="rdf_tolerance"):
        IBISettings(rdf_tolerance=-1.0)
    with pytest.raises(InvalidInputError, match="r_min_nm"):
        IBISettings(r_min_nm=0.105)
    with pytest.raises(InvalidInputError, match="unknown"):
        IBISettings.from_dict({"temprature_k": 300})
    s = IBISettings(pressure_factor=0.5)
    assert IBISettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    with pytest.raises(InvalidInputError, match="density_kg_m3"):
        IBITarget(r_nm=grid, g=synthetic_rdf(grid), density_kg_m3=-1.0, pressure_bar=1.0,
                  temperature_k=T)
    with pytest.raises(InvalidInputError, match="'g'"):
        IBITarget(r_nm=grid, g=synthetic_rdf(grid)[:-1], density_kg_m3=723.0,
                  pressure_bar=1.0, temperature_k=T)
    t = IBITarget(r_nm=grid, g=synthetic_rdf(grid), density_kg_m3=723.0, pressure_bar=1.0,
                  temperature_k=T)
    assert t.number_density_nm3 == pytest.approx(3.812, rel=1e-3)
    assert IBITarget.from_dict(json.loads(json.dumps(t.to_dict()))).g.tolist() == t.g.tolist()


def test_finish_iteration_on_a_canned_run(tmp_path):
    """finish_iteration reads LAMMPS's block files: no engine needed."""
    work = tmp_path / "iter"
    shutil.copytree(NORMAL_RUN, work)
    preset = CGPreset(name="t", n_beads=216, equilibration_ps=1.0, ibi_sampling_ps=5.0,
                      production_ps=5.0, rcut_nm=1.2)
    s = IBISettings()
    r = potential_grid(0.1, 1.2, 0.01)
    u = 4 * 3.0 * ((0.6 / r) ** 12 - (0.6 / r) ** 6)
    pot = TabulatedPotential.from_energy(r, (u - u[-1]) * switching_function(r, 1.2, 0.1))
    (work / IBI_STATE_FILE).write_text(json.dumps({"iteration": 3, "seed": 1,
                                                   "potential": pot.to_dict()}))
    # target: the sampled RDF itself but a pressure 200 bar lower
    from cgflow.ibi.iteration import read_sampled_pressure, read_sampled_rdf
    rb, gb, _ = read_sampled_rdf(work)
    p, p_err = read_sampled_pressure(work)
    p_file = np.loadtxt(work / "pressure.dat")[:, 1]
    assert p == pytest.approx(units.atm_to_bar(p_file.mean()))
    target = IBITarget(r_nm=rb, g=gb, density_kg_m3=723.0, pressure_bar=p - 200.0,
                       temperature_k=T)
    res = finish_iteration(work, target, s, preset)
    assert res.iteration == 3 and res.rdf_deviation < 1e-9
    assert res.pressure_deviation_bar == pytest.approx(200.0)
    assert not res.converged and res.next_potential is not None
    assert res.pressure_ramp_amplitude_kj_mol < 0
    du = res.next_potential.u_kj_mol - pot.u_kj_mol
    i = np.searchsorted(r, 0.7)
    assert du[i] < 0 and abs(du[-1]) < 1e-12
    back = IterationResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.rdf_deviation == res.rdf_deviation
    np.testing.assert_array_equal(back.next_potential.u_kj_mol, res.next_potential.u_kj_mol)
    ok = finish_iteration(work, IBITarget(r_nm=rb, g=gb, density_kg_m3=723.0, pressure_bar=p,
                                          temperature_k=T), s, preset)
    assert ok.converged and ok.next_potential is None


# --- export --------------------------------------------------------------------------------------


def test_export_tables(tmp_path, grid):
    pot = initial_potential(grid, synthetic_rdf(grid), T)
    r, u, f = export.gromacs_table_arrays(pot, spacing_nm=0.002)
    assert r[0] == 0.0 and r[-1] == pytest.approx(2.5)
    assert np.all(np.isfinite(u)) and np.all(u[r > 1.5 + 1e-9] == 0)
    below = r < grid[0]
    np.testing.assert_allclose(np.diff(u[below]) / 0.002, -f[below][1:], rtol=1e-9)
    path = export.write_xvg_table(tmp_path / "table_CG_CG.xvg", r, u, f)
    cols = np.loadtxt(path)
    assert cols.shape == (r.size, 7) and np.all(cols[:, 1:5] == 0)
    r2, u2, f2 = export.read_xvg_table(path)
    np.testing.assert_allclose(u2, u, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(f2, f, rtol=1e-9, atol=1e-12)
    vpath = export.write_votca_table(tmp_path / "CG-CG.pot", pot.r_nm, pot.u_kj_mol)
    rows = [ln.split() for ln in vpath.read_text().splitlines() if not ln.startswith("#")]
    assert len(rows) == grid.size and all(row[2] == "i" for row in rows)
    assert float(rows[10][1]) == pytest.approx(pot.u_kj_mol[10])
    lr, lu, lf = pot.tabulate()
    lpath = export.write_lammps_table(tmp_path / "cg.table", lr, lu, lf, "CG_CG")
    assert "N " in lpath.read_text()
    with pytest.raises(InvalidInputError):
        export.write_votca_table(tmp_path / "x", grid[::-1], pot.u_kj_mol)


@pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed")
def test_prepare_iteration_checks_box_and_grid(tmp_path, grid):
    from cgflow.ibi.iteration import ibi_grid, prepare_iteration

    target = IBITarget(r_nm=grid, g=synthetic_rdf(grid), density_kg_m3=723.0,
                       pressure_bar=1.0, temperature_k=T)
    small = CGPreset(name="small", n_beads=100, equilibration_ps=1.0, ibi_sampling_ps=1.0,
                     production_ps=1.0, rcut_nm=1.5)
    s = IBISettings()
    pot = initial_potential(ibi_grid(s, small), synthetic_rdf(ibi_grid(s, small)), T)
    with pytest.raises(InvalidInputError, match="n_beads"):
        prepare_iteration(tmp_path / "a", pot, target, s, small, iteration=0, seed=1)
    ok = small.model_copy(update={"n_beads": 343})
    wrong = initial_potential(potential_grid(0.1, 1.2, 0.01),
                              synthetic_rdf(potential_grid(0.1, 1.2, 0.01)), T)
    with pytest.raises(InvalidInputError, match="grid"):
        prepare_iteration(tmp_path / "b", wrong, target, s, ok, iteration=0, seed=1)
    with pytest.raises(InvalidInputError, match="temperature_k"):
        prepare_iteration(tmp_path / "c", pot, target, IBISettings(temperature_k=350.0), ok,
                          iteration=0, seed=1)
    short = IBITarget(r_nm=grid[:100], g=synthetic_rdf(grid)[:100], density_kg_m3=723.0,
                      pressure_bar=1.0, temperature_k=T)
    with pytest.raises(InvalidInputError, match="cutoff"):
        prepare_iteration(tmp_path / "e", pot, short, s, ok, iteration=0, seed=1)
    prep = prepare_iteration(tmp_path / "d", pot, target, s, ok, iteration=2, seed=1)
    assert prep.command[prep.command.index("-in") + 1] == "in.lammps"
    for name in ("pair.table", "system.data", "in.lammps", IBI_STATE_FILE):
        assert (prep.workdir / name).exists()
    assert json.loads((prep.workdir / IBI_STATE_FILE).read_text())["iteration"] == 2


# --- Anderson acceleration ------------------------------------------------------------------


def test_anderson_solves_a_linear_fixed_point_problem_faster_than_plain_steps():
    """U* = A^-1 b with steps f(U) = b - A U (a damped linear 'IBI'): plain mixing
    converges slowly for an ill-conditioned A, Anderson mixing in a few steps."""
    from cgflow.ibi.update import anderson_step

    rng = np.random.default_rng(1)
    n = 40
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.linspace(0.05, 1.0, n)) @ q.T
    b = rng.normal(size=n)
    u_star = np.linalg.solve(a, b)

    def run(memory: int, steps: int = 12) -> float:
        us, fs = [np.zeros(n)], [b.copy()]
        for _ in range(steps):
            u_next, _ = anderson_step(us[-memory - 1:], fs[-memory - 1:],
                                      max_coefficient=1e6, regularisation=1e-10)
            us.append(u_next)
            fs.append(b - a @ u_next)
        return float(np.linalg.norm(us[-1] - u_star) / np.linalg.norm(u_star))

    plain, anderson = run(0), run(5)
    assert plain > 0.1  # plain steps are still far off
    assert anderson < 0.05 * plain and anderson < 0.02


def test_anderson_falls_back_to_the_plain_step():
    from cgflow.ibi.update import anderson_step

    u0, u1 = np.zeros(5), np.full(5, 0.1)
    f0, f1 = np.full(5, 0.1), np.full(5, 0.1000001)  # nearly equal steps: huge gamma
    plain = u1 + f1
    u, gamma = anderson_step([u0, u1], [f0, f1], max_coefficient=2.0, regularisation=1e-12)
    np.testing.assert_allclose(u, plain) and gamma.size == 0
    u, gamma = anderson_step([u1], [f1])
    np.testing.assert_allclose(u, plain) and gamma.size == 0
    with pytest.raises(InvalidInputError, match="potentials"):
        anderson_step([u0, u1], [f1])


def test_the_unbroken_chain_stops_at_a_restart():
    from cgflow.ibi.iteration import unbroken_chain

    r = np.linspace(0.1, 1.2, 12)
    pots = [TabulatedPotential.from_energy(r, np.full_like(r, float(k)) * (1.2 - r))
            for k in range(5)]

    def res(i, sampled, nxt):
        return IterationResult(iteration=i, potential=pots[sampled], r_nm=r, g=np.ones_like(r),
                               g_err=np.zeros_like(r), pressure_bar=0.0, pressure_err_bar=1.0,
                               rdf_deviation=0.1, pressure_deviation_bar=0.0, converged=False,
                               factor=1.0, next_potential=pots[nxt])

    chain = [res(0, 0, 1), res(1, 1, 2), res(2, 0, 3), res(3, 3, 4)]  # iteration 2 restarted
    assert [c.iteration for c in unbroken_chain(chain)] == [2, 3]
    assert [c.iteration for c in unbroken_chain(chain[:2])] == [0, 1]
