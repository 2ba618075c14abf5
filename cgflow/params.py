"""The 19 bonded force-field parameters of 234TriMePe, and the spaces they are sampled from.

All values are held in GROMACS units (nm, kJ/mol, degrees for equilibrium angles,
kJ/mol/nm^2 and kJ/mol/rad^2 for force constants with the ``k/2`` convention of
GROMACS, kJ/mol for the OPLS Fourier dihedral coefficients of GROMACS dihedral type 5).
:meth:`ParameterSet.to_lammps` and :meth:`ParameterSet.from_lammps` convert to and from
LAMMPS ``units real`` (see :mod:`cgflow.units`).

The field order of :class:`ParameterSet` is the column order of every feature matrix
``X`` in :mod:`cgflow.ml`.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from cgflow import units
from cgflow.errors import InvalidInputError, format_validation_error
from cgflow.userfiles import read_yaml_mapping

#: Bonded parameter names in their canonical order, with their GROMACS unit.
FIELD_UNITS: dict[str, str] = {
    "bond_ctct_k": "kJ/mol/nm^2",
    "bond_ctct_r0": "nm",
    "bond_cthc_k": "kJ/mol/nm^2",
    "bond_cthc_r0": "nm",
    "angle_ctctct_k": "kJ/mol/rad^2",
    "angle_ctctct_theta0": "deg",
    "angle_ctcthc_k": "kJ/mol/rad^2",
    "angle_ctcthc_theta0": "deg",
    "angle_hcthc_k": "kJ/mol/rad^2",
    "angle_hcthc_theta0": "deg",
    "dih_ctctctct_c1": "kJ/mol",
    "dih_ctctctct_c2": "kJ/mol",
    "dih_ctctctct_c3": "kJ/mol",
    "dih_ctctcthc_c1": "kJ/mol",
    "dih_ctctcthc_c2": "kJ/mol",
    "dih_ctctcthc_c3": "kJ/mol",
    "dih_hcctcthc_c1": "kJ/mol",
    "dih_hcctcthc_c2": "kJ/mol",
    "dih_hcctcthc_c3": "kJ/mol",
}
FIELDS: tuple[str, ...] = tuple(FIELD_UNITS)
N_PARAMETERS = len(FIELDS)

#: Sanity bounds of every parameter set, GROMACS units: far wider than any space cgflow
#: samples (the wide space's force constants are 4.2e1-8.3e5, its r0 0.06-0.25 nm, its
#: dihedral coefficients -8.4..8.4 kJ/mol), far narrower than floating point, so that a
#: typo (1e308, 1e-300, r0 in Angstrom as nm) is refused before anything runs.
#: Force constants (kJ/mol/nm^2 for bonds, kJ/mol/rad^2 for angles):
FORCE_CONSTANT_BOUNDS = (1e-3, 1e7)
#: Equilibrium bond lengths, nm:
BOND_LENGTH_BOUNDS_NM = (0.01, 1.0)
#: Equilibrium angles, degrees (open interval):
ANGLE_BOUNDS_DEG = (0.0, 180.0)
#: OPLS Fourier dihedral coefficients, kJ/mol (absolute value at most):
DIHEDRAL_COEFFICIENT_MAX_KJ_MOL = 1e3

#: Field -> (bonded type as in oplsaa.ff, role) for documentation and topology writing.
BOND_TYPES = {"ctct": ("CT", "CT"), "cthc": ("CT", "HC")}
ANGLE_TYPES = {
    "ctctct": ("CT", "CT", "CT"),
    "ctcthc": ("CT", "CT", "HC"),
    "hcthc": ("HC", "CT", "HC"),
}
DIHEDRAL_TYPES = {
    "ctctctct": ("CT", "CT", "CT", "CT"),
    "ctctcthc": ("CT", "CT", "CT", "HC"),
    "hcctcthc": ("HC", "CT", "CT", "HC"),
}


def _check_sanity_range(value: float, what: str, bounds: tuple[float, float], unit: str,
                        positive: bool = False) -> None:
    """Raise ``ValueError`` (for pydantic to name the field) if ``value`` is not > 0 (with
    ``positive``) or lies outside cgflow's sanity ``bounds`` in ``unit``."""
    if positive and value <= 0.0:
        raise ValueError(f"{what} must be > 0 {unit}, got {value!r}")
    lo, hi = bounds
    if not lo <= value <= hi:
        raise ValueError(f"{what} must be within [{lo:g}, {hi:g}] {unit} (cgflow's sanity "
                         f"bounds), got {value!r}")


