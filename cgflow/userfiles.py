"""The one reader of files users hand to cgflow: campaign specs, parameter sets,
launchpad and FireWorker files (YAML), ``sets.json`` of exported datasets (JSON) and
``dataset.npz`` (NumPy).

Read safely and with limits: the file must be a regular file of at most
:data:`MAX_BYTES` (:data:`MAX_DATA_BYTES` for the JSON and npz files of datasets),
UTF-8 text, YAML (JSON is YAML) loaded with PyYAML's safe loader and stricter still: a
key given twice in one mapping and YAML aliases (``*name``, the material of "billion
laughs" bombs) are refused, nothing may be nested deeper than :data:`MAX_DEPTH` levels,
and the top level must be a mapping. An ``.npz`` file is opened as a zip archive of
plain ``.npy`` arrays only (never a pickle), its unpacked size bounded by
:data:`MAX_NPZ_UNPACKED_BYTES`. Every failure is an
:class:`~cgflow.errors.InvalidInputError` naming the file and what is wrong, never a
traceback.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cgflow.errors import InvalidInputError

#: Largest user file read, bytes (a campaign spec with hundreds of explicit sets is tens
#: of kB).
MAX_BYTES = 1_000_000
#: Largest ``sets.json`` or ``dataset.npz`` read, bytes (an export of 10000 sets is about
#: 17 MB of JSON).
MAX_DATA_BYTES = 256_000_000
#: Largest total size of the arrays unpacked from one ``.npz`` file, bytes (a zip bomb
#: stops here).
MAX_NPZ_UNPACKED_BYTES = 1_000_000_000
#: Deepest nesting of mappings and lists in a user file (a campaign spec needs 4).
MAX_DEPTH = 16


class _StrictSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, without repeated keys and without deep
    nesting."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, f"YAML alias *{event.anchor} is not allowed (anchors and aliases "
                "are refused in cgflow's input files)", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # noqa: D102
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                continue  # unhashable: the base class reports it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"key {key!r} given twice (first at line {seen[key].line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def read_text(path: str | Path, what: str, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of a user file.

    Raises
    ------
    InvalidInputError
        Missing, not a regular file, larger than ``max_bytes``, unreadable or not UTF-8.
    """
    p = Path(path)
    read_text_checks(p, what, max_bytes)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{what} {p}: cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{what} {p}: not UTF-8 text (byte {exc.start}: "
                                f"{data[exc.start:exc.start + 1]!r})") from None


def yaml_mapping(text: str, source: str) -> dict[str, Any]:
    """A YAML (or JSON) mapping from text, strictly (see the module docstring).

    Raises
    ------
    InvalidInputError
        Malformed YAML (with line and column), an alias, a repeated key, or a top level
        that is not a mapping; the message starts with ``source``.
    """
    if "\0" in text:
        raise InvalidInputError(f"{source}: not a text file (it holds NUL bytes)")
    try:
        data = yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInputError(f"{source}: malformed YAML{where} (not valid YAML): "
                                f"{problem}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{source}: expected a mapping of fields at the top level, "
                                f"got {type(data).__name__}: {str(data)[:80]!r}")
    return data


