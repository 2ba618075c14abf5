"""``cgflow validate``: closed-loop validation of a campaign's models on unseen sets.

Glue between the database and :mod:`cgflow.stages.validate`: it loads the models of a
campaign, picks parameter sets with a completed all-atom run that are not among the
models' training sets (by default from the models' own campaign: its held-out test sets,
and sets whose IBI did not converge), predicts their potentials and alpha, simulates them
in LAMMPS, stores one ``validations`` document per set (tied to the models by their
training data's hash) and prints a table. A set whose runs fail is reported and the
others go on; the command then exits non-zero.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from cgflow.errors import InvalidInputError


def unseen_aa_runs(store: Any, sets_campaign: str, trained: set[str],
                   param_ids: list[str] | None = None) -> list[Any]:
    """Completed AA runs of ``sets_campaign`` whose sets are not in ``trained``."""
    runs = [r for r in store.aa_runs(campaign=sets_campaign, status="completed")
            if r.param_id not in trained and r.results is not None]
    if param_ids:
        wanted = set(param_ids)
        seen = {r.param_id for r in runs}
        for pid in param_ids:
            if pid in trained:
                raise InvalidInputError(f"--param-id {pid}: the models were trained on this set")
            if pid not in seen:
                raise InvalidInputError(f"--param-id {pid}: no completed all-atom run in "
                                        f"campaign {sets_campaign!r}")
        runs = [r for r in runs if r.param_id in wanted]
    return runs


def validate_campaign_models(
    store: Any, models_campaign: str, *, sets_campaign: str | None = None,
    work_root: str | Path = "validation", preset: str | None = None,
    max_sets: int | None = None, param_ids: list[str] | None = None, threads: int = 1,
    progress=print,
) -> tuple[list[Any], list[str]]:
    """Validate the models of ``models_campaign`` on unseen sets.

    Returns
    -------
    docs, failures
        The stored validation documents, and one message per set whose runs failed.

    Raises
    ------
    InvalidInputError
        No trained models, models without their training ids, an unknown preset, or no
        unseen set with a completed all-atom run.
    """
    from cgflow.errors import CgflowError
    from cgflow.ml.predict import predict_potentials
    from cgflow.orchestration.campaign import IBISpec
    from cgflow.orchestration.firetasks.train import load_campaign_models
    from cgflow.params import parameter_set_from_mapping
    from cgflow.presets import get_cg_preset
    from cgflow.stages import cg as cg_stage
    from cgflow.stages.validate import validate_prediction

    if preset is not None:
        get_cg_preset(preset)
    models = load_campaign_models(store, models_campaign)
    if not models.metadata.get("train_param_ids"):
        raise InvalidInputError(f"the models of {models_campaign!r} do not record their "
                                "training sets ('train_param_ids'): cannot tell unseen sets")
    trained = set(models.metadata["train_param_ids"])
    data_hash = str(models.metadata.get("dataset_hash") or "unknown")
    source = sets_campaign or models_campaign
    runs = unseen_aa_runs(store, source, trained, param_ids)
    if not runs:
        raise InvalidInputError(
            f"campaign {source!r} has no completed all-atom run of a set the models of "
            f"{models_campaign!r} have not seen ({len(trained)} training sets)")
    if max_sets is not None:
        runs = runs[:max_sets]
    docs, failures = [], []
    for k, aa in enumerate(runs, 1):
        cg_preset = get_cg_preset(preset or aa.preset)
        ps_doc = store.get_parameter_set(aa.param_id)
        if ps_doc is None:
            failures.append(f"{aa.param_id}: its parameter set is not in the database")
            continue
        ps = parameter_set_from_mapping(ps_doc.params, source=f"parameter set {aa.param_id}")
        target = cg_stage.target_from_aa_results(
            aa.results, aa.preset_settings.get("temperature_k", 298.15))
        settings = cg_stage.make_settings(IBISpec(), target, cg_preset)
        pred = predict_potentials(models, ps)
        progress(f"[validate] {k}/{len(runs)} {aa.param_id}: simulating the predicted "
                 f"potentials ({cg_preset.name} CG preset)")
        # one directory per models version: a retrain never resumes an older run
        workdir = (Path(work_root) / models_campaign
                   / f"{aa.param_id}-{cg_preset.name}-{data_hash[:12]}")
        try:
            out = validate_prediction(
                workdir, pred, target, settings, cg_preset, d_aa=aa.results.diffusion.d_nm2_ps,
                d_aa_err=aa.results.diffusion.d_err_nm2_ps, threads=threads)
        except CgflowError as exc:
            failures.append(f"{aa.param_id}: {exc}")
            progress(f"[validate] {aa.param_id}: failed: {exc}")
            continue
        docs.append(store.save_validation({
            "models_campaign": models_campaign, "models_dataset_hash": data_hash,
            "param_id": aa.param_id, "preset": cg_preset.name, "sets_campaign": source,
            "run_dir": str(workdir), **out,
        }))
    return docs, failures


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:+.0f} %"


def _num(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.3f}"


def format_validations(docs: list[Any]) -> str:
    """A table: per set, the structure route's RDF deviation and alpha-rescaled D error,
    and the dynamics route's D error (and RDF deviation)."""
    head = (f"{'param_id':16s}  {'RDF dev (struct)':>16s}  {'alpha pred':>14s}  "
            f"{'D_CG/alpha vs D_AA':>18s}  {'D_CG dyn vs D_AA':>16s}  {'RDF dev (dyn)':>13s}")
    lines = [head, "-" * len(head)]
    for d in docs:
        s, dyn = d.structure, d.dynamics or {}
        std = f" +- {d.alpha_std:.2f}" if d.alpha_std is not None else ""
        lines.append(
            f"{d.param_id:16s}  {_num(s['rdf_deviation']):>16s}  {d.alpha_pred:7.2f}{std:>7s}  "
            f"{_pct(s.get('d_rescaled_rel_error')):>18s}  {_pct(dyn.get('d_rel_error')):>16s}  "
            f"{_num(dyn.get('rdf_deviation')):>13s}")
    return "\n".join(lines)


def add_parser(sub: Any, func: Any) -> None:
    """Add ``cgflow validate`` to the subparsers ``sub``."""
    v = sub.add_parser("validate", help="simulate predicted potentials of unseen sets and "
                       "compare with their all-atom results")
    v.add_argument("--campaign", required=True, help="whose models to validate")
    v.add_argument("--sets-from", help="campaign whose unseen sets to use (default: the "
                   "models' campaign: its held-out test sets and unconverged sets)")
    v.add_argument("--param-id", action="append", help="only this set (repeatable)")
    v.add_argument("--max-sets", type=int, help="at most this many sets")
    v.add_argument("--preset", help="CG preset of the runs (default: the set's AA preset)")
    v.add_argument("--threads", type=int, default=1)
    v.add_argument("-o", "--output", default="validation", help="run directories")
    v.add_argument("-l", "--launchpad")
    v.set_defaults(func=func)


def cmd_validate(args: argparse.Namespace, store: Any) -> int:
    """Run ``cgflow validate`` on ``store``."""
    if args.max_sets is not None and args.max_sets < 1:
        raise InvalidInputError(f"--max-sets: value {args.max_sets}: must be >= 1")
    docs, failures = validate_campaign_models(
        store, args.campaign, sets_campaign=args.sets_from, work_root=args.output,
        preset=args.preset, max_sets=args.max_sets, param_ids=args.param_id,
        threads=args.threads)
    print(format_validations(docs), flush=True)
    for msg in failures:
        print(f"failed: {msg}", flush=True)
    return 1 if failures else 0
