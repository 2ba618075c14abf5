"""Convergence metrics of IBI: the RDF deviation and the pressure deviation."""

from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid

from cgflow.errors import InvalidInputError


def rdf_deviation(
    r_nm: np.ndarray, g_n: np.ndarray, g_target: np.ndarray, *, r_max_nm: float | None = None,
) -> float:
    """Integrated absolute deviation of an RDF from the target, normalised.

    Definition::

        D = int_0^{r_c} |g_n(r) - g_t(r)| dr  /  int_0^{r_c} g_t(r) dr

    with both integrals by the trapezoid rule over the points of the common grid
    ``r_nm`` up to ``r_c = r_max_nm`` (default: the whole grid, i.e. the cutoff). D = 0
    for identical RDFs; D = 0.02 means the curves differ on average by 2 % of the
    target's integral (for a liquid with g ~ 1 beyond the first shells, about 0.02 in
    g per unit length of r).
    """
    r = np.asarray(r_nm, float)
    a, b = np.asarray(g_n, float), np.asarray(g_target, float)
    if not (a.shape == b.shape == r.shape):
        raise InvalidInputError(f"RDF deviation: shapes differ: r {r.shape}, g_n {a.shape}, "
                                f"g_target {b.shape}")
    if r_max_nm is not None:
        keep = r <= r_max_nm + 1e-12
        r, a, b = r[keep], a[keep], b[keep]
    norm = trapezoid(b, r)
    if not norm > 0:
        raise InvalidInputError("RDF deviation: the target RDF integrates to zero")
    return float(trapezoid(np.abs(a - b), r) / norm)


def pressure_deviation(p_cg_bar: float, p_target_bar: float) -> float:
    """Signed pressure deviation P_cg - P_target, bar."""
    return float(p_cg_bar - p_target_bar)
