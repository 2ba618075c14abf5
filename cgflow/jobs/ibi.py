"""The IBI monitor's decision as a Custodian error handler.

The decision itself is pure science (:mod:`cgflow.ibi.monitor`); this handler reads an
iteration directory's ``ibi_history.json`` and writes its ``ibi_decision.json``, so that a
Custodian loop around an IBI run can act on it.
"""

from __future__ import annotations

from pathlib import Path

from custodian.custodian import ErrorHandler

from cgflow.ibi.monitor import (
    DECISION_FILE,
    HISTORY_FILE,
    IBIDecision,
    assess_history,
    make_settings,
    read_history,
    write_decision,
)


class IBIConvergenceHandler(ErrorHandler):
    """The IBI decision as a Custodian error handler.

    :meth:`check` reads ``history_file`` from the iteration's directory, assesses it
    (:func:`assess_history`) and writes the decision to ``decision_file`` (always, so
    that the orchestration finds it also when nothing is wrong). It returns True when the
    decision is a correction (divergence, oscillation, stagnation) or ``unconverged``;
    a plain ``continue`` and ``converged`` are not errors. :meth:`correct` returns the
    diagnosis as the error and the changed settings as the actions; for ``unconverged``
    the actions are empty, so that Custodian stops.

    Parameters
    ----------
    settings
        Monitor settings as a dict (see :class:`IBIMonitorSettings`).
    history_file, decision_file
        Names in the iteration's directory.
    """

    is_monitor = False

    def __init__(self, settings: dict | None = None, history_file: str = HISTORY_FILE,
                 decision_file: str = DECISION_FILE) -> None:
        make_settings(settings)  # validate early
        self.settings = dict(settings or {})
        self.history_file = history_file
        self.decision_file = decision_file
        self.decision: IBIDecision | None = None

    def _decide(self, directory) -> IBIDecision:
        d = Path(directory)
        self.decision = assess_history(read_history(d / self.history_file), self.settings)
        write_decision(d / self.decision_file, self.decision)
        return self.decision

    def check(self, directory="./") -> bool:
        """Assess the history and write the decision; True for a correction or a stop
        without convergence."""
        dec = self._decide(directory)
        return dec.is_correction or dec.action == "unconverged"

    def correct(self, directory="./") -> dict:
        """The decision as Custodian's errors and actions (empty actions: give up)."""
        dec = self.decision or self._decide(directory)
        if dec.action != "continue":
            return {"errors": [dec.reason], "actions": []}
        change = {"update_factor": dec.update_factor, "sampling_ps": dec.sampling_ps,
                  "restart_from_iteration": dec.restart_from_iteration}
        return {"errors": [dec.reason],
                "actions": [{"file": self.decision_file, "action": {"_set": change}}]}