class ParameterSet(BaseModel):
    """The 19 bonded parameters of 234TriMePe in OPLS-AA form, GROMACS units.

    Bonds and angles are harmonic (GROMACS bond type 1, angle type 1); dihedrals are
    OPLS Fourier series with three coefficients (GROMACS dihedral type 5, C4 = 0).

    Raises
    ------
    pydantic.ValidationError
        On a value that is not a number (a boolean or a string is not), a non-finite
        value, a value outside the sanity bounds (:data:`FORCE_CONSTANT_BOUNDS`,
        :data:`BOND_LENGTH_BOUNDS_NM`, theta0 in (0, 180) degrees,
        :data:`DIHEDRAL_COEFFICIENT_MAX_KJ_MOL`), or an unknown or missing field.
        Use :func:`parameter_set_from_mapping` for an :class:`InvalidInputError` whose
        message names the field and the value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bond_ctct_k: float
    bond_ctct_r0: float
    bond_cthc_k: float
    bond_cthc_r0: float
    angle_ctctct_k: float
    angle_ctctct_theta0: float
    angle_ctcthc_k: float
    angle_ctcthc_theta0: float
    angle_hcthc_k: float
    angle_hcthc_theta0: float
    dih_ctctctct_c1: float
    dih_ctctctct_c2: float
    dih_ctctctct_c3: float
    dih_ctctcthc_c1: float
    dih_ctctcthc_c2: float
    dih_ctctcthc_c3: float
    dih_hcctcthc_c1: float
    dih_hcctcthc_c2: float
    dih_hcctcthc_c3: float

    @field_validator("*", mode="before")
    @classmethod
    def _strictly_a_number(cls, value: Any) -> float:
        # numbers only: a boolean (true read as 1.0) or a string ("1.529") is refused
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"must be a finite number, got {value!r}") from None

    @field_validator("*", mode="after")
    @classmethod
    def _finite_and_physical(cls, value: float, info) -> float:
        name = info.field_name
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        if name.endswith("_k"):
            _check_sanity_range(value, "force constant", FORCE_CONSTANT_BOUNDS,
                                FIELD_UNITS[name], positive=True)
        if name.endswith("_r0"):
            _check_sanity_range(value, "equilibrium bond length", BOND_LENGTH_BOUNDS_NM, "nm",
                                positive=True)
        if name.endswith("_theta0") and not ANGLE_BOUNDS_DEG[0] < value < ANGLE_BOUNDS_DEG[1]:
            raise ValueError(f"equilibrium angle must be in (0, 180) degrees, got {value!r}")
        if name.startswith("dih_"):
            bound = DIHEDRAL_COEFFICIENT_MAX_KJ_MOL
            _check_sanity_range(value, "dihedral coefficient", (-bound, bound), "kJ/mol")
        return value

    # --- identity ---------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Stable id: the first 16 hex digits of a SHA-256 of the values (10 significant
        digits, canonical field order), so that the same parameters always get the same id
        whatever produced them."""
        canonical = ",".join(f"{name}={getattr(self, name):.10g}" for name in FIELDS)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    # --- conversions ------------------------------------------------------------------

    def to_array(self) -> np.ndarray:
        """Values as a (19,) float array in :data:`FIELDS` order, GROMACS units."""
        return np.array([getattr(self, name) for name in FIELDS], dtype=float)

    @classmethod
    def from_array(cls, values: np.ndarray | list[float]) -> ParameterSet:
        """Inverse of :meth:`to_array`."""
        values = np.asarray(values, dtype=float).ravel()
        if values.shape != (N_PARAMETERS,):
            raise InvalidInputError(
                f"parameter array: expected {N_PARAMETERS} values in ParameterSet field order, "
                f"got shape {values.shape}"
            )
        return parameter_set_from_mapping(dict(zip(FIELDS, values.tolist(), strict=True)))

    def to_lammps(self) -> dict[str, float]:
        """Values in LAMMPS ``units real`` conventions.

        Bond K in kcal/mol/Angstrom^2 and angle K in kcal/mol/rad^2 (LAMMPS ``harmonic``
        styles, no factor 1/2), r0 in Angstrom, theta0 in degrees, dihedral K1..K3 in
        kcal/mol (``dihedral_style opls``). Keys are the same field names.
        """
        out: dict[str, float] = {}
        for name in FIELDS:
            v = getattr(self, name)
            if name.startswith("bond_") and name.endswith("_k"):
                out[name] = units.bond_k_gromacs_to_lammps(v)
            elif name.endswith("_r0"):
                out[name] = units.nm_to_angstrom(v)
            elif name.startswith("angle_") and name.endswith("_k"):
                out[name] = units.angle_k_gromacs_to_lammps(v)
            elif name.endswith("_theta0"):
                out[name] = v
            else:
                out[name] = units.kj_to_kcal(v)
        return out

    @classmethod
    def from_lammps(cls, values: Mapping[str, float]) -> ParameterSet:
        """Inverse of :meth:`to_lammps`: a mapping in LAMMPS ``units real`` conventions."""
        return parameter_set_from_mapping(lammps_to_gromacs_values(values))

    def summary(self) -> str:
        """One line per field with its unit, for logs and the CLI."""
        return "\n".join(f"{n:22s} {getattr(self, n):14.6g} {FIELD_UNITS[n]}" for n in FIELDS)


