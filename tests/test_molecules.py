"""Molecules from SMILES: OPLS-AA typing and term enumeration, refusals, the registry,
2,3,4-trimethylpentane unchanged, campaign specs that name a molecule, ids and stored
documents; one engine test (the AA build and a few steps of 3-methylpentane)."""

from __future__ import annotations

import dataclasses
import shutil
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from cgflow.errors import InvalidInputError
from cgflow.molecule import (
    build_coordinates,
    find_entry,
    molecule_from_smiles,
    registry,
    resolve_molecule,
    topology_text,
    trimethylpentane,
)
from cgflow.molecule.geometry import min_distance_apart
from cgflow.molecule.structure import OPLS_TYPES
from cgflow.orchestration.campaign import campaign_spec_from_text
from cgflow.params import OPLSAA_REFERENCE, get_space

OPLSAA_NONBONDED = Path("/usr/share/gromacs/top/oplsaa.ff/ffnonbonded.itp")


# --- the hand-written 2,3,4-trimethylpentane of earlier versions, as the reference ------


def _hand_written_trimethylpentane():
    """The molecule exactly as cgflow wrote it by hand before molecules were an input:
    (atoms, bonds, angles, dihedrals, pairs) as tuples."""
    cc = ((1, 2), (2, 3), (3, 4), (4, 5), (2, 6), (3, 7), (4, 8))
    types = {"opls_135": ("CT", -0.180, 12.011), "opls_137": ("CT", -0.060, 12.011),
             "opls_140": ("HC", 0.060, 1.008)}
    degree = {c: sum(c in b for b in cc) for c in range(1, 9)}
    atoms = []
    for c in range(1, 9):
        t = "opls_135" if degree[c] == 1 else "opls_137"
        atoms.append((f"C{c}", t, *types[t], c))
    for c in range(1, 9):
        n_h = 4 - degree[c]
        for h in range(1, n_h + 1):
            atoms.append((f"H{c}{h}" if n_h > 1 else f"H{c}", "opls_140", *types["opls_140"], c))
    index = {a[0]: i for i, a in enumerate(atoms)}
    pairs = [(a - 1, b - 1) for a, b in cc]
    pairs += [(index[f"C{a[5]}"], i) for i, a in enumerate(atoms) if a[0][0] == "H"]
    pairs.sort()
    bt = [a[2] for a in atoms]
    kind = {("CT", "CT"): "ctct", ("CT", "HC"): "cthc"}
    bonds = [(i, j, kind[tuple(sorted((bt[i], bt[j])))]) for i, j in pairs]
    adj = [sorted([j for i, j, _ in bonds if i == a] + [i for i, j, _ in bonds if j == a])
           for a in range(len(atoms))]
    angles = [(i, j, k, ("ctctct", "ctcthc", "hcthc")[[bt[i], bt[k]].count("HC")])
              for j in range(len(atoms)) for i, k in combinations(adj[j], 2)]
    dihedrals = [(i, j, k, m, ("ctctctct", "ctctcthc", "hcctcthc")[[bt[i], bt[m]].count("HC")])
                 for j, k, _ in bonds for i in adj[j] if i != k for m in adj[k] if m not in (j, i)]
    one_four = sorted({(min(d[0], d[3]), max(d[0], d[3])) for d in dihedrals})
    return atoms, bonds, angles, dihedrals, one_four


def _as_tuples(mol):
    t = [dataclasses.astuple(x) for x in mol.atoms]
    return (t, [dataclasses.astuple(x) for x in mol.bonds],
            [dataclasses.astuple(x) for x in mol.angles],
            [dataclasses.astuple(x) for x in mol.dihedrals], list(mol.pairs))


@pytest.mark.parametrize("smiles", ["CC(C)C(C)C(C)C", "C(C(C)C)(C)C(C)C", "CC(C(C(C)C)C)C"])
def test_234trimepe_from_smiles_is_the_hand_written_molecule(smiles):
    # same atoms (names, types, charges, masses, groups), bonds, angles, dihedrals and
    # pairs, in the same order, from any spelling of the SMILES
    ref = _hand_written_trimethylpentane()
    built = _as_tuples(molecule_from_smiles(smiles, "TMP"))
    for name, a, b in zip(("atoms", "bonds", "angles", "dihedrals", "pairs"), ref, built,
                          strict=True):
        assert [tuple(x) for x in a] == [tuple(x) for x in b], name
    assert _as_tuples(trimethylpentane()) == built
    default = resolve_molecule(None)
    assert default.molecule == trimethylpentane() and default.is_default
    assert default.molecule.name == "TMP" and default.molecule.n_atoms == 26


