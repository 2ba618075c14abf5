"""Settings, target and per-iteration results of Iterative Boltzmann Inversion.

Units: nm, kJ/mol, ps, bar, K, kg/m^3.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cgflow import units
from cgflow.errors import InvalidInputError
from cgflow.ibi.monitor import MonitorThresholds
from cgflow.ibi.potential import TabulatedPotential
from cgflow.molecule.structure import TRIMETHYLPENTANE_SMILES

#: Molar mass of 2,3,4-trimethylpentane C8H18, g/mol (one CG bead).
BEAD_MASS_G_MOL = 114.23


def _check(source: str, name: str, value: Any, ok: bool, expect: str) -> None:
    if not ok:
        raise InvalidInputError(f"{source}: field {name!r}: value {value!r}: {expect}")


def _positive(default: float, **bounds: float) -> Any:
    """A finite float > 0 (with optional further bounds)."""
    return Field(default=default, gt=0, allow_inf_nan=False, **bounds)


class IBISettings(BaseModel):
    """How IBI runs and when it stops: the ``ibi:`` section of a campaign spec.

    Every field has its one default here; a campaign spec may set any of them (an
    unknown key is an error naming it). The CG stage resolves three of them per
    parameter set (:func:`cgflow.stages.cg.make_settings`): ``temperature_k`` is the
    all-atom run's, ``cutoff_nm`` is shortened to the range of the target RDF, and
    ``pressure_tolerance_bar`` is at least the all-atom pressure's standard error.

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
    acceleration
        ``"none"``: each iteration takes its own step (the update above, then the pressure
        ramp); ``"anderson"``: Anderson mixing of the structural step with the last
        ``anderson_memory`` steps of the unbroken chain of iterations
        (:func:`cgflow.ibi.update.anderson_step`), a secant (quasi-Newton) step; the
        pressure ramp is added after it. With it the update factor stays
        ``update_factor`` (the step's own safeguards replace the adaptation): the plain
        step is taken when the history is not trusted (a coefficient above
        ``anderson_max_coefficient``) and after an iteration whose score (RDF and
        pressure deviations over their tolerances) rose
        by more than 10 %.
    anderson_memory, anderson_max_coefficient
        See ``acceleration``.
    initial_guess
        First potential: ``"pmf"`` (-kT ln g_t), ``"hnc"`` (the HNC inversion of g_t,
        -kT ln g_t + kT gamma[g_t]), ``"inverse"`` (the learned structure-to-potential
        inverse in ``inverse_model``, :class:`cgflow.ml.inverse.StructureInverse`, given
        g_t, the density, temperature, bead mass and pressure of the target) or
        ``"auto"`` (default): the inverse shipped with cgflow where it covers the set's
        grid, temperature and bead mass (:func:`cgflow.ml.inverse.shipped_inverse_for`;
        the ``tiny`` and ``reference`` presets at 298 K, and the longer cutoff of the
        ``demo`` and ``paper`` presets, 0 beyond the inverse's 1.2 nm), or the one in
        ``inverse_model``
        when given, else the PMF; resolved per set by
        :func:`cgflow.stages.cg.make_settings`.
    inverse_model
        Path of the JSON file of the inverse for ``initial_guess: inverse``.
    ihnc_start_iteration
        With ``"ihnc"``: iterations before this one use the plain IBI update (the HNC
        linearisation is poor far from the target, e.g. at the potential of mean force).
    hnc_s_min
        Floor of the structure factor in the Ornstein-Zernike division of ``"ihnc"`` and
        ``"hnc"`` (bounds the amplification of small-k errors of the truncated RDF).
    update_factor
        Update factor a of the first iteration (at most 2).
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
        Width of the switching function before the cutoff, nm (at most 0.5).
    pressure_correction
        Add a pressure-correction ramp each iteration.
    pressure_method
        ``"virial"`` (amplitude from the virial, default) or ``"simple"`` (VOTCA).
    pressure_factor
        Fraction of the pressure error the ``"virial"`` ramp aims to cancel (at most 1).
    pressure_drift_weight
        Weight of the pressure drift of the previous iteration (the change not explained
        by its ramp) that the ``"virial"`` ramp also cancels; 0 ignores the drift.
    pressure_max_amplitude_kt
        Cap of the ramp amplitude, kT.
    rdf_tolerance
        Converged when :func:`cgflow.ibi.metrics.rdf_deviation` is below this (< 1) ...
    pressure_tolerance_bar
        ... and |P_cg - P_target| is below this (bar); ignored without pressure
        correction.
    max_iterations
        Iteration limit, at most 200 (each iteration is a Firework); None: the CG
        preset's ``max_ibi_iterations``.
    monitor
        Thresholds of the IBI monitor's diagnoses and corrections
        (:class:`cgflow.ibi.monitor.MonitorThresholds`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature_k: float = _positive(298.15)
    cutoff_nm: float | None = None
    grid_dr_nm: float = _positive(0.01)
    r_min_nm: float = _positive(0.1)
    table_spacing_nm: float = _positive(0.001)
    update_method: Literal["ibi", "ihnc"] = "ibi"
    acceleration: Literal["none", "anderson"] = "none"
    anderson_memory: int = Field(default=3, ge=1, le=10)
    anderson_max_coefficient: float = _positive(2.0)
    initial_guess: Literal["auto", "pmf", "hnc", "inverse"] = "auto"
    inverse_model: str | None = None
    ihnc_start_iteration: int = Field(default=0, ge=0)
    hnc_s_min: float = _positive(0.3)
    update_factor: float = _positive(1.0, le=2.0)
    adaptive_factor: bool = True
    factor_min: float = _positive(0.1)
    factor_max: float = _positive(1.0)
    g_min: float = _positive(0.02)
    smoothing_window: int = 5
    switch_width_nm: float = Field(default=0.1, ge=0, le=0.5, allow_inf_nan=False)
    pressure_correction: bool = True
    pressure_method: Literal["virial", "simple"] = "virial"
    pressure_factor: float = _positive(1.0, le=1.0)
    pressure_drift_weight: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)
    pressure_max_amplitude_kt: float = _positive(1.0)
    rdf_tolerance: float = _positive(0.02, lt=1.0)
    pressure_tolerance_bar: float = _positive(50.0)
    max_iterations: int | None = Field(default=None, ge=1, le=200)
    monitor: MonitorThresholds = Field(default_factory=MonitorThresholds)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidInputError.from_validation_error(exc, "IBI settings") from None

    @model_validator(mode="after")
    def _consistent(self) -> IBISettings:
        if self.cutoff_nm is not None and not self.cutoff_nm > self.r_min_nm + \
                self.switch_width_nm:
            raise ValueError(f"cutoff_nm = {self.cutoff_nm}: must exceed r_min_nm + "
                             "switch_width_nm")
        if self.initial_guess == "inverse" and not self.inverse_model:
            raise ValueError("initial_guess = 'inverse': needs inverse_model (the path of "
                             "the inverse's JSON file)")
        if self.factor_max < self.factor_min:
            raise ValueError(f"factor_max = {self.factor_max}: must be >= factor_min")
        ratio = self.r_min_nm / self.grid_dr_nm
        if abs(ratio - round(ratio)) >= 1e-6:
            raise ValueError(f"r_min_nm = {self.r_min_nm}: must be a multiple of "
                             f"grid_dr_nm = {self.grid_dr_nm}")
        return self

    def replace(self, **changes: Any) -> IBISettings:
        """A copy with ``changes`` applied and validated."""
        return IBISettings(**(self.model_dump() | changes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IBISettings:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InvalidInputError`."""
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
        Bead mass, g/mol (the molecule's molar mass).
    molecule_smiles
        Canonical SMILES of the molecule the bead stands for (default
        2,3,4-trimethylpentane's): a learned inverse applies only to its own molecule.
    """

    r_nm: np.ndarray
    g: np.ndarray
    density_kg_m3: float
    pressure_bar: float
    temperature_k: float
    pressure_err_bar: float = 0.0
    mass_g_mol: float = BEAD_MASS_G_MOL
    molecule_smiles: str = TRIMETHYLPENTANE_SMILES

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
