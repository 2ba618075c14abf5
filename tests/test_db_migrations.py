"""Migration of stored Firetask names after cgflow's Firetasks moved modules
(``cgflow.firetasks.*`` -> ``cgflow.orchestration.firetasks.*``), on the test database."""

from __future__ import annotations

import copy
import datetime
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fireworks import Firework, FWAction, FWorker, Workflow
from fireworks.core.firework import Launch
from fireworks.core.rocket_launcher import rapidfire
from fireworks.user_objects.firetasks.script_task import PyTask

from cgflow.cli.main import main
from cgflow.db.migrations import (
    RENAMED_MODULES,
    migrate_firetask_names,
    old_name_regex,
    renamed_fw_name,
)
from cgflow.orchestration.campaign import load_campaign_spec
from cgflow.orchestration.workflows import campaign_workflow

NEW_PREFIX = "{{cgflow.orchestration.firetasks."
OLD_PREFIX = "{{cgflow.firetasks."
LAUNCH_ID = 1


# --- helpers: what FireWorks stored before the move -------------------------------------

def _to_old_names(value: Any) -> tuple[Any, int]:
    """``value`` with every current cgflow Firetask name put back to its old module."""
    n = 0

    def walk(v: Any) -> Any:
        nonlocal n
        if isinstance(v, dict):
            out = {}
            for k, item in v.items():
                if k == "_fw_name" and isinstance(item, str) and item.startswith(NEW_PREFIX):
                    out[k] = OLD_PREFIX + item[len(NEW_PREFIX):]
                    n += 1
                else:
                    out[k] = walk(item)
            return out
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value), n


def _rewrite_to_old_names(coll: Any) -> int:
    """Rewrite a collection's documents the way the pre-move cgflow had stored them."""
    total = 0
    for doc in list(coll.find({})):
        old, n = _to_old_names(doc)
        if n:
            coll.replace_one({"_id": doc["_id"]}, old)
            total += n
    return total


def _campaign(tmp_path: Path) -> Workflow:
    spec_file = tmp_path / "mig.yaml"
    spec_file.write_text("name: mig\nn_sets: 0\ninclude_reference: true\npreset: tiny\n"
                         "threads: 1\ncg_stage: true\n")
    spec, sets = load_campaign_spec(spec_file)
    return campaign_workflow(spec, sets)


def _ibi_firework_id(lp: Any) -> int:
    doc = lp.fireworks.find_one({"spec.cgflow_stage": {"$regex": "^cg-ibi"}}, {"fw_id": 1})
    assert doc is not None
    return int(doc["fw_id"])


def _detour_of(lp: Any, fw_id: int) -> Firework:
    """The next IBI iteration's Firework (a copy of ``fw_id``'s, as the task adds it)."""
    fw = lp.get_fw_by_id(fw_id)
    return Firework([copy.deepcopy(t) for t in fw.tasks], spec=dict(fw.spec),
                    name=f"{fw.name}-next")


def _add_completed_launch(lp: Any, fw_id: int, action: dict[str, Any]) -> None:
    """A finished launch of ``fw_id`` whose action is ``action`` (a raw dict)."""
    launch = Launch("COMPLETED", "/tmp/launch", fworker=FWorker(), host="h", ip="127.0.0.1",
                    launch_id=LAUNCH_ID, fw_id=fw_id)
    doc = launch.to_db_dict()
    doc["action"] = action
    lp.launches.insert_one(doc)
    lp.fireworks.update_one({"fw_id": fw_id},
                            {"$set": {"launches": [LAUNCH_ID], "state": "COMPLETED"}})


@pytest.fixture
def old_campaign(launchpad, tmp_path) -> dict[str, Any]:
    """A campaign stored with the old Firetask names: its Fireworks, and a finished IBI
    iteration whose launch added the next one as a detour."""
    wf = _campaign(tmp_path)
    launchpad.add_wf(wf)
    ibi = _ibi_firework_id(launchpad)
    detour = _detour_of(launchpad, ibi)
    classes = {fw_id: type(launchpad.get_fw_by_id(fw_id).tasks[0])
               for fw_id in launchpad.get_fw_ids()}
    _add_completed_launch(launchpad, ibi, FWAction(detours=[detour]).to_dict())
    n_fw_names = _rewrite_to_old_names(launchpad.fireworks)
    n_launch_names = _rewrite_to_old_names(launchpad.launches)
    assert n_fw_names == len(classes) and n_launch_names == 1
    return {"classes": classes, "ibi": ibi, "detour_class": type(detour.tasks[0]),
            "n_fireworks": len(classes)}


