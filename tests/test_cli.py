"""The command line as a user runs it: `python -m featviz_core ...` in a subprocess, real files written."""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featviz_core.errors import FeatvizError
from featviz_core.spec import parse_channels

ROOT = Path(__file__).resolve().parent.parent
TINY = "tests.tiny_model:make"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "featviz_core", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_parse_channels_forms_and_errors():
    assert parse_channels("0-3,7,2", 10) == [0, 1, 2, 3, 7]
    assert parse_channels("all", 4) == [0, 1, 2, 3]
    assert parse_channels("first 3", 10) == [0, 1, 2] and len(parse_channels("random 4", 10)) == 4
    for bad, match in [("0-12", "out of range.*10 channels"), ("a,b", "Cannot read 'a' in the channel list"),
                       ("5-2", "backwards"), ("1;2", "Cannot read '1;2'"), ("", "No channels given")]:
        with pytest.raises(FeatvizError, match=match):
            parse_channels(bad, 10)


def test_render_writes_pngs_sheet_and_manifest_then_serves_the_cache(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["render", "--model", TINY, "--layer", "relu3", "--layer", "conv2", "--channels", "0-2",
            "--size", "32", "--steps", "12", "--out", str(out), "--cache", str(cache)]
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    doc = json.loads((out / "manifest.json").read_text())
    items = doc["items"]
    assert [(i["layer"], i["channel"]) for i in items] == ([("relu3", c) for c in range(3)]
                                                           + [("conv2", c) for c in range(3)])
    for item in items:
        picture = np.asarray(Image.open(out / item["png"]))
        assert picture.shape == (32, 32, 3) and picture.std() > 5  # a real picture, not a gray square
        assert item["activation_final"] > item["activation_start"] and not item["cached"]
        assert {"z", "rank", "seconds", "dead"} <= set(item)
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 2 * 32 and sheet.height > 2 * 32
    pngs = {i["png"]: (out / i["png"]).read_bytes() for i in items}

    second = run_cli(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    again = json.loads((out / "manifest.json").read_text())["items"]
    assert all(i["cached"] for i in again) and "6 from cache" in second.stdout
    assert {i["png"]: (out / i["png"]).read_bytes() for i in again} == pngs  # the same bytes


@pytest.mark.parametrize("args, message", [
    (["render", "--model", TINY, "--layer", "relu33", "--size", "32"], "Unknown layer 'relu33'.*Did you mean 'relu3'"),
    (["render", "--model", TINY, "--layer", "relu3", "--channels", "0-40", "--size", "32"], "16 channels"),
    (["render", "--model", TINY, "--layer", "relu3", "--size", "5000"], "Size 5000 is out of range"),
    (["render", "--model", "nosuchnet", "--layer", "x"], "Unknown model 'nosuchnet'.*lite0"),
    (["layers", "--model", "resnet18", "--weights", "missing.pth"], "does not exist"),
])
def test_bad_input_exits_2_with_a_clear_message_and_keeps_the_cache(tmp_path, args, message):
    cache = tmp_path / "cache"
    ok = run_cli("render", "--model", TINY, "--layer", "relu3", "--channels", "0", "--size", "32", "--steps", "4",
                 "--out", str(tmp_path / "o"), "--cache", str(cache), "--no-check", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    before = sorted(p.name for p in cache.rglob("*"))
    cache_args = ["--cache", str(cache)] if args[0] == "render" else []
    result = run_cli(*args, *cache_args, cwd=tmp_path)
    assert result.returncode == 2
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in cache.rglob("*")) == before


def test_layers_lists_names_channels_and_sizes(tmp_path):
    result = run_cli("layers", "--model", TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert rows["relu3"][-2:] == ["16", "32x32"] and rows["conv1"][-2:] == ["8", "64x64"]


# ---------------------------------------------------------------- a full disk, a vanished folder

def _failing_open(monkeypatch, after: int, fail):
    """The outputs' writer (cli._common) opens files with `open`: the first `after` work, then `fail()`."""
    from featviz_core.cli import _common

    opened = []

    def fake_open(path, *args, **kwargs):
        if len(opened) >= after:
            fail(path)
        opened.append(path)
        return open(path, *args, **kwargs)

    monkeypatch.setattr(_common, "open", fake_open, raising=False)


def _last_line(err: str) -> str:
    """The message after the progress bar (which ends in a newline of its own): one line, no traceback."""
    assert err.endswith("\n") and err.count("error:") == 1 and "Traceback" not in err, err
    return err.rstrip("\n").split("\n")[-1]


def _disk_full(path):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def _render_in_process(tmp_path, capsys, *extra: str) -> tuple[int, str, str]:
    from featviz_core import cli

    code = cli.main(["render", "--model", TINY, "--layer", "relu3", "--channels", "0-2", "--size", "32", "--steps",
                     "4", "--no-check", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("fail, why", [(_disk_full, "No space left on device"),
                                       (lambda path: shutil.rmtree(os.path.dirname(path)),
                                        "No such file or directory")])
def test_a_full_disk_or_a_vanished_folder_is_one_line_and_the_pictures_stay_cached(tmp_path, capsys, monkeypatch,
                                                                                   single_thread, fail, why):
    _failing_open(monkeypatch, 2, fail)
    code, _, err = _render_in_process(tmp_path, capsys)
    err = _last_line(err)
    assert code == 2
    assert err.startswith(f"error: Could not finish writing to {str(tmp_path / 'out')!r} ({why}): 2 files written")
    assert "in the cache" in err
    monkeypatch.undo()
    code, out, err = _render_in_process(tmp_path, capsys)
    assert code == 0, err
    assert "wrote 3 pictures (3 from cache)" in out  # nothing was rendered again


def test_dream_on_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch, single_thread):
    from featviz_core import cli

    _failing_open(monkeypatch, 0, _disk_full)
    code = cli.main(["dream", "chelsea", "--model", TINY, "--layer", "relu2", "--size", "40", "--steps", "2",
                     "--octaves", "1", "--out", str(tmp_path / "d" / "dream.png"), "--cache", str(tmp_path / "cache")])
    err = _last_line(capsys.readouterr().err)
    assert code == 2
    assert f"{str(tmp_path / 'd')!r} (No space left on device): 0 files written there" in err


def test_outputs_written_elsewhere_fail_the_same_way(tmp_path):
    """The atlas's site and the exemplars' crops are written by their own modules, inside `writing_into`."""
    from featviz_core.cli._common import writing_into

    folder = tmp_path / "atlas"
    folder.mkdir()
    (folder / "index.html").write_text("half")
    with pytest.raises(FeatvizError) as caught:
        with writing_into(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(caught.value).startswith(f"Could not finish writing to {str(folder)!r} (No space left on device): "
                                        "1 files are there now; everything finished is kept in the cache")
