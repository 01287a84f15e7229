"""featviz_core is a library: it must not import the dashboard framework."""
from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

CORE = pathlib.Path(__file__).resolve().parent.parent / "featviz_core"
FORBIDDEN = ("streamlit", "featviz_ui")


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (isinstance(node, ast.Call)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")):
            names.update(a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def test_core_sources_do_not_import_streamlit():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 40 and CORE.joinpath("optvis", "render.py") in files
    offenders = {str(f.relative_to(CORE)): sorted(n for n in _imports(f) if n.split(".")[0] in FORBIDDEN)
                 for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_import_checker_sees_imports(tmp_path):
    """The checker itself finds every import form (so the test above can fail)."""
    f = tmp_path / "m.py"
    f.write_text("import streamlit as st\nfrom streamlit.runtime import x\ndef f():\n    import featviz_ui.sidebar\n"
                 "importlib.import_module('streamlit')\n")
    assert {"streamlit", "streamlit.runtime", "featviz_ui.sidebar"} <= _imports(f)


@pytest.mark.usefixtures("single_thread")
def test_importing_the_core_loads_no_streamlit():
    """Transitive imports count too: import every core module in a fresh interpreter."""
    mods = ", ".join("featviz_core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
                     for p in sorted(CORE.rglob("*.py")) if p.stem not in ("__init__", "__main__"))
    code = (f"import sys, featviz_core, {mods}; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))")
    env = dict(os.environ, PYTHONPATH=str(CORE.parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(CORE.parent))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
