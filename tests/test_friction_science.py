"""The science of the friction calibration (:mod:`cgflow.ibi.friction`), without engines:
the first estimate, the secant steps on 1/D, the convergence decision, the structure
check, the DPD mapping, and the campaign spec's ``friction:`` section."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cgflow import units
from cgflow.errors import InvalidInputError
from cgflow.ibi import friction as fr
from cgflow.orchestration.campaign import campaign_spec_from_text

T, M = 298.15, 114.23
KT_M = units.kt_kj_mol(T) / M  # nm^2/ps^2


def model_d(gamma: float, d0: float = 6e-3, factor: float = 4.0) -> float:
    """A liquid whose 1/D grows linearly with gamma, ``factor`` times faster than m / kT."""
    return 1.0 / (1.0 / d0 + factor * gamma / KT_M)


def test_first_estimate_adds_frictions():
    g0 = fr.first_estimate(6e-3, 1e-3, T, M)
    assert g0 == pytest.approx(KT_M * (1e3 - 1e3 / 6))
    # kT/m of a 114 g/mol bead at 298 K: 0.0217 nm^2/ps^2
    assert KT_M == pytest.approx(0.02170, rel=1e-3)
    assert fr.first_estimate(1e-3, 2e-3, T, M) == 0.0  # already slower: no friction
    with pytest.raises(InvalidInputError, match="d_aa_nm2_ps"):
        fr.first_estimate(1e-3, -1.0, T, M)


def test_a_secant_step_on_linear_inverse_d_lands_on_the_target():
    d_aa = 1e-3
    pts = [fr.FrictionPoint(0.0, model_d(0.0)), fr.FrictionPoint(20.0, model_d(20.0))]
    g = fr.next_friction(pts, d_aa, temperature_k=T, mass_g_mol=M)
    assert model_d(g) == pytest.approx(d_aa, rel=1e-9)


def test_the_step_uses_the_closest_bracket_and_survives_a_noisy_slope():
    d_aa = 1e-3
    # a concave 1/D: the chord over the wide bracket would overshoot
    pts = [fr.FrictionPoint(0.0, 6e-3), fr.FrictionPoint(25.0, 2.8e-4),
           fr.FrictionPoint(8.8, 5.6e-4)]
    g = fr.next_friction(pts, d_aa, temperature_k=T, mass_g_mol=M)
    # the bracket is (0, 8.8), not (0, 25)
    assert g == pytest.approx(8.8 * (1e3 - 1 / 6e-3) / (1 / 5.6e-4 - 1 / 6e-3))
    # no bracket, the two latest points with D rising (noise): a positive slope is used
    noisy = [fr.FrictionPoint(0.0, 6e-3), fr.FrictionPoint(1.0, 3e-3),
             fr.FrictionPoint(1.2, 3.2e-3)]
    g = fr.next_friction(noisy, d_aa, temperature_k=T, mass_g_mol=M)
    assert 1.2 < g <= 12.0  # more friction, at most max_step_factor times more
    with pytest.raises(InvalidInputError, match="points"):
        fr.next_friction(noisy[:1], d_aa, temperature_k=T, mass_g_mol=M)


def test_assess_converges_within_tolerance_or_the_combined_error():
    s = fr.FrictionSettings(enabled=True, tolerance=0.1, max_trials=3)
    ref = fr.FrictionPoint(0.0, 6e-3, 1e-4)
    d = fr.assess_trials(ref, [fr.FrictionPoint(5.0, 1.08e-3, 1e-5)], 1e-3, 1e-5, s,
                         temperature_k=T, mass_g_mol=M)
    assert d.action == "converged" and d.best_trial == 1 and "+8.0 %" in d.reason
    # 15 % off, but within the combined error of 0.2e-3
    d = fr.assess_trials(ref, [fr.FrictionPoint(5.0, 1.15e-3, 1.5e-4)], 1e-3, 1.3e-4, s,
                         temperature_k=T, mass_g_mol=M)
    assert d.action == "converged"
    far = [fr.FrictionPoint(5.0, 2e-3, 1e-5)]
    d = fr.assess_trials(ref, far, 1e-3, 1e-5, s, temperature_k=T, mass_g_mol=M)
    assert d.action == "continue" and d.trial == 2 and d.next_friction_per_ps > 5.0
    trials = [*far, fr.FrictionPoint(12.0, 5e-4, 1e-5), fr.FrictionPoint(8.0, 1.3e-3, 1e-5)]
    d = fr.assess_trials(ref, trials, 1e-3, 1e-5, s, temperature_k=T, mass_g_mol=M)
    assert d.action == "unconverged" and d.best_trial == 3 and "after 3 trials" in d.reason


def test_start_needs_no_trial_or_refuses_to_speed_up():
    s = fr.FrictionSettings(enabled=True)
    d = fr.start(1.05e-3, 1e-5, 1e-3, 1e-5, s, temperature_k=T, mass_g_mol=M)
    assert d.action == "converged" and d.best_trial == 0 and "no friction" in d.reason
    d = fr.start(5e-4, 1e-5, 1e-3, 1e-5, s, temperature_k=T, mass_g_mol=M)
    assert d.action == "unconverged" and "slower" in d.reason
    d = fr.start(6e-3, 1e-4, 1e-3, 1e-4, s, temperature_k=T, mass_g_mol=M)
    assert d.action == "continue" and d.trial == 1
    assert d.next_friction_per_ps == pytest.approx(fr.first_estimate(6e-3, 1e-3, T, M))


def test_the_loop_on_a_model_liquid_converges_in_a_few_trials():
    s = fr.FrictionSettings(enabled=True, max_trials=6)
    ref = fr.FrictionPoint(0.0, model_d(0.0), 1e-5)
    d_aa = 8e-4
    decision = fr.start(ref.d_nm2_ps, 1e-5, d_aa, 1e-5, s, temperature_k=T, mass_g_mol=M)
    trials = []
    while decision.action == "continue":
        g = decision.next_friction_per_ps
        trials.append(fr.FrictionPoint(g, model_d(g), 1e-5))
        decision = fr.assess_trials(ref, trials, d_aa, 1e-5, s, temperature_k=T, mass_g_mol=M)
    assert decision.action == "converged" and len(trials) == 2
    # the first estimate overshot by the factor of the model liquid
    assert trials[0].friction_per_ps == pytest.approx(4.0 * trials[1].friction_per_ps, rel=0.01)
    err = fr.friction_uncertainty(ref, trials, trials[-1], d_aa, 1e-5, temperature_k=T,
                                  mass_g_mol=M)
    assert 0 < err < 0.1 * trials[-1].friction_per_ps


def test_structure_check_passes_noise_and_fails_a_shift():
    r = np.linspace(0.3, 1.2, 91)
    g0 = 1 + np.exp(-((r - 0.6) / 0.05) ** 2)
    err = np.full(r.shape, 0.02)
    rng = np.random.default_rng(1)
    noisy = g0 + rng.normal(0, 0.02 * math.sqrt(2), r.shape)
    ok = fr.structure_check(r, noisy, err, r, g0, err, pressure_bar=10.0, pressure_err_bar=5.0,
                            pressure0_bar=5.0, pressure0_err_bar=5.0)
    assert ok.passed and ok.rdf_deviation <= 2 * ok.rdf_noise
    shifted = np.interp(r, r + 0.03, g0)
    bad = fr.structure_check(r, shifted, err, r, g0, err, pressure_bar=60.0,
                             pressure_err_bar=5.0, pressure0_bar=5.0, pressure0_err_bar=5.0,
                             temperature_k=301.0, temperature0_k=298.0)
    assert not bad.rdf_passed and not bad.pressure_passed and not bad.passed
    assert any("temperatures differ" in n for n in bad.notes)
    assert bad.to_dict()["passed"] is False


def test_dpd_pair_friction_is_the_mean_field_inverse():
    r = np.linspace(0.01, 1.2, 400)
    g = np.ones_like(r)
    rho = 4.0
    gp = fr.dpd_pair_friction(2.0, mass_g_mol=M, density_nm3=rho, r_nm=r, g=g, rcut_nm=1.2)
    # ideal gas: int_0^rc (1 - r/rc)^2 4 pi r^2 dr = 4 pi rc^3 / 30
    integral = rho / 3 * 4 * math.pi * 1.2**3 / 30
    assert gp == pytest.approx(M * 2.0 / integral, rel=1e-3)
    with pytest.raises(InvalidInputError, match="friction_per_ps"):
        fr.dpd_pair_friction(0.0, mass_g_mol=M, density_nm3=rho, r_nm=r, g=g, rcut_nm=1.2)


def test_campaign_spec_friction_section_is_validated():
    base = "name: x\npreset: tiny\nn_sets: 0\n"
    spec, _ = campaign_spec_from_text(base + "cg_stage: true\nfriction: {enabled: true, "
                                      "tolerance: 0.05, max_trials: 3}\n")
    assert spec.friction.enabled and spec.friction.tolerance == 0.05
    assert campaign_spec_from_text(base)[0].friction.enabled is False  # opt-in
    for text, fragment in (
            ("cg_stage: true\nfriction: {tolerence: 0.1}\n", "friction.tolerence"),
            ("cg_stage: true\nfriction: {tolerance: 1.5}\n", "friction.tolerance"),
            ("cg_stage: true\nfriction: {thermostat: nose-hoover}\n", "friction.thermostat"),
            ("friction: {enabled: true}\n", "needs cg_stage")):
        with pytest.raises(InvalidInputError, match=fragment.replace(".", r"\.")):
            campaign_spec_from_text(base + text)
