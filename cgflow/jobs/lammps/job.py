"""LAMMPS under Custodian: the job, the output validator and :func:`run_lammps`.

:class:`LammpsJob` runs ``lmp`` on an input script in a run directory (command from
:func:`cgflow.engines.lammps.lammps_command`, screen output to ``lammps.out``).
:func:`run_lammps` runs one job under Custodian with the handlers of
:mod:`cgflow.jobs.lammps.handlers` and :class:`LammpsOutputValidator`, in place (no
scratch directory, no gzip), and returns a :class:`LammpsRunReport`; a failure that the
handlers cannot correct raises :class:`~cgflow.errors.EngineError` naming the handler
that gave up and the LAMMPS ERROR text.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import time
from pathlib import Path

from custodian.custodian import (
    Custodian,
    CustodianError,
    ErrorHandler,
    Job,
    NonRecoverableError,
    ReturnCodeError,
    ValidationError,
    Validator,
)
from pydantic import BaseModel, ConfigDict

from cgflow.engines import lammps as eng
from cgflow.errors import EngineError, InvalidInputError, full_disk_note, write_failure
from cgflow.jobs.common import gave_up_reason, run_log_corrections
from cgflow.jobs.lammps import state as rd
from cgflow.jobs.lammps.handlers import (
    LostAtomsHandler,
    RestartContinueHandler,
    TableRangeHandler,
    continue_from_restart,
    interruption,
)
from cgflow.jobs.lifetime import tied_to_parent

logger = logging.getLogger(__name__)


class _LammpsProcess(subprocess.Popen):
    """A LAMMPS process whose exit by a signal after its log was complete counts as 0.

    A kill that comes after LAMMPS wrote ``Total wall time`` (while it tears down, e.g.
    MPI finalisation) leaves whole outputs; Custodian's validators still check them, so
    the run is not failed (or rerun) for a signal that came too late to matter. The
    process's own exit code stays in :attr:`signal_returncode`.
    """

    def __init__(self, args: list[str], *, log: Path, **kwargs) -> None:
        self._log = log
        self.signal_returncode: int | None = None
        super().__init__(args, **kwargs)  # noqa: S603

    def _late_kill(self, rc: int | None) -> int | None:
        if rc is not None and rc < 0 and self.signal_returncode is None:
            info = eng.parse_lammps_log(self._log) if self._log.exists() else None
            if info is not None and info.finished and not info.error:
                self.signal_returncode = rc
                logger.info("LAMMPS ended by signal %d after its log was complete (%s)",
                            -rc, self._log)
                self.returncode = 0
                return 0
        return 0 if self.signal_returncode is not None else rc

    def poll(self) -> int | None:
        return self._late_kill(super().poll())

    def wait(self, timeout: float | None = None) -> int:
        return self._late_kill(super().wait(timeout=timeout))  # type: ignore[return-value]


class LammpsJob(Job):
    """One LAMMPS run in a run directory, as a Custodian job.

    Parameters
    ----------
    input_file, log_file, stdout_file
        Names relative to the run directory. Screen output goes to ``stdout_file``
        (``-screen none``; stdout and stderr of the process).
    threads
        Passed to :func:`cgflow.engines.lammps.lammps_command` (1: serial).
    resume
        When the directory holds an interrupted earlier attempt (see
        :func:`cgflow.jobs.lammps.handlers.interruption`) and a restart file, continue
        from it in :meth:`setup` instead of starting over, e.g. after the process that
        supervised the run was killed. Without run settings and without a continuation
        input a continuation is impossible: the run then starts afresh (with a warning).
    continuation_input
        Hand-written continuation script for runs without run settings. When
        ``lammps_continue.json`` exists (written by the restart handler), this script
        is run instead of ``input_file`` with ``-var restart_file <file> -var
        restart_step <step>``; it should ``read_restart ${restart_file}`` and ``run N
        upto``.
    """

    def __init__(
        self, input_file: str = eng.INPUT_FILE, log_file: str = eng.LOG_FILE,
        stdout_file: str = eng.STDOUT_FILE, threads: int = 1, resume: bool = True,
        continuation_input: str | None = None,
    ) -> None:
        if not isinstance(threads, int) or threads < 1:
            raise InvalidInputError(f"field 'threads': must be an integer >= 1, got {threads!r}")
        self.input_file = input_file
        self.log_file = log_file
        self.stdout_file = stdout_file
        self.threads = threads
        self.resume = resume
        self.continuation_input = continuation_input
        self.process: subprocess.Popen | None = None
        self.command: list[str] | None = None
        self.resumed: dict | None = None
        self.n_runs = 0

    def setup(self, directory="./") -> None:
        """Check the input exists; continue an interrupted earlier attempt if ``resume``."""
        d = Path(directory)
        if not (d / self.input_file).exists():
            raise InvalidInputError(f"field 'input_file': {d / self.input_file} does not exist")
        if self.continuation_input and not (d / self.continuation_input).exists():
            raise InvalidInputError(f"field 'continuation_input': "
                                    f"{d / self.continuation_input} does not exist")
        why = interruption(d, self.log_file, self.stdout_file) if self.resume else None
        if why:
            try:
                self.resumed = continue_from_restart(d, self.input_file, self.log_file,
                                                     self.stdout_file, self.continuation_input)
            except InvalidInputError as exc:
                logger.warning("%s: %s; not resuming, the run starts afresh", why, exc)
            else:
                if self.resumed:
                    logger.info("resuming %s from %s", d, self.resumed["restart_file"])

    def current_command(self, directory="./") -> list[str]:
        """The command :meth:`run` starts (continuation input and variables if due)."""
        d = Path(directory)
        marker = d / rd.CONTINUE_FILE
        if self.continuation_input and marker.exists():
            info = json.loads(marker.read_text())
            return eng.lammps_command(self.continuation_input, self.log_file,
                                      threads=self.threads) + [
                "-var", "restart_file", str(info["restart_file"]),
                "-var", "restart_step", str(int(info["restart_step"]))]
        return eng.lammps_command(self.input_file, self.log_file, threads=self.threads)

    def run(self, directory="./") -> subprocess.Popen:
        """Start LAMMPS in ``directory`` and return the process."""
        d = Path(directory)
        self.command = self.current_command(d)
        self.n_runs += 1
        with (d / self.stdout_file).open("w") as out:
            self.process = _LammpsProcess(tied_to_parent(self.command), log=d / self.log_file,
                                          cwd=d, stdout=out, stderr=subprocess.STDOUT)
        return self.process

    def postprocess(self, directory="./") -> None:
        """Nothing to do: outputs stay where LAMMPS wrote them."""

    def terminate(self, directory="./") -> None:
        """Terminate the running process (SIGTERM), if any."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    @property
    def name(self) -> str:
        return f"LammpsJob({self.input_file})"


