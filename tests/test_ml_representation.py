"""PotentialRepresentation: round trip, physical guarantees, forces, serialisation."""

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.ml.representation import (
    PotentialRepresentation,
    forces_from_potential,
    smooth_switch,
)
from cgflow.ml.synthetic import synthetic_campaign


@pytest.fixture(scope="module")
def family():
    ds = synthetic_campaign(60, seed=11, noise_kj_mol=0.0)
    rep = PotentialRepresentation().fit(ds.r_nm, ds.U[:45])
    return ds, rep


def test_round_trip_of_held_out_potentials(family):
    ds, rep = family
    U = ds.U[45:]
    err = np.abs(rep.reconstruct(U) - U)
    well_and_tail = U <= 2.0  # the family's spread there is ~0.5 kJ/mol
    assert np.sqrt(np.mean(err[well_and_tail] ** 2)) < 0.01
    assert np.max(err[well_and_tail]) < 0.05
    foot = (U > 2.0) & (U <= 20.0)
    assert np.max(err[foot]) < 0.3
    wall = U > 20.0  # up to ~150 kJ/mol, never sampled: relative accuracy is what matters
    assert np.max(err[wall] / U[wall]) < 0.04
    assert 2 <= rep.n_components <= 16
    assert rep.encode(U).shape == (15, rep.n_components)
    assert rep.encode(U[0]).shape == (rep.n_components,)


def test_decoded_potentials_are_physical_even_for_wild_coefficients(family):
    ds, rep = family
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 3.0, (50, rep.n_components)) * np.sqrt(rep.component_variance_)
    U = rep.decode(z)
    F = rep.forces(U)
    assert np.all(U[:, -1] == 0.0) and np.allclose(F[:, -1], 0.0, atol=1e-12)
    c = rep.core_end_index_
    assert c > 0 and rep.r_core_nm < ds.r_nm[np.argmin(ds.U[:45].mean(axis=0))]
    steps = U[:, :c] - U[:, 1 : c + 1]
    assert np.all(steps >= rep.core_floor_ - 1e-9)  # strictly monotonic, steep wall
    assert np.all(rep.core_floor_ > 0)
    # the plain expansion (no guarantees) violates them for some of these coefficients
    raw = rep.decode(z, guarantees=False)
    assert np.any(raw[:, -1] != 0.0)


def test_forces_are_minus_the_derivative(family):
    ds, rep = family
    U = rep.reconstruct(ds.U[45:48])
    r = ds.r_nm
    F = forces_from_potential(r, U)
    # U(r) - U(r_c) = integral of F from r to r_c (Simpson's rule on the grid)
    from scipy.integrate import cumulative_simpson

    work = cumulative_simpson(F[:, ::-1], x=-r[::-1], axis=-1, initial=0.0)[:, ::-1]
    np.testing.assert_allclose(work, U - U[:, -1:], rtol=0.01, atol=0.02)
    # F agrees with a centred finite difference where U is smooth
    fd = -(U[:, 2:] - U[:, :-2]) / (r[2:] - r[:-2])
    np.testing.assert_allclose(F[:, 1:-1], fd, rtol=0.03, atol=0.3)
    assert np.all(F[:, : rep.core_end_index_] > 0)  # repulsive wall pushes apart


def test_switch_is_c2_and_bounded():
    r = np.linspace(1.3, 1.5, 2001)
    s = smooth_switch(r, 1.4, 1.5)
    assert s[0] == 1.0 and s[-1] == 0.0 and np.all(np.diff(s) <= 1e-15)
    h = r[1] - r[0]
    d1 = np.gradient(s, h)
    assert abs(d1[-1]) < 1e-3 and abs(d1[1000]) < 1e-3  # zero slope at both ends


def test_serialisation_gives_identical_decoding(family):
    ds, rep = family
    back = PotentialRepresentation.from_dict(rep.to_dict())
    z = rep.encode(ds.U[45:])
    np.testing.assert_array_equal(back.decode(z), rep.decode(z))
    np.testing.assert_allclose(back.encode(ds.U[45:]), z, rtol=0, atol=1e-9)


def test_representation_input_errors():
    with pytest.raises(InvalidInputError, match="not fitted"):
        PotentialRepresentation().encode(np.zeros((1, 10)))
    with pytest.raises(InvalidInputError, match="knot_spacing_nm"):
        PotentialRepresentation(knot_spacing_nm=0.0)
    r = np.linspace(0.3, 1.5, 20)
    with pytest.raises(InvalidInputError, match="at least 2"):
        PotentialRepresentation().fit(r, np.zeros((1, 20)))
    rep = PotentialRepresentation().fit(r, np.random.default_rng(0).normal(size=(5, 20)))
    with pytest.raises(InvalidInputError, match=r"expected shape \(n, 20\)"):
        rep.encode(np.zeros((2, 21)))
