"""``tail_effect`` of ``benchmarks/ml/alpha_selection.py``: how much the largest alphas
weigh in the R^2 of alpha (numbers checked by hand on a small table)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "ml"))
from alpha_selection import N_TAIL, tail_effect  # noqa: E402


def test_tail_effect_on_a_table_ruled_by_its_extremes() -> None:
    rest = np.array([1.0, 2.0, 3.0, 2.0, 1.0, 3.0])
    top = np.array([50.0, 60.0, 70.0, 80.0, 100.0])
    assert top.size == N_TAIL
    y = np.concatenate([rest, top])
    d_aa = np.concatenate([np.full(rest.size, 1e-3), 1e-3 / np.array([10, 20, 30, 40, 50.0])])
    # perfect on the extremes, the mean of the rest on the others
    pred = np.concatenate([np.full(rest.size, rest.mean()), top])
    t = tail_effect(y, d_aa, pred)
    ss = np.sum((y - y.mean()) ** 2)
    assert t["share_of_sum_of_squares"] == pytest.approx(np.sum((top - y.mean()) ** 2) / ss)
    assert 0.55 < t["share_of_sum_of_squares"] < 0.6  # the rest lie far below the mean
    assert t["alpha"] == sorted(top.tolist())
    # median D_AA of all 11 rows is 1e-3 (6 of them); the extremes 10-50 times below
    assert t["d_aa_below_median"] == pytest.approx([10.0, 50.0])
    assert t["r2_without"] == pytest.approx(0.0)  # the mean of the rest predicts nothing
    assert t["r2_all"] == pytest.approx(1 - np.sum((rest - rest.mean()) ** 2) / ss)
    assert t["r2_all"] > 0.99
