"""The one reader of user files: clear errors, limits, no aliases, no repeated keys."""

import pytest

from cgflow.errors import InvalidInputError
from cgflow.userfiles import read_yaml_mapping, yaml_mapping


def test_a_mapping_is_read(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("name: x\nibi: {rdf_tolerance: 0.03}\n")
    assert read_yaml_mapping(f, "campaign spec") == {"name": "x", "ibi": {"rdf_tolerance": 0.03}}
    assert yaml_mapping('{"name": "x"}', "json") == {"name": "x"}  # JSON is YAML


@pytest.mark.parametrize(("content", "fragment"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
    ("bond_ctct_k: 1\nname: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    (b"a: 1\x00\n", "NUL bytes"),
    (b"a: 1\na: 2\n", "key 'a' given twice (first at line 1)"),
    (b"x: &a [1, 2]\ny: *a\n", "alias *a is not allowed"),
    (b"- 1\n- 2\n", "expected a mapping"),
    (b"a: [1, 2\n", "malformed YAML at line"),
    (b"", "expected a mapping"),
])
def test_bad_files_are_refused_naming_the_file(tmp_path, content, fragment):
    f = tmp_path / "bad.yaml"
    f.write_bytes(content)
    with pytest.raises(InvalidInputError) as exc:
        read_yaml_mapping(f, "parameter set")
    assert fragment in str(exc.value) and str(f) in str(exc.value)


def test_an_alias_bomb_is_refused_before_it_grows(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInputError, match="alias"):
        read_yaml_mapping(f, "parameter set")


def test_missing_directory_and_oversized_files(tmp_path):
    with pytest.raises(InvalidInputError, match="no such file"):
        read_yaml_mapping(tmp_path / "nope.yaml", "campaign spec")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        read_yaml_mapping(tmp_path, "campaign spec")
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 2000 + "\n")
    with pytest.raises(InvalidInputError, match="more than the 1000"):
        read_yaml_mapping(big, "campaign spec", max_bytes=1000)
