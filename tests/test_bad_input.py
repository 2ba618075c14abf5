"""Hostile input to every command that reads a user file: always a clear error (exit status
2 naming the file and what is wrong, 1 for a server that does not answer), never a
traceback, never a write.

The cases are one table (:func:`cases`), run through ``cgflow``'s ``main`` in this process
against the session's test server; ``benchmarks/faults.py`` runs the same table and counts
the outcomes for the README.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from cgflow.cli.main import main
from cgflow.params import OPLSAA_REFERENCE

#: Marks of a message that is not a clear one (the catch-all of ``cgflow.cli.main``).
UNCLEAR = ("unexpected error", "Traceback (most recent call last)")


@dataclass
class Ctx:
    """Where a case writes its files: ``tmp`` and a valid launchpad file ``lp`` of the test
    server, whose database must stay unchanged; outputs go under ``tmp / 'out'``, which
    must not appear."""

    tmp: Path
    lp: Path
    n: int = 0

    def file(self, content: bytes | str | None, suffix: str = ".yaml") -> str:
        """A new file holding ``content`` (``None``: a path that does not exist)."""
        self.n += 1
        p = self.tmp / f"in{self.n}{suffix}"
        if content is not None:
            p.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(p)

    @property
    def out(self) -> str:
        return str(self.tmp / "out")


@dataclass(frozen=True)
class Case:
    """One hostile input: ``argv(ctx)`` is the command line; the message must contain
    every fragment of ``says`` (``{file}`` is the first file argument)."""

    id: str
    argv: Callable[[Ctx], list[str]]
    status: int = 2
    says: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What one case gave."""

    case: Case
    status: int | None
    message: str
    traceback: bool
    writes: list[str] = field(default_factory=list)
    file: str | None = None

    @property
    def clear(self) -> bool:
        return (not self.traceback and self.status == self.case.status
                and not any(u in self.message for u in UNCLEAR))


# --- the hostile files ---------------------------------------------------------------------

_BOMB = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
    for i in range(1, 25)]) + "\n"

#: kind -> (content, fragment of the message); None: a missing file, "DIR": a directory.
BAD_FILES: dict[str, tuple[bytes | str | None, str]] = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
    "latin1": ("name: caf\xe9\nhost: x\n".encode("latin-1"), "not UTF-8"),
    "nul": (b"name: a\x00\n", "NUL bytes"),
    "empty": (b"", "expected a mapping"),
    "list": (b"- 1\n- 2\n", "expected a mapping"),
    "scalar": (b"just some words\n", "expected a mapping"),
    "malformed": (b"name: [1, 2\n", "malformed YAML at line"),
    "tab": (b"name:\n\t- 1\n", "malformed YAML"),
    "duplicate": (b"name: a\nname: b\n", "given twice"),
    "alias": (b"x: &a [1]\ny: *a\n", "alias"),
    "alias-bomb": (_BOMB, "alias"),
    "deep": ("name: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper"),
    "oversized": (b"name: " + b"x" * 1_100_000 + b"\n", "more than the"),
    "json-garbage": (b'{"name": 1,,}', "malformed YAML"),
    "directory": ("DIR", "not a regular file"),
    "missing": (None, "no such file"),
}


def _bad_file(ctx: Ctx, kind: str, suffix: str = ".yaml") -> str:
    content = BAD_FILES[kind][0]
    if content == "DIR":
        d = ctx.tmp / f"dir{ctx.n}{suffix}"
        ctx.n += 1
        d.mkdir()
        return str(d)
    return ctx.file(content, suffix)


