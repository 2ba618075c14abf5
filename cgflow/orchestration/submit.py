"""Queue a campaign: validate its spec completely, then add its workflow to a LaunchPad,
whole or not at all.

All or nothing: before anything is written, every Firework document and the workflow
document are encoded as BSON and checked against MongoDB's document limit
(:data:`MAX_DOCUMENT_BYTES`); then FireWorks' ``LaunchPad.add_wf`` inserts the Fireworks
and then the workflow. If the server refuses any of it, :func:`add_workflow_whole`
removes the Fireworks already inserted (by their fw_ids, which were reserved for this
workflow alone) and puts the id counter back when nobody reserved ids since, so a failed
submission leaves nothing behind.

A campaign whose sets are already queued (Fireworks of the same campaign name and the
same parameter sets waiting, ready or running) is not queued a second time: the
submission says so and adds nothing, unless asked to (``again=True``,
``cgflow campaign submit --again``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cgflow.errors import CgflowError, InvalidInputError
from cgflow.orchestration.campaign import CampaignSpec, find_campaign_spec, load_campaign_spec
from cgflow.params import ParameterSet

#: MongoDB's largest document (BSON), bytes.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: Room kept below it for what changes between the check and the write (fw_ids of more
#: digits, timestamps), bytes.
DOCUMENT_MARGIN_BYTES = 64 * 1024
#: Firework states of a set that is still queued (not finished in any way).
QUEUED_STATES = ("WAITING", "READY", "RESERVED", "RUNNING", "PAUSED")


class SubmitError(CgflowError, RuntimeError):
    """The database refused a workflow; what had been written of it was removed."""


class AlreadyQueuedError(CgflowError, RuntimeError):
    """The campaign's sets are already queued; nothing was added.

    Attributes
    ----------
    spec, sets
        The campaign that was not queued again.
    fw_ids
        The queued Fireworks of its sets.
    """

    def __init__(self, message: str, spec: CampaignSpec, sets: list[ParameterSet],
                 fw_ids: list[int]) -> None:
        super().__init__(message)
        self.spec, self.sets, self.fw_ids = spec, sets, fw_ids


def load_spec(name_or_path: str | Path) -> tuple[CampaignSpec, list[ParameterSet]]:
    """A campaign spec from a file or a shipped spec's name, validated and expanded."""
    return load_campaign_spec(find_campaign_spec(name_or_path))


def build_workflow(spec: CampaignSpec, sets: list[ParameterSet], category: str = "cgflow"
                   ) -> Any:
    """The campaign's FireWorks ``Workflow``, its documents' sizes checked
    (:func:`check_document_sizes`): what ``cgflow campaign build`` writes and
    :func:`submit_campaign` adds."""
    from cgflow.orchestration.workflows import campaign_workflow

    wf = campaign_workflow(spec, sets, category=category)
    check_document_sizes(wf, f"campaign {spec.name!r}")
    return wf


def ensure_launchpad_initialised(lp: Any) -> None:
    """Initialise a LaunchPad database that has never been used (no id counters, no
    Fireworks); a database already in use is left untouched but for cgflow's index on
    ``spec.campaign`` (created if missing)."""
    if lp.fw_id_assigner.find_one({}) is None and lp.fireworks.count_documents({}) == 0:
        lp.reset("", require_password=False)
    # cgflow finds a campaign's Fireworks by spec.campaign (status, progress)
    lp.fireworks.create_index("spec.campaign", name="cgflow_campaign")


