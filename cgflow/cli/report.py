"""``cgflow report CAMPAIGN -o DIR``: a campaign's report as a static HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cgflow.cli.common import launchpad_file, say


def write_campaign_report(launchpad: Any, store: Any, campaign: str, out_dir: str | Path, *,
                          with_models: bool = True) -> Any:
    """The report of ``campaign`` into ``out_dir``
    (:class:`cgflow.stages.report.ReportResult`): with its spec and the stages and failure
    reasons of its Fireworks when they are in this database."""
    from cgflow.db.fw_queries import campaign_spec
    from cgflow.orchestration.status import campaign_status
    from cgflow.stages.report import write_report

    spec = campaign_spec(launchpad, campaign)
    states = None
    if spec:  # its Fireworks are in this database: their stages and failure reasons
        status = campaign_status(launchpad, store, campaign)
        reasons = {r["name"].split(":")[1]: r.get("reason", "") for r in status.failed
                   if r.get("name", "").count(":") >= 2}
        states = {s.param_id: (s.stage, reasons.get(s.label, s.detail)
                               if s.stage == "failed" else
                               s.detail if s.stage in ("unconverged", "waiting") else "")
                  for s in status.sets}
    return write_report(store, campaign, out_dir, spec=spec, set_states=states,
                        with_models=with_models)


def report_line(campaign: str, result: Any) -> str:
    """What ``cgflow report`` says when it is done."""
    reused = len(result.figures) - result.n_drawn
    return (f"report of campaign {campaign}: {result.n_sets} sets, {len(result.figures)} "
            f"figures ({f'{reused} unchanged, ' if reused > 0 else ''}{result.n_drawn} drawn), "
            f"{result.read_s + result.draw_s:.1f} s -> {result.page}")


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report of a campaign (read from the database only)."""
    from cgflow.db.store import Store, open_launchpad

    lp = open_launchpad(launchpad_file(args))
    with Store.from_launchpad(lp) as store:
        result = write_campaign_report(lp, store, args.campaign, args.output,
                                       with_models=not args.no_models)
    say(report_line(args.campaign, result))
    return 0


def add_parser(sub: Any) -> None:
    """Register ``cgflow report``."""
    r = sub.add_parser("report", help="a campaign's report: HTML page with figures and "
                       "tables, from the database")
    r.add_argument("campaign")
    r.add_argument("-o", "--output", required=True,
                   help="folder of the report (index.html and figures/)")
    r.add_argument("--no-models", action="store_true",
                   help="leave out the models' parity plots (no model is loaded)")
    r.add_argument("-l", "--launchpad")
    r.set_defaults(func=cmd_report)
