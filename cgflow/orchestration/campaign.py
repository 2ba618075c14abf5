"""Campaign specs: which parameter sets to run, with which presets and thresholds.

A campaign spec is a YAML file (see ``workflows/``)::

    name: demo                 # campaign name, used to tag every stored document
    molecule: 3-methylpentane  # a registry name (default 2,3,4-trimethylpentane) or
                               # {smiles: CCC(C)CC, name: ..., temperature_K: ...,
                               #  pressure_bar: ..., density_guess_kg_m3: ...}
    molecules: [n-hexane, {smiles: CCC(C)CC}]  # or several (instead of molecule:): every
                               # parameter set runs for each, at each one's state point
    space: narrow              # a shipped ParameterSpace ("narrow", "wide")
    n_sets: 2                  # how many sets to sample from the space
    seed: 7                    # sampling seed (reproducible)
    sampling: lhs              # "lhs" (Latin hypercube) or "uniform"
    include_reference: true    # also run the OPLS-AA reference set
    preset: demo               # run preset for both stages ("tiny", "demo", "reference", "paper")
    parameter_sets: []         # optional explicit sets (GROMACS units unless units: lammps)
    units: gromacs             # units of parameter_sets
    cg_stage: true             # IBI and CG production after the all-atom stage
    ibi:                       # any field of cgflow.ibi.settings.IBISettings, e.g.
      pressure_method: simple
      monitor: {window: 4}     # thresholds of the IBI monitor (MonitorThresholds)
    friction:                  # cgflow.ibi.friction.FrictionSettings (CG stage only)
      enabled: true            # calibrate gamma with D_CG(gamma) = D_AA per set
      tolerance: 0.1
      max_trials: 4
    active:                    # cgflow.stages.active.ActiveSettings: rounds chosen by the
      initial_sets: 4          # models (instead of n_sets: the space-filling first batch)
      batch_size: 2            # sets chosen per round
      max_rounds: 3
      budget_sets: 11          # every set of the campaign, reference and explicit included
      target_alpha_std: 0.05   # optional: stop when the candidates' largest std of alpha
      acquisition:             # cgflow.ml.active_learning.AcquisitionSettings
        criterion: combined    # alpha_std | structure_spread | combined
        n_candidates: 2000

A campaign of ``kind: synthetic`` runs no all-atom simulation: it samples smooth CG
potentials around known IBI potentials, simulates each on the preset's CG system and
stores the structure-potential pairs (:class:`cgflow.stages.synthetic.SyntheticSettings`,
the training data of the learned inverse)::

    name: pairs-1
    kind: synthetic
    preset: reference          # the CG preset of the runs (its grid must be the anchors')
    synthetic:
      n_pairs: 400
      batch_size: 20           # pairs per Firework
      seed: 1
      anchors: shipped         # or a dataset folder (dataset.npz, sets.json)
      family: {coefficient_scale: 0.5, max_bumps: 2}
      train_inverse: true      # a last Firework trains the inverse on the stored pairs

Only ``name``, ``description``, ``kind``, ``preset``, ``threads`` and ``synthetic`` mean
something to it; any of the parameter-set fields is refused, naming it.

Loading is all-or-nothing: a malformed YAML, an unknown or missing field, or an invalid
parameter value raises :class:`~cgflow.errors.InvalidInputError` naming the field and the
value, before anything is written anywhere; a molecule outside what the OPLS-AA typer
supports is refused naming the atom and the SMILES.

The molecule's state point (:class:`cgflow.molecule.registry.MoleculeSpec`) is the
temperature and pressure of the all-atom runs (it replaces the preset's; the CG stage
runs at the all-atom temperature), and the stable id of every set includes the molecule
unless it is the default (:meth:`~cgflow.molecule.registry.MoleculeSpec.set_id`).

With ``molecules:`` (a list of the same entries, exclusive with ``molecule:``) every
parameter set runs for each molecule, as its own branch of the one campaign workflow:
:meth:`CampaignSpec.branches` pairs each set with :meth:`CampaignSpec.for_molecule`, the
spec of one molecule (its state point, its ids), so the same parameters on two molecules
are two results. Every entry is resolved (and an unsupported molecule refused naming the
entry, the atom and the SMILES) when the spec is validated, before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cgflow.errors import InvalidInputError, format_validation_error
from cgflow.ibi.friction import FrictionSettings
from cgflow.ibi.settings import IBISettings
from cgflow.molecule.registry import MoleculeSpec, default_molecule_spec, resolve_molecule
from cgflow.params import (
    OPLSAA_REFERENCE,
    SPACES,
    ParameterSet,
    ParameterSpace,
    get_space,
    parameter_set_from_mapping,
)
from cgflow.presets import AA_PRESETS, AAPreset, CGPreset, get_aa_preset, get_cg_preset
from cgflow.stages.active import ALPHA_CRITERIA, ActiveSettings
from cgflow.stages.synthetic import SyntheticSettings
from cgflow.userfiles import read_text, yaml_mapping

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Most sets one campaign spec may sample (see ``benchmarks/results/campaign_build.md``:
#: memory and time of building the workflow grow linearly with it).
MAX_N_SETS = 1000

#: One entry of ``molecules:`` (a registry name or a mapping, as ``molecule:``).
MoleculeEntrySpec = Annotated[MoleculeSpec, BeforeValidator(resolve_molecule)]


class CampaignSpec(BaseModel):
    """A validated campaign spec. See the module docstring for the YAML form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    #: ``parameters`` (all-atom runs of parameter sets, the default) or ``synthetic``
    #: (structure-potential pairs of sampled CG potentials, :attr:`synthetic`).
    kind: Literal["parameters", "synthetic"] = "parameters"
    #: the pairs of a ``kind: synthetic`` campaign
    synthetic: SyntheticSettings | None = None
    #: the molecule and its state point (a registry name or a mapping, see the docstring)
    molecule: MoleculeSpec = Field(default_factory=default_molecule_spec)
    #: several molecules (exclusive with ``molecule``): every set runs for each
    molecules: list[MoleculeEntrySpec] | None = Field(default=None, min_length=1)
    space: str = "narrow"
    #: sets sampled from the space; at most MAX_N_SETS (what ``cgflow campaign build``
    #: builds in bounded memory and time, ``benchmarks/campaign_build.py``)
    n_sets: int = Field(default=0, ge=0, strict=True)
    #: sampling seed, 0 to 2^32 - 1
    seed: int = Field(default=0, ge=0, le=2**32 - 1, strict=True)
    sampling: Literal["lhs", "uniform"] = "lhs"
    include_reference: bool = True
    preset: str = "demo"
    units: Literal["gromacs", "lammps"] = "gromacs"
    parameter_sets: list[dict[str, Any]] = Field(default_factory=list)
    #: IBI settings (every field of :class:`cgflow.ibi.settings.IBISettings`).
    ibi: IBISettings = Field(default_factory=IBISettings)
    #: run the coarse-grained stage (IBI, CG production) after the all-atom stage.
    cg_stage: bool = False
    #: friction calibration after CG production (:class:`cgflow.ibi.friction.FrictionSettings`).
    friction: FrictionSettings = Field(default_factory=FrictionSettings)
    #: threads per engine run; None keeps the preset's value.
    threads: int | None = Field(default=None, gt=0)
    #: an active-learning campaign (:class:`cgflow.stages.active.ActiveSettings`): a
    #: first batch of ``active.initial_sets``, then rounds chosen by the models.
    active: ActiveSettings | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(
                f"must be 1-64 characters of letters, digits, '_', '-', '.', got {v!r}"
            )
        return v

    @field_validator("molecule", mode="before")
    @classmethod
    def _molecule(cls, v: Any) -> MoleculeSpec:
        return resolve_molecule(v)

    @field_validator("n_sets")
    @classmethod
    def _n_sets(cls, v: int) -> int:
        if v > MAX_N_SETS:
            raise ValueError(
                f"at most {MAX_N_SETS} sets per campaign spec (memory and time of building "
                "the workflow grow with it, benchmarks/results/campaign_build.md); run "
                "several campaigns with different seeds instead")
        return v

    @field_validator("space", "preset")
    @classmethod
    def _known_name(cls, v: str, info: ValidationInfo) -> str:
        known = SPACES if info.field_name == "space" else AA_PRESETS
        if v not in known:
            raise ValueError(f"unknown {info.field_name} {v!r} (expected one of "
                             f"{sorted(known)})")
        return v

    @model_validator(mode="after")
    def _synthetic_kind(self) -> CampaignSpec:
        if self.kind == "parameters":
            if self.synthetic is not None:
                raise ValueError("synthetic: given, but kind is 'parameters' (add kind: "
                                 "synthetic, or remove the synthetic: section)")
            return self
        if self.synthetic is None:
            raise ValueError("kind = 'synthetic' needs a synthetic: section (n_pairs, ...)")
        allowed = {"name", "description", "kind", "preset", "threads", "synthetic"}
        extra = sorted(set(self.model_fields_set) - allowed)
        if extra:
            raise ValueError(f"kind = 'synthetic': field(s) {extra} belong to campaigns of "
                             "parameter sets (a synthetic campaign has only "
                             f"{sorted(allowed)})")
        try:
            self.synthetic.check_grid(self.cg_preset)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _one_or_several_molecules(self) -> CampaignSpec:
        if self.molecules is None:
            return self
        if "molecule" in self.model_fields_set:
            raise ValueError("molecule and molecules are both given: name one molecule "
                             "(molecule:) or several (molecules:), not both")
        seen: dict[str, int] = {}
        for i, m in enumerate(self.molecules):
            key = self._state_key(m)
            if key in seen:
                raise ValueError(f"molecules[{i}] = {m.name!r}: the same molecule at the same "
                                 f"state point as molecules[{seen[key]}] (its sets would "
                                 "have the same ids)")
            seen[key] = i
        return self

    @staticmethod
    def _state_key(m: MoleculeSpec) -> str:
        return f"{m.smiles}|{m.temperature_k:.10g}|{m.pressure_bar:.10g}"

    @model_validator(mode="after")
    def _ibi_temperature(self) -> CampaignSpec:
        # the CG stage runs at the all-atom temperature; a different one set by hand is
        # a mistake, said here rather than after the all-atom runs
        if "temperature_k" in self.ibi.model_fields_set:
            for one in self.campaign_molecules:
                aa_t = self.for_molecule(one).aa_preset.temperature_k
                if abs(self.ibi.temperature_k - aa_t) > 0.5:
                    raise ValueError(
                        f"ibi.temperature_k = {self.ibi.temperature_k}: differs from the "
                        f"all-atom temperature {aa_t} K of molecule {one.name!r} with "
                        f"preset {self.preset!r} (the CG stage runs at the AA temperature)")
        return self

    @model_validator(mode="after")
    def _friction_needs_cg(self) -> CampaignSpec:
        if self.friction.enabled and not self.cg_stage:
            raise ValueError("friction.enabled = true needs cg_stage: true (the calibration "
                             "runs after the CG production)")
        return self

    @model_validator(mode="after")
    def _active_rounds(self) -> CampaignSpec:
        a = self.active
        if a is None:
            return self
        if self.molecules is not None:
            raise ValueError("molecules: active-learning campaigns run on one molecule "
                             "(2,3,4-trimethylpentane) for now; remove active: or molecules:")
        if not self.molecule.is_default:
            # the rounds store and look up their sets by the parameter sets' own ids
            raise ValueError(f"molecule = {self.molecule.name!r}: active-learning campaigns "
                             "run on 2,3,4-trimethylpentane only (at 298.15 K and 1 bar) "
                             "for now; remove active: or molecule:")
        if self.n_sets:
            raise ValueError(f"n_sets = {self.n_sets}: an active campaign samples its first "
                             "batch with active.initial_sets (remove n_sets)")
        if a.budget_sets > MAX_N_SETS:
            raise ValueError(f"active.budget_sets = {a.budget_sets}: at most {MAX_N_SETS} "
                             "sets per campaign (run several campaigns instead)")
        first = a.initial_sets + int(self.include_reference) + len(self.parameter_sets)
        if a.budget_sets <= first:
            raise ValueError(f"active.budget_sets = {a.budget_sets}: leaves no set for the "
                             f"rounds (the first batch has {first}: active.initial_sets "
                             f"{a.initial_sets}, the reference and explicit sets)")
        if a.acquisition.criterion in ALPHA_CRITERIA and not self.cg_stage:
            raise ValueError(f"active.acquisition.criterion = {a.acquisition.criterion!r} "
                             "needs alpha, i.e. cg_stage: true (or criterion: "
                             "structure_spread)")
        return self

    # --- derived ---------------------------------------------------------------------

    @property
    def campaign_molecules(self) -> list[MoleculeSpec]:
        """The molecules the campaign runs: ``molecules``, else the one ``molecule``."""
        return list(self.molecules) if self.molecules is not None else [self.molecule]

    @property
    def is_multi_molecule(self) -> bool:
        """Whether the spec names its molecules with ``molecules:`` (labels and Firework
        names then name the molecule)."""
        return self.molecules is not None

    def for_molecule(self, molecule: MoleculeSpec) -> CampaignSpec:
        """This spec on one ``molecule`` alone (its state point in :attr:`aa_preset`, its
        ids in :meth:`set_id`), as the branches of that molecule run it."""
        return self.model_copy(update={"molecule": molecule, "molecules": None})

    def branches(self, sets: list[ParameterSet]) -> list[tuple[CampaignSpec, ParameterSet]]:
        """Every (spec of one molecule, parameter set) the campaign runs: set by set in
        campaign order, each for every molecule in the spec's order."""
        specs = [self.for_molecule(m) for m in self.campaign_molecules]
        return [(one, ps) for ps in sets for one in specs]

    def set_ids(self, sets: list[ParameterSet]) -> list[str]:
        """Stable ids of every branch (:meth:`branches`): one per set and molecule; of a
        synthetic campaign, one per batch of pairs."""
        if self.synthetic is not None:
            from cgflow.orchestration.firetasks.synthetic import batch_id

            return [batch_id(start) for start, _ in self.synthetic.batches()]
        return [one.set_id(ps) for one, ps in self.branches(sets)]

    @property
    def n_sampled(self) -> int:
        """Sets sampled from the space up front: ``active.initial_sets`` in an active
        campaign, else ``n_sets``."""
        return self.active.initial_sets if self.active is not None else self.n_sets

    @property
    def parameter_space(self) -> ParameterSpace:
        """The shipped space this campaign samples from."""
        return get_space(self.space)

    @property
    def preset_overrides(self) -> dict[str, Any]:
        """What the campaign changes in its all-atom preset: the molecule's state point
        where it differs from the preset's, the thread count if given."""
        p = get_aa_preset(self.preset)
        out: dict[str, Any] = {}
        if abs(self.molecule.temperature_k - p.temperature_k) > 1e-9:
            out["temperature_k"] = self.molecule.temperature_k
        if abs(self.molecule.pressure_bar - p.pressure_bar) > 1e-9:
            out["pressure_bar"] = self.molecule.pressure_bar
        if self.threads:
            out["threads"] = self.threads
        return out

    @property
    def aa_preset(self) -> AAPreset:
        """The all-atom preset with :attr:`preset_overrides` applied."""
        p = get_aa_preset(self.preset)
        overrides = self.preset_overrides
        return p.model_copy(update=overrides) if overrides else p

    def set_id(self, ps: ParameterSet) -> str:
        """Stable id of ``ps`` in this campaign (with the molecule unless the default)."""
        return self.molecule.set_id(ps)

    @property
    def cg_preset(self) -> CGPreset:
        """The coarse-grained preset of the same name."""
        return get_cg_preset(self.preset)

    def explicit_sets(self, source: str = "campaign spec") -> list[ParameterSet]:
        """The explicit ``parameter_sets`` validated (errors name the index and field)."""
        out = []
        for i, values in enumerate(self.parameter_sets):
            out.append(parameter_set_from_mapping(
                values, units_system=self.units, source=f"{source}: parameter_sets[{i}]"))
        return out

    def parameter_sets_to_run(self, source: str = "campaign spec") -> list[ParameterSet]:
        """Reference (optional), explicit sets, then :attr:`n_sampled` samples (``n_sets``,
        or an active campaign's first batch); duplicates removed (by
        :attr:`ParameterSet.id`), order kept. A synthetic campaign has none."""
        if self.kind == "synthetic":
            return []
        sets: list[ParameterSet] = []
        if self.include_reference:
            sets.append(OPLSAA_REFERENCE)
        sets.extend(self.explicit_sets(source))
        sets.extend(self.parameter_space.sample(self.n_sampled, self.seed, self.sampling))
        seen: set[str] = set()
        unique = []
        for ps in sets:
            if ps.id not in seen:
                seen.add(ps.id)
                unique.append(ps)
        if not unique:
            raise InvalidInputError(
                f"{source}: the campaign has no parameter sets (n_sets=0, include_reference="
                "false and no parameter_sets)"
            )
        return unique


