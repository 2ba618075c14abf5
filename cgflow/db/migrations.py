"""Migrations of what is stored in the job database when cgflow's code moves.

FireWorks stores a Firetask by name: ``@explicit_serialize`` names a class
``{{<module>.<Class>}}`` and FireWorks imports ``<module>`` again to load it (see
``fireworks.utilities.fw_serializers.load_object``). When a Firetask class moves to another
module, the Fireworks stored before the move name a module that no longer exists, and
``rlaunch`` or ``lpad get_fws`` fail to load them. :func:`migrate_firetask_names`
rewrites those names in place, following the table :data:`RENAMED_MODULES` (the next move
only adds a line to it).

Where FireWorks keeps serialized Firetasks (FireWorks 2.x ``LaunchPad``):

``fireworks``
    every Firework: ``spec._tasks[]._fw_name``;
``launches``
    the ``action`` (an ``FWAction``) of a finished launch: the Fireworks or Workflows of
    its ``detours``, ``additions`` and ``append_wfs`` (cgflow's IBI iterations are added as
    detours), and tasks pushed by ``update_spec`` / ``mod_spec``;
the GridFS bucket ``fw_gridfs`` (``GRIDFS_FALLBACK_COLLECTION``)
    the JSON of a launch's action too big for its document, which then holds only
    ``action.gridfs_id``.

``workflows`` (ids, links, states, metadata), ``fw_id_assigner`` (id counters) and
``offline_runs`` (ids and names) hold no Firetask and are not touched; FireWorks has no
separate archive collection (archived Fireworks stay in ``fireworks``).

Every string value of an ``_fw_name`` key, at any depth, is renamed; nothing else in a
document changes. Writes are single-field ``$set`` updates guarded by the old value, so a
migration run next to a launcher (MongoDB) never overwrites the launcher's own updates,
and running it again changes nothing. Only ordinary CRUD queries and regular
expressions are used, so it runs on the embedded server (SecantusDB) as on MongoDB.

This module does not import FireWorks at module level.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError

from cgflow.errors import CgflowError

logger = logging.getLogger(__name__)

#: Old module prefix -> new module prefix of moved Firetask classes (applied to the
#: ``<module>.<Class>`` inside ``{{...}}``; chained moves are followed).
RENAMED_MODULES: dict[str, str] = {
    "cgflow.firetasks.": "cgflow.orchestration.firetasks.",
}

#: The key FireWorks stores a serialized object's class name under.
FW_NAME_KEY = "_fw_name"

#: GridFS bucket of FireWorks' oversized launch actions when its config does not say.
DEFAULT_GRIDFS_COLLECTION = "fw_gridfs"

_TASKS = f"_tasks.{FW_NAME_KEY}"
_FIREWORK_TASKS = f"spec.{_TASKS}"
#: Where an FWAction (``launches.action``) holds serialized Firetasks: Fireworks or
#: Workflows (``fws``) in detours/additions/append_wfs, tasks in update_spec/mod_spec.
_ACTION_TASK_PATHS: tuple[str, ...] = (
    f"detours.{_FIREWORK_TASKS}",
    f"detours.fws.{_FIREWORK_TASKS}",
    f"additions.{_FIREWORK_TASKS}",
    f"additions.fws.{_FIREWORK_TASKS}",
    f"append_wfs.workflow.{_FIREWORK_TASKS}",
    f"append_wfs.workflow.fws.{_FIREWORK_TASKS}",
    f"update_spec.{_TASKS}",
    f"mod_spec._push.{_TASKS}",
    f"mod_spec._push_all.{_TASKS}",
    f"mod_spec._set.{_TASKS}",
)

#: Per FireWorks collection, the dotted paths (through arrays) of its Firetask names that
#: the quick check queries. A full scan (``full_scan=True``) reads every document instead.
TASK_NAME_PATHS: dict[str, tuple[str, ...]] = {
    "fireworks": (_FIREWORK_TASKS,),
    "launches": tuple(f"action.{p}" for p in _ACTION_TASK_PATHS),
}

#: Attempts at one document when a concurrent writer changes it between read and write.
_MAX_ATTEMPTS = 5

KeyPath = tuple[str | int, ...]


@dataclass
class MigrationReport:
    """What one run of :func:`migrate_firetask_names` changed.

    Attributes
    ----------
    database
        The database's name.
    documents
        Per collection, how many documents were changed.
    files
        Per GridFS bucket, how many files were rewritten (launch actions too big for
        their launch document).
    names
        How many ``_fw_name`` values were renamed in all.
    """

    database: str
    documents: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    names: int = 0

    @property
    def changed(self) -> int:
        """Documents and files changed in all (0: nothing needed migrating)."""
        return sum(self.documents.values()) + sum(self.files.values())

    def summary(self) -> str:
        """One line for people."""
        if not self.changed:
            return f"database {self.database!r}: Firetask names up to date, nothing changed"
        parts = [f"{n} document(s) of {c}" for c, n in self.documents.items() if n]
        parts += [f"{n} file(s) of GridFS {c}" for c, n in self.files.items() if n]
        return (f"database {self.database!r}: renamed {self.names} moved Firetask name(s) "
                f"in {', '.join(parts)}")


def renamed_fw_name(name: str, table: dict[str, str] | None = None) -> str | None:
    """The new ``_fw_name`` of an explicitly serialized class that moved, else ``None``.

    Parameters
    ----------
    name
        A stored ``_fw_name`` such as ``{{cgflow.firetasks.aa.AABuildTask}}``.
    table
        Old -> new module prefixes (default :data:`RENAMED_MODULES`).
    """
    table = RENAMED_MODULES if table is None else table
    if not (name.startswith("{{") and name.endswith("}}")):
        return None
    inner = target = name[2:-2]
    for _ in range(len(table) + 1):  # follow chained moves, never loop forever
        old = next((o for o in table if target.startswith(o)), None)
        if old is None:
            break
        target = table[old] + target[len(old):]
    return None if target == inner else "{{" + target + "}}"


def old_name_regex(table: dict[str, str] | None = None) -> re.Pattern[str]:
    """A regular expression matching every ``_fw_name`` that :func:`renamed_fw_name`
    renames (for server-side queries)."""
    table = RENAMED_MODULES if table is None else table
    alternatives = "|".join(re.escape(old) for old in sorted(table))
    return re.compile(r"^\{\{(?:" + alternatives + ")")


def _renames(value: Any, table: dict[str, str], path: KeyPath = ()
             ) -> Iterator[tuple[KeyPath, str, str]]:
    """``(path, old, new)`` of every ``_fw_name`` string to rename in ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == FW_NAME_KEY and isinstance(item, str):
                new = renamed_fw_name(item, table)
                if new is not None:
                    yield (*path, key), item, new
            elif key != "_id" or path:
                yield from _renames(item, table, (*path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _renames(item, table, (*path, i))


def _dotted(path: KeyPath) -> str | None:
    """The MongoDB dotted path of ``path``, or ``None`` if a key cannot be written so."""
    keys = [str(k) for k in path]
    if any("." in k or k.startswith("$") or not k for k in keys):
        return None
    return ".".join(keys)


def _set_at(doc: Any, path: KeyPath, value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


def _update_for(doc: dict[str, Any], changes: list[tuple[KeyPath, str, str]]
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The guarded filter and the ``$set`` update that apply ``changes`` to ``doc``."""
    dotted = [_dotted(p) for p, _, _ in changes]
    if all(d is not None for d in dotted):
        filt: dict[str, Any] = {"_id": doc["_id"]}
        upd: dict[str, Any] = {}
        for d, (_, old, new) in zip(dotted, changes, strict=True):
            filt[d] = old
            upd[d] = new
        return filt, {"$set": upd}
    # a key with a dot or a leading $: replace the top-level fields concerned, guarded by
    # their whole old value
    tops = {p[0] for p, _, _ in changes}
    new_doc = copy.deepcopy({k: doc[k] for k in tops})
    for p, _, new in changes:
        _set_at(new_doc, p, new)
    filt = {"_id": doc["_id"], **{k: doc[k] for k in tops}}
    return filt, {"$set": new_doc}


def _migrate_document(coll: Collection, doc: dict[str, Any], table: dict[str, str]) -> int:
    """Rename the moved Firetask names of one document; returns how many were renamed."""
    for _ in range(_MAX_ATTEMPTS):
        changes = list(_renames(doc, table))
        if not changes:
            return 0
        filt, upd = _update_for(doc, changes)
        if coll.update_one(filt, upd).matched_count:
            return len(changes)
        # changed by someone else since it was read: read it again
        fresh = coll.find_one({"_id": doc["_id"]})
        if fresh is None:
            return 0
        doc = fresh
    raise CgflowError(f"{coll.name} document {doc['_id']}: changed by another process at "
                      f"every attempt to rename its Firetask names; run "
                      f"'cgflow db migrate' again when no launcher is running")


def _pending_launch_id(launch_id: Any) -> str:
    """``metadata.launch_id`` of a rewritten action file until it replaces the old one
    (FireWorks keeps ``metadata.launch_id`` unique in its GridFS bucket)."""
    return f"cgflow-migrating:{launch_id}"


def _adopt_action_file(fs: Any, files: Collection, file_id: Any, launch_id: Any) -> None:
    """Make ``file_id`` the only action file of ``launch_id``: delete the others, then
    give it the launch's id."""
    for other in list(files.find({"metadata.launch_id": launch_id, "_id": {"$ne": file_id}},
                                 {"_id": 1})):
        fs.delete(other["_id"])
    files.update_one({"_id": file_id}, {"$set": {"metadata.launch_id": launch_id}})


def _migrate_gridfs_action(launches: Collection, launch: dict[str, Any], bucket: str,
                           table: dict[str, str]) -> int:
    """Rename the moved Firetask names of a launch action stored in GridFS.

    GridFS files are not edited in place: the renamed action is written as a new file
    (same metadata, but a pending ``launch_id`` while the old file exists), the launch is
    pointed at it (guarded by the old id), the old file is deleted and the new one takes
    the launch's id. An interrupted run is finished by the next one. Returns how many
    names were renamed.
    """
    import gridfs

    db = launches.database
    fs = gridfs.GridFS(db, bucket)
    files = db[f"{bucket}.files"]
    gridfs_id = launch["action"]["gridfs_id"]
    launch_id = launch.get("launch_id")
    pending = _pending_launch_id(launch_id)
    try:
        grid_out = fs.get(ObjectId(gridfs_id))
    except (gridfs.errors.NoFile, InvalidId, TypeError):
        return 0  # FireWorks could not load this action either; nothing to rename
    metadata = dict(grid_out.metadata or {})
    if metadata.get("launch_id") == pending:  # a run interrupted after the switch
        _adopt_action_file(fs, files, grid_out._id, launch_id)
    raw = grid_out.read()
    if not any(("{{" + old).encode() in raw for old in table):
        return 0
    action = json.loads(raw)
    changes = list(_renames(action, table))
    if not changes:
        return 0
    for p, _, new in changes:
        _set_at(action, p, new)
    for stale in list(files.find({"metadata.launch_id": pending}, {"_id": 1})):
        fs.delete(stale["_id"])  # left by a run interrupted before the switch
    new_id = fs.put(json.dumps(action), encoding="utf-8",
                    metadata=dict(metadata, launch_id=pending))
    res = launches.update_one({"_id": launch["_id"], "action.gridfs_id": gridfs_id},
                              {"$set": {"action.gridfs_id": str(new_id)}})
    if not res.matched_count:
        fs.delete(new_id)  # the launch changed meanwhile: leave it to the next run
        return 0
    _adopt_action_file(fs, files, new_id, launch_id)
    return len(changes)


def _database(db_or_launchpad: Database | Any) -> Database:
    if isinstance(db_or_launchpad, Database):
        return db_or_launchpad
    db = getattr(db_or_launchpad, "db", None)
    if not isinstance(db, Database):
        raise TypeError(f"expected a pymongo Database or a FireWorks LaunchPad, got "
                        f"{type(db_or_launchpad).__name__}")
    return db


def _configured_gridfs_collection() -> str | None:
    try:
        from fireworks.fw_config import GRIDFS_FALLBACK_COLLECTION
    except ImportError:  # pragma: no cover - FireWorks is a dependency
        return DEFAULT_GRIDFS_COLLECTION
    return GRIDFS_FALLBACK_COLLECTION or None


def migrate_firetask_names(
    db_or_launchpad: Database | Any,
    *,
    full_scan: bool = False,
    table: dict[str, str] | None = None,
    gridfs_collection: str | None = None,
) -> MigrationReport:
    """Rename the stored names of moved Firetask classes in a LaunchPad's database.

    Idempotent: an up-to-date database is left untouched, and on it the quick check
    (the default) costs one query each of ``fireworks`` and ``launches``.

    Parameters
    ----------
    db_or_launchpad
        The LaunchPad's ``pymongo`` database, or the FireWorks ``LaunchPad`` (``lp.db``).
    full_scan
        Read every document of ``fireworks`` and ``launches`` and rename an old name
        wherever it sits. Default: only documents with an old name at a place where
        FireWorks stores Firetasks (:data:`TASK_NAME_PATHS`; found by a server-side
        regular expression), plus launches whose action is in GridFS (then every
        ``_fw_name`` of those documents is renamed).
    table
        Old -> new module prefixes (default :data:`RENAMED_MODULES`).
    gridfs_collection
        FireWorks' GridFS bucket of oversized launch actions (default: FireWorks'
        ``GRIDFS_FALLBACK_COLLECTION``, normally ``fw_gridfs``).

    Returns
    -------
    MigrationReport
        Documents changed per collection, and names renamed.

    Raises
    ------
    CgflowError
        When the database cannot be read or written (the message names it).
    """
    db = _database(db_or_launchpad)
    table = RENAMED_MODULES if table is None else table
    report = MigrationReport(database=db.name)
    if not table:
        return report
    bucket = gridfs_collection or _configured_gridfs_collection()
    regex = old_name_regex(table)
    try:
        for name, paths in TASK_NAME_PATHS.items():
            coll = db[name]
            query: dict[str, Any] = {}
            if not full_scan:
                clauses: list[dict[str, Any]] = [{p: regex} for p in paths]
                if name == "launches" and bucket:
                    clauses.append({"action.gridfs_id": {"$exists": True}})
                query = {"$or": clauses} if len(clauses) > 1 else clauses[0]
            # read first, write after the cursor is exhausted (writes do not disturb it)
            candidates = [d for d in coll.find(query)
                          if (name == "launches" and bucket and _in_gridfs(d))
                          or next(_renames(d, table), None) is not None]
            n_docs = 0
            n_files = 0
            for doc in candidates:
                n = _migrate_document(coll, doc, table)
                if name == "launches" and bucket and _in_gridfs(doc):
                    n_file = _migrate_gridfs_action(coll, doc, bucket, table)
                    n_files += bool(n_file)
                    n += n_file
                n_docs += bool(n)
                report.names += n
            report.documents[name] = n_docs
            if name == "launches" and bucket:
                report.files[bucket] = n_files
    except PyMongoError as exc:
        raise CgflowError(f"database {db.name!r}: renaming moved Firetask names failed: "
                          f"{exc}") from None
    if report.changed:
        logger.info("%s", report.summary())
    return report


def _in_gridfs(launch: dict[str, Any]) -> bool:
    action = launch.get("action")
    return isinstance(action, dict) and "gridfs_id" in action
