"""Make the canned LAMMPS runs used by tests/test_lammps_jobs.py (the handlers' cases).

Run from the repository root with LAMMPS installed (about 20-30 s, one process)::

    .venv/bin/python tests/data/lammps_failures/make_job_cases.py

Every case is a real run of the Debian ``lmp`` started as one attempt of
:class:`cgflow.jobs.lammps.job.LammpsJob` (command from
:func:`cgflow.engines.lammps.lammps_command`: ``-screen none``, stdout and stderr in
``lammps.out``) and holds the files that run left. Only the folders listed below are
removed and rewritten; the ``engine_*`` cases next to them are made by
``tests/data/ibi/make_canned_runs.py``.

System (the same as the engine tests of tests/test_lammps_jobs.py): 343 beads of
114.23 g/mol at 690 kg/m^3 in a cubic box (:func:`cgflow.engines.lammps.write_data`,
seed 3), ``units real``, ``pair_style table linear 1000`` at 298.15 K. Tables are written
with :func:`cgflow.engines.lammps.write_table` on grids of 0.005 nm (``holed``: 300
points):

* ``lj(a)``: Lennard-Jones, sigma 0.6 nm, epsilon 3.3 kJ/mol, shifted to zero at 1.5 nm,
  from ``a`` nm to 1.5 nm (a sound repulsive core);
* ``holed``: from 0.01 nm, the same LJ capped at 8.4 kJ/mol with an attractive hole of
  1255 kJ/mol at 0.15 nm and an r^-24 wall inside it (a core that is too soft).

Where a case has run settings, the input is :func:`cgflow.engines.lammps.write_input`
of those settings and the settings are saved as ``lammps_settings.json``
(:func:`cgflow.jobs.lammps.state.save_settings`); "hand-written" inputs have no settings.
No case holds ``lammps_corrections.json``: no correction has been applied yet.

Cases (exit code of the LAMMPS process in brackets):

``lost_atoms_soft_core`` (1)
    Settings: ``holed`` table, IBI stage, 5 fs, 500 steps of equilibration then 1500,
    no minimisation. ``ERROR: Lost atoms: original 343 current 339`` at step 100.
``lost_atoms_large_dt`` (1)
    Hand-written input: ``lj(0.05)``, minimisation, then NVE at 600 K with ``timestep
    100``, ``run 5000`` and ``restart 250 restart.*``. ``ERROR: Lost atoms: original 343
    current ...`` at the thermo output of step 450, after ``restart.250`` was written.
``table_inner_cutoff`` (1)
    Settings: ``lj(0.55)``, no minimisation. ``ERROR on proc 0: Pair distance < table
    inner cutoff: ijtype 1 1 dist 5.495084...`` at step 0 (a pair of the initial
    lattice).
``table_outer_cutoff`` (1)
    Settings: ``lj(0.3)`` with a pair cut-off of 1.6 nm, beyond the table's end.
    ``ERROR: Pair table cutoff outside of table``.
``killed_with_restart`` (-9)
    Settings: ``lj(0.3)``, IBI stage, 40000 steps in 5 blocks of 8000 with a restart file
    at every block end; killed with SIGKILL right after ``restart.16000`` appeared. No
    ``Total wall time``; ``restart.8000``, ``restart.16000``, and ``rdf.dat`` and
    ``pressure.dat`` with the blocks ending at 8000 and 16000.
``walltime_stop`` (0)
    Hand-written input: ``lj(0.3)``, ``restart 1000 restart.*``, ``timer timeout
    00:00:01 every 1000``, then ``shell sleep 2`` (standing for the time a long job
    spent before) and ``run 20000``: the limit is reached at the first check, step 1000,
    whatever the speed of the machine. ``WARNING: Wall time limit reached``, newest
    restart file ``restart.1000``; the log ends with ``Total wall time``.
``finished_ibi`` (0)
    Settings: ``lj(0.3)``, IBI stage, minimisation, 500 steps of equilibration, 1500
    steps in 3 blocks: a complete run (``final.data``, ``rdf.dat``, ``pressure.dat``).
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import numpy as np

from cgflow.engines import lammps as eng
from cgflow.jobs.lammps import state as rd
from cgflow.jobs.lammps.job import LammpsJob

HERE = Path(__file__).resolve().parent
CASES = ("lost_atoms_soft_core", "lost_atoms_large_dt", "table_inner_cutoff",
         "table_outer_cutoff", "killed_with_restart", "walltime_stop", "finished_ibi")

N_BEADS = 343
MASS_G_MOL = 114.23
DENSITY_KG_M3 = 690.0
TEMPERATURE_K = 298.15
R_CUT_NM = 1.5
DR_NM = 0.005


def grid(r_min_nm: float, r_max_nm: float = R_CUT_NM) -> np.ndarray:
    """Uniform grid of spacing :data:`DR_NM` from ``r_min_nm`` to ``r_max_nm``, nm."""
    return np.linspace(r_min_nm, r_max_nm, round((r_max_nm - r_min_nm) / DR_NM) + 1)


def lj(r: np.ndarray, sigma: float = 0.6, eps: float = 3.3) -> tuple[np.ndarray, np.ndarray]:
    """LJ energy (kJ/mol, shifted to 0 at the last point) and force (kJ/(mol nm))."""
    u = 4 * eps * ((sigma / r) ** 12 - (sigma / r) ** 6)
    f = 4 * eps * (12 * sigma**12 / r**13 - 6 * sigma**6 / r**7)
    return u - u[-1], f


def holed(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A too-soft core: LJ capped at 8.4 kJ/mol with an attractive hole at 0.15 nm."""
    u, _ = lj(r)
    u = np.minimum(u, 8.4) - 1255.0 * np.exp(-((r - 0.15) / 0.04) ** 2) \
        + 418.4 * (0.1 / r) ** 24
    u -= u[-1]
    return u, -np.gradient(u, r)