def read_yaml_mapping(path: str | Path, what: str,
                      max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """:func:`read_text` then :func:`yaml_mapping` (the message names ``what`` and the
    file)."""
    return yaml_mapping(read_text(path, what, max_bytes), f"{what} {Path(path)}")


# --- JSON and npz: the files of exported datasets ----------------------------------------------


def _depth(value: Any) -> int:
    """Nesting depth of lists and mappings (a scalar is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(v, Mapping):
            stack += [(x, d + 1) for x in v.values()]
        elif isinstance(v, list):
            stack += [(x, d + 1) for x in v]
    return deepest


def read_json_mapping(path: str | Path, what: str,
                      max_bytes: int = MAX_DATA_BYTES) -> dict[str, Any]:
    """A JSON object from a user file: the checks of :func:`read_text`, a key given twice
    in one object refused, at most :data:`MAX_DEPTH` levels, a mapping at the top.

    ``NaN`` and ``Infinity`` are read as floats (Python's json writes them).

    Raises
    ------
    InvalidInputError
        Naming ``what``, the file and, for malformed JSON, the line and column.
    """
    source = f"{what} {Path(path)}"
    text = read_text(path, what, max_bytes)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise InvalidInputError(f"{source}: key {key!r} given twice in one object")
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{source}: malformed JSON at line {exc.lineno}, column "
                                f"{exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InvalidInputError(f"{source}: nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{source}: expected a JSON object at the top level, got "
                                f"{type(data).__name__}: {str(data)[:80]!r}")
    if _depth(data) > MAX_DEPTH:
        raise InvalidInputError(f"{source}: nested deeper than {MAX_DEPTH} levels")
    return data


def read_npz_arrays(path: str | Path, what: str, *, required: Iterable[str],
                    optional: Iterable[str] = (), max_bytes: int = MAX_DATA_BYTES
                    ) -> dict[str, np.ndarray]:
    """The arrays of a NumPy ``.npz`` file, without pickles and with limits.

    Parameters
    ----------
    path
        The file.
    what
        What it is, for messages ("dataset file").
    required, optional
        The array names it must and may hold; any other name is refused.
    max_bytes
        Largest file size.

    Returns
    -------
    dict
        Name -> array (numbers, booleans or strings; object arrays are refused).

    Raises
    ------
    InvalidInputError
        Not a zip of ``.npy`` arrays (garbage, YAML, a pickle), a missing or unknown
        array, an array of Python objects, or more than :data:`MAX_NPZ_UNPACKED_BYTES`
        unpacked; the message names the file and the array.
    """
    p = Path(path)
    source = f"{what} {p}"
    read_text_checks(p, what, max_bytes)
    required, optional = list(required), list(optional)
    try:
        if not zipfile.is_zipfile(p):
            raise InvalidInputError(f"{source}: not a NumPy .npz file (not a zip archive of "
                                    ".npy arrays)")
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(f"{source}: cannot be read as a .npz file: {exc}") from None
    names = []
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise InvalidInputError(f"{source}: member {info.filename!r} is not a .npy array")
        names.append(info.filename[:-4])
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_NPZ_UNPACKED_BYTES:
        raise InvalidInputError(f"{source}: {unpacked} bytes unpacked, more than the "
                                f"{MAX_NPZ_UNPACKED_BYTES} a cgflow input file may have")
    unknown = sorted(set(names) - set(required) - set(optional))
    if unknown:
        raise InvalidInputError(f"{source}: unknown array(s) {unknown} (expected "
                                f"{sorted(required)}, optionally {sorted(optional)})")
    missing = [n for n in required if n not in names]
    if missing:
        raise InvalidInputError(f"{source}: array(s) {missing} missing (required)")
    out: dict[str, np.ndarray] = {}
    try:
        with np.load(p, allow_pickle=False) as data:
            for name in names:
                try:
                    arr = data[name]
                except ValueError as exc:  # object arrays need pickle: refused
                    raise InvalidInputError(f"{source}: array {name!r}: {exc}") from None
                if arr.dtype.kind not in "biufUS":
                    raise InvalidInputError(f"{source}: array {name!r}: dtype {arr.dtype} "
                                            "is not numbers or text")
                out[name] = arr
    except InvalidInputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(f"{source}: cannot be read as a .npz file: "
                                f"{type(exc).__name__}: {exc}") from None
    return out


def read_text_checks(path: Path, what: str, max_bytes: int) -> None:
    """The checks of :func:`read_text` without reading: exists, a regular file, at most
    ``max_bytes``."""
    try:
        if not path.exists():
            raise InvalidInputError(f"{what} {path}: no such file")
        if not path.is_file():
            raise InvalidInputError(f"{what} {path}: not a regular file")
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInputError(f"{what} {path}: cannot be read: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise InvalidInputError(f"{what} {path}: {size} bytes, more than the {max_bytes} "
                                "a cgflow input file may have")


# --- FireWorks files: launchpad and FireWorker ---------------------------------------------


def _field_check(source: str, data: Mapping[str, Any], key: str, types: tuple[type, ...],
                 expect: str) -> None:
    value = data.get(key)
    if value is None:
        return
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        raise InvalidInputError(f"{source}: field {key!r}: value {value!r}: expected {expect}")


def _fields_check(source: str, data: Mapping[str, Any],
                  rules: Mapping[str, tuple[tuple[type, ...], str]]) -> None:
    """:func:`_field_check` of every ``key: (types, expected)`` of ``rules``."""
    for key, (types, expect) in rules.items():
        _field_check(source, data, key, types, expect)


_TEXT = ((str,), "text")

#: The checked fields of a launchpad file (the port's range is checked apart).
LAUNCHPAD_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    **{key: _TEXT for key in ("host", "name", "username", "password", "authsource", "logdir",
                              "strm_lvl")},
    "uri_mode": ((bool,), "true or false"),
    "mongoclient_kwargs": ((dict,), "a mapping"),
    "port": ((int,), "an integer port from 1 to 65535"),
}

#: The checked fields of a FireWorker file (a category list's items are checked apart).
FWORKER_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": _TEXT,
    "category": ((str, list), "text or a list of text"),
    "query": ((dict, str), "a mapping (a MongoDB query)"),
    "env": ((dict,), "a mapping"),
}


def read_launchpad_file(path: str | Path) -> dict[str, Any]:
    """A FireWorks launchpad file (``my_launchpad.yaml``), its fields checked.

    ``host`` (a name or address, or a MongoDB URI with ``uri_mode``) and ``name`` are
    text, ``port`` an integer from 1 to 65535, ``username``/``password``/``authsource``
    text, ``uri_mode`` a boolean, ``mongoclient_kwargs`` a mapping. Other fields are kept
    as they are (FireWorks ignores what it does not know).

    Raises
    ------
    InvalidInputError
        Naming the file, the field and the value.
    """
    source = f"launchpad file {Path(path)}"
    data = read_yaml_mapping(path, "launchpad file")
    if not data.get("host") and not data.get("name"):
        raise InvalidInputError(f"{source}: expected the fields 'host' and 'name' of a "
                                f"FireWorks launchpad file, got {sorted(map(str, data))}")
    _fields_check(source, data, LAUNCHPAD_FIELDS)
    port = data.get("port")
    if port is not None and not 1 <= port <= 65535:
        raise InvalidInputError(f"{source}: field 'port': value {port!r}: expected an "
                                "integer port from 1 to 65535")
    return data


def read_fworker_file(path: str | Path) -> dict[str, Any]:
    """A FireWorks FireWorker file (``my_fworker.yaml``, ``cgflow launch -w``), its fields
    checked: ``name`` and ``category`` text (or a list of text for ``category``),
    ``query`` and ``env`` mappings.

    Raises
    ------
    InvalidInputError
        Naming the file, the field and the value.
    """
    source = f"FireWorker file {Path(path)}"
    data = read_yaml_mapping(path, "FireWorker file")
    _fields_check(source, data, FWORKER_FIELDS)
    if isinstance(data.get("category"), list) and not all(
            isinstance(c, str) for c in data["category"]):
        raise InvalidInputError(f"{source}: field 'category': value {data['category']!r}: "
                                "expected text or a list of text")
    return data

