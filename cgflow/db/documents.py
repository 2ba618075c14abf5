"""Schemas of everything cgflow stores in the job database (pydantic v2 documents).

Every document carries ``schema_version`` (:data:`SCHEMA_VERSION`) and ``created_at`` /
``updated_at`` (timezone-aware UTC datetimes, millisecond precision as in BSON). The
MongoDB ``_id`` is the field ``id`` (alias ``_id``) and is derived from the document's
natural key, so that writing the same thing twice updates one document:

===================  =============================  ======================================
document             ``_id``                        collection (see :mod:`cgflow.db.store`)
===================  =============================  ======================================
ParameterSetDoc      ``param_id``                   ``parameter_sets``
AARunDoc             ``param_id:preset``            ``aa_runs``
IBIIterationDoc      ``param_id:preset:iteration``  ``ibi_iterations``
PotentialDoc         ``param_id:preset``            ``potentials``
CGRunDoc             ``param_id:preset``            ``cg_runs``
FrictionDoc          ``param_id:preset``            ``frictions``
ModelDoc             ``campaign:name``              ``models`` (+ GridFS ``model_blobs``)
ValidationDoc        ``models_campaign:param_id:    ``validations``
                     preset``
ActiveRoundDoc       ``campaign:round``             ``active_rounds``
SyntheticPairDoc     ``campaign:index``             ``synthetic_pairs``
===================  =============================  ======================================

A parameter set is run once per preset whatever the campaign: the run documents record
in ``campaign`` the campaign that launched them, and :class:`ParameterSetDoc` lists in
``campaigns`` every campaign that contains the set.

Units are GROMACS units throughout (nm, ps, kJ/mol, bar, K, kg/m^3) and are spelled out in
field names. Arrays (RDFs, MSDs, tabulated potentials) are stored inline as plain lists
of floats. All floats must be finite (NaN and infinity are rejected); an unknown value is
``None``.

:class:`ParameterSetDoc`, :class:`AARunDoc` and their parts reject unknown fields. The
documents of the later stages (:class:`IBIIterationDoc`, :class:`PotentialDoc`,
:class:`CGRunDoc`, :class:`ModelDoc`) accept extra fields, which are stored as given, so
that those stages can grow without a schema change; their listed fields are validated.
"""

from __future__ import annotations

import json
import math
from abc import abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cgflow.errors import InvalidInputError, format_validation_error
from cgflow.ml.active_learning import BatchSelection
from cgflow.molecule.registry import molecule_set_id
from cgflow.params import FIELDS, ParameterSet

#: Version of the document schemas written by this cgflow.
SCHEMA_VERSION = 1

#: Status of a run (AA or CG).
RunStatus = Literal["running", "completed", "failed"]