#: Commands reading a YAML user file: name -> argv given the file.
YAML_READERS: dict[str, Callable[[Ctx, str], list[str]]] = {
    "params check": lambda c, f: ["params", "check", f],
    "predict": lambda c, f: ["predict", f, "--campaign", "x", "-o", c.out, "-l", str(c.lp)],
    "campaign build": lambda c, f: ["campaign", "build", f, "-o", c.out],
    "campaign submit": lambda c, f: ["campaign", "submit", f, "-l", str(c.lp)],
    "campaign results -l": lambda c, f: ["campaign", "results", "x", "-l", f],
    "campaign status -l": lambda c, f: ["campaign", "status", "x", "-l", f],
    "campaign submit -l": lambda c, f: ["campaign", "submit", "tiny", "-l", f],
    "launch -l": lambda c, f: ["launch", "-l", f],
    "launch -w": lambda c, f: ["launch", "-l", str(c.lp), "-w", f],
    "potentials list -l": lambda c, f: ["potentials", "list", "-l", f],
    "models list -l": lambda c, f: ["models", "list", "-l", f],
    "dataset export -l": lambda c, f: ["dataset", "export", "x", "-o", c.out, "-l", f],
    "db migrate -l": lambda c, f: ["db", "migrate", "-l", f],
    "validate -l": lambda c, f: ["validate", "--campaign", "x", "-o", c.out, "-l", f],
}


def _ps_yaml(**changes: object) -> str:
    values: dict[str, object] = OPLSAA_REFERENCE.model_dump()
    for k, v in changes.items():
        if v is _DROP:
            values.pop(k)
        else:
            values[k] = v
    return yaml.safe_dump(values, sort_keys=False)


_DROP = object()

#: Parameter-set values: id -> (changes, fragments of the message).
BAD_VALUES: dict[str, tuple[dict[str, object], tuple[str, ...]]] = {
    "bool r0": ({"bond_ctct_r0": True}, ("bond_ctct_r0", "True", "expected a number")),
    "string r0": ({"bond_ctct_r0": "1.529"}, ("bond_ctct_r0", "'1.529'", "expected a number")),
    "null k": ({"bond_ctct_k": None}, ("bond_ctct_k", "None")),
    "list k": ({"bond_ctct_k": [1, 2]}, ("bond_ctct_k", "[1, 2]")),
    "mapping k": ({"bond_ctct_k": {"a": 1}}, ("bond_ctct_k",)),
    "k 1e308": ({"bond_ctct_k": 1e308}, ("bond_ctct_k", "1e+308", "sanity bounds")),
    "k 1e-300": ({"angle_ctctct_k": 1e-300}, ("angle_ctctct_k", "1e-300", "sanity bounds")),
    "k negative": ({"bond_cthc_k": -5.0}, ("bond_cthc_k", "-5.0", "must be > 0")),
    "k zero": ({"angle_hcthc_k": 0.0}, ("angle_hcthc_k", "must be > 0")),
    "k huge int": ({"bond_ctct_k": 10**400}, ("bond_ctct_k", "finite")),
    "k nan": ({"bond_ctct_k": float("nan")}, ("bond_ctct_k", "finite")),
    "k inf": ({"bond_ctct_k": float("inf")}, ("bond_ctct_k", "finite")),
    "r0 in Angstrom": ({"bond_ctct_r0": 1.529}, ("bond_ctct_r0", "1.529", "sanity bounds")),
    "r0 tiny": ({"bond_cthc_r0": 1e-5}, ("bond_cthc_r0", "sanity bounds")),
    "theta0 180": ({"angle_ctctct_theta0": 180.0}, ("angle_ctctct_theta0", "(0, 180)")),
    "theta0 negative": ({"angle_ctcthc_theta0": -1.0}, ("angle_ctcthc_theta0",)),
    "dihedral 1e6": ({"dih_ctctctct_c1": 1e6}, ("dih_ctctctct_c1", "sanity bounds")),
    "unknown field": ({"bond_ctct_kk": 1.0}, ("bond_ctct_kk", "unknown field")),
    "missing field": ({"dih_hcctcthc_c3": _DROP}, ("dih_hcctcthc_c3", "missing")),
}

