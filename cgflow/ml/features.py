"""Feature matrices: validation of (n, 19) parameters in ParameterSet field order, and the
physically motivated inputs computed from them (molecular descriptors of the built
geometry, :mod:`cgflow.molecule.descriptors`).

**Several molecules.** A model trained on several molecules (``molecule_features``)
gets, per row, the molecule it describes (canonical SMILES; None or a missing row: the
default 2,3,4-trimethylpentane) and :func:`model_inputs` makes its inputs:

1. the 19 parameters, where every parameter of a bonded-term kind that the molecule
   lacks (CT-CT-CT-CT and HC-CT-CT-HC dihedrals in neopentane) is replaced by its
   OPLS-AA reference value, so that a sampled value which never acted on the molecule's
   simulation brings no noise into the model;
2. any named descriptors (computed on that molecule);
3. :data:`MOLECULE_INPUT_NAMES`: the graph descriptors of the molecule (molar mass,
   carbon count and classes, rings, terms of each kind per carbon:
   :func:`cgflow.molecule.descriptors.graph_descriptors`) and the size and shape of its
   built conformer with the set's geometry (radius of gyration, asphericity, van der
   Waals volume).

A model trained on one molecule refuses rows of another (it has never seen one).
*Approximation:* the state point (temperature, pressure) is not an input; each
molecule's campaigns run at one state point (the registry's), so it is part of what the
molecule's descriptors stand for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cgflow.errors import InvalidInputError
from cgflow.molecule.descriptors import GRAPH_DESCRIPTOR_NAMES
from cgflow.molecule.structure import DEFAULT_LABEL, Molecule
from cgflow.params import FIELDS, N_PARAMETERS, OPLSAA_REFERENCE, ParameterSet

#: The molecule inputs of a model of several molecules, in order (module docstring).
MOLECULE_INPUT_NAMES: tuple[str, ...] = (
    *GRAPH_DESCRIPTOR_NAMES, "radius_of_gyration_nm", "asphericity", "vdw_volume_nm3")


def check_features(X: Any, what: str = "X") -> np.ndarray:
    """Validate a feature matrix: 2-D, 19 columns (ParameterSet field order), finite.

    A single row of 19 values is accepted and returned as shape (1, 19).

    Raises
    ------
    InvalidInputError
        Naming the problem (shape, or the first row and column with a non-finite value).
    """
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what}: expected a numeric array, could not convert it") from None
    if X.ndim == 1 and X.size == N_PARAMETERS:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != N_PARAMETERS:
        raise InvalidInputError(
            f"{what}: expected shape (n, {N_PARAMETERS}) with columns in ParameterSet field "
            f"order, got {X.shape}"
        )
    if X.shape[0] == 0:
        raise InvalidInputError(f"{what}: no rows")
    if not np.all(np.isfinite(X)):
        i, j = np.argwhere(~np.isfinite(X))[0]
        raise InvalidInputError(
            f"{what}: non-finite value {float(X[i, j])!r} in row {i}, column {j}"
        )
    return X


def resolve_molecules(molecules: Sequence[str | None] | None, n: int,
                      what: str = "molecules") -> list[Molecule]:
    """The all-atom molecule of every row: ``molecules`` (n,) canonical SMILES (None or
    an empty string: the default molecule), or None for the default everywhere.

    Raises
    ------
    InvalidInputError
        On a length that is not ``n`` or a SMILES the typer refuses (naming the row).
    """
    from cgflow.molecule.smiles import canonical_smiles, molecule_from_smiles
    from cgflow.molecule.structure import TRIMETHYLPENTANE_SMILES, trimethylpentane

    if molecules is None:
        return [trimethylpentane()] * n
    smiles = [None if m is None else str(m) for m in molecules]
    if len(smiles) != n:
        raise InvalidInputError(f"{what}: expected {n} molecules (one per row), got "
                                f"{len(smiles)}")
    out: list[Molecule] = []
    for i, s in enumerate(smiles):
        try:
            c = canonical_smiles(s) if s else TRIMETHYLPENTANE_SMILES
            out.append(trimethylpentane() if c == TRIMETHYLPENTANE_SMILES
                       else molecule_from_smiles(c))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{what}: row {i}: {exc}") from None
    return out


def absent_fields(molecule: Molecule) -> tuple[str, ...]:
    """The ParameterSet fields of the bonded-term kinds that ``molecule`` lacks."""
    from cgflow.molecule.descriptors import term_kind_of_field

    counts = molecule.term_counts()
    return tuple(f for f in FIELDS if counts.get(term_kind_of_field(f), 0) == 0)


def neutralise_absent(X: np.ndarray, molecules: Sequence[Molecule]) -> np.ndarray:
    """A copy of ``X`` (n, 19) with the parameters of kinds a row's molecule lacks set to
    their OPLS-AA reference values (module docstring)."""
    out = np.array(X, dtype=float, copy=True)
    reference = OPLSAA_REFERENCE.to_array()
    index = {f: j for j, f in enumerate(FIELDS)}
    for i, mol in enumerate(molecules):
        for f in absent_fields(mol):
            out[i, index[f]] = reference[index[f]]
    return out


def molecule_matrix(X: np.ndarray, molecules: Sequence[Molecule]) -> np.ndarray:
    """(n, len(MOLECULE_INPUT_NAMES)) molecule inputs of every row (module docstring)."""
    from cgflow.molecule.descriptors import graph_descriptors, molecular_descriptors

    out = np.empty((X.shape[0], len(MOLECULE_INPUT_NAMES)))
    for i, (row, mol) in enumerate(zip(X, molecules, strict=True)):
        g = graph_descriptors(mol)
        d = molecular_descriptors(ParameterSet.from_array(row), mol)
        out[i] = [g[n] if n in g else d[n] for n in MOLECULE_INPUT_NAMES]
    return out


def check_descriptor_names(names: Sequence[str], field: str = "field 'descriptors'"
                           ) -> tuple[str, ...]:
    """``names`` as a tuple, each one of :data:`cgflow.molecule.descriptors.DESCRIPTOR_NAMES`.

    Raises
    ------
    InvalidInputError
        For an unknown name, naming ``field``, the name and the known ones.
    """
    from cgflow.molecule.descriptors import DESCRIPTOR_NAMES

    unknown = [n for n in names if n not in DESCRIPTOR_NAMES]
    if unknown:
        raise InvalidInputError(f"{field}: unknown descriptor {unknown[0]!r} (known: "
                                f"{', '.join(DESCRIPTOR_NAMES)})")
    return tuple(names)


def descriptor_matrix(X: Any, names: Sequence[str], what: str = "X",
                      molecules: Sequence[Molecule] | None = None) -> np.ndarray:
    """Molecular descriptors of every row of a feature matrix.

    Parameters
    ----------
    X
        (n, 19) parameters, ParameterSet field order, GROMACS units.
    names
        Names from :data:`cgflow.molecule.descriptors.DESCRIPTOR_NAMES`.
    molecules
        The molecule of every row (default: 2,3,4-trimethylpentane).

    Returns
    -------
    numpy.ndarray
        (n, len(names)) values of :func:`cgflow.molecule.descriptors.molecular_descriptors`.

    Raises
    ------
    InvalidInputError
        For an unknown name (naming it and the known ones) or a row that is not a valid
        parameter set.
    """
    from cgflow.molecule.descriptors import molecular_descriptors

    check_descriptor_names(names)
    X = check_features(X, what)
    out = np.empty((X.shape[0], len(names)))
    for i, row in enumerate(X):
        try:
            ps = ParameterSet.from_array(row)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{what}: row {i} is not a valid parameter set: {exc}"
                                    ) from None
        d = molecular_descriptors(ps, None if molecules is None else molecules[i])
        out[i] = [d[n] for n in names]
    return out


def model_inputs(X: Any, descriptors: Sequence[str] = (), what: str = "X", *,
                 molecules: Sequence[str | None] | None = None,
                 molecule_features: bool = False) -> np.ndarray:
    """The inputs of a model: the 19 parameters followed by the named descriptors and,
    for a model of several molecules (``molecule_features``), the molecule inputs of the
    module docstring, for the molecule of every row (``molecules``: canonical SMILES,
    None for the default).

    Raises
    ------
    InvalidInputError
        Besides the checks of :func:`check_features`: rows of a molecule other than the
        default for a model without molecule features (naming the first), or a molecule
        the typer refuses.
    """
    X = check_features(X, what)
    if not molecule_features:
        if molecules is not None:
            mols = resolve_molecules(molecules, X.shape[0])
            other = next((m for m in mols if m.label != DEFAULT_LABEL), None)
            if other is not None:
                raise InvalidInputError(
                    f"field 'molecule': {other.label!r} ({other.smiles}): this model was "
                    f"trained on {DEFAULT_LABEL} only (train it on a multi-molecule "
                    "dataset to predict other molecules)")
        if not descriptors:
            return X
        return np.hstack([X, descriptor_matrix(X, descriptors, what)])
    mols = resolve_molecules(molecules, X.shape[0])
    Xn = neutralise_absent(X, mols)
    parts = [Xn]
    if descriptors:
        parts.append(descriptor_matrix(Xn, descriptors, what, mols))
    parts.append(molecule_matrix(Xn, mols))
    return np.hstack(parts)
