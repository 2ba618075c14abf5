"""``cgflow dataset export | merge``: a campaign's stored results as files others can learn
from, and several such folders merged into one.

Writes, for one campaign, into a folder:

``dataset.npz``
    The training table (:class:`cgflow.ml.dataset.CampaignDataset`) of the converged
    sets: parameters (19 columns, :data:`cgflow.params.FIELDS` order, GROMACS units),
    the converged IBI potential on one common grid (kJ/mol, r in nm), the target RDF on
    that grid, D_AA, D_CG (nm^2/ps) and alpha with their standard errors.
    ``CampaignDataset.load_npz`` reads it back.
``sets.json``
    One row per parameter set of the campaign, converged or not: its molecule (name and
    canonical SMILES; the set's id includes it), its parameters, the
    all-atom results (density, pressure, D_AA with error), the IBI outcome (converged,
    reason, iterations, final RDF deviation and pressure deviation) and the CG results
    (D_CG, alpha). Unconverged and failed sets are kept here with their reasons, so a
    reader sees what the dataset left out and why.

The folder is self-describing; the training, the tests and the benchmarks read it without
a database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from cgflow.errors import InvalidInputError


class NothingToExportError(InvalidInputError):
    """The campaign has no parameter sets or no converged potential yet: nothing to
    export (``cgflow launch --export-to`` tries again when a set finishes)."""


def _estimate(est: Any) -> dict[str, float | None] | None:
    return None if est is None else {"mean": est.mean, "err": est.err}


def set_rows(store: Any, campaign: str, preset: str | None = None) -> list[dict[str, Any]]:
    """One row per parameter set of ``campaign``, its own and reused ones (see the module
    docstring and :func:`cgflow.db.views.campaign_sets`)."""
    from cgflow.db.views import campaign_sets, one_per_parameter_set

    rows = []
    for view in one_per_parameter_set(campaign_sets(store, campaign, preset)):
        row: dict[str, Any] = {"param_id": view.param_id, "molecule": view.molecule,
                               "smiles": view.molecule_smiles, "params": view.params}
        aa = view.aa_run
        row["aa_status"] = aa.status if aa is not None else "not run"
        if aa is not None and aa.error:
            row["aa_error"] = aa.error
        if aa is not None and aa.results is not None:
            r = aa.results
            row.update({
                "preset": aa.preset,
                "density_kg_m3": r.density_kg_m3, "density_err_kg_m3": r.density_err_kg_m3,
                "pressure_bar": r.pressure_bar, "pressure_err_bar": r.pressure_err_bar,
                "d_aa": r.diffusion.d_nm2_ps, "d_aa_err": r.diffusion.d_err_nm2_ps,
                "aa_wall_s": aa.total_wall_s,
            })
        pot = view.potential
        if pot is not None:
            best = view.best_metrics
            row.update({
                "ibi_converged": pot.converged, "ibi_reason": pot.reason,
                "ibi_iterations": pot.n_iterations, "ibi_best_iteration": pot.best_iteration,
                "rdf_deviation": best.get("rdf_deviation"),
                "pressure_deviation_bar": best.get("pressure_deviation_bar"),
            })
            cg = view.cg_run
            if cg is not None:
                row.update({"cg_status": cg.status, "d_cg": _estimate(cg.d_cg_nm2_ps),
                            "alpha": _estimate(cg.alpha)})
        rows.append(row)
    return rows


def export_campaign(store: Any, campaign: str, out_dir: str | Path,
                    preset: str | None = None) -> dict[str, Any]:
    """Write ``dataset.npz`` and ``sets.json`` of ``campaign`` into ``out_dir``.

    Returns
    -------
    dict
        ``n_sets`` (all), ``n_converged`` (rows of the dataset), ``files``, ``dataset_hash``.

    Raises
    ------
    NothingToExportError
        When the campaign has no parameter sets or no converged potential (nothing is
        written).
    """
    from cgflow.ml.dataset import CampaignDataset
    from cgflow.stages.train import common_grid, training_records

    if preset is not None:
        from cgflow.presets import get_cg_preset

        get_cg_preset(preset)  # an unknown name is an error naming it
    rows = set_rows(store, campaign, preset)
    if not rows:
        raise NothingToExportError(f"campaign {campaign!r}: no parameter sets in the "
                                   "database")
    records = training_records(store, campaign, preset)
    if not records:
        raise NothingToExportError(f"campaign {campaign!r}: no converged potential to export "
                                f"({len(rows)} parameter sets)")
    ds = CampaignDataset.from_records(records, common_grid(records), campaign=campaign)
    summary = {
        "campaign": campaign, "preset": preset, "n_sets": len(rows),
        "n_converged": len(ds), "n_with_alpha": int(np.isfinite(ds.alpha).sum()),
        "dataset_hash": ds.content_hash(), "units": {
            "params": "GROMACS (nm, kJ/mol, degrees)", "D": "nm^2/ps",
            "density": "kg/m^3", "pressure": "bar"},
        "sets": rows,
    }
    text = json.dumps(summary, indent=1, default=float) + "\n"  # all checks before writing
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # each file written beside itself, flushed to disk and moved into place: a stop
    # while exporting (``cgflow launch --export-to`` exports while the campaign runs)
    # leaves complete files, never a half-written one. A stop between the two moves
    # leaves the new dataset.npz beside the previous sets.json: sets.json names its
    # dataset's hash, so a merge refuses that pair, and the next export repairs it.
    npz, sets_file = out / "dataset.npz", out / "sets.json"
    tmp_npz, tmp_sets = out / ".dataset.npz.partial.npz", out / ".sets.json.partial"
    try:
        ds.save_npz(tmp_npz)
        tmp_sets.write_text(text)
        for f in (tmp_npz, tmp_sets):
            _fsync(f)
        os.replace(tmp_npz, npz)
        os.replace(tmp_sets, sets_file)
        _fsync(out)
    finally:
        for f in (tmp_npz, tmp_sets):
            f.unlink(missing_ok=True)
    return {"n_sets": len(rows), "n_converged": len(ds), "files": [str(npz), str(sets_file)],
            "dataset_hash": summary["dataset_hash"]}


def finished_in_exports(dirs: list[str | Path], campaign: str, preset: str | None,
                        cg_stage: bool) -> set[str]:
    """Ids of the sets that finished in exports of ``campaign`` (folders written by
    :func:`export_campaign`, e.g. by ``cgflow launch --export-to`` of a chunk that was
    stopped part-way): what ``cgflow campaign submit --skip-finished-in`` leaves out, so
    that a stopped chunk is resumed with only the sets it did not finish.

    A set finished when its all-atom run failed or its IBI ended, converged or not
    (without the CG stage: when its all-atom run completed). The rule matches what the
    export holds: a converged set is a row of its ``dataset.npz``, so running it again
    would put it in two parts of a merge. *Approximation:* a converged set whose CG
    production (or friction calibration) had not ended at the export keeps no alpha
    (a NaN in the dataset) and is not run again. Sets under way before the end of IBI
    (an all-atom run running, IBI iterating, an IBI Firework that failed without
    storing a potential) run again.

    Raises
    ------
    InvalidInputError
        A folder without ``sets.json``, a malformed one, or one of another campaign or
        CG preset (naming the folder, the field and both values).
    """

    done: set[str] = set()
    for d in dirs:
        sets_file = Path(d) / "sets.json"
        summary = _read_summary(sets_file, "--skip-finished-in")
        if summary.get("campaign") != campaign:
            raise InvalidInputError(
                f"--skip-finished-in: {sets_file}: field 'campaign': value "
                f"{summary.get('campaign')!r}: not the campaign submitted ({campaign!r})")
        if summary.get("preset") is not None and summary["preset"] != preset:
            raise InvalidInputError(
                f"--skip-finished-in: {sets_file}: field 'preset': value "
                f"{summary['preset']!r}: not the campaign's CG preset ({preset!r})")
        for row in summary["sets"]:
            aa = row.get("aa_status")
            finished = (aa == "failed" or row.get("ibi_converged") in (True, False)
                        or (not cg_stage and aa == "completed"))
            if finished and isinstance(row.get("param_id"), str):
                done.add(row["param_id"])
    return done


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; a folder that cannot be opened for
    it (some file systems) is left to the system."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if path.is_dir():
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def _require_export_file(path: Path, what: str) -> None:
    if not path.exists():  # not a regular file: said by the reader
        raise InvalidInputError(f"{what}: {path} is missing: no such file (expected a "
                                "folder written by 'cgflow dataset export' or 'cgflow "
                                "launch --export-to')")


def _read_summary(path: Path, what: str) -> dict[str, Any]:
    """An export's ``sets.json``, read safely and checked (:func:`_check_summary`)."""
    from cgflow.userfiles import read_json_mapping

    _require_export_file(path, what)
    summary = read_json_mapping(path, f"{what}: sets file")
    _check_summary(summary, path, what)
    return summary


