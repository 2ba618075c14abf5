"""Make the canned LAMMPS runs used by tests/test_lammps_engine.py and tests/test_ibi_update.py.

Run from the repository root with LAMMPS installed::

    .venv/bin/python tests/data/ibi/make_canned_runs.py

System: 216 beads of 114.23 g/mol at 723 kg/m^3 (liquid 234TriMePe), a Lennard-Jones-like
table (sigma 0.6 nm, epsilon 3 kJ/mol, cutoff 1.2 nm, table spacing 0.005 nm), inputs
from :func:`cgflow.engines.lammps.write_input`. Writes

* ``tests/data/ibi/normal_run/``: an IBI sampling run that finished (equilibration 200
  steps, two blocks of 500 steps);
* ``tests/data/lammps_failures/<case>/``: runs that failed, with the files LAMMPS left:
  ``engine_lost_atoms`` (table from 0.02 nm, no minimisation, 200 fs time step),
  ``engine_table_inner_cutoff`` (table starting at 0.58 nm, no minimisation),
  ``engine_missing_table`` (the table file deleted before the run) and
  ``engine_killed`` (a production killed with SIGKILL after about 5 s; restart files
  every 1000 steps). They are described in ``tests/data/lammps_failures/ENGINE_CASES.md``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from cgflow.engines import lammps
from cgflow.errors import EngineError
from cgflow.ibi.potential import TabulatedPotential, potential_grid, switching_function

HERE = Path(__file__).resolve().parent
FAILURES = HERE.parent / "lammps_failures"
N_BEADS = 216


def lj(r_min: float, r_cut: float = 1.2) -> TabulatedPotential:
    r = potential_grid(r_min, r_cut, 0.01)
    u = 4 * 3.0 * ((0.6 / r) ** 12 - (0.6 / r) ** 6)
    return TabulatedPotential.from_energy(r, (u - u[-1]) * switching_function(r, r_cut, 0.1))


def setup(d: Path, pot: TabulatedPotential, **kw) -> lammps.LammpsRunSettings:
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    r, u, f = pot.tabulate(0.005)
    lammps.write_table(d / lammps.TABLE_FILE, r, u, f)
    box = lammps.box_length_nm(N_BEADS, 723.0, 114.23)
    lammps.write_data(d / lammps.DATA_FILE, N_BEADS, box, 114.23, seed=3)
    base = dict(stage="ibi", temperature_k=298.15, dt_fs=5.0, equilibration_steps=200,
                run_steps=1000, rcut_nm=1.2, table_points=r.size, n_blocks=2,
                thermo_every=100)
    base.update(kw)
    s = lammps.LammpsRunSettings(**base)
    lammps.write_input(d / lammps.INPUT_FILE, s)
    return s


def run(d: Path, expect_failure: bool) -> None:
    try:
        lammps.run_command(lammps.lammps_command(), d)
    except EngineError:
        if not expect_failure:
            raise
        print(d.name, "failed as intended:", lammps.parse_lammps_log(d / "log.lammps").error)
    else:
        if expect_failure:
            raise RuntimeError(f"{d} did not fail")
        print(d.name, "finished")


def main() -> None:
    d = HERE / "normal_run"
    setup(d, lj(0.1))
    run(d, expect_failure=False)
    for name in ("final.data", "system.data", "pair.table"):
        (d / name).unlink()

    setup(FAILURES / "engine_lost_atoms", lj(0.02), dt_fs=200.0, minimize=False)
    run(FAILURES / "engine_lost_atoms", expect_failure=True)
    setup(FAILURES / "engine_table_inner_cutoff", lj(0.58), minimize=False)
    run(FAILURES / "engine_table_inner_cutoff", expect_failure=True)
    setup(FAILURES / "engine_missing_table", lj(0.1))
    (FAILURES / "engine_missing_table" / lammps.TABLE_FILE).unlink()
    run(FAILURES / "engine_missing_table", expect_failure=True)

    d = FAILURES / "engine_killed"
    setup(d, lj(0.1), stage="production", run_steps=400000, dump_every=500,
          restart_every=1000)
    with (d / lammps.STDOUT_FILE).open("w") as out:
        proc = subprocess.Popen(lammps.lammps_command(), cwd=d, stdout=out,  # noqa: S603
                                stderr=subprocess.STDOUT)
        time.sleep(5.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    print("killed at step", lammps.parse_lammps_log(d / "log.lammps").last_step,
          "restart files:", sorted(p.name for p in d.glob("restart.*")))


if __name__ == "__main__":
    main()
