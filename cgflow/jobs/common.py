"""What the GROMACS and LAMMPS Custodian jobs share: reading Custodian's run log.

Custodian records each job run as a dict whose ``corrections`` list holds, per correction,
the handler object, its ``errors`` and its ``actions`` (None or empty when the handler gave
up). The run reports and failure messages of :mod:`cgflow.jobs.gromacs.job` and
:mod:`cgflow.jobs.lammps.job` show them as plain, JSON-ready dicts.
"""

from __future__ import annotations


def run_log_corrections(run_log: list[dict] | None) -> list[dict]:
    """The corrections of a Custodian run log, in order.

    Returns
    -------
    list of dict
        One dict per correction: ``handler`` (class name, or None), ``errors`` and
        ``actions`` (lists, empty when the handler gave none).
    """
    out = []
    for entry in run_log or []:
        for corr in entry.get("corrections", []):
            h = corr.get("handler")
            out.append({"handler": type(h).__name__ if h is not None else None,
                        "errors": list(corr.get("errors") or []),
                        "actions": list(corr.get("actions") or [])})
    return out


def gave_up_reason(corrections: list[dict], handler_name: str) -> str | None:
    """Why handler ``handler_name`` gave up: the errors of its last correction without
    actions (see :func:`run_log_corrections`) joined by ``"; "``, or None if it has no
    such correction."""
    gave_up = [c for c in corrections if c["handler"] == handler_name and not c["actions"]]
    return "; ".join(gave_up[-1]["errors"]) if gave_up else None
