"""Regenerate the canned GROMACS failures used by tests/test_gromacs_jobs.py.

Run from the repository root (takes about half a minute, needs ``gmx``)::

    .venv/bin/python tests/data/gromacs_failures/make_cases.py

The test system (``system/``) is a liquid of 125 rigid-free diatomic molecules (two
united-atom CH3 sites, LJ sigma 0.375 nm, epsilon 0.8 kJ/mol, harmonic bond 0.154 nm with
k = 250000 kJ/mol/nm^2), 250 atoms in a 2.33 nm box, plain LJ cut-off at 0.9 nm and no
charges, so that mdrun runs thousands of steps per second on one thread. ``overlap.gro``
moves one atom 0.03 nm from another; ``coincident.gro`` puts it on top of it.

Each case folder holds what a real attempt of :class:`cgflow.jobs.gromacs.job.GromacsJob`
left: the run state ``<deffnm>.gmxjob.json`` (with the real exit code), the mdp, the
log and mdrun output and, where they matter, checkpoints, the tpr and outputs.

============================  ==========================================================
case                          how it was provoked
============================  ==========================================================
``grompp_bad_mdp``            ``integrator = mdd``
``grompp_missing_include``    ``#include "missing_ff.itp"`` on line 1 of the topology
``grompp_too_many_warnings``  a 16 fs time step (bond period 34 fs) and ``-maxwarn 0``
``blowup_overlap_step0``      NVT from ``overlap.gro``: potential energy 4.7e13 at step 0
``blowup_hang_checkpoint``    NVT at 3000 K with a 5 fs step, checkpoints at every
                              neighbour-search step (``-cpt 0``, ``nstlist = 50``): the
                              system blows up near step 250 and mdrun hangs in its pair
                              search; BlowUpHandler (as a monitor) sees the energies and
                              the job kills mdrun
``lincs_warnings``            all bonds constrained, 80 fs step at 1000 K: the run ends
                              normally but with LINCS warnings (bonds rotated > 30 deg)
``em_nonfinite``              steepest descent from ``coincident.gro``: energy -nan
``killed_with_checkpoint``    NVT killed with SIGKILL after its second checkpoint
``maxh_stop``                 NVT with ``-maxh 0.0001`` (0.36 s)
``complete_nvt``              a complete short NVT run
============================  ==========================================================
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cgflow.jobs.gromacs.handlers import BlowUpHandler
from cgflow.jobs.gromacs.job import GromacsJob
from cgflow.jobs.gromacs.state import load_state

HERE = Path(__file__).resolve().parent
SYSTEM = HERE / "system"

TOPOLOGY = """\
[ defaults ]
; nbfunc comb-rule gen-pairs fudgeLJ fudgeQQ
  1       2         no        1.0     1.0

[ atomtypes ]
; name  mass    charge ptype sigma  epsilon
  CX    15.035  0.0    A     0.375  0.80

[ moleculetype ]
; name nrexcl
  DIA  3

[ atoms ]
  1  CX  1  DIA  C1  1  0.0  15.035
  2  CX  1  DIA  C2  1  0.0  15.035

[ bonds ]
  1  2  1  0.154  250000.0

[ system ]
diatomic test liquid

