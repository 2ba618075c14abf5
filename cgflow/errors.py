"""Exceptions of cgflow, and the formatting for people of validation errors and of writes
that failed."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from pydantic import ValidationError


class CgflowError(Exception):
    """Base class of cgflow's own errors."""


class InvalidInputError(CgflowError, ValueError):
    """Bad user input (a parameter set, a campaign spec, a command-line value).

    The message names the offending field and its value. Nothing has been written
    anywhere when this is raised. ``errors`` keeps the pydantic errors it was made from
    (if any), so that a model validated inside another names the field by its full path.
    """

    def __init__(self, message: str, *, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])

    @classmethod
    def from_validation_error(cls, exc: ValidationError, source: str) -> InvalidInputError:
        """The error of a failed pydantic validation (:func:`format_validation_error`)."""
        return cls(format_validation_error(exc, source), errors=exc.errors())


class EngineError(CgflowError, RuntimeError):
    """An engine run (GROMACS, LAMMPS) failed in a way cgflow could not correct."""


def _expanded(errors: list[dict], prefix: tuple = ()) -> list[dict]:
    """Pydantic errors with those raised by a nested model's own validation (an
    :class:`InvalidInputError` carrying ``errors``) replaced by its errors, located
    under the nested field."""
    out = []
    for err in errors:
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, InvalidInputError) and inner.errors:
            out += _expanded(inner.errors, prefix + tuple(err["loc"]))
        else:
            out.append(dict(err, loc=prefix + tuple(err["loc"])))
    return out


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn a pydantic ``ValidationError`` into lines that name each field and value.

    Parameters
    ----------
    exc
        The error raised by pydantic.
    source
        What was being validated (a file name, "parameter set", ...).
    """
    errors = _expanded(exc.errors())
    lines = [f"{source}: {len(errors)} invalid field(s)"]
    for err in errors:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            lines.append(f"  field '{loc}': missing (required)")
            continue
        value = err.get("input")
        lines.append(f"  field '{loc}': value {value!r}: {msg}")
    return "\n".join(lines)


def write_failure(exc: OSError, directory: str | Path) -> str:
    """What an ``OSError`` raised while writing in ``directory`` means, for a message.

    The system's reason (``[Errno 28] No space left on device``), the file when the
    system named it (a full disk fails on ``write``, where Python names none), the
    directory, and for a full disk or quota the free space left on its file system.
    """
    what = f"[Errno {exc.errno}] {exc.strerror}" if exc.errno else str(exc)
    where = str(exc.filename) if exc.filename else "a file"
    text = f"cannot write {where} in {directory}: {what}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            return text
        text += f" ({free} bytes free on the file system of {directory})"
    return text


#: Free space (bytes) below which a run directory's file system counts as full for
#: :func:`full_disk_note`: no MD run of cgflow's writes its outputs in less.
FULL_DISK_BYTES = 1 << 20


def full_disk_note(directory: str | Path) -> str | None:
    """A sentence for a failure message when ``directory``'s file system is full.

    An engine that cannot write often leaves a truncated file or an exit code without
    saying why; this names the likely cause. None when more than
    :data:`FULL_DISK_BYTES` are free (or the space cannot be read). A heuristic: the
    disk may have filled for another reason than the failed run.
    """
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return None
    if free >= FULL_DISK_BYTES:
        return None
    return (f"the file system of {directory} is full: {free} bytes free (No space left on "
            "device)")
