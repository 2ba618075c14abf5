"""Validation of feature matrices: (n, 19) parameters in ParameterSet field order."""

from __future__ import annotations

from typing import Any

import numpy as np

from cgflow.errors import InvalidInputError
from cgflow.params import N_PARAMETERS


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