#: Campaign-spec values: id -> (YAML, fragments).
BAD_SPECS: dict[str, tuple[str, tuple[str, ...]]] = {
    "negative seed": ("name: x\nseed: -1\nn_sets: 2\n", ("seed", "-1")),
    "seed too large": ("name: x\nseed: 99999999999\n", ("seed", "99999999999")),
    "seed float": ("name: x\nseed: 1.5\n", ("seed", "1.5")),
    "seed string": ("name: x\nseed: '7'\n", ("seed", "'7'")),
    "n_sets bool": ("name: x\nn_sets: true\n", ("n_sets", "True")),
    "n_sets string": ("name: x\nn_sets: '3'\n", ("n_sets", "'3'")),
    "n_sets negative": ("name: x\nn_sets: -3\n", ("n_sets", "-3")),
    "n_sets 100000": ("name: x\nn_sets: 100000\n", ("n_sets", "100000", "at most")),
    "max_iterations huge": ("name: x\nibi: {max_iterations: 1000000000}\n",
                            ("ibi.max_iterations", "1000000000")),
    "max_iterations zero": ("name: x\nibi: {max_iterations: 0}\n", ("ibi.max_iterations",)),
    "ibi unknown": ("name: x\nibi: {rdf_tolerence: 0.1}\n", ("ibi.rdf_tolerence", "unknown")),
    "monitor unknown": ("name: x\nibi: {monitor: {windoww: 3}}\n", ("ibi.monitor.windoww",)),
    "bad name": ("name: 'a b/c'\n", ("name", "'a b/c'")),
    "no name": ("n_sets: 1\n", ("name", "missing")),
    "unknown space": ("name: x\nspace: huge\n", ("space", "huge")),
    "unknown preset": ("name: x\npreset: galactic\n", ("preset", "galactic")),
    "unknown sampling": ("name: x\nsampling: sobol\n", ("sampling", "sobol")),
    "unknown units": ("name: x\nunits: si\n", ("units", "si")),
    "threads zero": ("name: x\nthreads: 0\n", ("threads", "0")),
    "no sets": ("name: x\ninclude_reference: false\n", ("no parameter sets",)),
    "parameter_sets not a list": ("name: x\nparameter_sets: 5\n", ("parameter_sets", "5")),
    "parameter_sets bool value": (
        "name: x\nparameter_sets:\n- " + _ps_yaml(bond_ctct_r0=True).replace("\n", "\n  "),
        ("parameter_sets[0]", "bond_ctct_r0", "True")),
    "ibi temperature": ("name: x\nibi: {temperature_k: 400}\n", ("temperature_k",)),
    "cg_stage string": ("name: x\ncg_stage: maybe\n", ("cg_stage", "maybe")),
}

#: Launchpad-file fields: id -> (YAML, fragments, exit status).
BAD_LAUNCHPADS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "port string": ("host: 127.0.0.1\nport: abc\nname: x\n", ("port", "'abc'"), 2),
    "port too large": ("host: 127.0.0.1\nport: 99999\nname: x\n", ("port", "99999"), 2),
    "port negative": ("host: 127.0.0.1\nport: -1\nname: x\n", ("port", "-1"), 2),
    "port bool": ("host: 127.0.0.1\nport: true\nname: x\n", ("port", "True"), 2),
    "host list": ("host: [a, b]\nname: x\n", ("host", "['a', 'b']"), 2),
    "name number": ("host: 127.0.0.1\nname: 5\n", ("name", "5"), 2),
    "kwargs list": ("host: 127.0.0.1\nname: x\nmongoclient_kwargs: [1]\n",
                    ("mongoclient_kwargs",), 2),
    "kwargs unknown option": ("host: 127.0.0.1\nname: x\nmongoclient_kwargs: {bogus: 1}\n",
                              ("bogus",), 2),
    "bad uri": ("host: 'mongodb://[::1'\nname: x\nuri_mode: true\n", ("host",), 2),
    "no host or name": ("strm_lvl: INFO\n", ("'host'", "'name'"), 2),
    "unreachable port": ("host: 127.0.0.1\nport: 1\nname: x\n",
                         ("cannot reach the job database", "127.0.0.1:1", "Check that"), 1),
}

#: FireWorker-file fields (``cgflow launch -w``): id -> (YAML, fragments).
BAD_FWORKERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "name list": ("name: [a]\n", ("name", "['a']")),
    "env list": ("name: w\nenv: [1]\n", ("env", "[1]")),
    "category number": ("name: w\ncategory: 5\n", ("category", "5")),
    "category list of numbers": ("name: w\ncategory: [1, 2]\n", ("category",)),
}


def _npz(ctx: Ctx, make: Callable[[Path], None]) -> str:
    ctx.n += 1
    p = ctx.tmp / f"data{ctx.n}.npz"
    make(p)
    return str(p)


