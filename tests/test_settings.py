"""cgflow's settings from the environment."""

from pathlib import Path

from cgflow.settings import ENV_VARS, Settings, cgflow_home, current, runs_root


def test_defaults_when_nothing_is_set():
    s = Settings.from_env({})
    assert (s.gmx, s.lmp, s.mpirun) == ("gmx", "lmp", "mpirun")
    assert s.home is None and s.work_root is None and s.db_file is None
    assert s.db_username is None and s.db_password is None


def test_every_variable_is_read_and_the_password_never_shown():
    env = {var: f"/x/{name}" for name, var in ENV_VARS.items()}
    s = Settings.from_env(env)
    assert s.home == Path("/x/home") and s.work_root == Path("/x/work_root")
    assert s.gmx == "/x/gmx" and s.db_file == Path("/x/db_file")
    assert s.db_password == "/x/db_password"
    assert "db_password" not in repr(s) and "/x/db_password" not in repr(s)
    assert s.is_set("lmp", env) and not s.is_set("lmp", {})
    # an empty variable counts as unset
    assert Settings.from_env({"CGFLOW_LMP": ""}).lmp == "lmp"


def test_home_and_runs_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CGFLOW_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("CGFLOW_WORK_ROOT", raising=False)
    assert cgflow_home() == tmp_path / "h" and (tmp_path / "h").is_dir()
    assert runs_root() == tmp_path / "h" / "runs"
    monkeypatch.setenv("CGFLOW_WORK_ROOT", str(tmp_path / "w"))
    assert runs_root() == tmp_path / "w" and current().work_root == tmp_path / "w"