[ molecules ]
DIA  125
"""

#: mdp options of the test system's NVT runs (GROMACS units).
BASE_MDP = {
    "integrator": "md", "dt": "0.002", "nsteps": "1000", "nstlog": "100",
    "nstcalcenergy": "100", "nstenergy": "100", "nstxout-compressed": "0",
    "cutoff-scheme": "Verlet", "coulombtype": "Cut-off", "rcoulomb": "0.9", "rvdw": "0.9",
    "tcoupl": "v-rescale", "tc-grps": "System", "tau-t": "0.1", "ref-t": "200",
    "gen-vel": "yes", "gen-temp": "200", "gen-seed": "1234", "ld-seed": "1234",
}
EM_MDP = {
    "integrator": "steep", "nsteps": "500", "emtol": "100", "emstep": "0.01", "nstlog": "10",
    "nstenergy": "10", "cutoff-scheme": "Verlet", "coulombtype": "Cut-off", "rcoulomb": "0.9",
    "rvdw": "0.9",
}


def mdp_text(base: dict[str, str] | None = None, **changes: str | None) -> str:
    """An mdp from ``base`` (default :data:`BASE_MDP`) with options changed (keys with
    ``_`` for ``-``; None removes an option)."""
    opts = dict(BASE_MDP if base is None else base)
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            opts.pop(key, None)
        else:
            opts[key] = value
    return "".join(f"{k:<24s} = {v}\n" for k, v in opts.items())


def write_system(dest: Path) -> None:
    """Write ``topol.top``, ``conf.gro``, ``overlap.gro``, ``coincident.gro`` into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "topol.top").write_text(TOPOLOGY)
    n_side, box = 5, 2.33
    rng = np.random.default_rng(1)
    a = box / n_side
    xyz = []
    for i in range(n_side):
        for j in range(n_side):
            for k in range(n_side):
                c = (np.array([i, j, k]) + 0.5) * a
                u = rng.normal(size=3)
                u /= np.linalg.norm(u)
                xyz += [c - 0.077 * u, c + 0.077 * u]
    xyz = np.array(xyz)

    def gro(x: np.ndarray, title: str) -> str:
        lines = [title, f"{len(x):5d}"]
        for n, p in enumerate(x):
            lines.append(f"{n // 2 + 1:5d}{'DIA':<5s}{('C1', 'C2')[n % 2]:>5s}{n + 1:5d}"
                         f"{p[0]:8.3f}{p[1]:8.3f}{p[2]:8.3f}")
        lines.append(f"{box:10.5f}{box:10.5f}{box:10.5f}")
        return "\n".join(lines) + "\n"

    (dest / "conf.gro").write_text(gro(xyz, "diatomic test liquid"))
    over = xyz.copy()
    over[2] = xyz[0] + np.array([0.03, 0.0, 0.0])
    (dest / "overlap.gro").write_text(gro(over, "diatomic test liquid, overlapping atoms"))
    coin = xyz.copy()
    coin[2] = np.round(xyz[0], 3)
    coin[0] = np.round(xyz[0], 3)
    (dest / "coincident.gro").write_text(gro(coin, "diatomic test liquid, coincident atoms"))


def _workdir(conf: str = "conf.gro") -> Path:
    work = Path(tempfile.mkdtemp(prefix="cgflow_gmx_case_"))
    shutil.copy(SYSTEM / "topol.top", work / "topol.top")
    shutil.copy(SYSTEM / conf, work / "conf.gro")
    return work


def _keep(case: str, work: Path, names: list[str]) -> None:
    dest = HERE / case
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    for name in names:
        if (work / name).exists():
            shutil.copy(work / name, dest / name)
    shutil.rmtree(work)
    print(f"{case}: {sorted(p.name for p in dest.iterdir())}")


def _job(work: Path, stage: str, mdp: str, **kw) -> GromacsJob:
    deffnm = {"production": "prod"}.get(stage, stage)
    (work / f"{deffnm}.mdp").write_text(mdp)
    job = GromacsJob(stage, f"{deffnm}.mdp", "conf.gro", "topol.top", threads=1, **kw)
    job.setup(work)
    return job


def _run_to_end(job: GromacsJob, work: Path) -> int | None:
    p = job.run(work)
    return None if p is None else p.wait(timeout=300)


def grompp_cases() -> None:
    work = _workdir()
    job = _job(work, "nvt", mdp_text(integrator="mdd"))
    assert _run_to_end(job, work) is None
    _keep("grompp_bad_mdp", work, ["nvt.mdp", "nvt.grompp.out", "nvt.gmxjob.json"])

    work = _workdir()
    (work / "topol.top").write_text('#include "missing_ff.itp"\n' + TOPOLOGY)
    job = _job(work, "nvt", mdp_text())
    assert _run_to_end(job, work) is None
    _keep("grompp_missing_include", work,
          ["nvt.mdp", "topol.top", "nvt.grompp.out", "nvt.gmxjob.json"])

    work = _workdir()
    job = _job(work, "nvt", mdp_text(dt="0.016"))
    assert _run_to_end(job, work) is None
    _keep("grompp_too_many_warnings", work,
          ["nvt.mdp", "topol.top", "nvt.grompp.out", "nvt.gmxjob.json"])