def lammps_to_gromacs_values(values: Mapping[str, float]) -> dict[str, float]:
    """Convert a mapping of field -> value in LAMMPS real units to GROMACS units.

    Unknown keys are passed through unchanged, so that validation reports them.
    """
    out: dict[str, Any] = {}
    for name, v in values.items():
        if (not isinstance(v, int | float) or isinstance(v, bool)
                or not math.isfinite(_as_float(v))):
            out[name] = v  # validation reports it
        elif name.startswith("bond_") and name.endswith("_k"):
            out[name] = units.bond_k_lammps_to_gromacs(v)
        elif name.endswith("_r0"):
            out[name] = units.angstrom_to_nm(v)
        elif name.startswith("angle_") and name.endswith("_k"):
            out[name] = units.angle_k_lammps_to_gromacs(v)
        elif name.endswith("_theta0") or name not in FIELD_UNITS:
            out[name] = v
        else:
            out[name] = units.kcal_to_kj(v)
    return out


def _as_float(v: int | float) -> float:
    """``float(v)``, or NaN for an int too large for a float."""
    try:
        return float(v)
    except OverflowError:
        return math.nan


def parameter_set_from_mapping(
    values: Mapping[str, Any], *, units_system: Literal["gromacs", "lammps"] = "gromacs",
    source: str = "parameter set",
) -> ParameterSet:
    """Validate a mapping into a :class:`ParameterSet`.

    Parameters
    ----------
    values
        Field name -> value.
    units_system
        ``"gromacs"`` (default) or ``"lammps"`` (real units, converted).
    source
        Where the values came from, for the error message (a file name, say).

    Raises
    ------
    InvalidInputError
        Naming each offending field and its value.
    """
    if not isinstance(values, Mapping):
        raise InvalidInputError(f"{source}: expected a mapping of parameter names to values, "
                                f"got {type(values).__name__}: {values!r}")
    if units_system == "lammps":
        values = lammps_to_gromacs_values(values)
    elif units_system != "gromacs":
        raise InvalidInputError(f"{source}: field 'units': unknown value {units_system!r} "
                                "(expected 'gromacs' or 'lammps')")
    try:
        return ParameterSet.model_validate(dict(values))
    except ValidationError as exc:
        raise InvalidInputError(format_validation_error(exc, source)) from None


#: The unit systems a parameter-set file (or a campaign spec's ``units:``) may name.
UNIT_SYSTEMS = ("gromacs", "lammps")


def read_parameter_set_file(
    path: str | Path, units: Literal["gromacs", "lammps"] | None = None, *,
    overrides: Mapping[str, Any] | None = None,
) -> ParameterSet:
    """Read a parameter-set file (YAML or JSON) the same way for every command.

    The file is a mapping of the 19 fields (read by :func:`cgflow.userfiles.read_yaml_mapping`)
    with an optional ``units: gromacs | lammps`` key, as in a campaign spec, where
    ``units:`` applies to its ``parameter_sets``.

    Parameters
    ----------
    path
        The file.
    units
        The unit system asked for on the command line (``--units``), or ``None``. It is
        the default when the file names none; a file naming another one is an error
        naming both. Without either, GROMACS units.
    overrides
        Field -> value taken over the file's values (``cgflow predict --set``), in the
        same units.

    Raises
    ------
    InvalidInputError
        An unreadable or malformed file, an unknown ``units`` value, a conflict between
        ``units`` and the file, or an invalid field (each named with its value).
    """
    values = read_yaml_mapping(path, "parameter set")
    source = f"parameter set {Path(path)}"
    in_file = values.pop("units", None)
    for where, value in (("--units", units), (f"{source}: field 'units'", in_file)):
        if value is not None and value not in UNIT_SYSTEMS:
            raise InvalidInputError(f"{where}: unknown value {value!r} (expected 'gromacs' "
                                    "or 'lammps')")
    if units is not None and in_file is not None and units != in_file:
        raise InvalidInputError(f"--units {units} conflicts with {source}: field 'units': "
                                f"value {in_file!r}; give one of them, or the same")
    values.update(overrides or {})
    return parameter_set_from_mapping(values, units_system=in_file or units or "gromacs",
                                      source=source)


