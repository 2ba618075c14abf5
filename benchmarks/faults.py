"""What cgflow survives: faults injected at random points, counted.

    .venv/bin/python benchmarks/faults.py                 # every fault, default trials
    .venv/bin/python benchmarks/faults.py --trials 5 --only submit_refused truncated_output

Each fault is a function ``fault(trials, rng, env) -> Tally`` that injects the fault
``trials`` times at random points and counts what happened:

``survived``
    cgflow noticed and ended in a sound state (nothing half-written, a clear error, a
    refused output, a Firework fizzled with a reason naming the cause).
``lost``
    something was left wrong: half a workflow in the database, a truncated output
    accepted, a set stored as converged that is not, a set that vanished.
``duplicated``
    the same work queued or run twice.

The faults:

``bad_input``
    the table of hostile inputs of ``tests/test_bad_input.py`` (every command that reads a
    user file); counts inputs, clear errors, tracebacks and writes.
``fuzz_specs``, ``fuzz_parameter_sets``
    random campaign specs and parameter sets (hypothesis): only clear errors or valid
    results, never another exception.
``submit_refused``
    the database refuses the k-th write of a submission (k random): the campaign is in
    the database whole or not at all; submitting again then queues it once.
``submit_twice``
    the same campaign submitted 2-4 times: queued once.
``truncated_output``
    a finished LAMMPS IBI run (``tests/data/lammps_failures/finished_ibi``) with its log,
    RDF or pressure file cut at a random byte: the validator refuses it.
``ibi_monitor``
    IBI histories that diverge, oscillate or stagnate (random noise, random lengths):
    never stopped as converged.
``missing_engine``
    a campaign of two sets launched with ``CGFLOW_GMX=/nonexistent``: every set's first
    Firework fizzles with a reason naming the missing command, and the launcher goes on
    to the next set.
``missing_lammps``
    a LAMMPS run with ``CGFLOW_LMP=/nonexistent``: an engine error naming the command.
``fuzz_submit``
    random campaign specs through ``cgflow campaign submit``: queued (exit 0) or a clear
    error naming the file (exit 2) with nothing written.
``killed_mdrun``
    a GROMACS production of the 250-atom test liquid (``tests/data/gromacs_failures``)
    under Custodian (:func:`cgflow.jobs.gromacs.job.run_stage`, as the all-atom stage
    runs it), its ``gmx mdrun`` killed with SIGKILL at a random moment (a third of the
    trials twice): resumed from its checkpoint (or rerun before the first), every step
    and energy frame once, the average potential energy, temperature and pressure within
    3 combined block standard errors of an uninterrupted run; never two mdrun at once.
``killed_lmp``
    an IBI sampling run (:func:`cgflow.ibi.iteration.ibi_lammps_settings`, 125 beads)
    under Custodian (:func:`cgflow.jobs.lammps.job.run_lammps`), its ``lmp`` killed the
    same way (while minimising, equilibrating or sampling): continued from the last
    block's restart file (or rerun before the first), every block once, the RDF and the
    pressure read by cgflow's readers (``read_sampled_rdf``, ``read_sampled_pressure``)
    matching the uninterrupted run (RDF chi^2 per bin <= 2, pressure within 3 combined
    standard errors).
``disk_full``
    either of those runs on a 4 MiB tmpfs filled at a random moment (root only; skipped
    with the reason otherwise): an EngineError naming "No space left on device" and the
    run directory, no engine left running.
``disk_full_campaign``
    a tiny campaign of two sets, one set's run directory a full tmpfs, run by ``cgflow
    launch``: that set's Firework fizzles naming the full disk and its directory, its
    all-atom run is stored failed without results, the other set completes.

The engine faults count a trial only when the kill (or the filler) came before the engine
ended (``missed`` counts the others). A killed and resumed run is not bitwise the run
it would have been (the checkpoint step starts a new pair list; LAMMPS restarts the
Langevin random numbers), hence the statistical criteria; a rerun from the start is
the same run.

Writes ``results/faults.{json,md}`` (with date and machine load); the README's table
comes from there. ``tests/test_faults_short.py`` runs a short version in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests")]
import figures  # noqa: E402 - benchmarks/ is on the path now


@dataclass
class Tally:
    """Counts of one fault."""

    trials: int = 0
    survived: int = 0
    lost: int = 0
    duplicated: int = 0
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < 5:
            self.notes.append(text[:300])


@dataclass
class Env:
    """Where faults run: a scratch folder and a job database (a URI with credentials)."""

    tmp: Path
    uri: str
    n_db: int = 0

    def launchpad(self) -> tuple[Any, Path]:
        """A reset LaunchPad on a new database, and its launchpad file."""
        import yaml
        from fireworks import LaunchPad

        self.n_db += 1
        name = f"cgflow_faults_{os.getpid()}_{self.n_db}"
        lp = LaunchPad(host=self.uri, name=name, uri_mode=True, strm_lvl="ERROR")
        lp.reset("", require_password=False)
        f = self.tmp / f"lp{self.n_db}.yaml"
        f.write_text(yaml.safe_dump({"host": self.uri, "name": name, "uri_mode": True,
                                     "strm_lvl": "ERROR"}))
        return lp, f

    def drop(self, lp: Any) -> None:
        lp.connection.drop_database(lp.name)
        lp.connection.close()


# --- bad input and fuzzing ---------------------------------------------------------------


def bad_input(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Every case of the hostile-input table (``trials`` is ignored: all cases run)."""
    import test_bad_input as bad

    lp, lp_file = env.launchpad()
    t = Tally()
    t.clear_errors = t.tracebacks = t.writes = 0  # type: ignore[attr-defined]
    try:
        for case in bad.CASES:
            work = env.tmp / f"bad{t.trials}"
            work.mkdir()
            got = bad.run_case(case, bad.Ctx(tmp=work, lp=lp_file))
            t.trials += 1
            says = all((got.file in got.message) if s == "{file}" else (s in got.message)
                       for s in case.says)
            clear = got.clear and says
            t.clear_errors += clear  # type: ignore[attr-defined]
            t.tracebacks += got.traceback or "unexpected error" in got.message  # type: ignore
            t.writes += bool(got.writes)  # type: ignore[attr-defined]
            if clear and not got.writes:
                t.survived += 1
            else:
                t.lost += bool(got.writes)
                t.note(f"{case.id}: exit {got.status}: {got.message.strip()[:200]}")
            shutil.rmtree(work, ignore_errors=True)
    finally:
        for st in bad._STORES.values():
            st.close()
        bad._STORES.clear()
        env.drop(lp)
    return t