class LammpsOutputValidator(Validator):
    """The outputs of a finished run exist and are complete.

    Checks that the log ends with ``Total wall time`` with no ERROR and no wall-time
    stop; with run settings in the directory, that the last thermo step is the run's
    final step, that ``final.data`` exists and, by stage, that the block-averaged RDF
    and pressure files (IBI sampling) or the pressure file and a non-empty trajectory
    dump (production) hold data. ``stage`` overrides the stage of the settings (or
    gives it when there are none). :attr:`problems` lists what failed.
    """

    def __init__(self, log_file: str = eng.LOG_FILE, stage: str | None = None) -> None:
        if stage not in (None, "ibi", "production"):
            raise InvalidInputError(f"field 'stage': unknown value {stage!r} "
                                    "(expected 'ibi', 'production' or None)")
        self.log_file = log_file
        self.stage = stage
        self.problems: list[str] = []

    def check(self, directory="./") -> bool:
        """True when something is missing or incomplete (Custodian's convention)."""
        self.problems = self.find_problems(directory)
        return bool(self.problems)

    def find_problems(self, directory="./") -> list[str]:
        """What is missing or incomplete in ``directory`` (empty when all is well)."""
        d = Path(directory)
        problems: list[str] = []
        log = d / self.log_file
        if not log.exists():
            return [f"log {self.log_file} not found"]
        info = eng.parse_lammps_log(log)
        if info.error:
            problems.append(f"log holds an error: {info.error}")
        if not info.finished:
            problems.append(f"log {self.log_file} does not end with 'Total wall time'")
        if any("Wall time limit reached" in w for w in info.warnings):
            problems.append("run stopped at the wall-time limit")
        settings = rd.load_settings(d)
        stage = self.stage or (settings.stage if settings else None)
        if settings is not None:
            if info.last_step != settings.final_step:
                problems.append(f"last thermo step {info.last_step} is not the final step "
                                f"{settings.final_step}")
            if not (d / eng.FINAL_DATA_FILE).exists():
                problems.append(f"{eng.FINAL_DATA_FILE} not found")
        needed = {"ibi": [eng.RDF_FILE, eng.PRESSURE_FILE],
                  "production": [eng.PRESSURE_FILE]}.get(stage or "", [])
        for name in needed:
            try:
                steps, _ = eng.read_block_file(d / name)
            except (EngineError, ValueError, IndexError) as exc:
                problems.append(f"{name}: {exc}")
                continue
            # a file cut short: its last line unfinished, or blocks missing at the end
            if (d / name).exists() and not (d / name).read_bytes().endswith(b"\n"):
                problems.append(f"{name}: its last line is cut off")
            expected = settings.run_steps // settings.block_steps if settings else 0
            if len(steps) < expected:
                problems.append(f"{name}: {len(steps)} complete block(s) of the run's "
                                f"{expected}")
        if stage == "production":
            dump = d / eng.DUMP_FILE
            if not dump.exists() or dump.stat().st_size == 0:
                problems.append(f"trajectory {eng.DUMP_FILE} missing or empty")
            elif b"ITEM: TIMESTEP" not in dump.read_bytes()[:4096]:
                problems.append(f"trajectory {eng.DUMP_FILE} holds no frame")
        return problems


