"""Exports while a campaign runs (:mod:`cgflow.orchestration.checkpoint`, ``cgflow launch
--export-to``): one at the start and one each time a set finishes, nothing-converged-yet
and write failures said and retried, the files replaced atomically; the launch through
FireWorks is in ``tests/test_friction_workflow.py``."""

from __future__ import annotations

import json

import pytest
from test_db_views import two_campaigns  # noqa: F401, F811 (a fixture)
from test_progress import snapshot

from cgflow.cli.main import main
from cgflow.orchestration.checkpoint import ExportCheckpoint
from cgflow.orchestration.progress import SetProgress
from cgflow.stages.dataset import NothingToExportError


def _sets(n_done: int, n_running: int) -> list[SetProgress]:
    return ([SetProgress(f"d{i}", f"d{i}", "done") for i in range(n_done)]
            + [SetProgress(f"r{i}", f"r{i}", "AA produce", "RUNNING") for i in range(n_running)])


def test_exports_at_the_start_and_each_time_a_set_finishes(tmp_path):
    calls, lines = [], []

    def export():
        calls.append(1)
        if len(calls) == 1:
            raise NothingToExportError("campaign 'c': no converged potential to export")
        return {"n_sets": 3, "n_converged": len(calls) - 1}

    cp = ExportCheckpoint(export, tmp_path / "out", lines.append)
    assert cp.update(snapshot(*_sets(0, 3))) is False  # the first snapshot: tried
    assert len(calls) == 1 and "nothing to export yet" in lines[0] and "no converged" in lines[0]
    assert cp.update(snapshot(*_sets(0, 3))) is False  # nothing finished since: not tried
    assert len(calls) == 1
    assert cp.update(snapshot(*_sets(1, 2))) is True
    assert cp.update(snapshot(*_sets(1, 2))) is False
    assert cp.update(snapshot(*_sets(2, 1))) is True
    assert cp.update(None) is False  # the database did not answer
    assert len(calls) == 3 and cp.n_exports == 2
    assert lines[1:] == [f"exported 1 converged of 3 sets (1 of 3 finished) to {tmp_path / 'out'}",
                         f"exported 2 converged of 3 sets (2 of 3 finished) to {tmp_path / 'out'}"]


def test_a_rerun_set_and_a_database_outage_are_exported_again(tmp_path):
    from pymongo.errors import AutoReconnect

    calls, lines, away = [], [], [False]

    def export():
        if away[0]:
            raise AutoReconnect("connection closed")
        calls.append(1)
        return {"n_sets": 2, "n_converged": 1}

    cp = ExportCheckpoint(export, tmp_path, lines.append)
    failed = [SetProgress("a", "a", "failed"), SetProgress("b", "b", "AA build", "READY")]
    assert cp.update(snapshot(*failed)) is True
    # the failed set is rerun and ends done: the same number finished, a new result
    rerun = [SetProgress("a", "a", "IBI iteration 1"), SetProgress("b", "b", "AA build")]
    done = [SetProgress("a", "a", "done"), SetProgress("b", "b", "AA build", "READY")]
    cp.update(snapshot(*rerun))
    n = len(calls)
    # the database goes away during the export: the error reaches the caller (the
    # launcher waits and calls again) and the export is made on the call after
    away[0] = True
    with pytest.raises(AutoReconnect):
        cp.update(snapshot(*done))
    away[0] = False
    assert cp.update(snapshot(*done)) is True and len(calls) == n + 1
    assert cp.update(snapshot(*done)) is False
    # the end of the launch exports whatever changed
    assert cp.update(snapshot(*done), force=True) is True


@pytest.mark.parametrize("error", [
    PermissionError(13, "Permission denied"),
    ValueError("field 'u_kj_mol': value nan"),
])
def test_a_failed_export_is_said_each_time_and_retried(tmp_path, error):
    lines = []

    def export():
        raise error

    cp = ExportCheckpoint(export, tmp_path / "out", lines.append)
    assert cp.update(snapshot(*_sets(1, 1))) is False
    assert cp.update(snapshot(*_sets(2, 0))) is False
    name = type(error).__name__
    assert len(lines) == 2 and all(f"FAILED ({name}: {error}" in ln for ln in lines), lines
    assert all("previous export is kept" in ln for ln in lines)


