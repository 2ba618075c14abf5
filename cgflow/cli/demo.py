"""``cgflow demo``: the README's main job, a small real campaign end to end on the
embedded job database, with its live progress, a table of results and the campaign's
report (``cgflow report``)."""

from __future__ import annotations

import argparse
from typing import Any

from cgflow.cli.campaign import format_results_table, results_table
from cgflow.cli.common import embedded_server, say


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the embedded database, queue the spec, launch, print the results."""
    from fireworks import LaunchPad

    from cgflow.db.fw_queries import campaign_workflow_states
    from cgflow.db.store import Store
    from cgflow.orchestration.fw_configs import write_embedded_configs
    from cgflow.orchestration.launcher import launch
    from cgflow.orchestration.submit import AlreadyQueuedError, submit_campaign

    server = embedded_server()
    uri = server.start()
    lp_file = write_embedded_configs(uri)
    say(f"[demo] embedded job database at {uri} (data kept in {server.status().data_dir})")
    try:
        spec, sets = submit_campaign(args.spec, lp_file)
    except AlreadyQueuedError as exc:  # an interrupted demo: run what it queued
        say(f"[demo] {exc}")
        spec, sets = exc.spec, exc.sets
    say(f"[demo] queued campaign '{spec.name}': {len(sets)} parameter sets, preset "
        f"'{spec.preset}' ({spec.aa_preset.n_molecules} molecules, "
        f"{spec.aa_preset.production_ps:g} ps production each)")
    rc = launch(lp_file, campaign=spec.name, fworker_file=lp_file.parent / "my_fworker.yaml",
                report=say)
    lp = LaunchPad.from_file(str(lp_file))
    states = campaign_workflow_states(lp, spec.name)
    say(f"[demo] workflow state: {states[-1] if states else 'unknown'}")
    with Store.from_launchpad_file(str(lp_file)) as store:
        table = format_results_table(results_table(store, spec.name))
        report = _report(lp, store, spec.name)
    say()
    say(table)
    say()
    if report:
        say(report)
    say(f"lpad: lpad -l {lp_file} get_wflows -d less")
    return 0 if rc == 0 and states and states[-1] == "COMPLETED" else 1


def _report(lp: Any, store: Any, campaign: str) -> str:
    """Write the campaign's report under the cgflow home; the line that says where (or
    why not: the results are in the database either way)."""
    from cgflow.cli.report import write_campaign_report
    from cgflow.errors import CgflowError
    from cgflow.settings import cgflow_home

    out = cgflow_home() / "reports" / campaign
    try:
        result = write_campaign_report(lp, store, campaign, out)
    except (CgflowError, OSError) as exc:
        return f"[demo] no report written: {exc}"
    return (f"[demo] report: {result.page} (figures and tables; again later with: cgflow "
            f"report {campaign} -o DIR)")


def add_parser(sub: Any) -> None:
    """Register ``cgflow demo``."""
    d = sub.add_parser("demo", help="run the demo campaign end to end on the embedded database")
    d.add_argument("--spec", default="demo",
                   help="a spec file or the name of a shipped spec (default: demo)")
    d.set_defaults(func=cmd_demo)