def new_case(name: str, r: np.ndarray, table: tuple[np.ndarray, np.ndarray]) -> Path:
    """An empty case folder with the table and the initial beads."""
    d = HERE / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    eng.write_table(d / eng.TABLE_FILE, r, *table)
    box = eng.box_length_nm(N_BEADS, DENSITY_KG_M3, MASS_G_MOL)
    eng.write_data(d / eng.DATA_FILE, N_BEADS, box, MASS_G_MOL, 3)
    return d


def with_settings(d: Path, **kw) -> eng.LammpsRunSettings:
    """Write the input from run settings and save the settings."""
    base = dict(stage="ibi", temperature_k=TEMPERATURE_K, dt_fs=5.0, equilibration_steps=500,
                run_steps=1500, rcut_nm=R_CUT_NM, table_points=1000, thermo_every=100)
    base.update(kw)
    s = eng.LammpsRunSettings(**base)
    eng.write_input(d / eng.INPUT_FILE, s)
    rd.save_settings(d, s)
    return s


HEAD = f"""\
units real
atom_style atomic
boundary p p p
read_data {eng.DATA_FILE}
pair_style table linear 1000
pair_coeff 1 1 {eng.TABLE_FILE} {eng.TABLE_KEYWORD} 15.0
neighbor 2.0 bin
neigh_modify every 1 delay 0 check yes
"""


def run(d: Path) -> int:
    """Run one attempt of the job in ``d`` to its end; the exit code."""
    return LammpsJob().run(d).wait()


def expect(d: Path, code: int, want_code: int, text: str) -> None:
    """Check that the run ended as the case needs; print what it shows."""
    log = (d / eng.LOG_FILE).read_text()
    if code != want_code or text not in log:
        raise RuntimeError(f"{d.name}: exit code {code} (wanted {want_code}), "
                           f"{text!r} {'found' if text in log else 'not found'} in the log")
    info = eng.parse_lammps_log(d / eng.LOG_FILE)
    restarts = sorted((p.name for p in d.glob(eng.RESTART_PREFIX + "*")),
                      key=lambda n: int(n.rsplit(".", 1)[1]))
    print(f"{d.name}: exit code {code}, last step {info.last_step}, "
          f"error {info.error!r}, finished {info.finished}, restart files {restarts}")


