"""The fault suite of ``benchmarks/faults.py``, short: a few trials of each cheap fault
(the hostile-input table runs whole in ``tests/test_bad_input.py``), and of the engine
faults (killed ``mdrun`` and ``lmp``, a full disk) on their tiny systems."""

from __future__ import annotations

import errno
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import faults  # noqa: E402

TRIALS = {"fuzz_specs": 60, "fuzz_parameter_sets": 60, "submit_refused": 4,
          "submit_twice": 2, "truncated_output": 40, "ibi_monitor": 40, "missing_engine": 1,
          "missing_lammps": 1, "fuzz_submit": 10}


@pytest.mark.parametrize("name", sorted(TRIALS))
def test_a_fault_is_survived_every_time(name, mongo_uri, tmp_path):
    if name == "missing_engine" and shutil.which("rlaunch") is None and not Path(
            sys.executable).with_name("rlaunch").exists():
        pytest.skip("rlaunch not installed")
    fn, _ = faults.FAULTS[name]
    tally = fn(TRIALS[name], np.random.default_rng(1), faults.Env(tmp=tmp_path, uri=mongo_uri))
    assert tally.trials == TRIALS[name]
    assert (tally.survived, tally.lost, tally.duplicated) == (tally.trials, 0, 0), tally.notes
    if name == "submit_refused":
        assert tally.refused_submissions >= 1  # the fault did hit some submissions


def test_the_counts_can_fail(tmp_path, monkeypatch):
    """A validator that accepts everything makes the truncation fault lose every trial."""
    from cgflow.jobs.lammps import job

    monkeypatch.setattr(job.LammpsOutputValidator, "check", lambda self, directory="./": False)
    tally = faults.truncated_output(3, np.random.default_rng(0), faults.Env(tmp_path, "x"))
    assert (tally.trials, tally.survived, tally.lost) == (3, 0, 3)


#: Trials of the engine faults in the test suite (a reference run and these, seconds each).
ENGINE_TRIALS = {"killed_mdrun": 2, "killed_lmp": 1, "disk_full": 2}


@pytest.mark.engine
@pytest.mark.parametrize("name", sorted(ENGINE_TRIALS))
def test_an_engine_fault_is_survived_every_time(name, tmp_path):
    engine = "lmp" if name == "killed_lmp" else "gmx"
    if shutil.which(engine) is None:
        pytest.skip(f"{engine} not installed")
    if name == "disk_full" and faults._no_tmpfs_reason():
        pytest.skip(faults._no_tmpfs_reason())
    if name == "disk_full" and shutil.which("lmp") is None:
        pytest.skip("lmp not installed")
    fn, _ = faults.FAULTS[name]
    tally = fn(ENGINE_TRIALS[name], np.random.default_rng(2), faults.Env(tmp=tmp_path, uri="x"))
    # a kill (or the filler) that came after the engine's end is not a trial
    assert tally.trials + tally.missed == ENGINE_TRIALS[name] and tally.trials >= 1
    assert (tally.survived, tally.lost, tally.duplicated) == (tally.trials, 0, 0), tally.notes
    if name != "disk_full":
        assert tally.kills >= tally.trials


def test_a_write_failure_names_the_cause_the_file_and_the_directory(tmp_path):
    from cgflow.errors import write_failure

    full = write_failure(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), tmp_path)
    assert full.startswith(f"cannot write a file in {tmp_path}: [Errno 28] No space left on "
                           "device (") and full.endswith(f"bytes free on the file system of "
                                                         f"{tmp_path})")
    denied = write_failure(PermissionError(errno.EACCES, "Permission denied",
                                           str(tmp_path / "prod.edr")), tmp_path)
    assert denied == (f"cannot write {tmp_path / 'prod.edr'} in {tmp_path}: [Errno 13] "
                      "Permission denied")


def test_an_all_atom_step_that_cannot_write_fails_the_run_naming_the_disk(tmp_path,
                                                                         monkeypatch):
    """The Firetask glue turns an OSError of cgflow's own writes into the stored failure
    and the Firework's reason, with the cause and the run directory."""
    from cgflow.errors import CgflowError
    from cgflow.orchestration.firetasks import aa

    failed: dict[str, str] = {}

    class Store:
        def fail_aa_run(self, run_id: str, error: str) -> None:
            failed[run_id] = error

    class Ctx:
        aa_dir, aa_run_id, store = tmp_path / "aa", "set:tiny", Store()
        param_set = molecule = None

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(aa.aa_stage, "build", full_disk)
    task = aa.AABuildTask(campaign="c", param_set={}, preset="tiny")
    with pytest.raises(CgflowError) as err:
        task._run_step(Ctx(), None)
    assert "No space left on device" in str(err.value) and str(tmp_path / "aa") in str(err.value)
    assert failed == {"set:tiny": str(err.value)} and str(err.value).startswith("build: ")


def test_an_output_cut_short_on_a_full_disk_says_the_disk_is_full(tmp_path, monkeypatch):
    """gmx insert-molecules exits 0 with a truncated box.gro when the disk is full: the
    reader names the file and, if the file system is full, the cause."""
    import collections

    from cgflow import errors
    from cgflow.engines import gromacs as eng
    from cgflow.errors import EngineError

    box = tmp_path / "box.gro"
    box.write_text("title\n")
    with pytest.raises(EngineError) as roomy:
        eng._count_gro_atoms(box)
    assert str(box) in str(roomy.value) and "space" not in str(roomy.value)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda p: usage(1 << 20, 1 << 20, 0))
    with pytest.raises(EngineError) as full:
        eng._count_gro_atoms(box)
    assert str(full.value).endswith(f"the file system of {tmp_path} is full: 0 bytes free "
                                    "(No space left on device)")
