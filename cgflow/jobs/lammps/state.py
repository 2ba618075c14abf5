"""What the LAMMPS job and its error handlers read from and write to a CG run directory.

Besides the files of :mod:`cgflow.engines.lammps` (input, log, table, restart files,
block-averaged outputs), a supervised run directory may hold:

==============================  ===============================================================
``lammps_settings.json``        :data:`SETTINGS_FILE`: the run settings
                                (:class:`cgflow.engines.lammps.LammpsRunSettings`)
                                the input was written from. When present, handlers change
                                the settings and rewrite the input with
                                :func:`cgflow.engines.lammps.write_input`; without it they
                                edit the input script itself.
``lammps_corrections.json``     :data:`STATE_FILE`: the corrections applied so far (counts,
                                original time step), so that limits hold across processes.
``lammps_continue.json``        :data:`CONTINUE_FILE`: restart file and step for a hand-written
                                continuation input (see :class:`cgflow.jobs.lammps.job.LammpsJob`).
``<table>.orig``                the table before the first repair.
``attempts/<k>/``               :data:`ATTEMPTS_DIR`: log, screen output and restart files of
                                failed or interrupted attempt ``k`` (1, 2, ...).
==============================  ===============================================================
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from cgflow.engines import lammps as eng
from cgflow.errors import InvalidInputError

SETTINGS_FILE = "lammps_settings.json"
STATE_FILE = "lammps_corrections.json"
CONTINUE_FILE = "lammps_continue.json"
ATTEMPTS_DIR = "attempts"

#: Lines (from the end) of log and screen output that the handlers scan.
SCAN_LINES = 400


# --- settings and state -------------------------------------------------------------------


def save_settings(directory: str | Path, settings: eng.LammpsRunSettings) -> Path:
    """Write ``settings`` as :data:`SETTINGS_FILE` in ``directory``."""
    path = Path(directory) / SETTINGS_FILE
    path.write_text(json.dumps(dataclasses.asdict(settings), indent=1) + "\n")
    return path


def load_settings(directory: str | Path) -> eng.LammpsRunSettings | None:
    """The settings saved in ``directory`` or None.

    Raises
    ------
    InvalidInputError
        If the file exists but does not hold valid settings.
    """
    path = Path(directory) / SETTINGS_FILE
    if not path.exists():
        return None
    try:
        return eng.LammpsRunSettings(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise InvalidInputError(f"{path}: not valid LAMMPS run settings: {exc}") from None


def load_state(directory: str | Path) -> dict:
    """Corrections applied so far in ``directory`` (empty dict if none)."""
    path = Path(directory) / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def save_state(directory: str | Path, state: dict) -> None:
    """Write the corrections state."""
    (Path(directory) / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")


# --- the input script ---------------------------------------------------------------------


def input_commands(path: str | Path) -> list[list[str]]:
    """Commands of a LAMMPS input script as lists of words (comments and ``&`` joined)."""
    text = Path(path).read_text()
    text = re.sub(r"&\s*\n", " ", text)
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            out.append(words)
    return out


@dataclass(frozen=True)
class TableRef:
    """The table a ``pair_coeff`` line points to (file relative to the run directory)."""

    file: str
    keyword: str
    cutoff_angstrom: float | None


def table_ref(input_path: str | Path) -> TableRef:
    """The pair table used by an input script (its first ``pair_coeff`` line).

    Raises
    ------
    InvalidInputError
        If the input has no ``pair_coeff`` for a table.
    """
    for w in input_commands(input_path):
        if w[0] == "pair_coeff" and len(w) >= 5:
            cut = float(w[5]) if len(w) >= 6 and _is_float(w[5]) else None
            return TableRef(w[3], w[4], cut)
    raise InvalidInputError(f"{input_path}: no 'pair_coeff I J file keyword' line for a table")


def timestep_fs(input_path: str | Path) -> float | None:
    """The value of the ``timestep`` command of an input (fs in ``units real``), or None."""
    value = None
    for w in input_commands(input_path):
        if w[0] == "timestep" and len(w) > 1 and _is_float(w[1]):
            value = float(w[1])
    return value


def edit_input(input_path: str | Path, *, timestep: float | None = None,
               run_factor: int = 1, pair_cutoff_angstrom: float | None = None) -> None:
    """Edit an input script in place.

    ``timestep`` replaces the value of every ``timestep`` command; ``run_factor``
    multiplies the step count of every ``run`` command (``upto`` targets included);
    ``pair_cutoff_angstrom`` sets the cut-off of every table ``pair_coeff`` line.
    """
    path = Path(input_path)
    out = []
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "timestep" and timestep is not None:
            line = f"timestep {timestep:.10g}"
        elif words and words[0] == "run" and run_factor != 1 and words[1].isdigit():
            line = " ".join(["run", str(int(words[1]) * run_factor), *words[2:]])
        elif words and words[0] == "pair_coeff" and pair_cutoff_angstrom is not None \
                and len(words) >= 5:
            line = " ".join([*words[:5], f"{pair_cutoff_angstrom:.10g}", *words[6:]])
        out.append(line)
    path.write_text("\n".join(out) + "\n")


def restart_patterns(input_path: str | Path) -> list[str]:
    """File patterns of the ``restart`` commands of an input (default ``restart.*``)."""
    pats = []
    for w in input_commands(input_path):
        if w[0] == "restart" and len(w) >= 3 and w[1].isdigit() and int(w[1]) > 0:
            pats += [p for p in w[2:] if "*" in p]
    return pats or [eng.RESTART_PREFIX + "*"]


def latest_restart(directory: str | Path, patterns: list[str] | None = None,
                   ) -> tuple[Path, int] | None:
    """The restart file with the highest step among files matching ``patterns`` ('*' = step)."""
    directory = Path(directory)
    best: tuple[Path, int] | None = None
    for pat in patterns or [eng.RESTART_PREFIX + "*"]:
        head, _, tail = pat.partition("*")
        for p in directory.glob(pat):
            mid = p.name[len(head): len(p.name) - len(tail) if tail else None]
            if mid.isdigit() and p.stat().st_size > 0 and (best is None or int(mid) > best[1]):
                best = (p, int(mid))
    return best


def _is_float(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


# --- what LAMMPS left ---------------------------------------------------------------------


def output_text(directory: str | Path, log_file: str, stdout_file: str = eng.STDOUT_FILE,
                n: int = SCAN_LINES) -> str:
    """The last ``n`` lines of the log and of the screen output, joined."""
    parts = []
    for name in (log_file, stdout_file):
        p = Path(directory) / name
        if p.exists():
            parts.append("\n".join(p.read_text(errors="replace").splitlines()[-n:]))
    return "\n".join(parts)


_ERROR_RE = re.compile(r"^ERROR(?: on proc \d+)?: (.*)$", re.M)


def error_text(text: str) -> str | None:
    """The first LAMMPS ``ERROR`` message in ``text`` (without the prefix), or None."""
    m = _ERROR_RE.search(text)
    return m.group(1).strip() if m else None


_NONFINITE = {"nan", "-nan", "+nan", "inf", "-inf", "+inf"}


def nonfinite_thermo(text: str) -> str | None:
    """The first thermo line of ``text`` that holds a NaN or inf, or None."""
    header = None
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            header = len(words)
            continue
        if header is not None:
            if len(words) == header and words[0].lstrip("-").isdigit():
                if any(w.lower() in _NONFINITE for w in words[1:]):
                    return line.strip()
            else:
                header = None
    return None


# --- archiving an attempt -------------------------------------------------------------------


def archive_attempt(directory: str | Path, names: list[str], *, restarts: bool = True,
                    patterns: list[str] | None = None) -> Path:
    """Move the files of a failed or interrupted attempt to ``attempts/<k>/``.

    ``names`` are moved if they exist; with ``restarts`` the restart files (``patterns``)
    are moved too, so that a fresh run cannot be confused with them.

    Returns
    -------
    Path
        The attempt folder.
    """
    directory = Path(directory)
    root = directory / ATTEMPTS_DIR
    root.mkdir(exist_ok=True)
    k = 1 + max((int(p.name) for p in root.iterdir() if p.name.isdigit()), default=0)
    dest = root / str(k)
    dest.mkdir()
    for name in names:
        for p in directory.glob(name):
            if p.is_file():
                shutil.move(str(p), dest / p.name)
    if restarts:
        for pat in patterns or [eng.RESTART_PREFIX + "*"]:
            for p in directory.glob(pat):
                if p.is_file():
                    shutil.move(str(p), dest / p.name)
    return dest
