"""Credentials never leak (messages, Firework specs, stored documents, workflow files), and
model blobs read from the database run no code."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import zipfile

import pytest
import yaml

from cgflow.cli.main import main
from cgflow.db.store import Store, redact_uri

PASSWORD = "Planted-S3cret-pw"


@pytest.mark.parametrize(("uri", "redacted"), [
    ("mongodb://u:pw@h:1/db", "mongodb://***@h:1/db"),
    ("MongoDB://u:pw@h:1/db", "MongoDB://***@h:1/db"),
    ("MONGODB+SRV://u:pw@cluster.example/db", "MONGODB+SRV://***@cluster.example/db"),
    ("mongodb://u:p%40ss@h1:1,h2:2/?authSource=admin", "mongodb://***@h1:1,h2:2/?authSource=admin"),
    ("mongodb://only-user@h/db", "mongodb://***@h/db"),
    ("mongodb://u:pa/ss@h/db", "mongodb://***@h/db"),  # an unescaped '/' in the password
    ("error at mongodb://u:pw@h:1 and mongodb://v:qw@k:2 (x)",
     "error at mongodb://***@h:1 and mongodb://***@k:2 (x)"),
    ("https://u:pw@example.org/x", "https://***@example.org/x"),
    ("mongodb://h:1/db", "mongodb://h:1/db"),
    ("user@example.org wrote", "user@example.org wrote"),
])
def test_redact_uri_hides_every_userinfo(uri, redacted):
    assert redact_uri(uri) == redacted


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue() + err.getvalue()


def test_a_password_in_a_launchpad_uri_is_never_printed(mongo_uri, tmp_path, monkeypatch):
    from pymongo.uri_parser import parse_uri

    host, port = parse_uri(mongo_uri)["nodelist"][0]
    lp = tmp_path / "lp.yaml"
    # the test server has no user of that name: the login is refused
    lp.write_text(yaml.safe_dump({
        "host": f"mongodb://cgflow-user:{PASSWORD}@{host}:{port}/cgft_sec?directConnection=true",
        "name": "cgft_sec", "uri_mode": True}))
    lp2 = tmp_path / "lp2.yaml"  # credentials as keys, the password from the environment
    lp2.write_text(yaml.safe_dump({"host": host, "port": port, "name": "cgft_sec",
                                   "username": "cgflow-user"}))
    monkeypatch.setenv("CGFLOW_DB_PASSWORD", PASSWORD)
    for f in (lp, lp2):
        for argv in (["campaign", "results", "x", "-l", str(f)],
                     ["campaign", "status", "x", "-l", str(f)],
                     ["potentials", "list", "-l", str(f)],
                     ["models", "list", "-l", str(f)],
                     ["db", "migrate", "-l", str(f)],
                     ["launch", "-l", str(f)],
                     ["campaign", "submit", "tiny", "-l", str(f)]):
            status, text = _run(argv)
            assert status == 1, (argv, text)
            assert PASSWORD not in text, (argv, text)
            assert "refused the credentials" in text or "cannot reach" in text, (argv, text)
    status, text = _run(["db", "status"])
    assert PASSWORD not in text


def test_a_planted_password_is_in_no_spec_document_or_file(launchpad, launchpad_file,
                                                            tmp_path, monkeypatch):
    """A campaign queued and its workflow file written while the password is in the
    environment: dump every collection and the file, and grep."""
    monkeypatch.setenv("CGFLOW_DB_PASSWORD", PASSWORD)
    monkeypatch.setenv("CGFLOW_DB_USERNAME", "")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: sec\nspace: narrow\nn_sets: 1\npreset: tiny\ncg_stage: true\n")
    assert _run(["campaign", "submit", str(spec), "-l", str(launchpad_file)])[0] == 0
    wf_file = tmp_path / "wf.yaml"
    assert _run(["campaign", "build", str(spec), "-o", str(wf_file)])[0] == 0
    with Store.from_launchpad_file(launchpad_file) as st:
        st.ensure_indexes()
        st.upsert_parameter_set(__import__("cgflow.params").params.OPLSAA_REFERENCE, "sec")
        dump = {c: list(st.db[c].find({})) for c in st.db.list_collection_names()}
    text = json.dumps(dump, default=str)
    assert dump["fireworks"] and dump["workflows"] and dump["parameter_sets"]
    assert PASSWORD not in text and PASSWORD not in wf_file.read_text()
    # the check can fail: the same dump with the password planted in a spec finds it
    launchpad.fireworks.update_one({}, {"$set": {"spec.note": PASSWORD}})
    with Store.from_launchpad_file(launchpad_file) as st:
        assert PASSWORD in json.dumps(list(st.db["fireworks"].find({})), default=str)


class _Exploit:
    """A pickle that would create a file when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_model_blobs_are_loaded_without_running_code(tmp_path):
    import torch

    from cgflow.ml.alpha_model import AccelerationFactorModel
    from cgflow.ml.structure_model import StructureModel
    from cgflow.ml.training import load_models

    marker = tmp_path / "pwned"
    weights = io.BytesIO()
    torch.save({"w": _Exploit(str(marker))}, weights)
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"kind": "structure"}))
        zf.writestr("weights.pt", weights.getvalue())
    with pytest.raises(Exception) as info:  # noqa: PT011 - any refusal, but no code run
        StructureModel.from_bytes(blob.getvalue())
    assert "weights_only" in str(info.value) or "Unsupported" in str(info.value)
    assert not marker.exists()
    # the other blobs are JSON: a pickle is not read as one
    with pytest.raises(Exception):  # noqa: PT011, B017
        AccelerationFactorModel.from_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(Exception):  # noqa: PT011, B017
        load_models({"manifest": pickle.dumps(_Exploit(str(marker))),
                     "structure": b"", "alpha": b""})
    assert not marker.exists()