def _snapshot(db: Any) -> dict[str, list[dict[str, Any]]]:
    return {name: list(db[name].find({}).sort("_id", 1))
            for name in sorted(db.list_collection_names())}


# --- the name table ---------------------------------------------------------------------

def test_renamed_fw_name_follows_the_table():
    assert renamed_fw_name("{{cgflow.firetasks.aa.AABuildTask}}") == (
        "{{cgflow.orchestration.firetasks.aa.AABuildTask}}")
    assert renamed_fw_name("{{cgflow.orchestration.firetasks.aa.AABuildTask}}") is None
    assert renamed_fw_name("{{fireworks.user_objects.firetasks.script_task.PyTask}}") is None
    assert renamed_fw_name("cgflow.firetasks.aa.AABuildTask") is None  # not explicit
    assert renamed_fw_name("Firework") is None
    chained = {"a.": "b.", "b.": "c."}
    assert renamed_fw_name("{{a.x.T}}", chained) == "{{c.x.T}}"
    assert renamed_fw_name("{{a.x.T}}", {"a.": "b.", "b.": "a."}) is not None  # terminates
    assert old_name_regex().match("{{cgflow.firetasks.cg.IBIIterationTask}}")
    assert not old_name_regex().match("{{cgflow.orchestration.firetasks.cg.IBIIterationTask}}")
    assert set(RENAMED_MODULES) == {"cgflow.firetasks."}


def test_renamed_names_point_to_the_current_classes():
    from fireworks.utilities.fw_serializers import load_object

    from cgflow.orchestration.firetasks import aa, cg, train

    for mod in (aa, cg, train):
        for cls in vars(mod).values():
            name = getattr(cls, "_fw_name", "")
            if isinstance(cls, type) and name.startswith(NEW_PREFIX):
                old = OLD_PREFIX + name[len(NEW_PREFIX):]
                assert renamed_fw_name(old) == name
                with pytest.raises(ModuleNotFoundError):
                    load_object({"_fw_name": old})


# --- the migration on the test database -------------------------------------------------

def test_migration_renames_fireworks_and_launch_detours(launchpad, old_campaign):
    ibi = old_campaign["ibi"]
    first = min(old_campaign["classes"])
    # before: FireWorks cannot load them (the old modules are gone)
    with pytest.raises(ModuleNotFoundError):
        launchpad.get_fw_by_id(first)
    with pytest.raises(ModuleNotFoundError):
        launchpad.get_fw_by_id(ibi)
    report = migrate_firetask_names(launchpad)
    assert report.documents == {"fireworks": old_campaign["n_fireworks"], "launches": 1}
    assert report.files == {"fw_gridfs": 0}
    assert report.names == old_campaign["n_fireworks"] + 1
    assert "renamed" in report.summary()
    # after: every Firework loads with its class, and so does the detour of the launch
    for fw_id, cls in old_campaign["classes"].items():
        fw = launchpad.get_fw_by_id(fw_id)
        assert type(fw.tasks[0]) is cls
    fw = launchpad.get_fw_by_id(ibi)
    (launch,) = fw.launches
    (detour_wf,) = launch.action.detours
    assert type(detour_wf.fws[0].tasks[0]) is old_campaign["detour_class"]
    assert launchpad.get_wf_by_fw_id(ibi).state  # the workflow loads too
    assert launchpad.fireworks.find_one({"spec._tasks._fw_name": old_name_regex()}) is None
    # a second run (quick or full) changes nothing
    before = _snapshot(launchpad.db)
    again = migrate_firetask_names(launchpad.db)
    assert again.changed == 0 and again.names == 0
    assert migrate_firetask_names(launchpad.db, full_scan=True).changed == 0
    assert _snapshot(launchpad.db) == before
    assert "nothing changed" in again.summary()


