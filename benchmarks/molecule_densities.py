"""Density of every registry liquid with the OPLS-AA reference parameters, against experiment.

What is measured
----------------
For each molecule of the registry (:mod:`cgflow.molecule.registry`), the all-atom stage of
the OPLS-AA reference parameters (:data:`cgflow.params.OPLSAA_REFERENCE`) with the
``demo`` preset at the molecule's own state point, run by the same functions the
all-atom Fireworks call (:mod:`cgflow.stages.aa`: ``build``, ``equilibrate``,
``produce``, ``analyse``; no FireWorks, no database). The preset is the one a campaign
of that molecule would run (:attr:`cgflow.orchestration.campaign.CampaignSpec.aa_preset`:
the molecule's temperature and pressure), with one GROMACS thread by default so the
benchmark can run beside other work.

Per molecule: the production's mean density with its block-average standard error (5
blocks, :func:`cgflow.analysis.energy_averages`), the registry's experimental value, the
relative deviation (goal: within 5 %), the registry's ``certain`` flag and the offset
between the state point and the temperature of the experimental value.

Approximation: where the experimental density is at another temperature than the state
point (the CRC values at 20 C against runs at 25 C), the deviation is also given against
the experimental value moved to the state point with a thermal expansion of
:data:`EXPANSION_PER_K` (about 0.12 % per K for these liquids, as registry.yaml says; not
a measured coefficient of each liquid). The verdict is on the plain deviation.

Order: the molecules whose experimental value the registry marks certain first, each
group smallest first (fewest atoms, then the registry's order), the default
2,3,4-trimethylpentane last, since the demo measures it already. Results are written
after every molecule to ``benchmarks/results/molecule_densities.{json,md,png}``; a rerun
skips the molecules already there (``--redo`` to run them again), ``--only`` runs some
and keeps the others' results. Each molecule's row records its own run (time, command,
threads, niceness, load), so the table's header says how each was made. The comparison
is made again from the registry at every write (``--table``: only that), so a corrected
experimental value is compared without running again.

Run::

    nohup nice -n 19 .venv/bin/python benchmarks/molecule_densities.py > /tmp/dens.log 2>&1 &
    nice -n 19 .venv/bin/python benchmarks/molecule_densities.py --threads 2 --only neopentane
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import cpu_model, load_average, write_results

from cgflow.molecule.registry import DEFAULT_MOLECULE, MoleculeEntry, registry
from cgflow.orchestration.campaign import CampaignSpec
from cgflow.params import OPLSAA_REFERENCE
from cgflow.stages import aa

OUT = Path(__file__).resolve().parent / "results" / "molecule_densities.json"
#: Goal: |simulated / experimental - 1| at most this (relative).
GOAL_REL = 0.05
#: Thermal expansion used to move an experimental density to the state point, 1/K (an
#: approximation for these liquids, see the module docstring).
EXPANSION_PER_K = 0.0012


def molecule_order(entries: tuple[MoleculeEntry, ...]) -> list[MoleculeEntry]:
    """Registry entries with a certain experimental value first, each group smallest first
    (atoms per molecule, then file order), the default molecule last."""
    campaign = {e.name: CampaignSpec(name="density", molecule=e.name) for e in entries}
    index = {e.name: i for i, e in enumerate(entries)}
    return sorted(entries, key=lambda e: (e.name == DEFAULT_MOLECULE, not e.density.certain,
                                          campaign[e.name].molecule.molecule.n_atoms,
                                          index[e.name]))


def utc_now() -> str:
    """The time now, UTC, to the minute."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M")


