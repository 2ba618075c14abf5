"""``cgflow campaign build | submit | status | rounds | results`` and ``cgflow launch``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cgflow.cli.common import command_group, launchpad_file, molecule_matches, open_store, say
from cgflow.errors import InvalidInputError


def cmd_campaign_build(args: argparse.Namespace) -> int:
    """Write a campaign's workflow file for ``lpad add``."""
    from cgflow.orchestration.submit import build_workflow, load_spec

    spec, sets = load_spec(args.spec)
    wf = build_workflow(spec, sets, args.category)
    out = Path(args.output)
    wf.to_file(str(out))
    say(f"campaign {spec.name}: {_sets_text(spec, sets)}, {len(wf.fws)} Fireworks "
        f"-> {out} (queue it with: lpad add {out})")
    return 0


def cmd_campaign_submit(args: argparse.Namespace) -> int:
    """Validate and queue a campaign (not a second time unless ``--again``)."""
    from cgflow.orchestration.submit import AlreadyQueuedError, submit_campaign

    lp_file = launchpad_file(args)
    try:
        spec, sets = submit_campaign(args.spec, lp_file, args.category, again=args.again,
                                     skip_finished_in=args.skip_finished_in or ())
    except AlreadyQueuedError as exc:
        say(str(exc))
        return 0
    skipped = ""
    if args.skip_finished_in:
        n_all = len(spec.parameter_sets_to_run(str(args.spec)))
        skipped = (f" ({n_all - len(sets)} of its {n_all} sets finished in "
                   f"{', '.join(args.skip_finished_in)}: not queued)")
    say(f"queued campaign {spec.name}: {_sets_text(spec, sets)}{skipped} on {lp_file}")
    return 0


def _sets_text(spec: Any, sets: list[Any]) -> str:
    """``n parameter set(s)``, and on how many molecules (which) when several; the
    pairs and batches of a synthetic campaign."""
    if spec.synthetic is not None:
        return (f"{spec.synthetic.n_pairs} synthetic pair(s) in "
                f"{len(spec.synthetic.batches())} batch(es)")
    if not spec.is_multi_molecule:
        return f"{len(sets)} parameter set(s)"
    names = [m.name for m in spec.campaign_molecules]
    return (f"{len(sets)} parameter set(s) x {len(names)} molecule(s) ({', '.join(names)}) "
            f"= {len(sets) * len(names)} branches")


def cmd_campaign_status(args: argparse.Namespace) -> int:
    """Stages, running/queued/failed Fireworks of a campaign."""
    from cgflow.db.store import Store, open_launchpad
    from cgflow.orchestration.status import campaign_status, format_status

    lp = open_launchpad(launchpad_file(args))
    with Store.from_launchpad(lp) as store:
        status = campaign_status(lp, store, args.name)
        if not status.sets:
            raise InvalidInputError(f"campaign {args.name!r}: no Fireworks in this database")
        if args.watch:
            from cgflow.orchestration.progress import watch_campaign

            if not args.interval > 0:
                raise InvalidInputError(f"--interval: value {args.interval!r}: must be > 0 s")
            watch_campaign(lp, store, args.name, interval_s=args.interval, report=say)
            return 0
    say(format_status(status))
    return 0


def cmd_campaign_rounds(args: argparse.Namespace) -> int:
    """The stored rounds of an active campaign (documents with ``--json``; each round's
    choice recomputed with ``--replay``)."""
    from cgflow.orchestration.status import format_round
    from cgflow.stages.active import replay_round

    with open_store(args) as store:
        rounds = store.active_rounds(args.name)
        if not rounds:
            raise InvalidInputError(f"campaign {args.name!r}: no active-learning rounds stored")
        if args.json:
            say(json.dumps([r.model_dump(mode="json", by_alias=True) for r in rounds],
                           indent=2))
            return 0
        bad = 0
        for doc in rounds:
            say(format_round(doc))
            for c, choice in zip(doc.chosen, doc.selection.choices if doc.selection else [],
                                 strict=False):
                parts = ", ".join(f"{k} {v:.3g}" for k, v in sorted(choice.components.items()))
                say(f"    {c.param_id}  score {choice.score:.4g}  ({parts})")
            if args.replay and doc.selection is not None:
                rep = replay_round(store, args.name, doc.round)
                bad += not rep.same
                say(f"    replay: {'same choice' if rep.same else 'DIFFERENT'} "
                    f"(inputs {'match' if rep.inputs_match else 'differ'}, chosen sets "
                    f"{'match' if rep.chosen_match else 'differ'})")
    return 1 if bad else 0


