"""Block averages and averages of GROMACS energy-file terms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cgflow.analysis import block_average, energy_averages
from cgflow.errors import InvalidInputError

DATA = Path(__file__).parent / "data" / "analysis"


def _ar1(rng, n, phi):
    """AR(1) series x_t = phi x_{t-1} + e_t with unit noise, started in equilibrium."""
    noise = rng.normal(size=n)
    x = np.empty(n)
    x[0] = noise[0] / np.sqrt(1.0 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def test_block_error_on_correlated_data_matches_replica_scatter():
    rng = np.random.default_rng(8)
    phi, n = 0.9, 5000  # correlation time (1 + phi) / (1 - phi) = 19 samples
    means, errors, naive = [], [], []
    for _ in range(150):
        x = _ar1(rng, n, phi)
        mean, err = block_average(x, n_blocks=5)
        means.append(mean)
        errors.append(err)
        naive.append(x.std(ddof=1) / np.sqrt(n))
    true_se = np.sqrt(1.0 / (1.0 - phi**2) * (1 + phi) / (1 - phi) / n)
    assert np.std(means, ddof=1) == pytest.approx(true_se, rel=0.2)
    assert np.sqrt(np.mean(np.square(errors))) == pytest.approx(true_se, rel=0.2)
    assert np.mean(errors) > 3.0 * np.mean(naive)  # the naive error is ~sqrt(19) too small


def test_block_error_on_white_noise_is_the_standard_error():
    rng = np.random.default_rng(2)
    errors = [block_average(rng.normal(size=1000), 10)[1] for _ in range(200)]
    assert np.sqrt(np.mean(np.square(errors))) == pytest.approx(1 / np.sqrt(1000), rel=0.1)


def test_block_average_drops_the_earliest_remainder():
    x = np.r_[100.0, np.arange(1.0, 11.0)]  # 11 samples, 5 blocks of 2
    mean, err = block_average(x, n_blocks=5)
    assert mean == pytest.approx(5.5)
    block_means = np.array([1.5, 3.5, 5.5, 7.5, 9.5])
    assert err == pytest.approx(block_means.std(ddof=1) / np.sqrt(5))


@pytest.mark.parametrize(
    ("x", "n_blocks", "match"),
    [
        (np.ones((3, 3)), 2, "one dimension"),
        (np.ones(4), 5, "fewer than n_blocks"),
        (np.ones(10), 1, "n_blocks"),
        (np.array([1.0, np.nan, 2.0]), 2, "non-finite"),
    ],
)
def test_block_average_bad_input(x, n_blocks, match):
    with pytest.raises(InvalidInputError, match=match):
        block_average(x, n_blocks)


def test_energy_averages_of_a_gromacs_2022_file():
    """Reference values from ``gmx energy`` on the same file (51 frames, 0 to 0.5 ps)."""
    result = energy_averages(DATA / "water.edr", n_blocks=3)  # 3 blocks of 17: all frames
    assert list(result) == ["Density", "Pressure", "Temperature", "Volume"]
    assert result["Density"].unit == "kg/m^3"
    assert result["Pressure"].unit == "bar"
    assert result["Temperature"].unit == "K"
    assert result["Volume"].unit == "nm^3"
    assert all(v.n_samples == 51 for v in result.values())
    assert result["Density"].mean == pytest.approx(946.146, abs=1e-3)
    assert result["Temperature"].mean == pytest.approx(301.866, abs=1e-3)
    assert result["Volume"].mean == pytest.approx(6.73516, abs=1e-5)
    assert result["Pressure"].mean == pytest.approx(-523.974, abs=1e-3)
    assert all(v.err > 0 for v in result.values())


def test_energy_averages_from_start_time():
    import pyedr

    raw = pyedr.edr_to_dict(str(DATA / "water.edr"))
    result = energy_averages(DATA / "water.edr", ["Potential"], start_ps=0.25)
    kept = raw["Potential"][raw["Time"] >= 0.25 - 1e-9]
    assert kept.size == 26
    assert result["Potential"].n_samples == 25
    assert result["Potential"].mean == pytest.approx(kept[1:].mean())
    assert result["Potential"].unit == "kJ/mol"
    with pytest.raises(InvalidInputError, match="start_ps"):
        energy_averages(DATA / "water.edr", ["Potential"], start_ps=0.48)


def test_unknown_term_is_named_with_the_available_ones(tmp_path):
    with pytest.raises(InvalidInputError, match=r"\['Dens'\].*'Density'"):
        energy_averages(DATA / "water.edr", ["Dens", "Pressure"])
    with pytest.raises(InvalidInputError, match="file not found"):
        energy_averages(tmp_path / "none.edr")
    garbage = tmp_path / "bad.edr"
    garbage.write_bytes(b"not an energy file" * 10)
    with pytest.raises(InvalidInputError, match="not a GROMACS energy file"):
        energy_averages(garbage)
