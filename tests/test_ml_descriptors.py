"""Molecular descriptors of the alpha model's features: known geometries and trends."""

import numpy as np
import pytest

from cgflow.molecule import build_coordinates, trimethylpentane
from cgflow.molecule.descriptors import (
    DESCRIPTOR_NAMES,
    VDW_RADIUS_NM,
    asphericity,
    descriptor_coordinates,
    descriptor_vector,
    dihedral_barrier_kj_mol,
    molecular_descriptors,
    radius_of_gyration_nm,
    union_volume_nm3,
)
from cgflow.params import OPLSAA_REFERENCE, ParameterSet


def test_radius_of_gyration_of_known_geometries():
    # two equal masses 0.3 nm apart: every atom 0.15 nm from the centre
    assert radius_of_gyration_nm(np.array([[0.0, 0, 0], [0.3, 0, 0]])) == pytest.approx(0.15)
    # the 8 corners of a cube of edge 2a: all at a sqrt(3) from the centre
    a = 0.1
    cube = a * np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)
    assert radius_of_gyration_nm(cube + 5.0) == pytest.approx(a * np.sqrt(3.0))
    # mass weighting: masses 3 and 1 at distance 0.4 nm -> centre 0.1 nm from the heavy one;
    # Rg^2 = (3 * 0.1^2 + 1 * 0.3^2) / 4
    x = np.array([[0.0, 0, 0], [0.4, 0, 0]])
    assert radius_of_gyration_nm(x, np.array([3.0, 1.0])) == pytest.approx(np.sqrt(0.03))


def test_asphericity_of_a_sphere_like_and_a_rod():
    octahedron = 0.2 * np.vstack([np.eye(3), -np.eye(3)])
    assert asphericity(octahedron) == pytest.approx(0.0, abs=1e-12)
    rod = np.array([[0.1 * k, 0.0, 0.0] for k in range(5)])
    assert asphericity(rod) == pytest.approx(1.0)


def test_union_volume_against_analytic_volumes():
    r = 0.2
    one = union_volume_nm3(np.zeros((1, 3)), np.array([r]))
    assert one == pytest.approx(4.0 / 3.0 * np.pi * r**3, rel=0.01)
    d = 0.25  # two overlapping spheres: 2 V - lens, lens = pi (4r + d)(2r - d)^2 / 12
    exact = 2 * 4.0 / 3.0 * np.pi * r**3 - np.pi * (4 * r + d) * (2 * r - d) ** 2 / 12
    two = union_volume_nm3(np.array([[0.0, 0, 0], [d, 0, 0]]), np.array([r, r]))
    assert two == pytest.approx(exact, rel=0.01)
    apart = union_volume_nm3(np.array([[0.0, 0, 0], [1.0, 0, 0]]), np.array([r, r]))
    assert apart == pytest.approx(2 * one, rel=1e-6)


def test_dihedral_barrier_of_single_terms():
    assert dihedral_barrier_kj_mol(0.0, 0.0, 3.0) == pytest.approx(3.0)
    assert dihedral_barrier_kj_mol(2.0, 0.0, 0.0) == pytest.approx(2.0)
    assert dihedral_barrier_kj_mol(0.0, -1.5, 0.0) == pytest.approx(1.5)
    assert dihedral_barrier_kj_mol(0.0, 0.0, 0.0) == 0.0


def test_descriptors_of_the_built_molecule():
    ref = molecular_descriptors(OPLSAA_REFERENCE)
    assert tuple(ref) == DESCRIPTOR_NAMES
    mol = trimethylpentane()
    x = descriptor_coordinates(OPLSAA_REFERENCE)
    assert ref["radius_of_gyration_nm"] == pytest.approx(
        radius_of_gyration_nm(x, np.array(mol.masses())))
    # for OPLS-AA it is the simulation's starting geometry
    np.testing.assert_allclose(x, build_coordinates(OPLSAA_REFERENCE), atol=1e-12)
    bonds = np.array([np.linalg.norm(x[b.i] - x[b.j]) for b in mol.bonds])
    expected = [OPLSAA_REFERENCE.bond_ctct_r0 if b.kind == "ctct" else
                OPLSAA_REFERENCE.bond_cthc_r0 for b in mol.bonds]
    np.testing.assert_allclose(bonds, expected, rtol=1e-12)
    # 26 atoms of OPLS-AA sizes: less than the sum of the spheres (they overlap), more
    # than the carbons alone
    spheres = sum(4.0 / 3.0 * np.pi * VDW_RADIUS_NM[a.bonded_type] ** 3 for a in mol.atoms)
    assert ref["carbon_volume_nm3"] < ref["vdw_volume_nm3"] < spheres
    assert ref["hydrogen_volume_nm3"] == pytest.approx(
        ref["vdw_volume_nm3"] - ref["carbon_volume_nm3"])
    # OPLS-AA: the CT-CT-CT-CT profile 1/2 [5.4392 (1 + cos) - 0.2092 (1 - cos 2) + 0.8368 ...]
    assert ref["dih_ctctctct_barrier_kj_mol"] == pytest.approx(
        dihedral_barrier_kj_mol(5.4392, -0.2092, 0.8368))
    np.testing.assert_array_equal(descriptor_vector(OPLSAA_REFERENCE),
                                  [ref[k] for k in DESCRIPTOR_NAMES])


def test_descriptors_follow_the_geometry():
    ref = molecular_descriptors(OPLSAA_REFERENCE)
    values = OPLSAA_REFERENCE.model_dump()
    short_ch = molecular_descriptors(ParameterSet(**{**values, "bond_cthc_r0": 0.07}))
    long_cc = molecular_descriptors(ParameterSet(**{**values, "bond_ctct_r0": 0.20}))
    # buried hydrogens add less volume; a longer skeleton is larger in every respect
    assert short_ch["hydrogen_volume_nm3"] < 0.5 * ref["hydrogen_volume_nm3"]
    assert short_ch["radius_of_gyration_nm"] < ref["radius_of_gyration_nm"]
    assert long_cc["carbon_volume_nm3"] > ref["carbon_volume_nm3"]
    assert long_cc["radius_of_gyration_nm"] > 1.2 * ref["radius_of_gyration_nm"]
    # force constants and dihedrals do not change the geometry
    stiff = molecular_descriptors(ParameterSet(**{**values, "bond_ctct_k": 5e5,
                                                  "dih_hcctcthc_c3": 3.0}))
    assert stiff["vdw_volume_nm3"] == ref["vdw_volume_nm3"]
    assert stiff["dih_hcctcthc_barrier_kj_mol"] == pytest.approx(3.0)


def test_descriptors_are_continuous_in_the_angles():
    # one conformer for all sets: no jumps where the simulation builder would switch
    values = OPLSAA_REFERENCE.model_dump()
    thetas = np.arange(70.0, 141.0, 2.5)
    d = np.array([descriptor_vector(ParameterSet(**{**values, "angle_ctctct_theta0": t}))
                  for t in thetas])
    jumps = {}
    for k, name in enumerate(DESCRIPTOR_NAMES[:5]):
        steps = np.abs(np.diff(d[:, k]))
        # a jump: a step more than twice as large as both of its neighbours
        big = steps[1:-1] > 2.0 * np.maximum(steps[:-2], steps[2:]) + 1e-4
        jumps[name] = thetas[1:-2][big].tolist()
    # the one jump, just above 90 degrees (see the module docstring)
    assert jumps == {n: [90.0] if n == "asphericity" else [] for n in DESCRIPTOR_NAMES[:5]}
