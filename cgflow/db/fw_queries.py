"""Read-only queries of FireWorks' own collections, for progress and status views.

FireWorks owns the ``fireworks``, ``workflows`` and ``launches`` collections; cgflow only
reads them here, through the LaunchPad's handles, selecting by the keys that
:mod:`cgflow.orchestration.workflows` puts in every Firework spec (``campaign``, ``param_id``,
``label``, ``cgflow_stage``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FireworkState:
    """State of one Firework of a campaign."""

    fw_id: int
    param_id: str
    label: str
    stage: str
    state: str


def campaign_fireworks(launchpad: Any, campaign: str) -> list[FireworkState]:
    """All Fireworks of ``campaign`` with their state, in fw_id order."""
    cursor = launchpad.fireworks.find(
        {"spec.campaign": campaign},
        {"fw_id": 1, "state": 1, "spec.param_id": 1, "spec.label": 1, "spec.cgflow_stage": 1},
    ).sort("fw_id", 1)
    out = []
    for d in cursor:
        spec = d.get("spec", {})
        out.append(FireworkState(
            fw_id=d["fw_id"], param_id=spec.get("param_id", ""), label=spec.get("label", ""),
            stage=spec.get("cgflow_stage", ""), state=d.get("state", ""),
        ))
    return out


def campaign_workflow_states(launchpad: Any, campaign: str) -> list[str]:
    """States of the workflows of ``campaign`` (newest last)."""
    cursor = launchpad.workflows.find(
        {"metadata.cgflow_campaign": campaign}, {"state": 1, "created_on": 1}
    ).sort("created_on", 1)
    return [d.get("state", "") for d in cursor]


def campaign_spec(launchpad: Any, campaign: str) -> dict[str, Any]:
    """The campaign spec stored with the newest workflow of ``campaign`` (its
    ``metadata.spec``: preset, ``cg_stage``, ``ibi`` section, ...); ``{}`` if none."""
    cursor = launchpad.workflows.find(
        {"metadata.cgflow_campaign": campaign}, {"metadata.spec": 1, "created_on": 1}
    ).sort("created_on", -1).limit(1)
    for d in cursor:
        return dict((d.get("metadata") or {}).get("spec") or {})
    return {}
