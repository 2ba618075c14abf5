"""Radial distribution function."""

from __future__ import annotations

import numpy as np
import pytest

from cgflow.analysis import BeadTrajectory, radial_distribution
from cgflow.errors import InvalidInputError


def _frames(positions, boxes) -> BeadTrajectory:
    positions = np.asarray(positions, dtype=float)
    n_frames, n_beads, _ = positions.shape
    return BeadTrajectory(
        positions, np.asarray(boxes, dtype=float), np.arange(n_frames) * 1.0, np.ones(n_beads)
    )


def _lattice(n_per_side: int, spacing: float) -> np.ndarray:
    grid = np.arange(n_per_side) * spacing
    return np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)


def test_ideal_gas_is_one_within_noise():
    rng = np.random.default_rng(42)
    n, n_frames, box = 400, 20, 3.0
    traj = _frames(rng.random((n_frames, n, 3)) * box, np.full((n_frames, 3), box))
    rdf = radial_distribution(traj, r_max_nm=1.5, dr_nm=0.05)
    assert rdf.n_frames == n_frames and rdf.n_beads == n
    np.testing.assert_allclose(rdf.r[:3], [0.025, 0.075, 0.125])
    shell = 4.0 / 3.0 * np.pi * (rdf.edges[1:] ** 3 - rdf.edges[:-1] ** 3)
    expected_pairs = n * (n - 1) / 2 / box**3 * shell * n_frames
    sigma = 1.0 / np.sqrt(expected_pairs)  # Poisson noise of the pair count
    assert np.all(np.abs(rdf.g - 1.0) < 5.0 * sigma)
    assert abs(rdf.g[10:].mean() - 1.0) < 0.01


def test_simple_cubic_lattice_shells():
    spacing, side = 0.5, 6
    box = spacing * side
    traj = _frames(_lattice(side, spacing)[None], [[box, box, box]])
    n = side**3
    dr = 0.04  # shells at 0.5, 0.707, 0.866 nm fall inside bins 12, 17, 21
    rdf = radial_distribution(traj, r_max_nm=1.0, dr_nm=dr)
    shell = 4.0 / 3.0 * np.pi * (rdf.edges[1:] ** 3 - rdf.edges[:-1] ** 3)
    expected = np.zeros_like(rdf.g)
    for neighbours, distance in ((6, spacing), (12, spacing * 2**0.5), (8, spacing * 3**0.5)):
        k = int(distance / dr)
        expected[k] = neighbours * box**3 / ((n - 1) * shell[k])
    np.testing.assert_allclose(rdf.g, expected, rtol=1e-12, atol=1e-12)
    first_peak = rdf.r[np.flatnonzero(rdf.g)[0]]
    assert first_peak == pytest.approx(spacing, abs=dr / 2)


def test_matches_brute_force_minimum_image():
    rng = np.random.default_rng(7)
    n, box = 60, np.array([2.0, 2.2, 2.4])
    x = rng.random((n, 3)) * box
    traj = _frames(x[None], box[None])
    rdf = radial_distribution(traj, r_max_nm=1.0, dr_nm=0.1)
    d = x[:, None, :] - x[None, :, :]
    d -= box * np.round(d / box)
    r = np.linalg.norm(d, axis=-1)[np.triu_indices(n, k=1)]
    counts, _ = np.histogram(r, bins=rdf.edges)
    shell = 4.0 / 3.0 * np.pi * (rdf.edges[1:] ** 3 - rdf.edges[:-1] ** 3)
    expected = 2.0 * counts / (n * (n - 1) / np.prod(box) * shell)
    np.testing.assert_allclose(rdf.g, expected, rtol=1e-12)


def test_each_frame_uses_its_own_volume():
    """Two lattices of different spacing (as in an NPT run): the average of the frames."""
    a = _lattice(6, 0.5)
    b = _lattice(6, 0.55)
    both = _frames(np.stack([a, b]), [[3.0] * 3, [3.3] * 3])
    first = radial_distribution(_frames(a[None], [[3.0] * 3]), r_max_nm=1.4, dr_nm=0.02)
    second = radial_distribution(_frames(b[None], [[3.3] * 3]), r_max_nm=1.4, dr_nm=0.02)
    rdf = radial_distribution(both, r_max_nm=1.4, dr_nm=0.02)
    np.testing.assert_allclose(rdf.g, 0.5 * (first.g + second.g), rtol=1e-12)
    assert first.g.max() > 0 and second.g.max() > 0


def test_ideal_gas_in_changing_boxes():
    rng = np.random.default_rng(5)
    boxes = np.repeat(np.linspace(2.8, 3.4, 10)[:, None], 3, axis=1)
    positions = rng.random((10, 300, 3)) * boxes[:, None, :]
    rdf = radial_distribution(_frames(positions, boxes), r_max_nm=1.4, dr_nm=0.1)
    assert abs(rdf.g[4:].mean() - 1.0) < 0.02


def test_r_max_beyond_half_box_is_rejected():
    boxes = np.array([[3.0] * 3, [2.8, 3.0, 3.0]])
    traj = _frames(np.zeros((2, 4, 3)) + 0.1 * np.arange(4)[None, :, None], boxes)
    with pytest.raises(InvalidInputError, match="r_max_nm"):
        radial_distribution(traj, r_max_nm=1.45)
    assert radial_distribution(traj, r_max_nm=1.4).g.shape == (140,)
    with pytest.raises(InvalidInputError, match="dr_nm"):
        radial_distribution(traj, r_max_nm=1.0, dr_nm=0.0)


def test_r_max_not_a_multiple_of_dr_rounds_down():
    rng = np.random.default_rng(1)
    traj = _frames(rng.random((1, 50, 3)) * 3.0, [[3.0] * 3])
    rdf = radial_distribution(traj, r_max_nm=1.234, dr_nm=0.1)
    assert rdf.r.size == 12 and rdf.edges[-1] == pytest.approx(1.2)
