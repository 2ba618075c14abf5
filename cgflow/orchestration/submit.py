"""Queue a campaign: validate its spec completely, then add its workflow to a LaunchPad."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgflow.orchestration.campaign import CampaignSpec, find_campaign_spec, load_campaign_spec
from cgflow.params import ParameterSet


def load_spec(name_or_path: str | Path) -> tuple[CampaignSpec, list[ParameterSet]]:
    """A campaign spec from a file or a shipped spec's name, validated and expanded."""
    return load_campaign_spec(find_campaign_spec(name_or_path))


def ensure_launchpad_initialised(lp: Any) -> None:
    """Initialise a LaunchPad database that has never been used (no id counters, no
    Fireworks); a database already in use is left untouched but for cgflow's index on
    ``spec.campaign`` (created if missing)."""
    if lp.fw_id_assigner.find_one({}) is None and lp.fireworks.count_documents({}) == 0:
        lp.reset("", require_password=False)
    # cgflow finds a campaign's Fireworks by spec.campaign (status, progress)
    lp.fireworks.create_index("spec.campaign", name="cgflow_campaign")


def submit_campaign(spec_path: str | Path, lp_file: Path, category: str = "cgflow"
                    ) -> tuple[CampaignSpec, list[ParameterSet]]:
    """Validate a spec and add its workflow to the LaunchPad of ``lp_file``.

    The spec is validated completely before anything is written to the database; on the
    embedded server the one-launcher lock is held while writing. Stored Fireworks that
    name moved Firetask classes are renamed first
    (:func:`cgflow.db.migrations.migrate_firetask_names`, logged when it changes
    anything).
    """
    from fireworks import LaunchPad

    from cgflow.db.launcher_lock import exclusive_launcher
    from cgflow.db.migrations import migrate_firetask_names
    from cgflow.db.store import Store
    from cgflow.orchestration.workflows import campaign_workflow

    spec, sets = load_spec(spec_path)
    wf = campaign_workflow(spec, sets, category=category)
    lp = LaunchPad.from_file(str(lp_file))
    with exclusive_launcher(Path(lp_file)):
        ensure_launchpad_initialised(lp)
        migrate_firetask_names(lp.db)
        with Store.from_launchpad(lp) as store:
            store.ensure_indexes()
        lp.add_wf(wf)
    return spec, sets