# --- the OPLS-AA reference ------------------------------------------------------------------

#: OPLS-AA bonded parameters of GROMACS' own ``oplsaa.ff/ffbonded.itp`` for the atom types
#: of 234TriMePe (CT: opls_135/opls_137, HC: opls_140). The RB dihedral coefficients of
#: ffbonded.itp are converted to the equivalent OPLS Fourier coefficients:
#: CT-CT-CT-CT (2.92880 -1.46440 0.20920 -1.67360) -> V1..V3 = 5.4392, -0.2092, 0.8368;
#: X-CT-CT-HC (0.62760 1.88280 0 -2.51040) -> 0, 0, 1.2552 kJ/mol.
OPLSAA_REFERENCE = ParameterSet(
    bond_ctct_k=224262.4,
    bond_ctct_r0=0.15290,
    bond_cthc_k=284512.0,
    bond_cthc_r0=0.10900,
    angle_ctctct_k=488.273,
    angle_ctctct_theta0=112.700,
    angle_ctcthc_k=313.800,
    angle_ctcthc_theta0=110.700,
    angle_hcthc_k=276.144,
    angle_hcthc_theta0=107.800,
    dih_ctctctct_c1=5.4392,
    dih_ctctctct_c2=-0.2092,
    dih_ctctctct_c3=0.8368,
    dih_ctctcthc_c1=0.0,
    dih_ctctcthc_c2=0.0,
    dih_ctctcthc_c3=1.2552,
    dih_hcctcthc_c1=0.0,
    dih_hcctcthc_c2=0.0,
    dih_hcctcthc_c3=1.2552,
)


def fourier_to_rb(c1: float, c2: float, c3: float) -> tuple[float, ...]:
    """OPLS Fourier V1..V3 -> Ryckaert-Bellemans C0..C5 (GROMACS dihedral type 3)."""
    return (c2 + 0.5 * (c1 + c3), 0.5 * (-c1 + 3.0 * c3), -c2, -2.0 * c3, 0.0, 0.0)


# --- parameter spaces ---------------------------------------------------------------------


class Bounds(BaseModel):
    """Closed interval [low, high] of one parameter, GROMACS units."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"bounds must be finite, got [{self.low!r}, {self.high!r}]")
        if self.low > self.high:
            raise ValueError(f"low must be <= high, got [{self.low!r}, {self.high!r}]")
        return self


class ParameterSpace(BaseModel):
    """A box in the 19-dimensional parameter space, with seeded sampling.

    Every field of :class:`ParameterSet` has bounds (a fixed value is a zero-width
    interval). Bounds are in GROMACS units; :meth:`from_lammps_bounds` builds a space
    from bounds in LAMMPS real units.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    bounds: dict[str, Bounds]

    @model_validator(mode="after")
    def _all_fields(self) -> ParameterSpace:
        missing = [f for f in FIELDS if f not in self.bounds]
        unknown = [f for f in self.bounds if f not in FIELD_UNITS]
        if unknown:
            raise ValueError(f"unknown parameter(s) in bounds: {unknown}")
        if missing:
            raise ValueError(f"bounds missing for parameter(s): {missing}")
        # every corner must be a valid ParameterSet
        for corner in (self.lows(), self.highs()):
            ParameterSet.from_array(corner)
        return self

    def lows(self) -> np.ndarray:
        """Lower bounds in :data:`FIELDS` order."""
        return np.array([self.bounds[f].low for f in FIELDS])

    def highs(self) -> np.ndarray:
        """Upper bounds in :data:`FIELDS` order."""
        return np.array([self.bounds[f].high for f in FIELDS])

    def sample(
        self, n: int, seed: int, method: Literal["lhs", "uniform"] = "lhs"
    ) -> list[ParameterSet]:
        """Draw ``n`` parameter sets, reproducibly for a given ``seed`` and ``method``.

        ``"lhs"`` is a Latin hypercube (scipy.stats.qmc, each dimension stratified into
        ``n`` bins); ``"uniform"`` draws independently and uniformly in the box.
        """
        if n < 0:
            raise InvalidInputError(f"field 'n_sets': must be >= 0, got {n!r}")
        if n == 0:
            return []
        if method == "lhs":
            from scipy.stats import qmc

            unit = qmc.LatinHypercube(d=N_PARAMETERS, seed=seed).random(n)
        elif method == "uniform":
            unit = np.random.default_rng(seed).random((n, N_PARAMETERS))
        else:
            raise InvalidInputError(f"field 'sampling': unknown value {method!r} "
                                    "(expected 'lhs' or 'uniform')")
        lo, hi = self.lows(), self.highs()
        return [ParameterSet.from_array(lo + u * (hi - lo)) for u in unit]

    def contains(self, ps: ParameterSet, rtol: float = 1e-9) -> list[str]:
        """Names of the fields of ``ps`` outside this space (empty when inside)."""
        out = []
        for f in FIELDS:
            b = self.bounds[f]
            tol = rtol * max(abs(b.low), abs(b.high), 1.0)
            if not b.low - tol <= getattr(ps, f) <= b.high + tol:
                out.append(f)
        return out

    @classmethod
    def from_lammps_bounds(
        cls, name: str, bounds: Mapping[str, tuple[float, float]], description: str = ""
    ) -> ParameterSpace:
        """Build a space from bounds in LAMMPS real units (see :meth:`ParameterSet.to_lammps`)."""
        conv = {}
        for f, (lo, hi) in bounds.items():
            a = lammps_to_gromacs_values({f: lo})[f]
            b = lammps_to_gromacs_values({f: hi})[f]
            conv[f] = Bounds(low=min(a, b), high=max(a, b))
        return cls(name=name, description=description, bounds=conv)


