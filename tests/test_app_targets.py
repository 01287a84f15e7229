"""Channel-list syntax and default layers (pure functions behind the pickers)."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from featviz_core import FeatvizError
from featviz_ui.targets import default_layers, parse_channels

ROOT = Path(__file__).resolve().parent.parent

LITE0 = ["bn1", "blocks.0", "blocks.1.0", "blocks.1", "blocks.2.0", "blocks.2", "blocks.3.0", "blocks.3.1", "blocks.3",
         "blocks.4.0", "blocks.4.1", "blocks.4", "blocks.5.0", "blocks.5.1", "blocks.5.2", "blocks.5", "blocks.6",
         "bn2", "logits"]


def test_channel_lists():
    assert parse_channels("first 3", 24) == [0, 1, 2]
    assert parse_channels("0-3, 7,2", 24) == [0, 1, 2, 3, 7]
    drawn = parse_channels("random 5", 24, seed=1, layer="blocks.1")
    assert drawn == parse_channels("random 5", 24, seed=1, layer="blocks.1") != parse_channels("random 5", 24, seed=2,
                                                                                               layer="blocks.1")
    assert len(set(drawn)) == 5 and all(0 <= c < 24 for c in drawn)


@pytest.mark.parametrize("text, message", [("0-30", "out of range"), ("x", "Cannot read 'x'"), ("5-2", "backwards"),
                                           ("", "No channels"), ("first 40", "has 24")])
def test_bad_channel_lists(text, message):
    with pytest.raises(FeatvizError, match=message):
        parse_channels(text, 24, layer="blocks.1")


def test_stage_layers_have_one_home_in_the_core():
    """The stage layers (sub-blocks left out) come from featviz_core.spec, for the CLI and the dashboard alike."""
    import ast
    from pathlib import Path

    from featviz_core.spec import stage_layers

    assert stage_layers(LITE0) == ["bn1"] + [f"blocks.{i}" for i in range(7)] + ["bn2"]
    assert stage_layers(["conv1", "relu1", "logits"]) == ["conv1", "relu1"]
    root = Path(__file__).resolve().parent.parent
    homes = [path.relative_to(root).as_posix() for folder in ("featviz_core", "featviz_ui")
             for path in (root / folder).rglob("*.py")
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.FunctionDef) and node.name == "stage_layers"]
    assert homes == ["featviz_core/spec/layers.py"]


def test_default_layers_one_early_one_deep():
    assert default_layers(LITE0) == ["blocks.1", "blocks.5"]
    assert default_layers(LITE0, "logit") == ["logits"]


def _heavy_imports(modules: list[str]) -> list[str]:
    """Which of torch, torchvision and timm a fresh process holds after importing `modules`."""
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(json.dumps([m for m in ('torch', 'torchvision', 'timm') if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pages_and_ui_glue_import_no_torch():
    """Importing the dashboard's glue, and what app.py and every page import at their top, loads no torch,
    directly or through featviz_core (which imports its names on first use): a view renders with torch
    only inside the functions that need it (test_app_cold.py checks whole views)."""
    glue = [f"featviz_ui.{p.stem}".removesuffix(".__init__") for p in (ROOT / "featviz_ui").glob("*.py")]
    tops = set()
    for script in [ROOT / "app.py", *(ROOT / "pages").glob("*.py")]:
        for node in ast.parse(script.read_text()).body:
            if isinstance(node, ast.Import):
                tops.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                tops.add(node.module)
    assert "featviz_ui.views" in glue and tops
    assert _heavy_imports(sorted(set(glue) | tops)) == []
    assert "torch" in _heavy_imports(["featviz_core.optvis.render"])  # the check sees torch where it is