def blowup_cases() -> None:
    work = _workdir("overlap.gro")
    job = _job(work, "nvt", mdp_text())
    rc = _run_to_end(job, work)
    assert rc == 1, rc
    _keep("blowup_overlap_step0", work,
          ["nvt.mdp", "nvt.log", "nvt.mdrun.out", "nvt.gmxjob.json"])

    work = _workdir()
    job = _job(work, "nvt", mdp_text(
        dt="0.005", nsteps="1000", nstlog="10", nstcalcenergy="10", nstenergy="10",
        ref_t="3000", gen_temp="3000", verlet_buffer_tolerance="-1", rlist="0.95",
        nstlist="50"), cpt_minutes=0.0, maxwarn=1)
    p = job.run(work)
    handler = BlowUpHandler("nvt", stall_s=None)
    t0 = time.monotonic()
    while not handler.check(work):
        assert p.poll() is None, "mdrun ended instead of hanging"
        assert time.monotonic() - t0 < 60, "no blow-up seen"
        time.sleep(0.1)
    job.terminate(work)
    assert load_state(work, "nvt").returncode == -signal.SIGKILL
    _keep("blowup_hang_checkpoint", work,
          ["nvt.mdp", "nvt.log", "nvt.mdrun.out", "nvt.gmxjob.json", "nvt.cpt", "nvt_prev.cpt"])

    work = _workdir()
    job = _job(work, "nvt", mdp_text(
        dt="0.08", nsteps="200", nstlog="50", nstcalcenergy="10", nstenergy="50",
        constraints="all-bonds",
        ref_t="1000", gen_temp="1000", verlet_buffer_tolerance="-1", rlist="0.95"), maxwarn=2)
    rc = _run_to_end(job, work)
    assert rc == 0, rc
    assert "LINCS WARNING" in (work / "nvt.mdrun.out").read_text()
    _keep("lincs_warnings", work, ["nvt.mdp", "nvt.log", "nvt.mdrun.out", "nvt.gmxjob.json"])

    work = _workdir("coincident.gro")
    job = _job(work, "em", mdp_text(EM_MDP))
    rc = _run_to_end(job, work)
    assert rc == 1, rc
    _keep("em_nonfinite", work, ["em.mdp", "em.log", "em.mdrun.out", "em.gmxjob.json"])


def interruption_cases() -> None:
    work = _workdir()
    job = _job(work, "nvt", mdp_text(nsteps="20000", nstlog="500", nstenergy="500",
                                     nstcalcenergy="100", nstxout_compressed="2000"),
               cpt_minutes=0.002)
    p = job.run(work)
    t0 = time.monotonic()
    log = work / "nvt.log"
    while not log.exists() or log.read_text().count("Writing checkpoint") < 2:
        assert p.poll() is None, "run ended before its second checkpoint"
        assert time.monotonic() - t0 < 60
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    _keep("killed_with_checkpoint", work,
          ["nvt.mdp", "conf.gro", "topol.top", "nvt.tpr", "nvt.log", "nvt.edr", "nvt.xtc",
           "nvt.cpt", "nvt_prev.cpt", "nvt.mdrun.out", "nvt.gmxjob.json"])

    work = _workdir()
    job = _job(work, "nvt", mdp_text(nsteps="500000", nstlog="1000", nstenergy="1000"),
               maxh=0.0001)
    rc = _run_to_end(job, work)
    assert rc == 0, rc
    _keep("maxh_stop", work,
          ["nvt.mdp", "nvt.log", "nvt.mdrun.out", "nvt.gmxjob.json", "nvt.cpt", "nvt.tpr"])

    work = _workdir()
    job = _job(work, "nvt", mdp_text(nsteps="500"))
    assert _run_to_end(job, work) == 0
    job.postprocess(work)
    _keep("complete_nvt", work,
          ["nvt.mdp", "nvt.log", "nvt.edr", "nvt.gro", "nvt.mdrun.out", "nvt.gmxjob.json"])


def main() -> None:
    write_system(SYSTEM)
    grompp_cases()
    blowup_cases()
    interruption_cases()


if __name__ == "__main__":
    sys.exit(main())