def _fuzz(trials: int, check: Callable[[Any], str], strategy: Any) -> Tally:
    """Run ``check`` on ``trials`` examples of ``strategy``; it returns "ok", "clear" or
    a failure note."""
    from hypothesis import HealthCheck, given, settings

    t = Tally()

    @settings(max_examples=trials, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(example: Any) -> None:
        t.trials += 1
        outcome = check(example)
        if outcome in ("ok", "clear"):
            t.survived += 1
        else:
            t.lost += 1
            t.note(outcome)

    run()
    return t


def spec_strategy() -> Any:
    """Random campaign specs: sensible keys with hostile values, and random keys."""
    from hypothesis import strategies as st

    values = st.recursive(
        st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats()
        | st.text(max_size=20), lambda c: st.lists(c, max_size=3)
        | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)
    keys = st.sampled_from(["name", "space", "n_sets", "seed", "sampling", "preset", "units",
                            "include_reference", "parameter_sets", "ibi", "cg_stage",
                            "threads", "description"]) | st.text(max_size=10)
    base = st.fixed_dictionaries({"name": st.just("fuzz")})
    return st.tuples(base, st.dictionaries(keys, values, max_size=5)).map(
        lambda ab: {**ab[0], **ab[1]})


def fuzz_specs(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Random campaign specs: a valid spec or an InvalidInputError, nothing else."""
    import yaml

    from cgflow.errors import InvalidInputError
    from cgflow.orchestration.campaign import campaign_spec_from_text

    def check(spec: dict) -> str:
        try:
            text = yaml.safe_dump(spec)
        except Exception:  # noqa: BLE001 - not representable as YAML: not an input
            return "ok"
        if "n_sets" in spec and isinstance(spec["n_sets"], int) and spec["n_sets"] > 50:
            spec = {**spec, "n_sets": 50}  # keep each example quick
            text = yaml.safe_dump(spec)
        try:
            campaign_spec_from_text(text, "fuzz.yaml")
            return "ok"
        except InvalidInputError as exc:
            return "clear" if "fuzz.yaml" in str(exc) else f"unnamed source: {exc}"
        except Exception as exc:  # noqa: BLE001 - what the fuzzing looks for
            return f"{type(exc).__name__}: {exc} for {spec!r}"

    return _fuzz(trials, check, spec_strategy())


def fuzz_parameter_sets(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Random parameter sets (the 19 fields with hostile values): a valid set or an
    InvalidInputError naming a field."""
    from hypothesis import strategies as st

    from cgflow.errors import InvalidInputError
    from cgflow.params import FIELDS, OPLSAA_REFERENCE, parameter_set_from_mapping

    ref = OPLSAA_REFERENCE.model_dump()
    value = (st.floats() | st.integers(-10**400, 10**400) | st.booleans() | st.none()
             | st.text(max_size=6) | st.lists(st.floats(), max_size=2))
    changes = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), value,
                              min_size=1, max_size=4)
    strategy = st.tuples(changes, st.sampled_from(["gromacs", "lammps"]))

    def check(example: tuple[dict, str]) -> str:
        ch, units = example
        values = {**ref, **ch}
        try:
            parameter_set_from_mapping(values, units_system=units, source="fuzz")
            return "ok"
        except InvalidInputError as exc:
            return "clear" if "field '" in str(exc) else f"no field named: {exc}"
        except Exception as exc:  # noqa: BLE001
            return f"{type(exc).__name__}: {exc} for {ch!r}"

    return _fuzz(trials, check, strategy)