def _narrow_space() -> ParameterSpace:
    ref = OPLSAA_REFERENCE
    bounds = {}
    for f in FIELDS:
        v = getattr(ref, f)
        if f.endswith("_theta0"):
            lo, hi = v - 5.0, v + 5.0
        elif f.startswith("dih_"):
            lo, hi = v - 1.0, v + 1.0  # kJ/mol: absolute, since several references are 0
        else:
            lo, hi = 0.8 * v, 1.2 * v  # force constants and r0: +-20 %
            if f.endswith("_r0"):
                lo, hi = 0.95 * v, 1.05 * v
        bounds[f] = Bounds(low=lo, high=hi)
    return ParameterSpace(
        name="narrow",
        description="Around the OPLS-AA reference: force constants +-20 %, r0 +-5 %, "
        "theta0 +-5 degrees, dihedral coefficients +-1 kJ/mol.",
        bounds=bounds,
    )


def _wide_space() -> ParameterSpace:
    b: dict[str, tuple[float, float]] = {}
    for t in BOND_TYPES:
        b[f"bond_{t}_k"] = (20.0, 990.0)
    b["bond_ctct_r0"] = (1.0, 2.5)
    b["bond_cthc_r0"] = (0.6, 1.8)
    for t in ANGLE_TYPES:
        b[f"angle_{t}_k"] = (5.0, 100.0)
        b[f"angle_{t}_theta0"] = (70.0, 140.0)
    for t in DIHEDRAL_TYPES:
        for i in (1, 2, 3):
            b[f"dih_{t}_c{i}"] = (-2.0, 2.0)
    return ParameterSpace.from_lammps_bounds(
        "wide", b,
        description="Like the original study's space, LAMMPS real units: bond K 20-990 "
        "kcal/mol/A^2, r0 1.0-2.5 A (C-C) and 0.6-1.8 A (C-H), angle K 5-100 "
        "kcal/mol/rad^2, theta0 70-140 deg, dihedral K1..K3 -2..2 kcal/mol.",
    )


#: The shipped parameter spaces by name.
SPACES: dict[str, ParameterSpace] = {"narrow": _narrow_space(), "wide": _wide_space()}


def get_space(name: str) -> ParameterSpace:
    """A shipped space by name; raises :class:`InvalidInputError` naming the value."""
    try:
        return SPACES[name]
    except KeyError:
        raise InvalidInputError(
            f"field 'space': unknown value {name!r} (expected one of {sorted(SPACES)})"
        ) from None


def parameter_set_to_json(ps: ParameterSet) -> str:
    """Canonical JSON of a parameter set (field order, full precision)."""
    return json.dumps({f: getattr(ps, f) for f in FIELDS})