def utcnow() -> datetime:
    """Now, timezone-aware UTC, truncated to milliseconds (BSON's precision)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (as BSON returns them); aware ones are converted."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _json_safe(value: Any) -> Any:
    """A copy made only of JSON/BSON types (dict with str keys, list, str, numbers, bool,
    None); other objects become their ``str``."""
    return json.loads(json.dumps(value, default=str, allow_nan=False))


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """Like :func:`cgflow.errors.format_validation_error` (each field named with its value),
    with long values shortened and a document-level error given by its message alone."""
    lines = [f"{source}: {exc.error_count()} invalid field(s)"]
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        if not err["loc"]:
            lines.append(f"  {msg}")
            continue
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            lines.append(f"  field '{loc}': missing (required)")
            continue
        value = repr(err.get("input"))
        if len(value) > 200:
            value = value[:200] + "..."
        lines.append(f"  field '{loc}': value {value}: {msg}")
    return "\n".join(lines)


def _no_colon(value: str) -> str:
    if ":" in value:
        raise ValueError(f"must not contain ':' (it separates the parts of document ids), "
                         f"got {value!r}")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
#: A parameter set id (:attr:`cgflow.params.ParameterSet.id`): 16 lowercase hex digits.
ParamId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
#: A campaign name.
CampaignName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^$\x00]")]
#: A preset name (:mod:`cgflow.presets`).
PresetName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_colon)]
JsonDict = Annotated[dict[str, Any], AfterValidator(_json_safe)]


class _Part(BaseModel):
    """A nested part of a document: strict, finite floats."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Document(BaseModel):
    """Base of stored documents: ``_id``, ``schema_version``, ``created_at``, ``updated_at``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    id: str | None = Field(default=None, alias="_id")
    schema_version: int = SCHEMA_VERSION
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, value: int) -> int:
        if not 1 <= value <= SCHEMA_VERSION:
            raise ValueError(f"schema version {value} is not supported by this cgflow "
                             f"(it reads 1..{SCHEMA_VERSION}); upgrade cgflow")
        return value

    @abstractmethod
    def natural_id(self) -> str:
        """The ``_id`` this document must have, from its key fields."""

    @model_validator(mode="after")
    def _check_id(self) -> Self:
        expected = self.natural_id()
        if self.id is None:
            self.id = expected
        elif self.id != expected:
            raise ValueError(f"_id {self.id!r} does not match its key fields "
                             f"(expected {expected!r})")
        return self

    def to_mongo(self) -> dict[str, Any]:
        """The document as stored (``_id`` key, datetimes as datetimes)."""
        return self.model_dump(mode="python", by_alias=True)

    @classmethod
    def validated(cls, data: Any, what: str | None = None) -> Self:
        """Validate ``data`` (a mapping or a document), raising :class:`InvalidInputError`
        that names each bad field and its value."""
        if isinstance(data, cls):
            data = data.model_dump(by_alias=True)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInputError(describe_validation_error(exc, what or cls.__name__)) from None


# --- parts ----------------------------------------------------------------------------------


class Estimate(_Part):
    """A mean with its standard error (same unit as named by the field holding it)."""

    mean: float
    #: standard error of the mean (block averaging or fit error); None if not estimated.
    err: float | None = Field(default=None, ge=0)


class StageTiming(_Part):
    """Wall time of one stage of a run (s), the simulation speed (ns/day) and the time
    step finally used (ps) when meaningful."""

    wall_s: float = Field(ge=0)
    ns_per_day: float | None = Field(default=None, ge=0)
    dt_ps: float | None = Field(default=None, gt=0)


class RDFData(_Part):
    """A radial distribution function g(r) on a grid of bin centres.

    ``r_nm`` strictly increasing, in nm; ``g`` dimensionless, >= 0; ``n_frames`` is the
    number of trajectory frames averaged.
    """

    r_nm: list[float] = Field(min_length=2)
    g: list[float] = Field(min_length=2)
    n_frames: int = Field(ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _same_length(r_nm=self.r_nm, g=self.g)
        _increasing("r_nm", self.r_nm, lower=0.0)
        if min(self.g) < 0.0:
            raise ValueError(f"g must be >= 0, got a minimum of {min(self.g)!r}")
        return self


class MSDData(_Part):
    """Mean-squared displacement of molecular centres of mass against lag time.

    ``lag_ps`` strictly increasing, in ps; ``msd_nm2`` in nm^2.
    """

    lag_ps: list[float] = Field(min_length=2)
    msd_nm2: list[float] = Field(min_length=2)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _same_length(lag_ps=self.lag_ps, msd_nm2=self.msd_nm2)
        _increasing("lag_ps", self.lag_ps, lower=0.0)
        return self


class DiffusionData(_Part):
    """Self-diffusion coefficient from the Einstein relation, nm^2/ps.

    Attributes
    ----------
    d_nm2_ps, d_err_nm2_ps
        D from a linear fit of MSD(t) = 6 D t (+ c) over ``fit_start_ps``..``fit_end_ps``
        in the periodic box used, and its standard error.
    d_xyz_nm2_ps
        D along x, y and z (MSD_i = 2 D_i t).
    yeh_hummer_nm2_ps
        The Yeh-Hummer finite-size correction k_B T xi / (6 pi eta L) added to D for an
        infinite system, when a viscosity is known; else None.
    d_corrected_nm2_ps
        ``d_nm2_ps + yeh_hummer_nm2_ps`` (None without the correction).
    viscosity_pa_s
        Shear viscosity used for the correction, Pa s (None if not estimated).
    """

    d_nm2_ps: float
    d_err_nm2_ps: float | None = Field(default=None, ge=0)
    d_xyz_nm2_ps: list[float] = Field(min_length=3, max_length=3)
    fit_start_ps: float = Field(ge=0)
    fit_end_ps: float
    yeh_hummer_nm2_ps: float | None = None
    d_corrected_nm2_ps: float | None = None
    viscosity_pa_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.fit_end_ps <= self.fit_start_ps:
            raise ValueError(f"fit window must have fit_end_ps > fit_start_ps, got "
                             f"{self.fit_start_ps!r}..{self.fit_end_ps!r}")
        return self


class AAResults(_Part):
    """Results of the all-atom production run (GROMACS units).

    Scalars are plain fields with their standard error in a ``*_err_*`` field (block
    averaging over production; ``None`` if not estimated); the RDF, MSD and diffusion
    analysis are nested parts.

    Attributes
    ----------
    n_molecules
        Molecules in the box.
    production_ps
        Length of the analysed production run, ps.
    density_kg_m3, density_err_kg_m3
        Mass density, kg/m^3.
    pressure_bar, pressure_err_bar
        Pressure, bar.
    temperature_k, temperature_err_k
        Temperature, K.
    box_length_nm
        Mean edge of the cubic box during production, nm (NPT).
    rdf
        Centre-of-mass RDF of the molecules (the IBI target).
    msd
        Centre-of-mass MSD.
    diffusion
        D_AA from the MSD (see :class:`DiffusionData`).
    """

    n_molecules: int = Field(gt=1)
    production_ps: float | None = Field(default=None, gt=0)
    density_kg_m3: float = Field(gt=0)
    density_err_kg_m3: float | None = Field(default=None, ge=0)
    pressure_bar: float
    pressure_err_bar: float | None = Field(default=None, ge=0)
    temperature_k: float = Field(gt=0)
    temperature_err_k: float | None = Field(default=None, ge=0)
    box_length_nm: float = Field(gt=0)
    rdf: RDFData
    msd: MSDData
    diffusion: DiffusionData

    @property
    def d_nm2_ps(self) -> float:
        """D_AA in the simulated box, nm^2/ps (``diffusion.d_nm2_ps``)."""
        return self.diffusion.d_nm2_ps

    @property
    def d_err_nm2_ps(self) -> float | None:
        """Standard error of D_AA, nm^2/ps (``diffusion.d_err_nm2_ps``)."""
        return self.diffusion.d_err_nm2_ps

    @classmethod
    def from_flat(cls, data: Any) -> AAResults:
        """Build from a flat layout (a mapping or a pydantic model) that spells the
        nested parts as prefixed fields: ``rdf_r_nm``, ``rdf_g``, ``rdf_n_frames``,
        ``msd_lag_ps``, ``msd_nm2``, ``d_nm2_ps``, ``d_err_nm2_ps``, ``d_xyz_nm2_ps``,
        ``d_fit_start_ps``, ``d_fit_end_ps``, ``yeh_hummer_nm2_ps``, ``d_corrected_nm2_ps``,
        ``viscosity_pa_s``; other keys are taken as they are.

        Raises
        ------
        InvalidInputError
            Naming each bad or missing field (in the nested layout).
        """
        flat = dict(data.model_dump() if isinstance(data, BaseModel) else data)
        nested: dict[str, Any] = {"rdf": {}, "msd": {}, "diffusion": {}}
        moves = {
            "rdf_r_nm": ("rdf", "r_nm"), "rdf_g": ("rdf", "g"),
            "rdf_n_frames": ("rdf", "n_frames"),
            "msd_lag_ps": ("msd", "lag_ps"), "msd_nm2": ("msd", "msd_nm2"),
            "d_nm2_ps": ("diffusion", "d_nm2_ps"), "d_err_nm2_ps": ("diffusion", "d_err_nm2_ps"),
            "d_xyz_nm2_ps": ("diffusion", "d_xyz_nm2_ps"),
            "d_fit_start_ps": ("diffusion", "fit_start_ps"),
            "d_fit_end_ps": ("diffusion", "fit_end_ps"),
            "yeh_hummer_nm2_ps": ("diffusion", "yeh_hummer_nm2_ps"),
            "d_corrected_nm2_ps": ("diffusion", "d_corrected_nm2_ps"),
            "viscosity_pa_s": ("diffusion", "viscosity_pa_s"),
        }
        for key, value in flat.items():
            if key in moves:
                part, field = moves[key]
                nested[part][field] = value
            else:
                nested[key] = value
        try:
            return cls.model_validate(nested)
        except ValidationError as exc:
            raise InvalidInputError(describe_validation_error(exc, "AA results")) from None


class PotentialTable(_Part):
    """A pair potential tabulated on a grid: ``r_nm`` (nm), ``u_kj_mol`` (kJ/mol),
    ``f_kj_mol_nm`` = -dU/dr (kJ/mol/nm)."""

    r_nm: list[float] = Field(min_length=2)
    u_kj_mol: list[float] = Field(min_length=2)
    f_kj_mol_nm: list[float] = Field(min_length=2)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _same_length(r_nm=self.r_nm, u_kj_mol=self.u_kj_mol, f_kj_mol_nm=self.f_kj_mol_nm)
        _increasing("r_nm", self.r_nm, lower=0.0)
        return self


def _same_length(**arrays: list[float]) -> None:
    lengths = {name: len(v) for name, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays must have the same length, got {lengths}")


def _increasing(name: str, values: list[float], lower: float) -> None:
    if values[0] < lower:
        raise ValueError(f"{name} must start at >= {lower}, got {values[0]!r}")
    for a, b in zip(values, values[1:], strict=False):
        if not b > a:
            raise ValueError(f"{name} must be strictly increasing, got {a!r} then {b!r}")


# --- documents ------------------------------------------------------------------------------


class MoleculeInfo(_Part):
    """The molecule a run simulated and its state point
    (:meth:`cgflow.molecule.registry.MoleculeSpec.summary`)."""

    name: str = Field(min_length=1)
    smiles: str = Field(min_length=1)
    residue: str = Field(min_length=1, max_length=5)
    atoms_per_molecule: int = Field(gt=1)
    molar_mass_g_mol: float = Field(gt=0)
    temperature_k: float = Field(gt=0)
    pressure_bar: float = Field(gt=0)


class ParameterSetDoc(Document):
    """A parameter set (on a molecule) and the campaigns that contain it.

    ``params`` holds the 19 fields of :class:`cgflow.params.ParameterSet` in GROMACS units
    (``units`` is always ``"gromacs"``). ``molecule`` is the molecule and state point it
    runs on (None: 2,3,4-trimethylpentane at 298.15 K and 1 bar, the documents of
    earlier versions); ``param_id`` must equal the set's id on it
    (:func:`cgflow.molecule.registry.molecule_set_id`: the parameter set's own id for the
    default molecule). ``space`` names the parameter space it was drawn from, if any
    (the first one recorded).
    """

    param_id: ParamId
    params: dict[str, float]
    units: Literal["gromacs"] = "gromacs"
    campaigns: list[CampaignName] = Field(default_factory=list)
    space: str | None = None
    molecule: MoleculeInfo | None = None

    def natural_id(self) -> str:
        return self.param_id

    @model_validator(mode="after")
    def _params_match_id(self) -> Self:
        ps = self.parameter_set()
        m = self.molecule
        expected = ps.id if m is None else molecule_set_id(ps.id, m.smiles, m.temperature_k,
                                                           m.pressure_bar)
        if expected != self.param_id:
            raise ValueError(f"param_id {self.param_id!r} is not the id of params "
                             f"(which is {expected!r})")
        if len(set(self.campaigns)) != len(self.campaigns):
            raise ValueError(f"campaigns must not repeat, got {self.campaigns!r}")
        return self

    def parameter_set(self) -> ParameterSet:
        """The validated :class:`~cgflow.params.ParameterSet`."""
        try:
            return ParameterSet.model_validate(self.params)
        except ValidationError as exc:
            raise ValueError(format_validation_error(exc, "params")) from None

    @classmethod
    def from_parameter_set(cls, ps: ParameterSet, campaign: str | None = None,
                           space: str | None = None,
                           molecule: Mapping[str, Any] | None = None) -> ParameterSetDoc:
        """The document of ``ps`` in ``campaign`` (optional) drawn from ``space``, on
        ``molecule`` (a :class:`MoleculeInfo` mapping; None: the default molecule)."""
        m = MoleculeInfo.model_validate(molecule) if molecule is not None else None
        param_id = ps.id if m is None else molecule_set_id(ps.id, m.smiles, m.temperature_k,
                                                           m.pressure_bar)
        return cls.validated({
            "param_id": param_id, "params": {f: getattr(ps, f) for f in FIELDS},
            "campaigns": [campaign] if campaign is not None else [], "space": space,
            "molecule": m,
        }, what="parameter set document")


class AARunDoc(Document):
    """One all-atom (GROMACS) run of a parameter set with a preset.

    Attributes
    ----------
    param_id, preset
        What was run; ``_id`` is ``f"{param_id}:{preset}"``.
    campaign
        The campaign that launched the run.
    campaigns
        Every campaign that uses the run (the launching one first; a campaign that finds
        the run completed links itself here instead of running it again).
    preset_settings
        The preset's full settings (:class:`cgflow.presets.AAPreset` as a dict).
    molecule
        The molecule simulated (name, canonical SMILES, atoms per molecule, molar mass,
        state point); None in documents of earlier versions (2,3,4-trimethylpentane).
    status
        ``running``, ``completed`` (``results`` set) or ``failed`` (``error`` set).
    run_dir
        Directory holding the run's files (trajectories stay there).
    engine
        Engine facts, e.g. ``{"gromacs_version": "2022.5"}``.
    timings, total_wall_s
        Wall time per stage (``em``, ``nvt``, ``npt``, ``production``, ``analysis``, ...)
        and in total, seconds.
    corrections
        Corrections applied by error handlers during the run (JSON-like dicts).
    attempts
        How many times the run was started.
    fw_id, hostname
        The Firework and host that ran it, when known.
    started_at, finished_at
        UTC datetimes of the last start and of completion/failure.
    """

    param_id: ParamId
    campaign: CampaignName
    campaigns: list[CampaignName] = Field(default_factory=list)
    preset: PresetName
    preset_settings: JsonDict = Field(default_factory=dict)
    molecule: MoleculeInfo | None = None
    status: RunStatus = "running"
    run_dir: str = Field(min_length=1)
    engine: JsonDict = Field(default_factory=dict)
    timings: dict[str, StageTiming] = Field(default_factory=dict)
    total_wall_s: float | None = Field(default=None, ge=0)
    corrections: list[JsonDict] = Field(default_factory=list)
    error: str | None = None
    results: AAResults | None = None
    attempts: int = Field(default=1, ge=1)
    fw_id: int | None = None
    hostname: str | None = None
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None

    def natural_id(self) -> str:
        return aa_run_id(self.param_id, self.preset)

    @model_validator(mode="after")
    def _status_consistent(self) -> Self:
        if self.campaign not in self.campaigns:
            self.campaigns.insert(0, self.campaign)
        if len(set(self.campaigns)) != len(self.campaigns):
            raise ValueError(f"campaigns must not repeat, got {self.campaigns!r}")
        if self.status == "completed" and (self.results is None or self.error is not None):
            raise ValueError("a completed run needs results and no error")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed run needs an error message")
        if self.status == "running" and self.results is not None:
            raise ValueError("a running run cannot have results yet")
        return self


class IBIIterationDoc(Document):
    """One iteration of Iterative Boltzmann Inversion for a parameter set.

    ``potential`` is the potential used in this iteration's CG run and ``rdf`` the RDF it
    produced. ``metrics`` holds at least ``rdf_deviation`` (dimensionless),
    ``pressure_bar`` and ``pressure_deviation_bar`` (None when not computed).
    ``update_factor`` is the IBI damping factor applied to go to the next iteration.
    Extra fields are allowed.
    """

    model_config = ConfigDict(extra="allow")

    param_id: ParamId
    campaign: CampaignName
    preset: PresetName
    iteration: int = Field(ge=0)
    potential: PotentialTable
    rdf: RDFData
    metrics: dict[str, float | None] = Field(default_factory=dict)
    update_factor: float | None = None
    is_best: bool = False

    def natural_id(self) -> str:
        return f"{self.param_id}:{self.preset}:{self.iteration}"


class PotentialDoc(Document):
    """The outcome of IBI for a parameter set: the chosen CG pair potential.

    ``reason`` says why IBI stopped (converged, maximum iterations, ...);
    ``best_iteration`` is the iteration whose potential is kept in ``potential``;
    ``metrics_history`` lists each iteration's metrics. Extra fields are allowed.
    """

    model_config = ConfigDict(extra="allow")

    param_id: ParamId
    campaign: CampaignName
    preset: PresetName
    converged: bool
    reason: str
    n_iterations: int = Field(ge=0)
    best_iteration: int | None = Field(default=None, ge=0)
    potential: PotentialTable
    target_rdf: RDFData
    final_rdf: RDFData | None = None
    metrics_history: list[dict[str, float | None]] = Field(default_factory=list)

    def natural_id(self) -> str:
        return f"{self.param_id}:{self.preset}"


class CGRunDoc(Document):
    """The coarse-grained production run of a parameter set with its final potential.

    ``d_cg_nm2_ps`` is D_CG (nm^2/ps), ``d_aa_nm2_ps`` the D_AA it is compared with and
    ``alpha`` = D_CG / D_AA (dimensionless), each with its standard error. Extra fields
    are allowed.
    """

    model_config = ConfigDict(extra="allow")

    param_id: ParamId
    campaign: CampaignName
    preset: PresetName
    status: RunStatus = "completed"
    run_dir: str | None = None
    d_cg_nm2_ps: Estimate | None = None
    d_aa_nm2_ps: Estimate | None = None
    alpha: Estimate | None = None
    pressure_bar: Estimate | None = None
    msd: MSDData | None = None
    rdf: RDFData | None = None
    timings: dict[str, StageTiming] = Field(default_factory=dict)
    engine: JsonDict = Field(default_factory=dict)
    error: str | None = None

    def natural_id(self) -> str:
        return f"{self.param_id}:{self.preset}"

    @model_validator(mode="after")
    def _status_consistent(self) -> Self:
        if self.status == "completed" and self.alpha is None:
            raise ValueError("a completed CG run needs alpha")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed CG run needs an error message")
        return self


class FrictionDoc(Document):
    """The friction calibration of a parameter set: gamma with D_CG(gamma) = D_AA.

    ``status`` is ``running`` (trials under way), ``converged`` or ``unconverged``;
    ``friction_per_ps`` is the calibrated friction gamma (1/ps, per bead; LAMMPS
    ``fix langevin`` damping ``langevin_damp_fs`` = 1/gamma in fs) with its uncertainty,
    ``d_cg_nm2_ps`` D_CG(gamma) of the chosen trial, ``d_cg0_nm2_ps`` the frictionless
    D_CG(0) and ``d_aa_nm2_ps`` the target, each with its error (nm^2/ps). ``trials``
    lists every trial (gamma, D, pressure, RDF, structure check, wall time);
    ``structure_check`` is the chosen run's RDF and pressure against the frictionless
    run's (:func:`cgflow.ibi.friction.structure_check`); ``rdf`` and ``pressure_bar`` the
    chosen run's. ``thermostat`` is ``langevin`` or ``dpd`` (then ``dpd_gamma_g_mol_ps``
    is the pair friction, g/mol/ps). Extra fields are allowed.
    """

    model_config = ConfigDict(extra="allow")

    param_id: ParamId
    campaign: CampaignName
    preset: PresetName
    status: Literal["running", "converged", "unconverged"] = "running"
    converged: bool | None = None
    reason: str = ""
    thermostat: Literal["langevin", "dpd"] = "langevin"
    friction_per_ps: Estimate | None = None
    langevin_damp_fs: float | None = Field(default=None, gt=0)
    dpd_gamma_g_mol_ps: float | None = Field(default=None, ge=0)
    d_cg_nm2_ps: Estimate | None = None
    d_cg0_nm2_ps: Estimate | None = None
    d_aa_nm2_ps: Estimate | None = None
    first_estimate_per_ps: float | None = Field(default=None, ge=0)
    n_trials: int = Field(default=0, ge=0)
    best_trial: int | None = Field(default=None, ge=0)
    trials: list[JsonDict] = Field(default_factory=list)
    structure_check: JsonDict | None = None
    rdf: RDFData | None = None
    pressure_bar: Estimate | None = None
    run_dir: str | None = None

    def natural_id(self) -> str:
        return f"{self.param_id}:{self.preset}"

    @model_validator(mode="after")
    def _status_consistent(self) -> Self:
        if (self.status == "running") != (self.converged is None):
            raise ValueError(f"status {self.status!r} needs converged "
                             f"{'None' if self.status == 'running' else 'True/False'}, got "
                             f"{self.converged!r}")
        if self.status == "converged" and (not self.converged or self.friction_per_ps is None):
            raise ValueError("a converged calibration needs friction_per_ps")
        if self.friction_per_ps is not None and self.friction_per_ps.mean < 0:
            raise ValueError(f"friction_per_ps must be >= 0, got {self.friction_per_ps.mean!r}")
        return self

    @property
    def gamma_per_ps(self) -> float | None:
        """The calibrated friction, 1/ps, if any."""
        return self.friction_per_ps.mean if self.friction_per_ps is not None else None


class ValidationDoc(Document):
    """Closed-loop validation of a campaign's models on one unseen parameter set.

    ``models_campaign`` names the campaign whose models predicted; ``param_id`` the set
    (not among their training sets) and ``preset`` the CG preset of the runs.
    ``structure``, ``structure_inverse`` and ``dynamics`` hold, per route, the RDF
    deviation, pressure and D_CG of the simulated predicted potential
    (:func:`cgflow.stages.validate.validate_prediction`);
    ``alpha_pred``/``alpha_std`` the predicted alpha; ``d_aa``/``d_aa_err`` the AA value
    compared against (nm^2/ps). Extra fields are allowed.
    """

    model_config = ConfigDict(extra="allow")

    models_campaign: CampaignName
    #: hash of the data the validated models were trained on (ties the result to them)
    models_dataset_hash: str = Field(min_length=1)
    param_id: ParamId
    preset: PresetName
    sets_campaign: CampaignName | None = None
    alpha_pred: float = Field(gt=0)
    alpha_std: float | None = Field(default=None, ge=0)
    d_aa: float = Field(gt=0)
    d_aa_err: float | None = Field(default=None, ge=0)
    structure: JsonDict
    #: the structure route through the predicted g_t and the learned inverse
    structure_inverse: JsonDict | None = None
    dynamics: JsonDict | None = None
    warnings: list[str] = Field(default_factory=list)
    run_dir: str | None = None

    def natural_id(self) -> str:
        return f"{self.models_campaign}:{self.param_id}:{self.preset}"


class ModelDoc(Document):
    """A trained model of a campaign; its weights are a GridFS blob (``gridfs_id``).

    ``kind`` names the model family (e.g. ``"gp"``, ``"mlp"``); ``metadata`` holds
    JSON-like facts (features, scores, training set ids). ``blob_size`` (bytes) and
    ``blob_sha256`` describe the blob. Extra fields are allowed.
    """

    model_config = ConfigDict(extra="allow")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    campaign: CampaignName
    kind: str = Field(min_length=1)
    gridfs_id: str | None = None
    blob_size: int | None = Field(default=None, ge=0)
    blob_sha256: str | None = None
    metadata: JsonDict = Field(default_factory=dict)

    def natural_id(self) -> str:
        return f"{self.campaign}:{self.name}"


class ChosenSet(_Part):
    """A parameter set an active-learning round chose (GROMACS units)."""

    param_id: ParamId
    params: dict[str, float]

    @model_validator(mode="after")
    def _params_match_id(self) -> Self:
        try:
            ps = ParameterSet.model_validate(self.params)
        except ValidationError as exc:
            raise ValueError(format_validation_error(exc, "params")) from None
        if ps.id != self.param_id:
            raise ValueError(f"param_id {self.param_id!r} is not the id of params "
                             f"(which is {ps.id!r})")
        return self

    def parameter_set(self) -> ParameterSet:
        """The chosen :class:`~cgflow.params.ParameterSet`."""
        return ParameterSet.model_validate(self.params)


class ActiveRoundDoc(Document):
    """One round of an active-learning campaign (:mod:`cgflow.stages.active`).

    Written once, by an insert (:meth:`cgflow.db.store.Store.insert_active_round`), so
    that a rerun round step finds it and adds the same sets again.

    Attributes
    ----------
    campaign, round, preset
        The campaign, the round (1 after the first batch) and the preset of its runs.
    status, reason
        ``chosen`` (sets were chosen) or ``stopped`` (the campaign ends here: ``reason``
        says why: budget, ``max_rounds``, target uncertainty, too few results).
    campaign_param_ids
        The sets the campaign held before the round (excluded from the candidates).
    train_param_ids, n_train_alpha
        The sets whose stored results the choice learned from, in the order of the
        training matrix, and how many of them had alpha.
    inputs_sha256
        Hash of the training arrays and the candidates
        (:meth:`cgflow.stages.active.RoundInputs.sha256`), for a replay.
    space, sampling, candidate_seed, n_candidates
        The parameter space (a shipped space's name), the sampling method and the seed
        the candidates were drawn with, and how many there were.
    selection
        The :class:`cgflow.ml.active_learning.BatchSelection` that chose: criterion,
        model state, settings, the score and components of every choice (in the order of
        ``chosen``).
    max_alpha_std
        The largest predicted standard deviation of alpha among the candidates.
    chosen, last
        The chosen sets; ``last``: no round follows (the training Firework follows them).
    """

    campaign: CampaignName
    round: int = Field(ge=1)
    preset: PresetName
    status: Literal["chosen", "stopped"]
    reason: str = ""
    campaign_param_ids: list[ParamId] = Field(default_factory=list)
    train_param_ids: list[ParamId] = Field(default_factory=list)
    n_train_alpha: int = Field(default=0, ge=0)
    inputs_sha256: str | None = None
    space: str = Field(min_length=1)
    sampling: Literal["lhs", "uniform"] = "lhs"
    candidate_seed: int = Field(ge=0)
    n_candidates: int = Field(default=0, ge=0)
    selection: BatchSelection | None = None
    max_alpha_std: float | None = Field(default=None, ge=0)
    chosen: list[ChosenSet] = Field(default_factory=list)
    last: bool = True

    def natural_id(self) -> str:
        return f"{self.campaign}:{self.round}"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.status == "chosen":
            if not self.chosen or self.selection is None:
                raise ValueError("a round that chose needs its sets and its selection")
            if len(self.chosen) != len(self.selection.choices):
                raise ValueError(f"{len(self.chosen)} chosen sets but "
                                 f"{len(self.selection.choices)} choices in the selection")
        elif self.chosen or not self.reason:
            raise ValueError("a stopped round has a reason and no chosen sets")
        ids = [c.param_id for c in self.chosen]
        if len(set(ids)) != len(ids) or set(ids) & set(self.campaign_param_ids):
            raise ValueError(f"chosen sets repeat or are already in the campaign: {ids}")
        return self


def aa_run_id(param_id: str, preset: str) -> str:
    """``_id`` of the AA run of ``param_id`` with the preset named ``preset``."""
    return f"{param_id}:{preset}"


def finite_or_none(value: float | None) -> float | None:
    """``value`` if it is a finite number, else ``None`` (for building documents)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class SyntheticPairDoc(Document):
    """One synthetic structure-potential pair of a campaign of ``kind: synthetic``
    (:mod:`cgflow.stages.synthetic`): a potential of the family, simulated, and the RDF
    and pressure it gave.

    Attributes
    ----------
    campaign, index, preset
        The campaign, the pair's index in its sample stream, and the CG preset it ran
        with; ``_id`` is ``f"{campaign}:{index}"``.
    stream_seed, lammps_seed, anchor
        Seed of the sample stream, of the LAMMPS run, and the index of the anchor
        potential the sample was drawn around.
    anchors, anchors_sha256, family
        What the family was anchored on (``shipped`` or a dataset folder), the hash of
        that file, and the family's ranges.
    r_nm, u_kj_mol
        The potential on the IBI grid (nm, kJ/mol).
    g, g_err
        The RDF it gave on the same grid and its standard error (block averages).
    pressure_bar, pressure_err_bar
        CG pressure and its standard error, bar.
    density_kg_m3, temperature_k, mass_g_mol
        State point of the run (kg/m^3, K, g/mol of the bead).
    wall_s, fw_id
        Wall time of the pair (s) and the Firework that made it.
    """

    campaign: CampaignName
    index: int = Field(ge=0)
    preset: PresetName
    stream_seed: int = Field(ge=0)
    lammps_seed: int = Field(ge=1)
    anchor: int = Field(ge=-1)
    anchors: str = Field(min_length=1)
    anchors_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    family: JsonDict = Field(default_factory=dict)
    r_nm: list[float] = Field(min_length=2)
    u_kj_mol: list[float]
    g: list[float]
    g_err: list[float]
    pressure_bar: float
    pressure_err_bar: float = Field(ge=0)
    density_kg_m3: float = Field(gt=0)
    temperature_k: float = Field(gt=0)
    mass_g_mol: float = Field(gt=0)
    wall_s: float = Field(ge=0)
    fw_id: int | None = None

    def natural_id(self) -> str:
        return f"{self.campaign}:{self.index}"

    @model_validator(mode="after")
    def _arrays(self) -> Self:
        _same_length(r_nm=self.r_nm, u_kj_mol=self.u_kj_mol, g=self.g, g_err=self.g_err)
        _increasing("r_nm", self.r_nm, 0.0)
        return self