class LammpsRunReport(BaseModel):
    """What :func:`run_lammps` did.

    Attributes
    ----------
    run_dir, input_file, log_file
        Where and what ran.
    wall_time_s
        Wall time of the whole supervised run (all attempts), s.
    ns_per_day
        LAMMPS' own performance figure for the last run of the final attempt, ns/day of
        simulated time (None if the log has no ``Performance`` line).
    final_step
        Last thermo step of the final log.
    attempts
        Number of LAMMPS processes started (1 when nothing went wrong).
    corrections
        One dict per correction: ``handler`` (class name), ``errors``, ``actions``.
    resumed_from_step
        Restart step the run continued from (by a handler or by the job's ``resume``),
        the last one if several; None if it never continued.
    """

    model_config = ConfigDict(extra="forbid")

    run_dir: str
    input_file: str
    log_file: str
    wall_time_s: float
    ns_per_day: float | None
    final_step: int | None
    attempts: int
    corrections: list[dict]
    resumed_from_step: int | None


def default_handlers(input_file: str = eng.INPUT_FILE, log_file: str = eng.LOG_FILE,
                     continuation_input: str | None = None) -> list[ErrorHandler]:
    """Table range, lost atoms, restart continuation, in this order of priority."""
    return [
        TableRangeHandler(input_file=input_file, log_file=log_file),
        LostAtomsHandler(input_file=input_file, log_file=log_file),
        RestartContinueHandler(input_file=input_file, log_file=log_file,
                               continuation_input=continuation_input),
    ]


def run_lammps(
    run_dir: str | Path, input_file: str = eng.INPUT_FILE, *,
    settings: eng.LammpsRunSettings | None = None, handlers: list[ErrorHandler] | None = None,
    validators: list[Validator] | None = None, max_errors: int = 6, threads: int = 1,
    log_file: str = eng.LOG_FILE, resume: bool = True, continuation_input: str | None = None,
    polling_s: float = 10.0,
) -> LammpsRunReport:
    """Run a LAMMPS input under Custodian, correcting what the handlers can.

    Parameters
    ----------
    run_dir
        The run directory (holds the input, data file and table).
    input_file
        Input script name in ``run_dir``.
    settings
        The settings the input was written from; saved as ``lammps_settings.json`` so
        that the handlers can rewrite the input and prepare continuations. Settings
        already saved in ``run_dir`` by an earlier supervised attempt of the same run
        are kept when they differ from these only by the corrections or the
        continuation applied then (see :func:`_store_settings`). Without ``settings``,
        the settings saved in ``run_dir`` are used if any.
    handlers
        Default :func:`default_handlers`.
    validators
        Default one :class:`LammpsOutputValidator`.
    max_errors
        Total corrections allowed before giving up.
    threads
        LAMMPS threads or ranks (see :func:`cgflow.engines.lammps.lammps_command`).
    log_file
        Log name in ``run_dir``.
    resume, continuation_input
        See :class:`LammpsJob`.
    polling_s
        Seconds between Custodian's checks whether LAMMPS ended (Custodian's default 10).

    Returns
    -------
    LammpsRunReport

    Raises
    ------
    InvalidInputError
        If ``run_dir`` or the input does not exist.
    EngineError
        When a failure cannot be corrected: which handler gave up and why, the LAMMPS
        ERROR text, the command and exit code and the tail of the log; when the run
        directory cannot be written (a full disk), the system's reason, the directory
        and the free space.
    """
    d = Path(run_dir).resolve()
    if not d.is_dir():
        raise InvalidInputError(f"field 'run_dir': {d} is not a directory")
    if max_errors < 1:
        raise InvalidInputError(f"field 'max_errors': must be >= 1, got {max_errors!r}")
    if not polling_s > 0:
        raise InvalidInputError(f"field 'polling_s': must be > 0, got {polling_s!r}")
    if settings is not None:
        try:
            _store_settings(d, settings)
        except OSError as exc:
            raise EngineError(f"LAMMPS run failed: {write_failure(exc, d)}") from exc
    job = LammpsJob(input_file=input_file, log_file=log_file, threads=threads, resume=resume,
                    continuation_input=continuation_input)
    if handlers is None:
        handlers = default_handlers(input_file, log_file, continuation_input)
    if validators is None:
        validators = [LammpsOutputValidator(log_file=log_file)]
    c = Custodian(handlers, [job], validators=validators, max_errors=max_errors,
                  gzipped_output=False, scratch_dir=None, directory=str(d),
                  terminate_on_nonzero_returncode=True, polling_time_step=polling_s)
    t0 = time.monotonic()
    try:
        run_log = c.run()
    except CustodianError as exc:
        raise EngineError(_failure_message(exc, c, job, d, log_file)) from exc
    except OSError as exc:  # the run directory cannot be written (full disk, read-only)
        raise EngineError(f"LAMMPS run failed: {write_failure(exc, d)}") from exc
    finally:
        job.terminate(str(d))
    wall = time.monotonic() - t0
    info = eng.parse_lammps_log(d / log_file)
    corrections = run_log_corrections(run_log)
    resumed = job.resumed["restart_step"] if job.resumed else None
    for corr in corrections:
        for act in corr["actions"]:
            a = act.get("action")
            if isinstance(a, dict) and "_continue_from_restart" in a:
                resumed = a["_continue_from_restart"]["restart_step"]
    return LammpsRunReport(
        run_dir=str(d), input_file=input_file, log_file=log_file, wall_time_s=wall,
        ns_per_day=info.performance_ns_day, final_step=info.last_step,
        attempts=job.n_runs, corrections=corrections, resumed_from_step=resumed,
    )