def test_only_names_change(launchpad, old_campaign):
    expected = {}
    for name in ("fireworks", "launches"):
        for doc in launchpad.db[name].find({}):
            new = json.loads(json.dumps(doc, default=str).replace(OLD_PREFIX, NEW_PREFIX))
            expected[(name, str(doc["_id"]))] = new
    migrate_firetask_names(launchpad.db)
    for name in ("fireworks", "launches"):
        for doc in launchpad.db[name].find({}):
            assert json.loads(json.dumps(doc, default=str)) == expected[(name, str(doc["_id"]))]


def test_a_database_without_cgflow_fireworks_is_untouched(launchpad, tmp_path):
    fws = [Firework(PyTask(func="math.sqrt", args=[float(i)]), name=f"s{i}", fw_id=-(i + 1))
           for i in range(2)]
    launchpad.add_wf(Workflow(fws, {fws[0]: [fws[1]]}, name="plain"))
    rapidfire(launchpad, FWorker(), m_dir=str(tmp_path), nlaunches=0, sleep_time=0,
              strm_lvl="ERROR")
    assert launchpad.launches.count_documents({}) == 2
    before = _snapshot(launchpad.db)
    for full in (False, True):
        report = migrate_firetask_names(launchpad.db, full_scan=full)
        assert report.changed == 0 and report.names == 0
    assert _snapshot(launchpad.db) == before
    # an empty (never used) database as well
    launchpad.reset("", require_password=False)
    assert migrate_firetask_names(launchpad.db).changed == 0


def test_full_scan_finds_names_outside_the_known_places(launchpad, old_campaign):
    migrate_firetask_names(launchpad.db)
    odd = "{{cgflow.firetasks.aa.AABuildTask}}"
    launchpad.launches.update_one({"launch_id": LAUNCH_ID},
                                  {"$set": {"action.stored_data.task": {"_fw_name": odd}}})
    assert migrate_firetask_names(launchpad.db).changed == 0  # not where FireWorks puts tasks
    report = migrate_firetask_names(launchpad.db, full_scan=True)
    assert report.documents == {"fireworks": 0, "launches": 1} and report.names == 1
    doc = launchpad.launches.find_one({"launch_id": LAUNCH_ID})
    assert doc["action"]["stored_data"]["task"]["_fw_name"] == renamed_fw_name(odd)


def test_a_launch_action_stored_in_gridfs_is_rewritten(launchpad, old_campaign):
    ibi = old_campaign["ibi"]
    doc = launchpad.launches.find_one({"launch_id": LAUNCH_ID})
    fs = launchpad.gridfs_fallback
    # what FireWorks does with an action too big for the launch document
    file_id = fs.put(json.dumps(doc["action"]), encoding="utf-8",
                     metadata={"launch_id": LAUNCH_ID})
    launchpad.launches.update_one({"launch_id": LAUNCH_ID},
                                  {"$set": {"action": {"gridfs_id": str(file_id)}}})
    with pytest.raises(ModuleNotFoundError):
        launchpad.get_fw_by_id(ibi)
    report = migrate_firetask_names(launchpad.db)
    assert report.files == {"fw_gridfs": 1} and report.documents["launches"] == 1
    (launch,) = launchpad.get_fw_by_id(ibi).launches
    assert type(launch.action.detours[0].fws[0].tasks[0]) is old_campaign["detour_class"]
    assert not fs.exists(file_id)  # the old file is gone, the new one has the same metadata
    (new_file,) = list(launchpad.db["fw_gridfs.files"].find({}))
    assert new_file["metadata"] == {"launch_id": LAUNCH_ID}
    again = migrate_firetask_names(launchpad.db)
    assert again.changed == 0


