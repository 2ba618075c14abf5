"""Parameter-set files are read the same way by every command (``cgflow params check``,
``cgflow predict``): :func:`cgflow.params.read_parameter_set_file`, with an optional
``units:`` key as in a campaign spec."""

from __future__ import annotations

import pytest
import yaml

from cgflow.cli.main import main
from cgflow.errors import InvalidInputError
from cgflow.params import OPLSAA_REFERENCE, read_parameter_set_file


def write(path, values, units=None):
    data = dict(values)
    if units is not None:
        data["units"] = units
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_file_in_lammps_units_says_so(tmp_path):
    f = write(tmp_path / "set.yaml", OPLSAA_REFERENCE.to_lammps(), units="lammps")
    ps = read_parameter_set_file(f)
    assert ps.id == OPLSAA_REFERENCE.id
    assert read_parameter_set_file(f, "lammps").id == OPLSAA_REFERENCE.id  # same as the flag
    g = write(tmp_path / "g.yaml", OPLSAA_REFERENCE.model_dump())
    assert read_parameter_set_file(g).id == OPLSAA_REFERENCE.id  # GROMACS by default
    assert read_parameter_set_file(g, "gromacs").id == OPLSAA_REFERENCE.id
    # the flag is the default of a file without units
    h = write(tmp_path / "h.yaml", OPLSAA_REFERENCE.to_lammps())
    assert read_parameter_set_file(h, "lammps").id == OPLSAA_REFERENCE.id


def test_flag_and_file_that_disagree_are_refused_naming_both(tmp_path):
    f = write(tmp_path / "set.yaml", OPLSAA_REFERENCE.to_lammps(), units="lammps")
    with pytest.raises(InvalidInputError, match=r"--units gromacs conflicts with .*set\.yaml"
                       r".*field 'units': value 'lammps'"):
        read_parameter_set_file(f, "gromacs")
    bad = write(tmp_path / "bad.yaml", OPLSAA_REFERENCE.model_dump(), units="si")
    with pytest.raises(InvalidInputError, match=r"bad\.yaml: field 'units': unknown value 'si'"):
        read_parameter_set_file(bad)


def test_overrides_are_in_the_files_units(tmp_path):
    f = write(tmp_path / "set.yaml", OPLSAA_REFERENCE.to_lammps(), units="lammps")
    ps = read_parameter_set_file(f, overrides={"bond_ctct_r0": 1.6})  # Angstrom
    assert ps.bond_ctct_r0 == pytest.approx(0.16)
    assert ps.bond_cthc_k == pytest.approx(OPLSAA_REFERENCE.bond_cthc_k)


def test_params_check_reads_units_from_the_file(tmp_path, capsys):
    f = write(tmp_path / "set.yaml", OPLSAA_REFERENCE.to_lammps(), units="lammps")
    assert main(["params", "check", str(f)]) == 0
    assert OPLSAA_REFERENCE.id in capsys.readouterr().out
    assert main(["params", "check", str(f), "--units", "gromacs"]) == 2
    err = capsys.readouterr().err
    assert "--units gromacs" in err and "'lammps'" in err


def test_predict_reads_the_file_as_params_check_does(tmp_path, launchpad_file, capsys):
    f = write(tmp_path / "set.yaml", OPLSAA_REFERENCE.to_lammps(), units="lammps")
    args = ["predict", str(f), "--campaign", "none", "-l", str(launchpad_file),
            "-o", str(tmp_path / "out")]
    # the file is accepted: what stops the command is the campaign without models
    assert main(args) == 2
    assert "has no trained models" in capsys.readouterr().err
    assert main([*args, "--units", "gromacs"]) == 2
    err = capsys.readouterr().err
    assert "--units gromacs conflicts" in err and "no trained models" not in err
