"""Potentials that reproduce all-atom dynamics: pairs of sets with matching diffusion.

An IBI potential reproduces the all-atom structure of its own set but, having lost the
atomistic friction, usually gives faster dynamics (``alpha = D_CG / D_AA > 1``). If the
CG run of set ``j`` diffuses as fast as the all-atom run of set ``i``
(``D_CG[j] == D_AA[i]`` within uncertainty), the potential ``U[j]`` is a CG potential
with the dynamics of set ``i``. :func:`dynamics_pairs` finds such pairs and
:class:`DynamicsModel` learns ``X[i] -> U[j]`` over them.

When a set ``i`` has several partners the model learns their average potential (the
mapping is one-to-many: diffusion fixes one number, not the whole potential).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cgflow.errors import InvalidInputError
from cgflow.ml.features import check_features
from cgflow.ml.structure_model import StructureModel


def dynamics_pairs(
    d_aa: Any, d_aa_err: Any, d_cg: Any, d_cg_err: Any, *, k: float = 1.0
) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` whose all-atom and CG diffusion agree within uncertainty.

    A pair is kept when ``|D_AA[i] - D_CG[j]| <= k * sqrt(err_AA[i]^2 + err_CG[j]^2)``:
    the difference is within ``k`` combined standard errors (``k = 1`` by default, i.e.
    the two values are compatible at the 1-sigma level of their difference). ``i == j``
    is allowed (a set whose CG dynamics already match its own all-atom dynamics). Sets
    with a non-finite value or error are skipped.

    Parameters
    ----------
    d_aa, d_aa_err, d_cg, d_cg_err
        (n,) diffusion coefficients and standard errors, nm^2/ps.
    k
        Number of combined standard errors allowed (>= 0).

    Returns
    -------
    list of (int, int)
        Sorted by ``i`` then ``j``.
    """
    arrays = [np.asarray(a, dtype=float).reshape(-1) for a in (d_aa, d_aa_err, d_cg, d_cg_err)]
    n = arrays[0].size
    names = ("d_aa", "d_aa_err", "d_cg", "d_cg_err")
    for name, a in zip(names, arrays, strict=True):
        if a.size != n:
            raise InvalidInputError(f"{name}: expected {n} values like d_aa, got {a.size}")
    for name, a in zip(names[1::2], arrays[1::2], strict=True):
        if np.any(a[np.isfinite(a)] < 0):
            raise InvalidInputError(f"{name}: standard errors must be >= 0")
    if not (np.isfinite(k) and k >= 0):
        raise InvalidInputError(f"field 'k': must be a finite number >= 0, got {k!r}")
    a, ea, c, ec = arrays
    ok_i = np.isfinite(a) & np.isfinite(ea)
    ok_j = np.isfinite(c) & np.isfinite(ec)
    diff = np.abs(a[:, None] - c[None, :])
    tol = k * np.sqrt(ea[:, None] ** 2 + ec[None, :] ** 2)
    match = (diff <= tol) & ok_i[:, None] & ok_j[None, :]
    return [(int(i), int(j)) for i, j in np.argwhere(match)]


class DynamicsModel(StructureModel):
    """Parameters of set ``i`` (n, 19) -> a CG potential (n, G) in kJ/mol with its
    all-atom dynamics, learnt from :func:`dynamics_pairs`.

    Same network, representation, training protocol and serialisation as
    :class:`~cgflow.ml.structure_model.StructureModel`. The early-stopping split is by
    ``i``, so the parameters of one set are never on both sides of it.
    """

    kind: ClassVar[str] = "dynamics"

    def fit_pairs(self, X: Any, U: Any, pairs: list[tuple[int, int]]) -> DynamicsModel:
        """Fit on ``X[i] -> U[j]`` for each ``(i, j)`` in ``pairs``.

        Parameters
        ----------
        X
            (n, 19) parameters of all sets.
        U
            (n, G) converged potentials of all sets, kJ/mol.
        pairs
            Index pairs from :func:`dynamics_pairs`.
        """
        X = check_features(X)
        U = self._check_targets(U, X.shape[0])
        if len(pairs) == 0:
            raise InvalidInputError("pairs: no (i, j) pairs to train on")
        idx = np.asarray(pairs, dtype=int).reshape(-1, 2)
        if idx.min() < 0 or idx.max() >= X.shape[0]:
            raise InvalidInputError(
                f"pairs: indices must be in [0, {X.shape[0]}), got range "
                f"[{idx.min()}, {idx.max()}]"
            )
        if np.unique(idx[:, 0]).size < 2:
            raise InvalidInputError(
                "pairs: need pairs from at least 2 distinct sets i to train and stop early"
            )
        self.fit(X[idx[:, 0]], U[idx[:, 1]], groups=idx[:, 0])
        self.training_info_["n_pairs"] = int(idx.shape[0])
        self.training_info_["n_sets_i"] = int(np.unique(idx[:, 0]).size)
        return self
