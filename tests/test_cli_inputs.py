"""Every bad input to the command line exits 2 with one line saying what is wrong and what is valid,
and places (--out, --cache) are checked before the model is loaded or anything renders."""
from __future__ import annotations

import time

import pytest

from featviz_core import cli
from featviz_core.cli import render as cli_render
from featviz_core.errors import FeatvizError
from featviz_core.spec import parse_channels

TINY = "tests.tiny_model:make"
pytestmark = pytest.mark.usefixtures("single_thread")


def test_a_huge_range_fails_before_it_is_expanded():
    started = time.perf_counter()
    for text in ("0-9999999999", "0-" + "9" * 5000, "5,0-99999999999999999999"):
        with pytest.raises(FeatvizError, match=r"out of range: the layer has 16 channels \(0-15\)"):
            parse_channels(text, 16)
    assert time.perf_counter() - started < 0.5  # it built a 10-billion-entry list (6 GB, then MemoryError)
    with pytest.raises(FeatvizError, match="Too many channels"):
        parse_channels(",".join(["0-15"] * 300), 16)


@pytest.fixture
def places(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    return tmp_path


@pytest.fixture
def nothing_runs(monkeypatch):
    """The checks must come first: loading the model or rendering fails the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the model was loaded or a render started before the inputs were checked")

    monkeypatch.setattr(cli_render, "render_all", forbidden)
    monkeypatch.setattr(cli_render, "load_model", forbidden)


@pytest.mark.parametrize("args, message", [
    (["--out", "{tmp}/a_file"], "--out '{tmp}/a_file' is a file, not a folder"),
    (["--out", "/proc/featviz"], "--out '/proc/featviz' cannot be written"),
    (["--cache", "{tmp}/a_file"], "Cannot use '{tmp}/a_file' as the cache folder"),
    (["--cache", "/proc/featviz"], "Cannot use '/proc/featviz' as the cache folder"),
    (["--batch-size", "0"], "Batch size 0 is out of range: choose a whole number from 1 to 4096"),
    (["--batch-size", "5000"], "Batch size 5000 is out of range: choose a whole number from 1 to 4096"),
    (["--size", "5000"], "Size 5000 is out of range: choose a whole number from 32 to 1024"),
    (["--weights", "{tmp}"], "does not exist or is not a file"),
])
def test_places_and_settings_are_checked_first(places, nothing_runs, capsys, args, message):
    args = [a.replace("{tmp}", str(places)) for a in args]
    defaults = {"--out": str(places / "out"), "--cache": str(places / "cache")}
    defaults.update(dict(zip(args[::2], args[1::2])))
    code = cli.main(["render", "--model", TINY, "--layer", "relu3", *[x for kv in defaults.items() for x in kv]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert message.replace("{tmp}", str(places)) in err


@pytest.mark.parametrize("args, message", [
    (["--model", "torch.nn:Linear"], "Model factory 'torch.nn:Linear' failed when called (TypeError"),
    (["--model", "torchvision.models:resnet18"],
     "returned ResNet: it must be a callable taking no arguments, and must return ModelParts"),
    (["--model", ":x"], "Cannot import model factory ':x'"),
    (["--model", TINY, "--channels", "0-9999999999"],
     "Channel 9999999999 is out of range of layer 'relu3': the layer has 16 channels"),
    (["--model", TINY, "--channels", "3-1"], "runs backwards: write it as 1-3"),
    (["--model", TINY, "--device", "tpu"], "Valid devices: auto, cpu, cuda, mps"),
    (["--model", TINY, "--size", "abc"], "argument --size: invalid int value: 'abc'"),
    (["--model", TINY, "--method", "nope"], "invalid choice: 'nope' (choose from 'fourier', 'maco', 'classic')"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    argv = ["render", "--layer", "relu3", "--out", str(tmp_path / "out"), "--no-cache", *args]
    try:
        code = cli.main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert message in err and "Traceback" not in err
