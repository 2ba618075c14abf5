"""Friction-matched CG dynamics: the science of calibrating a thermostat friction gamma
so that the CG model diffuses like the all-atom liquid, D_CG(gamma) = D_AA.

A friction thermostat (Langevin, or DPD, which conserves momentum) leaves the equilibrium
distribution of the CG model unchanged, so the IBI potential keeps its RDF and pressure,
and slows the diffusion monotonically with gamma. With gamma chosen so that D_CG(gamma) =
D_AA, the CG model has the structure *and* the mobility of the all-atom liquid at its
state point, in real time units (Junghans, Praprotnik and Kremer, Soft Matter 2008;
Klippenstein and van der Vegt, JCP 2021).

Everything here is pure (numbers in, numbers out); the runs are in
:mod:`cgflow.stages.friction`. Units: gamma in 1/ps (LAMMPS damping = 1/gamma), D in
nm^2/ps, masses in g/mol, temperatures in K (kT/m is then in nm^2/ps^2).

* :func:`first_estimate`: frictions add, 1/D(gamma) ~ 1/D_CG(0) + m gamma / kT, so
  gamma_0 = (kT / m) (1/D_AA - 1/D_CG(0)). *Approximation*: in a dense liquid the
  friction also slows the structural relaxation (the cage), and 1/D grows several times
  faster than m gamma / kT (measured in ``benchmarks/results/friction.md``): gamma_0
  overshoots, and the secant steps do the rest.
* :func:`next_friction`: a secant (Newton) step on 1/D, which is close to linear in gamma,
  through the closest points on either side of the target once they bracket it, else the
  two latest points (the frictionless run counts as the point gamma = 0), safeguarded
  against noise (a non-positive slope) and limited to a factor ``max_step_factor`` per
  step.
* :func:`assess_trials`: converged when |D_CG(gamma) - D_AA| <= max(tolerance D_AA, the
  combined standard error), unconverged after ``max_trials`` trials (the best is kept).
* :func:`structure_check`: the RDF and pressure of the calibrated run against the
  frictionless one, in units of their noise.
* :func:`dpd_pair_friction`: the DPD pair friction whose mean-field per-bead friction is
  gamma.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.integrate import trapezoid

from cgflow import units
from cgflow.errors import InvalidInputError
from cgflow.ibi.metrics import rdf_deviation

#: Seed offset of the friction trials (trial k uses FRICTION_SEED_BASE + k).
FRICTION_SEED_BASE = 5000


class FrictionSettings(BaseModel):
    """The campaign spec's ``friction:`` section.

    Attributes
    ----------
    enabled
        Calibrate a friction for every converged set after its CG production (default
        off: each trial is one more CG production, see the README).
    thermostat
        ``"langevin"`` (every LAMMPS build) or ``"dpd"`` (momentum-conserving; needs
        LAMMPS with the DPD-BASIC package).
    tolerance
        Relative tolerance on D_CG(gamma) / D_AA - 1 (default 10 %); a larger combined
        standard error of both coefficients is accepted instead.
    max_trials
        Most trial runs (each a CG production with the friction thermostat).
    trial_ps
        Length of a trial run, ps; None: the preset's production length.
    check_sigma
        The calibrated run's RDF and pressure must stay within this many times their
        noise of the frictionless run's (:func:`structure_check`).
    max_step_factor
        One step changes gamma by at most this factor (up or down).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    thermostat: Literal["langevin", "dpd"] = "langevin"
    tolerance: float = Field(default=0.1, gt=0.0, lt=1.0)
    max_trials: int = Field(default=4, ge=1, le=20)
    trial_ps: float | None = Field(default=None, gt=0.0)
    check_sigma: float = Field(default=2.0, gt=0.0)
    max_step_factor: float = Field(default=10.0, gt=1.0)


def kt_over_m(temperature_k: float, mass_g_mol: float) -> float:
    """kT / m in nm^2/ps^2 (kJ/mol over g/mol)."""
    _positive("temperature_k", temperature_k)
    _positive("mass_g_mol", mass_g_mol)
    return units.kt_kj_mol(temperature_k) / mass_g_mol


