"""Run a ``pair_style table`` snippet written by cgflow in a plain LAMMPS input (tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_snippet_in_plain_lammps(snippet: str, workdir: Path, *, nve: bool = True) -> str:
    """A 125-bead simple cubic box (edge 35 A) with the snippet's pair style, 50 NVE steps of
    5 fs in ``workdir`` (where the snippet's table file must be); returns the log text and
    fails the calling test on any LAMMPS error. ``nve=False``: the snippet brings its own
    integrator (a thermostat snippet)."""
    (workdir / "in.test").write_text(
        "units real\natom_style atomic\nboundary p p p\n"
        "lattice sc 7.0\nregion box block 0 5 0 5 0 5\ncreate_box 1 box\n"
        "create_atoms 1 box\nmass 1 114.23\n"
        + "\n".join(line for line in snippet.splitlines() if not line.startswith("#"))
        + "\nvelocity all create 298.15 1\n" + ("fix 1 all nve\n" if nve else "")
        + "timestep 5.0\nthermo 10\nrun 50\n")
    r = subprocess.run(["lmp", "-in", "in.test", "-log", "log.test", "-nocite"],  # noqa: S607
                       cwd=workdir, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    log = (workdir / "log.test").read_text()
    assert "Total wall time" in log and "ERROR" not in log
    return log