def fuzz_submit(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Random campaign specs submitted through the command line: queued whole (exit 0)
    or refused with a clear error (exit 2) and nothing written."""
    import test_bad_input as bad
    import yaml
    from hypothesis import strategies as st

    from cgflow.cli.main import main as cgflow_main

    lp, lp_file = env.launchpad()
    n = {"i": 0}

    def check(spec: dict) -> str:
        if isinstance(spec.get("n_sets"), int) and spec["n_sets"] > 3:
            spec = {**spec, "n_sets": 3}  # keep each example quick
        try:
            text = yaml.safe_dump(spec)
        except Exception:  # noqa: BLE001 - not representable as YAML: not an input
            return "ok"
        n["i"] += 1
        f = env.tmp / f"fuzz{n['i']}.yaml"
        f.write_text(text)
        before = bad.db_snapshot(lp_file)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = cgflow_main(["campaign", "submit", str(f), "-l", str(lp_file)])
            except BaseException as exc:  # noqa: BLE001 - a traceback
                return f"{type(exc).__name__}: {exc} for {spec!r}"
        after = bad.db_snapshot(lp_file)
        if status == 2 and after == before and str(f) in err.getvalue():
            return "clear"
        if status == 0:
            return "ok"
        return f"exit {status}, writes {after != before}: {err.getvalue()[:200]}"

    try:
        return _fuzz(trials, check, spec_strategy() | st.just({"name": "fuzz-valid",
                                                                 "n_sets": 1}))
    finally:
        for store in bad._STORES.values():
            store.close()
        bad._STORES.clear()
        env.drop(lp)


# --- the database refuses a submission ---------------------------------------------------

_SPEC = "name: faults\nspace: narrow\nn_sets: 2\nseed: 5\npreset: tiny\ncg_stage: true\n"


def _campaign_state(lp: Any, campaign: str) -> tuple[int, int, int]:
    """(Fireworks of the campaign, its workflows, Fireworks its workflows name)."""
    fws = lp.fireworks.count_documents({"spec.campaign": campaign})
    wfs = list(lp.workflows.find({"metadata.cgflow_campaign": campaign}, {"nodes": 1}))
    named = sum(len(w["nodes"]) for w in wfs)
    return fws, len(wfs), named


def submit_refused(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """The k-th write of a submission fails; then the campaign is submitted again."""
    import pymongo.collection

    from cgflow.orchestration.submit import SubmitError, submit_campaign

    spec = env.tmp / "faults.yaml"
    spec.write_text(_SPEC)
    t = Tally()
    writes = ("insert_one", "insert_many", "update_one", "find_one_and_update",
              "delete_many", "replace_one", "find_one_and_replace")
    originals = {w: getattr(pymongo.collection.Collection, w) for w in writes}
    t.refused_submissions = 0  # type: ignore[attr-defined]
    for _ in range(trials):
        lp, lp_file = env.launchpad()
        k = int(rng.integers(1, 6))  # 4 writes to these collections per submission; 5: none fails
        calls = {"n": 0}

        def failing(name: str, k: int = k, calls: dict = calls) -> Callable[..., Any]:
            def call(self: Any, *a: Any, **kw: Any) -> Any:
                if self.name in ("fireworks", "workflows", "fw_id_assigner"):
                    calls["n"] += 1
                    if calls["n"] == k:
                        raise pymongo.errors.AutoReconnect(f"fault: write {k} refused")
                return originals[name](self, *a, **kw)
            return call

        t.trials += 1
        try:
            for w in writes:
                setattr(pymongo.collection.Collection, w, failing(w))
            try:
                submit_campaign(spec, lp_file)
                failed = False
            except SubmitError:
                failed = True
            except Exception as exc:  # noqa: BLE001 - a failure before any write
                failed = True
                t.note(f"write {k}: {type(exc).__name__}: {exc}")
        finally:
            for w, f in originals.items():
                setattr(pymongo.collection.Collection, w, f)
        t.refused_submissions += failed  # type: ignore[attr-defined]
        fws, wfs, named = _campaign_state(lp, "faults")
        whole = (fws, wfs) == (0, 0) or (wfs == 1 and fws == named)
        # a second submission must queue the campaign exactly once
        try:
            submit_campaign(spec, lp_file)
        except Exception as exc:  # noqa: BLE001
            if "already queued" not in str(exc):
                t.note(f"resubmit after write {k}: {type(exc).__name__}: {exc}")
        fws2, wfs2, named2 = _campaign_state(lp, "faults")
        if not whole or fws2 != named2:
            t.lost += 1
            t.note(f"write {k} (failed={failed}): {fws} Fireworks, {wfs} workflows")
        elif wfs2 > 1:
            t.duplicated += 1
        else:
            t.survived += 1
        env.drop(lp)
    return t


def submit_twice(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """The same campaign submitted 2-4 times in a row (as a user retrying would)."""
    from cgflow.orchestration.submit import AlreadyQueuedError, submit_campaign

    spec = env.tmp / "twice.yaml"
    spec.write_text(_SPEC)
    t = Tally()
    for _ in range(trials):
        lp, lp_file = env.launchpad()
        t.trials += 1
        for _ in range(int(rng.integers(2, 5))):
            with contextlib.suppress(AlreadyQueuedError):
                submit_campaign(spec, lp_file)
        fws, wfs, named = _campaign_state(lp, "faults")
        if wfs == 1 and fws == named:
            t.survived += 1
        elif wfs > 1:
            t.duplicated += 1
        else:
            t.lost += 1
        env.drop(lp)
    return t


# --- engine outputs and IBI decisions ----------------------------------------------------


def truncated_output(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """A finished IBI run with one output cut at a random byte: refused."""
    from cgflow.jobs.lammps.job import LammpsOutputValidator

    src = REPO / "tests" / "data" / "lammps_failures" / "finished_ibi"
    t = Tally()
    assert not LammpsOutputValidator().check(str(src)), "the canned run must pass as it is"
    for i in range(trials):
        d = env.tmp / f"trunc{i}"
        shutil.copytree(src, d)
        name = str(rng.choice(["log.lammps", "rdf.dat", "pressure.dat"]))
        data = (d / name).read_bytes()
        cut = int(rng.integers(0, len(data)))
        (d / name).write_bytes(data[:cut])
        v = LammpsOutputValidator()
        t.trials += 1
        if v.check(str(d)):
            t.survived += 1
        else:
            t.lost += 1
            t.note(f"{name} cut at byte {cut} of {len(data)} was accepted")
        shutil.rmtree(d)
    return t


def _history(kind: str, n: int, rng: np.random.Generator) -> list[dict]:
    """An IBI history of ``n`` iterations that diverges, oscillates or stagnates."""
    d0 = float(rng.uniform(0.05, 0.3))
    out = []
    for i in range(n):
        if kind == "diverge":
            d = d0 * (1.0 + 0.3 * i) * float(rng.uniform(0.95, 1.05))
        elif kind == "oscillate":
            d = d0 * (1.0 + 0.5 * (i % 2)) * float(rng.uniform(0.97, 1.03))
        else:  # stagnate above the tolerance
            d = d0 * float(rng.uniform(0.99, 1.01))
        out.append({"iteration": i, "rdf_deviation": d,
                    "pressure_deviation_bar": float(rng.normal(0, 300)),
                    "update_factor": 1.0, "sampling_ps": 20.0})
    return out


def ibi_monitor(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Failing IBI histories, assessed after every iteration: never converged."""
    from cgflow.ibi.monitor import assess_history

    t = Tally()
    for _ in range(trials):
        kind = str(rng.choice(["diverge", "oscillate", "stagnate"]))
        hist = _history(kind, int(rng.integers(3, 40)), rng)
        t.trials += 1
        decisions = [assess_history(hist[:i]) for i in range(1, len(hist) + 1)]
        if any(dec.action == "converged" for dec in decisions):
            t.lost += 1
            t.note(f"{kind} history of {len(hist)} stopped as converged")
        else:
            t.survived += 1
    return t


def missing_engine(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Two sets launched with a GROMACS command that does not exist."""
    cgflow = Path(sys.executable).with_name("cgflow")
    t = Tally()
    for i in range(trials):
        lp, lp_file = env.launchpad()
        spec = env.tmp / f"noengine{i}.yaml"
        spec.write_text(f"name: noengine{i}\nspace: narrow\nn_sets: 1\nseed: {i}\n"
                        "preset: tiny\nthreads: 1\n")
        run_env = dict(os.environ, CGFLOW_GMX="/nonexistent/gmx",
                       CGFLOW_WORK_ROOT=str(env.tmp / f"runs{i}"))
        subprocess.run([str(cgflow), "campaign", "submit", str(spec), "-l", str(lp_file)],  # noqa: S603
                       check=True, env=run_env, capture_output=True)
        proc = subprocess.run([str(cgflow), "launch", "-l", str(lp_file)],  # noqa: S603
                              env=run_env, capture_output=True, text=True, timeout=600)
        t.trials += 1
        firsts = list(lp.fireworks.find({"spec.campaign": f"noengine{i}",
                                         "spec.cgflow_stage": "aa-build"}))
        reasons = []
        for fw in firsts:
            launch = lp.launches.find_one({"fw_id": fw["fw_id"]}, sort=[("launch_id", -1)])
            exc = ((launch or {}).get("action") or {}).get("stored_data", {}).get(
                "_exception", {})
            reasons.append(str(exc.get("_stacktrace", "")))
        n_launches = [lp.launches.count_documents({"fw_id": fw["fw_id"]}) for fw in firsts]
        named = all("/nonexistent/gmx" in r for r in reasons)
        states = {fw["state"] for fw in firsts}
        if len(firsts) == 2 and states == {"FIZZLED"} and named:
            t.survived += 1
            if max(n_launches) > 1:
                t.duplicated += 1
        else:
            t.lost += 1
            t.note(f"states {states}, reasons name the command: {named}, launch exit "
                   f"{proc.returncode}: {proc.stdout[-200:]} {reasons[:1]}")
        env.drop(lp)
    return t


def missing_lammps(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """A LAMMPS run of the canned IBI inputs with ``CGFLOW_LMP=/nonexistent/lmp``: an
    EngineError naming the command (what a CG Firework fizzles with), no output written."""
    from cgflow.errors import EngineError
    from cgflow.jobs.lammps.job import run_lammps

    src = REPO / "tests" / "data" / "lammps_failures" / "finished_ibi"
    t = Tally()
    saved = os.environ.get("CGFLOW_LMP")
    os.environ["CGFLOW_LMP"] = "/nonexistent/lmp"
    try:
        for i in range(trials):
            d = env.tmp / f"nolmp{i}"
            shutil.copytree(src, d, ignore=shutil.ignore_patterns(
                "log.lammps", "rdf.dat", "pressure.dat", "final.data", "lammps.out"))
            t.trials += 1
            try:
                run_lammps(d, resume=False)
                t.lost += 1
                t.note("run_lammps returned without LAMMPS")
            except EngineError as exc:
                if "/nonexistent/lmp" in str(exc) and not (d / "log.lammps").exists():
                    t.survived += 1
                else:
                    t.lost += 1
                    t.note(str(exc))
    finally:
        if saved is None:
            os.environ.pop("CGFLOW_LMP", None)
        else:
            os.environ["CGFLOW_LMP"] = saved
    return t


# --- engines killed at random moments ------------------------------------------------------


def _case_script(name: str) -> Any:
    """The script under ``tests/data`` that made the canned cases of an engine (its test
    system, mdp options and potentials are reused here)."""
    import importlib.util

    path = {"gromacs": REPO / "tests/data/gromacs_failures/make_cases.py",
            "lammps": REPO / "tests/data/lammps_failures/make_job_cases.py"}[name]
    spec = importlib.util.spec_from_file_location(f"make_{name}_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _engine_pids(d: Path, engine: str) -> list[int]:
    """Pids of the engine processes (``mdrun`` or ``lmp``) working in ``d``, without the
    children an engine forks for a moment (the MPI start of ``lmp`` does)."""
    pids: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            ours = (b"mdrun" in argv) if engine == "mdrun" else \
                bool(argv) and Path(argv[0].decode(errors="replace")).name.startswith("lmp")
            if ours and Path(os.readlink(proc / "cwd")) == d:
                pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return [p for p in pids if _parent(p) not in pids]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _proc_summary(pid: int) -> str:
    """``pid``, its state and parent (``/proc/<pid>/stat``) and its command, for notes."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError as exc:
        return f"{pid}: {exc}"
    return f"{pid} state {stat[0]} parent {stat[1]}: {b' '.join(argv[:3]).decode()}"


class EngineKiller(threading.Thread):
    """Watches the engine processes in a run directory and kills them with SIGKILL.

    ``delays_s[k]`` is the time after the (k+1)-th engine process appeared at which it is
    killed (skipped if it ended before). Records the kills (seconds after the process
    appeared), the largest number of engine processes seen at once in the directory, and
    each process's lifetime (first to last seen).
    """

    def __init__(self, d: Path, engine: str, delays_s: list[float], poll_s: float = 0.05
                 ) -> None:
        super().__init__(daemon=True)
        self.d, self.engine, self.delays = d.resolve(), engine, list(delays_s)
        self.poll_s = poll_s
        self.kills: list[float] = []
        self.max_concurrent = 0
        self.crowd: list[str] = []
        self.seen: dict[int, list[float]] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            now = time.monotonic()
            pids = _engine_pids(self.d, self.engine)
            if len(pids) > self.max_concurrent > 0:
                self.crowd = [_proc_summary(p) for p in pids]
            self.max_concurrent = max(self.max_concurrent, len(pids))
            for pid in pids:
                self.seen.setdefault(pid, [now, now])[1] = now
            for k, (pid, (first, _)) in enumerate(self.seen.items()):
                if k < len(self.delays) and pid in pids and self.delays[k] is not None \
                        and now - first >= self.delays[k]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        self.kills.append(round(now - first, 2))
                    self.delays[k] = None  # type: ignore[call-overload]
            time.sleep(self.poll_s)

    def stop(self) -> None:
        self.halt.set()
        self.join(10)

    def lifetimes(self) -> list[float]:
        return [last - first for first, last in self.seen.values()]


def _within(a: tuple[float, float], b: tuple[float, float], k: float = 3.0) -> bool:
    """|mean a - mean b| <= k combined standard errors (a, b: mean, standard error)."""
    return abs(a[0] - b[0]) <= k * math.hypot(a[1], b[1])


def _kill_delays(rng: np.random.Generator, engine_s: float) -> list[float]:
    """One kill at a random moment of the engine's run, or (a third of the trials) two:
    the second in the first half of the resumed run."""
    first = float(rng.uniform(0.02, 0.95)) * engine_s
    if rng.random() < 1 / 3:
        return [first, float(rng.uniform(0.02, 0.5)) * engine_s]
    return [first]


#: The GROMACS production of the killed-mdrun fault: the 250-atom diatomic liquid of
#: tests/data/gromacs_failures (NVT, v-rescale, 2 fs), 10 ps, energies every 0.1 ps,
#: a checkpoint at every neighbour-search step (-cpt 0: the run lasts a second or less,
#: where the stages' interval is minutes), the first 1 ps not averaged.
MDRUN_STEPS, MDRUN_NSTENERGY, MDRUN_SKIP_PS = 5000, 50, 1.0
MDRUN_TERMS = ("Potential", "Temperature", "Pressure")


def _mdrun_production(d: Path, killer: EngineKiller | None) -> tuple[Any, dict[str, Any]]:
    """Run the production stage in ``d`` under Custodian (killed by ``killer``); returns
    the stage report and the outcome (averages, completeness)."""
    import pyedr

    from cgflow.analysis.energies import energy_averages
    from cgflow.jobs.gromacs.job import run_stage
    from cgflow.jobs.gromacs.validators import stage_problems

    if killer is not None:
        killer.start()
    try:
        report = run_stage(d, "production", "prod.mdp", "conf.gro", "topol.top", threads=1,
                           maxh=1.0, cpt_minutes=0, polling_s=0.1, monitor_interval_s=0.5)
    finally:
        if killer is not None:
            killer.stop()
    edr = d / "prod.edr"
    times = np.asarray(pyedr.edr_to_dict(str(edr))["Time"])
    dt = 0.002 * MDRUN_NSTENERGY
    frames_ok = (times.size == MDRUN_STEPS // MDRUN_NSTENERGY + 1
                 and np.allclose(np.diff(times), dt, atol=1e-6))
    av = energy_averages(edr, MDRUN_TERMS, start_ps=MDRUN_SKIP_PS, n_blocks=10)
    return report, {"averages": {k: (v.mean, v.err) for k, v in av.items()},
                    "complete": report.last_step == MDRUN_STEPS and frames_ok
                    and not stage_problems(d, "prod"),
                    "extent": f"{times.size} energy frames, last step {report.last_step}",
                    "summary": {k: [round(v.mean, 3), round(v.err, 3)] for k, v in av.items()}}


def _mdrun_dir(root: Path, name: str) -> Path:
    mc = _case_script("gromacs")
    d = root / name
    d.mkdir(parents=True)
    for f in ("conf.gro", "topol.top"):
        shutil.copy(mc.SYSTEM / f, d / f)
    (d / "prod.mdp").write_text(mc.mdp_text(
        nsteps=str(MDRUN_STEPS), nstlog="1000", nstcalcenergy=str(MDRUN_NSTENERGY),
        nstenergy=str(MDRUN_NSTENERGY), nstxout_compressed="500"))
    return d.resolve()


def _kill_trials(trials: int, rng: np.random.Generator, env: Env, engine: str,
                 prepare: Callable[[Path, str], tuple[Path, Any]],
                 run: Callable[[Path, Any, EngineKiller], tuple[Any, dict[str, Any]]],
                 judge: Callable[[dict[str, Any], dict[str, Any], Tally], str | None],
                 resumed: Callable[[Any], int], how: str) -> Tally:
    """The trials of a killed-engine fault: an uninterrupted reference run, then
    ``trials`` runs whose engine is killed at random moments (:func:`_kill_delays`).

    ``prepare(root, name)`` makes a run directory (returns it and what ``run`` needs),
    ``run(d, what, killer)`` runs it under Custodian and returns the report and the
    outcome (``complete`` and what ``judge`` compares), ``judge(got, ref, tally)`` says
    why the outcome differs from the reference (None when it matches), ``resumed(report)``
    counts the continuations from a checkpoint or restart file, tallied as ``how``.
    """
    t = Tally()
    t.kills = t.missed = t.from_start = 0  # type: ignore[attr-defined]
    setattr(t, how, 0)
    d, what = prepare(env.tmp, "reference")
    ref_killer = EngineKiller(d, engine, [])
    _, ref = run(d, what, ref_killer)
    engine_s = max(ref_killer.lifetimes() or [1.0])
    t.engine_s = round(engine_s, 2)  # type: ignore[attr-defined]
    t.kill_times_s = []  # type: ignore[attr-defined]
    t.reference = ref["summary"]  # type: ignore[attr-defined]
    for i in range(trials):
        d, what = prepare(env.tmp, f"trial{i}")
        killer = EngineKiller(d, engine, _kill_delays(rng, engine_s))
        try:
            report, got = run(d, what, killer)
        except Exception as exc:  # noqa: BLE001 - a run that did not resume
            t.trials += 1
            t.lost += 1
            t.note(f"kills at {killer.kills} s: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if not killer.kills:
            t.missed += 1  # type: ignore[attr-defined]
            continue
        t.trials += 1
        t.kills += len(killer.kills)  # type: ignore[attr-defined]
        t.kill_times_s.append(killer.kills)  # type: ignore[attr-defined]
        n_resumed = resumed(report)
        setattr(t, how, getattr(t, how) + n_resumed)
        t.from_start += len(killer.kills) - n_resumed  # type: ignore[attr-defined]
        off = judge(got, ref, t)
        if killer.max_concurrent > 1 or report.attempts > len(killer.kills) + 1:
            t.duplicated += 1
            t.note(f"{killer.max_concurrent} {engine} at once ({killer.crowd}), "
                   f"{report.attempts} attempts for {len(killer.kills)} kill(s)")
        if got["complete"] and off is None:
            t.survived += 1
        else:
            t.lost += 1
            t.note(f"kills at {killer.kills} s: complete {got['complete']} "
                   f"({got['extent']}): {off}")
    return t


def _actions(report: Any) -> list[Any]:
    """The actions of a run report's corrections."""
    return [a.get("action") for c in report.corrections for a in c["actions"]]


def killed_mdrun(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """``gmx mdrun`` of a production killed with SIGKILL at random moments (once, or in a
    third of the trials twice); the stage resumed by Custodian's checkpoint handler, as
    in a Firework. Survived: complete (every step and energy frame once) and the average
    potential energy, temperature and pressure within 3 combined standard errors of an
    uninterrupted run. A trial whose kill came after mdrun ended is not counted."""
    def judge(got: dict[str, Any], ref: dict[str, Any], t: Tally) -> str | None:
        off = [(k, got["averages"][k], ref["averages"][k]) for k in MDRUN_TERMS
               if not _within(got["averages"][k], ref["averages"][k])]
        return f"outside the error: {off}" if off else None

    return _kill_trials(
        trials, rng, env, "mdrun", lambda root, name: (_mdrun_dir(root, name), None),
        lambda d, _, killer: _mdrun_production(d, killer), judge,
        lambda report: sum(a == "continue_from_checkpoint" for a in _actions(report)),
        "from_checkpoint")


#: The IBI sampling run of the killed-lmp fault: 125 beads of 114.23 g/mol at 690 kg/m^3,
#: LJ table (tests/data/lammps_failures) to 1.2 nm, 1.5 ps of equilibration after the
#: minimisation, 25 ps of sampling in 10 blocks (a restart file at each block end).
LMP_PRESET = dict(name="faults", n_beads=125, equilibration_ps=1.5, ibi_sampling_ps=25.0,
                  production_ps=1.0, rcut_nm=1.2, sample_every_steps=10, n_blocks=10)


def _lmp_dir(root: Path, name: str) -> tuple[Path, Any]:
    """A run directory with the IBI sampling run as the IBI stage writes it
    (:func:`cgflow.ibi.iteration.ibi_lammps_settings`); returns it and the settings."""
    from cgflow.engines import lammps as eng
    from cgflow.ibi.iteration import ibi_lammps_settings
    from cgflow.ibi.settings import IBISettings
    from cgflow.presets import CGPreset

    mk = _case_script("lammps")
    preset = CGPreset(**LMP_PRESET)
    d = root / name
    d.mkdir(parents=True)
    r = mk.grid(0.3, preset.rcut_nm)
    eng.write_table(d / eng.TABLE_FILE, r, *mk.lj(r))
    eng.write_data(d / eng.DATA_FILE, preset.n_beads,
                   eng.box_length_nm(preset.n_beads, mk.DENSITY_KG_M3, mk.MASS_G_MOL),
                   mk.MASS_G_MOL, 3)
    settings = ibi_lammps_settings(IBISettings(temperature_k=mk.TEMPERATURE_K), preset,
                                   seed=7, table_points=r.size)
    eng.write_input(d / eng.INPUT_FILE, settings)
    return d.resolve(), settings


def _lmp_sampling(d: Path, settings: Any, killer: EngineKiller | None
                  ) -> tuple[Any, dict[str, Any]]:
    """Run the IBI sampling in ``d`` under Custodian (killed by ``killer``); returns the
    run report and what cgflow's readers make of it."""
    from cgflow.engines import lammps as eng
    from cgflow.ibi.iteration import read_sampled_pressure, read_sampled_rdf
    from cgflow.jobs.lammps.job import LammpsOutputValidator, run_lammps

    if killer is not None:
        killer.start()
    try:
        report = run_lammps(d, settings=settings, polling_s=0.1)
    finally:
        if killer is not None:
            killer.stop()
    steps, _ = eng.read_block_file(d / eng.RDF_FILE)
    p_steps, _ = eng.read_block_file(d / eng.PRESSURE_FILE)
    expected = settings.block_steps * np.arange(1, settings.n_blocks + 1)
    r, g, g_err = read_sampled_rdf(d)
    pressure = read_sampled_pressure(d)
    return report, {"r": r, "g": g, "g_err": g_err, "pressure": pressure,
                    "complete": (report.final_step == settings.final_step
                                 and np.array_equal(steps, expected)
                                 and np.array_equal(p_steps, expected)
                                 and not LammpsOutputValidator().find_problems(d)),
                    "extent": f"{steps.size} RDF blocks, last step {report.final_step}",
                    "summary": {"pressure_bar": [round(x, 1) for x in pressure]}}


def _rdf_chi2(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Mean over the bins with an error of ((g_a - g_b) / combined error)^2: about 1 for
    independent runs of the same system, less for runs that share their beginning."""
    err = np.hypot(a["g_err"], b["g_err"])
    ok = err > 1e-9
    return float(np.mean(((a["g"][ok] - b["g"][ok]) / err[ok]) ** 2))


#: Largest RDF chi^2 per bin (:func:`_rdf_chi2`) counted as the same structure: 10-block
#: errors are themselves uncertain (E[1/s^2] is 9/7 of 1/sigma^2 for 9 degrees of
#: freedom), so independent runs give about 1.3; a lost block or a restarted average
#: gives far more.
RDF_CHI2_MAX = 2.0


def killed_lmp(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """``lmp`` of an IBI sampling run killed with SIGKILL at random moments (once, or in a
    third of the trials twice), during the minimisation, the equilibration or the
    sampling; resumed by Custodian's restart handler (from the last block's restart file,
    or from the start before the first one). Survived: every block once, and the RDF
    (chi^2 per bin <= 2) and pressure (3 combined standard errors) of cgflow's readers
    match an uninterrupted run. A trial whose kill came after LAMMPS ended is not
    counted."""
    def judge(got: dict[str, Any], ref: dict[str, Any], t: Tally) -> str | None:
        chi2 = _rdf_chi2(got, ref)
        t.chi2 = [*getattr(t, "chi2", []), round(chi2, 2)]  # type: ignore[attr-defined]
        if chi2 <= RDF_CHI2_MAX and _within(got["pressure"], ref["pressure"]):
            return None
        return f"RDF chi2 {chi2:.2f}, pressure {got['pressure']} against {ref['pressure']}"

    return _kill_trials(
        trials, rng, env, "lmp", _lmp_dir, _lmp_sampling, judge,
        lambda report: sum(isinstance(a, dict) and "_continue_from_restart" in a
                           for a in _actions(report)),
        "from_restart")


# --- a full disk -------------------------------------------------------------------------------


def _no_tmpfs_reason() -> str | None:
    """Why a tmpfs cannot be mounted here (None when it can: root with ``mount``)."""
    if os.geteuid() != 0:
        return "not root: a full disk needs a tmpfs mount (and permissions do not stop root)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount/umount command"
    return None


@contextlib.contextmanager
def tmpfs(path: Path, size_kb: int):
    """A tmpfs of ``size_kb`` KiB mounted at ``path`` (root only), unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs",  # noqa: S607
                    str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:  # noqa: S607
            subprocess.run(["umount", "-l", str(path)], capture_output=True)  # noqa: S607


def fill(path: Path, leave_bytes: int = 0) -> None:
    """Fill the file system of ``path`` up to ``leave_bytes`` free (a file ``filler``)."""
    with contextlib.suppress(OSError), (path / "filler").open("ab") as fh:
        while True:
            room = shutil.disk_usage(path).free - leave_bytes
            if room <= 0:
                return
            fh.write(b"\0" * min(room, 1 << 16))
            fh.flush()


def _says_full(message: str, path: Path) -> bool:
    return "no space left on device" in message.lower() and str(path) in message


def disk_full(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """A GROMACS production or a LAMMPS IBI sampling run (alternately) on a 4 MiB tmpfs
    that a filler fills at a random moment (before the start, or while the run goes on:
    up to the time an uninterrupted run took here):
    the stage raises an EngineError that says "No space left on device" and names the run
    directory, no engine is left running, nothing is reported as a result. A trial whose
    filler came after the run's last write (the run completed, its outputs whole) is
    not counted."""
    from cgflow.errors import EngineError

    t = Tally()
    t.missed = 0  # type: ignore[attr-defined]
    why = _no_tmpfs_reason()
    if why:
        t.skipped = why  # type: ignore[attr-defined]
        return t
    # how long each run takes here, uninterrupted: the filler comes at a random moment of it
    t0 = time.monotonic()
    _mdrun_production(_mdrun_dir(env.tmp, "mdrun"), None)
    t1 = time.monotonic()
    _lmp_sampling(*_lmp_dir(env.tmp, "lmp"), None)
    run_s = {"mdrun": t1 - t0, "lmp": time.monotonic() - t1}
    t.run_s = {k: round(v, 2) for k, v in run_s.items()}  # type: ignore[attr-defined]
    for i in range(trials):
        engine = ("mdrun", "lmp")[i % 2]
        delay = float(rng.uniform(-0.2, 1.0)) * run_s[engine]
        with tmpfs(env.tmp / f"disk{i}", 4096) as mnt:
            if engine == "mdrun":
                d = _mdrun_dir(mnt, "run")
            else:
                d, settings = _lmp_dir(mnt, "run")
            filler = threading.Timer(max(delay, 0.0), fill, args=(mnt,))
            if delay <= 0:
                fill(mnt)
            else:
                filler.start()
            try:
                if engine == "mdrun":
                    _mdrun_production(d, None)
                else:
                    _lmp_sampling(d, settings, None)
                outcome = "completed"
            except Exception as exc:  # noqa: BLE001 - what the fault looks for
                outcome = f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, EngineError):
                    where = traceback.extract_tb(exc.__traceback__)[-1]
                    outcome += f" (raised at {where.filename}:{where.lineno})"
            filler.cancel()
            if filler.ident is not None:
                filler.join()
            left = _engine_pids(d, engine)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if outcome == "completed":
                t.missed += 1  # type: ignore[attr-defined]
                continue
            t.trials += 1
            if outcome.startswith("EngineError") and _says_full(outcome, d) and not left:
                t.survived += 1
            else:
                t.lost += 1
                t.note(f"{engine}, full after {delay:.2f} s, {len(left)} engine(s) left "
                       f"running: {outcome[:240]}")
    return t


def disk_full_campaign(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """A tiny campaign of two sets, one of them (drawn at random) with its run directory
    (``CGFLOW_WORK_ROOT/<set id>``) on a full tmpfs, launched with ``cgflow launch``:
    that set's Firework fizzles with a reason naming "No space left on device" and the
    directory, its all-atom run is stored failed with no results, and the other set's
    all-atom Fireworks all complete with a stored result."""
    from cgflow.db.store import Store

    t = Tally()
    why = _no_tmpfs_reason()
    cgflow = Path(sys.executable).with_name("cgflow")
    if why is None and not Path(sys.executable).with_name("rlaunch").exists() \
            and shutil.which("rlaunch") is None:
        why = "rlaunch not installed"
    if why:
        t.skipped = why  # type: ignore[attr-defined]
        return t
    for i in range(trials):
        lp, lp_file = env.launchpad()
        name = f"diskfull{i}"
        spec = env.tmp / f"{name}.yaml"
        spec.write_text(f"name: {name}\nspace: narrow\nn_sets: 1\nseed: {i}\npreset: tiny\n"
                        "threads: 1\n")
        root = env.tmp / f"runs{i}"
        run_env = dict(os.environ, CGFLOW_WORK_ROOT=str(root))
        subprocess.run([str(cgflow), "campaign", "submit", str(spec), "-l", str(lp_file)],  # noqa: S603
                       check=True, env=run_env, capture_output=True)
        builds = list(lp.fireworks.find({"spec.campaign": name, "spec.cgflow_stage": "aa-build"}))
        ids = sorted({fw["spec"]["param_id"] for fw in builds})
        full_id = ids[int(rng.integers(len(ids)))]
        with tmpfs(root / full_id, 256) as mnt:
            fill(mnt, leave_bytes=int(rng.integers(0, 64)) * 1024)
            proc = subprocess.run([str(cgflow), "launch", "-l", str(lp_file)],  # noqa: S603
                                  env=run_env, capture_output=True, text=True, timeout=1800)
        t.trials += 1
        fws = list(lp.fireworks.find({"spec.campaign": name}))
        by_set: dict[str, list[dict]] = {}
        for fw in fws:
            by_set.setdefault(fw["spec"].get("param_id", ""), []).append(fw)
        fizzled = [fw for fw in by_set.get(full_id, []) if fw["state"] == "FIZZLED"]
        reasons = []
        for fw in fizzled:
            launch = lp.launches.find_one({"fw_id": fw["fw_id"]}, sort=[("launch_id", -1)])
            exc = ((launch or {}).get("action") or {}).get("stored_data", {}).get(
                "_exception", {})
            reasons.append(str(exc.get("_stacktrace", "")))
        with Store.from_launchpad(lp) as store:
            runs = {r.param_id: r for r in store.aa_runs(campaign=name)}
        full_run, others = runs.get(full_id), [runs.get(p) for p in ids if p != full_id]
        others_done = all(r is not None and r.status == "completed" and r.results is not None
                          for r in others) and all(
            fw["state"] == "COMPLETED" for p in ids if p != full_id for fw in by_set[p]
            if fw["spec"].get("cgflow_stage", "").startswith("aa-"))
        named = any(_says_full(r, root / full_id) for r in reasons)
        stored_failed = full_run is None or (full_run.status == "failed"
                                             and full_run.results is None)
        if len(fizzled) == 1 and named and stored_failed and others_done:
            t.survived += 1
        else:
            t.lost += 1
            t.note(f"fizzled {len(fizzled)}, reason names the full disk: {named}, stored "
                   f"failed: {stored_failed}, other sets done: {others_done}, launch exit "
                   f"{proc.returncode}: {(reasons or [''])[0][-300:]}")
        env.drop(lp)
    return t


FAULTS: dict[str, tuple[Callable[[int, np.random.Generator, Env], Tally], int]] = {
    "bad_input": (bad_input, 1),
    "fuzz_specs": (fuzz_specs, 300),
    "fuzz_parameter_sets": (fuzz_parameter_sets, 300),
    "submit_refused": (submit_refused, 30),
    "submit_twice": (submit_twice, 10),
    "truncated_output": (truncated_output, 100),
    "ibi_monitor": (ibi_monitor, 200),
    "missing_engine": (missing_engine, 2),
    "missing_lammps": (missing_lammps, 3),
    "fuzz_submit": (fuzz_submit, 40),
    "killed_mdrun": (killed_mdrun, 12),
    "killed_lmp": (killed_lmp, 12),
    "disk_full": (disk_full, 10),
    "disk_full_campaign": (disk_full_campaign, 1),
}


@contextlib.contextmanager
def scratch_database(uri: str | None):
    """``uri``, else an embedded server of its own in a temporary home (stopped after)."""
    if uri:
        yield uri
        return
    from conftest import free_tcp_port

    from cgflow.db.server import EmbeddedServer

    home = Path(tempfile.mkdtemp(prefix="cgflow-faults-db-"))
    server = EmbeddedServer(home=home, port=free_tcp_port(), log_level="WARNING")
    server.start(wait_s=60)
    try:
        yield server.client_uri() if hasattr(server, "client_uri") else server.uri
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def run_faults(names: list[str], trials: int | None, seed: int, uri: str | None
               ) -> dict[str, dict[str, Any]]:
    """Run the faults ``names``; returns name -> tally (as a dict)."""
    rng = np.random.default_rng(seed)
    out = {}
    with tempfile.TemporaryDirectory(prefix="cgflow-faults-") as tmp, \
            scratch_database(uri) as db_uri:
        for name in names:
            fn, default = FAULTS[name]
            work = Path(tmp) / name
            work.mkdir()
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                tally = fn(trials or default, rng, Env(tmp=work, uri=db_uri))
            out[name] = {**vars(tally), "wall_s": round(time.perf_counter() - t0, 1)}
            print(json.dumps({name: out[name]}), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=sorted(FAULTS), default=list(FAULTS))
    ap.add_argument("--trials", type=int, help="trials per fault (default: each fault's own)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--uri", help="a MongoDB URI to use instead of an embedded server")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "faults.json")
    args = ap.parse_args()
    from _common import cpu_model, load_average

    load_before = load_average()
    results = run_faults(args.only, args.trials, args.seed, args.uri)
    doc = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "seed": args.seed,
           "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                       "load_before": load_before, "load_after": load_average()},
           "faults": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    write_markdown(doc, args.out.with_suffix(".md"))
    figures.draw("faults", args.out)
    print(args.out.with_suffix(".md").read_text())


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    """The Markdown summary of a result document of :func:`main`."""
    results, m = doc["faults"], doc["machine"]
    lines = ["# Fault injection (`benchmarks/faults.py`)", "",
             f"{doc['date']}, seed {doc['seed']}, {m['cpu']}, {m['cores']} cores, load "
             f"{m['load_before']} before, {m['load_after']} after.", "",
             "| fault | trials | survived | lost | duplicated | wall s |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['trials']} | {r['survived']} | {r['lost']} | "
                     f"{r['duplicated']} | {r['wall_s']} |")
    if "bad_input" in results:
        r = results["bad_input"]
        lines += ["", "Bad input: "
                  f"{r['trials']} inputs tried, {r['clear_errors']} clear errors, "
                  f"{r['tracebacks']} tracebacks, {r['writes']} with writes."]
    if "submit_refused" in results:
        r = results["submit_refused"]
        lines += ["", f"Submissions refused by the injected fault: {r['refused_submissions']} "
                  f"of {r['trials']} (in the others the failing write came after the "
                  "submission's last one: a control)."]
    for name, how in (("killed_mdrun", "from_checkpoint"), ("killed_lmp", "from_restart")):
        r = results.get(name)
        if r and "kills" in r:
            lines += ["", f"{name}: {r['kills']} kills in {r['trials']} trials; "
                      f"{r[how]} resumed from the {how.split('_')[1]} file, "
                      f"{r['from_start']} rerun from the start (killed before the first); "
                      f"{r['missed']} more trial(s) whose kill came after the engine ended, "
                      f"not counted; the uninterrupted engine ran {r['engine_s']} s."]
    for name, r in results.items():
        if r.get("skipped"):
            lines += ["", f"{name}: skipped: {r['skipped']}."]
        elif name.startswith("disk_full") and "missed" in r:
            lines += ["", f"{name}: {r['missed']} more trial(s) whose disk filled after the "
                      "run's last write, not counted."]
    for name, r in results.items():
        for note in r["notes"]:
            lines.append(f"- {name}: {note}")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
