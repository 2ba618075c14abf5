"""The fault suite of ``benchmarks/faults.py``, short: a few trials of each cheap fault
(the hostile-input table runs whole in ``tests/test_bad_input.py``)."""

from __future__ import annotations

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
