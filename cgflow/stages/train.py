"""The training stage of a campaign: its models trained from the stored results.

It reads the converged sets of a campaign from the database (:func:`training_records`,
through :func:`cgflow.db.views.campaign_sets`: the campaign's own sets and those it
reused from an earlier campaign), trains the structure-preserving, dynamics-preserving
and acceleration-factor models and, with enough calibrated sets, the friction model
(:func:`cgflow.ml.training.train_all`) and stores them:
weights in GridFS, metadata (campaign, data hash, number of sets, metrics, library
versions) in the ``models`` collection. A campaign with too few converged sets stores a
``status`` document with a clear message instead of a meaningless model.

Nothing here knows of FireWorks: the campaign's final Firework
(:class:`cgflow.orchestration.firetasks.train.TrainModelsTask`) and ``cgflow models
train`` call :func:`train_campaign_models` with a store.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from cgflow import __version__
from cgflow.db.store import Store
from cgflow.db.views import campaign_sets

#: Name of the document that records why a campaign has no models.
STATUS_MODEL = "training-status"


def training_records(store: Store, campaign: str, preset: str | None = None
                     ) -> list[dict[str, Any]]:
    """One record per converged set of ``campaign`` (see
    :meth:`cgflow.ml.dataset.CampaignDataset.from_records`).

    The sets are those of :func:`cgflow.db.views.campaign_sets`: the campaign's own and
    those whose results it reused from an earlier campaign (a stored potential is kept
    once per set and preset, under the campaign that made it). Records are in the order
    the potentials were stored, oldest first. A set with a converged friction
    calibration has its gamma (``friction``, ``friction_err``, 1/ps).
    """
    found = [(v.potential, v) for v in campaign_sets(store, campaign, preset, converged=True)
             if v.parameter_set is not None and v.potential is not None]
    found.sort(key=lambda pv: (pv[0].created_at, pv[0].id or ""))
    records = []
    for pot, v in found:
        cg = v.cg_run
        r = np.asarray(pot.potential.r_nm, float)
        rec: dict[str, Any] = {
            "param_id": v.param_id, "params": v.params, "molecule": v.molecule_smiles,
            "r_nm": r.tolist(), "u_kj_mol": list(pot.potential.u_kj_mol),
            # the target RDF on the potential's grid (its own bins are finer or coarser)
            "g_target": np.interp(r, pot.target_rdf.r_nm, pot.target_rdf.g).tolist(),
        }
        if v.gamma is not None:  # a converged friction calibration
            rec.update({"friction": v.gamma, "friction_err": v.gamma_err})
        if cg is not None and cg.alpha is not None:
            rec.update({
                "d_aa": cg.d_aa_nm2_ps.mean if cg.d_aa_nm2_ps else None,
                "d_aa_err": cg.d_aa_nm2_ps.err if cg.d_aa_nm2_ps else None,
                "d_cg": cg.d_cg_nm2_ps.mean if cg.d_cg_nm2_ps else None,
                "d_cg_err": cg.d_cg_nm2_ps.err if cg.d_cg_nm2_ps else None,
                "alpha": cg.alpha.mean, "alpha_err": cg.alpha.err,
            })
        records.append(rec)
    return records


def aa_target_records(store: Store, campaign: str, preset: str | None = None
                      ) -> list[dict[str, Any]]:
    """One record per set of ``campaign`` with a completed all-atom run, converged or not
    (see :meth:`cgflow.ml.rdf_model.AATargets.from_records`): its centre-of-mass RDF,
    density and pressure with their errors. A set run with several presets appears once
    (its first)."""
    records, seen = [], set()
    for v in campaign_sets(store, campaign, preset):
        aa = v.aa_run
        if (v.param_id in seen or v.parameter_set is None or aa is None
                or aa.status != "completed" or aa.results is None):
            continue
        seen.add(v.param_id)
        res = aa.results
        records.append({
            "param_id": v.param_id, "params": v.params, "molecule": v.molecule_smiles,
            "r_nm": res.rdf.r_nm, "g": res.rdf.g,
            "density_kg_m3": res.density_kg_m3, "density_err_kg_m3": res.density_err_kg_m3,
            "pressure_bar": res.pressure_bar, "pressure_err_bar": res.pressure_err_bar})
    return records


def common_grid(records: list[dict[str, Any]], dr_nm: float = 0.01) -> np.ndarray:
    """The r grid of a campaign's potentials: from the largest first point (the short-range
    wall cannot be invented) to the largest cutoff (beyond its own cutoff a potential is
    exactly zero, so a set with a shorter cutoff is extended with zeros, not the others
    truncated)."""
    lo = max(r["r_nm"][0] for r in records)
    hi = max(r["r_nm"][-1] for r in records)
    n = int(np.floor((hi - lo) / dr_nm + 1e-6)) + 1
    return lo + dr_nm * np.arange(n)


def library_versions() -> dict[str, str]:
    """Versions of the libraries the models depend on."""
    import sklearn
    import torch

    return {"cgflow": __version__, "torch": torch.__version__, "scikit-learn": sklearn.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def train_campaign_models(store: Store, campaign: str, preset: str | None = None,
                          seed: int = 0, dataset: Any = None) -> dict[str, Any]:
    """Train and store the models of ``campaign``; returns a summary.

    The data are the campaign's converged sets in the database or, with ``dataset`` (a
    :class:`cgflow.ml.dataset.CampaignDataset` or the path of an exported
    ``dataset.npz``), that dataset; the models are stored under ``campaign`` either way.
    Too few converged sets: a ``training-status`` document with the message is stored
    (and any earlier status replaced), no models.
    """
    from cgflow.ml.dataset import CampaignDataset
    from cgflow.ml.rdf_model import AATargets
    from cgflow.ml.training import MIN_SETS_TO_TRAIN, InsufficientDataError, save_models, train_all

    if preset is not None:
        from cgflow.presets import get_cg_preset

        get_cg_preset(preset)  # an unknown name is an error naming it, not "0 sets"
    source = "database"
    export_folder = None
    if dataset is not None:
        if not isinstance(dataset, CampaignDataset):
            source = str(dataset)
            export_folder = Path(dataset).parent
            dataset = CampaignDataset.load_npz(dataset)
        else:
            source = f"dataset {dataset.campaign!r}"
        records = None
        n_found = len(dataset)
    else:
        records = training_records(store, campaign, preset)
        n_found = len(records)
    try:
        if n_found < MIN_SETS_TO_TRAIN:
            raise InsufficientDataError(
                f"campaign {campaign!r} has {n_found} converged parameter sets; training "
                f"needs at least {MIN_SETS_TO_TRAIN}")
        ds = dataset if records is None else CampaignDataset.from_records(
            records, common_grid(records), campaign=campaign)
        # the RDF model learns from every all-atom run, converged or not: those stored, or
        # those the sets.json of a dataset file's export folder lists (else train_all
        # takes the converged sets' RDFs)
        aa = None
        if records is not None:
            aa_records = aa_target_records(store, campaign, preset)
            if aa_records:
                aa = AATargets.from_records(aa_records, ds.r_nm, campaign=campaign)
        elif export_folder is not None and (export_folder / "sets.json").is_file():
            aa = AATargets.from_export(export_folder)
        report = train_all(ds, seed=seed, aa_targets=aa)
    except InsufficientDataError as exc:
        store.save_model({"name": STATUS_MODEL, "campaign": campaign, "kind": "status",
                          "metadata": {"status": "insufficient_data", "message": str(exc),
                                       "n_sets": n_found}})
        return {"status": "insufficient_data", "message": str(exc)}
    meta = {"status": "trained", "dataset_hash": report.dataset_hash, "n_sets": report.n_sets,
            "n_pairs": report.n_pairs, "cv_mean": report.cv_mean, "test": report.test,
            "versions": library_versions(), "preset": preset, "data_source": source,
            "friction_model": report.models.metadata.get("friction_model")}
    blobs = save_models(report)
    for name, blob in blobs.items():
        store.save_model({"name": name, "campaign": campaign, "kind": name,
                          "metadata": meta}, blob)
    for old in store.models(campaign=campaign):  # e.g. a dynamics model this data lacks
        if old.kind != "status" and old.name not in blobs:
            store.delete_model(campaign, old.name)
    store.save_model({"name": STATUS_MODEL, "campaign": campaign, "kind": "status",
                      "metadata": {"status": "trained", "message": report.summary(),
                                   "n_sets": report.n_sets}})
    return {"status": "trained", "n_sets": report.n_sets, "models": sorted(blobs)}


def load_campaign_models(store: Store, campaign: str):
    """The trained models of ``campaign`` (:class:`cgflow.ml.training.TrainedModels`)."""
    from cgflow.errors import InvalidInputError
    from cgflow.ml.training import load_models

    docs = {m.name: m for m in store.models(campaign=campaign) if m.kind != "status"}
    if "manifest" not in docs:
        status = store.get_model(campaign, STATUS_MODEL)
        why = status.metadata.get("message") if status is not None else "never trained"
        raise InvalidInputError(f"campaign {campaign!r} has no trained models: {why}")
    return load_models({name: store.get_model_blob(d.gridfs_id) for name, d in docs.items()})