def test_a_concurrent_change_is_kept(launchpad, old_campaign, monkeypatch):
    """A launcher's update between the migration's read and write is not overwritten."""
    import cgflow.db.migrations as mig

    first, second = sorted(old_campaign["classes"])[:2]
    real = mig._update_for
    raced: set[int] = set()

    def racing(doc, changes):
        fw_id = doc.get("fw_id")
        if fw_id in (first, second) and fw_id not in raced:
            raced.add(fw_id)
            if fw_id == first:  # a launcher changes the state
                launchpad.fireworks.update_one({"fw_id": first}, {"$set": {"state": "RUNNING"}})
            else:  # another migration renames it first: the guarded write misses, re-reads
                fresh = launchpad.fireworks.find_one({"fw_id": second})
                filt, upd = real(fresh, list(mig._renames(fresh, RENAMED_MODULES)))
                assert launchpad.fireworks.update_one(filt, upd).modified_count == 1
        return real(doc, changes)

    monkeypatch.setattr(mig, "_update_for", racing)
    report = migrate_firetask_names(launchpad.db)
    assert raced == {first, second}
    assert report.documents["fireworks"] == old_campaign["n_fireworks"] - 1  # not twice
    assert launchpad.fireworks.find_one({"fw_id": first})["state"] == "RUNNING"
    for fw_id in (first, second):
        cls = old_campaign["classes"][fw_id]
        assert type(launchpad.get_fw_by_id(fw_id).tasks[0]) is cls


# --- where it runs ----------------------------------------------------------------------

def test_cli_db_migrate_prints_the_counts(launchpad, launchpad_file, old_campaign, capsys):
    assert main(["db", "migrate", "-l", str(launchpad_file)]) == 0
    out = capsys.readouterr().out
    assert f"fireworks: {old_campaign['n_fireworks']} document(s) changed" in out
    assert "launches: 1 document(s) changed" in out
    assert "GridFS fw_gridfs: 0 file(s) rewritten" in out
    assert f"Firetask names renamed: {old_campaign['n_fireworks'] + 1}" in out
    assert type(launchpad.get_fw_by_id(old_campaign["ibi"]).tasks[0])
    assert main(["db", "migrate", "-l", str(launchpad_file)]) == 0
    out = capsys.readouterr().out
    assert "fireworks: 0 document(s) changed" in out and "already up to date" in out


def test_cli_db_migrate_refuses_a_missing_file_and_l_elsewhere(tmp_path, capsys):
    assert main(["db", "migrate", "-l", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml" in err and "Traceback" not in err
    assert main(["db", "status", "-l", str(tmp_path / "x.yaml")]) == 2
    assert "only 'cgflow db migrate'" in capsys.readouterr().err


def test_launch_migrates_before_rlaunch_starts(launchpad, launchpad_file, old_campaign,
                                               tmp_path, monkeypatch):
    import cgflow.orchestration.launcher as launcher

    fw_dir = tmp_path / "home" / "fw"  # launch() makes <lp file>/../../launches
    fw_dir.mkdir(parents=True)
    lp_file = fw_dir / "my_launchpad.yaml"
    lp_file.write_text(launchpad_file.read_text())
    seen: dict[str, Any] = {}

    def fake_rlaunch(lp: Path, fworker: Path | None) -> list[str]:
        # what rlaunch would find when it starts
        seen["old"] = launchpad.fireworks.count_documents(
            {"spec._tasks._fw_name": old_name_regex()})
        return [sys.executable, "-c", "pass"]

    monkeypatch.setattr(launcher, "rlaunch_command", fake_rlaunch)
    lines: list[str] = []
    assert launcher.launch(lp_file, report=lines.append, poll_s=0.05) == 0
    assert seen["old"] == 0
    assert any(line.startswith("job database migrated:") for line in lines), lines
    lines.clear()
    assert launcher.launch(lp_file, report=lines.append, poll_s=0.05) == 0
    assert not any("migrated" in line for line in lines)


def test_submit_migrates_the_stored_fireworks(launchpad, launchpad_file, old_campaign,
                                              tmp_path):
    from cgflow.orchestration.submit import submit_campaign

    spec_file = tmp_path / "second.yaml"
    spec_file.write_text(yaml.safe_dump({"name": "second", "n_sets": 0, "preset": "tiny",
                                         "include_reference": True}))
    submit_campaign(spec_file, launchpad_file)
    for fw_id in launchpad.get_fw_ids():
        assert launchpad.get_fw_by_id(fw_id).tasks  # all load, old and new
    assert launchpad.fireworks.count_documents({"spec.campaign": "second"}) == 4
    stamp = launchpad.fireworks.find_one({"fw_id": old_campaign["ibi"]})["updated_on"]
    assert isinstance(stamp, str | datetime.datetime)  # untouched by the migration
