"""A campaign is written whole or not at all, and not queued twice unless asked."""

from __future__ import annotations

import pytest

from cgflow.cli.main import main
from cgflow.errors import InvalidInputError
from cgflow.orchestration import submit
from cgflow.orchestration.submit import (
    AlreadyQueuedError,
    SubmitError,
    check_document_sizes,
    submit_campaign,
)

SPEC = "name: atomic\nspace: narrow\nn_sets: 2\nseed: 3\npreset: tiny\ncg_stage: true\n"


def _spec(tmp_path, text=SPEC, name="spec.yaml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def _fw_state(lp):
    """What a submission can leave behind: Fireworks, workflows, the id counter."""
    counter = (lp.fw_id_assigner.find_one({}) or {}).get("next_fw_id")
    return lp.fireworks.count_documents({}), lp.workflows.count_documents({}), counter


def test_a_workflow_refused_after_its_fireworks_leaves_nothing(launchpad, launchpad_file,
                                                               tmp_path, monkeypatch):
    before = _fw_state(launchpad)
    import pymongo.collection

    real_insert_one = pymongo.collection.Collection.insert_one
    seen = {}

    def refuse_workflows(self, doc, *args, **kwargs):
        if self.name == "workflows":
            seen["fireworks_in"] = self.database["fireworks"].count_documents({})
            raise pymongo.errors.WriteError("refused by the server (test)")
        return real_insert_one(self, doc, *args, **kwargs)

    monkeypatch.setattr(pymongo.collection.Collection, "insert_one", refuse_workflows)
    with pytest.raises(SubmitError, match="refused the workflow") as info:
        submit_campaign(_spec(tmp_path), launchpad_file)
    assert seen["fireworks_in"] == 19  # the refusal came after all 3 x 6 + 1 Fireworks
    assert "19 Firework(s) already written were removed" in str(info.value)
    assert "counter restored" in str(info.value)
    assert _fw_state(launchpad) == before


def test_a_firework_too_large_for_the_server_mid_insert_leaves_nothing(
        launchpad, launchpad_file, tmp_path, monkeypatch):
    before = _fw_state(launchpad)
    build = submit.build_workflow

    def oversized(spec, sets, category="cgflow"):
        wf = build(spec, sets, category)
        wf.fws[8].spec["blob"] = "x" * (17 * 1024 * 1024)  # past the size check
        return wf

    monkeypatch.setattr(submit, "build_workflow", oversized)
    with pytest.raises(SubmitError, match="DocumentTooLarge|too large"):
        submit_campaign(_spec(tmp_path), launchpad_file)
    assert _fw_state(launchpad) == before


def test_documents_over_the_limit_are_refused_before_anything_is_written(
        launchpad, launchpad_file, tmp_path, monkeypatch):
    before = _fw_state(launchpad)
    from cgflow.orchestration import workflows

    real = workflows.campaign_workflow

    def big_firework(spec, sets, category="cgflow"):
        wf = real(spec, sets, category)
        wf.fws[2].spec["notes"] = "y" * (16 * 1024 * 1024)
        return wf

    monkeypatch.setattr(workflows, "campaign_workflow", big_firework)
    with pytest.raises(InvalidInputError, match=r"Firework .* would be a \d+-byte document.*"
                       r"largest field spec\.notes") as info:
        submit_campaign(_spec(tmp_path), launchpad_file)
    assert "nothing was written" in str(info.value)
    assert _fw_state(launchpad) == before
    # the same through the command line: exit 2, nothing written, no workflow file
    out = tmp_path / "wf.yaml"
    assert main(["campaign", "build", str(_spec(tmp_path)), "-o", str(out)]) == 2
    assert not out.exists()


def test_the_size_check_measures_the_workflow_document(tmp_path):
    from cgflow.orchestration.submit import load_spec
    from cgflow.orchestration.workflows import campaign_workflow

    wf = campaign_workflow(*load_spec(_spec(tmp_path)))
    sizes = check_document_sizes(wf)
    assert 0 < sizes["largest_firework_bytes"] < sizes["workflow_bytes"] < 1_000_000
    wf.metadata["spec"]["description"] = "z" * (16 * 1024 * 1024)
    with pytest.raises(InvalidInputError, match="workflow document of 19 Fireworks.*"
                       "largest field workflow.metadata.spec.description"):
        check_document_sizes(wf)


def test_a_campaign_already_queued_is_not_queued_again_unless_asked(
        launchpad, launchpad_file, tmp_path, capsys):
    spec = _spec(tmp_path)
    submit_campaign(spec, launchpad_file)
    once = _fw_state(launchpad)
    with pytest.raises(AlreadyQueuedError, match="'atomic' is already queued: 3 of its 3 "
                       "parameter set") as info:
        submit_campaign(spec, launchpad_file)
    assert len(info.value.fw_ids) == 18  # all but the training and len(info.value.sets) == 3
    assert _fw_state(launchpad) == once
    # the command line says so and adds nothing (exit 0: the campaign is queued)
    assert main(["campaign", "submit", str(spec), "-l", str(launchpad_file)]) == 0
    assert "already queued" in capsys.readouterr().out
    assert _fw_state(launchpad) == once
    # a campaign of another name with the same sets is queued
    other = _spec(tmp_path, SPEC.replace("name: atomic", "name: atomic-b"), "other.yaml")
    submit_campaign(other, launchpad_file)
    # --again queues a second workflow of the same sets
    assert main(["campaign", "submit", str(spec), "--again", "-l", str(launchpad_file)]) == 0
    n_fw, n_wf, _ = _fw_state(launchpad)
    assert (n_fw, n_wf) == (3 * 19, 3)
    # once its Fireworks are no longer queued, the campaign may be submitted again
    launchpad.fireworks.update_many({"spec.campaign": "atomic"},
                                    {"$set": {"state": "COMPLETED"}})
    submit_campaign(spec, launchpad_file)
    assert _fw_state(launchpad)[:2] == (4 * 19, 4)
