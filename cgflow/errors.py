"""Exceptions of cgflow and the formatting of validation errors for people."""

from __future__ import annotations

from pydantic import ValidationError


class CgflowError(Exception):
    """Base class of cgflow's own errors."""


class InvalidInputError(CgflowError, ValueError):
    """Bad user input (a parameter set, a campaign spec, a command-line value).

    The message names the offending field and its value. Nothing has been written
    anywhere when this is raised.
    """


class EngineError(CgflowError, RuntimeError):
    """An engine run (GROMACS, LAMMPS) failed in a way cgflow could not correct."""


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn a pydantic ``ValidationError`` into lines that name each field and value.

    Parameters
    ----------
    exc
        The error raised by pydantic.
    source
        What was being validated (a file name, "parameter set", ...).
    """
    lines = [f"{source}: {exc.error_count()} invalid field(s)"]
    for err in exc.errors():
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