def _good_arrays(n: int = 3, g: int = 6) -> dict[str, np.ndarray]:
    from cgflow.ml.dataset import SCALAR_FIELDS

    return {"param_ids": np.array([f"id{i}" for i in range(n)]),
            "X": np.tile(OPLSAA_REFERENCE.to_array(), (n, 1)),
            "r_nm": np.linspace(0.3, 1.0, g), "U": np.zeros((n, g)),
            **{k: np.ones(n) for k in SCALAR_FIELDS}, "campaign": np.array("c")}


def _arrays(**changes: object) -> Callable[[Path], None]:
    def make(p: Path) -> None:
        a = _good_arrays()
        for k, v in changes.items():
            if v is _DROP:
                a.pop(k)
            else:
                a[k] = v
        np.savez(p, **a)
    return make


#: Dataset files: id -> (writer, fragments).
BAD_DATASETS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "garbage": (lambda p: p.write_bytes(b"\x00garbage\xff" * 10), ("not a NumPy .npz",)),
    "yaml": (lambda p: p.write_text("X: [1, 2]\n"), ("not a NumPy .npz",)),
    "pickle": (lambda p: p.write_bytes(__import__("pickle").dumps({"X": 1})),
               ("not a NumPy .npz",)),
    "empty": (lambda p: p.write_bytes(b""), ("not a NumPy .npz",)),
    "object array": (_arrays(X=np.array([{"a": 1}] * 3, dtype=object)),
                     ("array 'X'", "allow_pickle")),
    "wrong keys": (lambda p: np.savez(p, foo=np.zeros(3)), ("unknown array", "foo")),
    "missing key": (_arrays(U=_DROP), ("['U']", "missing")),
    "X as text": (_arrays(X=np.array([["a"] * 19] * 3)), ("array 'X'", "expected numbers")),
    "ids as numbers": (_arrays(param_ids=np.arange(3)), ("param_ids", "expected text")),
    "X wrong shape": (_arrays(X=np.zeros((3, 5))), ("field 'X'", "(3, 19)")),
    "U wrong shape": (_arrays(U=np.zeros((2, 6))), ("field 'U'",)),
    "grid decreasing": (_arrays(r_nm=np.linspace(1.0, 0.3, 6)), ("r_nm", "increasing")),
    "X nan": (_arrays(X=np.full((3, 19), np.nan)), ("field 'X'", "non-finite")),
    "campaign array": (_arrays(campaign=np.array(["a", "b"])), ("campaign",)),
    "a .npy member that is not": (
        lambda p: __import__("zipfile").ZipFile(p, "w").writestr("X.txt", "1"), ("X.txt",)),
    "directory": (lambda p: p.mkdir(), ("not a regular file",)),
    "missing": (lambda p: None, ("no such file",)),
}

#: ``sets.json`` of a merge part: id -> (text, fragments).
BAD_SETS_JSON: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "garbage": (b"{not json", ("malformed JSON at line 1",)),
    "binary": (b"\xff\xfe\x00", ("not UTF-8",)),
    "list": (b"[1, 2]", ("expected a JSON object",)),
    "duplicate key": (b'{"sets": [], "sets": []}', ("'sets' given twice",)),
    "deep": (b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}", ("nested deeper",)),
    "sets not a list": (b'{"sets": 5, "dataset_hash": "x"}', ("field 'sets'",)),
    "no hash": (b'{"sets": []}', ("dataset_hash", "missing")),
    "hash number": (b'{"sets": [], "dataset_hash": 5}', ("dataset_hash", "5")),
}


def _merge_parts(ctx: Ctx, npz: Callable[[Path], None] | None, sets: bytes | None) -> list[str]:
    """Two export folders; the first has the hostile file."""
    dirs = []
    for i in range(2):
        ctx.n += 1
        d = ctx.tmp / f"part{ctx.n}"
        d.mkdir()
        from cgflow.ml.dataset import CampaignDataset

        a = _good_arrays()
        a["param_ids"] = np.array([f"p{i}_{k}" for k in range(3)])
        ds = CampaignDataset(**{k: v for k, v in a.items() if k != "campaign"}, campaign=f"c{i}")
        ds.save_npz(d / "dataset.npz")
        (d / "sets.json").write_text(json.dumps({"campaign": f"c{i}", "sets": [],
                                                 "dataset_hash": ds.content_hash()}))
        if i == 0:
            if npz is not None:
                (d / "dataset.npz").unlink()
                npz(d / "dataset.npz")
            if sets is not None:
                (d / "sets.json").write_bytes(sets)
        dirs.append(str(d))
    return dirs