# --- typing and enumeration ----------------------------------------------------------------


def test_3_methylpentane_types_and_terms():
    m = molecule_from_smiles("CCC(C)CC")
    assert m.n_atoms == 20 and m.n_carbons == 6 and m.smiles == "CCC(C)CC"
    assert m.term_counts() == {
        "opls_135": 3, "opls_136": 2, "opls_137": 1, "opls_140": 14,
        "bond_ctct": 5, "bond_cthc": 14,
        "angle_ctctct": 5, "angle_ctcthc": 20, "angle_hcthc": 11,
        "dih_ctctctct": 4, "dih_ctctcthc": 22, "dih_hcctcthc": 19,
    }
    # acyclic: one 1-4 pair per dihedral; neutral; C6H14
    assert len(m.pairs) == len(m.dihedrals) == 45
    assert m.total_charge() == pytest.approx(0.0, abs=1e-12)
    assert m.molar_mass_g_mol() == pytest.approx(86.178, abs=0.001)
    # the chain first (C1..C5), the methyl on C3 last
    assert [a.opls_type for a in m.atoms[:6]] == ["opls_135", "opls_136", "opls_137",
                                                  "opls_136", "opls_135", "opls_135"]


def test_a_type_the_molecule_lacks_is_absent():
    neo = molecule_from_smiles("CC(C)(C)C").term_counts()
    assert "dih_ctctctct" not in neo and "dih_hcctcthc" not in neo
    assert neo["opls_139"] == 1 and neo["opls_135"] == 4 and neo["angle_ctctct"] == 6
    ethane = molecule_from_smiles("CC").term_counts()
    assert "angle_ctctct" not in ethane and ethane["dih_hcctcthc"] == 9


def test_rings_pairs_are_three_bonds_apart():
    chx = molecule_from_smiles("C1CCCCC1")
    assert chx.is_cyclic() and chx.n_atoms == 18
    counts = chx.term_counts()
    assert counts["opls_136"] == 6 and counts["dih_ctctctct"] == 6 and counts["angle_ctctct"] == 6
    for mol in (chx, molecule_from_smiles("C1CCCC1"), molecule_from_smiles("CC1CCCCC1")):
        dist = mol.graph_distances()
        assert all(dist[i][j] == 3 for i, j in mol.pairs)
        assert len(set(mol.pairs)) == len(mol.pairs)
        assert mol.total_charge() == pytest.approx(0.0, abs=1e-12)
    # in cyclopentane every two ring carbons are at most two bonds apart: no C-C pair
    cp = molecule_from_smiles("C1CCCC1")
    assert not [p for p in cp.pairs if p[0] < 5 and p[1] < 5]


def test_the_order_does_not_depend_on_the_spelling():
    for a, b in (("CCCC(CC)CC", "C(CC)(CC)CCC"), ("CC(C)CC(C)(C)C", "CC(C)(C)CC(C)C"),
                 ("CCC(C)CC", "C(C)(CC)CC")):
        assert _as_tuples(molecule_from_smiles(a)) == _as_tuples(molecule_from_smiles(b))


@pytest.mark.skipif(not OPLSAA_NONBONDED.is_file(), reason="GROMACS oplsaa.ff not installed")
def test_charges_and_masses_are_those_of_oplsaa_ff():
    table = {}
    for line in OPLSAA_NONBONDED.read_text().splitlines():
        f = line.split()
        if f and f[0] in OPLS_TYPES:
            table[f[0]] = (f[1], float(f[4]), float(f[3]))
    assert table == {k: tuple(v) for k, v in OPLS_TYPES.items()}


@pytest.mark.parametrize(("smiles", "atom"), [
    ("c1ccccc1", "atom 0 (C) is aromatic"),
    ("CCO", "atom 2 (O) is not carbon or hydrogen"),
    ("CC=C", "atom 1 (C) has a double bond"),
    ("CC#C", "atom 1 (C) has a triple bond"),
    ("C[CH2+]", "atom 1 (C) has the charge +1"),
    ("C[CH2]", "atom 1 (C) is a radical"),
    ("CCCl", "atom 2 (Cl) is not carbon"),
    ("C1CC1", "ring of 3 carbons"),
    ("CC.CC", "several molecules"),
    ("C", "methane"),
    ("CC(", "cannot parse"),
])
def test_unsupported_molecules_are_refused_naming_the_atom(smiles, atom):
    with pytest.raises(InvalidInputError) as err:
        molecule_from_smiles(smiles)
    assert atom in str(err.value) and repr(smiles) in str(err.value)