def lost_atoms_soft_core() -> None:
    r = np.linspace(0.01, R_CUT_NM, 300)
    d = new_case("lost_atoms_soft_core", r, holed(r))
    with_settings(d, minimize=False)
    expect(d, run(d), 1, f"ERROR: Lost atoms: original {N_BEADS}")


def lost_atoms_large_dt() -> None:
    r = grid(0.05)
    d = new_case("lost_atoms_large_dt", r, lj(r))
    (d / eng.INPUT_FILE).write_text(
        "# hand-written: NVE at 600 K with a 100 fs time step\n" + HEAD + """\
minimize 1.0e-6 1.0e-8 1000 10000
reset_timestep 0
timestep 100
thermo_style custom step temp press pe ke etotal
thermo 50
velocity all create 600 7 dist gaussian mom yes rot no
fix integrate all nve
restart 250 restart.*
run 5000
write_data final.data
""")
    expect(d, run(d), 1, "ERROR: Lost atoms")
    if rd.latest_restart(d) is None:
        raise RuntimeError(f"{d.name}: atoms were lost before the first restart file")


def table_inner_cutoff() -> None:
    r = grid(0.55)
    d = new_case("table_inner_cutoff", r, lj(r))
    with_settings(d, minimize=False)
    expect(d, run(d), 1, "Pair distance < table inner cutoff")


def table_outer_cutoff() -> None:
    r = grid(0.3)
    d = new_case("table_outer_cutoff", r, lj(r))
    with_settings(d, rcut_nm=1.6)
    expect(d, run(d), 1, "ERROR: Pair table cutoff outside of table")


def killed_with_restart() -> None:
    r = grid(0.3)
    d = new_case("killed_with_restart", r, lj(r))
    s = with_settings(d, run_steps=40000, n_blocks=5, restart_every=1, thermo_every=1000)
    kill_at = 2 * s.interval_steps  # 16000
    target = d / f"{eng.RESTART_PREFIX}{kill_at}"
    proc = LammpsJob().run(d)
    t0 = time.monotonic()
    while not (target.exists() and target.stat().st_size > 0):
        if proc.poll() is not None or time.monotonic() - t0 > 300:
            proc.kill()
            raise RuntimeError(f"{d.name}: {target.name} never appeared")
        time.sleep(0.01)
    time.sleep(0.1)  # let LAMMPS finish writing it
    proc.send_signal(signal.SIGKILL)
    code = proc.wait()
    newest = rd.latest_restart(d)
    if newest is None or newest[1] != kill_at:
        raise RuntimeError(f"{d.name}: newest restart file {newest}, wanted step {kill_at}")
    expect(d, code, -signal.SIGKILL, "Step")


def walltime_stop() -> None:
    r = grid(0.3)
    d = new_case("walltime_stop", r, lj(r))
    (d / eng.INPUT_FILE).write_text(
        "# hand-written: a long run stopped by the wall-time limit\n" + HEAD + """\
timestep 5
thermo_style custom step temp press pe ke etotal
thermo 500
velocity all create 298.15 7 dist gaussian mom yes rot no
fix thermostat all langevin 298.15 298.15 500 8 zero yes
fix integrate all nve
restart 1000 restart.*
timer timeout 00:00:01 every 1000
shell sleep 2
run 20000
write_data final.data
""")
    expect(d, run(d), 0, "WARNING: Wall time limit reached")
    newest = rd.latest_restart(d)
    if newest is None or newest[1] != 1000:
        raise RuntimeError(f"{d.name}: newest restart file {newest}, wanted step 1000")


def finished_ibi() -> None:
    r = grid(0.3)
    d = new_case("finished_ibi", r, lj(r))
    with_settings(d, n_blocks=3)
    expect(d, run(d), 0, "Total wall time")


def main() -> None:
    t0 = time.monotonic()
    lost_atoms_soft_core()
    lost_atoms_large_dt()
    table_inner_cutoff()
    table_outer_cutoff()
    killed_with_restart()
    walltime_stop()
    finished_ibi()
    size = sum(p.stat().st_size for c in CASES for p in (HERE / c).rglob("*") if p.is_file())
    print(f"{len(CASES)} cases, {size / 1024:.0f} KiB, {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