def check_document_sizes(wf: Any, what: str = "workflow") -> dict[str, int]:
    """Check that every Firework of ``wf`` and its workflow document fit in a MongoDB
    document, before anything is written.

    Returns
    -------
    dict
        ``largest_firework_bytes`` and ``workflow_bytes`` (BSON).

    Raises
    ------
    InvalidInputError
        Naming the Firework (or the workflow document), its size and the limit, and the
        largest field of its spec or metadata (what to shorten).
    """
    import bson

    limit = MAX_DOCUMENT_BYTES - DOCUMENT_MARGIN_BYTES
    largest = 0
    for fw in wf.fws:
        doc = fw.to_db_dict()
        size = len(bson.encode(doc))
        largest = max(largest, size)
        if size > limit:
            raise InvalidInputError(
                f"{what}: Firework {fw.name!r} would be a {size}-byte document, more than "
                f"the {limit} bytes a MongoDB document may hold here "
                f"({_largest_field(doc.get('spec') or {}, 'spec')}); nothing was written")
    wf_doc = wf.to_db_dict()
    wf_size = len(bson.encode(wf_doc))
    if wf_size > limit:
        raise InvalidInputError(
            f"{what}: the workflow document of {len(wf.fws)} Fireworks would be {wf_size} "
            f"bytes, more than the {limit} bytes a MongoDB document may hold here "
            f"({_largest_field(wf_doc, 'workflow')}); nothing was written")
    return {"largest_firework_bytes": largest, "workflow_bytes": wf_size}


def _largest_field(doc: dict[str, Any], prefix: str) -> str:
    """``largest field 'x.y.z': N bytes``: the largest value of a document that is not a
    mapping, at any depth."""
    import bson

    best, stack = (0, prefix), [(prefix, doc)]
    while stack:
        where, d = stack.pop()
        for key, value in d.items():
            if isinstance(value, dict):
                stack.append((f"{where}.{key}", value))
            else:
                best = max(best, (len(bson.encode({"v": value})), f"{where}.{key}"))
    return f"largest field {best[1]}: {best[0]} bytes"


def add_workflow_whole(lp: Any, wf: Any) -> dict[int, int]:
    """``lp.add_wf(wf)``, undone if it fails part-way.

    Returns
    -------
    dict
        FireWorks' map of the workflow's old to new fw_ids.

    Raises
    ------
    SubmitError
        The server refused the Fireworks or the workflow document; the Fireworks that
        had been inserted were deleted again (and the id counter restored if no other
        client took ids since), so nothing of the workflow is left.
    """
    before = (lp.fw_id_assigner.find_one({}) or {}).get("next_fw_id")
    old_ids = {id(fw): fw.fw_id for fw in wf.fws}
    try:
        return lp.add_wf(wf)
    except BaseException as exc:
        # FireWorks gave each Firework its new id in place before inserting
        new_ids = [fw.fw_id for fw in wf.fws if fw.fw_id != old_ids[id(fw)]]
        removed = _remove_partial(lp, new_ids, before)
        if not isinstance(exc, Exception):
            raise
        raise SubmitError(
            f"the job database refused the workflow {wf.name!r}: {type(exc).__name__}: "
            f"{str(exc)[:300]}; {removed}, nothing of it is left") from exc


def _remove_partial(lp: Any, new_ids: list[int], counter_before: int | None) -> str:
    """Delete the Fireworks and workflow documents of ``new_ids``; restore the counter."""
    if not new_ids:
        return "no Firework had been written"
    n_fw = lp.fireworks.delete_many({"fw_id": {"$in": new_ids}}).deleted_count
    lp.workflows.delete_many({"nodes": {"$in": new_ids}})
    restored = ""
    if counter_before is not None:
        res = lp.fw_id_assigner.update_one({"next_fw_id": max(new_ids) + 1},
                                           {"$set": {"next_fw_id": counter_before}})
        restored = " and the fw_id counter restored" if res.modified_count else ""
    return f"the {n_fw} Firework(s) already written were removed{restored}"


def queued_fireworks(lp: Any, campaign: str, param_ids: Iterable[str]) -> list[int]:
    """fw_ids of the Fireworks of ``campaign`` for ``param_ids`` that are still queued
    (:data:`QUEUED_STATES`)."""
    docs = lp.fireworks.find({"spec.campaign": campaign, "spec.param_id": {"$in": list(
        param_ids)}, "state": {"$in": list(QUEUED_STATES)}}, {"fw_id": 1})
    return sorted(d["fw_id"] for d in docs)


