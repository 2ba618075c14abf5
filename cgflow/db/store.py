"""Reading and writing cgflow's documents in the job database (MongoDB or the embedded server).

:class:`Store` is the only place that knows collection names and writes queries; the
rest of cgflow passes and receives validated documents (:mod:`cgflow.db.documents`).

Collections (in the same database as FireWorks' own ``fireworks``, ``workflows``,
``launches``, ...; ``lpad reset`` does not touch them):

``parameter_sets``
    :class:`~cgflow.db.documents.ParameterSetDoc`, ``_id`` = parameter set id.
``aa_runs``
    :class:`~cgflow.db.documents.AARunDoc`, ``_id`` = ``param_id:preset``.
``ibi_iterations``
    :class:`~cgflow.db.documents.IBIIterationDoc`, ``_id`` = ``param_id:preset:iteration``.
``potentials``
    :class:`~cgflow.db.documents.PotentialDoc`, ``_id`` = ``param_id:preset``.
``cg_runs``
    :class:`~cgflow.db.documents.CGRunDoc`, ``_id`` = ``param_id:preset``.
``frictions``
    :class:`~cgflow.db.documents.FrictionDoc`, ``_id`` = ``param_id:preset`` (the
    friction calibration after CG production).
``models`` and the GridFS bucket ``model_blobs``
    :class:`~cgflow.db.documents.ModelDoc`, ``_id`` = ``campaign:name``; the weights are
    a GridFS file whose id the document holds.
``validations``
    :class:`~cgflow.db.documents.ValidationDoc`, ``_id`` =
    ``models_campaign:param_id:preset`` (``cgflow validate``).
``active_rounds``
    :class:`~cgflow.db.documents.ActiveRoundDoc`, ``_id`` = ``campaign:round`` (one
    round of an active-learning campaign, written once).

How data is stored
------------------
* Small arrays (RDFs, MSDs, tabulated potentials: a few hundred points, a few KB) are
  stored inline in the documents as lists of floats, so that results can be queried and
  exported without any file.
* Trajectories and engine outputs stay as files in the run directory; documents keep
  its path (``run_dir``). They are far too big for documents (MBs to GBs).
* Model weights, up to many MB, go to GridFS (bucket ``model_blobs``).

Writes
------
Every write method validates its whole document before touching the database, so a bad
input raises :class:`~cgflow.errors.InvalidInputError` (naming the field and value) and
writes nothing. Each call then makes a single-document write, which MongoDB applies
atomically; :meth:`Store.save_model` also writes a GridFS file first and deletes it
again if the document write fails. Queries avoid ``find_one_and_update``, whose
pre-images the embedded server may get wrong under concurrent clients.

Credentials
-----------
:meth:`Store.from_launchpad_file` takes the username and password from the launchpad
file, else from the environment variables ``CGFLOW_DB_USERNAME`` and
``CGFLOW_DB_PASSWORD``. They are never logged; :func:`redact_uri` hides them in
messages.

Connections
-----------
Launchpad files are read by :func:`cgflow.userfiles.read_launchpad_file` (a bad field
is an :class:`~cgflow.errors.InvalidInputError` naming it). pymongo connects lazily;
:meth:`Store.ping` and :func:`open_launchpad` check the server within
:data:`CHECK_TIMEOUT_S` and raise :class:`DatabaseUnavailableError` naming the address
(without credentials) and what to check.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import gridfs
import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pydantic import BaseModel, ValidationError
from pymongo import ASCENDING, MongoClient
from pymongo.errors import ConfigurationError, DuplicateKeyError, PyMongoError
from pymongo.uri_parser import parse_uri

from cgflow.db.documents import (
    AAResults,
    AARunDoc,
    ActiveRoundDoc,
    CGRunDoc,
    Document,
    FrictionDoc,
    IBIIterationDoc,
    ModelDoc,
    ParameterSetDoc,
    PotentialDoc,
    StageTiming,
    SyntheticPairDoc,
    ValidationDoc,
    aa_run_id,
    describe_validation_error,
    utcnow,
)
from cgflow.errors import CgflowError, InvalidInputError
from cgflow.params import ParameterSet
from cgflow.presets import AAPreset
from cgflow.settings import ENV_VARS
from cgflow.settings import current as current_settings
from cgflow.userfiles import read_launchpad_file

#: Collection names, by role.
PARAMETER_SETS = "parameter_sets"
AA_RUNS = "aa_runs"
IBI_ITERATIONS = "ibi_iterations"
POTENTIALS = "potentials"
CG_RUNS = "cg_runs"
FRICTIONS = "frictions"
MODELS = "models"
VALIDATIONS = "validations"
ACTIVE_ROUNDS = "active_rounds"
SYNTHETIC_PAIRS = "synthetic_pairs"
#: GridFS bucket of model weights.
MODEL_BLOBS = "model_blobs"
#: Database name used when neither the caller nor the URI names one.
DEFAULT_DB_NAME = "cgflow"
#: Environment variables consulted for credentials missing from a launchpad file.
ENV_USERNAME = ENV_VARS["db_username"]
ENV_PASSWORD = ENV_VARS["db_password"]
#: Error messages longer than this (characters) are stored with their head cut off.
MAX_ERROR_CHARS = 20_000
#: How long a check that the server answers waits, s (:meth:`Store.ping`,
#: :func:`open_launchpad`).
CHECK_TIMEOUT_S = 5.0
#: MongoDB's error code of a refused login.
AUTHENTICATION_FAILED = 18
#: What to check when the job database does not answer.
UNREACHABLE_HINT = ("Check that the server is running (embedded: cgflow db start; MongoDB: "
                    "docker compose up -d) and the host and port of the launchpad file (-l)")

D = TypeVar("D", bound=Document)


class DatabaseUnavailableError(CgflowError, RuntimeError):
    """The job database cannot be reached."""


class RunStateError(CgflowError, RuntimeError):
    """A run document is not in the state an operation needs (e.g. completing a run that
    is not running, or starting one that already completed)."""


def _match(param_ids: Iterable[str] | None = None, **equal: Any) -> dict[str, Any]:
    """A query: each field of ``equal`` that is not None must equal its value, and
    ``param_id`` be one of ``param_ids`` when given."""
    query: dict[str, Any] = {k: v for k, v in equal.items() if v is not None}
    if param_ids is not None:
        query["param_id"] = {"$in": list(param_ids)}
    return query


class StoredDocumentError(CgflowError, ValueError):
    """A document read from the database does not match its schema."""


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s'\"<>]*@")


def redact_uri(uri: str) -> str:
    """``uri`` (or any text holding URIs) with the ``user:password@`` of every URI, of any
    scheme in any case (``mongodb://``, ``MongoDB+SRV://``, ...), replaced by ``***@``."""
    return _USERINFO.sub(r"\1***@", str(uri))


def unreachable_message(where: str, exc: BaseException) -> str:
    """The message of a server that does not answer: the address, pymongo's reason (its
    first sentence, without credentials) and what to check."""
    if getattr(exc, "code", None) == AUTHENTICATION_FAILED:
        return (f"the job database at {redact_uri(where)} refused the credentials "
                "(authentication failed). Check the username and password (the launchpad "
                f"file, or ${ENV_USERNAME} / ${ENV_PASSWORD}) and authsource")
    reason = redact_uri(str(exc)).split(", Timeout:")[0].split(" (configured timeouts")[0]
    return (f"cannot reach the job database at {redact_uri(where)}: "
            f"{type(exc).__name__}: {reason[:300]}. {UNREACHABLE_HINT}")


def _checked(where: str, call: Callable[[], Any]) -> None:
    """Run ``call`` (a ping) within :data:`CHECK_TIMEOUT_S`; a failure to connect is a
    :class:`DatabaseUnavailableError` naming ``where``."""
    try:
        with pymongo.timeout(CHECK_TIMEOUT_S):
            call()
    except PyMongoError as exc:
        raise DatabaseUnavailableError(unreachable_message(where, exc)) from None


def open_launchpad(path: str | Path, *, check: bool = True) -> Any:
    """The FireWorks ``LaunchPad`` of a launchpad file, read by the one reader of user
    files (:func:`cgflow.userfiles.read_launchpad_file`) instead of FireWorks' own.

    Parameters
    ----------
    path
        The launchpad file.
    check
        Ping the server (within :data:`CHECK_TIMEOUT_S`) before returning.

    Raises
    ------
    InvalidInputError
        A bad file or field (naming it), or a URI pymongo refuses.
    DatabaseUnavailableError
        The server does not answer (naming its address and what to check).
    """
    from fireworks import LaunchPad

    path = Path(path).expanduser()
    data = dict(read_launchpad_file(path))
    host = str(data.get("host") or "localhost")
    where = host if data.get("uri_mode") else f"{host}:{data.get('port') or 27017}"
    env = current_settings()  # credentials missing from the file, as Store reads them
    username = data.get("username") or env.db_username
    if username:
        password = data.get("password") or env.db_password
        if data.get("uri_mode"):
            kwargs = dict(data.get("mongoclient_kwargs") or {})
            if "@" not in host:
                kwargs.setdefault("username", username)
                kwargs.setdefault("password", password)
            data["mongoclient_kwargs"] = kwargs
        else:
            data.update(username=username, password=password)
    try:
        lp = LaunchPad.from_dict({"host": host, **data})
    except (PyMongoError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"launchpad file {path}: field 'host': value "
                                f"{redact_uri(host)!r}: {redact_uri(str(exc))}") from None
    if check:
        _checked(where, lambda: lp.connection.admin.command("ping"))
    return lp


class Store:
    """cgflow's documents in one database of a MongoDB-protocol server.

    Parameters
    ----------
    client
        A connected ``pymongo.MongoClient`` (preferably with ``tz_aware=True``; naive
        datetimes are read as UTC anyway).
    db_name
        The database (the FireWorks launchpad's ``name``).
    owns_client
        Whether :meth:`close` closes ``client``.
    """

    def __init__(self, client: MongoClient, db_name: str, *, owns_client: bool = True,
                 description: str | None = None) -> None:
        if not db_name:
            raise InvalidInputError("field 'name': the database name must not be empty")
        self.client = client
        self.db_name = db_name
        self.db = client[db_name]
        self._owns_client = owns_client
        self._description = description or f"database {db_name!r}"
        self._fs = gridfs.GridFSBucket(self.db, bucket_name=MODEL_BLOBS)

    def __repr__(self) -> str:
        return f"Store({self._description})"

    # --- construction --------------------------------------------------------------------

    @classmethod
    def from_uri(cls, uri: str, db_name: str | None = None, **client_kwargs: Any) -> Store:
        """A store on the server at ``uri``.

        ``db_name`` defaults to the database named in the URI's path, else
        :data:`DEFAULT_DB_NAME`. ``client_kwargs`` go to ``MongoClient`` (defaults:
        ``tz_aware=True``, ``serverSelectionTimeoutMS=10000``, ``appname="cgflow"``).
        """
        try:
            parsed = parse_uri(uri)
        except (PyMongoError, ValueError) as exc:
            raise InvalidInputError(f"field 'uri': value {redact_uri(uri)!r}: {exc}") from None
        db_name = db_name or parsed.get("database") or DEFAULT_DB_NAME
        client = MongoClient(uri, **_client_defaults(client_kwargs, parsed.get("options")))
        return cls(client, db_name, description=f"{redact_uri(uri)}, database {db_name!r}")

    @classmethod
    def from_launchpad_file(cls, path: str | Path, **client_kwargs: Any) -> Store:
        """A store on the database of a FireWorks launchpad file (``my_launchpad.yaml``).

        Reads ``host`` (a MongoDB URI when ``uri_mode: true``), ``port``, ``name``,
        ``username``, ``password``, ``authsource`` and ``mongoclient_kwargs`` the way
        FireWorks does; a missing username or password is taken from
        ``$CGFLOW_DB_USERNAME`` / ``$CGFLOW_DB_PASSWORD``.
        """
        path = Path(path).expanduser()
        data = read_launchpad_file(path)
        host = str(data.get("host") or "localhost")
        name = data.get("name")
        env = current_settings()
        username = data.get("username") or env.db_username
        password = data.get("password") or env.db_password
        kwargs = {**dict(data.get("mongoclient_kwargs") or {}), **client_kwargs}
        if data.get("uri_mode") or host.startswith(("mongodb://", "mongodb+srv://")):
            try:
                parsed = parse_uri(host)
            except (PyMongoError, ValueError) as exc:
                raise InvalidInputError(
                    f"launchpad file {path}: field 'host': value {redact_uri(host)!r}: {exc}"
                ) from None
            name = name or parsed.get("database")
            if username and not parsed.get("username"):
                kwargs.setdefault("username", username)
                kwargs.setdefault("password", password)
                if data.get("authsource"):
                    kwargs.setdefault("authSource", data["authsource"])
            client = _client(path, host, lambda: MongoClient(
                host, **_client_defaults(kwargs, parsed.get("options"))))
            where = redact_uri(host)
        else:
            name = name or "fireworks"
            port = int(data.get("port") or 27017)
            if username:
                kwargs.setdefault("username", username)
                kwargs.setdefault("password", password)
                kwargs.setdefault("authSource", data.get("authsource") or name)
            client = _client(path, host, lambda: MongoClient(host, port,
                                                             **_client_defaults(kwargs)))
            where = f"{host}:{port}" + (" (authenticated)" if username else "")
        if not name:
            raise InvalidInputError(f"launchpad file {path}: field 'name': missing (required "
                                    "with uri_mode when the URI names no database)")
        return cls(client, str(name), description=f"{where}, database {name!r}")

    @classmethod
    def from_launchpad(cls, launchpad: Any) -> Store:
        """A store sharing the connection of a FireWorks ``LaunchPad`` (not closed by
        :meth:`close`)."""
        return cls(launchpad.connection, launchpad.db.name, owns_client=False,
                   description=f"the launchpad's database {launchpad.db.name!r}")

    def close(self) -> None:
        """Close the connection (if this store opened it)."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> None:
        """Check that the server answers (within :data:`CHECK_TIMEOUT_S`).

        Raises
        ------
        DatabaseUnavailableError
            Naming the server (without credentials) and the cause.
        """
        _checked(self._description, lambda: self.client.admin.command("ping"))

    # --- indexes ---------------------------------------------------------------------------

    def ensure_indexes(self) -> dict[str, list[str]]:
        """Create cgflow's indexes if missing (idempotent).

        Returns
        -------
        dict
            Collection name -> names of the indexes ensured.
        """
        spec: dict[str, list[tuple[str, list[tuple[str, int]], bool]]] = {
            PARAMETER_SETS: [("campaigns", [("campaigns", ASCENDING)], False),
                             ("space", [("space", ASCENDING)], False)],
            AA_RUNS: [("param_id_preset", [("param_id", ASCENDING), ("preset", ASCENDING)], False),
                      ("campaigns_status",
                       [("campaigns", ASCENDING), ("status", ASCENDING)], False),
                      ("status", [("status", ASCENDING)], False)],
            IBI_ITERATIONS: [
                ("param_id_preset_iteration",
                 [("param_id", ASCENDING), ("preset", ASCENDING), ("iteration", ASCENDING)], True),
                ("campaign", [("campaign", ASCENDING)], False)],
            POTENTIALS: [("param_id", [("param_id", ASCENDING)], False),
                         ("campaign_converged",
                          [("campaign", ASCENDING), ("converged", ASCENDING)], False)],
            CG_RUNS: [("param_id", [("param_id", ASCENDING)], False),
                      ("campaign_status", [("campaign", ASCENDING), ("status", ASCENDING)], False)],
            FRICTIONS: [("param_id", [("param_id", ASCENDING)], False),
                        ("campaign_status",
                         [("campaign", ASCENDING), ("status", ASCENDING)], False)],
            MODELS: [("campaign_kind", [("campaign", ASCENDING), ("kind", ASCENDING)], False)],
            VALIDATIONS: [("models_campaign", [("models_campaign", ASCENDING)], False)],
            ACTIVE_ROUNDS: [("campaign_round", [("campaign", ASCENDING), ("round", ASCENDING)],
                             True)],
            SYNTHETIC_PAIRS: [("campaign_index",
                               [("campaign", ASCENDING), ("index", ASCENDING)], True)],
        }
        out: dict[str, list[str]] = {}
        for coll, indexes in spec.items():
            for name, keys, unique in indexes:
                self.db[coll].create_index(keys, name=name, unique=unique)
                out.setdefault(coll, []).append(name)
        return out

    def counts(self) -> dict[str, int]:
        """Number of documents in each of cgflow's collections."""
        return {c: self.db[c].count_documents({}) for c in
                (PARAMETER_SETS, AA_RUNS, IBI_ITERATIONS, POTENTIALS, CG_RUNS, FRICTIONS,
                 MODELS, VALIDATIONS, ACTIVE_ROUNDS, SYNTHETIC_PAIRS)}

    # --- parameter sets --------------------------------------------------------------------

    def upsert_parameter_set(self, ps: ParameterSet, campaign: str,
                             space: str | None = None, *,
                             molecule: Any = None) -> ParameterSetDoc:
        """Record ``ps`` on ``molecule`` as part of ``campaign`` (one document per
        parameter set and molecule).

        ``molecule`` is a :class:`cgflow.molecule.registry.MoleculeSpec` (None: the
        default molecule, stored without a ``molecule`` field as in earlier versions);
        the document's id is the set's id on it. A set already stored gets ``campaign``
        added to its ``campaigns`` (no duplicate); its ``space`` is set only if it had
        none. One atomic write.
        """
        if not isinstance(ps, ParameterSet):
            raise InvalidInputError(f"field 'parameter set': expected a ParameterSet, got "
                                    f"{type(ps).__name__}: {ps!r}")
        info = None if molecule is None or molecule.is_default else molecule.summary()
        doc = ParameterSetDoc.from_parameter_set(ps, campaign, space, molecule=info)
        now = utcnow()
        current_campaigns = {"$ifNull": ["$campaigns", []]}
        pipeline = [{"$set": {
            "param_id": doc.param_id,
            "params": {"$literal": doc.params},
            "units": doc.units,
            "schema_version": {"$ifNull": ["$schema_version", doc.schema_version]},
            "campaigns": {"$cond": [
                {"$in": [{"$literal": campaign}, current_campaigns]}, current_campaigns,
                {"$concatArrays": [current_campaigns, {"$literal": [campaign]}]}]},
            "space": {"$ifNull": ["$space", {"$literal": space}]},
            "molecule": {"$literal": doc.molecule.model_dump() if doc.molecule else None},
            "created_at": {"$ifNull": ["$created_at", now]},
            "updated_at": now,
        }}]
        self.db[PARAMETER_SETS].update_one({"_id": doc.id}, pipeline, upsert=True)
        return self._require(PARAMETER_SETS, ParameterSetDoc, doc.id)

    def get_parameter_set(self, param_id: str) -> ParameterSetDoc | None:
        """The stored parameter set ``param_id``, or ``None``."""
        return self._get(PARAMETER_SETS, ParameterSetDoc, param_id)

    def parameter_sets(self, campaign: str | None = None) -> list[ParameterSetDoc]:
        """Parameter sets (of ``campaign`` if given), oldest first."""
        query = {"campaigns": campaign} if campaign is not None else {}
        return self._find(PARAMETER_SETS, ParameterSetDoc, query)

    def param_ids(self, campaign: str) -> list[str]:
        """Ids of the parameter sets of ``campaign``, oldest first."""
        cursor = self.db[PARAMETER_SETS].find({"campaigns": campaign}, {"_id": 1})
        return [d["_id"] for d in cursor.sort([("created_at", ASCENDING), ("_id", ASCENDING)])]

    # --- all-atom runs ---------------------------------------------------------------------
    #
    # States: start_aa_run -> running; record_aa_stages keeps (or puts back) a run in
    # running; complete_aa_run -> completed; fail_aa_run -> failed. A failed run may be
    # started, recorded or completed again (a rerun Firework); a completed run is final
    # unless start_aa_run(force=True).

    def start_aa_run(
        self, param_id: str, campaign: str, preset: AAPreset | str, run_dir: str | Path, *,
        run_id: str | None = None, preset_settings: Mapping[str, Any] | None = None,
        engine: Mapping[str, Any] | None = None, gromacs_version: str | None = None,
        fw_id: int | None = None, hostname: str | None = None, force: bool = False,
        molecule: Mapping[str, Any] | None = None,
    ) -> AARunDoc:
        """Record that the AA run of ``param_id`` with ``preset`` starts (status ``running``).

        A failed or interrupted run of the same parameter set and preset is reset (results,
        error and timings cleared) and its ``attempts`` counted up; ``campaign`` becomes its
        launching campaign and is added to its ``campaigns``. The parameter set must
        already be stored (:meth:`upsert_parameter_set`).

        Parameters
        ----------
        preset
            The :class:`~cgflow.presets.AAPreset` (its settings are recorded), or its name
            with ``preset_settings``.
        run_id
            If given, must equal ``f"{param_id}:{preset name}"`` (a consistency check).
        engine, gromacs_version
            Engine facts to record; ``gromacs_version`` is stored as
            ``engine["gromacs_version"]``.
        force
            Also restart a completed run (its results are dropped).
        molecule
            The molecule simulated (:class:`cgflow.db.documents.MoleculeInfo` fields:
            name, canonical SMILES, atoms per molecule, molar mass, state point).

        Raises
        ------
        InvalidInputError
            Bad field values, a mismatching ``run_id``, or an unknown parameter set.
        RunStateError
            The run already completed (and ``force`` is false).
        """
        if isinstance(preset, AAPreset):
            preset_name, settings = preset.name, preset.model_dump(mode="json")
        else:
            preset_name, settings = preset, dict(preset_settings or {})
        engine_d = dict(engine or {})
        if gromacs_version is not None:
            engine_d["gromacs_version"] = gromacs_version
        now = utcnow()
        doc = AARunDoc.validated({
            "param_id": param_id, "campaign": campaign, "preset": preset_name,
            "preset_settings": settings, "status": "running", "run_dir": str(run_dir),
            "engine": engine_d, "fw_id": fw_id, "hostname": hostname or socket.gethostname(),
            "molecule": dict(molecule) if molecule is not None else None,
            "started_at": now, "created_at": now, "updated_at": now,
        }, what="AA run document")
        if run_id is not None and run_id != doc.id:
            raise InvalidInputError(f"field 'run_id': value {run_id!r}: does not match "
                                    f"param_id and preset (expected {doc.id!r})")
        if self.get_parameter_set(param_id) is None:
            raise InvalidInputError(f"field 'param_id': value {param_id!r}: no such parameter "
                                    "set in the database (store it with upsert_parameter_set "
                                    "first)")
        fields = doc.to_mongo()
        for key in ("_id", "created_at", "attempts", "campaigns"):
            fields.pop(key)
        query: dict[str, Any] = {"_id": doc.id}
        if not force:
            query["status"] = {"$ne": "completed"}
        try:
            self.db[AA_RUNS].update_one(
                query, {"$set": fields, "$setOnInsert": {"created_at": now},
                        "$inc": {"attempts": 1}, "$addToSet": {"campaigns": campaign}},
                upsert=True)
        except DuplicateKeyError:
            raise RunStateError(
                f"AA run {doc.id} is already completed; reuse it (find_completed_aa_run) or "
                "start it with force=True to run it again"
            ) from None
        return self._require(AA_RUNS, AARunDoc, doc.id)

    def record_aa_stages(
        self, run_id: str, stages: Mapping[str, StageTiming | Mapping[str, Any]],
    ) -> AARunDoc:
        """Record the timings of finished stages of the AA run ``run_id``.

        Each value holds ``wall_s`` and optionally ``ns_per_day`` and ``dt_ps`` (see
        :class:`~cgflow.db.documents.StageTiming`), and may carry a ``corrections`` list,
        which is appended to the run's ``corrections`` with a ``stage`` key. Stages
        recorded before are replaced; ``total_wall_s`` becomes the sum over stages. A
        failed run goes back to ``running`` (its error is cleared): a rerun step
        succeeded.

        Raises
        ------
        InvalidInputError
            Bad timings (nothing written) or an unknown run.
        RunStateError
            The run is completed (or changed meanwhile).
        """
        current = self._open_aa_run(run_id, "record stages of")
        timings = {k: v.model_dump() for k, v in current.timings.items()}
        corrections = list(current.corrections)
        for stage, value in stages.items():
            entry = value.model_dump() if isinstance(value, StageTiming) else dict(value)
            for corr in entry.pop("corrections", None) or []:
                corrections.append({"stage": stage, **dict(corr)})
            timings[stage] = entry
        new = AARunDoc.validated({
            **current.to_mongo(), "status": "running", "error": None, "timings": timings,
            "corrections": corrections, "total_wall_s": _total_wall_s(timings),
            "updated_at": utcnow(),
        }, what=f"AA run {run_id}")
        return self._replace_aa_run(current, new)

    def complete_aa_run(
        self, run_id: str, results: AAResults | Mapping[str, Any] | Any,
        timings: Mapping[str, StageTiming | Mapping[str, Any]] | None = None,
        engine: Mapping[str, Any] | None = None,
        corrections: Iterable[Mapping[str, Any]] | None = None,
        total_wall_s: float | None = None,
    ) -> AARunDoc:
        """Mark the AA run ``run_id`` (running, or failed and now fixed) completed.

        Parameters
        ----------
        results
            An :class:`~cgflow.db.documents.AAResults`, a mapping in its layout, or a
            mapping / pydantic model in the flat layout of
            :meth:`~cgflow.db.documents.AAResults.from_flat` (recognised by ``rdf_r_nm``).
        timings
            Stage timings to add to those recorded (:meth:`record_aa_stages`).
        engine
            Merged into the recorded engine facts.
        corrections
            Appended to the recorded corrections.
        total_wall_s
            Default: the sum of all stage timings.

        Raises
        ------
        InvalidInputError
            Bad results/timings (nothing written) or an unknown run.
        RunStateError
            The run is completed already (or changed meanwhile).
        """
        current = self._open_aa_run(run_id, "complete")
        results_d = _results_dict(results)
        timings_d = {k: v.model_dump() for k, v in current.timings.items()}
        timings_d.update({k: (v.model_dump() if isinstance(v, StageTiming) else dict(v))
                          for k, v in (timings or {}).items()})
        now = utcnow()
        new = AARunDoc.validated({
            **current.to_mongo(), "status": "completed", "results": results_d,
            "timings": timings_d, "engine": {**current.engine, **dict(engine or {})},
            "corrections": [*current.corrections, *(dict(c) for c in corrections or [])],
            "error": None, "finished_at": now, "updated_at": now,
            "total_wall_s": total_wall_s if total_wall_s is not None
            else _total_wall_s(timings_d),
        }, what=f"AA run {run_id}")
        return self._replace_aa_run(current, new)

    def fail_aa_run(self, run_id: str, error: str,
                    corrections: Iterable[Mapping[str, Any]] | None = None) -> AARunDoc:
        """Mark the AA run ``run_id`` failed with ``error`` (kept to its last
        :data:`MAX_ERROR_CHARS` characters); ``corrections`` are appended.

        Raises
        ------
        InvalidInputError
            An unknown run or an empty error.
        RunStateError
            The run is completed (or changed meanwhile).
        """
        current = self._open_aa_run(run_id, "fail")
        text = str(error)
        if len(text) > MAX_ERROR_CHARS:
            text = "...\n" + text[-MAX_ERROR_CHARS:]
        now = utcnow()
        new = AARunDoc.validated({
            **current.to_mongo(), "status": "failed", "error": text, "finished_at": now,
            "updated_at": now,
            "corrections": [*current.corrections, *(dict(c) for c in corrections or [])],
        }, what=f"AA run {run_id}")
        return self._replace_aa_run(current, new)

    def link_aa_run_to_campaign(self, run_id: str, campaign: str) -> AARunDoc:
        """Add ``campaign`` to the ``campaigns`` of the AA run ``run_id`` (a reused run).

        Raises
        ------
        InvalidInputError
            An unknown run or a bad campaign name.
        """
        current = self.get_aa_run(run_id)
        if current is None:
            raise InvalidInputError(f"field 'run_id': value {run_id!r}: no such AA run")
        AARunDoc.validated({**current.to_mongo(), "campaigns": [*current.campaigns, campaign]
                            if campaign not in current.campaigns else current.campaigns},
                           what=f"AA run {run_id}")
        self.db[AA_RUNS].update_one({"_id": run_id}, {"$addToSet": {"campaigns": campaign},
                                                      "$set": {"updated_at": utcnow()}})
        return self._require(AA_RUNS, AARunDoc, run_id)

    def get_aa_run(self, run_id: str) -> AARunDoc | None:
        """The AA run ``run_id`` (``param_id:preset``), or ``None``."""
        return self._get(AA_RUNS, AARunDoc, run_id)

    def find_completed_aa_run(self, param_id: str, preset: AAPreset | str) -> AARunDoc | None:
        """The completed AA run of ``param_id`` with the preset (object or name), if any,
        whichever campaign ran it.

        Presets are matched by name: a preset whose settings change must get a new name.
        """
        name = preset.name if isinstance(preset, AAPreset) else preset
        raw = self.db[AA_RUNS].find_one({"_id": aa_run_id(param_id, name),
                                         "status": "completed"})
        return None if raw is None else self._load(AA_RUNS, AARunDoc, raw)

    def aa_runs(self, campaign: str | None = None, status: str | None = None,
                preset: str | None = None,
                param_ids: Iterable[str] | None = None) -> list[AARunDoc]:
        """AA runs used by ``campaign`` (launched or linked), with ``status``, ``preset``
        and/or among ``param_ids``; oldest first."""
        return self._find(AA_RUNS, AARunDoc, _match(param_ids, campaigns=campaign,
                                                     status=status, preset=preset))

    def _open_aa_run(self, run_id: str, action: str) -> AARunDoc:
        current = self.get_aa_run(run_id)
        if current is None:
            raise InvalidInputError(f"field 'run_id': value {run_id!r}: no such AA run")
        if current.status == "completed":
            raise RunStateError(f"cannot {action} AA run {run_id}: it is already completed")
        return current

    def _replace_aa_run(self, current: AARunDoc, new: AARunDoc) -> AARunDoc:
        """Replace ``current`` by ``new`` unless the stored run changed since it was read."""
        result = self.db[AA_RUNS].replace_one(
            {"_id": current.id, "status": current.status, "attempts": current.attempts,
             "updated_at": current.updated_at},
            new.to_mongo())
        if result.matched_count != 1:
            raise RunStateError(f"AA run {current.id} changed while being updated "
                                "(another process restarted or finished it); nothing written")
        return self._require(AA_RUNS, AARunDoc, new.id)

    # --- IBI, potentials, CG runs ----------------------------------------------------------

    def save_ibi_iteration(self, doc: IBIIterationDoc | Mapping[str, Any]) -> IBIIterationDoc:
        """Store (or replace) one IBI iteration."""
        return self._save(IBI_ITERATIONS, IBIIterationDoc, doc, "IBI iteration document")

    def ibi_iterations(self, param_id: str, preset: str) -> list[IBIIterationDoc]:
        """The IBI iterations of ``param_id`` with ``preset``, by iteration number."""
        cursor = self.db[IBI_ITERATIONS].find({"param_id": param_id, "preset": preset})
        return [self._load(IBI_ITERATIONS, IBIIterationDoc, raw)
                for raw in cursor.sort("iteration", ASCENDING)]

    def delete_ibi_iterations(self, param_id: str, preset: str) -> int:
        """Delete the IBI iterations of ``param_id`` with ``preset`` (before a fresh IBI);
        returns how many were deleted."""
        return self.db[IBI_ITERATIONS].delete_many(
            {"param_id": param_id, "preset": preset}).deleted_count

    def save_potential(self, doc: PotentialDoc | Mapping[str, Any]) -> PotentialDoc:
        """Store (or replace) the final potential of a parameter set and preset."""
        return self._save(POTENTIALS, PotentialDoc, doc, "potential document")

    def get_potential(self, param_id: str, preset: str) -> PotentialDoc | None:
        """The final potential of ``param_id`` with ``preset``, or ``None``."""
        return self._get(POTENTIALS, PotentialDoc, f"{param_id}:{preset}")

    def potentials(self, campaign: str | None = None, converged: bool | None = None,
                   param_ids: Iterable[str] | None = None) -> list[PotentialDoc]:
        """Final potentials, filtered by campaign, convergence and/or parameter set ids,
        oldest first."""
        return self._find(POTENTIALS, PotentialDoc,
                          _match(param_ids, campaign=campaign, converged=converged))

    def save_cg_run(self, doc: CGRunDoc | Mapping[str, Any]) -> CGRunDoc:
        """Store (or replace) the CG production run of a parameter set and preset."""
        return self._save(CG_RUNS, CGRunDoc, doc, "CG run document")

    def get_cg_run(self, param_id: str, preset: str) -> CGRunDoc | None:
        """The CG run of ``param_id`` with ``preset``, or ``None``."""
        return self._get(CG_RUNS, CGRunDoc, f"{param_id}:{preset}")

    def cg_runs(self, campaign: str | None = None, status: str | None = None,
                param_ids: Iterable[str] | None = None) -> list[CGRunDoc]:
        """CG runs filtered by campaign, status and/or parameter set ids, oldest first."""
        return self._find(CG_RUNS, CGRunDoc, _match(param_ids, campaign=campaign, status=status))

    # --- friction calibrations -------------------------------------------------------------

    def save_friction(self, doc: FrictionDoc | Mapping[str, Any]) -> FrictionDoc:
        """Store (or replace) the friction calibration of a parameter set and preset."""
        return self._save(FRICTIONS, FrictionDoc, doc, "friction calibration document")

    def get_friction(self, param_id: str, preset: str) -> FrictionDoc | None:
        """The friction calibration of ``param_id`` with ``preset``, or ``None``."""
        return self._get(FRICTIONS, FrictionDoc, f"{param_id}:{preset}")

    def frictions(self, campaign: str | None = None, status: str | None = None,
                  param_ids: Iterable[str] | None = None) -> list[FrictionDoc]:
        """Friction calibrations filtered by campaign, status and/or parameter set ids,
        oldest first."""
        return self._find(FRICTIONS, FrictionDoc,
                          _match(param_ids, campaign=campaign, status=status))

    # --- models and GridFS -----------------------------------------------------------------

    def put_model_blob(self, data: bytes, filename: str,
                       metadata: Mapping[str, Any] | None = None) -> str:
        """Store ``data`` in GridFS (bucket ``model_blobs``); returns the file id as a string."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInputError(f"field 'data': expected bytes, got {type(data).__name__}")
        file_id = self._fs.upload_from_stream(filename, bytes(data),
                                              metadata=dict(metadata or {}))
        return str(file_id)

    def get_model_blob(self, gridfs_id: str) -> bytes:
        """The bytes of the GridFS file ``gridfs_id``.

        Raises
        ------
        InvalidInputError
            When there is no such file.
        """
        try:
            stream = self._fs.open_download_stream(ObjectId(gridfs_id))
        except (InvalidId, TypeError, gridfs.errors.NoFile):
            raise InvalidInputError(f"field 'gridfs_id': value {gridfs_id!r}: no such model "
                                    "blob") from None
        with stream:
            return stream.read()

    def delete_model_blob(self, gridfs_id: str) -> bool:
        """Delete the GridFS file ``gridfs_id``; ``False`` if there was none."""
        try:
            self._fs.delete(ObjectId(gridfs_id))
        except (InvalidId, TypeError, gridfs.errors.NoFile):
            return False
        return True

    def save_model(self, doc: ModelDoc | Mapping[str, Any],
                   blob: bytes | None = None) -> ModelDoc:
        """Store (or replace) a model document, with its weights ``blob`` if given.

        The blob goes to GridFS first and is deleted again if the document cannot be
        written; a replaced model's previous blob is deleted after the write. Without
        ``blob`` (and without ``gridfs_id`` in ``doc``) a stored model keeps its weights.
        """
        doc = ModelDoc.validated(doc, what="model document")
        previous = self.get_model(doc.campaign, doc.name)
        new_blob_id = None
        if blob is None and doc.gridfs_id is None and previous is not None:
            doc = ModelDoc.validated({  # keep the stored weights
                **doc.to_mongo(), "gridfs_id": previous.gridfs_id,
                "blob_size": previous.blob_size, "blob_sha256": previous.blob_sha256,
            }, what="model document")
        if blob is not None:
            new_blob_id = self.put_model_blob(
                blob, f"{doc.campaign}:{doc.name}",
                {"campaign": doc.campaign, "name": doc.name, "kind": doc.kind})
            doc = ModelDoc.validated({
                **doc.to_mongo(), "gridfs_id": new_blob_id, "blob_size": len(blob),
                "blob_sha256": hashlib.sha256(blob).hexdigest()}, what="model document")
        try:
            saved = self._save(MODELS, ModelDoc, doc, "model document")
        except BaseException:
            if new_blob_id is not None:
                self.delete_model_blob(new_blob_id)
            raise
        if (new_blob_id is not None and previous is not None and previous.gridfs_id
                and previous.gridfs_id != new_blob_id):
            self.delete_model_blob(previous.gridfs_id)
        return saved

    def delete_model(self, campaign: str, name: str) -> bool:
        """Delete the model ``name`` of ``campaign`` and its weights; False if absent."""
        doc = self.get_model(campaign, name)
        if doc is None:
            return False
        self.db[MODELS].delete_one({"_id": doc.id})
        if doc.gridfs_id:
            self.delete_model_blob(doc.gridfs_id)
        return True

    def get_model(self, campaign: str, name: str) -> ModelDoc | None:
        """The model ``name`` of ``campaign``, or ``None``."""
        return self._get(MODELS, ModelDoc, f"{campaign}:{name}")

    def models(self, campaign: str | None = None, kind: str | None = None) -> list[ModelDoc]:
        """Models filtered by campaign and/or kind, oldest first."""
        return self._find(MODELS, ModelDoc, _match(campaign=campaign, kind=kind))

    # --- closed-loop validations -----------------------------------------------------------

    def save_validation(self, doc: ValidationDoc | Mapping[str, Any]) -> ValidationDoc:
        """Store (or replace) the validation of one set by one campaign's models."""
        return self._save(VALIDATIONS, ValidationDoc, doc, "validation document")

    def validations(self, models_campaign: str | None = None) -> list[ValidationDoc]:
        """Validations, filtered by the campaign whose models were validated, oldest first."""
        query = {} if models_campaign is None else {"models_campaign": models_campaign}
        return self._find(VALIDATIONS, ValidationDoc, query)

    # --- active-learning rounds ------------------------------------------------------------

    def insert_active_round(self, doc: ActiveRoundDoc | Mapping[str, Any]) -> ActiveRoundDoc:
        """Store a round of an active campaign once: one insert, atomic. A round already
        stored (a rerun round step, or two at once) is kept and returned instead, so
        every caller gets the same round."""
        doc = ActiveRoundDoc.validated(doc, what="active round document")
        try:
            self.db[ACTIVE_ROUNDS].insert_one(doc.to_mongo())
        except DuplicateKeyError:
            pass
        return self._require(ACTIVE_ROUNDS, ActiveRoundDoc, doc.id)

    def get_active_round(self, campaign: str, round_index: int) -> ActiveRoundDoc | None:
        """Round ``round_index`` of ``campaign``, or ``None``."""
        return self._get(ACTIVE_ROUNDS, ActiveRoundDoc, f"{campaign}:{round_index}")

    def active_rounds(self, campaign: str) -> list[ActiveRoundDoc]:
        """The stored rounds of ``campaign``, in round order."""
        cursor = self.db[ACTIVE_ROUNDS].find({"campaign": campaign}).sort("round", ASCENDING)
        return [self._load(ACTIVE_ROUNDS, ActiveRoundDoc, raw) for raw in cursor]

    # --- synthetic structure-potential pairs -------------------------------------------

    def save_synthetic_pair(self, doc: SyntheticPairDoc | Mapping[str, Any]
                            ) -> SyntheticPairDoc:
        """Store (or replace) one synthetic pair of a campaign."""
        return self._save(SYNTHETIC_PAIRS, SyntheticPairDoc, doc, "synthetic pair document")

    def synthetic_pair_indices(self, campaign: str) -> list[int]:
        """Indices of the stored pairs of ``campaign``, ascending."""
        cursor = self.db[SYNTHETIC_PAIRS].find({"campaign": campaign}, {"index": 1})
        return sorted(int(d["index"]) for d in cursor)

    def synthetic_pairs(self, campaign: str, preset: str | None = None
                        ) -> list[SyntheticPairDoc]:
        """The stored pairs of ``campaign`` (optionally of one preset), in index order."""
        cursor = self.db[SYNTHETIC_PAIRS].find(_match(campaign=campaign, preset=preset))
        return [self._load(SYNTHETIC_PAIRS, SyntheticPairDoc, raw)
                for raw in cursor.sort("index", ASCENDING)]

    # --- generic helpers -------------------------------------------------------------------

    def _load(self, coll: str, cls: type[D], raw: Mapping[str, Any]) -> D:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise StoredDocumentError(
                describe_validation_error(exc, f"{coll} document {raw.get('_id')!r}")) from None

    def _get(self, coll: str, cls: type[D], doc_id: str) -> D | None:
        raw = self.db[coll].find_one({"_id": doc_id})
        return None if raw is None else self._load(coll, cls, raw)

    def _require(self, coll: str, cls: type[D], doc_id: str) -> D:
        doc = self._get(coll, cls, doc_id)
        if doc is None:  # only if someone deleted it between the write and this read
            raise StoredDocumentError(f"{coll} document {doc_id!r} vanished right after "
                                      "being written")
        return doc

    def _find(self, coll: str, cls: type[D], query: Mapping[str, Any]) -> list[D]:
        cursor = self.db[coll].find(dict(query))
        return [self._load(coll, cls, raw)
                for raw in cursor.sort([("created_at", ASCENDING), ("_id", ASCENDING)])]

    def _save(self, coll: str, cls: type[D], doc: D | Mapping[str, Any], what: str) -> D:
        """Validate, then replace-or-insert by ``_id`` keeping the first ``created_at``."""
        doc = cls.validated(doc, what=what)
        existing = self.db[coll].find_one({"_id": doc.id}, {"created_at": 1})
        data = doc.to_mongo()
        data["updated_at"] = utcnow()
        if existing is not None and existing.get("created_at") is not None:
            data["created_at"] = existing["created_at"]
        self.db[coll].replace_one({"_id": doc.id}, data, upsert=True)
        return self._require(coll, cls, doc.id)


def _total_wall_s(timings: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Sum of ``wall_s`` over stages (``None`` without stages or with a bad value, which
    validation then reports)."""
    try:
        return sum(float(t["wall_s"]) for t in timings.values()) if timings else None
    except (KeyError, TypeError, ValueError):
        return None


def _results_dict(results: Any) -> Any:
    """AA results as a mapping in :class:`AAResults` layout (flat layouts converted)."""
    if isinstance(results, AAResults):
        return results.model_dump()
    data = results.model_dump() if isinstance(results, BaseModel) else results
    if isinstance(data, Mapping) and "rdf_r_nm" in data:
        return AAResults.from_flat(data).model_dump()
    return data


def _client(path: Path, host: str, make: Callable[[], MongoClient]) -> MongoClient:
    """``make()``, with pymongo's refusal of the file's settings (an unknown option, a bad
    value) as an :class:`InvalidInputError` naming the file."""
    try:
        return make()
    except (ConfigurationError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"launchpad file {path}: host {redact_uri(host)!r} or "
                                f"mongoclient_kwargs: {redact_uri(str(exc))}") from None


def _client_defaults(kwargs: Mapping[str, Any],
                     uri_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """MongoClient keyword arguments: cgflow's defaults, unless set in the URI's options or
    in ``kwargs``."""
    in_uri = {str(k).lower() for k in (uri_options or {})}
    defaults = {"tz_aware": True, "serverSelectionTimeoutMS": 10_000, "appname": "cgflow"}
    out = {k: v for k, v in defaults.items() if k.lower() not in in_uri}
    out.update(kwargs)
    return out
