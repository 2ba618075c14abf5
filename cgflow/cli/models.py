"""``cgflow models list | show | train`` and ``cgflow predict``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from cgflow.cli.common import open_store, say
from cgflow.errors import InvalidInputError


def cmd_models(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        if args.action == "train":
            from cgflow.stages.train import train_campaign_models

            if not args.campaign:
                raise InvalidInputError("cgflow models train: --campaign is required")
            out = train_campaign_models(store, args.campaign, args.preset, args.seed,
                                        dataset=args.dataset)
            say(f"campaign {args.campaign}: {out['status']}: "
                f"{out.get('message') or ', '.join(out.get('models', []))}")
            return 0 if out["status"] == "trained" else 1
        if args.action == "export":
            return _export_model(store, args)
        docs = store.models(campaign=args.campaign)
        if args.action == "list":
            if not docs:
                where = f" for campaign {args.campaign!r}" if args.campaign else ""
                say(f"no models stored{where}")
            for d in docs:
                m = d.metadata
                if d.kind == "status":
                    say(f"{d.campaign:20s} {d.name:18s} {m.get('status', ''):18s} "
                        f"{m.get('message', '').splitlines()[0] if m.get('message') else ''}")
                else:
                    size = (f"{m['n_pairs']} pairs" if "n_pairs" in m else
                            f"{m.get('n_sets', '?')} sets, data "
                            f"{str(m.get('dataset_hash'))[:12]}")
                    say(f"{d.campaign:20s} {d.name:18s} {'trained':18s} {size}, "
                        f"{d.blob_size or 0} bytes")
        else:
            for d in docs:
                if args.name and d.name != args.name:
                    continue
                say(json.dumps(d.model_dump(mode="json"), indent=2, default=str))
    return 0


def _export_model(store: Any, args: argparse.Namespace) -> int:
    """``cgflow models export NAME --campaign C -o FILE``: a stored model's weights as a
    file (a synthetic campaign's ``structure-inverse`` is the JSON that
    ``ibi: {initial_guess: inverse, inverse_model: FILE}`` reads)."""
    if not (args.campaign and args.name and args.output):
        raise InvalidInputError("cgflow models export: NAME, --campaign and -o are required")
    doc = store.get_model(args.campaign, args.name)
    if doc is None or not doc.gridfs_id:
        raise InvalidInputError(f"campaign {args.campaign!r}: no stored model {args.name!r} "
                                "with weights (cgflow models list --campaign shows them)")
    blob = store.get_model_blob(doc.gridfs_id)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_bytes(blob)
    tmp.replace(out)
    say(f"wrote {out} ({len(blob)} bytes, model {args.name} of campaign {args.campaign})")
    return 0


def molecule_argument(value: str | None) -> Any:
    """``--molecule``: a registry name or a SMILES (None: the default molecule) as a
    :class:`cgflow.molecule.registry.MoleculeSpec` (its state point from the registry,
    or 298.15 K and 1 bar for a SMILES outside it)."""
    from cgflow.molecule.registry import find_entry, resolve_molecule

    if value is None or find_entry(value) is not None:
        return resolve_molecule(value)
    return resolve_molecule({"smiles": value})


def cmd_predict(args: argparse.Namespace) -> int:
    from cgflow.ml.predict import predict_potentials
    from cgflow.params import parameter_set_from_mapping, read_parameter_set_file
    from cgflow.stages.predict import write_prediction
    from cgflow.stages.train import load_campaign_models

    values: dict[str, Any] = {}
    for item in args.set or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise InvalidInputError(f"--set: expected FIELD=VALUE, got {item!r}")
        try:
            values[k] = float(v)
        except ValueError:
            raise InvalidInputError(f"--set: field {k!r}: value {v!r} is not a number") from None
    if args.file:
        ps = read_parameter_set_file(args.file, args.units, overrides=values)
    else:
        ps = parameter_set_from_mapping(values, units_system=args.units or "gromacs",
                                        source="command line")
    spec = molecule_argument(args.molecule)
    with open_store(args) as store:
        models = load_campaign_models(store, args.campaign)
    t0 = time.perf_counter()
    pred = predict_potentials(models, ps, molecule=spec.smiles,
                              temperature_k=spec.temperature_k, mass_g_mol=spec.bead_mass_g_mol)
    ms = (time.perf_counter() - t0) * 1e3
    # files are named by the set's id on its molecule (the parameter set's own id for
    # the default molecule), as the campaign's results are
    pred = dataclasses.replace(pred, param_id=spec.set_id(ps))
    files = write_prediction(pred, Path(args.output), molecule=spec)
    for w in pred.out_of_space:
        print(f"warning: {w}", file=sys.stderr)
    say(f"parameter set {ps.id} on {spec.name}: predicted alpha = {pred.alpha:.3f} +- "
        f"{pred.alpha_std:.3f} "
        f"({ms:.1f} ms)")
    for f in files:
        say(f"wrote {f}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``cgflow models`` and ``cgflow predict``."""
    mo = sub.add_parser("models", help="models trained by a campaign's final Firework")
    mo.add_argument("action", choices=["list", "show", "train", "export"],
                    help="train: (re)train a campaign's models now, as its final Firework "
                    "does; export: write a model's weights to -o")
    mo.add_argument("name", nargs="?")
    mo.add_argument("--campaign")
    mo.add_argument("--preset", help="train: only sets run with this preset")
    mo.add_argument("--seed", type=int, default=0, help="train: seed of split and models")
    mo.add_argument("--dataset", help="train: from this exported dataset.npz (e.g. of "
                    "'cgflow dataset merge') instead of the campaign's stored sets; the "
                    "models are stored under --campaign")
    mo.add_argument("-o", "--output", help="export: the file to write")
    mo.add_argument("-l", "--launchpad")
    mo.set_defaults(func=cmd_models)

    pr = sub.add_parser("predict", help="CG potential tables and alpha from AA parameters")
    pr.add_argument("file", nargs="?", help="parameter set (YAML or JSON)")
    pr.add_argument("--set", action="append", metavar="FIELD=VALUE",
                    help="a parameter value (repeatable; overrides the file)")
    pr.add_argument("--units", choices=["gromacs", "lammps"], default=None,
                    help="units of the values (file and --set) when the file has no "
                    "'units:' key (default gromacs); a different 'units:' is an error")
    pr.add_argument("--campaign", required=True, help="whose models to use")
    pr.add_argument("--molecule", help="registry name or SMILES of the molecule (default "
                    "2,3,4-trimethylpentane; another needs models trained on several "
                    "molecules)")
    pr.add_argument("-o", "--output", default="prediction")
    pr.add_argument("-l", "--launchpad")
    pr.set_defaults(func=cmd_predict)