def cases() -> list[Case]:
    """Every hostile input of this module."""
    out: list[Case] = []
    for cmd, argv in YAML_READERS.items():
        for kind, (_, says) in BAD_FILES.items():
            out.append(Case(f"{cmd}: {kind} file",
                            lambda c, argv=argv, kind=kind: argv(c, _bad_file(c, kind)),
                            says=("{file}", says)))
    for vid, (changes, says) in BAD_VALUES.items():
        for cmd in ("params check", "predict"):
            out.append(Case(f"{cmd}: {vid}",
                            lambda c, cmd=cmd, ch=changes: YAML_READERS[cmd](
                                c, c.file(_ps_yaml(**ch))), says=("{file}", *says)))
        out.append(Case(f"params check --units lammps: {vid}",
                        lambda c, ch=changes: ["params", "check", "--units", "lammps",
                                               c.file(_ps_yaml(**ch))], says=("{file}",)))
    for sid, (text, says) in BAD_SPECS.items():
        for cmd in ("campaign build", "campaign submit"):
            out.append(Case(f"{cmd}: {sid}", lambda c, cmd=cmd, t=text: YAML_READERS[cmd](
                c, c.file(t)), says=("{file}", *says)))
    for lid, (text, says, status) in BAD_LAUNCHPADS.items():
        for cmd in ("campaign results -l", "campaign status -l", "campaign submit -l",
                    "launch -l"):
            if status == 1 and cmd != "campaign results -l" and cmd != "launch -l":
                continue  # each unreachable server costs the check's timeout
            out.append(Case(f"{cmd}: {lid}", lambda c, cmd=cmd, t=text: YAML_READERS[cmd](
                c, c.file(t)), status=status, says=says if status == 1 else ("{file}", *says)))
    for wid, (text, says) in BAD_FWORKERS.items():
        out.append(Case(f"launch -w: {wid}", lambda c, t=text: YAML_READERS["launch -w"](
            c, c.file(t)), says=("{file}", *says)))
    for did, (make, says) in BAD_DATASETS.items():
        out.append(Case(f"models train --dataset: {did}",
                        lambda c, m=make: ["models", "train", "--campaign", "x", "--dataset",
                                           _npz(c, m), "-l", str(c.lp)], says=says))
        out.append(Case(f"dataset merge (dataset.npz): {did}",
                        lambda c, m=make: ["dataset", "merge", *_merge_parts(c, m, None),
                                           "-o", c.out], says=("dataset.npz", *says)))
    for jid, (text, says) in BAD_SETS_JSON.items():
        out.append(Case(f"dataset merge (sets.json): {jid}",
                        lambda c, t=text: ["dataset", "merge", *_merge_parts(c, None, t),
                                           "-o", c.out], says=("sets.json", *says)))
    out += [
        Case("predict --set: not a number", lambda c: [
            "predict", "--set", "bond_ctct_k=abc", "--campaign", "x", "-l", str(c.lp)],
            says=("bond_ctct_k", "'abc'")),
        Case("predict --set: no '='", lambda c: [
            "predict", "--set", "bond_ctct_k", "--campaign", "x", "-l", str(c.lp)],
            says=("FIELD=VALUE",)),
        Case("campaign build: a name that is no shipped spec", lambda c: [
            "campaign", "build", "no-such-spec", "-o", c.out], says=("not a shipped spec",)),
        Case("potentials list --where: malformed", lambda c: [
            "potentials", "list", "--where", "bond_ctct_k", "-l", str(c.lp)],
            says=("--where",)),
        Case("potentials list --alpha: malformed", lambda c: [
            "potentials", "list", "--alpha", "x:y", "-l", str(c.lp)], says=("alpha",)),
    ]
    return out


CASES = cases()


# --- running a case ----------------------------------------------------------------------------


_STORES: dict[Path, object] = {}


