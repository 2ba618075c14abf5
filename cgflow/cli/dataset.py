"""``cgflow dataset export | merge | pairs``: a campaign's results as files."""

from __future__ import annotations

import argparse
from typing import Any

from cgflow.cli.common import command_group, open_store, say


def cmd_dataset_export(args: argparse.Namespace) -> int:
    from cgflow.stages.dataset import export_campaign

    with open_store(args) as store:
        out = export_campaign(store, args.name, args.output, preset=args.preset)
    say(f"campaign {args.name}: {out['n_converged']} converged of {out['n_sets']} sets, "
        f"dataset {out['dataset_hash'][:12]}")
    for f in out["files"]:
        say(f"wrote {f}")
    return 0


def cmd_dataset_merge(args: argparse.Namespace) -> int:
    from cgflow.stages.dataset import merge_exports

    out = merge_exports(args.folders, args.output, name=args.name)
    say(f"dataset {out['campaign']}: {out['n_converged']} converged of {out['n_sets']} "
        f"sets, dataset {out['dataset_hash'][:12]}")
    for f in out["files"]:
        say(f"wrote {f}")
    return 0


def cmd_dataset_pairs(args: argparse.Namespace) -> int:
    from cgflow.stages.synthetic import write_pairs

    with open_store(args) as store:
        docs = store.synthetic_pairs(args.name, args.preset)
    out = write_pairs([d.model_dump() for d in docs], args.output,
                      source=f"campaign {args.name!r}")
    say(f"campaign {args.name}: {out['n_pairs']} synthetic pair(s), grid "
        f"{out['r_nm_range'][0]:g}-{out['r_nm_range'][1]:g} nm")
    say(f"wrote {args.output}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``cgflow dataset``."""
    dsub = command_group(sub, "dataset", "a campaign's results as files")
    de = dsub.add_parser("export", help="write dataset.npz and sets.json of a campaign")
    de.add_argument("name")
    de.add_argument("-o", "--output", required=True)
    de.add_argument("--preset")
    de.add_argument("-l", "--launchpad")
    de.set_defaults(func=cmd_dataset_export)
    dm = dsub.add_parser("merge", help="merge exported folders (e.g. of several campaigns)")
    dm.add_argument("folders", nargs="+", help="folders written by 'cgflow dataset export'")
    dm.add_argument("-o", "--output", required=True)
    dm.add_argument("--name", help="name of the merged dataset (default: the campaigns "
                    "joined by '+')")
    dm.set_defaults(func=cmd_dataset_merge)
    dp = dsub.add_parser("pairs", help="write the stored pairs of a synthetic campaign "
                         "(.npz, the arrays benchmarks/inverse.py reads)")
    dp.add_argument("name")
    dp.add_argument("-o", "--output", required=True)
    dp.add_argument("--preset")
    dp.add_argument("-l", "--launchpad")
    dp.set_defaults(func=cmd_dataset_pairs)