def test_export_replaces_files_atomically(two_campaigns, tmp_path, monkeypatch):  # noqa: F811
    """A stop while exporting (here: before the files are moved into place) leaves the
    earlier complete export, its dataset matching its hash, and no partial file."""
    import cgflow.stages.dataset as dataset_module
    from cgflow.db.store import Store
    from cgflow.ml.dataset import CampaignDataset
    from cgflow.stages.dataset import export_campaign

    launchpad, _ = two_campaigns
    out = tmp_path / "out"
    with Store.from_launchpad(launchpad) as store:
        first = export_campaign(store, "second", out, preset="tiny")
        assert sorted(p.name for p in out.iterdir()) == ["dataset.npz", "sets.json"]
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        export_campaign(store, "second", tmp_path / "other")  # what the stopped one writes
        assert (tmp_path / "other" / "sets.json").read_bytes() != before["sets.json"]

        def stopped(src, dst):
            raise KeyboardInterrupt

        monkeypatch.setattr(dataset_module.os, "replace", stopped)
        with pytest.raises(KeyboardInterrupt):
            export_campaign(store, "second", out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no partial file
    summary = json.loads((out / "sets.json").read_text())
    assert CampaignDataset.load_npz(out / "dataset.npz").content_hash() == \
        summary["dataset_hash"] == first["dataset_hash"]


def test_export_to_needs_a_campaign(tmp_path, capsys):
    lp = tmp_path / "lp.yaml"
    lp.write_text("host: localhost\nport: 1\nname: x\n")
    rc = main(["launch", "-l", str(lp), "--export-to", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--export-to" in err and "--campaign" in err and str(tmp_path / "out") in err
    assert not (tmp_path / "out").exists()
    rc = main(["launch", "-l", str(lp), "--campaign", "c", "--export-to", str(tmp_path / "o"),
               "--export-preset", "nope"])
    assert rc == 2 and "nope" in capsys.readouterr().err
    rc = main(["launch", "-l", str(lp), "--campaign", "c", "--export-preset", "tiny"])
    err = capsys.readouterr().err
    assert rc == 2 and "--export-preset 'tiny' needs --export-to" in err, err
    assert not (tmp_path / "o").exists()


def _spec(tmp_path):
    spec = tmp_path / "chunk.yaml"
    spec.write_text("name: chunk\nn_sets: 4\nseed: 7\npreset: tiny\ncg_stage: true\n"
                    "include_reference: false\nibi: {max_iterations: 3}\n")
    return spec


def _export(folder, rows, campaign="chunk", preset="tiny"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sets.json").write_text(json.dumps({
        "campaign": campaign, "preset": preset, "n_sets": len(rows), "n_converged": 1,
        "dataset_hash": "0" * 64, "sets": rows}))
    return folder


def test_a_stopped_chunk_is_resumed_with_its_unfinished_sets(tmp_path, launchpad,
                                                            launchpad_file, capsys):
    from cgflow.orchestration.submit import load_spec
    from cgflow.stages.dataset import finished_in_exports

    spec_file = _spec(tmp_path)
    spec, sets = load_spec(spec_file)
    ids = spec.set_ids(sets)
    # as a launch stopped part-way left it: set 0 converged (in the dataset; its CG
    # production under way), 1 in IBI, 2 unconverged, 3 with its all-atom run under
    # way; a second export has set 1's all-atom run failed and set 3 converged
    first = _export(tmp_path / "e1", [
        {"param_id": ids[0], "aa_status": "completed", "ibi_converged": True},
        {"param_id": ids[1], "aa_status": "completed"},
        {"param_id": ids[2], "aa_status": "completed", "ibi_converged": False},
        {"param_id": ids[3], "aa_status": "running"}])
    lp = str(launchpad_file)
    assert main(["campaign", "submit", str(spec_file), "-l", lp,
                 "--skip-finished-in", str(first)]) == 0
    out = capsys.readouterr().out
    assert "2 parameter set(s) (2 of its 4 sets finished in" in out, out
    queued = {d["spec"].get("param_id") for d in launchpad.fireworks.find(
        {"spec.campaign": "chunk"}, {"spec.param_id": 1})}
    assert queued - {"", None} == {ids[1], ids[3]}  # ("": the training Firework)
    # without the CG stage a completed all-atom run is a finished set
    assert finished_in_exports([first], "chunk", "tiny", cg_stage=False) == set(ids[:3])
    assert finished_in_exports([first], "chunk", "tiny", cg_stage=True) == {ids[0], ids[2]}

    # bad exports: refused naming the folder and the field; nothing more queued
    n_fw = launchpad.fireworks.count_documents({})
    other = _export(tmp_path / "other", [], campaign="reference-d")
    tiny = _export(tmp_path / "small", [], preset="small")
    second = _export(tmp_path / "e2", [
        {"param_id": ids[1], "aa_status": "failed"},
        {"param_id": ids[3], "aa_status": "completed", "ibi_converged": True,
         "cg_status": "failed"}])
    for folders, words in (([str(other)], ["field 'campaign'", "'reference-d'", "'chunk'"]),
                           ([str(tiny)], ["field 'preset'", "'small'", "'tiny'"]),
                           ([str(tmp_path / "none")], ["sets.json is missing"]),
                           ([str(first), str(second)], ["every one of the 4", "nothing left"])):
        assert main(["campaign", "submit", str(spec_file), "-l", lp, "--again",
                     "--skip-finished-in", *folders]) == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), (words, err)
    assert launchpad.fireworks.count_documents({}) == n_fw

    # campaigns that cannot be resumed this way
    for name, text, words in (
            ("active", "active: {initial_sets: 2, batch_size: 1, max_rounds: 2, "
             "budget_sets: 4}\n", "active-learning"),
            ("several", "molecules: [n-hexane, n-octane]\nn_sets: 2\n", "several molecules")):
        other_spec = tmp_path / f"{name}.yaml"
        other_spec.write_text("name: chunk\npreset: tiny\ncg_stage: true\n" + text)
        assert main(["campaign", "submit", str(other_spec), "-l", lp,
                     "--skip-finished-in", str(first)]) == 2
        assert words in capsys.readouterr().err
    assert launchpad.fireworks.count_documents({}) == n_fw
