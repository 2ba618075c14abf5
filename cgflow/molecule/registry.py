"""The molecules cgflow knows by name, and the molecule (with its state point) a campaign runs.

:data:`REGISTRY_FILE` (``registry.yaml``, package data) lists alkanes by name with their
SMILES, molar mass, the state point they are simulated at and the experimental liquid
density with its source (and the source's address); :func:`registry` reads it (safely:
:func:`cgflow.userfiles.yaml_mapping`).

A campaign's ``molecule:`` is resolved by :func:`resolve_molecule` into a
:class:`MoleculeSpec`: the molecule's name, canonical SMILES, state point (temperature K,
pressure bar) and the density (kg/m^3) used to size the all-atom box. It is either a
registry name (or alias), or a mapping ``{smiles, name, temperature_k (or
temperature_K), pressure_bar, density_guess_kg_m3}``: fields not given come from the
registry entry of the same molecule (same canonical SMILES, or the name), else from the
defaults (298.15 K, 1 bar, :data:`DEFAULT_DENSITY_GUESS_KG_M3`).

**Ids.** :meth:`MoleculeSpec.set_id` is the stable id of a parameter set run on that
molecule at that state point: the parameter set's own id
(:attr:`cgflow.params.ParameterSet.id`) for the default molecule (2,3,4-trimethylpentane
at 298.15 K and 1 bar, so the ids of all earlier results stay valid), else the first 16
hex digits of a SHA-256 of the parameter set's id, the canonical SMILES, the temperature
and the pressure.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from cgflow.errors import InvalidInputError
from cgflow.molecule.smiles import canonical_smiles, molecule_from_smiles
from cgflow.molecule.structure import DEFAULT_LABEL, RESIDUE_NAME, Molecule, trimethylpentane
from cgflow.params import ParameterSet
from cgflow.userfiles import yaml_mapping

#: The registry file (package data).
REGISTRY_FILE = Path(__file__).resolve().parent / "registry.yaml"
#: Name of the default molecule.
DEFAULT_MOLECULE = DEFAULT_LABEL
#: Build density of a molecule that names none and is not in the registry, kg/m^3 (a
#: typical liquid alkane; NPT relaxes it).
DEFAULT_DENSITY_GUESS_KG_M3 = 700.0
#: State point of a molecule that names none and is not in the registry.
DEFAULT_TEMPERATURE_K = 298.15
DEFAULT_PRESSURE_BAR = 1.0


class ExperimentalDensity(BaseModel):
    """An experimental liquid density and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value_kg_m3: float = Field(gt=0)
    temperature_k: float = Field(gt=0)
    pressure_bar: float = Field(gt=0)
    source: str = Field(min_length=1)
    #: where the cited source can be read (a public address), if anywhere
    url: str | None = None
    #: whether the value was checked against the cited source (see registry.yaml)
    certain: bool
    note: str = ""


class MoleculeEntry(BaseModel):
    """One molecule of the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    residue: str = Field(min_length=1, max_length=5)
    smiles: str
    molar_mass_g_mol: float = Field(gt=0)
    temperature_k: float = Field(gt=0)
    pressure_bar: float = Field(gt=0)
    density: ExperimentalDensity

    @property
    def canonical_smiles(self) -> str:
        """RDKit's canonical SMILES."""
        return canonical_smiles(self.smiles)

    def names(self) -> tuple[str, ...]:
        """The name and the aliases."""
        return (self.name, *self.aliases)


@cache
def registry() -> tuple[MoleculeEntry, ...]:
    """The registry's molecules in file order.

    Raises
    ------
    InvalidInputError
        If the file is malformed (naming the entry and field).
    """
    data = yaml_mapping(REGISTRY_FILE.read_text(), str(REGISTRY_FILE))
    out = []
    for i, item in enumerate(data.get("molecules") or []):
        try:
            out.append(MoleculeEntry.model_validate(item))
        except ValidationError as exc:
            raise InvalidInputError.from_validation_error(
                exc, f"{REGISTRY_FILE}: molecules[{i}]") from None
    return tuple(out)


def registry_names() -> list[str]:
    """The registry's molecule names (not the aliases), in file order."""
    return [e.name for e in registry()]


