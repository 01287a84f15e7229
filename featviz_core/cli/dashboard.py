"""`featviz dashboard [STREAMLIT ARGS]`: the same as `streamlit run app.py [STREAMLIT ARGS]`.

Works from a checkout (app.py beside featviz_core/) and from an installed package, where app.py,
pages/ and .streamlit/config.toml are shipped as the `featviz_app` package (see pyproject.toml).
Streamlit reads the config.toml beside the script, so the dashboard's settings travel with it.
This module only starts a process: featviz_core never imports Streamlit.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from ..errors import FeatvizError

APP_PACKAGE = "featviz_app"  # the installed home of app.py and pages/ (pyproject.toml's package-dir)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("dashboard", help="open the dashboard (the same as `streamlit run app.py`; "
                              "other arguments go to streamlit, e.g. --server.port 8600 -- --model pkg.mod:factory)")
    p.set_defaults(pass_through=True)


def _is_app_dir(folder: Path) -> bool:
    return (folder / "app.py").is_file() and (folder / "pages").is_dir()


def app_dir() -> Path:
    """The folder holding app.py and pages/: the checkout featviz_core came from, else the installed package."""
    checkout = Path(__file__).resolve().parents[2]  # featviz_core/cli/dashboard.py -> the checkout
    if _is_app_dir(checkout) and (checkout / "featviz_ui").is_dir():
        return checkout
    spec = importlib.util.find_spec(APP_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if _is_app_dir(Path(location)):
            return Path(location)
    raise FeatvizError("Cannot find the dashboard's app.py: reinstall featviz (pip install 'featviz[ui]') "
                       "or run `streamlit run app.py` in a checkout.")


def streamlit_command(folder: Path, streamlit_args: Sequence[str]) -> list[str]:
    """The command that serves the dashboard: this interpreter's streamlit on folder/app.py."""
    return [sys.executable, "-m", "streamlit", "run", str(folder / "app.py"), *streamlit_args]


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:
        raise FeatvizError("The dashboard needs Streamlit: pip install 'featviz[ui]' (or -r requirements.txt).")
    command = streamlit_command(app_dir(), getattr(args, "streamlit_args", []))
    if os.name == "posix":  # become streamlit, so a service manager's SIGTERM reaches the server itself
        sys.stdout.flush()
        os.execv(command[0], command)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:  # Ctrl-C reaches streamlit too, which shuts down by itself
        return 130