def _check_summary(summary: dict[str, Any], path: Path, what: str = "dataset merge") -> None:
    """The fields of an export's ``sets.json`` that a merge reads, checked: ``sets`` a
    list of mappings, ``dataset_hash`` text, ``campaign`` text (if given)."""
    source = f"{what}: sets file {path}"
    sets = summary.get("sets")
    if not isinstance(sets, list) or not all(isinstance(r, dict) for r in sets):
        raise InvalidInputError(f"{source}: field 'sets': value {str(sets)[:80]!r}: expected "
                                "a list of mappings (one per parameter set)")
    for key in ("dataset_hash", "campaign"):
        value = summary.get(key)
        if key == "dataset_hash" and value is None:
            raise InvalidInputError(f"{source}: field 'dataset_hash': missing (required)")
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"{source}: field {key!r}: value {value!r}: expected text")


def merge_exports(dirs: list[str | Path], out_dir: str | Path,
                  name: str | None = None) -> dict[str, Any]:
    """Merge folders written by :func:`export_campaign` into one.

    ``dataset.npz`` holds the rows of every part on one grid
    (:meth:`cgflow.ml.dataset.CampaignDataset.concatenate`); ``sets.json`` lists every
    set with the campaign it came from, and under ``sources`` each part's campaign,
    preset, counts and dataset hash, so a merged dataset can be traced to its campaigns.

    Raises
    ------
    InvalidInputError
        When fewer than two folders are given, a folder lacks its files, the parts were
        made with different presets or units, or a set is in two parts; nothing is
        written then.
    """
    from cgflow.ml.dataset import CampaignDataset

    if len(dirs) < 2:
        raise InvalidInputError(f"dataset merge: need at least two export folders, got "
                                f"{len(dirs)}")
    parts, summaries = [], []
    for d in dirs:
        d = Path(d)
        npz, sets_file = d / "dataset.npz", d / "sets.json"
        _require_export_file(npz, "dataset merge")
        summary = _read_summary(sets_file, "dataset merge")
        ds = CampaignDataset.load_npz(npz)
        if summary.get("dataset_hash") != ds.content_hash():
            raise InvalidInputError(f"dataset merge: {npz} does not match the dataset_hash "
                                    f"of {sets_file}")
        parts.append(ds)
        summaries.append(summary)
    for key in ("preset", "units"):
        values = [s.get(key) for s in summaries]
        if any(v != values[0] for v in values):
            raise InvalidInputError(f"dataset merge: field {key!r} differs between the "
                                    f"parts: {values}")
    merged = CampaignDataset.concatenate(parts, campaign=name)
    rows = [{"campaign": s.get("campaign"), **row} for s in summaries for row in s["sets"]]
    summary = {
        "campaign": merged.campaign, "preset": summaries[0].get("preset"),
        "n_sets": len(rows), "n_converged": len(merged),
        "n_with_alpha": int(np.isfinite(merged.alpha).sum()),
        "dataset_hash": merged.content_hash(), "units": summaries[0].get("units"),
        "sources": [{"campaign": s.get("campaign"), "folder": Path(d).name,
                     "n_sets": s.get("n_sets"), "n_converged": s.get("n_converged"),
                     "dataset_hash": s.get("dataset_hash")}
                    for s, d in zip(summaries, dirs, strict=True)],
        "sets": rows,
    }
    text = json.dumps(summary, indent=1, default=float) + "\n"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    npz = merged.save_npz(out / "dataset.npz")
    sets_file = out / "sets.json"
    sets_file.write_text(text)
    return {"n_sets": len(rows), "n_converged": len(merged),
            "files": [str(npz), str(sets_file)], "dataset_hash": summary["dataset_hash"],
            "campaign": merged.campaign}
