"""Feature matrices: validation of (n, 19) parameters in ParameterSet field order, and the
physically motivated inputs computed from them (molecular descriptors of the built
geometry, :mod:`cgflow.molecule.descriptors`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cgflow.errors import InvalidInputError
from cgflow.params import N_PARAMETERS, ParameterSet


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


def descriptor_matrix(X: Any, names: Sequence[str], what: str = "X") -> np.ndarray:
    """Molecular descriptors of every row of a feature matrix.

    Parameters
    ----------
    X
        (n, 19) parameters, ParameterSet field order, GROMACS units.
    names
        Names from :data:`cgflow.molecule.descriptors.DESCRIPTOR_NAMES`.

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
    from cgflow.molecule.descriptors import DESCRIPTOR_NAMES, molecular_descriptors

    unknown = [n for n in names if n not in DESCRIPTOR_NAMES]
    if unknown:
        raise InvalidInputError(
            f"field 'descriptors': unknown descriptor {unknown[0]!r} (known: "
            f"{', '.join(DESCRIPTOR_NAMES)})")
    X = check_features(X, what)
    out = np.empty((X.shape[0], len(names)))
    for i, row in enumerate(X):
        try:
            ps = ParameterSet.from_array(row)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{what}: row {i} is not a valid parameter set: {exc}"
                                    ) from None
        d = molecular_descriptors(ps)
        out[i] = [d[n] for n in names]
    return out


def model_inputs(X: Any, descriptors: Sequence[str] = (), what: str = "X") -> np.ndarray:
    """The inputs of a model: the 19 parameters followed by the named descriptors."""
    X = check_features(X, what)
    if not descriptors:
        return X
    return np.hstack([X, descriptor_matrix(X, descriptors, what)])
