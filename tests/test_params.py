"""ParameterSet, ParameterSpace and unit conversions."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.params import (
    FIELDS,
    N_PARAMETERS,
    OPLSAA_REFERENCE,
    SPACES,
    ParameterSet,
    fourier_to_rb,
    parameter_set_from_mapping,
)

FFBONDED = Path("/usr/share/gromacs/top/oplsaa.ff/ffbonded.itp")


def test_nineteen_fields_in_order():
    assert N_PARAMETERS == 19
    assert list(ParameterSet.model_fields) == list(FIELDS)


def test_id_is_stable_and_value_sensitive():
    ref = OPLSAA_REFERENCE
    again = ParameterSet.from_array(ref.to_array())
    assert again.id == ref.id
    bumped = ref.model_copy(update={"bond_ctct_k": ref.bond_ctct_k * 1.001})
    assert ParameterSet.model_validate(bumped.model_dump()).id != ref.id
    assert re.fullmatch(r"[0-9a-f]{16}", ref.id)


def test_lammps_round_trip_and_known_values():
    lmp = OPLSAA_REFERENCE.to_lammps()
    # OPLS-AA in LAMMPS real units (E = K dr^2): 268 and 340 kcal/mol/A^2, 1.529 A
    assert lmp["bond_ctct_k"] == pytest.approx(268.0)
    assert lmp["bond_cthc_k"] == pytest.approx(340.0)
    assert lmp["bond_ctct_r0"] == pytest.approx(1.529)
    assert lmp["angle_ctcthc_k"] == pytest.approx(37.5)
    assert lmp["dih_ctctctct_c1"] == pytest.approx(1.3)
    back = ParameterSet.from_lammps(lmp)
    np.testing.assert_allclose(back.to_array(), OPLSAA_REFERENCE.to_array(), rtol=1e-12)
    assert back.id == OPLSAA_REFERENCE.id


@pytest.mark.skipif(not FFBONDED.exists(), reason="GROMACS oplsaa.ff not installed")
def test_reference_matches_gromacs_oplsaa():
    text = FFBONDED.read_text().splitlines()

    def find(*types, nf):
        for line in text:
            f = line.split(";")[0].split()
            if len(f) >= nf and tuple(f[: len(types)]) == types:
                return [float(x) for x in f[len(types) + 1:]]
        raise AssertionError(types)

    ref = OPLSAA_REFERENCE
    assert find("CT", "CT", nf=5) == pytest.approx([ref.bond_ctct_r0, ref.bond_ctct_k])
    assert find("CT", "HC", nf=5) == pytest.approx([ref.bond_cthc_r0, ref.bond_cthc_k])
    assert find("CT", "CT", "CT", nf=6) == pytest.approx(
        [ref.angle_ctctct_theta0, ref.angle_ctctct_k])
    assert find("HC", "CT", "HC", nf=6) == pytest.approx(
        [ref.angle_hcthc_theta0, ref.angle_hcthc_k])
    for t, name in (("CT", "CT", "CT", "CT"), "ctctctct"), (("CT", "CT", "CT", "HC"), "ctctcthc"), \
            (("HC", "CT", "CT", "HC"), "hcctcthc"):
        rb = find(*t, nf=11)
        c = [getattr(ref, f"dih_{name}_c{i}") for i in (1, 2, 3)]
        assert list(fourier_to_rb(*c)) == pytest.approx(rb, abs=1e-4)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("bond_ctct_k", -5.0, "must be > 0"),
        ("angle_ctctct_k", 0.0, "must be > 0"),
        ("bond_cthc_r0", 0.0, "must be > 0"),
        ("angle_hcthc_theta0", 180.0, "(0, 180)"),
        ("angle_ctcthc_theta0", -3.0, "(0, 180)"),
        ("dih_ctctctct_c2", math.nan, "finite"),
        ("bond_ctct_k", math.inf, "finite"),
    ],
)
def test_invalid_values_name_field_and_value(field, value, fragment):
    d = OPLSAA_REFERENCE.model_dump()
    d[field] = value
    with pytest.raises(InvalidInputError) as exc:
        parameter_set_from_mapping(d, source="my.yaml")
    msg = str(exc.value)
    assert f"field '{field}'" in msg and repr(value) in msg and fragment in msg
    assert msg.startswith("my.yaml")


def test_unknown_and_missing_fields():
    d = OPLSAA_REFERENCE.model_dump()
    d["bond_ctc_k"] = d.pop("bond_ctct_k")
    with pytest.raises(InvalidInputError) as exc:
        parameter_set_from_mapping(d)
    assert "field 'bond_ctc_k'" in str(exc.value) and "unknown field" in str(exc.value)
    assert "field 'bond_ctct_k': missing" in str(exc.value)


def test_non_numeric_value():
    d = OPLSAA_REFERENCE.model_dump()
    d["bond_ctct_r0"] = "long"
    with pytest.raises(InvalidInputError, match="bond_ctct_r0.*'long'"):
        parameter_set_from_mapping(d)


@pytest.mark.parametrize("method", ["lhs", "uniform"])
def test_sampling_reproducible_and_inside(method):
    space = SPACES["wide"]
    a = space.sample(16, seed=3, method=method)
    b = space.sample(16, seed=3, method=method)
    c = space.sample(16, seed=4, method=method)
    assert [p.id for p in a] == [p.id for p in b]
    assert [p.id for p in a] != [p.id for p in c]
    for p in a:
        assert space.contains(p) == []


def test_lhs_is_stratified():
    space = SPACES["narrow"]
    n = 10
    x = np.array([p.to_array() for p in space.sample(n, seed=0)])
    lo, hi = space.lows(), space.highs()
    width = hi - lo
    for j in range(N_PARAMETERS):
        if width[j] == 0:
            continue
        bins = np.floor((x[:, j] - lo[j]) / width[j] * n).astype(int)
        assert sorted(bins) == list(range(n)), FIELDS[j]


def test_wide_space_bounds_in_lammps_units():
    space = SPACES["wide"]
    lo = ParameterSet.from_array(space.lows()).to_lammps()
    hi = ParameterSet.from_array(space.highs()).to_lammps()
    assert (lo["bond_ctct_k"], hi["bond_ctct_k"]) == pytest.approx((20.0, 990.0))
    assert (lo["bond_cthc_r0"], hi["bond_cthc_r0"]) == pytest.approx((0.6, 1.8))
    assert (lo["bond_ctct_r0"], hi["bond_ctct_r0"]) == pytest.approx((1.0, 2.5))
    assert (lo["angle_hcthc_k"], hi["angle_hcthc_k"]) == pytest.approx((5.0, 100.0))
    assert (lo["angle_ctctct_theta0"], hi["angle_ctctct_theta0"]) == pytest.approx((70.0, 140.0))
    assert (lo["dih_hcctcthc_c3"], hi["dih_hcctcthc_c3"]) == pytest.approx((-2.0, 2.0))


def test_narrow_space_contains_reference_and_flags_outsiders():
    space = SPACES["narrow"]
    assert space.contains(OPLSAA_REFERENCE) == []
    far = OPLSAA_REFERENCE.model_copy(update={"bond_cthc_k": 1e6})
    assert space.contains(far) == ["bond_cthc_k"]


def test_from_array_shape_error():
    with pytest.raises(InvalidInputError, match="19 values"):
        ParameterSet.from_array([1.0, 2.0])
