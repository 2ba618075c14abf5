"""Tests of the 2,3,4-trimethylpentane model: structure, coordinates, topology.

The engine test checks that the explicit bonded parameters of OPLSAA_REFERENCE give the
same single-molecule energies as GROMACS' own oplsaa.ff bonded parameters.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.molecule import (
    build_coordinates,
    molar_mass_g_mol,
    topology_text,
    trimethylpentane,
    write_gro,
    write_topology,
)
from cgflow.molecule.geometry import min_distance_apart
from cgflow.params import OPLSAA_REFERENCE, SPACES

HAVE_GMX = shutil.which("gmx") is not None


def _angle_deg(a, b, c) -> float:
    u, v = a - b, c - b
    return float(np.degrees(np.arccos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))))


def _dihedral_deg(a, b, c, d) -> float:
    b0, b1, b2 = a - b, c - b, d - c
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    x = np.dot(v, w)
    y = np.dot(np.cross(b1n, v), w)
    return float(np.degrees(np.arctan2(y, x)))


# --- structure ---------------------------------------------------------------------------------


def test_atoms_types_and_charges():
    mol = trimethylpentane()
    assert mol.n_atoms == 26
    elements = Counter(a.element for a in mol.atoms)
    assert elements == {"C": 8, "H": 18}
    types = Counter(a.opls_type for a in mol.atoms)
    assert types == {"opls_135": 5, "opls_137": 3, "opls_140": 18}
    adj = mol.neighbours()
    for i, a in enumerate(mol.atoms):
        if a.element == "C":
            n_h = sum(mol.atoms[j].element == "H" for j in adj[i])
            assert len(adj[i]) == 4
            assert a.opls_type == {3: "opls_135", 1: "opls_137"}[n_h]
            group = [i] + [j for j in adj[i] if mol.atoms[j].element == "H"]
            assert sum(mol.atoms[j].charge for j in group) == pytest.approx(0.0, abs=1e-12)
        else:
            assert len(adj[i]) == 1
    assert mol.total_charge() == pytest.approx(0.0, abs=1e-12)
    assert molar_mass_g_mol() == pytest.approx(114.23, abs=0.005)


@pytest.mark.skipif(not HAVE_GMX, reason="GROMACS not installed")
def test_charges_and_masses_match_oplsaa_ffnonbonded():
    from cgflow.engines.gromacs import gromacs_topology_dir

    text = (gromacs_topology_dir() / "oplsaa.ff" / "ffnonbonded.itp").read_text()
    table = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] in ("opls_135", "opls_137", "opls_140"):
            table[f[0]] = (f[1], float(f[3]), float(f[4]))
    assert len(table) == 3
    for a in trimethylpentane().atoms:
        bonded, mass, charge = table[a.opls_type]
        assert (a.bonded_type, a.mass, a.charge) == (bonded, mass, charge)


def test_bonded_terms_from_graph():
    mol = trimethylpentane()
    types = [a.bonded_type for a in mol.atoms]
    assert Counter(b.kind for b in mol.bonds) == {"ctct": 7, "cthc": 18}
    assert Counter(a.kind for a in mol.angles) == {"ctctct": 9, "ctcthc": 24, "hcthc": 15}
    assert Counter(d.kind for d in mol.dihedrals) == {
        "ctctctct": 8, "ctctcthc": 38, "hcctcthc": 17}
    dist = mol.graph_distances()
    for b in mol.bonds:
        assert dist[b.i][b.j] == 1
        assert b.kind == ("ctct" if types[b.i] == types[b.j] == "CT" else "cthc")
    for a in mol.angles:
        assert dist[a.i][a.j] == dist[a.j][a.k] == 1 and dist[a.i][a.k] == 2
        assert a.kind == ("ctctct", "ctcthc", "hcthc")[[types[a.i], types[a.k]].count("HC")]
    for d in mol.dihedrals:
        assert dist[d.i][d.j] == dist[d.j][d.k] == dist[d.k][d.l] == 1
        assert dist[d.i][d.l] == 3
        assert (types[d.j], types[d.k]) == ("CT", "CT")
        assert d.kind == ("ctctctct", "ctctcthc", "hcctcthc")[[types[d.i], types[d.l]].count("HC")]
    # 1-4 pairs: exactly the atom pairs three bonds apart
    expected = {(i, j) for i in range(mol.n_atoms) for j in range(i + 1, mol.n_atoms)
                if dist[i][j] == 3}
    assert set(mol.pairs) == expected and len(mol.pairs) == 63


# --- coordinates -------------------------------------------------------------------------------


def _check_bond_lengths(ps, x):
    mol = trimethylpentane()
    for b in mol.bonds:
        r = np.linalg.norm(x[b.i] - x[b.j])
        assert r == pytest.approx(getattr(ps, f"bond_{b.kind}_r0"), rel=1e-9)


def test_reference_geometry_bonds_angles_staggered():
    mol = trimethylpentane()
    ps = OPLSAA_REFERENCE
    x = build_coordinates(ps)
    assert x.shape == (26, 3)
    _check_bond_lengths(ps, x)
    for a in mol.angles:
        theta = _angle_deg(x[a.i], x[a.j], x[a.k])
        assert abs(theta - getattr(ps, f"angle_{a.kind}_theta0")) < 7.0
    for d in mol.dihedrals:
        phi = _dihedral_deg(x[d.i], x[d.j], x[d.k], x[d.l]) % 360.0
        assert min(abs(phi - s) for s in (60.0, 180.0, 300.0)) < 10.0, (d, phi)
    # no overlap: atoms three or more bonds apart are further than a C-H van der Waals contact
    assert min_distance_apart(x) > 0.17


def test_geometry_uses_parameter_set_values():
    ps = OPLSAA_REFERENCE.model_copy(update={"bond_ctct_r0": 0.17, "angle_ctctct_theta0": 118.0})
    mol = trimethylpentane()
    x = build_coordinates(ps)
    _check_bond_lengths(ps, x)
    ctctct = [_angle_deg(x[a.i], x[a.j], x[a.k]) for a in mol.angles if a.kind == "ctctct"]
    # the builder sets the angle to the bond towards the tree root exactly: some C-C-C
    # angles equal the new theta0, none the OPLS-AA one
    assert any(abs(t - 118.0) < 1e-6 for t in ctctct)
    assert not any(abs(t - 112.7) < 1e-3 for t in ctctct)


def test_wide_space_geometries():
    mol = trimethylpentane()
    for ps in SPACES["wide"].sample(3, seed=0):
        x = build_coordinates(ps)
        assert np.all(np.isfinite(x))
        _check_bond_lengths(ps, x)
        for a in mol.angles:
            assert 45.0 < _angle_deg(x[a.i], x[a.j], x[a.k]) < 165.0
        shortest = min(ps.bond_ctct_r0, ps.bond_cthc_r0)
        assert min_distance_apart(x) > 0.75 * shortest


# --- files --------------------------------------------------------------------------------------


def test_topology_explicit_parameters():
    ps = SPACES["wide"].sample(1, seed=3)[0]
    mol = trimethylpentane()
    text = topology_text(ps, n_molecules=7)
    assert '#include "oplsaa.ff/forcefield.itp"' in text
    sections = re.split(r"^\[\s*(\w+)\s*\]\s*$", text, flags=re.M)
    body = {sections[i]: sections[i + 1] for i in range(1, len(sections), 2)}

    def rows(name):
        return [ln.split(";")[0].split() for ln in body[name].splitlines()
                if ln.split(";")[0].strip()]

    atoms = rows("atoms")
    assert len(atoms) == 26
    assert sum(float(r[6]) for r in atoms) == pytest.approx(0.0, abs=1e-9)
    bonds = rows("bonds")
    assert len(bonds) == 25
    for r, b in zip(bonds, mol.bonds, strict=True):
        assert (int(r[0]), int(r[1]), r[2]) == (b.i + 1, b.j + 1, "1")
        assert float(r[3]) == pytest.approx(getattr(ps, f"bond_{b.kind}_r0"), rel=1e-9)
        assert float(r[4]) == pytest.approx(getattr(ps, f"bond_{b.kind}_k"), rel=1e-9)
    angles = rows("angles")
    assert len(angles) == 48
    for r, a in zip(angles, mol.angles, strict=True):
        assert r[3] == "1"
        assert float(r[4]) == pytest.approx(getattr(ps, f"angle_{a.kind}_theta0"), rel=1e-9)
        assert float(r[5]) == pytest.approx(getattr(ps, f"angle_{a.kind}_k"), rel=1e-9)
    dihedrals = rows("dihedrals")
    assert len(dihedrals) == 63
    for r, d in zip(dihedrals, mol.dihedrals, strict=True):
        assert r[4] == "5" and float(r[8]) == 0.0
        for m in (1, 2, 3):
            assert float(r[4 + m]) == pytest.approx(getattr(ps, f"dih_{d.kind}_c{m}"), rel=1e-9)
    pairs = rows("pairs")
    assert len(pairs) == 63 and all(r[2] == "1" and len(r) == 3 for r in pairs)
    assert rows("molecules") == [["TMP", "7"]]


def test_topology_forcefield_mode_and_errors(tmp_path):
    text = topology_text(None, bonded="forcefield")
    assert re.search(r"^\s+1\s+2\s+1\s+;", text, re.M)  # bond line without values
    with pytest.raises(InvalidInputError, match="n_molecules"):
        topology_text(OPLSAA_REFERENCE, n_molecules=0)
    with pytest.raises(InvalidInputError, match="bonded"):
        topology_text(OPLSAA_REFERENCE, bonded="rb")
    with pytest.raises(InvalidInputError, match="'ps'"):
        write_topology(None, tmp_path / "t.top")


def test_write_gro_roundtrip(tmp_path):
    x = build_coordinates(OPLSAA_REFERENCE) + 1.5
    path = write_gro(tmp_path / "m.gro", np.vstack([x, x + 0.5]), 3.0)
    lines = path.read_text().splitlines()
    assert int(lines[1]) == 52
    assert lines[2][5:10].strip() == "TMP" and lines[2][10:15].strip() == "C1"
    assert int(lines[28][:5]) == 2  # second residue
    back = np.array([[float(ln[20 + 8 * k:28 + 8 * k]) for k in range(3)] for ln in lines[2:54]])
    assert np.allclose(back[:26], x, atol=6e-4)
    assert [float(v) for v in lines[-1].split()] == [3.0, 3.0, 3.0]
    with pytest.raises(InvalidInputError, match="coordinates_nm"):
        write_gro(tmp_path / "bad.gro", x[:5], 3.0)


# --- energies against GROMACS' own OPLS-AA -------------------------------------------------------


def _single_point(workdir: Path, top_text: str, gro: Path, preset) -> dict[str, float]:
    import pyedr

    from cgflow.engines.gromacs import grompp_command, mdrun_command, run_command, write_mdp

    workdir.mkdir()
    (workdir / "topol.top").write_text(top_text)
    write_mdp("nvt", preset, 0.001, workdir / "sp.mdp", nsteps=0)
    run_command(grompp_command("sp.mdp", gro, "topol.top", "sp.tpr"), workdir, "grompp.log")
    run_command(mdrun_command("sp", threads=1, maxh=0.1), workdir, "mdrun.out")
    e = pyedr.edr_to_dict(str(workdir / "sp.edr"))
    return {k: float(v[0]) for k, v in e.items()}


@pytest.mark.engine
@pytest.mark.skipif(not HAVE_GMX, reason="GROMACS not installed")
def test_reference_energies_equal_oplsaa_defaults(tmp_path):
    from cgflow.presets import get_aa_preset

    preset = get_aa_preset("tiny")
    rng = np.random.default_rng(7)
    # a distorted geometry so that every bonded term contributes
    x = build_coordinates(OPLSAA_REFERENCE) + rng.normal(0.0, 0.012, size=(26, 3)) + 2.5
    gro = write_gro(tmp_path / "one.gro", x, 5.0)
    mine = _single_point(tmp_path / "explicit", topology_text(OPLSAA_REFERENCE), gro, preset)
    ref = _single_point(tmp_path / "oplsaa", topology_text(None, bonded="forcefield"), gro,
                        preset)
    assert "Fourier Dih." in mine and "Ryckaert-Bell." in ref
    mine["dihedrals"] = mine.pop("Fourier Dih.")
    ref["dihedrals"] = ref.pop("Ryckaert-Bell.")
    terms = ["Bond", "Angle", "dihedrals", "LJ-14", "Coulomb-14", "LJ (SR)", "Coulomb (SR)",
             "Coul. recip.", "Potential"]
    for term in terms:
        assert mine[term] == pytest.approx(ref[term], abs=1e-3), term
    # the comparison is not vacuous: the bonded terms are sizeable
    for term in ("Bond", "Angle", "dihedrals", "LJ-14", "Coulomb-14"):
        assert abs(ref[term]) > 1.0, term