def db_snapshot(lp_file: Path) -> dict[str, int]:
    """Documents per collection of the launchpad file's database (one connection per
    file, kept)."""
    from cgflow.db.store import Store

    st = _STORES.get(lp_file)
    if st is None:
        st = _STORES[lp_file] = Store.from_launchpad_file(lp_file)
    return {c: st.db[c].estimated_document_count() for c in st.db.list_collection_names()}


def run_case(case: Case, ctx: Ctx) -> Outcome:
    """Run one case through ``main`` (stdout and stderr captured, exceptions caught) and
    check for writes: the launchpad's database and the output folder."""
    before = db_snapshot(ctx.lp)
    argv = case.argv(ctx)
    err, out = io.StringIO(), io.StringIO()
    status, traceback = None, False
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse
            status = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # noqa: BLE001 - what a traceback would be
            traceback = True
            err.write(f"{type(exc).__name__}: {exc}")
    writes = []
    after = db_snapshot(ctx.lp)
    if after != before:
        writes.append(f"database: {before} -> {after}")
    if Path(ctx.out).exists():
        writes.append(f"output {ctx.out}")
    first = next((a for a in argv if a.startswith(str(ctx.tmp)) and a != ctx.out), None)
    return Outcome(case, status, err.getvalue() + out.getvalue(), traceback, writes, first)


@pytest.fixture(scope="module")
def hostile_ctx(mongo_uri, tmp_path_factory):
    """A valid launchpad file on a database of its own for the whole module."""
    from conftest import fresh_db_name
    from fireworks import LaunchPad

    tmp = tmp_path_factory.mktemp("hostile")
    name = fresh_db_name("bad")
    lp_file = tmp / "my_launchpad.yaml"
    lp_file.write_text(yaml.safe_dump({"host": mongo_uri, "name": name, "uri_mode": True,
                                       "strm_lvl": "ERROR"}))
    lp = LaunchPad(host=mongo_uri, name=name, uri_mode=True, strm_lvl="ERROR")
    lp.reset("", require_password=False)
    yield Ctx(tmp=tmp, lp=lp_file)
    for st in _STORES.values():
        st.close()
    _STORES.clear()
    lp.connection.drop_database(name)
    lp.connection.close()


@pytest.fixture
def ctx(hostile_ctx, tmp_path):
    return Ctx(tmp=tmp_path, lp=hostile_ctx.lp)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_gives_a_clear_error_and_writes_nothing(case, ctx):
    got = run_case(case, ctx)
    assert not got.traceback, got.message
    assert got.status == case.status, got.message
    assert not any(u in got.message for u in UNCLEAR), got.message
    for fragment in case.says:
        if fragment == "{file}":
            assert got.file and got.file in got.message, got.message
        else:
            assert fragment in got.message, got.message
    assert got.writes == []


def test_the_table_is_large_and_the_checks_can_fail(ctx):
    assert len(CASES) >= 181
    # a valid parameter set passes the same runner: exit 0, no unclear message
    ok = Case("valid", lambda c: ["params", "check", c.file(_ps_yaml())], status=0)
    got = run_case(ok, ctx)
    assert got.clear and got.status == 0 and "valid parameter set" in got.message
    # a case expecting a clear error fails on a file that is fine
    assert not run_case(Case("fine", ok.argv), ctx).clear


def test_debug_shows_the_traceback_of_an_unexpected_error(monkeypatch, tmp_path, capsys):
    import cgflow.cli.main as cli_main

    def explode(args):
        raise KeyError("no such thing")

    parser = cli_main.build_parser()
    args = parser.parse_args(["params", "check", str(tmp_path / "x.yaml")])
    args.func = explode
    monkeypatch.setattr(cli_main, "build_parser", lambda: _Fixed(parser, args))
    assert cli_main.main(["params", "check", "x"]) == 1
    err = capsys.readouterr().err
    assert "unexpected error: KeyError" in err and "--debug" in err
    assert "Traceback" not in err
    args.debug = True
    with pytest.raises(KeyError):
        cli_main.main(["--debug", "params", "check", "x"])


class _Fixed:
    """A parser that returns fixed arguments (to plant an exception in a command)."""

    def __init__(self, parser, args):
        self.parser, self.args = parser, args

    def parse_args(self, argv):
        return self.args
