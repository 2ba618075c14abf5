"""Active-learning campaigns: the ``active:`` spec section, the round step's additions and
its stored round document, idempotence, the workflow's shape and the status lines.

The stored results are a synthetic campaign (:mod:`cgflow.ml.synthetic`) written through
the store as the stages write them (an all-atom run with its RDF, a converged potential,
a CG run with alpha); the round step runs through FireWorks on the test server.
"""

from __future__ import annotations

import pytest
from fireworks import FWorker, Workflow
from fireworks.core.rocket_launcher import launch_rocket
from stored_results import store_aa_run, store_converged_set

from cgflow.db.store import Store
from cgflow.errors import InvalidInputError
from cgflow.ml.synthetic import synthetic_campaign
from cgflow.orchestration.campaign import campaign_spec_from_text
from cgflow.orchestration.firetasks.active import ActiveRoundTask, round_firework
from cgflow.orchestration.stage_names import SPEC_STAGE
from cgflow.orchestration.status import campaign_status, format_status
from cgflow.orchestration.workflows import campaign_workflow
from cgflow.params import ParameterSet
from cgflow.stages.active import replay_round
from cgflow.stages.report.data import read_report_data
from cgflow.stages.report.page import render_page

BASE = "name: act\nspace: narrow\npreset: tiny\nthreads: 1\ncg_stage: true\n"
ACTIVE = ("active: {initial_sets: 2, batch_size: 2, max_rounds: 2, budget_sets: 20, "
          "acquisition: {n_candidates: 150}}\n")


def store_results(store: Store, campaign: str, n: int, seed: int = 3) -> list[str]:
    """``n`` synthetic sets of ``campaign`` with all-atom, IBI and CG results stored."""
    ds = synthetic_campaign(n, seed=seed, campaign=campaign)
    for i in range(n):
        ps = store_converged_set(store, ds, i, campaign)
        store_aa_run(store, ps, campaign, ds.r_nm, ds.g_target[i], 723.0, 0.0)
    return [str(p) for p in ds.param_ids]


def fw_env(launchpad_file) -> dict:
    return {"_fw_env": {"cgflow_db_file": str(launchpad_file)}}


def stage_of(fw) -> str:
    return fw.spec[SPEC_STAGE]


def round_one(launchpad, launchpad_file, spec, initial: list[str]):
    """Run the step of round 1 of ``spec`` in this process: (stages of the Fireworks it
    adds, its stored round document)."""
    action = ActiveRoundTask(campaign_spec=spec.model_dump(mode="json"), round=1,
                             initial_param_ids=initial).run_task(fw_env(launchpad_file))
    (added,) = action.additions
    with Store.from_launchpad(launchpad) as store:
        return [stage_of(f) for f in added.fws], store.get_active_round(spec.name, 1)


# --- the spec --------------------------------------------------------------------------


def test_an_active_spec_samples_its_first_batch_and_refuses_bad_rounds():
    spec, sets = campaign_spec_from_text(BASE + ACTIVE)
    assert spec.active.batch_size == 2 and spec.active.acquisition.n_candidates == 150
    assert len(sets) == 3  # the reference and active.initial_sets = 2
    for text, field in [
        (ACTIVE.replace("batch_size: 2", "batchsize: 2"), "active.batchsize"),
        (ACTIVE.replace("batch_size: 2", "batch_size: 0"), "active.batch_size"),
        (ACTIVE.replace("n_candidates: 150", "n_candidate: 150"),
         "active.acquisition.n_candidate"),
        (ACTIVE.replace("budget_sets: 20", "budget_sets: 3"), "active.budget_sets = 3"),
        (ACTIVE.replace("budget_sets: 20", "budget_sets: 5000"), "active.budget_sets = 5000"),
        (ACTIVE + "n_sets: 4\n", "n_sets = 4"),
        (ACTIVE.replace("max_rounds: 2", "max_rounds: two"), "active.max_rounds"),
    ]:
        with pytest.raises(InvalidInputError, match=field.replace(".", r"\.")):
            campaign_spec_from_text(BASE + text, source="spec")
    with pytest.raises(InvalidInputError, match="needs alpha, i.e. cg_stage: true"):
        campaign_spec_from_text(BASE.replace("cg_stage: true", "cg_stage: false") + ACTIVE)
    spec, _ = campaign_spec_from_text(
        BASE.replace("cg_stage: true", "cg_stage: false")
        + ACTIVE.replace("n_candidates: 150", "n_candidates: 150, criterion: structure_spread"))
    assert spec.active.acquisition.criterion == "structure_spread"