def cmd_campaign_results(args: argparse.Namespace) -> int:
    """Table (or JSON) of a campaign's results."""
    with open_store(args) as store:
        rows = results_table(store, args.name)
    if args.molecule:
        rows = [r for r in rows if molecule_matches(r["molecule"], args.molecule)]
    say(json.dumps(rows, indent=2) if args.json else format_results_table(rows))
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    """Run queued Fireworks (``rlaunch rapidfire``) with a campaign's progress."""
    from cgflow.orchestration.launcher import launch
    from cgflow.userfiles import read_fworker_file

    lp_file = launchpad_file(args)
    fworker = Path(args.fworker) if args.fworker else lp_file.parent / "my_fworker.yaml"
    if args.fworker:
        read_fworker_file(fworker)  # a missing or bad -w file is an error naming it
    if args.export_to and not args.campaign:
        raise InvalidInputError(f"launch: --export-to {args.export_to!r} needs --campaign "
                                "NAME (the campaign to export)")
    if args.export_preset is not None and not args.export_to:
        raise InvalidInputError(f"launch: --export-preset {args.export_preset!r} needs "
                                "--export-to DIR (where to export)")
    if args.export_preset is not None:
        from cgflow.presets import get_cg_preset

        get_cg_preset(args.export_preset)  # an unknown name is an error naming it
    return launch(lp_file, campaign=args.campaign,
                  fworker_file=fworker if fworker.exists() else None, report=say,
                  export_to=Path(args.export_to) if args.export_to else None,
                  export_preset=args.export_preset)


def results_table(store: Any, campaign: str) -> list[dict[str, Any]]:
    """One row per all-atom run of the campaign's sets, its own and reused ones (all-atom
    results so far, IBI and CG results where stored; the sets of
    :func:`cgflow.db.views.campaign_sets`), in the order the runs were started."""
    from cgflow.db.views import campaign_sets
    from cgflow.units import density_kg_m3_to_g_cm3, diffusion_nm2_ps_to_m2_s

    runs = [(run, v) for v in campaign_sets(store, campaign) if (run := v.aa_run) is not None]
    rows = []
    for run, view in sorted(runs, key=lambda rv: (rv[0].created_at, rv[0].id or "")):
        row: dict[str, Any] = {
            "param_id": view.param_id,
            "label": view.label,
            "molecule": view.molecule,
            "status": run.status,
            "wall_s": run.total_wall_s,
        }
        r = run.results
        if r is not None:
            row.update({
                "density_g_cm3": density_kg_m3_to_g_cm3(r.density_kg_m3),
                "density_err_g_cm3": density_kg_m3_to_g_cm3(r.density_err_kg_m3),
                "d_aa_m2_s": diffusion_nm2_ps_to_m2_s(r.d_nm2_ps),
                "d_aa_err_m2_s": diffusion_nm2_ps_to_m2_s(r.d_err_nm2_ps),
                "pressure_bar": r.pressure_bar,
                "pressure_err_bar": r.pressure_err_bar,
            })
        pot = view.potential
        if pot is not None:
            row.update({"ibi_converged": pot.converged, "ibi_iterations": pot.n_iterations,
                        "rdf_deviation": view.best_metrics.get("rdf_deviation")})
        cg = view.cg_run
        if cg is not None and cg.alpha is not None:
            row.update({
                "d_cg_m2_s": diffusion_nm2_ps_to_m2_s(cg.d_cg_nm2_ps.mean),
                "d_cg_err_m2_s": diffusion_nm2_ps_to_m2_s(cg.d_cg_nm2_ps.err or 0.0),
                "alpha": cg.alpha.mean, "alpha_err": cg.alpha.err,
            })
        rows.append(row)
    return rows


