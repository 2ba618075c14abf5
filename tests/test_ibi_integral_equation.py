"""Ornstein-Zernike / HNC pieces of IBI (cgflow.ibi.integral_equation) and the IHNC update."""

from __future__ import annotations

import numpy as np
import pytest

from cgflow import units
from cgflow.errors import InvalidInputError
from cgflow.ibi.integral_equation import hnc_potential_correction, indirect_correlation
from cgflow.ibi.potential import initial_potential, potential_grid
from cgflow.ibi.settings import IBISettings
from cgflow.ibi.update import ibi_update

T = 298.15
KT = units.kt_kj_mol(T)
A, S, RHO = 1.0, 0.3, 3.0  # Gaussian direct correlation c(r) = -A exp(-(r/S)^2), 1/nm^3


def _c_hat(k):
    return -A * np.pi**1.5 * S**3 * np.exp(-(k * S) ** 2 / 4.0)


def _radial_inverse(f_hat, r):
    """1/(2 pi^2 r) int k f^(k) sin(kr) dk by a fine trapezoid sum (independent of the DST)."""
    k = np.linspace(1e-8, 80.0, 400001)
    return np.array([np.trapezoid(k * f_hat(k) * np.sin(k * x), k) / (2 * np.pi**2 * x)
                     for x in r])


def test_indirect_correlation_solves_ornstein_zernike():
    """For c known analytically, h = c + rho c*h follows in Fourier space; gamma = h - c
    must come back from h alone."""
    r = np.round(np.arange(1, 201) * 0.01, 10)
    h = _radial_inverse(lambda k: _c_hat(k) / (1.0 - RHO * _c_hat(k)), r)
    c = -A * np.exp(-((r / S) ** 2))
    gamma = indirect_correlation(r, 1.0 + h, RHO)
    assert np.max(np.abs(h - c)) > 0.05  # not trivially small
    np.testing.assert_allclose(gamma, h - c, atol=1e-6)
    # a grid that starts at 0 (not on the sine-transform grid) gives the same values
    r0 = np.concatenate([[0.0], r])
    gamma0 = indirect_correlation(r0, np.concatenate([[1.0 + h[0]], 1.0 + h]), RHO)
    np.testing.assert_allclose(gamma0[1:], h - c, atol=1e-6)
    # and the HNC term is kT gamma
    np.testing.assert_allclose(hnc_potential_correction(r, 1.0 + h, RHO, T), KT * gamma)


def test_indirect_correlation_of_a_dilute_gas_is_small():
    r = potential_grid(0.1, 1.5, 0.01)
    # g = 1 from 0.1 nm (0 below it, a tiny core) at low density: gamma ~ 0
    assert np.allclose(indirect_correlation(r, np.ones_like(r), 1.0), 0.0, atol=0.01)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"r_nm": np.array([0.1, 0.2])}, "field 'r_nm'"),
        ({"r_nm": np.array([0.1, 0.2, 0.4, 0.5])}, "uniform"),
        ({"r_nm": np.array([0.105, 0.115, 0.125])}, "multiple of the spacing"),
        ({"density_nm3": -1.0}, "field 'density_nm3'"),
        ({"s_min": 0.0}, "field 's_min'"),
        ({"g": np.ones(3)}, "field 'g'"),
    ],
)
def test_bad_input_is_named(kwargs, fragment):
    args = {"r_nm": potential_grid(0.1, 1.0, 0.01), "density_nm3": 3.0, "s_min": 0.02}
    args.update(kwargs)
    g = kwargs.get("g", np.ones_like(args["r_nm"]))
    with pytest.raises(InvalidInputError, match=fragment):
        indirect_correlation(args["r_nm"], g, args["density_nm3"], s_min=args["s_min"])


def _liquid_rdf(r):
    x = r - 0.55
    g = 1.0 + 1.6 * np.exp(-x / 0.25) * np.cos(2 * np.pi * x / 0.55)
    return np.clip(np.where(x > 0, g, 2.6 * np.exp(-((x / 0.04) ** 2))), 0.0, None)


def test_ihnc_update_has_the_ibi_fixed_point_and_differs_from_ibi():
    r = potential_grid(0.1, 1.5, 0.01)
    g_t = _liquid_rdf(r)
    u0 = initial_potential(r, g_t, T).u_kj_mol
    same = ibi_update(r, u0, g_t, g_t, T, method="ihnc", density_nm3=4.0)
    np.testing.assert_allclose(same, u0, atol=1e-12)
    g_n = _liquid_rdf(r + 0.01)
    ibi = ibi_update(r, u0, g_n, g_t, T, smoothing_window=0)
    ihnc = ibi_update(r, u0, g_n, g_t, T, smoothing_window=0, method="ihnc", density_nm3=4.0)
    extra = (hnc_potential_correction(r, g_t, 4.0, T)
             - hnc_potential_correction(r, g_n, 4.0, T))
    inside = (r > 0.6) & (r < 1.3)  # reliable region, before the switching function
    np.testing.assert_allclose((ihnc - ibi)[inside], extra[inside], atol=1e-9)
    assert np.max(np.abs(extra[inside])) > 0.01
    with pytest.raises(InvalidInputError, match="density"):
        ibi_update(r, u0, g_n, g_t, T, method="ihnc")
    with pytest.raises(InvalidInputError, match="field 'method'"):
        ibi_update(r, u0, g_n, g_t, T, method="newton")


def test_hnc_initial_guess_adds_the_hnc_term():
    r = potential_grid(0.1, 1.5, 0.01)
    g_t = _liquid_rdf(r)
    pmf = initial_potential(r, g_t, T, smoothing_window=0, switch_width_nm=0.0).u_kj_mol
    hnc = initial_potential(r, g_t, T, smoothing_window=0, switch_width_nm=0.0, method="hnc",
                            density_nm3=4.0).u_kj_mol
    corr = hnc_potential_correction(r, g_t, 4.0, T)
    inside = (r > 0.6) & (r < 1.49)
    np.testing.assert_allclose((hnc - pmf)[inside], (corr - corr[-1])[inside], atol=1e-9)
    with pytest.raises(InvalidInputError, match="field 'method'"):
        initial_potential(r, g_t, T, method="py")


def test_settings_name_a_bad_method():
    with pytest.raises(InvalidInputError, match="update_method"):
        IBISettings(update_method="newton")
    with pytest.raises(InvalidInputError, match="initial_guess"):
        IBISettings(initial_guess="py")
    with pytest.raises(InvalidInputError, match="hnc_s_min"):
        IBISettings(hnc_s_min=0.0)


def test_ihnc_starts_at_its_iteration():
    from cgflow.ibi.iteration import update_method

    s = IBISettings(update_method="ihnc", ihnc_start_iteration=1)
    assert [update_method(s, i) for i in range(3)] == ["ibi", "ihnc", "ihnc"]
    assert update_method(IBISettings(), 5) == "ibi"
    with pytest.raises(InvalidInputError, match="ihnc_start_iteration"):
        IBISettings(ihnc_start_iteration=-1)
