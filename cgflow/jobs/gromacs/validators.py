"""Custodian validator of a GROMACS stage: the expected outputs exist and are complete.

The check is cheap and reads only the run directory: the last log segment ends with
``Finished mdrun`` and no GROMACS error, the final configuration ``<deffnm>.gro``
exists (mdrun writes it only when the run reaches its end, not after a ``-maxh`` stop),
and for dynamics the last energy block of the log is at step ``init-step + nsteps``, the
energy file is not empty, and the compressed trajectory exists and is not empty when
``nstxout-compressed > 0``. Frames are not counted: the step check already shows that
mdrun integrated to the end.
"""

from __future__ import annotations

from pathlib import Path

from custodian.custodian import Validator

from cgflow.engines.gromacs_output import (
    gromacs_error_text,
    last_energy_step,
    last_log_segment,
    log_facts,
    mdrun_finished,
    read_text,
)
from cgflow.jobs.gromacs.state import load_state


def stage_problems(directory: str | Path, deffnm: str) -> list[str]:
    """What is missing or incomplete among the outputs of stage ``deffnm`` (empty when
    the stage is complete)."""
    d = Path(directory)
    state = load_state(d, deffnm)
    if state is not None and state.phase == "grompp_failed":
        return [state.grompp_failure or "grompp failed"]
    log = d / f"{deffnm}.log"
    if not log.exists():
        return [f"log {log.name} not found"]
    text = read_text(log)
    segment = last_log_segment(text)
    facts = log_facts(text)
    problems: list[str] = []
    if not mdrun_finished(segment):
        problems.append(f"log {log.name} does not end with 'Finished mdrun'")
    error = gromacs_error_text(segment)
    if error:
        problems.append(f"log {log.name} holds an error: {error}")
    if not facts.is_minimisation:
        final = facts.final_step
        last = last_energy_step(segment)
        if final is None:
            problems.append(f"log {log.name}: no finite nsteps found")
        elif last != final:
            problems.append(f"log {log.name}: last energy step {last} is not init-step + "
                            f"nsteps = {final}")
        edr = d / f"{deffnm}.edr"
        if not edr.exists() or edr.stat().st_size == 0:
            problems.append(f"energy file {edr.name} missing or empty")
        if (facts.nstxout_compressed or 0) > 0:
            xtc = d / f"{deffnm}.xtc"
            if not xtc.exists() or xtc.stat().st_size == 0:
                problems.append(f"trajectory {xtc.name} missing or empty")
    gro = d / f"{deffnm}.gro"
    if not gro.exists() or gro.stat().st_size == 0:
        problems.append(f"final configuration {gro.name} missing")
    return problems


class GromacsOutputValidator(Validator):
    """The outputs of stage ``deffnm`` exist and are complete (see the module docstring).

    :attr:`problems` lists what failed after :meth:`check`.
    """

    def __init__(self, deffnm: str) -> None:
        self.deffnm = deffnm
        self.problems: list[str] = []

    def check(self, directory="./") -> bool:
        """True when something is missing or incomplete (Custodian's convention)."""
        self.problems = stage_problems(directory, self.deffnm)
        return bool(self.problems)