def _pm(value: Any, err: Any, fmt: str, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    e = f" +- {format(err * scale, fmt)}" if err is not None else ""
    return f"{format(value * scale, fmt)}{e}"


def format_results_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`results_table` rows (CG columns when any set has them).

    Units: density g/cm^3, D in 1e-9 m^2/s, wall time (all-atom stage) in s. A
    ``molecule`` column when any row is not of the default molecule.
    """
    from cgflow.molecule.registry import DEFAULT_MOLECULE

    with_cg = any("ibi_iterations" in r for r in rows)
    with_mol = any(r.get("molecule", DEFAULT_MOLECULE) != DEFAULT_MOLECULE for r in rows)
    head = (f"{'molecule':22s} " if with_mol else "") + (
        f"{'parameter set':18s} {'status':10s} {'density g/cm3':>17s} "
        f"{'D_AA 1e-9 m2/s':>15s} {'AA wall s':>9s}")
    if with_cg:
        head += (f" {'D_CG 1e-9 m2/s':>16s} {'alpha':>13s} {'IBI it':>6s} {'conv':>5s} "
                 f"{'RDF dev':>8s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        dens = _pm(r.get("density_g_cm3"), r.get("density_err_g_cm3"), ".4f")
        d = _pm(r.get("d_aa_m2_s"), r.get("d_aa_err_m2_s"), ".3f", 1e9)
        wall = f"{r['wall_s']:.0f}" if r.get("wall_s") else "-"
        line = (f"{r['molecule']:22s} " if with_mol else "") + \
            f"{r['label']:18s} {r['status']:10s} {dens:>17s} {d:>15s} {wall:>9s}"
        if with_cg:
            dcg = _pm(r.get("d_cg_m2_s"), r.get("d_cg_err_m2_s"), ".2f", 1e9)
            al = _pm(r.get("alpha"), r.get("alpha_err"), ".2f")
            it = str(r.get("ibi_iterations", "-"))
            conv = {True: "yes", False: "no"}.get(r.get("ibi_converged"), "-")
            dev = f"{r['rdf_deviation']:.4f}" if r.get("rdf_deviation") is not None else "-"
            line += f" {dcg:>16s} {al:>13s} {it:>6s} {conv:>5s} {dev:>8s}"
        lines.append(line)
    return "\n".join(lines)


def add_parser(sub: Any) -> None:
    """Register ``cgflow campaign`` and ``cgflow launch``."""
    csub = command_group(sub, "campaign", "build, submit and inspect campaigns")
    b = csub.add_parser("build", help="write a campaign's workflow file for `lpad add`")
    b.add_argument("spec", help="a spec file or the name of a shipped spec (e.g. demo)")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--category", default="cgflow")
    b.set_defaults(func=cmd_campaign_build)
    s = csub.add_parser("submit", help="validate and queue a campaign")
    s.add_argument("spec", help="a spec file or the name of a shipped spec (e.g. demo)")
    s.add_argument("-l", "--launchpad")
    s.add_argument("--category", default="cgflow")
    s.add_argument("--again", action="store_true",
                   help="queue the campaign even if its sets are already queued")
    s.add_argument("--skip-finished-in", nargs="+", metavar="DIR",
                   help="resume a chunk stopped part-way: leave out the sets that finished "
                   "in these exports of the campaign (cgflow launch --export-to, cgflow "
                   "dataset export)")
    s.set_defaults(func=cmd_campaign_submit)
    r = csub.add_parser("results", help="results of a campaign")
    r.add_argument("name")
    r.add_argument("-l", "--launchpad")
    r.add_argument("--json", action="store_true")
    r.add_argument("--molecule", help="only this molecule's rows (a name or alias)")
    r.set_defaults(func=cmd_campaign_results)
    ro = csub.add_parser("rounds", help="the rounds of an active-learning campaign")
    ro.add_argument("name")
    ro.add_argument("-l", "--launchpad")
    ro.add_argument("--json", action="store_true", help="the stored round documents")
    ro.add_argument("--replay", action="store_true",
                    help="recompute each round's choice from the stored results and say "
                    "whether it is the same (exit 1 if not)")
    ro.set_defaults(func=cmd_campaign_rounds)
    st = csub.add_parser("status", help="stages, running/queued/failed Fireworks of a campaign")
    st.add_argument("name")
    st.add_argument("-l", "--launchpad")
    st.add_argument("--watch", action="store_true",
                    help="refresh a live view (stage per set, IBI iterations, sets done, "
                    "time left) until every set is finished; Ctrl-C to stop")
    st.add_argument("--interval", type=float, default=10.0,
                    help="--watch: seconds between refreshes (default 10)")
    st.set_defaults(func=cmd_campaign_status)

    la = sub.add_parser("launch", help="run queued Fireworks (rlaunch rapidfire)")
    la.add_argument("-l", "--launchpad")
    la.add_argument("-w", "--fworker")
    la.add_argument("--campaign", help="show progress of this campaign")
    la.add_argument("--export-to", metavar="DIR",
                    help="with --campaign: write the campaign's dataset.npz and sets.json "
                    "(as 'cgflow dataset export') into DIR at the start, each time one more "
                    "set finishes and at the end, so a stopped launch keeps every "
                    "finished set")
    la.add_argument("--export-preset", metavar="PRESET",
                    help="--export-to: the CG preset of the export (as 'dataset export "
                    "--preset'; default: the campaign's)")
    la.set_defaults(func=cmd_launch)
