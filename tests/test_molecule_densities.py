"""The results file of ``benchmarks/molecule_densities.py`` (no GROMACS: the all-atom run
replaced by a fixed row): ``--only`` adds or replaces the molecules it runs and keeps the
others."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import molecule_densities  # noqa: E402


def fake_row(entry: Any, density: float) -> dict[str, Any]:
    """A density row as :func:`molecule_densities.run_molecule` returns it."""
    return molecule_densities.compare({
        "molecule": entry.name, "smiles": "C", "atoms_per_molecule": 5, "n_molecules": 1,
        "temperature_k": entry.density.temperature_k, "pressure_bar": 1.0,
        "density_kg_m3": density, "density_err_kg_m3": 1.0, "wall_s": 60.0,
        "started_utc": "2026-01-01 00:00", "finished_utc": "2026-01-01 00:01",
        "load_before": [1.0, 1.0, 1.0], "load_after": [1.0, 1.0, 1.0]}, entry)


def test_only_merges_into_the_results(tmp_path, monkeypatch):
    ran: list[str] = []

    def run(entry, preset_name, threads, work):
        ran.append(entry.name)
        return fake_row(entry, 500.0 + len(ran))

    monkeypatch.setattr(molecule_densities, "run_molecule", run)
    out = tmp_path / "densities.json"
    names = [e.name for e in molecule_densities.molecule_order(
        molecule_densities.registry())]
    a, b, c = names[:3]
    assert molecule_densities.main(["--out", str(out), "--only", a, b]) == 0
    assert molecule_densities.main(["--out", str(out), "--only", c]) == 0
    results = json.loads(out.read_text())
    assert ran == [a, b, c]
    assert [r["molecule"] for r in results["molecules"]] == [a, b, c]
    assert results["order"] == names and results["n_registry"] == len(names)
    assert results["left"] == names[3:]
    assert results["molecules"][2]["run"]["command"].endswith(f"--only {c}")

    # a molecule already there is skipped, and replaced (only it) with --redo
    assert molecule_densities.main(["--out", str(out), "--only", a]) == 0
    assert ran == [a, b, c]
    assert molecule_densities.main(["--out", str(out), "--only", a, "--redo"]) == 0
    rows = {r["molecule"]: r for r in json.loads(out.read_text())["molecules"]}
    assert ran == [a, b, c, a] and set(rows) == {a, b, c}
    assert rows[a]["density_kg_m3"] == 504.0 and rows[b]["density_kg_m3"] == 502.0
    text = out.with_suffix(".md").read_text()
    assert f"3 of {len(names)} molecules done" in text and out.with_suffix(".png").exists()