# --- coordinates and topology ----------------------------------------------------------------


@pytest.mark.parametrize("smiles", ["CCC(C)CC", "CC(C)(C)C", "CCCCCCCC", "C1CCCCC1"])
def test_coordinates_use_the_sets_own_bond_lengths(smiles):
    mol = molecule_from_smiles(smiles)
    for ps in (OPLSAA_REFERENCE, *get_space("wide").sample(2, 5, "lhs")):
        x = build_coordinates(ps, mol)
        assert x.shape == (mol.n_atoms, 3) and np.all(np.isfinite(x))
        r = np.array([np.linalg.norm(x[b.i] - x[b.j]) for b in mol.bonds])
        r0 = np.array([getattr(ps, f"bond_{b.kind}_r0") for b in mol.bonds])
        # exact for chains; relaxed towards r0 for rings
        assert np.allclose(r, r0, atol=1e-9 if not mol.is_cyclic() else 0.01)
        assert min_distance_apart(x, mol) > 0.5 * min(ps.bond_ctct_r0, ps.bond_cthc_r0)
    x = build_coordinates(OPLSAA_REFERENCE, mol)
    assert min_distance_apart(x, mol) > 0.17  # staggered, no clash at OPLS-AA


def test_topology_of_3_methylpentane():
    spec = resolve_molecule("3-methylpentane")
    text = topology_text(OPLSAA_REFERENCE, 5, molecule=spec.molecule)
    assert "3-methylpentane, OPLS-AA" in text.splitlines()[0]
    assert text.rstrip().splitlines()[-1].split() == ["MPE", "5"]
    atoms = text.split("[ atoms ]")[1].split("[ bonds ]")[0]
    assert sum(1 for ln in atoms.splitlines() if ln.strip() and not ln.startswith(";")) == 20
    assert "opls_136" in atoms and "opls_139" not in atoms


# --- the registry ------------------------------------------------------------------------------


def test_registry_entries_are_complete_and_consistent():
    names = {e.name for e in registry()}
    assert {"2,3,4-trimethylpentane", "2,2,4-trimethylpentane", "2,3-dimethylbutane",
            "3-methylpentane", "3-ethylhexane", "n-hexane", "n-octane", "cyclohexane",
            "neopentane"} <= names
    for e in registry():
        mol = molecule_from_smiles(e.smiles, e.residue)
        assert mol.molar_mass_g_mol() == pytest.approx(e.molar_mass_g_mol, abs=0.01), e.name
        assert 500 < e.density.value_kg_m3 < 900 and e.density.source
        # a value checked against its source says where that source can be read
        assert not e.density.certain or (e.density.url or "").startswith("https://"), e.name
        assert abs(e.density.temperature_k - e.temperature_k) <= 5.0, e.name
    # aliases and case
    assert find_entry("234TriMePe").name == find_entry("2,3,4-TRIMETHYLPENTANE").name
    # neopentane boils at 282.65 K under 1 atm: its state point is a compressed liquid
    neo = find_entry("neopentane")
    assert neo.temperature_k <= 282.65 and neo.pressure_bar > 1.01325


# --- campaign specs, ids, workflow ------------------------------------------------------


def _spec(text: str):
    return campaign_spec_from_text("name: m\npreset: tiny\n" + text, source="m.yaml")


def test_the_default_molecule_keeps_every_id():
    spec, sets = _spec("")
    explicit, _ = _spec("molecule: {smiles: C(C(C)C)(C)C(C)C}\n")
    by_name, _ = _spec("molecule: 234TriMePe\n")
    for s in (spec, explicit, by_name):
        assert s.molecule.is_default and [s.set_id(p) for p in sets] == [p.id for p in sets]
        assert s.preset_overrides == {}