def first_estimate(d0_nm2_ps: float, d_aa_nm2_ps: float, temperature_k: float,
                   mass_g_mol: float) -> float:
    """gamma_0 = (kT / m) (1/D_AA - 1/D_CG(0)), 1/ps; 0 when D_CG(0) <= D_AA.

    Raises
    ------
    InvalidInputError
        When a coefficient, the temperature or the mass is not a finite number > 0.
    """
    _positive("d0_nm2_ps", d0_nm2_ps)
    _positive("d_aa_nm2_ps", d_aa_nm2_ps)
    return max(0.0, kt_over_m(temperature_k, mass_g_mol) * (1.0 / d_aa_nm2_ps
                                                             - 1.0 / d0_nm2_ps))


@dataclass(frozen=True)
class FrictionPoint:
    """D measured at a friction: gamma (1/ps), D and its standard error (nm^2/ps)."""

    friction_per_ps: float
    d_nm2_ps: float
    d_err_nm2_ps: float = 0.0

    @property
    def inverse_d(self) -> float:
        """1 / D, ps/nm^2."""
        return 1.0 / self.d_nm2_ps


def _slope(a: FrictionPoint, b: FrictionPoint) -> float:
    dg = b.friction_per_ps - a.friction_per_ps
    return (b.inverse_d - a.inverse_d) / dg if dg != 0 else float("nan")


def local_slope(points: Sequence[FrictionPoint], near: FrictionPoint,
                temperature_k: float, mass_g_mol: float) -> float:
    """d(1/D)/d(gamma) near ``near`` (ps^2/nm^2): the secant to the point nearest in gamma,
    else through any positive pair, else the additive m / kT."""
    others = sorted((p for p in points if p.friction_per_ps != near.friction_per_ps),
                    key=lambda p: abs(p.friction_per_ps - near.friction_per_ps))
    for p in others:
        s = _slope(p, near)
        if math.isfinite(s) and s > 0:
            return s
    return 1.0 / kt_over_m(temperature_k, mass_g_mol)


def next_friction(points: Sequence[FrictionPoint], d_aa_nm2_ps: float, *,
                  temperature_k: float, mass_g_mol: float,
                  max_step_factor: float = 10.0) -> float:
    """The next trial's gamma (1/ps): a secant step on 1/D towards 1/D_AA.

    Parameters
    ----------
    points
        The frictionless point (gamma = 0) and the trials so far, in the order run.
    d_aa_nm2_ps
        The target, D_AA.
    temperature_k, mass_g_mol
        For the fallback slope m / kT (no two points with a positive slope).
    max_step_factor
        The new gamma stays within [gamma / f, gamma f] of the latest trial's.

    Returns
    -------
    float
        gamma > 0. When the points bracket the target (some diffuse faster than D_AA,
        some slower), the secant through the closest point on each side (1/D is concave
        in gamma, so a chord over a wide bracket overshoots; the closest bracket keeps
        the step short). Otherwise from the latest trial with the slope of the latest two
        points; when noise made that slope non-positive, with :func:`local_slope`.
    """
    _positive("d_aa_nm2_ps", d_aa_nm2_ps)
    if len(points) < 2:
        raise InvalidInputError("friction: field 'points': a secant step needs the "
                                "frictionless point and at least one trial")
    target = 1.0 / d_aa_nm2_ps
    fast = [p for p in points if p.inverse_d < target]
    slow = [p for p in points if p.inverse_d > target]
    if fast and slow:
        lo = max(fast, key=lambda p: p.inverse_d)
        hi = min(slow, key=lambda p: p.inverse_d)
        if hi.friction_per_ps > lo.friction_per_ps:
            gamma = lo.friction_per_ps + (target - lo.inverse_d) / _slope(lo, hi)
            return float(gamma)
    last, prev = points[-1], points[-2]
    slope = _slope(prev, last)
    if not (math.isfinite(slope) and slope > 0):
        slope = local_slope(points, last, temperature_k, mass_g_mol)
    gamma = last.friction_per_ps + (1.0 / d_aa_nm2_ps - last.inverse_d) / slope
    base = last.friction_per_ps
    if base > 0:
        gamma = min(max(gamma, base / max_step_factor), base * max_step_factor)
    return float(gamma) if gamma > 0 else float(base / max_step_factor)


def matches(d_nm2_ps: float, d_err_nm2_ps: float | None, d_aa_nm2_ps: float,
            d_aa_err_nm2_ps: float | None, tolerance: float) -> bool:
    """True when |D - D_AA| <= max(tolerance D_AA, sqrt(err^2 + err_AA^2))."""
    combined = math.hypot(d_err_nm2_ps or 0.0, d_aa_err_nm2_ps or 0.0)
    return abs(d_nm2_ps - d_aa_nm2_ps) <= max(tolerance * d_aa_nm2_ps, combined)


