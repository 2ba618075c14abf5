"""The one reader of files users hand to cgflow: campaign specs, parameter sets,
launchpad files.

Read safely and with limits: the file must be a regular file of at most
:data:`MAX_BYTES`, UTF-8 text, YAML (JSON is YAML) loaded with PyYAML's safe loader and
stricter still: a key given twice in one mapping and YAML aliases (``*name``, the
material of "billion laughs" bombs) are refused, and the top level must be a mapping.
Every failure is an :class:`~cgflow.errors.InvalidInputError` naming the file and what
is wrong, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cgflow.errors import InvalidInputError

#: Largest user file read, bytes (a campaign spec with hundreds of explicit sets is tens
#: of kB).
MAX_BYTES = 1_000_000


class _StrictSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and without repeated keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, f"YAML alias *{event.anchor} is not allowed (anchors and aliases "
                "are refused in cgflow's input files)", event.start_mark)
        return super().compose_node(parent, index)

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
    try:
        if not p.exists():
            raise InvalidInputError(f"{what} {p}: no such file")
        if not p.is_file():
            raise InvalidInputError(f"{what} {p}: not a regular file")
        size = p.stat().st_size
        if size > max_bytes:
            raise InvalidInputError(f"{what} {p}: {size} bytes, more than the {max_bytes} "
                                    "a cgflow input file may have")
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