def test_another_molecule_gets_its_own_ids_and_state_point():
    mp, sets = _spec("molecule: 3-methylpentane\n")
    same, _ = _spec("molecule: {smiles: C(C)(CC)CC}\n")
    neo, _ = _spec("molecule: neopentane\n")
    ps = sets[0]
    ids = {mp.set_id(ps), neo.set_id(ps), ps.id}
    assert len(ids) == 3 and same.set_id(ps) == mp.set_id(ps)
    assert mp.molecule.name == "3-methylpentane" and mp.molecule.molecule.n_atoms == 20
    assert mp.preset_overrides == {} and mp.aa_preset.temperature_k == 298.15
    assert neo.preset_overrides == {"temperature_k": 282.65, "pressure_bar": 5.0}
    assert neo.aa_preset.temperature_k == 282.65 and neo.aa_preset.pressure_bar == 5.0
    # the same SMILES at another state point is another set
    hot, _ = _spec("molecule: {smiles: CCC(C)CC, temperature_K: 310}\n")
    assert hot.set_id(ps) != mp.set_id(ps) and hot.aa_preset.temperature_k == 310
    # the CG stage runs at the molecule's temperature: a different ibi one is refused
    with pytest.raises(InvalidInputError, match="282.65"):
        _spec("molecule: neopentane\nibi: {temperature_k: 298.15}\n")


@pytest.mark.parametrize(("text", "field", "words"), [
    ("molecule: {smiles: c1ccccc1CC}\n", "molecule", "atom 0 (C) is aromatic"),
    ("molecule: {smiles: CCO, name: ethanol}\n", "molecule", "atom 2 (O)"),
    ("molecule: {smiles: CC=CC}\n", "molecule", "atom 1 (C) has a double bond"),
    ("molecule: benzene\n", "molecule", "unknown molecule 'benzene'"),
    ("molecule: {smiles: CCCCC, temperature_K: -3}\n", "molecule.temperature_k", "greater"),
    ("molecule: {smiles: CCCCC, pressure_bar: 0}\n", "molecule.pressure_bar", "greater"),
    ("molecule: {smiles: CCCCC, density_guess_kg_m3: 5}\n", "molecule.density_guess_kg_m3",
     "greater"),
    ("molecule: {smiles: CCCCC, temprature_K: 300}\n", "molecule.temprature_K", "unknown"),
    ("molecule: {name: my-liquid}\n", "molecule.smiles", "missing"),
    ("molecule: {smiles: CCCCC, residue: 'A-B'}\n", "molecule.residue", "letters"),
    ("molecule: 7\n", "molecule", "registry name or a mapping"),
    ("molecule: n-hexane\ncg_stage: true\nactive: {initial_sets: 2, batch_size: 1, "
     "max_rounds: 1, budget_sets: 4}\n", "(top level)",
     "molecule = 'n-hexane': active-learning campaigns run on 2,3,4-trimethylpentane only"),
])
def test_bad_molecules_in_a_spec_name_the_field(text, field, words):
    with pytest.raises(InvalidInputError) as err:
        _spec(text)
    msg = str(err.value)
    assert f"'{field}'" in msg and words in msg and "m.yaml" in msg


def test_workflow_of_a_molecule_carries_it():
    from cgflow.orchestration.workflows import campaign_workflow

    spec, sets = _spec("molecule: neopentane\ncg_stage: true\nn_sets: 1\n")
    wf = campaign_workflow(spec, sets)
    branch = [fw for fw in wf.fws if fw.spec["param_id"]]
    assert {fw.spec["param_id"] for fw in branch} == {spec.set_id(p) for p in sets}
    assert {fw.spec["label"] for fw in branch} == {"reference", spec.set_id(sets[1])}
    assert wf.metadata["param_ids"] == [spec.set_id(p) for p in sets]
    for fw in branch:
        task = fw.tasks[0]
        assert task["molecule"]["smiles"] == "CC(C)(C)C"
    build = next(fw for fw in branch if fw.spec["cgflow_stage"] == "aa-build")
    assert build.tasks[0]["preset_overrides"] == {"temperature_k": 282.65, "pressure_bar": 5.0}
    default, dsets = _spec("cg_stage: true\n")
    assert all("molecule" not in fw.tasks[0] for fw in campaign_workflow(default, dsets).fws)