def relative_mismatch(d_nm2_ps: float, d_aa_nm2_ps: float) -> float:
    """D / D_AA - 1."""
    return d_nm2_ps / d_aa_nm2_ps - 1.0


@dataclass(frozen=True)
class FrictionDecision:
    """What the calibration does next.

    Attributes
    ----------
    action
        ``"continue"`` (run a trial at ``next_friction_per_ps``), ``"converged"`` or
        ``"unconverged"``.
    reason
        Why, in words.
    trial
        Number of the next trial (``continue``), else of the chosen one (0: the
        frictionless run itself).
    next_friction_per_ps
        gamma of the next trial (``continue``), else None.
    best_trial
        The trial kept (closest to D_AA; 0 for the frictionless run), None when none
        was run.
    """

    action: Literal["continue", "converged", "unconverged"]
    reason: str
    trial: int = 0
    next_friction_per_ps: float | None = None
    best_trial: int | None = None


def start(d0_nm2_ps: float, d0_err_nm2_ps: float | None, d_aa_nm2_ps: float,
          d_aa_err_nm2_ps: float | None, settings: FrictionSettings, *,
          temperature_k: float, mass_g_mol: float) -> FrictionDecision:
    """The decision before any trial: converged without friction when D_CG(0) already
    matches D_AA; unconverged when the CG model is slower than the all-atom one without
    friction (friction cannot speed it up); else the first trial at :func:`first_estimate`.
    """
    _positive("d0_nm2_ps", d0_nm2_ps)
    _positive("d_aa_nm2_ps", d_aa_nm2_ps)
    if matches(d0_nm2_ps, d0_err_nm2_ps, d_aa_nm2_ps, d_aa_err_nm2_ps, settings.tolerance):
        return FrictionDecision("converged", (
            f"D_CG(0) = {d0_nm2_ps:.4g} nm^2/ps already matches D_AA = {d_aa_nm2_ps:.4g} "
            f"({100 * relative_mismatch(d0_nm2_ps, d_aa_nm2_ps):+.1f} %): no friction "
            "needed"), trial=0, best_trial=0)
    if d0_nm2_ps < d_aa_nm2_ps:
        return FrictionDecision("unconverged", (
            f"D_CG(0) = {d0_nm2_ps:.4g} nm^2/ps is below D_AA = {d_aa_nm2_ps:.4g}: the CG "
            "model is slower than the all-atom liquid without friction, and a friction "
            "can only slow it further"), trial=0, best_trial=None)
    gamma0 = first_estimate(d0_nm2_ps, d_aa_nm2_ps, temperature_k, mass_g_mol)
    return FrictionDecision("continue", (
        f"first estimate gamma_0 = (kT/m)(1/D_AA - 1/D_CG(0)) = {gamma0:.4g} 1/ps"),
        trial=1, next_friction_per_ps=gamma0)


def best_trial(trials: Sequence[FrictionPoint], d_aa_nm2_ps: float) -> int:
    """Index (from 0) of the trial whose D is closest to D_AA in log."""
    return int(np.argmin([abs(math.log(t.d_nm2_ps / d_aa_nm2_ps)) for t in trials]))