def run_molecule(entry: MoleculeEntry, preset_name: str, threads: int,
                 work: Path) -> dict[str, Any]:
    """The all-atom stage of the OPLS-AA reference on one molecule and its density row
    (without its run record, see :func:`main`)."""
    spec = CampaignSpec(name="density", molecule=entry.name, preset=preset_name,
                        threads=threads)
    preset = spec.aa_preset
    mol = spec.molecule
    run_dir = work / entry.residue
    if run_dir.exists():
        shutil.rmtree(run_dir)
    load0 = load_average()
    started = utc_now()
    t0 = time.perf_counter()
    reports = aa.build(run_dir, OPLSAA_REFERENCE, preset, molecule=mol)
    reports += aa.equilibrate(run_dir, OPLSAA_REFERENCE, preset)
    reports += aa.produce(run_dir, OPLSAA_REFERENCE, preset)
    res = aa.analyse(run_dir, preset)
    wall = time.perf_counter() - t0
    row = {
        "molecule": entry.name, "smiles": mol.smiles,
        "atoms_per_molecule": mol.molecule.n_atoms,
        "n_molecules": res.n_molecules,
        "temperature_k": mol.temperature_k, "pressure_bar": mol.pressure_bar,
        "simulated_temperature_k": res.temperature_k,
        "simulated_pressure_bar": res.pressure_bar,
        "density_kg_m3": res.density_kg_m3, "density_err_kg_m3": res.density_err_kg_m3,
        "production_ps": res.production_ps,
        "wall_s": wall, "started_utc": started, "finished_utc": utc_now(),
        "stage_wall_s": {r.stage: r.wall_s for r in reports},
        "load_before": load0, "load_after": load_average(),
    }
    return compare(row, entry)


def compare(row: dict[str, Any], entry: MoleculeEntry) -> dict[str, Any]:
    """``row`` (a simulated density at the molecule's state point) with the comparison
    against the registry entry's experimental value (replacing an earlier one: the
    registry may have been corrected since the run)."""
    exp = entry.density
    rho = row["density_kg_m3"]
    offset = row["temperature_k"] - exp.temperature_k
    exp_at_state = exp.value_kg_m3 * (1.0 - EXPANSION_PER_K * offset)
    dev = rho / exp.value_kg_m3 - 1.0
    return dict(
        row,
        experimental_kg_m3=exp.value_kg_m3,
        experimental_temperature_k=exp.temperature_k,
        experimental_pressure_bar=exp.pressure_bar,
        experimental_source=exp.source, experimental_url=getattr(exp, "url", None),
        certain=exp.certain,
        temperature_offset_k=offset,
        deviation_rel=dev,
        experimental_at_state_point_kg_m3=exp_at_state if offset else None,
        deviation_at_state_point_rel=(rho / exp_at_state - 1.0) if offset else None,
        within_goal=abs(dev) <= GOAL_REL,
    )


def run_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One Markdown list item per run: its time, command, GROMACS threads and the 1-minute
    load average before and after (the machine is shared)."""
    lines = []
    for r in sorted(rows, key=lambda r: r["run"]["utc"]):
        run = r["run"]
        when = run["utc"]
        lines.append(
            f"- {r['molecule']}: {when} UTC, `{run['command']}`, "
            f"{run['threads']} GROMACS thread{'s' if run['threads'] != 1 else ''}, "
            f"load (1 min) {r['load_before'][0]:.1f} before, {r['load_after'][0]:.1f} after")
    return lines


def merge(previous: dict[str, Any] | None, preset: str,
          order: list[MoleculeEntry]) -> dict[str, dict[str, Any]]:
    """The rows of an earlier results file to keep, by molecule: all of them if it was
    made with the same preset, of the registry's molecules (``order``), else none."""
    if not previous or previous.get("preset") != preset:
        return {}
    names = {e.name for e in order}
    return {r["molecule"]: r for r in previous.get("molecules", []) if r["molecule"] in names}


def summary(done: dict[str, dict[str, Any]], order: list[MoleculeEntry], *, preset: str,
            command: str) -> dict[str, Any]:
    """The results of all molecules in ``done`` (compared with the registry again), in the
    registry's ``order`` (all of its molecules, whichever were run this time)."""
    entries = {e.name: e for e in order}
    rows = [compare(done[e.name], entries[e.name]) for e in order if e.name in done]
    return {
        "date": utc_now() + " UTC",
        "command": command, "preset": preset,
        "machine": {"cpu": cpu_model()}, "goal_rel": GOAL_REL,
        "expansion_per_k": EXPANSION_PER_K,
        "n_registry": len(order), "order": [e.name for e in order],
        "left": [e.name for e in order if e.name not in done],
        "molecules": rows,
    }