def test_the_shipped_inverse_is_not_applied_to_another_molecule():
    from cgflow.ibi.settings import IBISettings
    from cgflow.ml.inverse import SHIPPED_INVERSE
    from cgflow.presets import get_cg_preset
    from cgflow.stages import cg as cg_stage

    r = np.arange(0.005, 1.5, 0.01)
    base = cg_stage.make_target(rdf_r_nm=r, rdf_g=np.ones_like(r), density_kg_m3=700.0,
                                pressure_bar=1.0, pressure_err_bar=5.0, temperature_k=298.15)
    tiny = get_cg_preset("tiny")
    if not SHIPPED_INVERSE.is_file():
        pytest.skip("no shipped inverse")
    assert cg_stage.make_settings(IBISettings(), base, tiny).initial_guess == "inverse"
    # 2,2,4-trimethylpentane: the same bead mass (114.23 g/mol), another liquid
    iso = resolve_molecule("2,2,4-trimethylpentane")
    assert iso.bead_mass_g_mol == base.mass_g_mol
    other = dataclasses.replace(base, molecule_smiles=iso.smiles)
    assert cg_stage.make_settings(IBISettings(), other, tiny).initial_guess == "pmf"
    light = dataclasses.replace(base, mass_g_mol=resolve_molecule("3-methylpentane")
                                .bead_mass_g_mol, molecule_smiles="CCC(C)CC")
    assert cg_stage.make_settings(IBISettings(), light, tiny).initial_guess == "pmf"


def test_stored_documents_name_the_molecule(store):
    spec = resolve_molecule("3-methylpentane")
    ps = OPLSAA_REFERENCE
    doc = store.upsert_parameter_set(ps, "mols", "narrow", molecule=spec)
    assert doc.param_id == spec.set_id(ps) != ps.id
    assert doc.molecule.smiles == "CCC(C)CC" and doc.parameter_set() == ps
    default = store.upsert_parameter_set(ps, "mols", "narrow", molecule=resolve_molecule(None))
    assert default.param_id == ps.id and default.molecule is None
    run = store.start_aa_run(doc.param_id, "mols", "tiny", "/tmp/x",
                             molecule=spec.summary())
    assert run.molecule.atoms_per_molecule == 20 and run.molecule.name == "3-methylpentane"
    assert store.get_aa_run(run.id).molecule.smiles == "CCC(C)CC"
    # a parameter set document whose id does not match its molecule is refused
    from cgflow.db.documents import ParameterSetDoc
    with pytest.raises(InvalidInputError, match="param_id"):
        ParameterSetDoc.validated(dict(doc.model_dump(exclude={"id"}), param_id=ps.id))


# --- one engine test ---------------------------------------------------------------------------


@pytest.mark.engine
@pytest.mark.skipif(shutil.which("gmx") is None, reason="GROMACS not installed")
def test_aa_stage_of_3_methylpentane_builds_and_runs(tmp_path):
    import MDAnalysis

    from cgflow.presets import get_aa_preset
    from cgflow.stages import aa as aa_stage

    spec = resolve_molecule("3-methylpentane")
    preset = get_aa_preset("tiny").model_copy(update={
        "em_steps": 200, "nvt_ps": 0.02, "npt_ps": 0.02, "threads": 1})
    run = tmp_path / "aa"
    reports = aa_stage.build(run, OPLSAA_REFERENCE, preset, molecule=spec)
    reports += aa_stage.equilibrate(run, OPLSAA_REFERENCE, preset)
    assert [r.stage for r in reports] == ["em", "nvt", "npt"]
    u = MDAnalysis.Universe(str(run / "npt.tpr"), str(run / "npt.gro"))
    assert len(u.residues) == preset.n_molecules
    assert {r.atoms.n_atoms for r in u.residues} == {20}
    assert set(u.residues.resnames) == {"MPE"}
    assert abs(float(np.sum(u.atoms.charges))) < 1e-4


def test_the_cli_refuses_an_aromatic_molecule_and_writes_nothing(tmp_path, capsys):
    from cgflow.cli.main import main

    spec = tmp_path / "bz.yaml"
    spec.write_text("name: bz\npreset: tiny\nmolecule: {smiles: c1ccccc1}\n")
    out = tmp_path / "wf.yaml"
    assert main(["campaign", "build", str(spec), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "atom 0 (C) is aromatic" in err and "'c1ccccc1'" in err and "Traceback" not in err
    assert not out.exists()


def test_a_molecule_campaign_already_queued_is_not_queued_again(launchpad, launchpad_file,
                                                                 tmp_path):
    from cgflow.orchestration.submit import AlreadyQueuedError, submit_campaign

    spec = tmp_path / "mp.yaml"
    spec.write_text("name: mp\npreset: tiny\nmolecule: 3-methylpentane\nn_sets: 1\nseed: 1\n")
    submit_campaign(spec, launchpad_file)
    with pytest.raises(AlreadyQueuedError, match="2 of its 2 parameter set"):
        submit_campaign(spec, launchpad_file)
