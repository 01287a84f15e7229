"""`python -m featviz_core dream` as a user runs it: a real photo file in, a PNG out, one clear line on bad input."""
from __future__ import annotations

import numpy as np
from PIL import Image

from featviz_core.cli.main import main
from featviz_core.inputs.photos import sample_photo

from .test_cli import TINY, run_cli


def test_dream_writes_the_png_then_serves_the_cache(tmp_path):
    photo = tmp_path / "cat.jpg"
    Image.fromarray(sample_photo("chelsea")).save(photo, quality=90)
    args = ["dream", str(photo), "--model", TINY, "--layer", "relu2", "--size", "40", "--steps", "6",
            "--octaves", "2", "--out", str(tmp_path / "dream.png"), "--cache", str(tmp_path / "cache")]
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    dreamed = np.asarray(Image.open(tmp_path / "dream.png"))
    assert dreamed.shape == (27, 40, 3)  # the whole photo (451 x 300), its longer side --size
    assert "dreaming" in first.stderr and "step/s" in first.stderr  # the tqdm bar, with its rate
    assert "relu2 objective" in first.stdout and "from cache" not in first.stdout
    second = run_cli(*args, cwd=tmp_path)
    assert "from cache" in second.stdout
    assert np.array_equal(np.asarray(Image.open(tmp_path / "dream.png")), dreamed)


def test_several_layers_write_one_file_each(tmp_path, capsys):
    code = main(["dream", "chelsea", "--model", TINY, "--layer", "relu2", "--layer", "relu3", "--channel", "1",
                 "--size", "32", "--steps", "4", "--octaves", "1", "--accentuate", "1",
                 "--out", str(tmp_path / "d.png"), "--no-cache"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "d_relu2_1.png").exists() and (tmp_path / "d_relu3_1.png").exists()


def test_bad_input_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.jpg").write_bytes(b"these are not pixels")
    cases = [
        (["notes.jpg", "--layer", "relu2"], "not an image"),
        (["missing.jpg", "--layer", "relu2"], "No such photo file 'missing.jpg'; or name a sample photo: chelsea"),
        (["chelsea", "--layer", "nope"], "Unknown layer 'nope'"),
        (["chelsea", "--layer", "relu3", "--channel", "99"], "out of range"),
        (["chelsea"], "Name a layer"),
        (["chelsea", "--layer", "relu2", "--accentuate", "-2"], "Accentuation strength"),
    ]
    for extra, words in cases:
        code = main(["dream", *extra, "--model", TINY, "--no-cache", "--size", "32", "--steps", "2"])
        err = capsys.readouterr().err
        assert code == 2, (extra, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (extra, err)
        assert str(tmp_path) not in err