def assess_trials(reference: FrictionPoint, trials: Sequence[FrictionPoint],
                  d_aa_nm2_ps: float, d_aa_err_nm2_ps: float | None,
                  settings: FrictionSettings, *, temperature_k: float,
                  mass_g_mol: float) -> FrictionDecision:
    """What follows the trials run so far (trial k is ``trials[k - 1]``).

    Converged as soon as the latest trial matches D_AA (:func:`matches`); unconverged
    after ``settings.max_trials`` (keeping the best trial); else the next trial at
    :func:`next_friction` of the frictionless point and every trial.
    """
    if not trials:
        raise InvalidInputError("friction: field 'trials': no trial to assess")
    last = trials[-1]
    k = len(trials)
    mismatch = 100 * relative_mismatch(last.d_nm2_ps, d_aa_nm2_ps)
    if matches(last.d_nm2_ps, last.d_err_nm2_ps, d_aa_nm2_ps, d_aa_err_nm2_ps,
               settings.tolerance):
        return FrictionDecision("converged", (
            f"converged at trial {k}: D_CG(gamma = {last.friction_per_ps:.4g} 1/ps) = "
            f"{last.d_nm2_ps:.4g} nm^2/ps, {mismatch:+.1f} % from D_AA (tolerance "
            f"{100 * settings.tolerance:.0f} % or the combined error)"), trial=k, best_trial=k)
    if k >= settings.max_trials:
        b = best_trial(trials, d_aa_nm2_ps)
        bt = trials[b]
        return FrictionDecision("unconverged", (
            f"no match after {k} trials: the best, trial {b + 1} (gamma = "
            f"{bt.friction_per_ps:.4g} 1/ps), is "
            f"{100 * relative_mismatch(bt.d_nm2_ps, d_aa_nm2_ps):+.1f} % from D_AA"),
            trial=b + 1, best_trial=b + 1)
    gamma = next_friction([reference, *trials], d_aa_nm2_ps, temperature_k=temperature_k,
                          mass_g_mol=mass_g_mol, max_step_factor=settings.max_step_factor)
    return FrictionDecision("continue", (
        f"trial {k}: D_CG {mismatch:+.1f} % from D_AA; secant step on 1/D to gamma = "
        f"{gamma:.4g} 1/ps"), trial=k + 1, next_friction_per_ps=gamma)


def friction_uncertainty(reference: FrictionPoint, trials: Sequence[FrictionPoint],
                         chosen: FrictionPoint, d_aa_nm2_ps: float,
                         d_aa_err_nm2_ps: float | None, *, temperature_k: float,
                         mass_g_mol: float) -> float:
    """Standard uncertainty of the calibrated gamma (1/ps).

    With the local slope s = d(1/D)/d(gamma) (:func:`local_slope`), the gammas that would
    match D_AA lie within sqrt(dx^2 + e_AA^2 + e^2) / s of the chosen one, where dx =
    1/D_AA - 1/D(gamma) is the remaining mismatch and e_AA, e the standard errors of
    1/D_AA and 1/D(gamma) (e = err / D^2).
    """
    s = local_slope([reference, *trials], chosen, temperature_k, mass_g_mol)
    dx = 1.0 / d_aa_nm2_ps - chosen.inverse_d
    e_aa = (d_aa_err_nm2_ps or 0.0) / d_aa_nm2_ps**2
    e = (chosen.d_err_nm2_ps or 0.0) / chosen.d_nm2_ps**2
    return float(math.sqrt(dx**2 + e_aa**2 + e**2) / s)