#: The campaign specs shipped with cgflow (package data; ``workflows/`` in a source
#: checkout links to them): ``demo``, ``tiny``, ``reference``, ...
SHIPPED_SPECS = Path(__file__).resolve().parent / "specs"


def shipped_spec_names() -> list[str]:
    """Names of the shipped campaign specs (``cgflow campaign submit NAME`` finds them)."""
    return sorted(p.stem for p in SHIPPED_SPECS.glob("*.yaml"))


def find_campaign_spec(name_or_path: str | Path) -> Path:
    """The spec file of ``name_or_path``: an existing file, else a shipped spec by name
    (``demo`` or ``demo.yaml``).

    Raises
    ------
    InvalidInputError
        When it is neither, naming the shipped specs.
    """
    p = Path(name_or_path)
    if p.exists():
        return p
    for candidate in (SHIPPED_SPECS / p.name, SHIPPED_SPECS / f"{p.name}.yaml"):
        if p.parent == Path(".") and candidate.is_file():
            return candidate
    raise InvalidInputError(f"campaign spec {str(name_or_path)!r}: no such file, and not a "
                            f"shipped spec (shipped: {', '.join(shipped_spec_names())})")


def load_campaign_spec(path: str | Path) -> tuple[CampaignSpec, list[ParameterSet]]:
    """Read, validate and expand a campaign spec file.

    Returns
    -------
    spec, parameter_sets
        The validated spec and the parameter sets it runs (validated too).

    Raises
    ------
    InvalidInputError
        Malformed YAML (with line and column), unknown or missing fields, invalid values:
        the message names the file, the field and the value.
    """
    return campaign_spec_from_text(read_text(path, "campaign spec"), source=str(path))


def campaign_spec_from_text(text: str, source: str = "campaign spec"
                            ) -> tuple[CampaignSpec, list[ParameterSet]]:
    """Like :func:`load_campaign_spec` for YAML text (read by
    :func:`cgflow.userfiles.yaml_mapping`: no aliases, no repeated keys)."""
    data = yaml_mapping(text, source)
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(format_validation_error(exc, source)) from None
    return spec, spec.parameter_sets_to_run(source)