def _store_settings(d: Path, settings: eng.LammpsRunSettings) -> None:
    """Save ``settings`` unless the directory holds the same run, corrected or continued.

    Saved settings are kept when they equal ``settings`` up to the continuation fields
    (``restart_file``, ``restart_step``), or when corrections were recorded in the
    directory (``lammps_corrections.json``): then they are ``settings`` as corrected by
    the handlers (halved time step, lowered cut-off) and the input on disk matches them.
    """
    saved = rd.load_settings(d)
    if saved is not None:
        plain = dataclasses.replace(saved, restart_file=None, restart_step=0)
        if plain == settings or rd.load_state(d):
            if saved != settings:
                logger.info("%s: keeping the settings of the earlier attempt (%s)", d,
                            rd.SETTINGS_FILE)
            return
    rd.save_settings(d, settings)


def _failure_message(exc: CustodianError, c: Custodian, job: LammpsJob, d: Path,
                     log_file: str) -> str:
    corrections = run_log_corrections(c.run_log)
    if isinstance(exc, NonRecoverableError):
        name = type(exc.handler).__name__
        why = gave_up_reason(corrections, name)
        if why is None:
            why = "(no reason given)"
        lines = [f"LAMMPS run in {d} failed: handler {name} gave up: {why}"]
    elif isinstance(exc, ValidationError):
        problems = "; ".join(getattr(exc.validator, "problems", None) or []) or "(no detail)"
        lines = [f"LAMMPS run in {d} failed: validator {type(exc.validator).__name__}: "
                 f"{problems}"]
    elif isinstance(exc, ReturnCodeError):
        lines = [f"LAMMPS run in {d} failed: {exc} (no handler recognised the failure)"]
    else:
        lines = [f"LAMMPS run in {d} failed: {type(exc).__name__}: {exc}"]
    note = full_disk_note(d)
    if note:
        lines.append(note[0].upper() + note[1:])
    applied = [cc for cc in corrections if cc["actions"]]
    if applied:
        lines.append("corrections applied before: " + "; ".join(
            f"{cc['handler']}: {', '.join(cc['errors'][:1])}" for cc in applied))
    text = rd.output_text(d, log_file, job.stdout_file)
    err = rd.error_text(text)
    lines.append(f"LAMMPS error: {err}" if err else "LAMMPS error: none reported")
    if job.command:
        code = job.process.returncode if job.process is not None else None
        lines.append(f"command: {' '.join(job.command)} (exit code {code})")
    tail = eng.tail(d / log_file) or eng.tail(d / job.stdout_file)
    lines.append(f"--- tail of {log_file} ---\n{tail}")
    return "\n".join(lines)