def find_entry(name: str) -> MoleculeEntry | None:
    """The registry entry of a name or alias (case-insensitive), else None."""
    key = str(name).strip().lower()
    for e in registry():
        if key in (n.lower() for n in e.names()):
            return e
    return None


def entry_for_smiles(smiles: str) -> MoleculeEntry | None:
    """The registry entry of the same molecule (equal canonical SMILES), else None."""
    canonical = canonical_smiles(smiles)
    for e in registry():
        if e.canonical_smiles == canonical:
            return e
    return None


def get_entry(name: str) -> MoleculeEntry:
    """The registry entry of ``name``; :class:`InvalidInputError` names an unknown one."""
    e = find_entry(name)
    if e is None:
        raise InvalidInputError(f"field 'molecule': unknown molecule {name!r} (the registry "
                                f"has {', '.join(registry_names())}; or give "
                                "{smiles: ...})")
    return e


class MoleculeSpec(BaseModel):
    """The molecule a campaign runs and its state point (see the module docstring).

    Attributes
    ----------
    name
        Human name (the registry name, or the spec's ``name``, else the SMILES).
    smiles
        Canonical SMILES (RDKit).
    residue
        Residue / moleculetype name in the engines' files (1-5 letters or digits).
    temperature_k, pressure_bar
        State point of the all-atom and CG runs (K, bar).
    density_guess_kg_m3
        Liquid density used to size the all-atom box (kg/m^3).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=100)
    smiles: str
    residue: str = Field(default="MOL", min_length=1, max_length=5)
    temperature_k: float = Field(gt=0, le=1000,
                                 validation_alias=AliasChoices("temperature_k", "temperature_K"))
    pressure_bar: float = Field(gt=0, le=10000)
    density_guess_kg_m3: float = Field(gt=100, lt=2000)

    @field_validator("smiles")
    @classmethod
    def _canonical(cls, v: str) -> str:
        return canonical_smiles(v)

    @field_validator("residue")
    @classmethod
    def _residue(cls, v: str) -> str:
        if not v.isalnum():
            raise ValueError(f"must be 1-5 letters or digits, got {v!r}")
        return v

    @property
    def molecule(self) -> Molecule:
        """The all-atom molecule (OPLS-AA typed, every bonded term)."""
        if self.smiles == trimethylpentane().smiles and self.residue == RESIDUE_NAME:
            return trimethylpentane()
        return molecule_from_smiles(self.smiles, self.residue, self.name)

    @property
    def molar_mass_g_mol(self) -> float:
        """Molar mass from the OPLS-AA atom masses (the CG bead's mass), g/mol."""
        return self.molecule.molar_mass_g_mol()

    @property
    def bead_mass_g_mol(self) -> float:
        """Mass of the CG bead: the molar mass rounded to 0.01 g/mol (114.23 for
        2,3,4-trimethylpentane, as before molecules were an input), g/mol."""
        return round(self.molar_mass_g_mol, 2)

    @property
    def is_default(self) -> bool:
        """2,3,4-trimethylpentane at 298.15 K and 1 bar (ids without the molecule)."""
        return is_default_state(self.smiles, self.temperature_k, self.pressure_bar)

    def set_id(self, ps: ParameterSet) -> str:
        """Stable id of ``ps`` run on this molecule at this state point (module docstring)."""
        return molecule_set_id(ps.id, self.smiles, self.temperature_k, self.pressure_bar)

    def summary(self) -> dict[str, Any]:
        """What a stored document records of the molecule (JSON-ready)."""
        mol = self.molecule
        return {"name": self.name, "smiles": self.smiles, "residue": self.residue,
                "atoms_per_molecule": mol.n_atoms,
                "molar_mass_g_mol": round(mol.molar_mass_g_mol(), 6),
                "temperature_k": self.temperature_k, "pressure_bar": self.pressure_bar}


def is_default_state(smiles: str, temperature_k: float, pressure_bar: float) -> bool:
    """Whether a canonical SMILES and state point are the default molecule's (2,3,4-
    trimethylpentane at 298.15 K and 1 bar)."""
    return (smiles == trimethylpentane().smiles
            and abs(temperature_k - DEFAULT_TEMPERATURE_K) < 1e-9
            and abs(pressure_bar - DEFAULT_PRESSURE_BAR) < 1e-9)


def molecule_set_id(param_id: str, smiles: str, temperature_k: float,
                    pressure_bar: float) -> str:
    """Stable id of the parameter set ``param_id`` run on the molecule of canonical
    ``smiles`` at a state point: ``param_id`` itself for the default molecule, else a
    hash of all four (module docstring)."""
    if is_default_state(smiles, temperature_k, pressure_bar):
        return param_id
    key = f"{param_id}|{smiles}|T={temperature_k:.10g}|p={pressure_bar:.10g}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def spec_from_entry(entry: MoleculeEntry, **overrides: Any) -> MoleculeSpec:
    """The campaign molecule of a registry entry (its state point and density)."""
    fields = {"name": entry.name, "smiles": entry.smiles, "residue": entry.residue,
              "temperature_k": entry.temperature_k, "pressure_bar": entry.pressure_bar,
              "density_guess_kg_m3": entry.density.value_kg_m3}
    fields.update(overrides)
    return MoleculeSpec.model_validate(fields)


@cache
def default_molecule_spec() -> MoleculeSpec:
    """2,3,4-trimethylpentane at 298.15 K and 1 bar, the box sized at 720 kg/m^3 (the
    density cgflow sized its boxes at before molecules were an input)."""
    return spec_from_entry(get_entry(DEFAULT_MOLECULE), density_guess_kg_m3=720.0)


_SPEC_KEYS = {"name", "smiles", "residue", "temperature_k", "temperature_K", "pressure_bar",
              "density_guess_kg_m3"}


def resolve_molecule(value: Any) -> MoleculeSpec:
    """A campaign's ``molecule:`` (a registry name, a mapping, a :class:`MoleculeSpec` or
    None for the default) as a :class:`MoleculeSpec`.

    Raises
    ------
    InvalidInputError
        An unknown name, an unknown key, a SMILES outside what the typer supports (naming
        the atom and the SMILES), a bad value (naming the field).
    """
    if value is None:
        return default_molecule_spec()
    if isinstance(value, MoleculeSpec):
        return value
    if isinstance(value, str):
        entry = get_entry(value)
        return default_molecule_spec() if entry.name == DEFAULT_MOLECULE else \
            spec_from_entry(entry)
    if not isinstance(value, dict):
        raise InvalidInputError(f"field 'molecule': expected a registry name or a mapping "
                                f"with 'smiles', got {type(value).__name__}: {value!r}")
    unknown = sorted(set(value) - _SPEC_KEYS, key=str)
    if unknown:
        raise InvalidInputError(f"field 'molecule.{unknown[0]}': unknown key (expected some "
                                f"of {', '.join(sorted(_SPEC_KEYS))})")
    given = dict(value)
    if "temperature_K" in given:
        if "temperature_k" in given:
            raise InvalidInputError("field 'molecule.temperature_K': given twice (also as "
                                    "temperature_k)")
        given["temperature_k"] = given.pop("temperature_K")
    entry = None
    if "smiles" in given:
        if not isinstance(given["smiles"], str):
            raise InvalidInputError(f"field 'molecule.smiles': must be a SMILES string, got "
                                    f"{given['smiles']!r}")
        entry = entry_for_smiles(given["smiles"])
    elif "name" in given:
        entry = find_entry(str(given["name"]))
        if entry is None:
            raise InvalidInputError(f"field 'molecule.smiles': missing ({given['name']!r} is "
                                    "not in the registry, so its SMILES is needed)")
    else:
        raise InvalidInputError("field 'molecule.smiles': missing (give a SMILES or a "
                                "registry name)")
    if entry is not None:
        base = (default_molecule_spec() if entry.name == DEFAULT_MOLECULE
                else spec_from_entry(entry)).model_dump()
    else:
        base = {"name": given.get("smiles"), "temperature_k": DEFAULT_TEMPERATURE_K,
                "pressure_bar": DEFAULT_PRESSURE_BAR,
                "density_guess_kg_m3": DEFAULT_DENSITY_GUESS_KG_M3}
    base.update(given)
    try:
        return MoleculeSpec.model_validate(base)
    except ValidationError as exc:
        raise InvalidInputError.from_validation_error(exc, "molecule") from None
