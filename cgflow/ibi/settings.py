"""Settings, target and per-iteration results of Iterative Boltzmann Inversion.

Units: nm, kJ/mol, ps, bar, K, kg/m^3.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np

from cgflow import units
from cgflow.errors import InvalidInputError
from cgflow.ibi.potential import TabulatedPotential

#: Molar mass of 2,3,4-trimethylpentane C8H18, g/mol (one CG bead).
BEAD_MASS_G_MOL = 114.23


def _check(source: str, name: str, value: Any, ok: bool, expect: str) -> None:
    if not ok:
        raise InvalidInputError(f"{source}: field {name!r}: value {value!r}: {expect}")


@dataclass(frozen=True)
class IBISettings:
    """How IBI runs and when it stops.

    Attributes
    ----------
    temperature_k
        Temperature of the CG runs and of kT in the updates, K.
    cutoff_nm
        Pair cutoff and RDF range, nm; None: the CG preset's ``rcut_nm``.
    grid_dr_nm
        Spacing of the potential grid and of the LAMMPS RDF bins, nm.
    r_min_nm
        Inner end of the potential grid and of the LAMMPS table, nm (a multiple of
        ``grid_dr_nm``); the r^-12 core covers the region up to the reliable RDF.
    table_spacing_nm
        Spacing of the LAMMPS table (the spline through the grid is resampled), nm.
    update_method
        ``"ibi"``: U += a kT ln(g_n/g_t); ``"ihnc"``: the iterative HNC update, which adds
        kT (gamma[g_t] - gamma[g_n]) (:mod:`cgflow.ibi.integral_equation`).
    initial_guess
        First potential: ``"pmf"`` (-kT ln g_t) or ``"hnc"`` (the HNC inversion of g_t,
        -kT ln g_t + kT gamma[g_t]).
    ihnc_start_iteration
        With ``"ihnc"``: iterations before this one use the plain IBI update (the HNC
        linearisation is poor far from the target, e.g. at the potential of mean force).
    hnc_s_min
        Floor of the structure factor in the Ornstein-Zernike division of ``"ihnc"`` and
        ``"hnc"`` (bounds the amplification of small-k errors of the truncated RDF).
    update_factor
        Update factor a of the first iteration.
    adaptive_factor
        If True, a halves after an iteration that raised the RDF deviation by more than
        10 % and grows by 1.5 otherwise, within [``factor_min``, ``factor_max``]
        (:func:`cgflow.ibi.update.adapt_factor`); else it stays ``update_factor``.
    factor_min, factor_max
        Bounds of the adaptive factor.
    g_min
        Reliability threshold of both RDFs for the update.
    smoothing_window
        Savitzky-Golay window (grid points) of the update; < 5 disables smoothing.
    switch_width_nm
        Width of the switching function before the cutoff, nm.
    pressure_correction
        Add a pressure-correction ramp each iteration.
    pressure_method
        ``"virial"`` (amplitude from the virial, default) or ``"simple"`` (VOTCA).
    pressure_factor
        Fraction of the pressure error the ``"virial"`` ramp aims to cancel.
    pressure_drift_weight
        Weight of the pressure drift of the previous iteration (the change not explained
        by its ramp) that the ``"virial"`` ramp also cancels; 0 ignores the drift.
    pressure_max_amplitude_kt
        Cap of the ramp amplitude, kT.
    rdf_tolerance
        Converged when :func:`cgflow.ibi.metrics.rdf_deviation` is below this ...
    pressure_tolerance_bar
        ... and |P_cg - P_target| is below this (bar); ignored without pressure
        correction.
    max_iterations
        Iteration limit; None: the CG preset's ``max_ibi_iterations``.
    """

    temperature_k: float = 298.15
    cutoff_nm: float | None = None
    grid_dr_nm: float = 0.01
    r_min_nm: float = 0.1
    table_spacing_nm: float = 0.001
    update_method: Literal["ibi", "ihnc"] = "ibi"
    initial_guess: Literal["pmf", "hnc"] = "pmf"
    ihnc_start_iteration: int = 0
    hnc_s_min: float = 0.3
    update_factor: float = 1.0
    adaptive_factor: bool = True
    factor_min: float = 0.1
    factor_max: float = 1.0
    g_min: float = 0.02
    smoothing_window: int = 5
    switch_width_nm: float = 0.1
    pressure_correction: bool = True
    pressure_method: Literal["virial", "simple"] = "virial"
    pressure_factor: float = 1.0
    pressure_drift_weight: float = 1.0
    pressure_max_amplitude_kt: float = 1.0
    rdf_tolerance: float = 0.02
    pressure_tolerance_bar: float = 50.0
    max_iterations: int | None = None

    def __post_init__(self) -> None:
        src = "IBI settings"
        pos = ("temperature_k", "grid_dr_nm", "r_min_nm", "table_spacing_nm", "update_factor",
               "factor_min", "factor_max", "g_min", "hnc_s_min", "pressure_factor",
               "pressure_max_amplitude_kt", "rdf_tolerance", "pressure_tolerance_bar")
        for name in pos:
            v = getattr(self, name)
            _check(src, name, v, isinstance(v, int | float) and math.isfinite(v) and v > 0,
                   "must be a finite number > 0")
        _check(src, "switch_width_nm", self.switch_width_nm, self.switch_width_nm >= 0,
               "must be >= 0")
        _check(src, "pressure_drift_weight", self.pressure_drift_weight,
               0 <= self.pressure_drift_weight <= 1, "must be in [0, 1]")
        _check(src, "cutoff_nm", self.cutoff_nm,
               self.cutoff_nm is None or self.cutoff_nm > self.r_min_nm + self.switch_width_nm,
               "must exceed r_min_nm + switch_width_nm")
        _check(src, "pressure_method", self.pressure_method,
               self.pressure_method in ("virial", "simple"), "expected 'virial' or 'simple'")
        _check(src, "update_method", self.update_method,
               self.update_method in ("ibi", "ihnc"), "expected 'ibi' or 'ihnc'")
        _check(src, "initial_guess", self.initial_guess,
               self.initial_guess in ("pmf", "hnc"), "expected 'pmf' or 'hnc'")
        _check(src, "ihnc_start_iteration", self.ihnc_start_iteration,
               isinstance(self.ihnc_start_iteration, int) and self.ihnc_start_iteration >= 0,
               "must be an integer >= 0")
        _check(src, "factor_max", self.factor_max, self.factor_max >= self.factor_min,
               "must be >= factor_min")
        _check(src, "max_iterations", self.max_iterations,
               self.max_iterations is None or self.max_iterations >= 1, "must be >= 1")
        ratio = self.r_min_nm / self.grid_dr_nm
        _check(src, "r_min_nm", self.r_min_nm, abs(ratio - round(ratio)) < 1e-6,
               f"must be a multiple of grid_dr_nm = {self.grid_dr_nm}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IBISettings:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InvalidInputError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidInputError(f"IBI settings: unknown field(s) {unknown}")
        return cls(**d)


@dataclass(frozen=True)
class IBITarget:
    """What the all-atom stage gives IBI.

    Attributes
    ----------
    r_nm
        Bin centres of the target RDF, nm (uniform).
    g
        Target RDF of the centre-of-mass beads.
    density_kg_m3
        Mass density of the all-atom liquid, kg/m^3 (the CG box is built at it).
    pressure_bar, pressure_err_bar
        All-atom pressure and its standard error, bar.
    temperature_k
        Temperature, K.
    mass_g_mol
        Bead mass, g/mol.
    """

    r_nm: np.ndarray
    g: np.ndarray
    density_kg_m3: float
    pressure_bar: float
    temperature_k: float
    pressure_err_bar: float = 0.0
    mass_g_mol: float = BEAD_MASS_G_MOL

    def __post_init__(self) -> None:
        src = "IBI target"
        r = np.asarray(self.r_nm, float)
        g = np.asarray(self.g, float)
        object.__setattr__(self, "r_nm", r)
        object.__setattr__(self, "g", g)
        _check(src, "r_nm", r.shape, r.ndim == 1 and r.size >= 10, "need >= 10 points")
        _check(src, "g", g.shape, g.shape == r.shape, f"must match r_nm {r.shape}")
        _check(src, "g", "non-finite or negative values",
               bool(np.all(np.isfinite(g)) and np.all(g >= 0)), "must be finite and >= 0")
        _check(src, "r_nm", "not increasing", bool(np.all(np.diff(r) > 0)),
               "must be increasing")
        for name in ("density_kg_m3", "temperature_k", "mass_g_mol"):
            v = getattr(self, name)
            _check(src, name, v, math.isfinite(v) and v > 0, "must be a finite number > 0")
        _check(src, "pressure_bar", self.pressure_bar, math.isfinite(self.pressure_bar),
               "must be finite")
        _check(src, "pressure_err_bar", self.pressure_err_bar,
               math.isfinite(self.pressure_err_bar) and self.pressure_err_bar >= 0,
               "must be finite and >= 0")

    @property
    def number_density_nm3(self) -> float:
        """Beads per nm^3."""
        return units.number_density_nm3(self.density_kg_m3, self.mass_g_mol)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["r_nm"], d["g"] = self.r_nm.tolist(), self.g.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IBITarget:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


@dataclass
class IterationResult:
    """Outcome of one IBI iteration.

    Attributes
    ----------
    iteration
        Index, from 0.
    potential
        The potential sampled in this iteration.
    r_nm, g, g_err
        RDF sampled with it on the potential grid, and its standard error (block
        averages).
    pressure_bar, pressure_err_bar
        CG pressure and its standard error (block averages), bar.
    rdf_deviation
        :func:`cgflow.ibi.metrics.rdf_deviation` against the target.
    pressure_deviation_bar
        P_cg - P_target, bar.
    converged
        Both deviations within tolerance: ``potential`` is the result of IBI.
    factor
        Update factor a used to make ``next_potential``.
    next_potential
        The updated potential (None once converged).
    pressure_ramp_amplitude_kj_mol
        Amplitude A of the pressure ramp added (0 without correction), kJ/mol.
    ramp_response_bar_per_kj_mol
        First-order pressure change per kJ/mol of ramp at this structure
        (:func:`cgflow.ibi.update.ramp_response_bar`), None without correction.
    pressure_drift_bar
        Drift of the pressure the ramp also compensated, bar.
    performance_ns_day, wall_time_s
        Speed of the LAMMPS run and its loop time.
    """

    iteration: int
    potential: TabulatedPotential
    r_nm: np.ndarray
    g: np.ndarray
    g_err: np.ndarray
    pressure_bar: float
    pressure_err_bar: float
    rdf_deviation: float
    pressure_deviation_bar: float
    converged: bool
    factor: float
    next_potential: TabulatedPotential | None
    pressure_ramp_amplitude_kj_mol: float = 0.0
    ramp_response_bar_per_kj_mol: float | None = None
    pressure_drift_bar: float = 0.0
    performance_ns_day: float | None = None
    wall_time_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as lists)."""
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, TabulatedPotential):
                v = v.to_dict()
            elif isinstance(v, np.ndarray):
                v = v.tolist()
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IterationResult:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["potential"] = TabulatedPotential.from_dict(d["potential"])
        if d.get("next_potential") is not None:
            d["next_potential"] = TabulatedPotential.from_dict(d["next_potential"])
        for name in ("r_nm", "g", "g_err"):
            d[name] = np.asarray(d[name], float)
        return cls(**d)