def test_an_active_workflow_ends_with_round_one_not_training():
    spec, sets = campaign_spec_from_text(BASE + ACTIVE)
    wf = campaign_workflow(spec, sets)
    leaves = [wf.id_fw[i] for i in wf.leaf_fw_ids]
    assert [stage_of(f) for f in leaves] == ["active-round"]
    (step,) = leaves
    parents = {p for p, kids in wf.links.items() if step.fw_id in kids}
    assert {wf.id_fw[p].spec["param_id"] for p in parents} == {ps.id for ps in sets}
    assert not any(stage_of(f) == "train" for f in wf.fws)
    assert step.spec["_allow_fizzled_parents"] is True


# --- the round step --------------------------------------------------------------------


def test_a_round_adds_chosen_branches_and_the_next_round_then_training_last(
        launchpad, launchpad_file, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CGFLOW_DB_FILE", str(launchpad_file))
    spec, _ = campaign_spec_from_text(BASE + ACTIVE)
    with Store.from_launchpad(launchpad) as store:
        store.ensure_indexes()
        initial = store_results(store, "act", 8)
    launchpad.add_wf(Workflow([round_firework(spec, 1, initial)], name="act"))
    (fw_id,) = launchpad.get_fw_ids({"spec.cgflow_stage": "active-round"})
    assert launch_rocket(launchpad, FWorker(), fw_id=fw_id, strm_lvl="ERROR")
    assert launchpad.get_fw_by_id(fw_id).state == "COMPLETED"

    with Store.from_launchpad(launchpad) as store:
        doc = store.get_active_round("act", 1)
    assert doc.status == "chosen" and not doc.last and len(doc.chosen) == 2
    assert doc.train_param_ids == initial and doc.n_train_alpha == 8
    assert doc.selection.n_train == 8 and doc.selection.criterion == "combined"
    assert doc.selection.model_state and len(doc.selection.choices) == 2
    assert doc.campaign_param_ids == initial and doc.n_candidates == 150
    chosen = [c.param_id for c in doc.chosen]
    assert not set(chosen) & set(initial)

    # the workflow now holds the chosen sets' branches and round 2 after both
    wf = launchpad.get_wf_by_fw_id(fw_id)
    builds = [f for f in wf.fws if stage_of(f) == "aa-build"]
    assert sorted(f.spec["param_id"] for f in builds) == sorted(chosen)
    assert all(f.state == "READY" for f in builds)
    (nxt,) = [f for f in wf.fws if f.name == "act:active-round-02"]
    assert wf.leaf_fw_ids == [nxt.fw_id]
    parents = [wf.id_fw[p] for p, kids in wf.links.items() if nxt.fw_id in kids]
    assert sorted(p.spec["param_id"] for p in parents) == sorted(chosen)
    assert {stage_of(p) for p in parents} == {"cg-production"}

    # the status lists the round
    with Store.from_launchpad(launchpad) as store:
        text = format_status(campaign_status(launchpad, store, "act"))
        assert "round 1: 2 set(s), chosen by combined from 150 candidates" in text
        assert "trained on 8 set(s) (8 with alpha)" in text
        rep = replay_round(store, "act", 1)
        assert rep.same, (rep.inputs_match, rep.chosen_match)
        page = render_page(read_report_data(store, "act", with_models=False), {}, {})
        assert 'id="rounds-table"' in page and chosen[0] in page

    # the last round: its sets' branches, then the training Firework as the only leaf
    with Store.from_launchpad(launchpad) as store:  # round 1's sets have results now
        for pid, c in zip(chosen, doc.chosen, strict=True):
            assert pid == c.param_id
        store_results(store, "act", 2, seed=5)  # two more sets with results
    action = ActiveRoundTask(campaign_spec=spec.model_dump(mode="json"), round=2,
                             initial_param_ids=initial).run_task(fw_env(launchpad_file))
    (added,) = action.additions
    train = [f for f in added.fws if stage_of(f) == "train"]
    assert len(train) == 1 and added.leaf_fw_ids == [train[0].fw_id]
    parents = [added.id_fw[p] for p, kids in added.links.items() if train[0].fw_id in kids]
    assert {stage_of(p) for p in parents} == {"cg-production"} and len(parents) == 2
    assert not any(stage_of(f) == "active-round" for f in added.fws)
    with Store.from_launchpad(launchpad) as store:
        second = store.get_active_round("act", 2)
    assert second.last and len(second.chosen) == 2
    assert set(second.campaign_param_ids) == set(initial) | set(chosen)
    assert not {c.param_id for c in second.chosen} & set(second.campaign_param_ids)
    assert len(second.train_param_ids) == 10  # the two more sets


def test_a_rerun_round_adds_the_same_sets_and_writes_nothing(launchpad, launchpad_file):
    spec, _ = campaign_spec_from_text(BASE + ACTIVE)
    with Store.from_launchpad(launchpad) as store:
        store.ensure_indexes()
        initial = store_results(store, "act", 6)
    task = ActiveRoundTask(campaign_spec=spec.model_dump(mode="json"), round=1,
                           initial_param_ids=initial)
    first = task.run_task(fw_env(launchpad_file))
    with Store.from_launchpad(launchpad) as store:
        stored = store.get_active_round("act", 1)
        # more results arrive: a fresh choice would differ, the rerun must not choose
        store_results(store, "act", 9, seed=11)
    again = task.run_task(fw_env(launchpad_file))

    def chosen(action):
        return [f.spec["param_id"] for f in action.additions[0].fws
                if stage_of(f) == "aa-build"]

    assert chosen(first) == chosen(again) == [c.param_id for c in stored.chosen]
    assert [f.name for f in first.additions[0].fws] == [f.name for f in again.additions[0].fws]
    with Store.from_launchpad(launchpad) as store:
        assert store.db["active_rounds"].count_documents({}) == 1
        assert store.get_active_round("act", 1) == stored
        assert store.insert_active_round(stored.model_dump(by_alias=True)) == stored


@pytest.mark.parametrize("active, reason", [
    ("budget_sets: 7", None),  # room for one set: chosen, and the last round
    ("target_alpha_std: 1.0e+6", "target uncertainty reached"),
])
def test_a_round_stops_at_the_budget_or_the_target(launchpad, launchpad_file, active, reason):
    text = ACTIVE.replace("budget_sets: 20", active) if "budget" in active else \
        ACTIVE.replace("budget_sets: 20", f"budget_sets: 20, {active}")
    spec, _ = campaign_spec_from_text(BASE + text)
    with Store.from_launchpad(launchpad) as store:
        initial = store_results(store, "act", 6)
    stages, doc = round_one(launchpad, launchpad_file, spec, initial)
    if reason is None:
        assert doc.status == "chosen" and doc.last and len(doc.chosen) == 1
        assert stages[-1] == "train" and "active-round" not in stages
    else:
        assert doc.status == "stopped" and reason in doc.reason and not doc.chosen
        assert doc.selection is not None and doc.max_alpha_std < 1e6
        assert stages == ["train"]


def test_a_round_with_too_few_results_stops_saying_so(launchpad, launchpad_file):
    spec, _ = campaign_spec_from_text(BASE + ACTIVE)
    with Store.from_launchpad(launchpad) as store:
        initial = store_results(store, "act", 1)
    stages, doc = round_one(launchpad, launchpad_file, spec, initial)
    assert stages == ["train"]
    assert doc.status == "stopped" and "too few sets with all-atom results" in doc.reason

    # three RDFs are too few for the structure model: the round says so and stops
    spec, _ = campaign_spec_from_text(BASE.replace("act", "act3") + ACTIVE.replace(
        "n_candidates: 150", "n_candidates: 150, criterion: structure_spread"))
    with Store.from_launchpad(launchpad) as store:
        initial = store_results(store, "act3", 3)
    stages, doc = round_one(launchpad, launchpad_file, spec, initial)
    assert stages == ["train"]
    assert doc.status == "stopped" and "the models cannot choose" in doc.reason
    assert "g_train" in doc.reason


def test_combined_chooses_by_structure_while_alpha_is_scarce(launchpad, launchpad_file):
    """Four all-atom runs, one set with alpha (the others' IBI did not converge): the
    combined criterion leaves alpha out and says so in the model state."""
    spec, _ = campaign_spec_from_text(BASE + ACTIVE)
    ds = synthetic_campaign(4, seed=3, campaign="act")
    with Store.from_launchpad(launchpad) as store:
        for i in range(4):
            ps = (store_converged_set(store, ds, i, "act") if i == 0
                  else ParameterSet.from_array(ds.X[i]))
            store.upsert_parameter_set(ps, "act", "narrow")
            store_aa_run(store, ps, "act", ds.r_nm, ds.g_target[i], 723.0, 0.0)
    stages, doc = round_one(launchpad, launchpad_file, spec, [str(p) for p in ds.param_ids])
    assert "active-round" in stages
    assert doc.status == "chosen" and doc.n_train_alpha == 1 and len(doc.chosen) == 2
    assert "alpha_std" in doc.selection.model_state["skipped"]
    assert doc.max_alpha_std is None
