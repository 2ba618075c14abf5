"""Campaigns of several molecules (``molecules:``): one branch per molecule and set with
distinct ids and names, each at its molecule's state point; refusals name the entry and
write nothing; the tables name each row's molecule. Pure Python and the job database."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgflow.errors import InvalidInputError
from cgflow.molecule import resolve_molecule
from cgflow.orchestration.campaign import campaign_spec_from_text, load_campaign_spec
from cgflow.orchestration.workflows import campaign_workflow
from cgflow.params import OPLSAA_REFERENCE


def _spec(text: str):
    return campaign_spec_from_text("name: m\npreset: tiny\n" + text, source="m.yaml")


def test_a_two_molecule_workflow_has_one_branch_per_molecule_and_set():
    spec, sets = _spec("molecules: [n-hexane, {smiles: CC(C)(C)C}]\nn_sets: 2\ncg_stage: true\n")
    assert len(sets) == 3 and [m.name for m in spec.campaign_molecules] == [
        "n-hexane", "neopentane"]
    wf = campaign_workflow(spec, sets)
    branch_fws = [fw for fw in wf.fws if fw.spec["param_id"]]
    builds = [fw for fw in branch_fws if fw.spec["cgflow_stage"] == "aa-build"]
    assert len(builds) == 6
    ids = [fw.spec["param_id"] for fw in builds]
    assert len(set(ids)) == 6 and ids == spec.set_ids(sets) == wf.metadata["param_ids"]
    assert not set(ids) & {ps.id for ps in sets}  # neither is the default molecule
    assert len({fw.name for fw in wf.fws}) == len(wf.fws)  # every Firework named apart
    assert {fw.spec["label"] for fw in builds} >= {"reference@n-hexane",
                                                   "reference@neopentane"}
    assert wf.metadata["n_sets"] == 6 and wf.metadata["molecules"] == ["n-hexane",
                                                                        "neopentane"]
    for fw in builds:
        mol = fw.tasks[0]["molecule"]
        assert fw.spec["molecule"] == mol["name"]
        one = resolve_molecule(mol["name"])
        ps = next(p for p in sets if one.set_id(p) == fw.spec["param_id"])
        assert fw.tasks[0]["param_set"] == ps.model_dump()
        overrides = fw.tasks[0].get("preset_overrides", {})
        if mol["name"] == "neopentane":  # its own state point, not n-hexane's
            assert overrides == {"temperature_k": 282.65, "pressure_bar": 5.0}
        else:
            assert "temperature_k" not in overrides and mol["smiles"] == "CCCCCC"
    # the same parameters on two molecules: two ids, also for the default molecule
    both, _ = _spec("molecules: [234TMP, 3-methylpentane]\n")
    assert both.set_ids([OPLSAA_REFERENCE]) == [
        OPLSAA_REFERENCE.id, resolve_molecule("3-methylpentane").set_id(OPLSAA_REFERENCE)]
    # every branch of every molecule ends in the one training Firework
    train = next(fw for fw in wf.fws if fw.spec["cgflow_stage"] == "train")
    assert len(wf.links.parent_links[train.fw_id]) == 6


def test_the_shipped_multi_molecule_spec():
    spec, sets = load_campaign_spec(Path(__file__).resolve().parents[1] / "workflows"
                                    / "tiny-alkanes.yaml")
    names = [m.name for m in spec.campaign_molecules]
    assert len(names) in (2, 3) and len(set(names)) == len(names)
    assert len(set(spec.set_ids(sets))) == len(names) * len(sets)


@pytest.mark.parametrize(("text", "field", "words"), [
    ("molecules: [n-hexane, {smiles: c1ccccc1CC}]\n", "molecules.1",
     "atom 0 (C) is aromatic"),
    ("molecules: [{smiles: CCO}]\n", "molecules.0", "atom 2 (O)"),
    ("molecules: [n-hexane, benzene]\n", "molecules.1", "unknown molecule 'benzene'"),
    ("molecules: [n-hexane, {smiles: CCCCC, temperature_K: -3}]\n",
     "molecules.1.temperature_k", "greater"),
    ("molecules: []\n", "molecules", "at least 1"),
    ("molecules: n-hexane\n", "molecules", "list"),
    ("molecule: n-hexane\nmolecules: [n-octane]\n", "(top level)", "both given"),
    ("molecules: [n-hexane, hexane]\n", "(top level)",
     "molecules[1] = 'n-hexane': the same molecule at the same state point as molecules[0]"),
    ("molecules: [n-hexane, octane]\ncg_stage: true\nactive: {initial_sets: 2, "
     "batch_size: 1, max_rounds: 1, budget_sets: 4}\n", "(top level)",
     "active-learning campaigns run on one molecule"),
    ("molecules: [n-hexane, neopentane]\nibi: {temperature_k: 298.15}\n", "(top level)",
     "of molecule 'neopentane'"),
])
def test_bad_molecule_lists_name_the_entry(text, field, words):
    with pytest.raises(InvalidInputError) as err:
        _spec(text)
    msg = str(err.value)
    assert f"'{field}'" in msg and words in msg and "m.yaml" in msg


def test_an_unsupported_molecule_in_the_list_is_refused_with_nothing_written(
        launchpad, launchpad_file, tmp_path):
    from cgflow.orchestration.submit import submit_campaign

    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\npreset: tiny\ncg_stage: true\n"
                    "molecules: [n-hexane, 3-methylpentane, {smiles: CCCCCCl}]\n")
    before = {c: launchpad.db[c].count_documents({})
              for c in launchpad.db.list_collection_names()}
    with pytest.raises(InvalidInputError, match=r"molecules\.2.*atom 5 \(Cl\)"):
        submit_campaign(spec, launchpad_file)
    after = {c: launchpad.db[c].count_documents({})
             for c in launchpad.db.list_collection_names()}
    assert after == before and after.get("fireworks", 0) == 0


def test_a_multi_molecule_campaign_queued_once(launchpad, launchpad_file, tmp_path):
    from cgflow.orchestration.submit import AlreadyQueuedError, submit_campaign

    spec = tmp_path / "two.yaml"
    spec.write_text("name: two\npreset: tiny\nn_sets: 1\nseed: 1\n"
                    "molecules: [n-hexane, 3-methylpentane]\n")
    submit_campaign(spec, launchpad_file)
    assert launchpad.fireworks.count_documents({"spec.campaign": "two"}) == 16
    with pytest.raises(AlreadyQueuedError, match="4 of its 4 parameter set"):
        submit_campaign(spec, launchpad_file)


def test_results_and_potentials_name_the_molecule(store):
    from cgflow.cli.campaign import format_results_table, results_table
    from cgflow.cli.common import molecule_matches

    for name in ("n-hexane", "3-methylpentane"):
        m = resolve_molecule(name)
        doc = store.upsert_parameter_set(OPLSAA_REFERENCE, "two", "narrow", molecule=m)
        store.start_aa_run(doc.param_id, "two", "tiny", f"/tmp/{m.residue}",
                           molecule=m.summary())
    rows = results_table(store, "two")
    assert sorted(r["molecule"] for r in rows) == ["3-methylpentane", "n-hexane"]
    assert all(r["label"] == "reference" for r in rows)
    text = format_results_table(rows)
    assert text.splitlines()[0].startswith("molecule") and "3-methylpentane" in text
    assert [r["molecule"] for r in rows if molecule_matches(r["molecule"], "hexane")] == [
        "n-hexane"]
    assert not molecule_matches("n-hexane", "n-octane")
    # a campaign of the default molecule alone keeps its table without the column
    store.upsert_parameter_set(OPLSAA_REFERENCE, "one", "narrow")
    store.start_aa_run(OPLSAA_REFERENCE.id, "one", "tiny", "/tmp/tmp-one")
    one = results_table(store, "one")
    assert one[0]["molecule"] == "2,3,4-trimethylpentane"
    assert not format_results_table(one).startswith("molecule")
