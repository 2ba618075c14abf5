"""Repeated k-fold cross-validation of alpha models (shared by the alpha benchmarks).

One evaluation = ``folds``-fold cross-validation (scikit-learn ``KFold``, shuffled with
``random_state = repeat``) repeated ``repeats`` times; per repeat the out-of-fold
predictions of every row give the pooled R^2 of alpha, the mean of the per-fold R^2 (the
``cross_val_score`` convention), and the R^2 and Gaussian NLL of log(alpha).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.model_selection import KFold

from cgflow.ml.alpha_model import compare_on_folds


def r2(y: np.ndarray, p: np.ndarray) -> float:
    """Coefficient of determination of the predictions ``p`` of ``y`` (NaN if ``y`` is constant)."""
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - p) ** 2)) / ss if ss > 0 else math.nan


def repeated_cv(X: np.ndarray, y: np.ndarray, models: dict[str, Any], *, folds: int = 10,
                repeats: int = 5) -> dict[str, Any]:
    """Scores of every model (same folds for all) per repeat, and the out-of-fold
    predictions of the first repeat.

    Returns
    -------
    dict
        Model name -> ``per_repeat`` (list of dicts: ``r2_pooled``, ``r2_fold_mean``,
        ``r2_log``, ``nll_log``, ``rmse``, ``coverage_1sigma``), ``mean`` and ``std`` of
        those over the repeats, ``oof`` (``alpha``, ``std`` per row, first repeat).
    """
    out: dict[str, Any] = {name: {"per_repeat": []} for name in models}
    for rep in range(repeats):
        split = list(KFold(folds, shuffle=True, random_state=rep).split(X))
        res = compare_on_folds(X, y, split, models)
        for name, block in res.items():
            pred = np.empty_like(y)
            std = np.empty_like(y)
            pred[block["predictions"]["index"]] = block["predictions"]["alpha"]
            std[block["predictions"]["index"]] = block["predictions"]["std"]
            # log-normal moments back to those of log(alpha) for the NLL of log(alpha)
            s_log = np.maximum(np.sqrt(np.log1p((std / pred) ** 2)), 1e-9)
            m_log = np.log(pred) - 0.5 * s_log**2
            res_log = np.log(y) - m_log
            out[name]["per_repeat"].append({
                "r2_pooled": r2(y, pred),
                "r2_fold_mean": float(np.mean([f["r2"] for f in block["folds"]])),
                "r2_log": r2(np.log(y), m_log),
                "nll_log": float(np.mean(0.5 * np.log(2 * np.pi * s_log**2)
                                         + 0.5 * (res_log / s_log) ** 2)),
                "rmse": block["pooled"]["rmse"],
                "coverage_1sigma": block["pooled"]["coverage_1sigma"],
            })
            if rep == 0:
                out[name]["oof"] = {"alpha": pred.tolist(), "std": std.tolist()}
    for block in out.values():
        keys = block["per_repeat"][0].keys()
        block["mean"] = {k: float(np.mean([r[k] for r in block["per_repeat"]])) for k in keys}
        block["std"] = {k: float(np.std([r[k] for r in block["per_repeat"]])) for k in keys}
    return out
