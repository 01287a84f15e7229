"""Channel-list syntax and default layers (pure functions behind the pickers)."""
import pytest

from featviz_core import FeatvizError
from featviz_ui.targets import default_layers, parse_channels

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


def test_pages_and_ui_glue_hold_no_torch_code():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for path in [root / "app.py", *(root / "pages").glob("*.py"), *(root / "featviz_ui").glob("*.py")]:
        imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
        heavy = imported & {"torch", "torchvision", "timm"}
        assert not heavy, f"{path.name} imports {heavy}"
