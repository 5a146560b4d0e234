from pathlib import Path

import pytest

import strataml as st
from strataml.errors import ConfigError, UserCodeError, WorkspaceNotFound
from strataml.spine import find_workspace, load_settings


def test_precedence_argument_over_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = tmp_path / "strata.toml"
    cfg.write_text('[strata]\nmemory_limit = "2GB"\nthreads = 3\n')
    assert load_settings(cfg, environ={}).memory_limit == "2GB"
    assert load_settings(cfg, environ={"STRATA_MEMORY_LIMIT": "3GB"}).memory_limit == "3GB"
    assert load_settings(cfg, environ={"STRATA_MEMORY_LIMIT": "3GB"}, memory_limit="4GB").memory_limit == "4GB"
    assert load_settings(cfg, environ={}).threads == 3
    assert load_settings(None, environ={}).memory_limit == "1GB"


def test_env_values_are_typed(tmp_path: Path) -> None:
    s = load_settings(None, environ={"STRATA_THREADS": "8", "STRATA_HTTP_TIMEOUT": "2.5"})
    assert s.threads == 8 and s.http_timeout == 2.5


def test_bad_setting_names_key_value_and_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ={"STRATA_THREADS": "many"})
    msg = str(err.value)
    assert "'threads'" in msg and "'many'" in msg and "STRATA_THREADS" in msg

    cfg = tmp_path / "strata.toml"
    cfg.write_text('memory_limit = "lots"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert "memory_limit" in str(err.value) and "512MB" in str(err.value) and str(cfg) in str(err.value)


def test_unknown_key_lists_known_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "strata.toml"
    cfg.write_text("[strata]\ncatalogue = 'x'\n")
    with pytest.raises(ConfigError, match="unknown setting 'catalogue'.*catalog"):
        load_settings(cfg, environ={})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "strata.toml"
    cfg.write_text("[strata\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, environ={})


def test_workspace_found_from_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st.Workspace.init(tmp_path / "proj")
    sub = tmp_path / "proj" / "a" / "b"
    sub.mkdir(parents=True)
    assert find_workspace(sub) == (tmp_path / "proj").resolve()
    monkeypatch.chdir(sub)
    monkeypatch.delenv("STRATA_WORKSPACE", raising=False)
    ws = st.Workspace.open()
    assert ws.root == (tmp_path / "proj").resolve()
    assert ws.catalog.url.startswith("sqlite:///" + str((tmp_path / "proj").resolve()))


def test_no_workspace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFound, match="strata init"):
        find_workspace(tmp_path)


def test_init_is_idempotent_and_keeps_user_files(tmp_path: Path) -> None:
    ws = st.Workspace.init(tmp_path)
    (tmp_path / "definitions.py").write_text("# mine\n")
    st.Workspace.init(tmp_path)
    assert (tmp_path / "definitions.py").read_text() == "# mine\n"
    assert (ws.state_dir / "catalog.db").exists()


def test_a_refused_declaration_names_its_line_not_a_traceback(tmp_path: Path) -> None:
    ws = st.Workspace.init(tmp_path, example=False)
    (tmp_path / "definitions.py").write_text(
        "import strataml as st\n"
        "user = st.Entity('user', key='user_id')\n"
        "v = st.FeatureView('v', entity=user, source='tx', ttl='1d',\n"
        "                   features=[st.Feature('s', agg='sum', column='amount', window='24 parsecs')])\n"
    )
    with pytest.raises(UserCodeError) as info:
        _ = ws.definitions
    assert f"{tmp_path / 'definitions.py'}:4: feature 's': window '24 parsecs' is not a duration" in info.value.message
    assert "Traceback" not in str(info.value) and "'24h'" in (info.value.hint or "")
    # a plain bug in the user's own code keeps its traceback: that is where the fix is
    (tmp_path / "definitions.py").write_text("import strataml as st\nx = 1 / 0\n")
    ws2 = st.Workspace.open(tmp_path)
    with pytest.raises(UserCodeError, match="ZeroDivisionError") as info:
        _ = ws2.definitions
    assert "Traceback" in info.value.message


@pytest.mark.parametrize("code", ["raise SystemExit(0)", "import sys; sys.exit(3)", "raise GeneratorExit", "raise SystemExit('bye')"])
def test_anything_definitions_raise_is_an_error_naming_file_and_line(tmp_path: Path, code: str) -> None:
    st.Workspace.init(tmp_path, example=False)
    (tmp_path / "definitions.py").write_text(f"import strataml as st\n\n{code}\n")
    ws = st.Workspace.open(tmp_path)
    with pytest.raises(UserCodeError) as info:
        _ = ws.definitions
    assert info.value.message.startswith(f"{tmp_path / 'definitions.py'}:3: definitions.py raised ")
