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
from cgflow.errors import InvalidInputError
from cgflow.orchestration.checkpoint import ExportCheckpoint
from cgflow.orchestration.progress import SetProgress


def _sets(n_done: int, n_running: int) -> list[SetProgress]:
    return ([SetProgress(f"d{i}", f"d{i}", "done") for i in range(n_done)]
            + [SetProgress(f"r{i}", f"r{i}", "AA produce", "RUNNING") for i in range(n_running)])


def test_exports_at_the_start_and_each_time_a_set_finishes(tmp_path):
    calls, lines = [], []

    def export():
        calls.append(1)
        if len(calls) == 1:
            raise InvalidInputError("campaign 'c': no converged potential to export")
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


def test_a_failed_write_is_said_each_time_and_retried(tmp_path):
    lines = []

    def export():
        raise PermissionError(13, "Permission denied", str(tmp_path / "out"))

    cp = ExportCheckpoint(export, tmp_path / "out", lines.append)
    assert cp.update(snapshot(*_sets(1, 1))) is False
    assert cp.update(snapshot(*_sets(2, 0))) is False
    assert len(lines) == 2 and all("FAILED (PermissionError" in ln for ln in lines)
    assert all("previous export is kept" in ln for ln in lines)


def test_export_replaces_files_atomically(two_campaigns, tmp_path, monkeypatch):  # noqa: F811
    """A stop while exporting (here: before the files are moved into place) leaves the
    earlier complete export, its dataset matching its hash; a complete export leaves no
    partial file."""
    import cgflow.stages.dataset as dataset_module
    from cgflow.db.store import Store
    from cgflow.ml.dataset import CampaignDataset
    from cgflow.stages.dataset import export_campaign

    launchpad, _ = two_campaigns
    out = tmp_path / "out"
    with Store.from_launchpad(launchpad) as store:
        first = export_campaign(store, "second", out)
        assert sorted(p.name for p in out.iterdir()) == ["dataset.npz", "sets.json"]
        before = {p.name: p.read_bytes() for p in out.iterdir()}

        def stopped(src, dst):
            raise KeyboardInterrupt

        monkeypatch.setattr(dataset_module.os, "replace", stopped)
        with pytest.raises(KeyboardInterrupt):
            export_campaign(store, "second", out)
    assert {n: (out / n).read_bytes() for n in before} == before
    # the earlier export, whole: its dataset matches the hash its sets.json names
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
    assert not (tmp_path / "o").exists()
