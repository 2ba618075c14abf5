"""Unwrapping, mean squared displacement, diffusion coefficient and Yeh-Hummer term."""

from __future__ import annotations

import numpy as np
import pytest

from cgflow.analysis import (
    DEFAULT_VISCOSITY_PA_S,
    BeadTrajectory,
    diffusion_coefficient,
    mean_squared_displacement,
    unwrap_positions,
    yeh_hummer_correction,
)
from cgflow.errors import InvalidInputError


def _walk(n_beads, n_frames, d_true, dt, box, seed, masses=None):
    """Gaussian random walk with diffusion coefficient d_true (nm^2/ps); unwrapped paths."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(scale=np.sqrt(2.0 * d_true * dt), size=(n_frames - 1, n_beads, 3))
    start = rng.random((1, n_beads, 3)) * box
    return np.concatenate([start, start + np.cumsum(steps, axis=0)])


def _traj(paths, box, dt, masses=None) -> BeadTrajectory:
    n_frames, n_beads, _ = paths.shape
    boxes = np.broadcast_to(np.asarray(box, dtype=float), (n_frames, 3)).copy()
    return BeadTrajectory(
        paths, boxes, np.arange(n_frames) * dt,
        np.ones(n_beads) if masses is None else masses,
    )


# --- unwrapping ----------------------------------------------------------------------------


def test_unwrap_recovers_repeated_crossings():
    t = np.arange(40)
    path = np.zeros((40, 2, 3))
    path[:, 0, 0] = 0.5 + 0.3 * t  # crosses a 2 nm box six times in +x
    path[:, 1, 1] = 1.0 - 0.45 * t  # and in -y, 0.45 nm per frame
    path[:, 1, 2] = 1.9 + 0.2 * np.sin(t)  # oscillates across the z boundary
    traj = _traj(path, 2.0, 1.0)
    assert traj.positions.max() < 2.0  # stored wrapped
    np.testing.assert_allclose(unwrap_positions(traj), path, atol=1e-12)


def test_unwrap_uses_the_current_box_when_the_box_changes():
    # the bead crosses +x between frames 1 and 2 while the box grows from 2.0 to 2.02 nm
    wrapped = np.array([[[1.85, 1.0, 1.0]], [[1.95, 1.0, 1.0]], [[0.03, 1.0, 1.0]]])
    boxes = np.array([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0], [2.02, 2.02, 2.02]])
    traj = BeadTrajectory(wrapped, boxes, np.arange(3.0), np.ones(1))
    u = unwrap_positions(traj)
    np.testing.assert_allclose(np.diff(u[:, 0, 0]), [0.1, 0.1], atol=1e-12)
    np.testing.assert_allclose(u[:, 0, 1:], 1.0)


# --- MSD -----------------------------------------------------------------------------------


def test_msd_matches_direct_average_over_origins():
    paths = _walk(7, 60, 0.01, 0.5, 2.0, seed=3)
    masses = np.linspace(10.0, 40.0, 7)
    traj = _traj(paths, 2.0, 0.5, masses)
    msd = mean_squared_displacement(traj, max_lag_fraction=0.5)
    assert msd.lag_ps.shape == (30,) and msd.msd_xyz_nm2.shape == (30, 3)
    np.testing.assert_allclose(msd.lag_ps, np.arange(30) * 0.5)
    com = np.einsum("fna,n->fa", paths, masses / masses.sum())
    rel = paths - com[:, None, :]
    for lag in (0, 1, 5, 29):
        disp = rel[lag:] - rel[: len(rel) - lag]
        direct = (disp**2).mean(axis=(0, 1))
        np.testing.assert_allclose(msd.msd_xyz_nm2[lag], direct, rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(msd.msd_nm2[lag], direct.sum(), rtol=1e-9, atol=1e-14)


def test_msd_removes_centre_of_mass_drift():
    paths = _walk(50, 100, 0.01, 1.0, 3.0, seed=4)
    drift = np.arange(100)[:, None, None] * np.array([0.05, -0.02, 0.03])  # nm per ps
    still = mean_squared_displacement(_traj(paths, 3.0, 1.0))
    moving = mean_squared_displacement(_traj(paths + drift, 3.0, 1.0))
    np.testing.assert_allclose(moving.msd_xyz_nm2, still.msd_xyz_nm2, rtol=1e-9, atol=1e-12)
    # without the removal the drift would add (v t)^2 = 0.0038 * 49^2 = 9 nm^2 at 49 ps
    assert moving.msd_nm2[-1] < 3.0


def test_msd_rejects_uneven_frames_and_bad_fraction():
    paths = _walk(3, 10, 0.01, 1.0, 2.0, seed=0)
    traj = BeadTrajectory(paths, np.full((10, 3), 2.0), np.r_[np.arange(9.0), 10.0], np.ones(3))
    with pytest.raises(InvalidInputError, match="spacing"):
        mean_squared_displacement(traj)
    with pytest.raises(InvalidInputError, match="max_lag_fraction"):
        mean_squared_displacement(_traj(paths, 2.0, 1.0), max_lag_fraction=1.5)


# --- diffusion coefficient -----------------------------------------------------------------


def test_random_walk_recovers_d():
    d_true, n_beads = 0.005, 300
    paths = _walk(n_beads, 400, d_true, 0.5, 3.0, seed=11)
    result = diffusion_coefficient(_traj(paths, 3.0, 0.5), temperature_k=298.15)
    # removing the centre of mass of N independent walkers scales the MSD by 1 - 1/N
    expected = d_true * (1.0 - 1.0 / n_beads)
    # relative statistical error of one Cartesian component here is about 6 %
    assert result.d_nm2_ps == pytest.approx(expected, rel=0.1)
    assert 0.0 < result.d_err_nm2_ps < 0.1 * expected
    assert result.d_nm2_ps == pytest.approx(np.mean(result.d_xyz_nm2_ps), rel=1e-12)
    assert result.d_err_nm2_ps == pytest.approx(np.std(result.d_xyz_nm2_ps, ddof=1) / 3**0.5)
    for component in result.d_xyz_nm2_ps:
        assert component == pytest.approx(expected, rel=0.25)
    # default window: 0.2 to 0.8 of the largest lag (half of 199.5 ps)
    assert result.fit_start_ps == pytest.approx(20.0)
    assert result.fit_end_ps == pytest.approx(79.5)
    assert result.n_beads == n_beads and result.n_frames == 400


def test_error_estimate_matches_scatter_of_replicas():
    d_true, estimates, errors = 0.01, [], []
    for seed in range(40):
        paths = _walk(40, 120, d_true, 1.0, 2.5, seed=100 + seed)
        result = diffusion_coefficient(_traj(paths, 2.5, 1.0), temperature_k=300.0)
        estimates.append(result.d_nm2_ps)
        errors.append(result.d_err_nm2_ps)
    scatter = np.std(estimates, ddof=1)
    typical_error = np.sqrt(np.mean(np.square(errors)))
    assert 0.6 < typical_error / scatter < 1.6
    assert abs(np.mean(estimates) - d_true * (1 - 1 / 40)) < 3.0 * scatter / np.sqrt(40)


def test_default_window_for_the_all_atom_production():
    """100 ps with frames every 0.5 ps: lags up to 50 ps, fit from 10 to 40 ps."""
    paths = _walk(20, 201, 0.002, 0.5, 2.5, seed=2)
    result = diffusion_coefficient(_traj(paths, 2.5, 0.5), temperature_k=298.15)
    assert result.fit_start_ps == pytest.approx(10.0)
    assert result.fit_end_ps == pytest.approx(40.0)


def test_yeh_hummer_against_hand_calculation():
    # 2.837297 * 1.380649e-23 J/K * 298.15 K / (6 pi * 5e-4 Pa s * 3e-9 m)
    # = 1.167952e-20 / 2.827433e-11 = 4.13077e-10 m^2/s = 4.13077e-4 nm^2/ps
    value = yeh_hummer_correction(temperature_k=298.15, viscosity_pa_s=5e-4, box_length_nm=3.0)
    assert value == pytest.approx(4.13077e-4, rel=1e-5)
    assert DEFAULT_VISCOSITY_PA_S == 5e-4
    with pytest.raises(InvalidInputError, match="viscosity_pa_s"):
        yeh_hummer_correction(temperature_k=298.15, viscosity_pa_s=0.0, box_length_nm=3.0)


def test_result_keeps_raw_and_corrected_values():
    paths = _walk(30, 100, 0.01, 1.0, 3.0, seed=9)
    traj = _traj(paths, 3.0, 1.0)
    default = diffusion_coefficient(traj, temperature_k=298.15)
    viscous = diffusion_coefficient(traj, temperature_k=298.15, viscosity_pa_s=1e-3)
    assert default.box_length_nm == pytest.approx(3.0)
    assert default.yeh_hummer_nm2_ps == pytest.approx(4.13077e-4, rel=1e-5)
    assert default.d_corrected_nm2_ps == pytest.approx(
        default.d_nm2_ps + default.yeh_hummer_nm2_ps, rel=1e-12
    )
    assert viscous.d_nm2_ps == default.d_nm2_ps
    assert viscous.yeh_hummer_nm2_ps == pytest.approx(default.yeh_hummer_nm2_ps / 2)
    assert default.d_m2_s == pytest.approx(default.d_nm2_ps * 1e-6)
    assert default.d_err_m2_s == pytest.approx(default.d_err_nm2_ps * 1e-6)
    assert default.d_corrected_m2_s == pytest.approx(default.d_corrected_nm2_ps * 1e-6)
    assert default.yeh_hummer_m2_s == pytest.approx(default.yeh_hummer_nm2_ps * 1e-6)
    dumped = default.model_dump()
    assert dumped["d_xyz_nm2_ps"] == default.d_xyz_nm2_ps and "d_nm2_ps" in dumped


def test_box_length_is_mean_cube_root_of_volume():
    paths = _walk(10, 50, 0.01, 1.0, 2.0, seed=1)
    boxes = np.repeat(np.linspace(2.9, 3.1, 50)[:, None], 3, axis=1)
    traj = BeadTrajectory(paths, boxes, np.arange(50.0), np.ones(10))
    result = diffusion_coefficient(traj, temperature_k=300.0)
    assert result.box_length_nm == pytest.approx(3.0, rel=1e-12)


def test_bad_fit_window_and_temperature():
    traj = _traj(_walk(5, 20, 0.01, 1.0, 2.0, seed=0), 2.0, 1.0)
    with pytest.raises(InvalidInputError, match="fit_start_fraction"):
        diffusion_coefficient(traj, temperature_k=300.0, fit_start_fraction=0.8,
                              fit_end_fraction=0.2)
    with pytest.raises(InvalidInputError, match="at least 3"):
        diffusion_coefficient(traj, temperature_k=300.0, fit_start_fraction=0.5,
                              fit_end_fraction=0.6)
    with pytest.raises(InvalidInputError, match="temperature_k"):
        diffusion_coefficient(traj, temperature_k=-1.0)
