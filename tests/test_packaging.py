"""Packaging: the `featviz` console script is the CLI's parser, `featviz dashboard` runs streamlit on
the dashboard's app.py (from a checkout or from the installed featviz_app package), and pyproject.toml
ships every file that command needs. A fresh `pip install` is too slow for the suite (README, Install)."""
from __future__ import annotations

import importlib
import os
import sys
import tomllib
from pathlib import Path

import pytest

from featviz_core import cli
from featviz_core.cli import dashboard as cli_dashboard
from featviz_ui.views import VIEWS

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _entry_point(name: str):
    module, _, attr = PYPROJECT["project"]["scripts"][name].partition(":")
    return getattr(importlib.import_module(module), attr)


def test_console_script_is_the_cli_parser(capsys, monkeypatch):
    assert _entry_point("featviz") is cli.main
    monkeypatch.setattr(sys, "argv", ["/usr/bin/featviz", "--help"])
    with pytest.raises(SystemExit) as exit_:
        _entry_point("featviz")()
    assert exit_.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: featviz ")
    for command in ("models", "layers", "render", "dashboard"):
        assert command in usage


def test_dashboard_execs_streamlit_on_app_py_with_the_extra_arguments(monkeypatch):
    ran = []

    def execv(path, argv):  # the real one never returns: this process becomes streamlit
        ran.append((path, argv))
        raise SystemExit(0)

    monkeypatch.setattr(cli_dashboard.os, "execv", execv)
    extra = ["--server.port", "8651", "--server.headless", "true", "--", "--model", "pkg.mod:factory"]
    with pytest.raises(SystemExit):
        cli.main(["dashboard", *extra])
    assert ran == [(sys.executable, [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), *extra])]


def test_other_commands_still_refuse_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["models", "--server.port", "8651"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --server.port 8651" in capsys.readouterr().err


def test_installed_layout_is_found_without_a_checkout(tmp_path, monkeypatch):
    """As site-packages holds it: featviz_core/ and featviz_app/{app.py,pages/}, no app.py beside featviz_core."""
    app = tmp_path / cli_dashboard.APP_PACKAGE
    (app / "pages").mkdir(parents=True)
    (app / "app.py").write_text("")
    monkeypatch.setattr(cli_dashboard, "__file__", str(tmp_path / "featviz_core" / "cli_dashboard.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert cli_dashboard.app_dir() == app
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    sys.modules.pop(cli_dashboard.APP_PACKAGE, None)
    with pytest.raises(cli_dashboard.FeatvizError, match="Cannot find the dashboard"):
        cli_dashboard.app_dir()


def test_pyproject_ships_app_pages_and_streamlit_config():
    tool = PYPROJECT["tool"]["setuptools"]
    assert {"featviz_core", "featviz_ui", "featviz_app", "featviz_app.pages"} <= set(tool["packages"])
    app_dir = ROOT / tool["package-dir"]["featviz_app"]
    pages_dir = ROOT / tool["package-dir"]["featviz_app.pages"]
    assert (app_dir / "app.py").is_file()
    for page_file, _title, _icon in VIEWS.values():  # st.Page paths are relative to app.py
        assert (pages_dir / Path(page_file).name).is_file()
        assert (app_dir / page_file).resolve() == (pages_dir / Path(page_file).name).resolve()
    for pattern in tool["package-data"]["featviz_app"]:
        assert (app_dir / pattern).is_file()
    from featviz_core.export import site
    shipped = {p.name for pattern in tool["package-data"]["featviz_core.export"]
               for p in (ROOT / "featviz_core" / "export").glob(pattern)}
    assert shipped == set(os.listdir(site.ASSETS)) == {"atlas.css", "atlas.js"}


def test_dependencies_match_requirements_txt():
    """Same pins as requirements.txt (what ./run.sh installs and the suite runs with)."""
    def pins(lines):
        return {line.split("=")[0].split(">")[0].split("<")[0].strip().lower(): line.strip() for line in lines
                if line.strip() and not line.startswith("#")}
    required = pins((ROOT / "requirements.txt").read_text().splitlines())
    declared = pins(PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["ui"])
    assert declared == required
    assert PYPROJECT["project"]["optional-dependencies"]["ray"] == ["ray[client]==2.60.0"]