@dataclass(frozen=True)
class StructureCheck:
    """The calibrated run's structure against the frictionless run's.

    Attributes
    ----------
    rdf_deviation
        :func:`cgflow.ibi.metrics.rdf_deviation` of the calibrated RDF from the
        frictionless one.
    rdf_noise
        The value that deviation takes from noise alone: sqrt(2/pi) int sqrt(e^2 +
        e_0^2) dr / int g_0 dr (the mean absolute value of a Gaussian difference), with
        e, e_0 the block standard errors of the two RDFs.
    pressure_deviation_bar, pressure_noise_bar
        P(gamma) - P(0) and sqrt(err^2 + err_0^2), bar.
    sigma
        The threshold, in units of the noise.
    rdf_passed, pressure_passed
        ``rdf_deviation <= sigma rdf_noise``; ``|pressure_deviation| <= sigma
        pressure_noise``.
    temperature_k, temperature0_k
        Mean temperatures of the two runs (a weakly coupled Nose-Hoover run of a
        hundred ps can sit a few K off its target, which moves a dense liquid's
        pressure by tens of bar: the notes then say so).
    """

    rdf_deviation: float
    rdf_noise: float
    pressure_deviation_bar: float
    pressure_noise_bar: float
    sigma: float
    rdf_passed: bool
    pressure_passed: bool
    temperature_k: float | None = None
    temperature0_k: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Both the RDF and the pressure within noise."""
        return self.rdf_passed and self.pressure_passed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"rdf_deviation": self.rdf_deviation, "rdf_noise": self.rdf_noise,
                "pressure_deviation_bar": self.pressure_deviation_bar,
                "pressure_noise_bar": self.pressure_noise_bar, "sigma": self.sigma,
                "rdf_passed": self.rdf_passed, "pressure_passed": self.pressure_passed,
                "passed": self.passed, "temperature_k": self.temperature_k,
                "temperature0_k": self.temperature0_k, "notes": list(self.notes)}


def structure_check(r_nm: np.ndarray, g: np.ndarray, g_err: np.ndarray,
                    r0_nm: np.ndarray, g0: np.ndarray, g0_err: np.ndarray, *,
                    pressure_bar: float, pressure_err_bar: float, pressure0_bar: float,
                    pressure0_err_bar: float, sigma: float = 2.0,
                    temperature_k: float | None = None,
                    temperature0_k: float | None = None) -> StructureCheck:
    """Compare the calibrated run's RDF and pressure with the frictionless run's.

    The calibrated RDF is interpolated onto the frictionless run's bins; bins where a
    block error is unknown (NaN) count as noiseless.
    """
    r0 = np.asarray(r0_nm, float)
    g0 = np.asarray(g0, float)
    g_i = np.interp(r0, np.asarray(r_nm, float), np.asarray(g, float))
    e_i = np.interp(r0, np.asarray(r_nm, float), np.nan_to_num(np.asarray(g_err, float)))
    e0 = np.nan_to_num(np.asarray(g0_err, float))
    dev = rdf_deviation(r0, g_i, g0)
    noise = float(math.sqrt(2.0 / math.pi) * trapezoid(np.sqrt(e_i**2 + e0**2), r0)
                  / trapezoid(g0, r0))
    dp = float(pressure_bar - pressure0_bar)
    p_noise = float(math.hypot(_finite(pressure_err_bar), _finite(pressure0_err_bar)))
    notes = []
    rdf_ok = dev <= sigma * noise
    p_ok = abs(dp) <= sigma * p_noise
    if not rdf_ok:
        notes.append(f"RDF deviation {dev:.4g} is above {sigma:g} x its noise {noise:.4g}")
    if not p_ok:
        notes.append(f"pressure moved by {dp:+.1f} bar, more than {sigma:g} x its noise "
                     f"{p_noise:.1f} bar")
        if temperature_k is not None and temperature0_k is not None and abs(
                temperature_k - temperature0_k) > 1.0:
            notes.append(f"the runs' mean temperatures differ: {temperature_k:.1f} K and "
                         f"{temperature0_k:.1f} K (frictionless)")
    return StructureCheck(rdf_deviation=float(dev), rdf_noise=noise,
                          pressure_deviation_bar=dp, pressure_noise_bar=p_noise, sigma=sigma,
                          rdf_passed=bool(rdf_ok), pressure_passed=bool(p_ok),
                          temperature_k=temperature_k, temperature0_k=temperature0_k,
                          notes=notes)


def dpd_pair_friction(friction_per_ps: float, *, mass_g_mol: float, density_nm3: float,
                      r_nm: np.ndarray, g: np.ndarray, rcut_nm: float) -> float:
    """The DPD pair friction (g/mol/ps) whose mean-field friction per bead is gamma.

    LAMMPS' ``dpd/tstat`` force on bead i is -gamma_p sum_j w(r)^2 (e_ij . v_ij) e_ij with
    w = 1 - r / r_c. Averaged over the neighbours (density rho, RDF g, directions at
    random) the friction per bead is gamma = gamma_p I / m with I = (rho / 3) int_0^r_c
    g(r) w(r)^2 4 pi r^2 dr, hence gamma_p = m gamma / I. *Approximation*: the neighbours
    are taken at rest; their own motion makes the friction on relative velocities
    momentum-conserving, so the same gamma_p slows diffusion less than a Langevin gamma.
    The calibration runs on the effective gamma and converts it with this function.
    """
    _positive("friction_per_ps", friction_per_ps)
    _positive("density_nm3", density_nm3)
    _positive("rcut_nm", rcut_nm)
    r = np.asarray(r_nm, float)
    keep = r <= rcut_nm
    r, gg = r[keep], np.asarray(g, float)[keep]
    w = 1.0 - r / rcut_nm
    integral = density_nm3 / 3.0 * trapezoid(gg * w**2 * 4.0 * math.pi * r**2, r)
    if not integral > 0:
        raise InvalidInputError("DPD pair friction: the RDF has no neighbours within the "
                                f"cutoff {rcut_nm} nm")
    return float(mass_g_mol * friction_per_ps / integral)


def _finite(x: float | None) -> float:
    return float(x) if x is not None and math.isfinite(x) else 0.0


def _positive(name: str, value: float) -> None:
    try:
        ok = math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidInputError(f"friction calibration: field {name!r}: value {value!r}: "
                                "must be a finite number > 0")