def this_command(argv: list[str]) -> str:
    """The command line of this process as run from the project's root, with its niceness
    (``nice -n N`` when not 0)."""
    niceness = os.nice(0)
    return ((f"nice -n {niceness} " if niceness else "")
            + ".venv/bin/python benchmarks/molecule_densities.py"
            + (" " + shlex.join(argv) if argv else ""))


def markdown(results: dict[str, Any]) -> str:
    """The summary table."""
    rows = results["molecules"]
    lines = [
        "# Reference densities of the registry liquids (OPLS-AA, preset demo)",
        "",
        f"Runs on {results['machine']['cpu']}, one molecule each (the runs below); "
        f"table written {results['date']} by `{results['command']}`.",
        f"{len(rows)} of {results['n_registry']} molecules done"
        + (f"; left: {', '.join(results['left'])}." if results["left"] else "."),
        "",
        *run_lines(rows),
        "",
        "Simulated: mean density of the NPT production with its block-average standard "
        "error (5 blocks). Experimental: the registry's value (registry.yaml, its source "
        "and `certain` flag). Goal: within 5 %. dT = state point minus the temperature "
        "of the experimental value; where it is not 0, the last column compares with the "
        f"experimental value moved to the state point at {EXPANSION_PER_K * 100:.2f} % "
        "per K (an approximate expansion, not each liquid's own).",
        "",
        "| molecule | atoms | T (K) | p (bar) | simulated (kg/m^3) | experimental (kg/m^3) "
        "| certain | dT (K) | deviation | within 5 % | deviation at T (approx.) | wall (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        at_t = r["deviation_at_state_point_rel"]
        lines.append(
            f"| {r['molecule']} | {r['atoms_per_molecule']} | {r['temperature_k']:.2f} "
            f"| {r['pressure_bar']:g} | {r['density_kg_m3']:.1f} +- "
            f"{r['density_err_kg_m3']:.1f} | {r['experimental_kg_m3']:.1f} "
            f"| {'yes' if r['certain'] else 'no'} | {r['temperature_offset_k']:+.1f} "
            f"| {r['deviation_rel'] * 100:+.2f} % | {'yes' if r['within_goal'] else 'NO'} "
            f"| {'' if at_t is None else f'{at_t * 100:+.2f} %'} | {r['wall_s'] / 60:.1f} |")
    if rows:
        n_ok = sum(r["within_goal"] for r in rows)
        worst = max(rows, key=lambda r: abs(r["deviation_rel"]))
        lines += ["", f"Within 5 %: {n_ok} of {len(rows)}; largest deviation "
                  f"{worst['deviation_rel'] * 100:+.2f} % ({worst['molecule']})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="demo")
    p.add_argument("--threads", type=int, default=1, help="GROMACS threads (default 1)")
    p.add_argument("--work", type=Path, default=Path("/tmp/cgflow-molecule-densities"),
                   help="run directories (one per molecule, replaced when it runs)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--only", nargs="*", help="registry names to run (default all)")
    p.add_argument("--redo", action="store_true", help="run molecules already in --out")
    p.add_argument("--table", action="store_true",
                   help="run nothing: compare the stored densities with the registry again "
                   "and rewrite the table and figure")
    args = p.parse_args(argv)

    argv = sys.argv[1:] if argv is None else argv
    order = molecule_order(registry())
    known = {e.name for e in order}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        p.error(f"not in the registry: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    to_run = [e for e in order if not args.only or e.name in set(args.only)]
    done = merge(json.loads(args.out.read_text()) if args.out.exists() else None,
                 args.preset, order)
    command = this_command(argv)

    def save() -> None:
        results = summary(done, order, preset=args.preset, command=command)
        write_results(args.out, results, markdown(results),
                      figure="molecule_densities" if done else None)

    if args.table:
        save()
        return 0
    for entry in to_run:
        if entry.name in done and not args.redo:
            print(f"{entry.name}: done already", flush=True)
            continue
        print(f"{entry.name}: running ({datetime.now(UTC):%H:%M:%S} UTC)", flush=True)
        row = run_molecule(entry, args.preset, args.threads, args.work)
        started, finished = row.pop("started_utc"), row.pop("finished_utc")
        row["run"] = {"utc": f"{started}-{finished[-5:]}",
                      "command": command, "threads": args.threads, "nice": os.nice(0)}
        done[entry.name] = row
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