def unfinished_sets(spec: CampaignSpec, sets: list[ParameterSet],
                    exports: Iterable[str | Path]) -> list[ParameterSet]:
    """``sets`` without those that finished in ``exports`` (exports of this campaign:
    :func:`cgflow.stages.dataset.finished_in_exports`).

    Raises
    ------
    InvalidInputError
        An active-learning or synthetic campaign (their later sets are not fixed up
        front), a campaign of several molecules (a set's branches would run again with
        it: resume such a campaign with a spec per molecule), a bad export folder, or
        nothing left to run.
    """
    from cgflow.stages.dataset import finished_in_exports

    exports = list(exports)
    if spec.kind == "synthetic" or spec.active is not None:
        raise InvalidInputError(
            f"--skip-finished-in: campaign {spec.name!r} is "
            f"{'synthetic' if spec.kind == 'synthetic' else 'an active-learning campaign'}: "
            "only a campaign whose sets are all fixed up front can be resumed this way")
    if spec.is_multi_molecule:
        raise InvalidInputError(
            f"--skip-finished-in: campaign {spec.name!r} runs several molecules "
            f"({', '.join(m.name for m in spec.campaign_molecules)}): a set's finished "
            "branches would run again with its unfinished ones; resume it with a spec "
            "per molecule")
    done = finished_in_exports(exports, spec.name, spec.preset, spec.cg_stage)
    left = [ps for ps in sets if spec.set_id(ps) not in done]
    if not left:
        raise InvalidInputError(
            f"--skip-finished-in: every one of the {len(sets)} parameter set(s) of campaign "
            f"{spec.name!r} finished in {', '.join(str(e) for e in exports)}: nothing left "
            "to run; nothing was queued")
    return left


def submit_campaign(spec_path: str | Path, lp_file: Path, category: str = "cgflow", *,
                    again: bool = False, skip_finished_in: Iterable[str | Path] = (),
                    ) -> tuple[CampaignSpec, list[ParameterSet]]:
    """Validate a spec and add its workflow to the LaunchPad of ``lp_file``, whole or not
    at all.

    The spec is validated completely and the documents' sizes checked before anything
    is written to the database; on the embedded server the one-launcher lock is held
    while writing. Stored Fireworks that name moved Firetask classes are renamed first
    (:func:`cgflow.db.migrations.migrate_firetask_names`, logged when it changes
    anything).

    Parameters
    ----------
    again
        Queue the campaign even when its sets are already queued.
    skip_finished_in
        Export folders of this campaign (``cgflow launch --export-to``): the sets that
        finished there are not queued (:func:`unfinished_sets`); the sets returned are
        those queued.

    Raises
    ------
    InvalidInputError
        A bad spec or launchpad file, or a document too large (nothing written).
    AlreadyQueuedError
        Fireworks of the same campaign and sets are queued (and ``again`` is false).
    SubmitError
        The server refused part of the workflow (what was written was removed).
    """
    from cgflow.db.launcher_lock import exclusive_launcher
    from cgflow.db.migrations import migrate_firetask_names
    from cgflow.db.store import Store, open_launchpad

    spec, sets = load_spec(spec_path)
    skip_finished_in = list(skip_finished_in)
    if skip_finished_in:
        sets = unfinished_sets(spec, sets, skip_finished_in)
    wf = build_workflow(spec, sets, category)
    lp = open_launchpad(lp_file)
    # FireWorks' own INFO lines (db tune-up, reset, id map): the caller says what was queued
    lp.m_logger.setLevel(logging.WARNING)
    with exclusive_launcher(Path(lp_file)):
        ensure_launchpad_initialised(lp)
        migrate_firetask_names(lp.db)
        if not again:
            set_ids = spec.set_ids(sets)
            queued = queued_fireworks(lp, spec.name, set_ids)
            if queued:
                n_sets = len({d["spec"]["param_id"] for d in lp.fireworks.find(
                    {"fw_id": {"$in": queued}}, {"spec.param_id": 1})})
                raise AlreadyQueuedError(
                    f"campaign {spec.name!r} is already queued: {n_sets} of its "
                    f"{len(set_ids)} parameter set(s) have Fireworks waiting or running "
                    f"({len(queued)} Fireworks, fw_id {queued[0]}..{queued[-1]}); nothing "
                    "was added (cgflow campaign submit --again queues it a second time)",
                    spec, sets, queued)
        with Store.from_launchpad(lp) as store:
            store.ensure_indexes()
        add_workflow_whole(lp, wf)
    return spec, sets
